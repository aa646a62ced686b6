"""Spectral features, each one vectorized function over a batch of windows.

Online calls them with one window, offline with thousands: the same code, so
the two paths cannot diverge.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
from scipy import fft, signal

#: Frequency bands of the SEED/DEAP emotion literature, in Hz, [low, high).
BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 14.0),
    "beta": (14.0, 31.0),
    "gamma": (31.0, 50.0),
}


@dataclass(frozen=True)
class FeatureExtractor:
    """A named feature: ``compute(windows [n, ch, t], srate) -> [n, ch * per_channel]``."""

    name: str
    compute: Callable[[np.ndarray, float], np.ndarray]
    per_channel: Sequence[str]
    doc: str

    def names(self, channels: Sequence[str]) -> list[str]:
        """Feature names in output order: channel-major, then band."""
        return [f"{ch}:{part}" for ch in channels for part in self.per_channel]


@lru_cache(maxsize=32)
def _welch_plan(n_samples: int, srate: float):
    """Segment length, taper and band bin masks for a window length, computed once."""
    nperseg = int(min(n_samples, max(16, min(n_samples // 2, 2 * round(srate)))))
    step = max(1, nperseg // 2)
    taper = signal.get_window("hann", nperseg).astype(np.float32)  # as scipy.signal.welch
    freqs = np.fft.rfftfreq(nperseg, 1.0 / srate)
    # One-sided PSD scale: |X|^2 / (fs * sum(w^2)), doubled except DC and Nyquist.
    scale = np.full(freqs.shape, 2.0 / (srate * float((taper.astype(np.float64) ** 2).sum())))
    scale[0] /= 2
    if nperseg % 2 == 0:
        scale[-1] /= 2
    df = freqs[1] - freqs[0]
    masks = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in BANDS.values()]).astype(np.float64)
    empty = [b for b, m in zip(BANDS, masks) if not m.any()]
    if empty:
        raise ValueError(
            f"windows of {n_samples} samples at {srate} Hz resolve no frequency bin in band(s) {empty}; "
            "use a longer window or a higher sampling rate"
        )
    band_matrix = (masks * scale * df).T  # [n_freqs, n_bands]: PSD bins -> band power
    return nperseg, step, taper, band_matrix.astype(np.float32)


def welch_band_power(windows: np.ndarray, srate: float) -> np.ndarray:
    """Band power [n, ch, bands] from Welch's method (Hann, 50 % overlap, mean-detrended segments)."""
    windows = np.asarray(windows, np.float32)
    n, ch, t = windows.shape
    nperseg, step, taper, band_matrix = _welch_plan(t, float(srate))
    segs = np.lib.stride_tricks.sliding_window_view(windows, nperseg, axis=-1)[..., ::step, :]
    segs = (segs - segs.mean(axis=-1, keepdims=True)) * taper
    spec = fft.rfft(segs, axis=-1)
    psd = (spec.real**2 + spec.imag**2).mean(axis=-2)  # [n, ch, freqs]
    return psd @ band_matrix


def _differential_entropy(windows: np.ndarray, srate: float) -> np.ndarray:
    # For a band-limited Gaussian signal of variance P, DE = 0.5 * ln(2 pi e P).
    power = welch_band_power(windows, srate)
    return (0.5 * np.log(2 * np.pi * np.e * np.maximum(power, 1e-12))).reshape(power.shape[0], -1)


def _log_band_power(windows: np.ndarray, srate: float) -> np.ndarray:
    power = welch_band_power(windows, srate)
    return np.log10(np.maximum(power, 1e-12)).reshape(power.shape[0], -1)


differential_entropy = FeatureExtractor(
    "de",
    _differential_entropy,
    tuple(BANDS),
    "Differential entropy per band and channel (SEED's standard input), from Welch band power.",
)

band_power = FeatureExtractor(
    "bandpower",
    _log_band_power,
    tuple(BANDS),
    "log10 Welch band power per band and channel, in the stream's unit squared.",
)
