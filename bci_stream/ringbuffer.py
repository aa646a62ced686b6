"""Preallocated channel-major ring buffer addressed by absolute sample index."""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Holds the last ``capacity`` samples; writing never allocates.

    Samples are addressed by their absolute index since the stream began, so a
    reader asks for ``[start, stop)`` and gets exactly those samples or an error
    if they were already overwritten. ``overwritten`` counts samples pushed out
    before the reader released them, i.e. data a consumer never saw.
    """

    def __init__(self, capacity: int, n_channels: int):
        if capacity < 1 or n_channels < 1:
            raise ValueError(f"ring buffer needs capacity and channels >= 1, got {capacity}, {n_channels}")
        self.capacity = int(capacity)
        self.n_channels = int(n_channels)
        self._data = np.zeros((self.n_channels, self.capacity), np.float32)
        self._times = np.zeros(self.capacity, np.float64)
        self.n_written = 0
        self.released = 0
        self.overwritten = 0

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self.n_written - self.capacity)

    def write(self, data: np.ndarray, timestamps: np.ndarray) -> None:
        """Append ``data`` [n, n_channels]; the oldest samples make room."""
        n = data.shape[0]
        if data.shape[1:] != (self.n_channels,):
            raise ValueError(f"ring buffer holds {self.n_channels} channels, got data of shape {data.shape}")
        if n > self.capacity:
            skipped = n - self.capacity
            self._count_overwrite(self.n_written + skipped)
            self.n_written += skipped
            data, timestamps = data[skipped:], timestamps[skipped:]
            n = self.capacity
        self._count_overwrite(self.n_written + n)
        pos = self.n_written % self.capacity
        first = min(n, self.capacity - pos)
        self._data[:, pos : pos + first] = data[:first].T
        self._times[pos : pos + first] = timestamps[:first]
        if first < n:
            self._data[:, : n - first] = data[first:].T
            self._times[: n - first] = timestamps[first:]
        self.n_written += n

    def _count_overwrite(self, new_end: int) -> None:
        lost = new_end - self.capacity - max(self.released, self.oldest)
        if lost > 0:
            self.overwritten += lost
            self.released = new_end - self.capacity

    def release(self, upto: int) -> None:
        """Tell the buffer that samples before ``upto`` are no longer needed."""
        self.released = max(self.released, min(upto, self.n_written))

    def read(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        """Copy samples ``[start, stop)`` into ``out`` [n_channels, stop-start]."""
        if start < self.oldest or stop > self.n_written or start > stop:
            raise IndexError(
                f"samples [{start}, {stop}) not held; buffer holds [{self.oldest}, {self.n_written})"
            )
        a, b = start % self.capacity, stop - start
        first = min(b, self.capacity - a)
        out[:, :first] = self._data[:, a : a + first]
        if first < b:
            out[:, first:b] = self._data[:, : b - first]
        return out

    def timestamp(self, index: int) -> float:
        if not self.oldest <= index < self.n_written:
            raise IndexError(f"sample {index} not held; buffer holds [{self.oldest}, {self.n_written})")
        return float(self._times[index % self.capacity])
