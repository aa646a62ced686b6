"""The two contracts every source honours: what a stream is, and one chunk of it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Units the pipeline accepts; a source converts to one of them and says which.
UNITS = ("microvolts", "volts")


@dataclass(frozen=True)
class StreamInfo:
    """Static description of an EEG stream, shared by sources, models and outlets."""

    name: str
    channel_names: tuple[str, ...]
    srate: float
    unit: str = "microvolts"
    source_id: str = ""
    device: str = ""
    kind: str = "EEG"
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "channel_names", tuple(str(c) for c in self.channel_names))
        if not self.channel_names:
            raise ValueError(f"stream {self.name!r}: no channels")
        dupes = sorted({c for c in self.channel_names if self.channel_names.count(c) > 1})
        if dupes:
            raise ValueError(f"stream {self.name!r}: duplicate channel labels {dupes}")
        if not self.srate > 0:
            raise ValueError(f"stream {self.name!r}: sampling rate must be > 0, got {self.srate}")
        if self.unit not in UNITS:
            raise ValueError(f"stream {self.name!r}: unit must be one of {UNITS}, got {self.unit!r}")

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)


@dataclass
class Chunk:
    """Consecutive samples: ``data`` [n_samples, n_channels] float32, ``timestamps`` in LSL time.

    A source may reuse the memory behind a chunk once the next one is requested,
    so consumers copy what they keep (the ring buffer does).
    """

    data: np.ndarray
    timestamps: np.ndarray

    def __post_init__(self):
        if self.data.ndim != 2:
            raise ValueError(f"chunk data must be [n_samples, n_channels], got shape {self.data.shape}")
        if self.timestamps.shape != (self.data.shape[0],):
            raise ValueError(
                f"chunk has {self.data.shape[0]} samples but {self.timestamps.shape} timestamps"
            )

    def __len__(self) -> int:
        return self.data.shape[0]


@dataclass
class Trial:
    """One labelled stretch of a recorded (or generated) session, as dataset readers give it.

    ``data`` is [n_samples, n_channels] in ``info.unit``; ``label`` indexes the
    dataset's class names (-1 when the trial has none).
    """

    participant: str
    session: str
    trial: int
    label: int
    data: np.ndarray
    info: StreamInfo
