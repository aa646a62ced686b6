"""Recorded EEG files: anything MNE reads, XDF, and registered datasets' own files, as trials plus annotations.

A ``Recording`` is what replay needs: its trials back to back on one sample
grid, and markers (trial boundaries with true labels, the file's own
annotations) at sample indices of that grid. Data are float32 microvolts:
MNE gives volts and XDF declares its unit, and both are converted here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from bci_stream import registry
from bci_stream.quality import Thresholds
from bci_stream.replay import Pacer
from bci_stream.sources import Source, SourceError, parse_flag, parse_query
from bci_stream.stream import UNITS, Chunk, StreamInfo, Trial, given_unit, unit_of

log = logging.getLogger("bci_stream.devices.files")

XDF_SUFFIXES = (".xdf", ".xdfz")
#: Beyond this (µV) a channel is railed for the quality checks; EEG typically beyond it was read in the wrong unit.
RAIL_UV = Thresholds().rail_uv


@dataclass(frozen=True)
class Annotation:
    onset: int  # sample index into the recording
    duration: int  # samples; 0 for an instant
    text: str


@dataclass
class Recording:
    path: Path
    info: StreamInfo
    class_names: tuple[str, ...]
    trials: list[Trial]
    annotations: list[Annotation] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return sum(len(t.data) for t in self.trials)

    def data(self) -> np.ndarray:
        """All trials back to back, [n_samples, n_channels]."""
        if len(self.trials) == 1:
            return self.trials[0].data
        return np.concatenate([t.data for t in self.trials])

    def markers(self) -> list[tuple[int, str]]:
        """``(sample index, text)`` in time order.

        ``trial-start N [CLASS]`` at a trial's first sample and ``trial-end N`` one
        past its last; an annotation's text at its onset and, when it lasts,
        ``TEXT end`` where it ends. At one index an end comes before a start.
        """
        out, a = [], 0
        for tr in self.trials:
            label = f" {self.class_names[tr.label]}" if tr.label >= 0 else ""
            out.append((a, 1, f"trial-start {tr.trial}{label}"))
            a += len(tr.data)
            out.append((a, 0, f"trial-end {tr.trial}"))
        for an in self.annotations:
            out.append((an.onset, 2, an.text))
            if an.duration > 0:
                out.append((an.onset + an.duration, 0, f"{an.text} end"))
        out.sort(key=lambda m: m[:2])  # stable: annotations keep the file's order
        return [(i, text) for i, _, text in out]

    def select(self, trial: int) -> "Recording":
        """Only trial number ``trial``, with the annotations that fall inside it."""
        a = 0
        for tr in self.trials:
            b = a + len(tr.data)
            if tr.trial == trial:
                inside = [Annotation(an.onset - a, min(an.duration, b - an.onset), an.text)
                          for an in self.annotations if a <= an.onset < b]
                return replace(self, trials=[tr], annotations=inside)
            a = b
        have = [t.trial for t in self.trials]
        raise ValueError(f"{self.path}: no trial {trial}; it has trials {have[0]}..{have[-1]}" if have else
                         f"{self.path}: no trials")


def read_mne(path, unit: str | None = None) -> Recording:
    """Any format ``mne.io.read_raw`` knows; EEG channels by type (bad ones too), annotations kept. ``unit``: what
    the reader's numbers really are, where MNE's reader for a format does not give volts."""
    import mne

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"EEG file {path}: no such file")
    try:
        raw = mne.io.read_raw(path, preload=True, verbose="error")
    except Exception as e:  # MNE raises many types for unreadable or unknown files
        raise ValueError(f"EEG file {path}: MNE cannot read it ({e.__class__.__name__}: {e}); expected a format "
                         "mne.io.read_raw supports (EDF, BDF, FIF, EEGLAB .set, BrainVision .vhdr, .cnt, GDF, ...) "
                         "or XDF") from None
    return raw_recording(raw, path, unit)


def mne_info(raw, path: Path) -> tuple[StreamInfo, np.ndarray]:
    """``(info, picks)``: an MNE Raw's EEG channels by type (bad ones too, named in ``extra["bads"]``) with the
    positions its montage gives, and their indices. Separate from ``raw_recording`` so that a dataset can learn
    a file's layout from its header without reading its samples."""
    import mne

    picks = mne.pick_types(raw.info, eeg=True, exclude=[])
    if not len(picks):
        kinds = sorted(set(raw.get_channel_types()))
        raise ValueError(f"EEG file {path}: no EEG channels; its channels are of type(s) {kinds}")
    names = [raw.ch_names[i] for i in picks]
    types = dict(zip(raw.ch_names, (t.upper() for t in raw.get_channel_types())))
    not_eeg = {c: types[c] for c in raw.ch_names if c not in names}
    locs = {raw.ch_names[i]: tuple(map(float, raw.info["chs"][i]["loc"][:3])) for i in picks}
    positions = {c: xyz for c, xyz in locs.items() if np.all(np.isfinite(xyz)) and np.any(xyz)}
    info = StreamInfo(path.stem, names, raw.info["sfreq"], "microvolts", source_id=f"file:{path.name}",
                      device="recorded file", positions=positions,
                      extra={"file": str(path), "not_eeg": not_eeg, "bads": list(raw.info["bads"])})
    return info, picks


def raw_recording(raw, path: Path, unit: str | None = None) -> Recording:
    """An MNE Raw, from whichever reader (``mne.io.read_raw``, ``mne_bids.read_raw_bids``): its EEG channels in
    microvolts (MNE gives volts, unless ``unit`` says otherwise) and its annotations at sample indices."""
    info, picks = mne_info(raw, path)
    if info.extra["not_eeg"]:
        log.info("%s: using its %d EEG channels; left out by type: %s", path, info.n_channels,
                 ", ".join(f"{c} ({t})" for c, t in info.extra["not_eeg"].items()))
    given = None if unit is None else given_unit(unit, f"EEG file {path}")
    data = (raw.get_data(picks=picks) * (UNITS[given or "volts"] / UNITS["microvolts"])).T.astype(np.float32)
    _check_amplitude(data, path, given)
    if given is not None:
        info = replace(info, extra={**info.extra, "unit_declared": "volts (MNE)"})
    ann = raw.annotations
    onsets = raw.time_as_index(ann.onset, use_rounding=True, origin=ann.orig_time) if len(ann) else []
    starts = np.clip(np.asarray(onsets, np.int64), 0, len(data))
    ends = np.clip(starts + np.round(np.asarray(ann.duration) * raw.info["sfreq"]).astype(np.int64), starts, len(data))
    annotations = [Annotation(int(a), int(b - a), str(t)) for a, b, t in zip(starts, ends, ann.description)]
    subject = (raw.info.get("subject_info") or {}).get("his_id") or path.stem
    return Recording(path, info, (), [Trial(str(subject), "1", 1, -1, data, info)], annotations)


def _check_amplitude(data: np.ndarray, path: Path, given: str | None) -> None:
    """Warn when the EEG is far beyond any amplifier's range as read: a reader (MNE's eXimia one gives µV as
    volts) or a file with the wrong unit. Said, not fixed: the user states the unit with ``?unit=``."""
    typical = float(np.median(np.abs(data[: min(len(data), 100_000)]))) if data.size else 0.0
    if typical > RAIL_UV:
        log.warning("EEG file %s: its EEG is %.3g µV typically as read%s, beyond any amplifier's range (%g µV): "
                    "its unit may be wrong; state it with file:PATH?unit=microvolts (replay --unit microvolts)",
                    path, typical, f" in the unit given ({given})" if given else "", RAIL_UV)


def _xdf_field(d: dict, key: str, default: str = "") -> str:
    v = (d or {}).get(key)
    return v[0] if isinstance(v, list) and v and isinstance(v[0], str) else default


def read_xdf(path, stream: str | None = None, unit: str | None = None) -> Recording:
    """The EEG stream picked by ``stream`` (a name or type; default: the one of type EEG) and every Markers stream."""
    import pyxdf

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"XDF file {path}: no such file")
    try:
        streams, _ = pyxdf.load_xdf(str(path))
    except Exception as e:  # pyxdf raises many types for damaged files
        raise ValueError(f"XDF file {path}: pyxdf cannot read it ({e.__class__.__name__}: {e})") from None
    described = [f"{_xdf_field(s['info'], 'name')!r} (type {_xdf_field(s['info'], 'type')!r})" for s in streams]
    want = (stream or "EEG").lower()
    by_name = [s for s in streams if _xdf_field(s["info"], "name").lower() == want]
    found = by_name or [s for s in streams if _xdf_field(s["info"], "type").lower() == want]
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise ValueError(f"XDF file {path}: {what} streams named or typed {want!r}; it has {', '.join(described) or 'no streams'}; "
                         "pick one by name or type")
    eeg = found[0]
    name, srate = _xdf_field(eeg["info"], "name"), float(_xdf_field(eeg["info"], "nominal_srate", "0"))
    if srate <= 0:
        raise ValueError(f"XDF file {path}: stream {name!r} has an irregular rate; EEG needs a nominal sampling rate")
    series = eeg["time_series"]
    if not isinstance(series, np.ndarray) or not np.issubdtype(series.dtype, np.number) or series.ndim != 2:
        raise ValueError(f"XDF file {path}: stream {name!r} does not hold numeric samples x channels")
    desc = (eeg["info"].get("desc") or [None])[0] or {}
    chans = ((desc.get("channels") or [{}])[0] or {}).get("channel") or []
    labels = [_xdf_field(c, "label") for c in chans]
    if len(labels) != series.shape[1] or not all(labels):
        labels = [f"ch{i + 1}" for i in range(series.shape[1])]
    types = [_xdf_field(c, "type") for c in chans]
    types = types if len(types) == series.shape[1] and all(types) else []
    if types and not any(t.upper() == "EEG" for t in types):
        raise ValueError(f"XDF file {path}: stream {name!r} has no EEG channels (its channel types: "
                         f"{', '.join(sorted(set(types)))}); pick the EEG stream with stream=NAME")
    units = [_xdf_field(c, "unit") for c, t in zip(chans, types or [""] * len(chans)) if not types or t.upper() == "EEG"]
    where = f"XDF file {path}: stream {name!r}"
    unit = unit_of(units, where) if unit is None else given_unit(unit, where)  # no unit declared means microvolts
    data = (series * (UNITS[unit] / UNITS["microvolts"])).astype(np.float32)  # the unit of the EEG channels
    info = StreamInfo(name or path.stem, labels, srate, "microvolts", source_id=f"file:{path.name}:{name}",
                      device="recorded file", extra={"file": str(path)}, channel_types=types)
    ts = np.asarray(eeg["time_stamps"], np.float64)
    markers = [s for s in streams if _xdf_field(s["info"], "type").lower() == "markers"]
    annotations = []
    for m in markers:
        prefix = f"{_xdf_field(m['info'], 'name')}: " if len(markers) > 1 else ""
        idx = np.clip(np.searchsorted(ts, np.asarray(m["time_stamps"]) - 0.5 / srate), 0, len(data))
        annotations += [Annotation(int(i), 0, prefix + ",".join(map(str, v))) for i, v in zip(idx, m["time_series"])]
    annotations.sort(key=lambda a: a.onset)
    return Recording(path, info, (), [Trial(path.stem, "1", 1, -1, data, info)], annotations)


def dataset_of(path: Path):
    """The registered dataset whose own file format ``path`` is in (e.g. DEAP's ``sNN.dat``), or None."""
    return next((cls for cls in registry.datasets().values() if cls.claims(path)), None)


def _file_options(dataset) -> dict:
    """Type of each option ``dataset.read_file`` takes: the dataset's options, and baseline where it has one."""
    return {o.name: o.type for o in dataset.options} | ({"baseline": str} if dataset.has_baseline else {})


def reader_options() -> dict:
    """Type of every option some file reader takes: XDF's stream, MNE's and XDF's unit, and those of datasets
    with a file format."""
    out = {"stream": str, "unit": str}
    for dataset in registry.datasets().values():
        if dataset.has_file_format():
            out |= _file_options(dataset)
    return out


def read_recording(path, **opts) -> Recording:
    """By file: a registered dataset's own file (``sNN.dat`` DEAP, options target, threshold, baseline;
    ``N_YYYYMMDD.mat`` a SEED session, with ``label.mat`` beside it), ``.xdf`` XDF (option stream),
    anything else goes to MNE."""
    path = Path(path).expanduser()
    dataset = dataset_of(path)
    xdf = path.suffix.lower() in XDF_SUFFIXES
    allowed = _file_options(dataset) if dataset else {"stream": str, "unit": str} if xdf else {"unit": str}
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ValueError(f"{path}: option(s) {unknown} do not apply to this kind of file; "
                         f"it takes {', '.join(allowed) or 'none'}")
    if dataset is not None:
        class_names, trials = dataset.read_file(path, **opts)
        return Recording(path, trials[0].info, class_names, trials)
    return read_xdf(path, **opts) if xdf else read_mne(path, **opts)


class FileSource(Source):
    """A recorded file: ``file:PATH[?speed=X&realtime=1&loop=1&trial=N&chunk=SAMPLES&stream=NAME&target=arousal]``.

    Runs as fast as it can unless ``realtime=1``; either way sample ``i`` is
    stamped ``start + i / (srate * speed)`` in the LSL clock (see ``bci_stream.replay``).
    ``due_markers`` gives the markers the chunks so far have reached.
    """

    def __init__(self, path, speed: float = 1.0, realtime: bool = False, loop: bool = False,
                 trial: int | None = None, chunk: int | None = None, **reader_opts):
        try:
            rec = read_recording(path, **reader_opts)
            self.recording = rec if trial is None else rec.select(trial)
            self.pacer = Pacer(rec.info.srate, speed, realtime, chunk)
        except (ValueError, FileNotFoundError) as e:
            raise SourceError(str(e)) from None
        self.info = self.recording.info
        self.loop = loop
        self._data = self.recording.data()
        self._markers = self.recording.markers()
        self._next_marker = 0  # counted over all passes
        self.reached = 0  # samples released so far, over all passes
        self._open = True

    @classmethod
    def from_spec(cls, spec: str, **defaults) -> "FileSource":
        path, params = parse_query(spec)
        where = f"file source {spec!r}"
        conv = {"speed": float, "realtime": lambda v: parse_flag(v, where), "loop": lambda v: parse_flag(v, where),
                "trial": int, "chunk": int, **reader_options()}
        unknown = set(params) - set(conv)
        if unknown:
            raise SourceError(f"{where}: unknown option(s) {sorted(unknown)}; known: {', '.join(conv)}")
        if not path:
            raise SourceError(f"{where}: expected file:PATH")
        try:
            kw = {k: conv[k](v) for k, v in params.items()}
        except ValueError as e:
            raise SourceError(f"{where}: {e}") from None
        return cls(path, **kw)

    def chunks(self) -> Iterator[Chunk]:
        for i, chunk in self.pacer.chunks(self._data, self.loop):
            if not self._open:
                return
            self.reached = i + len(chunk)
            yield chunk

    def due_markers(self) -> list[tuple[float, str]]:
        """``(LSL timestamp, text)`` of markers not given yet whose sample has been released.

        A marker one past the last sample (the last ``trial-end``) comes with the pass's last chunk.
        """
        out, n, k = [], self.recording.n_samples, len(self._markers)
        while k:
            p, j = divmod(self._next_marker, k)
            index = p * n + self._markers[j][0]
            if not (index < self.reached or index == self.reached and self.reached % n == 0 and self._markers[j][0] == n):
                break
            out.append((float(self.pacer.due(index)), self._markers[j][1]))
            self._next_marker += 1
        return out

    def close(self) -> None:
        self._open = False
