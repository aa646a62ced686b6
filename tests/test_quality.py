import logging
import threading
import time

import numpy as np
import pylsl
import pytest

from bci_stream.devices.synthetic import SyntheticEEG, SyntheticSource
from bci_stream.outlets import EEGOutlet
from bci_stream.quality import EXCESSIVE, FLAT, LINE_NOISE, NONFINITE, OK, RAILED, QualityMonitor, Thresholds, assess
from bci_stream.stream import Chunk, StreamInfo
from conftest import Keep, cli_run


def _block(layout="seed62", seconds=1.0, participant=1, seed=0):
    gen = SyntheticEEG(layout, participant=participant, seed=seed)
    data, _ = gen.generate(round(seconds * gen.srate))
    return data, gen.srate, gen.info


@pytest.mark.parametrize("layout", ["seed62", "deap32", "brainflow16"])
def test_synthetic_eeg_is_ok_on_every_channel(layout):
    data, srate, _ = _block(layout, seconds=20)
    n = round(srate)
    for i in range(20):
        r = assess(data[i * n : (i + 1) * n], srate)
        assert (r.state == OK).all(), (i, r.state, r.std_uv, r.line_ratio)


def test_each_fault_is_named_on_its_channel_only(rng):
    data, srate, _ = _block()
    data = data.astype(np.float64)
    t = np.arange(len(data)) / srate
    data[:, 0] = 0.0  # disconnected: flat
    data[:, 1] = 3.0  # constant offset: flat as well
    data[:, 2] = 187_500.0  # sitting on the rail
    data[:, 3] = np.clip(data[:, 3] * 20, -200, 200)  # clipped: pinned at both extremes
    data[:, 4] += 80 * np.sin(2 * np.pi * 50 * t)  # mains at 50 Hz
    data[:, 5] += 80 * np.sin(2 * np.pi * 60 * t)  # and at 60 Hz
    data[:, 6] += rng.normal(0, 400, len(data))  # a loose electrode
    data[10:12, 7] = np.nan
    r = assess(data, srate)
    expected = {0: FLAT, 1: FLAT, 2: RAILED, 3: RAILED, 4: LINE_NOISE, 5: LINE_NOISE, 6: EXCESSIVE, 7: NONFINITE}
    for ch, state in expected.items():
        assert r.state[ch] == state, (ch, r.state[ch], r.std_uv[ch], r.line_ratio[ch])
    assert (r.state[8:] == OK).all()


def test_volts_are_judged_in_microvolts():
    data, srate, _ = _block()
    assert (assess(data * 1e-6, srate, to_uv=1e6).state == OK).all()
    # read as microvolts, EEG in volts is far too small: every channel flat
    assert (assess(data * 1e-6, srate).state == FLAT).all()


def test_thresholds_move_the_verdict():
    data, srate, _ = _block()
    assert (assess(data, srate, thresholds=Thresholds(amplitude_uv=1.0)).state == EXCESSIVE).all()
    with pytest.raises(ValueError, match="unknown key.*'flat'"):
        Thresholds.from_dict({"flat": 1.0})


def _chunks(data, srate, size=20, t0=100.0):
    for i in range(0, len(data), size):
        d = data[i : i + size]
        yield Chunk(d.astype(np.float32), t0 + (i + np.arange(len(d))) / srate)


def test_monitor_logs_a_change_once_and_the_recovery(caplog):
    data, srate, info = _block(seconds=30)
    data = data.copy()
    n = round(srate)
    data[5 * n : 25 * n, 3] = 0.0  # FP1..: channel 3 goes flat from second 5 to 25
    mon = QualityMonitor(info, log_every=10.0)
    with caplog.at_level(logging.INFO, logger="bci_stream.quality"):
        for chunk in _chunks(data, srate):
            mon(chunk)
    msgs = [r.getMessage() for r in caplog.records]
    flat = [m for m in msgs if "flat" in m]
    assert len(flat) == 1, msgs
    name = info.channel_names[3]
    assert f"{name} flat (std 0.00 µV)" in flat[0] and repr(info.name) in flat[0]
    back = [m for m in msgs if "back to normal" in m]
    assert len(back) == 1 and name in back[0]
    assert len(msgs) == 2


def test_flapping_channel_is_rate_limited(caplog):
    data, srate, info = _block(seconds=40)
    data = data.copy()
    n = round(srate)
    for s in range(0, 40, 2):  # flat every other second
        data[s * n : (s + 1) * n, 0] = 0.0
    mon = QualityMonitor(info, log_every=10.0)
    with caplog.at_level(logging.INFO, logger="bci_stream.quality"):
        for chunk in _chunks(data, srate):
            mon(chunk)
    assert 1 <= len(caplog.records) <= 4, [r.getMessage() for r in caplog.records]


def test_quality_hook_does_not_change_predictions():
    from bci_stream.bundle import default_bundle_for
    from bci_stream.pipeline import Pipeline

    def run(with_monitor: bool):
        src = SyntheticSource("seed62", realtime=False, seed=3)
        keep = Keep()
        pipe = Pipeline(src.info, default_bundle_for(src.info), sinks=[keep])
        hooks = [QualityMonitor(src.info)] if with_monitor else []
        pipe.run(src.chunks(), duration=8.0, hooks=hooks)
        assert all(h.latest is not None for h in hooks)
        return keep.predictions

    plain, watched = run(False), run(True)
    assert len(plain) == len(watched) > 50
    for a, b in zip(plain, watched):
        assert a.label == b.label and a.window_index == b.window_index
        np.testing.assert_array_equal(a.probabilities, b.probabilities)


def test_run_warns_when_a_channel_goes_flat(uid):
    """`bci-stream run` on an LSL stream whose FZ is disconnected names FZ in a warning."""
    gen = SyntheticEEG("seed62", seed=1, line_noise=None)
    info = StreamInfo(uid, gen.info.channel_names, gen.srate, source_id=uid)
    outlet = EEGOutlet(info)
    fz = info.channel_names.index("FZ")
    stop = threading.Event()

    def push():
        t0 = pylsl.local_clock()
        n = 0
        while not stop.is_set():
            data, _ = gen.next_block()
            data[:, fz] = 0.0
            ts = t0 + (n + np.arange(len(data))) / gen.srate
            n += len(data)
            outlet.push(Chunk(data, ts))
            time.sleep(max(0.0, ts[-1] - pylsl.local_clock()))

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    try:
        r = cli_run("run", "--source", f"lsl:name={uid}", "--name", uid, "--no-state", "-q", "--duration", "3",
                    timeout=60)
    finally:
        stop.set()
        pusher.join()
        outlet.close()
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if "WARNING bci_stream.quality" in line]
    assert len(warnings) == 1, r.stderr
    assert "FZ flat" in warnings[0] and repr(uid) in warnings[0]
