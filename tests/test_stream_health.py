"""A live stream that stops, comes back (as itself or under a new source_id) or jumps in time, end to end:
real LSL outlets in their own processes, `bci-stream run`, and independent inlets on its outputs."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
from conftest import cli, stop
from test_cli_live import _inlet

from bci_stream.bundle import default_bundle_for
from bci_stream.control import parse_fields
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.pipeline import Pipeline
from bci_stream.plugins.sinks import JsonlLog
from bci_stream.stream import Chunk

#: An EEG outlet shaped like the bundled seed62 model's input. Modes: ``data`` pushes synthetic EEG in real time,
#: ``silent`` pushes nothing, ``jumps`` waits for a consumer, then shifts its timestamps +5 s after 3 s and -1 s
#: after 6 s, printing the first timestamp after each jump.
OUTLET = """
import sys, time
import numpy as np, pylsl
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.outlets import EEGOutlet
from bci_stream.stream import Chunk, StreamInfo

name, source_id, mode = sys.argv[1:]
gen = SyntheticEEG("seed62")
g = gen.info
out = EEGOutlet(StreamInfo(name, g.channel_names, g.srate, g.unit, source_id=source_id))
print("ready", flush=True)
if mode == "silent":
    time.sleep(600)
if mode == "jumps":
    out.outlet.wait_for_consumers(30)
jumps = {round(3 * g.srate): 5.0, round(6 * g.srate): -1.0} if mode == "jumps" else {}
t0, sent, offset = pylsl.local_clock(), 0, 0.0
while True:
    n = 10  # 50 ms: the jumps fall on block boundaries
    if int((pylsl.local_clock() - t0) * g.srate) - sent < n:
        time.sleep(0.01)
        continue
    if sent in jumps:
        offset += jumps[sent]
        print("jump", t0 + (sent + 1) / g.srate + offset, flush=True)
    data, _ = gen.generate(n)
    out.push(Chunk(data, t0 + (np.arange(sent, sent + n) + 1) / g.srate + offset))
    sent += n
"""


def _outlet(name, source_id, mode="data"):
    p = subprocess.Popen([sys.executable, "-c", OUTLET, name, source_id, mode], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


class _Watch:
    """Labels and status events of a running `bci-stream run`, with when they arrived here."""

    def __init__(self, prefix):
        self.labels, self.status = _inlet("name", f"{prefix}-labels"), _inlet("name", f"{prefix}-status")
        self.got, self.events = [], []  # (label, timestamp, arrival), (fields, arrival)

    def until(self, done, timeout, what):
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"no {what} within {timeout} s; events: {self.events}"
            samples, ts = self.labels.pull_chunk(timeout=0.0)
            self.got += [(s[0], t, time.monotonic()) for s, t in zip(samples, ts)]
            samples, _ = self.status.pull_chunk(timeout=0.0)
            self.events += [(parse_fields(s[0]), time.monotonic()) for s in samples]
            time.sleep(0.02)

    def event(self, name):
        """The first ``name`` event's fields and arrival, or None."""
        return next(((f, t) for f, t in self.events if f["event"] == name), None)

    def labels_after(self, t):
        return [g for g in self.got if g[2] > t]


def _run(uid, *args):
    return cli("run", "--source", f"lsl:name={uid}", "--name", f"{uid}-out", "--no-state", "-q", *args)


def _stalled(uid, first_id):
    """An outlet that delivered labels and was then killed; the run has said it stalled."""
    outlet, run = _outlet(uid, first_id), _run(uid)
    try:
        watch = _Watch(f"{uid}-out")
        watch.until(lambda: len(watch.got) >= 5, 30, "labels")
        outlet.kill()
        outlet.wait()
        killed = time.monotonic()
        watch.until(lambda: watch.event("stalled"), 3, "stalled event")
    except BaseException:
        stop(run, outlet)
        raise
    return run, watch, killed


def _restart_after_gap(uid, source_id, killed, gap=3.0):
    time.sleep(max(0.0, killed + gap - time.monotonic()))
    return _outlet(uid, source_id), time.monotonic()


def test_restart_with_the_same_source_id_is_reported_and_decoding_resumes(uid):
    run, watch, killed = _stalled(uid, f"{uid}-src")
    outlet, restarted = _restart_after_gap(uid, f"{uid}-src", killed)
    try:
        watch.until(lambda: watch.labels_after(restarted), 5, "labels after the restart")
        assert watch.labels_after(restarted)[0][2] - restarted < 2.5
        watch.until(lambda: watch.event("resumed"), 2, "resumed event")
        fields, _ = watch.event("resumed")
        assert abs(float(fields["gap_s"]) - (restarted - killed)) < 1.0
        assert int(fields["lost_samples"]) > 0.5 * 200 * (restarted - killed)
    finally:
        stop(run, outlet)


def test_restart_with_a_new_source_id_is_found_again(uid):
    run, watch, killed = _stalled(uid, f"{uid}-src")
    outlet, restarted = _restart_after_gap(uid, f"{uid}-src2", killed)
    try:
        watch.until(lambda: watch.labels_after(restarted), 6, "labels after the restart")
        watch.until(lambda: watch.event("resumed"), 2, "resumed event")
    finally:
        stop(run, outlet)


def test_sigterm_while_stalled_ends_the_run_at_once_and_cleanly(uid):
    run, watch, _ = _stalled(uid, f"{uid}-src")
    asked = time.monotonic()
    run.send_signal(signal.SIGTERM)
    try:
        _, err = run.communicate(timeout=5)
        assert time.monotonic() - asked < 1.5
        assert run.returncode == 0 and "done:" in err, err
    finally:
        stop(run)


def test_duration_ends_a_run_whose_stream_never_sends(uid):
    outlet, run = _outlet(uid, f"{uid}-src", "silent"), _run(uid, "--duration", "3")
    try:
        while "running model" not in run.stderr.readline():
            assert run.poll() is None, run.stderr.read()
        started = time.monotonic()
        run.wait(timeout=10)
        assert run.returncode == 0 and time.monotonic() - started < 5
    finally:
        stop(run, outlet)


def test_timestamp_jumps_are_reported_and_no_window_spans_one(uid):
    outlet, run = _outlet(uid, f"{uid}-src", "jumps"), _run(uid)
    try:
        watch = _Watch(f"{uid}-out")
        jumps = [float(outlet.stdout.readline().split()[1]) for _ in range(2)]
        watch.until(lambda: len([f for f, _ in watch.events if f["event"] == "gap"]) == 2, 5, "two gap events")
        watch.until(lambda: watch.got and watch.got[-1][1] > jumps[1] + 1.5, 5, "labels after the second jump")
    finally:
        stop(run, outlet)
    gaps = [float(f["gap_s"]) for f, _ in watch.events if f["event"] == "gap"]
    assert abs(gaps[0] - 5) < 0.1 and abs(gaps[1] + 1) < 0.1
    stamps = [t for _, t, _ in watch.got]
    # A window is 1 s (200 samples): the first one after a jump ends 199 samples into it.
    assert not [t for t in stamps if jumps[0] <= t < jumps[0] + 0.99]
    # Back 1 s: the second before the jump was labelled already; only labels after it can span the jump.
    after = next(i for i, t in enumerate(stamps) if t >= jumps[1] + 0.99)
    assert not [t for t in stamps[after:] if jumps[1] <= t < jumps[1] + 0.99]


def test_window_indices_go_on_counting_delivered_samples_across_gaps(tmp_path):
    """Before: the windower started afresh after a gap numbered its windows from 0 again, so the JSON-lines
    log's ``sample`` restarted at 200 after every gap."""
    gen = SyntheticEEG("seed62", seed=3)
    data, _ = gen.generate(200 * 12)
    # Delivered samples' timestamps: +5 s after 3 s, -1 s after 6 s, +0.6 s after 9 s (at odd indices, off the hop).
    breaks = {601: 5.0, 1203: -1.0, 1807: 0.6}
    ts = 1000 + (np.arange(len(data)) + 1) / 200
    for i, jump in breaks.items():
        ts[i:] += jump
    info = gen.info
    pipe = Pipeline(info, default_bundle_for(info), sinks=[JsonlLog(tmp_path / "log.jsonl")])
    pipe.run(Chunk(data[i : i + 37], ts[i : i + 37]) for i in range(0, len(data), 37))
    pipe.close()
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    samples = np.array([r["sample"] for r in rows])
    assert pipe.health.gaps == 3
    # The window's last sample is the delivered sample just before ``sample``: its timestamp is the label's.
    np.testing.assert_array_equal(ts[samples - 1], [r["timestamp"] for r in rows])
    # Each stretch's windows: the first one ends a window's length into it, then one per hop.
    starts = [0, *breaks, len(data)]
    expected = np.concatenate([np.arange(a + 200, b + 1, 20) for a, b in zip(starts, starts[1:])])
    np.testing.assert_array_equal(samples, expected)
