"""Which of a stream's channels feed a model, and how: labels matched the way real headsets spell
them, and the channels a headset lacks computed by spherical-spline interpolation.

The whole mapping is one matrix, computed once at start-up from MNE's own
``interpolate_bads`` applied to an identity signal, so every chunk costs a
single matrix product (or a column pick when nothing is interpolated).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator

import numpy as np

from bci_stream.montages import canonical, standard_position
from bci_stream.stream import StreamInfo, Trial

#: Default limit of interpolation: the share of a model's channels a stream may lack.
MAX_INTERPOLATED = 0.25
#: An unnamed channel digitized this close to a model channel's standard site is that channel (metres).
MATCH_DISTANCE = 0.015
#: A missing channel needs a recorded electrode this close (metres; the 10-10 grid is ~3 cm on an adult head).
MAX_GAP = 0.06


class MontageError(ValueError):
    """A stream cannot feed a model: too many channels missing, no positions, or ambiguous labels."""


def names_list(names, limit: int = 12) -> str:
    """``A, B, C and 9 more``: a readable list however many names there are."""
    names = list(names)
    if not names:
        return "none"
    head = ", ".join(names[:limit])
    return head if len(names) <= limit else f"{head} and {len(names) - limit} more"


def parse_rename(text: str, where: str = "--rename") -> dict[str, str]:
    """``"OLD=NEW,OLD2=NEW2"`` -> ``{"OLD": "NEW", ...}``."""
    out = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        old, sep, new = (s.strip() for s in pair.partition("="))
        if not sep or not old or not new:
            raise ValueError(f"{where}: expected OLD=NEW[,OLD=NEW...], got {pair!r}")
        if old in out:
            raise ValueError(f"{where}: {old!r} renamed twice")
        out[old] = new
    return out


@dataclass
class ChannelMap:
    """``data [n, stream channels] -> [n, model channels]``, and what start-up should tell the user about it."""

    stream: str
    model: tuple[str, ...]
    picks: np.ndarray  # stream columns read
    matrix: np.ndarray | None  # float64 [len(picks), len(model)]; None: the picks are the model's channels in order
    matched: dict[str, str]  # model channel -> stream label
    interpolated: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()  # the stream's EEG channels that feed nothing
    left_out: dict[str, str] = field(default_factory=dict)  # stream label -> its type, for channels not EEG
    renamed: dict[str, str] = field(default_factory=dict)
    excluded: frozenset[str] = frozenset()  # the stream's channels found bad live, read as if absent
    n_stream: int = 0  # the stream's channel count

    def __post_init__(self):
        # Decided once, not per chunk: the stream's columns are exactly the model's channels, in order.
        self.identity = self.matrix is None and np.array_equal(self.picks, np.arange(self.n_stream))

    def __call__(self, data: np.ndarray) -> np.ndarray:
        x = data if self.identity else data[:, self.picks]
        return x if self.matrix is None else (x @ self.matrix).astype(np.float32)

    def summary(self, model_name: str) -> str:
        """A few readable lines: matched, interpolated, unused and left-out channels."""
        n = len(self.model)
        by_position = {m: s for m, s in self.matched.items() if canonical(self.renamed.get(s, s)) != canonical(m)}
        spelled = {m: s for m, s in self.matched.items() if m not in by_position and s.upper() != m.upper()}
        notes = [f"{len(found)} {how}, e.g. {names_list([f'{s}={m}' for m, s in found.items()], 4)}"
                 for found, how in ((spelled, "under another spelling"), (by_position, "by digitized position"))
                 if found]
        lines = [f"channels: {len(self.matched)} of model {model_name}'s {n} found in stream {self.stream!r}"
                 + (f" ({'; '.join(notes)})" if notes else "")]
        if self.renamed:
            lines.append(f"  renamed: {names_list([f'{a}={b}' for a, b in self.renamed.items()])}")
        if self.interpolated:
            lines.append(f"  interpolated (spherical spline from {len(self.picks)} channels): "
                         f"{len(self.interpolated)}: {names_list(self.interpolated)}")
        if self.excluded:
            lines.append(f"  excluded as bad: {names_list(sorted(self.excluded))}")
        if self.unused:
            lines.append(f"  unused: {len(self.unused)} of the stream's EEG channels: {names_list(self.unused)}")
        if self.left_out:
            lines.append(f"  left out by type: {names_list([f'{c} ({t})' for c, t in self.left_out.items()])}")
        return "\n".join(lines)


def check_rename(info: StreamInfo, rename: dict[str, str]) -> None:
    """A rename of a label the stream does not have is the user's mistake, never ignored."""
    unknown = [old for old in rename if old not in info.channel_names]
    if unknown:
        raise MontageError(f"--rename: stream {info.name!r} has no channel(s) {unknown}; "
                           f"its channels: {names_list(info.channel_names)}")


def _labels(info: StreamInfo, rename: dict[str, str], exclude=frozenset()) -> tuple[dict[str, int], dict[str, str]]:
    """Canonical name -> column of the stream's EEG channels (less ``exclude``), and its non-EEG channels with
    their types."""
    check_rename(info, rename)
    if not any(map(info.is_eeg, range(info.n_channels))):
        raise MontageError(f"stream {info.name!r} declares no EEG channels (its channel types: "
                           f"{', '.join(sorted(set(info.channel_types)))})")
    by_name: dict[str, int] = {}
    left_out = dict(info.extra.get("not_eeg", {}))
    for i, label in enumerate(info.channel_names):
        if not info.is_eeg(i):
            left_out[label] = info.channel_types[i]
            continue
        if label in exclude:
            continue
        name = canonical(rename.get(label, label))
        if name in by_name:
            raise MontageError(f"stream {info.name!r}: channels {info.channel_names[by_name[name]]!r} and {label!r} "
                               f"both name {name}; rename one with --rename")
        by_name[name] = i
    return by_name, left_out


def spline_matrix(sources: list[np.ndarray], targets: list[np.ndarray]) -> np.ndarray:
    """``[n_targets, n_sources]`` weights of MNE's spherical-spline interpolation (head frame, metres;
    the head sphere fitted to all the positions, as ``interpolate_bads`` does by default)."""
    import mne

    names = [f"s{i}" for i in range(len(sources))] + [f"t{i}" for i in range(len(targets))]
    info = mne.create_info(names, 1000.0, "eeg")
    info.set_montage(mne.channels.make_dig_montage(dict(zip(names, (*sources, *targets))), coord_frame="head"))
    identity = np.vstack([np.eye(len(sources)), np.zeros((len(targets), len(sources)))])
    raw = mne.io.RawArray(identity, info, verbose="error")
    raw.info["bads"] = names[len(sources):]
    raw.interpolate_bads(reset_bads=True, verbose="error")
    return raw.get_data()[len(sources):]


def match(model: list[str] | tuple[str, ...], info: StreamInfo, rename: dict[str, str] | None = None,
          max_interpolated: float = MAX_INTERPOLATED, model_name: str = "the model",
          exclude: frozenset[str] = frozenset()) -> ChannelMap:
    """The map from ``info``'s channels onto ``model``'s, interpolating what is missing within the limits;
    the stream's channels in ``exclude`` (bad ones) are read as if the stream had none of that name."""
    if not 0 <= max_interpolated <= 1:
        raise ValueError(f"--max-interpolated {max_interpolated:g}: expected a fraction in [0, 1]")
    rename = dict(rename or {})
    by_name, left_out = _labels(info, rename, exclude)
    model = tuple(model)
    columns = {m: by_name[canonical(m)] for m in model if canonical(m) in by_name}
    columns |= _by_position([m for m in model if m not in columns], info, by_name, set(columns.values()))
    matched = {m: info.channel_names[columns[m]] for m in model if m in columns}
    missing = [m for m in model if m not in columns]
    if missing:
        bad = {canonical(rename.get(c, c)) for c in exclude}
        picks, matrix = _interpolation(model, info, by_name, columns, missing, max_interpolated, model_name,
                                       sum(canonical(m) in bad for m in missing))
    else:
        picks, matrix = np.array([columns[m] for m in model]), None
    unused = tuple(info.channel_names[i] for i in sorted(set(by_name.values()) - set(picks.tolist())))
    return ChannelMap(info.name, model, picks, matrix, matched, tuple(missing), unused, left_out, rename,
                      frozenset(exclude), info.n_channels)


def _position(info: StreamInfo, name: str, column: int) -> np.ndarray | None:
    """Where a stream's channel sits: the stream's or file's own position, else its label's standard one."""
    own = info.positions.get(info.channel_names[column])
    return standard_position(name) if own is None else np.asarray(own, float)


def _by_position(wanted, info: StreamInfo, by_name: dict[str, int], taken: set[int]) -> dict[str, int]:
    """Model channels found at a position instead of a name: a stream channel with no standard label
    (``E12``) whose own digitized position lies within MATCH_DISTANCE of the model channel's standard
    site, nearest pairs first, each channel used once."""
    free = {i: np.asarray(info.positions[info.channel_names[i]], float) for name, i in by_name.items()
            if i not in taken and info.channel_names[i] in info.positions and standard_position(name) is None}
    sites = {m: standard_position(m) for m in wanted if standard_position(m) is not None}
    pairs = sorted((float(np.linalg.norm(p - site)), m, i) for m, site in sites.items() for i, p in free.items())
    out: dict[str, int] = {}
    for distance, m, i in pairs:
        if distance <= MATCH_DISTANCE and m not in out and i not in out.values():
            out[m] = i
    return out


def _interpolation(model, info, by_name, columns, missing, max_interpolated, model_name, n_bad=0):
    """Picks and matrix that pass matched channels through and interpolate the missing ones, within the limits;
    ``n_bad`` of the missing are in the stream but excluded as bad, which the error says apart from absent ones."""
    train = "; or train a model for this montage (bci-stream train --channels-of SOURCE)"
    if len(missing) > max_interpolated * len(model):
        bad = f"; {n_bad} of them are in the stream but bad: flat, railed or non-finite" if n_bad else ""
        raise MontageError(
            f"stream {info.name!r} lacks {len(missing)} of {model_name}'s {len(model)} channels "
            f"({len(missing) / len(model):.0%}, above the {max_interpolated:.0%} that may be interpolated{bad}): "
            f"{names_list(missing)}{train}")
    unplaced = [m for m in missing if standard_position(m) is None]
    if unplaced:
        raise MontageError(f"{model_name}'s channel(s) {unplaced}, missing from stream {info.name!r}, have no known "
                           f"position to interpolate them at{train}")
    # Every EEG channel with a position feeds the interpolation, as in MNE's interpolate_bads.
    placed = {i: pos for name, i in by_name.items() if (pos := _position(info, name, i)) is not None}
    targets = [standard_position(m) for m in missing]
    src = np.array(list(placed.values()))
    for m, t in zip(missing, targets):
        gap = np.min(np.linalg.norm(src - t, axis=1)) if len(src) else np.inf
        if gap > MAX_GAP:
            raise MontageError(f"stream {info.name!r} has no electrode within {MAX_GAP * 100:.0f} cm of {m} "
                               f"(nearest {gap * 100:.1f} cm), so {model_name}'s {m} cannot be interpolated{train}")
    weights = spline_matrix(list(placed.values()), targets)  # [n_missing, n_sources]
    sources = list(placed)
    picks = np.array(sources + [i for i in columns.values() if i not in placed])
    matrix = np.zeros((len(picks), len(model)))
    row = {i: k for k, i in enumerate(picks.tolist())}
    for j, m in enumerate(model):
        if m in columns:
            matrix[row[columns[m]], j] = 1.0
        else:
            matrix[: len(sources), j] = weights[missing.index(m)]
    return picks, matrix


def montage_of(info: StreamInfo) -> tuple[str, ...]:
    """The EEG channels of a stream or file, as a montage to train for."""
    return tuple(c for i, c in enumerate(info.channel_names) if info.is_eeg(i))


def trainable(montage, info: StreamInfo) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(kept, left out)``: a montage's channels that training data of layout ``info`` has or can be
    interpolated to (a known position), and those it cannot give."""
    have = {canonical(c) for i, c in enumerate(info.channel_names) if info.is_eeg(i)}
    kept = tuple(c for c in montage if canonical(c) in have or standard_position(c) is not None)
    return kept, tuple(c for c in montage if c not in kept)


def onto_montage(trials: Iterable[Trial], montage, max_interpolated: float = MAX_INTERPOLATED) -> Iterator[Trial]:
    """The trials on ``montage``'s channels: those the trials share pass through, the others are interpolated from
    the trials' channels (one matrix per channel layout met). A montage channel the trials lack and that has no
    known position is an error, so no channel of the montage is silently dropped."""
    maps: dict[tuple[str, ...], ChannelMap] = {}
    montage = tuple(montage)
    for tr in trials:
        cm = maps.get(tr.info.channel_names)
        if cm is None:
            cm = maps[tr.info.channel_names] = match(montage, tr.info, max_interpolated=max_interpolated,
                                                     model_name="the montage")
        info = replace(tr.info, channel_names=montage, channel_types=(), positions={})
        yield replace(tr, data=cm(tr.data), info=info)
