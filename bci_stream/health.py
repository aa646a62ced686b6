"""Whether a stream is flowing and its timestamps can be trusted, judged the same way for every source.

Sources hand control back after every empty poll (``Source.chunks``), so a stall is
seen on the wall clock even while no sample arrives; gaps and jumps are seen in the
timestamps against the nominal rate, whatever clock processing the source did.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Callable

import numpy as np

from bci_stream.stream import Chunk

log = logging.getLogger("bci_stream.health")

#: Seconds by which consecutive timestamps may stray from the nominal sample period before the stream counts as
#: broken there. Devices that stamp chunks on arrival jitter by tens of milliseconds; restarting the filters costs
#: a window of labels, so only what cannot be jitter counts.
TOLERANCE = 0.25

#: A stall is no data for this many seconds, or for this many chunks of the size the source delivers, if longer.
STALL_SECONDS, STALL_CHUNKS = 1.0, 5

#: The effective rate is fitted over this many seconds of one unbroken stretch and judged once a second of it. It
#: is reported when it strays from the nominal rate by more than ``RATE_OFF`` (windows and filters assume the
#: nominal rate), and again once it is back within ``RATE_BACK``, so a rate near the limit is not reported over and
#: over.
RATE_SPAN, RATE_EVERY, RATE_OFF, RATE_BACK = 10.0, 1.0, 0.01, 0.005


class StreamHealth:
    """Watches one stream's chunks; reports ``stalled``, ``resumed``, ``gap`` and ``rate`` events through ``report``.

    ``resumed`` and ``gap`` carry ``gap_s`` (time between the samples either side; negative when
    the timestamps went back) and ``lost_samples`` (missing against the nominal rate); ``rate`` carries
    ``nominal`` and ``effective`` (Hz).
    """

    def __init__(self, name: str, srate: float, report: Callable[..., None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.name, self.srate = name, srate
        self.report = report or (lambda **_: None)
        self.clock = clock
        self.stalled = False
        self.lost_samples = 0
        self.gaps = 0
        self._last_ts: float | None = None
        self._last_arrival = clock()
        self._chunk_s = 0.0
        #: Effective rate of the last fit (Hz), None before one; whether it is off the nominal rate.
        self.effective_rate: float | None = None
        self.rate_off = False
        # (samples of the stretch so far, timestamp of the last one) at chunk ends, one per 1/50 s of samples at most
        self._ends: deque[tuple[int, float]] = deque()
        self._stretch_n = 0
        self._end_step = max(1, round(srate / 50))
        self._next_fit = 0.0

    def check(self, chunk: Chunk) -> list[int]:
        """Note one chunk (empty when the source had nothing); the indices in it where a new stretch begins."""
        now = self.clock()
        if not len(chunk):
            idle = now - self._last_arrival
            if not self.stalled and idle > max(STALL_SECONDS, STALL_CHUNKS * self._chunk_s):
                self.stalled = True
                log.warning("stream %r: no data for %.1f s; waiting for it", self.name, idle)
                self.report(event="stalled", idle_s=f"{idle:.3f}")
            return []
        ts = chunk.timestamps
        seconds = len(ts) / self.srate
        self._chunk_s = seconds if not self._chunk_s else 0.9 * self._chunk_s + 0.1 * seconds
        self._last_arrival = now
        before = ts if self._last_ts is None else np.concatenate(([self._last_ts], ts))
        steps = np.diff(before)
        cuts = np.flatnonzero(np.abs(steps - 1 / self.srate) > TOLERANCE) + (self._last_ts is None)
        resumed, self.stalled = self.stalled, False
        if resumed and (not len(cuts) or cuts[0] != 0):
            # The samples were only late: nothing is missing.
            self._announce("resumed", 0.0 if self._last_ts is None else float(ts[0] - self._last_ts), 0)
        for cut in cuts:
            gap = float(ts[cut] - (ts[cut - 1] if cut else self._last_ts))
            lost = max(0, round(gap * self.srate) - 1)
            self.lost_samples += lost
            self.gaps += 1
            self._announce("resumed" if resumed and cut == 0 else "gap", gap, lost)
        self._last_ts = float(ts[-1])
        self._measure_rate(ts, cuts[-1] if len(cuts) else None)
        return cuts.tolist()

    def _measure_rate(self, ts: np.ndarray, cut: int | None) -> None:
        """Fit the timestamps of chunk ends on sample counts over the last ``RATE_SPAN`` s of the stretch.

        Chunk ends, not every sample: a source that stamps a chunk on arrival spaces the samples inside it by
        the nominal rate, so only the chunks' ends follow the real rate. A break starts the measurement afresh.
        """
        if cut is not None:
            self._ends.clear()
            self._stretch_n, self._next_fit = 0, ts[cut] + RATE_SPAN
            ts = ts[cut:]
        self._stretch_n += len(ts)
        if self._ends and self._stretch_n - self._ends[-1][0] < self._end_step:
            return
        now = float(ts[-1])
        self._ends.append((self._stretch_n, now))
        while len(self._ends) > 2 and self._ends[1][1] <= now - RATE_SPAN:
            self._ends.popleft()
        if now < self._next_fit or now - self._ends[0][1] < RATE_SPAN:
            return
        self._next_fit = now + RATE_EVERY
        n, t = np.array(self._ends).T
        n -= n.mean()
        self.effective_rate = float(np.dot(n, n) / np.dot(n, t - t.mean()))
        off = abs(self.effective_rate / self.srate - 1)
        if (off <= RATE_BACK) if self.rate_off else (off > RATE_OFF):
            self.rate_off = not self.rate_off
            if self.rate_off:
                log.warning("stream %r: effective rate %.2f Hz over the last %g s, nominal %g Hz: windows and filters "
                            "assume the nominal rate", self.name, self.effective_rate, RATE_SPAN, self.srate)
            else:
                log.info("stream %r: effective rate %.2f Hz, back at the nominal %g Hz", self.name,
                         self.effective_rate, self.srate)
            self.report(event="rate", nominal=f"{self.srate:g}", effective=f"{self.effective_rate:.2f}")

    def _announce(self, event: str, gap: float, lost: int) -> None:
        log.warning("stream %r: %s; %.3f s between samples, %d sample(s) lost (%d in all)",
                    self.name, "data again" if event == "resumed" else "timestamps broke", gap, lost, self.lost_samples)
        self.report(event=event, gap_s=f"{gap:.3f}", lost_samples=lost)
