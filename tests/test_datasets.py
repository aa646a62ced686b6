"""Dataset and file readers on files written here in the exact published layouts."""

import pickle
import struct

import mne
import numpy as np
import pytest
import scipy.io

from bci_stream import cli, registry
from bci_stream.datasets import deap, seed
from bci_stream.datasets.synthetic import synthetic_trials
from bci_stream.devices.files import FileSource, read_recording
from bci_stream.devices.synthetic import LAYOUTS, SyntheticEEG
from bci_stream.montages import DEAP32, SEED62
from bci_stream.registry import UnknownNameError
from bci_stream.sources import SourceError

# ------------------------------------------------------------------ writers in the datasets' own layouts


def write_deap(folder, participant: int, ratings, rng, n_samples=8064):
    """``sNN.dat`` as DEAP ships it: a protocol-2 pickle of {'data': trials x 40 x samples, 'labels': trials x 4}."""
    folder.mkdir(parents=True, exist_ok=True)
    ratings = np.asarray(ratings, np.float64)
    data = rng.standard_normal((len(ratings), 40, n_samples)) * 10
    path = folder / f"s{participant:02d}.dat"
    with open(path, "wb") as f:
        pickle.dump({"data": data, "labels": ratings}, f, protocol=2)
    return path, data


def write_seed(folder, name: str, rng, initials="djc", n_trials=15, samples=(600, 650), dtype=np.float64, skip=()):
    """``<subject>_<date>.mat`` with ``<initials>_eeg1..N``, 62 x T each (T varies per trial, as in SEED)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {f"{initials}_eeg{k}": (rng.standard_normal((62, int(rng.integers(*samples)))) * 20).astype(dtype)
              for k in range(1, n_trials + 1) if k not in skip}
    scipy.io.savemat(folder / name, arrays)
    return arrays


SEED_LABELS = [1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1]  # SEED's film order


def write_seed_labels(folder, labels=SEED_LABELS):
    scipy.io.savemat(folder / "label.mat", {"label": np.asarray(labels, np.int16)[None, :]})


def open_dataset(name, root=None, **options):
    return registry.load_dataset(name)(root, **options)


# ------------------------------------------------------------------ the registry and the command line


def test_registry_lists_the_datasets_and_names_the_installed_ones():
    assert registry.dataset_names() == ["bids", "deap", "recordings", "seed", "synthetic"]
    assert registry.load_dataset("deap") is deap.DeapDataset
    assert [d.name for d in registry.datasets().values()] == ["bids", "deap", "recordings", "seed", "synthetic"]
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'dreamer'; installed datasets: bids, deap, recordings, "
                                               r"seed, synthetic"):
        registry.load_dataset("dreamer")


def test_cli_flags_come_from_the_registered_options(tmp_path, rng, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--dataset {bids,deap,recordings,seed,synthetic}" in out
    assert "deap dataset:" in out and "synthetic dataset:" in out
    assert "--target {valence,arousal,valence-arousal}" in out and "--trial-seconds TRIAL_SECONDS" in out
    assert f"--layout {{{','.join(LAYOUTS)}}}" in out and "deap-cnn, deap-dnn, featurenet" in out

    folder = tmp_path / "SEED"
    write_seed(folder, "1_20131027.mat", rng, n_trials=3, samples=(200, 201))
    write_seed_labels(folder, [1, 0, -1])
    for argv, message in [(["--target", "arousal"], "--target is an option of dataset deap, not seed"),
                          (["--trial-seconds", "3"],
                           "--trial-seconds is an option of dataset bids, recordings, synthetic, not seed")]:
        assert cli.main(["evaluate", str(folder), "--dataset", "seed", *argv]) == 2
        err = capsys.readouterr().err
        assert err == f"bci-stream evaluate: error: {message}\n"
    assert cli.main(["evaluate", "--dataset", "seed"]) == 2
    assert "dataset 'seed' is read from a folder; none given" in capsys.readouterr().err
    assert cli.main(["evaluate", str(folder), "--dataset", "synthetic"]) == 2
    assert "dataset 'synthetic' is generated, not read: it takes no folder" in capsys.readouterr().err


# ------------------------------------------------------------------ DEAP


def test_deap_trials_shapes_channels_labels(tmp_path, rng):
    folder = tmp_path / "DEAP" / "data_preprocessed_python"
    _, d1 = write_deap(folder, 1, [[2.0, 8.0, 5, 5], [5.0, 5.0, 5, 5], [7.5, 1.0, 5, 5]], rng)
    write_deap(folder, 2, [[9.0, 9.0, 1, 1], [1.0, 1.0, 1, 1], [6.0, 4.0, 1, 1]], rng)
    ds = open_dataset("deap", tmp_path / "DEAP")  # the root finds its data folder
    trials = list(ds.trials())
    assert ds.class_names == ("low-valence", "high-valence") and ds.n_trials() == len(trials) == 6
    t = trials[0]
    assert (t.participant, t.session, t.trial) == ("1", "1", 1)
    assert t.data.shape == (8064 - 384, 32) and t.data.dtype == np.float32
    assert t.info.channel_names == tuple(DEAP32) and t.info.srate == 128 and t.info.unit == "microvolts"
    np.testing.assert_array_equal(t.data, d1[0, :32, 384:].T.astype(np.float32))
    assert [t.label for t in trials] == [0, 0, 1, 1, 0, 1]  # a rating of exactly 5 is low
    assert [t.participant for t in trials] == ["1"] * 3 + ["2"] * 3

    arousal = open_dataset("deap", folder, target="arousal", threshold="4.5")  # as a file: spec gives it
    assert [t.label for t in arousal.trials(["1"])] == [1, 1, 0] and arousal.n_trials(["1"]) == 3
    quad_ds = open_dataset("deap", folder, target="valence-arousal")
    assert quad_ds.class_names == LAYOUTS["deap32"].classes  # the bundled deap32 model's classes
    quad = list(quad_ds.trials(baseline="keep"))
    assert [t.label for t in quad[:3]] == [1, 0, 2]
    assert quad[0].data.shape == (8064, 32) and quad[0].info.extra["baseline_samples"] == 384
    assert ds.files() == [folder / "s01.dat", folder / "s02.dat"] and ds.files(["2"]) == [folder / "s02.dat"]
    assert quad_ds.provenance() == {"dataset": "deap", "synthetic": False,
                                    "options": {"target": "valence-arousal", "threshold": 5.0},
                                    "participants": ["1", "2"], "sessions": {"1": ["1"], "2": ["1"]}}

    rec = read_recording(folder / "s02.dat", target="arousal", baseline="keep")
    assert rec.class_names == ("low-arousal", "high-arousal") and [t.label for t in rec.trials] == [1, 0, 0]
    assert rec.trials[0].data.shape == (8064, 32)
    src = FileSource.from_spec(f"{folder / 's02.dat'}?target=valence-arousal&threshold=8.5")
    assert [t.label for t in src.recording.trials] == [3, 0, 0]
    with pytest.raises(ValueError, match=r"s02\.dat: option\(s\) \['stream'\] do not apply .*it takes target, threshold, "
                                         "baseline"):
        read_recording(folder / "s02.dat", stream="EEG")
    with pytest.raises(SourceError, match=r"unknown option\(s\) \['layout'\]"):
        FileSource.from_spec(f"{folder / 's02.dat'}?layout=seed62")


def test_deap_bad_files_name_the_file_and_the_layout(tmp_path, rng):
    path, _ = write_deap(tmp_path, 1, [[1, 1, 1, 1]] * 2, rng, n_samples=1000)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"s01\.dat: cannot be unpickled .*expected a Python-2 pickle"):
        deap.read_participant(path)
    with open(tmp_path / "s02.dat", "wb") as f:
        pickle.dump({"data": np.zeros((2, 39, 1000)), "labels": np.ones((2, 4))}, f, protocol=2)
    with pytest.raises(ValueError, match=r"s02\.dat: 'data' has shape \(2, 39, 1000\); expected trials x 40"):
        deap.read_participant(tmp_path / "s02.dat")
    with open(tmp_path / "s03.dat", "wb") as f:
        pickle.dump({"data": np.zeros((2, 40, 1000)), "labels": np.ones((3, 4))}, f, protocol=2)
    with pytest.raises(ValueError, match=r"s03\.dat: 'labels' has shape \(3, 4\); expected 2 x 4"):
        deap.read_participant(tmp_path / "s03.dat")
    with pytest.raises(ValueError, match="deap target 'dominance': expected one of valence, arousal, valence-arousal"):
        open_dataset("deap", tmp_path, target="dominance")
    with pytest.raises(ValueError, match="deap threshold 'high': expected float"):
        open_dataset("deap", tmp_path, threshold="high")
    with pytest.raises(ValueError, match=r"dataset 'deap': no participant\(s\) \['7'\]; it has \['1', '2', '3'\]"):
        open_dataset("deap", tmp_path).trials(["7"])
    with pytest.raises(ValueError, match=r"dataset 'seed' takes no option\(s\) \['target'\]; it takes none"):
        open_dataset("seed", tmp_path, target="valence")
    with pytest.raises(ValueError, match="deap baseline 'subtract': expected one of drop, keep"):
        open_dataset("deap", tmp_path).trials(baseline="subtract")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: no files named sNN\.dat"):
        open_dataset("deap", tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"DEAP folder .*nowhere: no such directory"):
        open_dataset("deap", tmp_path / "nowhere")


# ------------------------------------------------------------------ SEED


def test_seed_sessions_by_date_labels_and_channels(tmp_path, rng):
    folder = tmp_path / "SEED" / "Preprocessed_EEG"
    a2 = write_seed(folder, "1_20131030.mat", rng)
    a1 = write_seed(folder, "1_20131027.mat", rng, dtype=np.float32)
    b1 = write_seed(folder, "10_20140601.mat", rng, initials="zjy")
    c1 = write_seed(folder, "2_20140404.mat", rng, initials="jl")
    write_seed_labels(folder)
    (folder / "readme.txt").write_text("not data")
    scipy.io.savemat(folder / "notes.mat", {"x": np.ones(3)})
    ds = open_dataset("seed", tmp_path / "SEED")
    trials = list(ds.trials())
    assert ds.class_names == ("negative", "neutral", "positive") and ds.n_trials() == len(trials) == 4 * 15
    assert ds.participants() == ["1", "2", "10"]  # natural order
    assert [(t.participant, t.session) for t in trials[::15]] == [("1", "1"), ("1", "2"), ("2", "1"), ("10", "1")]
    assert [t.label for t in trials[:15]] == [v + 1 for v in SEED_LABELS]
    for t, arrays in zip(trials[::15], (a1, a2, c1, b1)):
        first = next(iter(arrays.values()))
        assert t.trial == 1 and t.data.dtype == np.float32 and t.data.shape == (first.shape[1], 62)
        np.testing.assert_array_equal(t.data, first.T.astype(np.float32))
    last = trials[14]
    np.testing.assert_array_equal(last.data, a1["djc_eeg15"].T)
    assert last.info.channel_names == tuple(SEED62) and last.info.srate == 200 and last.info.unit == "microvolts"
    assert ds.n_trials(["2"]) == 15 and {t.participant for t in ds.trials(["2"])} == {"2"}
    assert ds.files() == [folder / "1_20131027.mat", folder / "1_20131030.mat", folder / "2_20140404.mat",
                          folder / "10_20140601.mat", folder / "label.mat"]
    assert ds.files(["10"]) == [folder / "10_20140601.mat", folder / "label.mat"]
    assert ds.provenance()["sessions"] == {"1": ["1", "2"], "2": ["1"], "10": ["1"]}
    with pytest.raises(ValueError, match="dataset 'seed' has no recorded pre-trial baseline to keep"):
        ds.trials(baseline="keep")


def test_seed_bad_files_name_the_file_and_what_was_expected(tmp_path, rng):
    write_seed_labels(tmp_path)
    scipy.io.savemat(tmp_path / "3_20140101.mat", {"eeg": np.zeros((62, 10)), "labels": np.ones(15)})
    with pytest.raises(ValueError, match=r"3_20140101\.mat: no <initials>_eegN variables \(expected 15"):
        list(open_dataset("seed", tmp_path).trials())
    (tmp_path / "3_20140101.mat").unlink()
    write_seed(tmp_path, "4_20140101.mat", rng, n_trials=14)
    with pytest.raises(ValueError, match=r"4_20140101\.mat: trials numbered \[1, .*14\], but label\.mat has 15"):
        list(open_dataset("seed", tmp_path).trials())
    write_seed_labels(tmp_path, SEED_LABELS[:14])
    write_seed(tmp_path, "4_20140101.mat", rng, n_trials=15, skip=(7,))
    with pytest.raises(ValueError, match=r"trials numbered .*15\], but label\.mat has 14"):
        list(open_dataset("seed", tmp_path).trials())
    write_seed_labels(tmp_path)
    scipy.io.savemat(tmp_path / "4_20140101.mat", {f"x_eeg{k}": np.zeros((61, 5)) for k in range(1, 16)})
    with pytest.raises(ValueError, match=r"x_eeg1 has shape \(61, 5\); expected 62 channels"):
        list(open_dataset("seed", tmp_path).trials())
    write_seed_labels(tmp_path, [0, 1, 2])
    with pytest.raises(ValueError, match=r"label\.mat: 'label' must be values in \{-1, 0, 1\}"):
        open_dataset("seed", tmp_path)
    (tmp_path / "label.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"label\.mat: no such file"):
        open_dataset("seed", tmp_path)


def test_seed_session_file_as_a_recording(tmp_path, rng):
    arrays = write_seed(tmp_path, "5_20140101.mat", rng)
    write_seed(tmp_path, "5_20131201.mat", rng)
    write_seed_labels(tmp_path)
    rec = read_recording(tmp_path / "5_20140101.mat")
    assert rec.trials[0].session == "2" and rec.class_names == seed.CLASSES
    assert rec.info.source_id == "seed:5:2"
    lengths = [a.shape[1] for a in arrays.values()]
    marks = rec.markers()
    assert marks[:3] == [(0, "trial-start 1 positive"), (lengths[0], "trial-end 1"),
                         (lengths[0], "trial-start 2 neutral")]
    assert rec.n_samples == sum(lengths) and marks[-1] == (sum(lengths), "trial-end 15") and len(marks) == 30
    np.testing.assert_array_equal(rec.select(3).data(), arrays["djc_eeg3"].T.astype(np.float32))
    with pytest.raises(ValueError, match=r"5_20140101\.mat: option\(s\) \['target'\] do not apply .*it takes none"):
        read_recording(tmp_path / "5_20140101.mat", target="valence")
    with pytest.raises(ValueError, match=r"label\.mat: MNE cannot read it"):  # not a SEED session: no SEED name
        read_recording(tmp_path / "label.mat")


# ------------------------------------------------------------------ the generator as a dataset


def test_synthetic_dataset_generates_what_the_generator_gives():
    ds = open_dataset("synthetic", seed=3, layout="deap32", participants=2, sessions=2, trials=2, trial_seconds=2)
    assert ds.class_names == LAYOUTS["deap32"].classes and ds.files() is None and ds.n_trials() == 8
    trials = list(ds.trials(["2"]))
    want = list(synthetic_trials("deap32", [2], [1, 2], 2, seed=3, trial_seconds=2))
    assert [(t.participant, t.session, t.trial, t.label) for t in trials] == \
        [(t.participant, t.session, t.trial, t.label) for t in want]
    np.testing.assert_array_equal(trials[-1].data, want[-1].data)
    assert ds.provenance() == {"dataset": "synthetic", "synthetic": True,
                               "participants": ["1", "2"], "sessions": {"1": ["1", "2"],
                               "2": ["1", "2"]}, "options": {"layout": "deap32", "participants": 2, "sessions": 2,
                                                             "trials": 2, "trial_seconds": 2.0, "difficulty": "easy",
                                                             "seed": 3}}
    assert open_dataset("synthetic").option_values == {"layout": "seed62", "participants": 10, "sessions": 2,
                                                        "trials": 6, "trial_seconds": 20.0, "difficulty": "easy"}
    # the calibrated preset: one session generated in one piece, cut into its trials
    hard = open_dataset("synthetic", seed=3, participants=1, sessions=1, trials=2, trial_seconds=2, difficulty="seed")
    whole, _ = SyntheticEEG("seed62", participant=1, session=1, seed=3, trial_seconds=2, difficulty="seed").generate(800)
    np.testing.assert_array_equal(np.concatenate([t.data for t in hard.trials()]), whole)
    with pytest.raises(ValueError, match="synthetic difficulty 'hard': expected one of easy, seed"):
        open_dataset("synthetic", difficulty="hard")
    with pytest.raises(ValueError, match="synthetic layout 'seed64': expected one of seed62"):
        open_dataset("synthetic", layout="seed64")
    with pytest.raises(ValueError, match="synthetic sessions 0: expected at least 1"):
        open_dataset("synthetic", sessions=0)


# ------------------------------------------------------------------ any file MNE reads


def test_mne_file_eeg_by_type_in_microvolts_with_annotations(tmp_path, rng):
    sfreq = 250.0
    info = mne.create_info(["Fp1", "EOG", "Cz", "STI"], sfreq, ["eeg", "eog", "eeg", "stim"])
    volts = rng.standard_normal((4, 2500)) * 20e-6
    raw = mne.io.RawArray(volts, info, verbose="error")
    raw.set_annotations(mne.Annotations([1.0, 4.0], [0.0, 2.0], ["cue", "movie"]))
    raw.save(tmp_path / "rec_raw.fif", verbose="error")
    rec = read_recording(tmp_path / "rec_raw.fif")
    assert rec.info.channel_names == ("Fp1", "Cz") and rec.info.unit == "microvolts" and rec.info.srate == sfreq
    assert rec.info.extra["not_eeg"] == {"EOG": "EOG", "STI": "STIM"}
    np.testing.assert_allclose(rec.data(), (volts[[0, 2]] * 1e6).T, rtol=1e-6)
    assert rec.markers() == [(0, "trial-start 1"), (250, "cue"), (1000, "movie"), (1500, "movie end"),
                             (2500, "trial-end 1")]
    assert rec.select(1).markers() == rec.markers()
    with pytest.raises(ValueError, match=r"rec_raw\.fif: no trial 2; it has trials 1\.\.1"):
        rec.select(2)
    (tmp_path / "junk.edf").write_bytes(b"not an edf file")
    with pytest.raises(ValueError, match=r"junk\.edf: MNE cannot read it"):
        read_recording(tmp_path / "junk.edf")
    with pytest.raises(ValueError, match=r"option\(s\) \['target'\] do not apply"):
        read_recording(tmp_path / "rec_raw.fif", target="valence")


def test_real_eeglab_recording(real_data_dir):
    path = real_data_dir / "eeglab_32ch_128hz.set"
    rec = read_recording(path)
    raw = mne.io.read_raw(path, preload=True, verbose="error")
    assert rec.info.n_channels == 32 and rec.info.srate == 128.0 and rec.data().shape == (raw.n_times, 32)
    np.testing.assert_allclose(rec.data(), raw.get_data().T * 1e6, rtol=1e-6)
    texts = [t for _, t in rec.markers()]
    assert len(texts) == 154 + 2 and set(texts[1:-1]) == {"square", "rt"}


# ------------------------------------------------------------------ XDF


def _xdf_chunk(tag: int, content: bytes) -> bytes:
    body = struct.pack("<H", tag) + content
    return struct.pack("<BQ", 8, len(body)) + body


def write_xdf(path, streams):
    """A minimal XDF 1.0 file (file header, stream headers, one samples chunk, its ``clock_offsets``
    ``[(collection time, offset)]`` and a footer per stream)."""
    out = [b"XDF:", _xdf_chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')]
    for sid, s in enumerate(streams, 1):
        chans = "".join(f"<channel><label>{lab}</label><unit>{u}</unit><type>{s['type']}</type></channel>"
                        for lab, u in zip(s.get("labels", []), s.get("units", [])))
        n_ch = 1 if s["fmt"] == "string" else len(s["labels"])
        xml = (f'<?xml version="1.0"?><info><name>{s["name"]}</name><type>{s["type"]}</type>'
               f'<channel_count>{n_ch}</channel_count><nominal_srate>{s["srate"]}</nominal_srate>'
               f'<channel_format>{s["fmt"]}</channel_format><desc><channels>{chans}</channels></desc></info>')
        out.append(_xdf_chunk(2, struct.pack("<I", sid) + xml.encode()))
        body = bytearray(struct.pack("<IBQ", sid, 8, len(s["ts"])))
        for t, v in zip(s["ts"], s["values"]):
            body += struct.pack("<Bd", 8, t)
            if s["fmt"] == "string":
                body += struct.pack("<BQ", 8, len(v.encode())) + v.encode()
            else:
                body += np.asarray(v, "<f4").tobytes()
        out.append(_xdf_chunk(3, bytes(body)))
        out += [_xdf_chunk(4, struct.pack("<Idd", sid, t, v)) for t, v in s.get("clock_offsets", ())]
        foot = (f'<?xml version="1.0"?><info><first_timestamp>{s["ts"][0]}</first_timestamp><last_timestamp>'
                f'{s["ts"][-1]}</last_timestamp><sample_count>{len(s["ts"])}</sample_count></info>')
        out.append(_xdf_chunk(6, struct.pack("<I", sid) + foot.encode()))
    path.write_bytes(b"".join(out))


def test_xdf_stream_by_name_or_type_with_markers(tmp_path, rng):
    ts = 100 + np.arange(1000) / 250
    x = rng.standard_normal((1000, 3)).astype(np.float32) * 1e-5
    eeg = dict(name="Amp", type="EEG", srate=250, fmt="float32", labels=["C3", "C4", "Cz"], units=["V"] * 3,
               ts=ts, values=x)
    acc = dict(name="Acc", type="Accelerometer", srate=50, fmt="float32", labels=["x"], units=["g"],
               ts=100 + np.arange(200) / 50, values=np.zeros((200, 1)))
    cues = dict(name="Cues", type="Markers", srate=0, fmt="string", ts=[101.0, 102.5], values=["go", "stop"])
    clicks = dict(name="Clicks", type="Markers", srate=0, fmt="string", ts=[103.0], values=["click"])
    write_xdf(tmp_path / "a.xdf", [acc, eeg, cues, clicks])
    rec = read_recording(tmp_path / "a.xdf")
    assert rec.info.name == "Amp" and rec.info.channel_names == ("C3", "C4", "Cz") and rec.info.srate == 250
    np.testing.assert_allclose(rec.data(), x * 1e6, rtol=1e-6)  # volts in the file, microvolts out
    assert rec.markers() == [(0, "trial-start 1"), (250, "Cues: go"), (625, "Cues: stop"), (750, "Clicks: click"),
                             (1000, "trial-end 1")]
    with pytest.raises(ValueError, match=r"a\.xdf: stream 'Acc' has no EEG channels \(its channel types: Accelerometer\)"):
        read_recording(tmp_path / "a.xdf", stream="acc")
    write_xdf(tmp_path / "b.xdf", [eeg, {**eeg, "name": "Amp2"}])
    with pytest.raises(ValueError, match=r"b\.xdf: 2 streams named or typed 'eeg'; it has 'Amp' \(type 'EEG'\), 'Amp2'"):
        read_recording(tmp_path / "b.xdf")
    assert read_recording(tmp_path / "b.xdf", stream="Amp2").info.name == "Amp2"
    write_xdf(tmp_path / "c.xdf", [{**eeg, "units": ["furlongs"] * 3}])
    with pytest.raises(ValueError, match=r"c\.xdf: stream 'Amp': unknown channel unit\(s\) \['furlongs'\]; expected one of"):
        read_recording(tmp_path / "c.xdf")
