"""The command-line contract end to end: separate processes, real LSL, an independent inlet."""

import time

import numpy as np
import pylsl
import pytest

from conftest import ROOT, cli, cli_run, stop

#: Share of labels matching the truth stream in the first 20 s of a new person, as measured, less a margin.
LIVE_FLOOR = 0.55  # measured 0.682-0.688 in four runs


def _inlet(prop, value, timeout=30):
    found = pylsl.resolve_byprop(prop, value, timeout=timeout)
    assert found, f"no LSL stream {prop}={value}"
    inlet = pylsl.StreamInlet(found[0], processing_flags=pylsl.proc_clocksync)
    inlet.open_stream(timeout=5)
    return inlet


def _labels_of(inlet):
    labels, ch = [], inlet.info().desc().child("channels").child("channel")
    while not ch.empty():
        labels.append(ch.child_value("label"))
        ch = ch.next_sibling("channel")
    return labels


def _drain(inlet, into, recv=None):
    samples, ts = inlet.pull_chunk(timeout=0.0)
    into += [(s[0] if len(s) == 1 else s, t) for s, t in zip(samples, ts)]
    if recv is not None:
        recv += [pylsl.local_clock()] * len(ts)


def test_simulate_then_run_publishes_labels_at_hop_rate(uid, tmp_path):
    # A person and seed the bundled model was not trained on (participants 1-10, seed 0).
    sim = cli("simulate", "--layout", "seed62", "--name", uid, "--trial", "4", "--duration", "60",
              "--participant", "77", "--seed", "5")
    run = None
    try:
        eeg = _inlet("name", uid)
        truth = _inlet("name", f"{uid}-truth")
        run = cli("run", "--source", f"lsl:name={uid}", "--participant", "1", "--session", "1", "--duration", "20",
                  "--name", f"{uid}-out", "--no-state", "--log", tmp_path / "p.jsonl")
        labels_in = _inlet("name", f"{uid}-out-labels")
        probs = _inlet("name", f"{uid}-out-probabilities")
        classes = _labels_of(probs)
        assert classes == ["negative", "neutral", "positive"]
        meta = probs.info().desc().child("bci_stream")
        assert meta.child_value("model_provenance").startswith("synthetic EEG from bci-stream's generator")
        assert meta.child_value("model_synthetic") == "True"
        assert labels_in.info().desc().child("bci_stream").child_value("participant") == "1"
        got, recv, eeg_ts, marks = [], [], [], []
        while run.poll() is None:
            _drain(labels_in, got, recv)
            _drain(truth, marks)
            s, t = eeg.pull_chunk(timeout=0.0, max_samples=100000)
            eeg_ts += list(t)
            time.sleep(0.02)
        _drain(labels_in, got, recv)
        out, err = run.communicate()
        assert run.returncode == 0, err
    finally:
        stop(*(p for p in (run, sim) if p is not None))
    labels = [g[0] for g in got]
    ts = np.array([g[1] for g in got])
    assert set(labels) <= set(classes)
    assert np.all(np.diff(ts) > 0)
    hop = 0.1
    span = ts[-1] - ts[0]
    assert span > 10 and len(ts) >= 0.9 * span / hop  # ten labels a second
    np.testing.assert_allclose(np.diff(ts), hop, atol=0.01)
    eeg_ts = np.array(eeg_ts)
    inside = (ts >= eeg_ts[0]) & (ts <= eeg_ts[-1])
    nearest = np.abs(eeg_ts[np.searchsorted(eeg_ts, ts[inside]).clip(0, len(eeg_ts) - 1)] - ts[inside])
    assert inside.sum() > 50 and np.all(nearest < hop)
    assert np.median(np.array(recv) - ts) < hop  # labels arrive promptly (pull loop polls every 20 ms)
    assert {m[0] for m in marks} <= set(classes) and len(marks) >= 3  # truth changes every 4 s
    # Each label whose 1-s window lies inside one truth segment, against that segment's emotion.
    change = np.array([m[1] for m in marks])
    scored = []
    for label, t in got:
        segment = np.searchsorted(change, [t - 1.0, t], side="right") - 1
        if segment[0] >= 0 and segment[0] == segment[1]:
            scored.append(label == marks[segment[1]][0])
    print(f"\nlive labels against the truth stream: {np.mean(scored):.3f} of {len(scored)}")
    assert len(scored) > 100 and np.mean(scored) > LIVE_FLOOR
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == len(labels)
    assert "predictions" in err
    assert "not on real EEG" not in err  # the generator the model was trained on: no warning


def test_brainflow_synthetic_board_publishes_labels(uid):
    # The board's test sines reach 1 mV, which the artifact rule rightly flags on half its channels; off, to decode.
    run = cli("run", "--source", "brainflow:synthetic", "--duration", "10", "--name", uid, "--no-state", "-q",
              "--no-artifacts")
    try:
        inlet = _inlet("name", f"{uid}-labels")
        classes = _labels_of(_inlet("name", f"{uid}-probabilities"))
        got = []
        while run.poll() is None:
            _drain(inlet, got)
            time.sleep(0.05)
        _drain(inlet, got)
        out, err = run.communicate()
        assert run.returncode == 0, err
    finally:
        stop(run)
    assert len(got) > 40 and {g[0] for g in got} <= set(classes)
    assert "running model 'brainflow16'" in err
    # BrainFlow's synthetic board is not bci-stream's generator: the synthetic model's labels are flagged.
    assert err.count("was trained on synthetic EEG") == 1 and "mean nothing about this person" in err


@pytest.mark.parametrize("source,model,message", [
    ("nosuch:x", None, "unknown source 'nosuch'"),
    ("lsl:name=nobody-is-here?timeout=1", None, "no LSL stream with name='nobody-is-here' appeared within 1 s"),
    ("synthetic:deap32?realtime=0", ROOT / "plugins/bundles/brainflow16.pt",
     "lacks 6 of model brainflow16's 16 channels (38%, above the 25% that may be interpolated): "
     "PO7, PO8, F5, F1, F2, F6; or train a model for this montage"),
    ("synthetic:seed62", ROOT / "README.md", "not a bci-stream bundle"),
    ("synthetic:seed62", "seed99", "--model seed99: no such file, and no bundled model of that name; bundled models: "
                                   "brainflow16, deap32, seed62"),
])
def test_bad_input_gives_clear_error(source, model, message):
    args = ["run", "--source", source, "--no-state"] + (["--model", model] if model else [])
    r = cli_run(*args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_devices_lists_sources_and_layouts():
    r = cli_run("devices", "--wait", "0.2")
    assert r.returncode == 0
    for word in ("synthetic", "brainflow", "lsl", "seed62 (62 ch, 200 Hz)", "deap32 (32 ch, 128 Hz)"):
        assert word in r.stdout
    # Each shipped model, with what it was trained on.
    for name, channels in (("seed62", 62), ("deap32", 32), ("brainflow16", 16)):
        line = next(line for line in r.stdout.splitlines() if line.strip().startswith(name + " "))
        assert f"{channels} ch" in line and "trained on synthetic EEG from bci-stream's generator: 10 participants" in line
