"""``--dataset bids``: a BIDS-EEG folder written by MNE-BIDS, read back as labelled trials, trained, evaluated and run live."""

import csv
import json
import logging
import shutil
import warnings

import mne
import numpy as np
import pytest
from mne_bids import BIDSPath, write_raw_bids

from bci_stream import registry
from bci_stream.bundle import ModelBundle
from bci_stream.channels import match
from bci_stream.datasets.synthetic import synthetic_trials
from bci_stream.montages import standard_position
from bci_stream.stream import StreamInfo
from conftest import cli, cli_run, stop

SRATE = 200.0
CLASSES = ("negative", "neutral", "positive")
#: A session of participant 01 with these channels marked bad (and their samples garbage).
BAD = {("01", "2"): ["FP1", "CZ"]}
EVENTS = "positive=pos,negative=neg,neutral=neu"  # class order: as first given


def continuous_session(participant: int, session: int, rng, trials: int = 3, trial_seconds: float = 4.0, seed: int = 0):
    """One recording as a lab makes it: generated trials (``seed``: the generator's) with true classes, gaps of
    other EEG between them.

    Returns ``(data [n, 62] µV, channel names, spans)``, spans ``(start, stop, label)`` in samples; gaps have
    irregular lengths, so a boundary off by a sample cuts other samples.
    """
    made = list(synthetic_trials("seed62", [participant], [session], trials, seed=seed, trial_seconds=trial_seconds))
    pieces, spans, at = [], [], 0
    for tr in made:
        gap = (rng.standard_normal((int(rng.integers(250, 330)), tr.data.shape[1])) * 40).astype(np.float32)
        pieces += [gap, tr.data]
        spans.append((at + len(gap), at + len(gap) + len(tr.data), tr.label))
        at += len(gap) + len(tr.data)
    pieces.append((rng.standard_normal((260, made[0].data.shape[1])) * 40).astype(np.float32))
    return np.concatenate(pieces), made[0].info.channel_names, spans


def write_bids(root, participants=3, sessions=2, task="emotion", seed=0, trials=3, trial_seconds=4.0):
    """A BIDS-EEG dataset through ``mne_bids.write_raw_bids`` (BrainVision, electrodes.tsv, channels.tsv with bads).

    Each trial is an event with its duration and its class as trial_type, between a 'fixation' before it and a
    'rating' after it, which are not classes. ``seed`` seeds the generator and the gaps. Returns the truth:
    ``{(sub, ses): (data µV, channels, spans)}``.
    """
    rng = np.random.default_rng(seed)
    truth = {}
    for p in range(1, participants + 1):
        for s in range(1, sessions + 1):
            data, channels, spans = continuous_session(p, s, rng, trials, trial_seconds, seed)
            sub = f"{p:02d}"
            bads = BAD.get((sub, str(s)), [])
            data[:, [channels.index(c) for c in bads]] = 5000.0 * rng.standard_normal((len(data), len(bads)))
            onsets, durations, texts = [], [], []
            for a, b, label in spans:
                onsets += [a / SRATE - 0.5, a / SRATE, b / SRATE + 0.3]
                durations += [0.0, (b - a) / SRATE, 0.0]
                texts += ["fixation", CLASSES[label], "rating"]
            raw = mne.io.RawArray(data.T.astype(np.float64) * 1e-6, mne.create_info(list(channels), SRATE, "eeg"),
                                  verbose="error")
            placed = {c: standard_position(c) for c in channels if standard_position(c) is not None}
            raw.set_montage(mne.channels.make_dig_montage(placed, coord_frame="head"), on_missing="ignore")
            raw.set_annotations(mne.Annotations(onsets, durations, texts))
            raw.info["bads"] = bads
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                write_raw_bids(raw, BIDSPath(subject=sub, session=str(s), task=task, datatype="eeg", root=root),
                               allow_preload=True, format="BrainVision", verbose="error")
            truth[sub, str(s)] = data, channels, spans
    return truth


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("bids") / "root"
    return root, write_bids(root)


@pytest.fixture
def bids_copy(written, tmp_path):
    """A copy of the written dataset, to break."""
    return shutil.copytree(written[0], tmp_path / "root"), written[1]


def open_bids(root, **options):
    return registry.load_dataset("bids")(root, **options)


def events_tsv(root, sub, ses, task="emotion"):
    return root / f"sub-{sub}" / f"ses-{ses}" / "eeg" / f"sub-{sub}_ses-{ses}_task-{task}_events.tsv"


def rewrite_tsv(path, change):
    """Rewrite a BIDS TSV, each row through ``change`` (a dict -> dict, or None to drop the row)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    rows = [r for r in map(change, rows) if r is not None]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


# ------------------------------------------------------------------ trials


def test_trials_are_the_events_samples_in_time_order_on_one_montage(written, caplog):
    root, truth = written
    with caplog.at_level(logging.INFO, logger="bci_stream.datasets.events"):
        d = open_bids(root, events=EVENTS)
        open_bids(root, events=EVENTS)  # train opens it twice: said once
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"bids {root}: 36 events matched no --events value: 'fixation' (18), 'rating' (18)"]
    assert d.class_names == ("pos", "neg", "neu")
    assert d.sessions() == [(p, s) for p in ("01", "02", "03") for s in ("1", "2")]
    assert d.n_trials() == 18 and d.n_trials(["02"]) == 6
    channels = truth["01", "1"][1]
    assert d.montage == channels
    trials = list(d.trials(["01", "03"]))
    assert [(t.participant, t.session, t.trial) for t in trials] == [
        (p, s, k) for p in ("01", "03") for s in ("1", "2") for k in (1, 2, 3)]
    order = {name: i for i, name in enumerate(d.class_names)}
    bad = BAD["01", "2"]
    for t in trials:
        data, _, spans = truth[t.participant, t.session]
        a, b, label = spans[t.trial - 1]
        assert d.class_names[t.label] == {"positive": "pos", "negative": "neg", "neutral": "neu"}[CLASSES[label]]
        assert t.info.channel_names == channels and t.info.srate == SRATE and t.info.unit == "microvolts"
        assert t.info.extra["file"].endswith(f"sub-{t.participant}_ses-{t.session}_task-emotion_eeg.vhdr")
        good = [i for i, c in enumerate(channels) if (t.participant, t.session) != ("01", "2") or c not in bad]
        # BrainVision stores float32 at 0.1 µV resolution; one sample off would be ~40 µV off
        np.testing.assert_allclose(t.data[:, good], data[a:b, good], atol=0.06)
        assert t.data.dtype == np.float32 and order[d.class_names[t.label]] == t.label
    # The bad channels are missing ones: interpolated from the session's good ones, never its garbage
    t = next(t for t in trials if (t.participant, t.session, t.trial) == ("01", "2", 1))
    data, _, (span, *_) = truth["01", "2"]
    kept = [c for c in channels if c not in bad]
    info = StreamInfo("x", kept, SRATE, positions={c: t.info.positions[c] for c in kept if c in t.info.positions})
    want = match(channels, info)(data[span[0] : span[1], [channels.index(c) for c in kept]])
    np.testing.assert_allclose(t.data, want, atol=0.1)
    assert np.abs(t.data[:, [channels.index(c) for c in bad]]).max() < 500  # the garbage is ~5000 µV
    np.testing.assert_allclose(t.info.positions["FP1"], standard_position("FP1"), atol=1e-6)  # electrodes.tsv
    files = {f.name for f in d.files(["02"])}
    assert {"sub-02_ses-1_task-emotion_eeg.vhdr", "sub-02_ses-1_task-emotion_eeg.eeg",
            "sub-02_ses-2_task-emotion_events.tsv", "sub-02_ses-2_task-emotion_channels.tsv",
            "sub-02_ses-2_space-CapTrak_electrodes.tsv"} <= files and not any("sub-01" in f for f in files)


def test_without_events_every_trial_type_is_a_class(bids_copy):
    root, _ = bids_copy
    for p in ("01", "02", "03"):
        for s in ("1", "2"):
            rewrite_tsv(events_tsv(root, p, s), lambda r: None if r["trial_type"] in ("fixation", "rating") else r)
    d = open_bids(root)
    assert d.class_names == CLASSES and d.n_trials() == 18


def test_runs_without_sessions_are_sessions_and_one_session_is_1(tmp_path):
    """``ses`` absent: each run is a session; neither: one session, "1"."""
    rng = np.random.default_rng(3)
    for root, runs in ((tmp_path / "runs", (1, 2)), (tmp_path / "single", (None,))):
        for p in (1, 2):
            for run in runs:
                data, channels, spans = continuous_session(p, run or 1, rng, trials=3, trial_seconds=2.0)
                raw = mne.io.RawArray(data.T * 1e-6, mne.create_info(list(channels), SRATE, "eeg"), verbose="error")
                raw.set_annotations(mne.Annotations([a / SRATE for a, _, _ in spans], [(b - a) / SRATE for a, b, _ in spans],
                                                    [CLASSES[c] for *_, c in spans]))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    write_raw_bids(raw, BIDSPath(subject=str(p), run=run, task="rest", datatype="eeg", root=root),
                                   allow_preload=True, format="BrainVision", verbose="error")
    assert open_bids(tmp_path / "runs").sessions() == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    assert open_bids(tmp_path / "single").sessions() == [("1", "1"), ("2", "1")]


# ------------------------------------------------------------------ evaluate, train, run live

#: What evaluate --online reports for every dataset (SEED's and DEAP's reports have these keys too).
REPORT_KEYS = {"dataset", "features", "norm", "protocol", "classes", "model", "epochs", "seed", "window", "hop",
               "live_pass", "class_aware", "folds", "mean_accuracy", "std_accuracy", "confusion",
               "online_mean_accuracy", "online_std_accuracy", "online_curve", "online_curve_first",
               "online_curve_returning"}


def test_evaluate_loso_online_reports_as_for_seed(written, tmp_path):
    root, _ = written
    res = cli_run("evaluate", root, "--dataset", "bids", "--events", EVENTS, "--protocol", "loso", "--online",
                  "--epochs", "5", "--report", tmp_path / "r.json", "--plots", tmp_path / "plots", "-q", timeout=300)
    assert res.returncode == 0, res.stderr
    r = json.loads((tmp_path / "r.json").read_text())
    assert set(r) == REPORT_KEYS
    assert (r["dataset"], r["classes"]) == ("bids", ["pos", "neg", "neu"])
    assert [f["participant"] for f in r["folds"]] == ["01", "02", "03"]
    assert all(f["online_windows"] > 0 and f["n_windows"] > 0 for f in r["folds"])
    assert len(list((tmp_path / "plots").glob("*.png"))) >= 3
    assert res.stderr.count("36 events matched no --events value: 'fixation' (18), 'rating' (18)") == 1


def test_a_model_trained_on_bids_runs_live_on_a_replayed_file(written, tmp_path, uid):
    root, _ = written
    model = tmp_path / "lab.pt"
    res = cli_run("train", root, "--dataset", "bids", "--events", EVENTS, "--epochs", "5", "-o", model,
                  "-q", timeout=300)
    assert res.returncode == 0, res.stderr
    data = ModelBundle.load(model).report["data"]
    assert (data["dataset"], data["synthetic"], data["participants"]) == ("bids", False, ["01", "02", "03"])
    assert data["sessions"] == {p: ["1", "2"] for p in ("01", "02", "03")} and data["options"]["events"] == EVENTS
    replay = cli("replay", root / "sub-02" / "ses-1" / "eeg" / "sub-02_ses-1_task-emotion_eeg.vhdr", "--name", uid)
    try:
        r = cli_run("run", "--source", f"lsl:name={uid}", "--model", model, "--duration", 5, "--no-state", "-q",
                    "--name", f"{uid}-out")
    finally:
        stop(replay)
    assert r.returncode == 0, r.stderr
    done = next(line for line in r.stderr.splitlines() if line.startswith("done:"))
    assert int(done.split()[1]) > 0


# ------------------------------------------------------------------ errors


def test_errors_name_the_file_and_what_was_expected(bids_copy, tmp_path):
    root, _ = bids_copy
    (tmp_path / "empty").mkdir()
    (tmp_path / "meg" / "sub-01" / "meg").mkdir(parents=True)
    for folder in (tmp_path / "empty", tmp_path / "meg"):
        with pytest.raises(ValueError, match=rf"BIDS root {folder}: no EEG recordings \(expected sub-<label>/"):
            open_bids(folder)
    with pytest.raises(FileNotFoundError, match=r"BIDS root .*nowhere: no such directory"):
        open_bids(tmp_path / "nowhere")

    with pytest.raises(ValueError, match=r"--events value\(s\) \['happy'\] occur nowhere in the dataset; its events: "
                                         r"'fixation' \(18\), 'negative' \(6\), 'neutral' \(6\), 'positive' \(6\), "
                                         r"'rating' \(18\)"):
        open_bids(root, events="happy=pos,negative=neg")
    with pytest.raises(ValueError, match=r"--events: expected VALUE=CLASS\[,VALUE=CLASS\.\.\.\], got 'positive'"):
        open_bids(root, events="positive")

    # participant 03 never had a neutral trial
    for s in ("1", "2"):
        rewrite_tsv(events_tsv(root, "03", s), lambda r: {**r, "trial_type": "fixation"} if r["trial_type"] == "neutral" else r)
    with pytest.raises(ValueError, match=r"bids .*: participant '03' has no trial of class\(es\) \['neu'\]; every "
                                         "participant needs every class"):
        open_bids(root, events=EVENTS)

    path = events_tsv(root, "02", "2")
    rewrite_tsv(path, lambda r: {k: v for k, v in r.items() if k != "trial_type"})
    with pytest.raises(ValueError, match=rf"BIDS events {path}: no column\(s\) trial_type; it has onset, duration, "
                                         r"value, sample \(trials are its rows"):
        open_bids(root, events=EVENTS)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=rf"BIDS events {path}: no such file"):
        open_bids(root, events=EVENTS)


def test_a_trial_without_an_end_names_the_file_and_the_event(bids_copy):
    root, _ = bids_copy
    path = events_tsv(root, "02", "1")
    rewrite_tsv(path, lambda r: {**r, "duration": "n/a"} if r["trial_type"] == "neutral" else r)
    vhdr = path.with_name("sub-02_ses-1_task-emotion_eeg.vhdr")
    with pytest.raises(ValueError, match=rf"{vhdr}: event 'neutral' at \d+\.\d+ s: the trial has no end: no duration, "
                                         r"no --trial-seconds \(give --trial-end TEXT or --trial-seconds S\)"):
        open_bids(root, events=EVENTS)
    # --trial-end: the next 'rating' ends it; --trial-seconds: 4 s after its start
    by_rating = [t for t in open_bids(root, events=EVENTS, trial_end="rating").trials(["02"]) if t.session == "1"]
    by_seconds = [t for t in open_bids(root, events=EVENTS, trial_seconds=4.0).trials(["02"]) if t.session == "1"]
    lengths = [(len(a.data), len(b.data)) for a, b in zip(by_rating, by_seconds)]
    neutral = next(k for k, t in enumerate(by_seconds) if t.label == 2)
    assert lengths[neutral] == (800 + 60, 800)  # 'rating' comes 0.3 s after the trial
    assert all(a == b == 800 for k, (a, b) in enumerate(lengths) if k != neutral)  # durations come first


def test_several_tasks_need_task(bids_copy, tmp_path):
    root, _ = bids_copy
    rng = np.random.default_rng(1)
    data, channels, _ = continuous_session(1, 1, rng, trials=3, trial_seconds=2.0)
    raw = mne.io.RawArray(data.T * 1e-6, mne.create_info(list(channels), SRATE, "eeg"), verbose="error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_raw_bids(raw, BIDSPath(subject="01", session="1", task="rest", datatype="eeg", root=root),
                       allow_preload=True, format="BrainVision", verbose="error")
    with pytest.raises(ValueError, match=rf"BIDS root {root} has tasks emotion, rest: pick one with --task"):
        open_bids(root, events=EVENTS)
    with pytest.raises(ValueError, match=r"no EEG recordings of task 'music'; its tasks: emotion, rest"):
        open_bids(root, events=EVENTS, task="music")
    assert open_bids(root, events=EVENTS, task="emotion").n_trials() == 18
    res = cli_run("train", root, "--dataset", "bids", "--events", EVENTS, "-o", tmp_path / "m.pt")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (f"bci-stream train: error: BIDS root {root} has tasks emotion, rest: "
                                                   "pick one with --task")
