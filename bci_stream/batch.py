"""The batch path: whole recordings to windowed features with the very code the live path runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from bci_stream import registry
from bci_stream.filters import CausalFilter, FilterSpec
from bci_stream.progress import Progress
from bci_stream.stream import Trial


def window_starts(n_samples: int, length: int, hop: int) -> np.ndarray:
    """Start indices of every complete window, anchored at sample 0 like the live Windower."""
    if n_samples < length:
        return np.empty(0, np.int64)
    return np.arange(0, n_samples - length + 1, hop, dtype=np.int64)


def recording_features(data: np.ndarray, srate: float, extractor, filters: FilterSpec | None,
                       window: float, hop: float, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Features of every window of ``data`` [n_samples, n_channels] and each window's end index.

    Filters run causally from the first sample, windows are cut on the same
    sample grid, and non-finite windows are dropped (as live, where they are
    counted and not classified).
    """
    length, step = round(window * srate), round(hop * srate)
    x = CausalFilter.from_spec(filters, srate, data.shape[1])(data) if filters else np.asarray(data, np.float32)
    starts = window_starts(len(x), length, step)
    view = np.lib.stride_tricks.sliding_window_view(x, length, axis=0)  # [n - length + 1, C, length]
    feats, ends = [], []
    for i in range(0, len(starts), batch):
        w = view[starts[i : i + batch]]
        ok = np.isfinite(w).all(axis=(1, 2))
        if ok.any():
            feats.append(extractor.compute(np.ascontiguousarray(w[ok]), srate))
            ends.append(starts[i : i + batch][ok] + length)
    if not feats:  # shorter than one window, or all non-finite: no rows, but the right width
        return np.empty((0, data.shape[1] * len(extractor.per_channel)), np.float32), np.empty(0, np.int64)
    return np.concatenate(feats).astype(np.float32), np.concatenate(ends)


@dataclass
class FeatureSet:
    X: np.ndarray
    y: np.ndarray
    participant: np.ndarray
    session: np.ndarray
    class_names: tuple[str, ...]
    channels: tuple[str, ...]
    srate: float
    features: str
    window: float
    hop: float
    filters: dict = field(default_factory=dict)
    trial: np.ndarray | None = None  # each window's trial number, where trials were read

    def take(self, rows: np.ndarray) -> "FeatureSet":
        """The same features restricted to ``rows``: every per-window array is cut alike."""
        n = len(self.y)
        return dataclasses.replace(self, **{f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), np.ndarray)
                                            and len(getattr(self, f.name)) == n})


def build_features(trials: Iterable[Trial], n: int, class_names, features: str = "de",
                   window: float = 1.0, hop: float = 0.5, filters: FilterSpec | None = FilterSpec(),
                   quiet: bool = False, subtract_baseline: bool = False) -> FeatureSet:
    """Each trial is filtered and windowed on its own; every window takes its trial's label.

    With ``subtract_baseline``, each trial begins with a baseline of
    ``info.extra["baseline_samples"]`` samples (DEAP's 3-s pre-trial recording, read
    with ``baseline="keep"``): the trial is filtered as one, the baseline's windows
    are not emitted, and their mean feature vector is subtracted from the trial's.
    """
    extractor = registry.load_plugin("features", features)
    Xs, ys, ps, ss, ts = [], [], [], [], []
    progress = Progress(n, "features", quiet)
    tr = None
    for tr in trials:
        if subtract_baseline:
            X = _baseline_corrected(tr, extractor, filters, window, hop)
        else:
            X, _ = recording_features(tr.data, tr.info.srate, extractor, filters, window, hop)
        Xs.append(X)
        ys.append(np.full(len(X), tr.label))
        ps.append(np.full(len(X), tr.participant))
        ss.append(np.full(len(X), tr.session))
        ts.append(np.full(len(X), tr.trial))
        progress.update(note=f"participant {tr.participant} session {tr.session} trial {tr.trial}")
    if tr is None:
        raise ValueError("no trials to build features from")
    return FeatureSet(np.concatenate(Xs), np.concatenate(ys), np.concatenate(ps), np.concatenate(ss),
                      tuple(class_names), tr.info.channel_names, tr.info.srate, features, window, hop,
                      filters.to_dict() if filters else {"bandpass": None, "notch": None}, np.concatenate(ts))


def _baseline_corrected(tr: Trial, extractor, filters: FilterSpec | None, window: float, hop: float) -> np.ndarray:
    b, srate = int(tr.info.extra.get("baseline_samples", 0)), tr.info.srate
    where = f"participant {tr.participant} session {tr.session} trial {tr.trial}"
    if not b:
        raise ValueError(f"{where}: no baseline to subtract (its reader gave no baseline_samples; "
                         "DEAP keeps its baseline with baseline='keep')")
    x = CausalFilter.from_spec(filters, srate, tr.data.shape[1])(tr.data) if filters else tr.data
    base, _ = recording_features(x[:b], srate, extractor, None, window, hop)
    if not len(base):
        raise ValueError(f"{where}: its {b / srate:g}-s baseline holds no complete {window:g}-s window to subtract")
    X, _ = recording_features(x[b:], srate, extractor, None, window, hop)
    return X - base.mean(axis=0) if len(X) else X


def select_classes(fset: FeatureSet, names) -> tuple[FeatureSet, dict[int, int]]:
    """Keep the windows of these classes only, renumbered in the order given (e.g. the 2-class
    positive/negative SEED task); returns the new set and the old-to-new label map."""
    names = list(names)
    unknown = [n for n in names if n not in fset.class_names]
    if unknown:
        raise ValueError(f"no class(es) {unknown} in this dataset; its classes are {list(fset.class_names)}")
    mapping = {fset.class_names.index(n): i for i, n in enumerate(names)}
    kept = fset.take(np.isin(fset.y, list(mapping)))
    y = np.array([mapping[v] for v in kept.y.tolist()], np.int64)
    return dataclasses.replace(kept, y=y, class_names=tuple(names)), mapping


def relabel_trials(trials, mapping: dict[int, int]):
    """Trials with labels renumbered by ``select_classes``'s map. Live, the other classes' trials still stream and
    feed the statistics; they are labelled -1, not scored."""
    return (dataclasses.replace(t, label=mapping.get(t.label, -1)) for t in trials)
