"""StreamInfo <-> LSL stream metadata, following the XDF meta-data conventions (and reading MNE-LSL's)."""

from __future__ import annotations

import pylsl

import math

from bci_stream.stream import StreamInfo, unit_of

def to_lsl(info: StreamInfo, chunk_type: str = "float32") -> pylsl.StreamInfo:
    """An LSL StreamInfo with ``desc/channels/channel`` (label, unit, type, location in mm) filled in."""
    lsl = pylsl.StreamInfo(info.name, info.kind, info.n_channels, info.srate, chunk_type, info.source_id)
    desc = lsl.desc()
    chans = desc.append_child("channels")
    for i, label in enumerate(info.channel_names):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", info.unit)
        ch.append_child_value("type", info.channel_types[i] if info.channel_types else "EEG")
        if label in info.positions:
            loc = ch.append_child("location")
            for axis, metres in zip("XYZ", info.positions[label]):
                loc.append_child_value(axis, f"{metres * 1e3:.6g}")
    if info.device:
        desc.append_child("acquisition").append_child_value("manufacturer", info.device)
    return lsl


def _position(ch) -> tuple[float, float, float] | None:
    """XDF's ``location`` X/Y/Z in millimetres, or MNE-LSL's ``loc`` R0x/R0y/R0z in metres; None if absent or NaN."""
    for element, axes, scale in (("location", ("X", "Y", "Z"), 1e-3), ("loc", ("R0x", "R0y", "R0z"), 1.0)):
        node = ch.child(element)
        if node.empty():
            continue
        try:
            xyz = tuple(float(node.child_value(a)) * scale for a in axes)
        except ValueError:
            continue
        if all(map(math.isfinite, xyz)) and any(xyz):
            return xyz
    return None


def channel_labels(lsl: pylsl.StreamInfo) -> tuple[list[str] | None, list[str], list[str], dict]:
    """Labels (None when the stream declares none), units, types and positions from ``desc/channels``."""
    labels, units, types, positions = [], [], [], {}
    ch = lsl.desc().child("channels").child("channel")
    while not ch.empty():
        labels.append(ch.child_value("label"))
        units.append(ch.child_value("unit"))
        types.append(ch.child_value("type"))
        xyz = _position(ch)
        if xyz is not None:
            positions[labels[-1]] = xyz
        ch = ch.next_sibling("channel")
    if len(labels) != lsl.channel_count() or not all(labels):
        return None, units, types, {}
    return labels, units, types, positions


def from_lsl(lsl: pylsl.StreamInfo) -> StreamInfo:
    """StreamInfo of a foreign LSL stream; missing labels become ``ch1..chN``, a missing unit means microvolts.

    Channel types are kept when every channel declares one; the unit is that of the EEG channels.
    """
    labels, units, types, positions = channel_labels(lsl)
    name = lsl.name()
    if labels is None:
        labels = [f"ch{i + 1}" for i in range(lsl.channel_count())]
    if len(types) != lsl.channel_count() or not all(types):
        types = []
    eeg_units = [u for u, t in zip(units, types) if t.upper() == "EEG"] if types else units
    if lsl.nominal_srate() <= 0:
        raise ValueError(f"LSL stream {name!r}: irregular rate; EEG needs a nominal sampling rate")
    return StreamInfo(
        name=name,
        channel_names=labels,
        srate=lsl.nominal_srate(),
        unit=unit_of(eeg_units, f"LSL stream {name!r}"),
        source_id=lsl.source_id(),
        device=lsl.desc().child("acquisition").child_value("manufacturer"),
        kind=lsl.type(),
        extra={"uid": lsl.uid(), "hostname": lsl.hostname()},
        channel_types=types,
        positions=positions,
    )
