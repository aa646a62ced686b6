"""Whether a stream is flowing and its timestamps can be trusted, judged the same way for every source.

Sources hand control back after every empty poll (``Source.chunks``), so a stall is
seen on the wall clock even while no sample arrives; gaps and jumps are seen in the
timestamps against the nominal rate, whatever clock processing the source did.
"""

from __future__ import annotations

import logging
import time
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


class StreamHealth:
    """Watches one stream's chunks; reports ``stalled``, ``resumed`` and ``gap`` events through ``report``.

    ``resumed`` and ``gap`` carry ``gap_s`` (time between the samples either side; negative when
    the timestamps went back) and ``lost_samples`` (missing against the nominal rate).
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
        return cuts.tolist()

    def _announce(self, event: str, gap: float, lost: int) -> None:
        log.warning("stream %r: %s; %.3f s between samples, %d sample(s) lost (%d in all)",
                    self.name, "data again" if event == "resumed" else "timestamps broke", gap, lost, self.lost_samples)
        self.report(event=event, gap_s=f"{gap:.3f}", lost_samples=lost)
