"""StreamInfo <-> LSL stream metadata, following the XDF meta-data conventions."""

from __future__ import annotations

import pylsl

from bci_stream.stream import StreamInfo

#: XDF spells units out; we accept the common short forms from foreign streams.
_UNIT_ALIASES = {
    "microvolts": "microvolts", "uv": "microvolts", "µv": "microvolts", "μv": "microvolts",
    "microvolt": "microvolts", "volts": "volts", "v": "volts", "volt": "volts",
}


def to_lsl(info: StreamInfo, chunk_type: str = "float32") -> pylsl.StreamInfo:
    """An LSL StreamInfo with ``desc/channels/channel`` (label, unit, type) filled in."""
    lsl = pylsl.StreamInfo(info.name, info.kind, info.n_channels, info.srate, chunk_type, info.source_id)
    desc = lsl.desc()
    chans = desc.append_child("channels")
    for label in info.channel_names:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", info.unit)
        ch.append_child_value("type", info.kind)
    if info.device:
        desc.append_child("acquisition").append_child_value("manufacturer", info.device)
    return lsl


def channel_labels(lsl: pylsl.StreamInfo) -> tuple[list[str] | None, list[str]]:
    """Labels (None when the stream declares none) and units from ``desc/channels``."""
    labels, units = [], []
    ch = lsl.desc().child("channels").child("channel")
    while not ch.empty():
        labels.append(ch.child_value("label"))
        units.append(ch.child_value("unit"))
        ch = ch.next_sibling("channel")
    if len(labels) != lsl.channel_count() or not all(labels):
        return None, units
    return labels, units


def from_lsl(lsl: pylsl.StreamInfo) -> StreamInfo:
    """StreamInfo of a foreign LSL stream; missing labels become ``ch1..chN``, a missing unit means microvolts."""
    labels, units = channel_labels(lsl)
    name = lsl.name()
    if labels is None:
        labels = [f"ch{i + 1}" for i in range(lsl.channel_count())]
    unit_names = {_UNIT_ALIASES.get(u.strip().lower()) for u in units if u.strip()}
    if None in unit_names:
        raise ValueError(
            f"LSL stream {name!r}: unsupported channel unit(s) {sorted({u for u in units if u.strip()})}; "
            "expected microvolts or volts"
        )
    if len(unit_names) > 1:
        raise ValueError(f"LSL stream {name!r}: channels mix units {sorted(unit_names)}")
    if lsl.nominal_srate() <= 0:
        raise ValueError(f"LSL stream {name!r}: irregular rate; EEG needs a nominal sampling rate")
    return StreamInfo(
        name=name,
        channel_names=labels,
        srate=lsl.nominal_srate(),
        unit=unit_names.pop() if unit_names else "microvolts",
        source_id=lsl.source_id(),
        device=lsl.desc().child("acquisition").child_value("manufacturer"),
        kind=lsl.type(),
        extra={"uid": lsl.uid(), "hostname": lsl.hostname()},
    )
