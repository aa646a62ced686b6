"""Spectral features, each one vectorized function over a batch of windows.

Online calls them with one window, offline with thousands: the same code, so
the two paths cannot diverge.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft, signal

from bci_stream.feature import FeatureExtractor

#: Frequency bands of the SEED/DEAP emotion literature, in Hz, [low, high).
BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 14.0),
    "beta": (14.0, 31.0),
    "gamma": (31.0, 50.0),
}


def _band_matrix(n_fft: int, taper_energy: float, n_samples: int, srate: float) -> np.ndarray:
    """[n_freqs, n_bands] float32 turning a one-sided |rfft|^2 into band power."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / srate)
    # One-sided PSD scale: |X|^2 / (fs * sum(w^2)), doubled except DC and Nyquist.
    scale = np.full(freqs.shape, 2.0 / (srate * taper_energy))
    scale[0] /= 2
    if n_fft % 2 == 0:
        scale[-1] /= 2
    df = freqs[1] - freqs[0]
    masks = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in BANDS.values()]).astype(np.float64)
    empty = [b for b, m in zip(BANDS, masks) if not m.any()]
    if empty:
        raise ValueError(
            f"windows of {n_samples} samples at {srate} Hz resolve no frequency bin in band(s) {empty}; "
            "use a longer window or a higher sampling rate"
        )
    return (masks * scale * df).T.astype(np.float32)


@lru_cache(maxsize=32)
def _welch_plan(n_samples: int, srate: float):
    """Segment length and step, taper, the taper's leaking bins, and the fused power-to-band matrix, once per length.

    Removing a segment's mean m before tapering changes its spectrum by
    m * rfft(taper), which is non-zero only in a few bins (two for Hann): the
    mean is subtracted there, after the FFT, instead of from every sample.
    The band matrix acts on the spectrum seen as interleaved float32 (re, im)
    pairs of every segment, so squaring, averaging the segments and summing
    the bands is one matrix product.
    """
    nperseg = int(min(n_samples, max(16, min(n_samples // 2, 2 * round(srate)))))
    step = max(1, nperseg // 2)
    n_segments = (n_samples - nperseg) // step + 1
    taper = signal.get_window("hann", nperseg).astype(np.float32)  # as scipy.signal.welch
    energy = float((taper.astype(np.float64) ** 2).sum())
    taper_spectrum = fft.rfft(taper.astype(np.float64))
    # float32 rounding leaves the rest of a Hann's spectrum below 1e-7 of its peak
    nonzero = np.flatnonzero(np.abs(taper_spectrum) > 1e-5 * np.abs(taper_spectrum).max())
    leak = slice(int(nonzero[0]), int(nonzero[-1]) + 1)
    bands = _band_matrix(nperseg, energy, n_samples, srate)  # [freqs, bands]
    fused = np.tile(np.repeat(bands, 2, axis=0), (n_segments, 1)) / n_segments  # [segments * freqs * 2, bands]
    return nperseg, step, taper, leak, taper_spectrum[leak].astype(np.complex64), fused.astype(np.float32)


def welch_band_power(windows: np.ndarray, srate: float) -> np.ndarray:
    """Band power [n, ch, bands] from Welch's method (Hann, 50 % overlap, mean-detrended segments)."""
    windows = np.asarray(windows, np.float32)
    n, ch, t = windows.shape
    nperseg, step, taper, leak, leak_spectrum, fused = _welch_plan(t, float(srate))
    segs = np.lib.stride_tricks.sliding_window_view(windows, nperseg, axis=-1)[..., ::step, :]
    spec = fft.rfft(segs * taper, axis=-1)  # [n, ch, segments, freqs] complex64
    spec[..., leak] -= segs.mean(axis=-1, keepdims=True) * leak_spectrum
    parts = spec.view(np.float32).reshape(n, ch, -1)
    np.square(parts, out=parts)
    return parts @ fused


def _differential_entropy(windows: np.ndarray, srate: float) -> np.ndarray:
    # For a band-limited Gaussian signal of variance P, DE = 0.5 * ln(2 pi e P).
    power = welch_band_power(windows, srate)
    return (0.5 * np.log(2 * np.pi * np.e * np.maximum(power, 1e-12))).reshape(power.shape[0], -1)


def _log10_per_row(power: np.ndarray) -> np.ndarray:
    """[n, ch, bands] power -> [n, ch * bands] log10 features; the floor keeps a flat channel finite."""
    return np.log10(np.maximum(power, 1e-12)).reshape(power.shape[0], -1)


def _log_band_power(windows: np.ndarray, srate: float) -> np.ndarray:
    return _log10_per_row(welch_band_power(windows, srate))


differential_entropy = FeatureExtractor(
    "de",
    _differential_entropy,
    tuple(BANDS),
    "Differential entropy per band and channel (SEED's standard input), from Welch band power.",
    log_power=True,
)

band_power = FeatureExtractor(
    "bandpower",
    _log_band_power,
    tuple(BANDS),
    "log10 Welch band power per band and channel, in the stream's unit squared.",
    log_power=True,
)


#: Time-half-bandwidth product of the DPSS tapers, and how many are used (2 NW - 1), as MNE's default.
MULTITAPER_NW = 4.0
MULTITAPER_K = 7


@lru_cache(maxsize=32)
def _multitaper_plan(n_samples: int, srate: float):
    """DPSS tapers (unit energy), their eigenvalue weights and the band matrix, computed once per window length."""
    if n_samples <= 2 * MULTITAPER_NW:
        raise ValueError(f"multitaper needs windows longer than {2 * MULTITAPER_NW:g} samples, got {n_samples}")
    tapers, ratios = signal.windows.dpss(n_samples, MULTITAPER_NW, MULTITAPER_K, return_ratios=True)
    weights = (ratios / ratios.sum()).astype(np.float32)
    return tapers.astype(np.float32), weights, _band_matrix(n_samples, 1.0, n_samples, float(srate))


def multitaper_band_power(windows: np.ndarray, srate: float) -> np.ndarray:
    """Band power [n, ch, bands] from the eigenvalue-weighted multitaper PSD of each mean-removed window."""
    windows = np.asarray(windows, np.float32)
    n, ch, t = windows.shape
    tapers, weights, band_matrix = _multitaper_plan(t, float(srate))
    x = windows - windows.mean(axis=-1, keepdims=True)
    psd = np.zeros((n, ch, band_matrix.shape[0]), np.float32)
    for taper, w in zip(tapers, weights):  # one taper at a time keeps memory at one batch of spectra
        spec = fft.rfft(x * taper, axis=-1)
        psd += w * (spec.real**2 + spec.imag**2)
    return psd @ band_matrix


def _log_multitaper(windows: np.ndarray, srate: float) -> np.ndarray:
    return _log10_per_row(multitaper_band_power(windows, srate))


multitaper = FeatureExtractor(
    "multitaper",
    _log_multitaper,
    tuple(BANDS),
    "log10 multitaper band power per band and channel (DPSS, NW=4, 7 tapers), in the stream's unit squared; "
    "the best input in the stratified-normalization paper (Fdez et al. 2021).",
    log_power=True,
)

STATISTICS = ("mean", "median", "max", "min", "std", "var", "range", "skewness", "kurtosis")
SEGMENTS = 10
_PARTS = tuple(f"seg{k:02d}" for k in range(1, SEGMENTS + 1)) + ("all",)


def _moments(x: np.ndarray) -> np.ndarray:
    """The nine STATISTICS over the last axis; skewness and (excess) kurtosis are 0 for a flat signal."""
    x = x.astype(np.float64)
    mean = x.mean(axis=-1)
    d = x - mean[..., None]
    var = (d**2).mean(axis=-1)
    hi, lo = x.max(axis=-1), x.min(axis=-1)
    flat = hi == lo
    v = np.where(flat, 1.0, var)
    skew = np.where(flat, 0.0, (d**3).mean(axis=-1) / v**1.5)
    kurt = np.where(flat, 0.0, (d**4).mean(axis=-1) / v**2 - 3.0)
    return np.stack([mean, np.median(x, axis=-1), hi, lo, np.sqrt(var), var, hi - lo, skew, kurt], axis=-1)


def _deap_statistics(windows: np.ndarray, srate: float) -> np.ndarray:
    windows = np.asarray(windows)
    n, ch, t = windows.shape
    if t < SEGMENTS:
        raise ValueError(f"deap99 cuts windows into {SEGMENTS} segments; a window of {t} samples is too short")
    # consecutive and as equal as the length allows, the first ones longer by a sample (as np.array_split)
    edges = np.concatenate([[0], np.cumsum([t // SEGMENTS + (k < t % SEGMENTS) for k in range(SEGMENTS)])])
    spans = list(zip(edges[:-1], edges[1:])) + [(0, t)]
    out = np.stack([_moments(windows[..., a:b]) for a, b in spans], axis=2)  # [n, ch, parts, stats]
    return out.reshape(n, -1).astype(np.float32)


deap_statistics = FeatureExtractor(
    "deap99",
    _deap_statistics,
    tuple(f"{part}:{stat}" for part in _PARTS for stat in STATISTICS),
    "DEAP's statistical representation: per channel, mean, median, max, min, std, variance, range, skewness and "
    "excess kurtosis of each of 10 consecutive segments and of the whole window (99 per channel).",
)
