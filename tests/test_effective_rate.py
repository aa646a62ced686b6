"""A stream whose samples come at another rate than it declares is reported with both rates, once, and once more
when it is back; chunk-stamping jitter and gaps never pass for a wrong rate. The source's true rate is what the
test makes it send (stamped as liblsl stamps a chunk pushed with one timestamp), end to end through a real LSL
outlet and `bci-stream run`."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import cli, stop
from test_stream_health import _Watch

from bci_stream.health import StreamHealth
from bci_stream.stream import Chunk


class _Events:
    """The status events a StreamHealth reports, each with the timestamp of the last sample it had seen."""

    def __init__(self):
        self.now, self.events = None, []

    def __call__(self, **fields):
        self.events.append((fields, self.now))

    def named(self, name):
        return [(f, t) for f, t in self.events if f["event"] == name]


def _feed(health, events, chunks):
    for chunk in chunks:
        events.now = chunk.timestamps[-1]
        health.check(chunk)


def _arrival_stamped(rng, rates, nominal=200.0, start=1000.0, poll=0.05, jitter=0.03):
    """A source sending ``rates`` ((samples/s, seconds), ...) pulled every ``poll`` s: each chunk's last sample
    is stamped with its arrival (late by up to ``jitter``), the others back-dated by the nominal period."""
    chunks, t, due, sent = [], start, 0.0, 0
    for rate, seconds in rates:
        for _ in range(round(seconds / poll)):
            t += poll
            due += rate * poll
            n = int(due) - sent
            if n:
                ts = t + rng.uniform(0, jitter) - np.arange(n)[::-1] / nominal
                chunks.append(Chunk(np.zeros((n, 1), np.float32), ts))
                sent += n
    return chunks


def test_a_stream_slower_than_declared_is_reported_once_with_both_rates_and_once_when_back(rng):
    events = _Events()
    health = StreamHealth("s", 200.0, events)
    _feed(health, events, _arrival_stamped(rng, [(150.0, 30.0), (200.0, 40.0)]))
    rate = events.named("rate")
    assert len(rate) == 2 and not events.named("gap"), events.events
    (off, when_off), (back, when_back) = rate
    assert off["nominal"] == "200" and abs(float(off["effective"]) - 150) < 0.5
    assert 1010 <= when_off <= 1012  # as soon as 10 s have been measured
    assert back["nominal"] == "200" and abs(float(back["effective"]) - 200) < 1.0
    assert 1030 < when_back <= 1042  # within the 10 s it takes the fit to hold the right rate only


@pytest.mark.parametrize("rate,reported", [(203.0, True), (197.0, True), (201.4, False), (198.6, False)])
def test_only_a_deviation_over_one_percent_is_reported(rng, rate, reported):
    events = _Events()
    health = StreamHealth("s", 200.0, events)
    _feed(health, events, _arrival_stamped(rng, [(rate, 40.0)]))
    assert len(events.named("rate")) == int(reported), events.events
    assert abs(health.effective_rate - rate) < 0.2


def test_chunk_jitter_of_a_right_rate_is_not_a_wrong_rate(rng):
    """Chunks stamped up to 0.1 s late: every fit over 10 s stays within 0.5 %, where a wrong rate counts as back."""
    events = _Events()
    health = StreamHealth("s", 200.0, events)
    fits = []
    for chunk in _arrival_stamped(rng, [(200.0, 120.0)], poll=0.13, jitter=0.1):
        events.now = chunk.timestamps[-1]
        health.check(chunk)
        if health.effective_rate is not None:
            fits.append(health.effective_rate)
    assert not events.events and fits
    assert np.max(np.abs(np.array(fits) / 200 - 1)) < 0.005


@pytest.mark.parametrize("jump", [5.0, -1.0, 0.5])
def test_gaps_and_jumps_are_left_out_of_the_rate(jump):
    """Timestamps of a right-rate stream jump by ``jump`` s every 7 s: gaps are reported, never a rate."""
    events = _Events()
    health = StreamHealth("s", 200.0, events)
    n = 200 * 60
    ts = 1000 + np.arange(n) / 200 + jump * (np.arange(n) // 1400)
    for i in range(0, n, 10):
        events.now = ts[i + 9]
        health.check(Chunk(np.zeros((10, 1), np.float32), ts[i : i + 10]))
    assert len(events.named("gap")) == 8 and not events.named("rate"), events.events
    assert health.effective_rate is None  # no stretch was 10 s long


def test_the_rate_is_measured_again_after_a_gap(rng):
    """150 Hz, a 5-s gap, then 200 Hz: the fit after the gap holds only the new stretch."""
    events = _Events()
    health = StreamHealth("s", 200.0, events)
    before = _arrival_stamped(rng, [(150.0, 12.0)])
    after = _arrival_stamped(rng, [(200.0, 12.0)], start=before[-1].timestamps[-1] + 5)
    _feed(health, events, before + after)
    assert [f["event"] for f, _ in events.events] == ["rate", "gap", "rate"]
    assert abs(float(events.events[2][0]["effective"]) - 200) < 1.0
    assert events.events[2][1] - after[0].timestamps[0] <= 11  # from the gap on, not from before it


#: An outlet declaring 200 Hz (seed62's layout) that sends 150 samples a second, each chunk pushed with one
#: timestamp (its arrival), as a device whose rate was mis-declared would.
SLOW_OUTLET = """
import sys, time
import pylsl
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.outlets import EEGOutlet
from bci_stream.stream import StreamInfo

name, rate = sys.argv[1], float(sys.argv[2])
gen = SyntheticEEG("seed62")
g = gen.info
out = EEGOutlet(StreamInfo(name, g.channel_names, g.srate, g.unit, source_id=name + "-src"))
print("ready", flush=True)
t0, sent = pylsl.local_clock(), 0
while True:
    time.sleep(0.04)
    n = int((pylsl.local_clock() - t0) * rate) - sent
    if n > 0:
        data, _ = gen.generate(n)
        out.outlet.push_chunk(data.tolist(), pylsl.local_clock())
        sent += n
"""


def test_a_live_stream_at_150_hz_declared_200_is_reported_on_the_status_stream(uid):
    outlet = subprocess.Popen([sys.executable, "-c", SLOW_OUTLET, uid, "150"], stdout=subprocess.PIPE, text=True)
    assert outlet.stdout.readline().strip() == "ready"
    run = cli("run", "--source", f"lsl:name={uid}", "--name", f"{uid}-out", "--no-state", "-q")
    try:
        watch = _Watch(f"{uid}-out")
        watch.until(lambda: watch.event("rate"), 40, "rate event")
        fields, at = watch.event("rate")
        watch.until(lambda: watch.labels_after(at), 10, "labels after the rate event")  # decoding goes on
    finally:
        stop(run, outlet)
    _, err = run.communicate()
    assert fields["nominal"] == "200" and abs(float(fields["effective"]) - 150) < 1.5, fields
    assert "effective rate" in err and "nominal 200 Hz" in err, err
