"""Sliding windows anchored to sample indices, so replayed and live data cut alike."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bci_stream.ringbuffer import RingBuffer


@dataclass
class Windows:
    """A batch of windows that became due together."""

    data: np.ndarray  # [n_windows, n_channels, length] float32
    end_times: np.ndarray  # [n_windows] LSL time of each window's last sample
    end_indices: np.ndarray  # [n_windows] absolute index one past each window's last sample

    def __len__(self) -> int:
        return self.data.shape[0]


class Windower:
    """Window ``k`` covers samples ``[origin + k*hop, origin + k*hop + length)`` of the stream.

    Every window that is complete after a push is returned, whatever the chunk
    size: a large chunk is consumed in pieces that fit the ring buffer, so no
    sample a pending window needs is ever overwritten. ``origin`` is the stream's
    sample index of the first sample pushed: a windower started afresh after a
    break in the stream goes on numbering its samples.
    """

    def __init__(self, length: int, hop: int, n_channels: int, spare: int = 4096, origin: int = 0):
        if length < 1 or hop < 1:
            raise ValueError(f"window length and hop must be >= 1 sample, got {length}, {hop}")
        self.length, self.hop, self.origin = int(length), int(hop), int(origin)
        self.ring = RingBuffer(self.length + max(self.hop, spare), n_channels)
        self.next_window = 0

    def restart(self) -> None:
        """Start afresh after a break in the stream, so no window spans it. Sample numbering goes on where the
        delivered samples end, and so does the count of samples overwritten unseen: the run's total, not the
        last stretch's."""
        overwritten = self.ring.overwritten
        self.origin += self.ring.n_written
        self.ring = RingBuffer(self.ring.capacity, self.ring.n_channels)
        self.ring.overwritten = overwritten
        self.next_window = 0

    def _next_start(self) -> int:
        return self.next_window * self.hop

    def push(self, data: np.ndarray, timestamps: np.ndarray) -> Windows:
        starts: list[int] = []
        batches: list[np.ndarray] = []
        times: list[float] = []
        i, n = 0, data.shape[0]
        while i < n:
            # Room left before a sample still needed by the next window would be overwritten.
            needed_from = min(self._next_start(), self.ring.n_written)
            room = self.ring.capacity - (self.ring.n_written - needed_from)
            piece = min(n - i, room)
            self.ring.write(data[i : i + piece], timestamps[i : i + piece])
            i += piece
            due = self._due()
            if due:
                out = np.empty((due, self.ring.n_channels, self.length), np.float32)
                for j in range(due):
                    start = self._next_start()
                    self.ring.read(start, start + self.length, out[j])
                    times.append(self.ring.timestamp(start + self.length - 1))
                    starts.append(start)
                    self.next_window += 1
                batches.append(out)
                self.ring.release(self._next_start())
        if not batches:
            empty = np.empty((0, self.ring.n_channels, self.length), np.float32)
            return Windows(empty, np.empty(0), np.empty(0, np.int64))
        return Windows(
            batches[0] if len(batches) == 1 else np.concatenate(batches),
            np.asarray(times),
            np.asarray(starts, np.int64) + (self.origin + self.length),
        )

    def _due(self) -> int:
        avail = self.ring.n_written - self._next_start() - self.length
        return 0 if avail < 0 else avail // self.hop + 1
