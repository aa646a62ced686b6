"""Drift-free pacing of recorded samples, shared by the ``file:`` source and ``bci-stream replay``.

Sample ``i`` is stamped and released at ``start + i / (srate * speed)`` in the LSL
clock. Each release time is computed from ``start``, never by adding up sleeps,
so scheduling jitter cannot accumulate: a late chunk only makes the next wait less.
"""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import pylsl

from bci_stream.stream import Chunk

#: Wall-clock length of one paced chunk: short enough for live-like latency, long enough to be cheap.
CHUNK_SECONDS = 0.01


class Pacer:
    """Cuts ``[n_samples, n_channels]`` data into chunks on the nominal grid; ``realtime`` waits for each.

    ``lag_mean`` and ``lag_max`` say how late (s) paced chunks left after their
    last sample was due: the replay's own pacing error.
    """

    def __init__(self, srate: float, speed: float = 1.0, realtime: bool = True, chunk: int | None = None):
        if not speed > 0:
            raise ValueError(f"replay speed must be > 0, got {speed}")
        self.rate = float(srate) * float(speed)
        self.realtime = realtime
        # Unpaced runs gain nothing from tiny chunks: 0.1 s of signal each.
        self.chunk = int(chunk or max(1, round(self.rate * CHUNK_SECONDS if realtime else 0.1 * srate)))
        self.start: float | None = None
        self.n_released = 0
        self._lag_sum = 0.0
        self.lag_max = 0.0

    def due(self, index) -> np.ndarray | float:
        """LSL time of sample ``index`` (scalar or array), counted over all passes."""
        return self.start + np.asarray(index, np.float64) / self.rate

    def _release(self, index: int) -> None:
        due = float(self.due(index))
        while (left := due - pylsl.local_clock()) > 0:
            time.sleep(left)
        lag = pylsl.local_clock() - due
        self.n_released += 1
        self._lag_sum += lag
        self.lag_max = max(self.lag_max, lag)

    @property
    def lag_mean(self) -> float:
        return self._lag_sum / self.n_released if self.n_released else 0.0

    def chunks(self, data: np.ndarray, loop: bool = False) -> Iterator[tuple[int, Chunk]]:
        """``(index of the chunk's first sample, chunk)``; ``start`` is taken when the first is asked for.

        Chunks are views of ``data``; with ``loop`` the indices keep counting
        across passes, so timestamps stay on one grid.
        """
        n = len(data)
        if n == 0:
            raise ValueError("nothing to replay: the recording has no samples")
        self.start = pylsl.local_clock()
        i = 0
        while True:
            for a in range(0, n, self.chunk):
                block = data[a : a + self.chunk]
                if self.realtime:
                    self._release(i + len(block) - 1)
                yield i, Chunk(block, self.due(np.arange(i, i + len(block))))
                i += len(block)
            if not loop:
                return
