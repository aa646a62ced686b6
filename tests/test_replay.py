"""Replay of recorded files: the ``file:`` source, drift-free pacing, and ``bci-stream replay`` onto real LSL."""

import json
import time

import mne
import numpy as np
import pylsl
import pytest

from bci_stream.batch import build_features
from bci_stream.bundle import ModelBundle
from bci_stream.pipeline import Pipeline
from bci_stream.devices.files import FileSource, read_recording
from bci_stream.lslmeta import channel_labels
from bci_stream.montages import DEAP32
from bci_stream.outlets import EEGOutlet
from bci_stream.sources import SourceError, open_source
from bci_stream.stream import Chunk, StreamInfo, Trial
from bci_stream.training import TrainSettings, train_bundle
from conftest import Keep, cli, cli_run, stop
from test_datasets import write_deap

REAL = "eeglab_32ch_128hz.set"
#: Replayed timestamps lie on the nominal grid start + i / (rate x speed) to float precision.
GRID_TOLERANCE = 1e-9


def _inlet(prop, value, timeout=30.0, buflen=360):
    found = pylsl.resolve_byprop(prop, value, timeout=timeout)
    assert found, f"no LSL stream {prop}={value}"
    inlet = pylsl.StreamInlet(found[0], max_buflen=buflen)  # no processing: the timestamps as published
    inlet.open_stream(timeout=10)
    return inlet


def _pull_all(inlet, n_expected, proc, deadline, markers=None):
    """Samples until ``n_expected`` came or the replay exited and went quiet; markers are drained alongside.

    Markers are never pulled with a timeout: a blocking pull on a string stream
    whose outlet has gone can wait for its recovery far longer than asked.
    """
    data, ts, marks = [], [], []
    while time.monotonic() < deadline:
        if markers is not None:
            texts, mts = markers.pull_chunk(timeout=0.0)
            marks += [(t[0], u) for t, u in zip(texts, mts)]
        if sum(map(len, ts)) >= n_expected:
            break
        x, t = inlet.pull_chunk(timeout=0.2, max_samples=4096)
        if t:
            data.append(np.asarray(x, np.float32))
            ts.append(np.asarray(t))
        elif proc.poll() is not None:
            break
    if markers is not None:
        time.sleep(0.2)
        texts, mts = markers.pull_chunk(timeout=0.0)
        marks += [(t[0], u) for t, u in zip(texts, mts)]
    data = (np.concatenate(data), np.concatenate(ts)) if ts else (np.empty((0, 0)), np.empty(0))
    return (*data, marks)


def _fif(path, seconds, sfreq=128.0, n_ch=8, annotations=(), seed=0):
    info = mne.create_info([f"E{i}" for i in range(n_ch)], sfreq, "eeg")
    x = np.random.default_rng(seed).standard_normal((n_ch, round(seconds * sfreq))) * 1e-5
    raw = mne.io.RawArray(x, info, verbose="error")
    if annotations:
        raw.set_annotations(mne.Annotations(*zip(*annotations)))
    raw.save(path, verbose="error", overwrite=True)
    return path


# ------------------------------------------------------------------ the file: source


def test_file_source_options_and_errors(tmp_path):
    path = _fif(tmp_path / "a_raw.fif", 2.0)
    src = open_source(f"file:{path}?speed=4&realtime=0&loop=1&chunk=10")
    assert isinstance(src, FileSource) and src.pacer.rate == 4 * 128 and src.loop and not src.pacer.realtime
    for spec, msg in [(f"{path}?speed=0", "speed must be > 0"), (f"{path}?tempo=2", r"unknown option\(s\) \['tempo'\]"),
                      (f"{path}?trial=2", r"a_raw\.fif: no trial 2"), (f"{path}?stream=EEG", r"\['stream'\] do not apply"),
                      (f"{path}?loop=maybe", "expected a yes/no value, got 'maybe'"), ("", "expected file:PATH"),
                      (f"{tmp_path}/missing.fif", r"missing\.fif: no such file")]:
        with pytest.raises(SourceError, match=msg):
            open_source(f"file:{spec}")


def test_loop_keeps_one_grid_and_repeats_markers(tmp_path):
    path = _fif(tmp_path / "b_raw.fif", 1.0, sfreq=100.0, annotations=[(0.5, 0.0, "cue")])
    src = FileSource(path, speed=2.0, loop=True, chunk=30)
    got, marks = [], []
    for chunk in src.chunks():
        got.append(chunk)
        marks += src.due_markers()
        if src.reached >= 300:
            break
    ts = np.concatenate([c.timestamps for c in got])
    np.testing.assert_allclose(ts - src.pacer.start, np.arange(len(ts)) / 200.0, atol=1e-9)
    data = np.concatenate([c.data for c in got])
    np.testing.assert_array_equal(data[200:300], data[:100])
    texts = [t for _, t in marks]
    assert texts[:7] == ["trial-start 1", "cue", "trial-end 1", "trial-start 1", "cue", "trial-end 1", "trial-start 1"]
    idx = [round((t - src.pacer.start) * 200) for t, _ in marks]
    assert idx[:7] == [0, 50, 100, 100, 150, 200, 200]


# ------------------------------------------------------------------ pacing


def test_pacing_stays_on_the_nominal_grid_over_ten_minutes(tmp_path):
    """Ten minutes of 128-Hz EEG replayed at 60x (10 s), published on LSL and read back in this process.

    Published timestamps are compared with the nominal grid ``start + i / (rate * speed)``;
    each chunk's release is timed against the moment its last sample was due.
    """
    path = _fif(tmp_path / "ten_raw.fif", 600.0)
    speed = 60.0
    src = FileSource(path, speed=speed, realtime=True)
    n = len(src.recording.data())
    outlet = EEGOutlet(StreamInfo(f"pace-{tmp_path.name}", src.info.channel_names, 128.0,
                                  source_id=f"pace-{tmp_path.name}"))
    inlet = _inlet("source_id", f"pace-{tmp_path.name}", buflen=1000)
    lags, got = [], []
    try:
        for chunk in src.chunks():
            lags.append(pylsl.local_clock() - chunk.timestamps[-1])
            outlet.push(chunk)
            _, t = inlet.pull_chunk(timeout=0.0, max_samples=100000)
            got += t
        deadline = time.monotonic() + 5
        while len(got) < n and time.monotonic() < deadline:
            got += inlet.pull_chunk(timeout=0.2, max_samples=100000)[1]
    finally:
        inlet.close_stream()
        outlet.close()
    got = np.asarray(got)
    assert len(got) == n
    grid_err = np.abs(got - (src.pacer.start + np.arange(n) / (128.0 * speed)))
    lags = np.asarray(lags) * 1e3
    k = len(lags) // 10
    print(f"\npacing over {n / 128 / 60:.0f} min of recording at {speed:g}x ({len(lags)} chunks): published timestamps "
          f"vs nominal grid max {grid_err.max():.1e} s; release lag median {np.median(lags):.3f} ms, "
          f"p99 {np.percentile(lags, 99):.3f} ms, max {lags.max():.3f} ms; median lag first 10 % "
          f"{np.median(lags[:k]):.3f} ms, last 10 % {np.median(lags[-k:]):.3f} ms")
    assert grid_err.max() < GRID_TOLERANCE
    assert lags.min() >= 0  # never early
    assert np.median(lags) < 5.0
    assert np.median(lags[-k:]) - np.median(lags[:k]) < 2.0  # no drift: the end is as punctual as the start
    assert src.pacer.n_released == len(lags) and src.pacer.lag_max * 1e3 <= lags.max() + 1e-6


# ------------------------------------------------------------------ bci-stream replay


def test_replay_real_recording_onto_lsl(real_data_dir, uid):
    """The real 32-channel recording at 10x, read back by independent inlets: samples, labels, rate, markers."""
    path = real_data_dir / REAL
    raw = mne.io.read_raw(path, preload=True, verbose="error")
    want = (raw.get_data() * 1e6).T.astype(np.float32)
    replay = cli("replay", path, "--speed", 10, "--name", uid, "--wait", 60)
    try:
        markers = _inlet("name", f"{uid}-markers")
        eeg = _inlet("name", uid)  # the replay starts once this consumer is there
        info = eeg.info()
        labels, units = channel_labels(info)[:2]
        assert labels == raw.ch_names and set(units) == {"microvolts"}
        assert info.nominal_srate() == 128.0 and info.channel_count() == 32 and info.type() == "EEG"
        data, ts, marks = _pull_all(eeg, len(want), replay, time.monotonic() + 120, markers)
        assert replay.wait(timeout=30) == 0
    finally:
        stop(replay)
    assert data.shape == want.shape
    np.testing.assert_allclose(data, want, rtol=1e-6, atol=0)
    step = 1 / (128.0 * 10)
    grid_err = np.abs(ts - ts[0] - np.arange(len(ts)) * step).max()
    print(f"\nreal recording at 10x through LSL: received timestamps vs nominal grid max {grid_err:.1e} s")
    assert grid_err < GRID_TOLERANCE
    texts, mts = zip(*marks)
    ann = raw.annotations
    assert list(texts) == ["trial-start 1", *ann.description, "trial-end 1"]
    onsets = np.round((np.asarray(mts[1:-1]) - ts[0]) / step)
    np.testing.assert_array_equal(onsets, raw.time_as_index(ann.onset, use_rounding=True))
    assert mts[-1] == pytest.approx(ts[-1] + step, abs=1e-6)


def test_replay_deap_trial_with_its_true_label(tmp_path, rng, uid):
    write_deap(tmp_path, 1, [[2, 2, 1, 1], [8, 3, 1, 1], [3, 8, 1, 1]], rng)
    replay = cli("replay", tmp_path / "s01.dat", "--trial", 2, "--speed", 100, "--name", uid, "--wait", 60)
    try:
        markers = _inlet("name", f"{uid}-markers")
        eeg = _inlet("name", uid)
        assert channel_labels(eeg.info())[0] == list(DEAP32)
        data, _, marks = _pull_all(eeg, 7680, replay, time.monotonic() + 60, markers)
        assert replay.wait(timeout=30) == 0
    finally:
        stop(replay)
    assert [t for t, _ in marks] == ["trial-start 2 high-valence", "trial-end 2"]
    np.testing.assert_array_equal(data, read_recording(tmp_path / "s01.dat").trials[1].data)
    with pytest.raises(SourceError, match=r"s01\.dat: no trial 4; it has trials 1\.\.3"):
        FileSource(tmp_path / "s01.dat", trial=4)


# ------------------------------------------------------------------ the live pipeline on the real recording


@pytest.fixture
def real_bundle(real_data_dir, tmp_path):
    """A small model on the recording's own channels (its first and second halves as two classes)."""
    rec = read_recording(real_data_dir / REAL)
    x, n = rec.data(), len(rec.data()) // 2
    trials = [Trial("1", "1", k + 1, k, x[k * n : (k + 1) * n], rec.info) for k in (0, 1)]
    fset = build_features(trials, 2, ("first", "second"), "de", 1.0, 0.5, quiet=True)
    return train_bundle(fset, "real-halves", TrainSettings(epochs=20, quiet=True)).save(tmp_path / "real.pt")


def test_live_pipeline_on_the_real_recording_through_lsl(real_data_dir, real_bundle, uid):
    replay = cli("replay", real_data_dir / REAL, "--speed", 10, "--name", uid, "--wait", 60)
    run = None
    try:
        run = cli("run", "--source", f"lsl:name={uid}", "--model", real_bundle, "--name", f"{uid}-out",
                  "--duration", 8, "--no-state", "-q")
        labels = _inlet("name", f"{uid}-out-labels")
        got = []
        while run.poll() is None:
            got += [s[0] for s in labels.pull_chunk(timeout=0.0)[0]]
            time.sleep(0.1)
        got += [s[0] for s in labels.pull_chunk(timeout=0.0)[0]]
        assert run.returncode == 0, run.stderr.read()
    finally:
        stop(replay, *([run] if run else []))
    # 8 s of a 10x stream is 80 s of EEG: about 790 windows at the model's 0.1-s hop
    assert len(got) > 500 and set(got) <= {"first", "second"}


def test_run_on_a_file_directly(real_data_dir, real_bundle, tmp_path, uid):
    log = tmp_path / "p.jsonl"
    r = cli_run("run", "--source", f"file:{real_data_dir / REAL}", "--model", real_bundle, "--no-state", "-q",
                "--name", uid, "--log", log, timeout=300)
    assert r.returncode == 0, r.stderr
    preds = [json.loads(line) for line in log.read_text().splitlines()]
    n, length, hop = 30504, 128, 13  # 1-s windows, 0.1-s hop at 128 Hz
    assert [p["sample"] for p in preds] == list(range(length, n + 1, hop))
    # The same labels as the recording's samples decoded in this process, in one chunk.
    rec, keep = read_recording(real_data_dir / REAL), Keep()
    data = rec.data()
    Pipeline(rec.info, ModelBundle.load(real_bundle), "anonymous", "1", sinks=[keep]).process(
        Chunk(data, np.arange(len(data)) / rec.info.srate))
    assert [p["label"] for p in preds] == [p.label for p in keep.predictions]
    np.testing.assert_allclose([list(p["probabilities"].values()) for p in preds],
                               [p.probabilities for p in keep.predictions], rtol=1e-5, atol=1e-6)
