"""Per-stage timing with preallocated storage, cheap enough for the hot path."""

from __future__ import annotations

import time

import numpy as np


class StageTimer:
    """Keeps the last ``keep`` durations of each stage; ``lap`` charges time since the previous mark."""

    def __init__(self, stages, keep: int = 4096):
        self.stages = tuple(stages)
        self._index = {s: i for i, s in enumerate(self.stages)}
        self._dur = np.zeros((len(self.stages), keep))
        self._n = np.zeros(len(self.stages), np.int64)
        self._mark = 0.0

    def start(self) -> None:
        self._mark = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        i = self._index[stage]
        self._dur[i, self._n[i] % self._dur.shape[1]] = now - self._mark
        self._n[i] += 1
        self._mark = now

    def summary(self) -> dict:
        """Median and p99 per stage in milliseconds over the kept durations."""
        out = {}
        for s, i in self._index.items():
            d = self._dur[i, : min(self._n[i], self._dur.shape[1])]
            if len(d):
                out[s] = {"n": int(self._n[i]), "p50": float(np.median(d) * 1e3), "p99": float(np.percentile(d, 99) * 1e3)}
        return out
