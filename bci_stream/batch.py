"""The batch path: whole recordings to windowed features with the very code the live path runs."""

from __future__ import annotations

import numpy as np

from bci_stream.filters import CausalFilter, FilterSpec


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
    if not feats:
        return np.empty((0, 0), np.float32), np.empty(0, np.int64)
    return np.concatenate(feats).astype(np.float32), np.concatenate(ends)
