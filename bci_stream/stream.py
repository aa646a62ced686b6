"""The two contracts every source honours: what a stream is, and one chunk of it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Units the pipeline accepts, in volts; a source says which one its EEG channels are in.
UNITS = {"volts": 1.0, "millivolts": 1e-3, "microvolts": 1e-6, "nanovolts": 1e-9}

#: How streams and files spell those units: XDF's names, their short forms, and the power-of-ten
#: exponents MNE-LSL writes (``StreamInfo.set_channel_units``: "0" volts, "-6" microvolts).
_UNIT_SPELLINGS = {
    "volts": ("volts", "volt", "v", "0"),
    "millivolts": ("millivolts", "millivolt", "mv", "-3"),
    "microvolts": ("microvolts", "microvolt", "uv", "µv", "μv", "-6"),
    "nanovolts": ("nanovolts", "nanovolt", "nv", "-9"),
}
_UNIT_NAMES = {spelling: unit for unit, spellings in _UNIT_SPELLINGS.items() for spelling in spellings}


def unit_of(spellings, where: str) -> str:
    """The one unit that ``spellings`` (one per channel; blank: undeclared) name; undeclared means
    microvolts. An unknown spelling or a mix is an error naming ``where``."""
    given = sorted({u.strip() for u in spellings} - {""})
    units = {_UNIT_NAMES.get(u.lower()) for u in given}
    if None in units:
        raise ValueError(f"{where}: unknown channel unit(s) {[u for u in given if u.lower() not in _UNIT_NAMES]}; "
                         f"expected one of {', '.join(sorted(_UNIT_NAMES))}")
    if len(units) > 1:
        raise ValueError(f"{where}: EEG channels mix units {given}")
    return units.pop() if units else "microvolts"


#: ``StreamInfo.device`` of bci-stream's own generator, the one source the shipped synthetic models were trained on.
GENERATED = "bci-stream synthetic EEG"


def given_unit(text: str, where: str) -> str:
    """A unit the user states for a source (``?unit=uV``), overriding what the stream or file says."""
    if not text.strip():
        raise ValueError(f"{where}: unit: expected one of {', '.join(sorted(_UNIT_NAMES))}")
    return unit_of([text], where)


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
    #: Type of each channel as the stream declares it ("EEG", "EOG", "STIM", ...); empty: all EEG.
    channel_types: tuple[str, ...] = ()
    #: Electrode positions the stream or file carries: label -> (x, y, z) in metres, MNE's head frame.
    positions: dict = field(default_factory=dict, compare=False)

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
            raise ValueError(f"stream {self.name!r}: unit must be one of {list(UNITS)}, got {self.unit!r}")
        object.__setattr__(self, "channel_types", tuple(str(t).upper() for t in self.channel_types))
        if self.channel_types and len(self.channel_types) != len(self.channel_names):
            raise ValueError(f"stream {self.name!r}: {len(self.channel_types)} channel types for "
                             f"{len(self.channel_names)} channels")

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def to_microvolts(self) -> float:
        """Factor from the stream's unit to microvolts."""
        return UNITS[self.unit] / UNITS["microvolts"]

    def is_eeg(self, index: int) -> bool:
        return not self.channel_types or self.channel_types[index] == "EEG"


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
