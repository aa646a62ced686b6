"""``--dataset recordings``: a lab's XDF (and other) files listed in recordings.csv, cut into trials at their markers."""

import json
import logging

import mne
import numpy as np
import pytest

from bci_stream import registry
from bci_stream.devices.files import read_recording
from conftest import cli_run
from test_bids import CLASSES, REPORT_KEYS, SRATE, continuous_session
from test_datasets import write_xdf

EVENTS = "stim/negative=negative,stim/neutral=neutral,stim/positive=positive"
T0 = 5000.25


def marks_of(spans, end_after=0):
    """What PsychoPy sends around each trial: a fixation cross, the stimulus, its end, a rating screen."""
    out = []
    for a, b, label in spans:
        out += [(a - 100, "fixation"), (a, f"stim/{CLASSES[label]}"), (b + end_after, "end"), (b + 60, "rating")]
    return out


def write_session_xdf(path, data, channels, marks, rng, t0=T0, offset=-7.5, drift=3e-5):
    """EEG stamped ``t0 + i / rate``; markers at their samples' times (jittered by under a third of a sample) but
    stamped by a clock ``offset + drift * t`` away from the EEG's, with the clock-offset records LabRecorder writes.
    Only pyxdf's clock synchronization brings them back onto the EEG's samples."""
    true = t0 + np.array([i for i, _ in marks]) / SRATE + rng.uniform(-0.3, 0.3, len(marks)) / SRATE
    # pyxdf maps a stamp w to w + f(w), f(w) = offset + drift * (w - t0), fitted to the records (w, f(w))
    written = (true - offset + drift * t0) / (1 + drift)
    clock = [(w, offset + drift * (w - t0)) for w in np.linspace(written.min() - 5, written.max() + 5, 8)]
    eeg = dict(name="Amp", type="EEG", srate=SRATE, fmt="float32", labels=list(channels),
               units=["microvolts"] * len(channels), ts=t0 + np.arange(len(data)) / SRATE, values=data,
               clock_offsets=[(w, 0.0) for w, _ in clock])  # the recording computer's own clock
    markers = dict(name="PsychoPy", type="Markers", srate=0, fmt="string", ts=written,
                   values=[text for _, text in marks], clock_offsets=clock)
    write_xdf(path, [eeg, markers])


def write_recordings(root, seed=0):
    """3 participants x 2 sessions of 3 trials, as a lab records them: XDF files, one session recorded in two files,
    one session an MNE file whose annotations last (and whose 'end' markers come late: durations come first).

    Returns the truth, ``{(participant, session): ([trial data in order], [their labels])}``, and the manifest's rows.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    truth, rows = {}, []
    for p in (1, 2, 3):
        for s in (1, 2):
            data, channels, spans = continuous_session(p, s, rng)
            key = (f"P{p}", str(s))
            truth[key] = [data[a:b] for a, b, _ in spans], [label for *_, label in spans]
            if key == ("P2", "2"):  # recorded in two files: the recording was stopped after trial 2
                cut = spans[2][0] - 150
                write_session_xdf(root / "P2_s2a.xdf", data[:cut], channels, marks_of(spans[:2]), rng)
                second = [(a - cut, b - cut, label) for a, b, label in spans[2:]]
                write_session_xdf(root / "P2_s2b.xdf", data[cut:], channels, marks_of(second), rng, t0=T0 + 400)
                rows += [("P2_s2a.xdf", *key), (str(root / "P2_s2b.xdf"), *key)]  # relative or absolute
            elif key == ("P3", "2"):
                raw = mne.io.RawArray(data.T * 1e-6, mne.create_info(list(channels), SRATE, "eeg"), verbose="error")
                marks = marks_of(spans, end_after=40)
                lasting = {a: (b - a) / SRATE for a, b, _ in spans}
                raw.set_annotations(mne.Annotations([i / SRATE for i, _ in marks],
                                                    [lasting[i] if t.startswith("stim/") else 0.0 for i, t in marks],
                                                    [t for _, t in marks]))
                raw.save(root / "P3_s2_raw.fif", verbose="error")
                rows.append(("P3_s2_raw.fif", *key))
            else:
                write_session_xdf(root / f"P{p}_s{s}.xdf", data, channels, marks_of(spans), rng)
                rows.append((f"P{p}_s{s}.xdf", *key))
    write_manifest(root, rows)
    return truth, rows


def write_manifest(root, rows, header="path,participant,session"):
    (root / "recordings.csv").write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("recordings") / "lab"
    return root, *write_recordings(root)


def open_recordings(root, **options):
    return registry.load_dataset("recordings")(root, **options)


def test_markers_on_an_offset_clock_cut_trials_to_the_sample(written, caplog):
    root, truth, _ = written
    # pyxdf applies the clock offsets: every marker lands on the sample it was sent at
    rec = read_recording(root / "P1_s1.xdf")
    stims = [a.onset for a in rec.annotations if a.text.startswith("stim/")]
    data = rec.data()
    assert [np.array_equal(data[i : i + len(t)], t) for i, t in zip(stims, truth["P1", "1"][0])] == [True] * 3

    with caplog.at_level(logging.INFO, logger="bci_stream.datasets.events"):
        d = open_recordings(root, events=EVENTS, trial_end="end")
    assert [r.getMessage() for r in caplog.records if r.name == "bci_stream.datasets.events"] == [
        f"recordings {root}: 36 markers matched no --events value: 'fixation' (18), 'rating' (18)"]
    assert d.class_names == ("negative", "neutral", "positive")
    assert d.sessions() == [(f"P{p}", s) for p in (1, 2, 3) for s in ("1", "2")]
    got = {}
    for t in d.trials():
        got.setdefault((t.participant, t.session), []).append(t)
    for key, (datas, labels) in truth.items():
        trials = got[key]
        assert [t.trial for t in trials] == [1, 2, 3] and [t.label for t in trials] == labels
        for t, want in zip(trials, datas):
            assert t.data.shape == want.shape  # exact boundaries: not one sample more or less
            np.testing.assert_allclose(t.data, want, rtol=1e-5, atol=1e-4)
    assert [t.info.extra["file"].rsplit("/", 1)[1] for t in got["P2", "2"]] == ["P2_s2a.xdf"] * 2 + ["P2_s2b.xdf"]
    assert {f.name for f in d.files(["P2"])} == {"recordings.csv", "P2_s1.xdf", "P2_s2a.xdf", "P2_s2b.xdf"}


def test_evaluate_online_on_recordings(written, tmp_path):
    """On a headset's montage too: Iz, which the recordings lack, is interpolated offline and in the online replay."""
    root, *_ = written
    res = cli_run("evaluate", root, "--dataset", "recordings", "--events", EVENTS, "--trial-end", "end",
                  "--channels", "FP1,FZ,CZ,PZ,O1,O2,T7,T8,Iz", "--protocol", "loso", "--online", "--epochs", "5",
                  "--report", tmp_path / "r.json", "-q", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "montage: training on 9 channel(s): FP1, FZ, CZ, PZ, O1, O2, T7, T8, Iz" in res.stderr
    r = json.loads((tmp_path / "r.json").read_text())
    assert set(r) == REPORT_KEYS and r["dataset"] == "recordings"
    assert [f["participant"] for f in r["folds"]] == ["P1", "P2", "P3"] and all(f["online_windows"] for f in r["folds"])
    assert res.stderr.count("36 markers matched no --events value: 'fixation' (18), 'rating' (18)") == 1


def test_where_a_trial_ends(tmp_path):
    """Its duration, else the next --trial-end marker before the next trial, else --trial-seconds; else an error."""
    rng = np.random.default_rng(5)
    data, channels, spans = continuous_session(1, 1, rng)
    marks = [m for m in marks_of(spans) if m != (spans[1][1], "end")]  # trial 2's end marker was lost
    write_session_xdf(tmp_path / "a.xdf", data, channels, marks, rng)
    write_manifest(tmp_path, [("a.xdf", "1", "1")])
    with pytest.raises(ValueError, match=rf"recordings\.csv row 2: {tmp_path / 'a.xdf'}: event 'stim/\w+' at "
                                         r"\d+\.\d{3} s: the trial has no end: no duration, no 'end' event before the "
                                         r"next trial, no --trial-seconds \(give --trial-end TEXT or --trial-seconds S\)"):
        open_recordings(tmp_path, events=EVENTS, trial_end="end")
    trials = list(open_recordings(tmp_path, events=EVENTS, trial_end="end", trial_seconds=3.0).trials())
    assert [len(t.data) for t in trials] == [800, 600, 800]  # its own 'end' never stands in for the next trial's
    np.testing.assert_array_equal(trials[1].data, data[spans[1][0] : spans[1][0] + 600])
    trials = list(open_recordings(tmp_path, events=EVENTS, trial_seconds=2.5).trials())
    assert [len(t.data) for t in trials] == [500] * 3
    with pytest.raises(ValueError, match=r"does not lie within the recording"):
        open_recordings(tmp_path, events=EVENTS, trial_seconds=60.0)


def test_errors_name_the_row_the_file_and_what_was_expected(written, tmp_path):
    root, _, rows = written
    lab = tmp_path / "lab"
    lab.mkdir()
    with pytest.raises(FileNotFoundError, match=rf"recordings {lab / 'recordings.csv'}: no such file \(expected a "
                                                r"recordings\.csv with columns path, participant, session"):
        open_recordings(lab, events=EVENTS)
    write_manifest(lab, [("a.xdf", "1")], header="file,participant")
    with pytest.raises(ValueError, match=r"recordings\.csv: no column\(s\) path, session; it has file, participant"):
        open_recordings(lab, events=EVENTS)

    absolute = [(str(root / path) if not path.startswith("/") else path, p, s) for path, p, s in rows]
    write_manifest(lab, [*absolute[:2], ("gone.xdf", "P9", "1")])
    with pytest.raises(FileNotFoundError, match=rf"recordings\.csv row 4: {lab / 'gone.xdf'}: no such file"):
        open_recordings(lab, events=EVENTS)
    (lab / "junk.xdf").write_bytes(b"not an XDF file")
    write_manifest(lab, [*absolute[:2], ("junk.xdf", "P9", "1")])
    with pytest.raises(ValueError, match=r"recordings\.csv row 4: XDF file .*junk\.xdf: pyxdf cannot read it"):
        open_recordings(lab, events=EVENTS)
    cues = dict(name="PsychoPy", type="Markers", srate=0, fmt="string", ts=[1.0], values=["stim/neutral"])
    write_xdf(lab / "markers_only.xdf", [cues])
    write_manifest(lab, [*absolute[:2], ("markers_only.xdf", "P9", "1")])
    with pytest.raises(ValueError, match=r"recordings\.csv row 4: XDF file .*markers_only\.xdf: no streams named or "
                                         r"typed 'eeg'; it has 'PsychoPy' \(type 'Markers'\)"):
        open_recordings(lab, events=EVENTS)
    rng = np.random.default_rng(2)
    eeg = dict(name="Amp", type="EEG", srate=SRATE, fmt="float32", labels=["C3", "C4"], units=["microvolts"] * 2,
               ts=np.arange(400) / SRATE, values=rng.standard_normal((400, 2)))
    write_xdf(lab / "eeg_only.xdf", [eeg])
    write_manifest(lab, [*absolute[:2], ("eeg_only.xdf", "P9", "1")])
    with pytest.raises(ValueError, match=rf"recordings\.csv row 4: {lab / 'eeg_only.xdf'}: no markers: it has no "
                                         "stream of type Markers, or an empty one"):
        open_recordings(lab, events=EVENTS)

    with pytest.raises(ValueError, match=r"dataset 'recordings' needs --events TEXT=CLASS,\.\.\.: which markers start a "
                                         r"trial, and of which class; its files' markers: 'end' \(18\), 'fixation' "
                                         r"\(18\), 'rating' \(18\), 'stim/negative' \(6\)"):
        open_recordings(root)
    with pytest.raises(ValueError, match=r"--events value\(s\) \['stim/happy'\] occur nowhere in the dataset; its "
                                         r"markers: 'end' \(18\)"):
        open_recordings(root, events="stim/happy=positive,stim/neutral=neutral", trial_end="end")
    data, channels, spans = continuous_session(9, 1, rng)
    write_session_xdf(lab / "p9.xdf", data, channels, marks_of([s for s in spans if CLASSES[s[2]] == "neutral"]), rng)
    write_manifest(lab, [*absolute[:2], ("p9.xdf", "P9", "1")])
    res = cli_run("evaluate", lab, "--dataset", "recordings", "--events", EVENTS, "--trial-end", "end")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        f"bci-stream evaluate: error: recordings {lab}: participant 'P9' has no trial of class(es) ['negative', "
        "'positive']; every participant needs every class: map fewer classes with --events, or leave the participant out")
