"""Causal IIR filters whose state carries across chunks, so chunking never changes the output."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import signal

log = logging.getLogger("bci_stream.filters")
_warned: set[str] = set()


@dataclass(frozen=True)
class FilterSpec:
    """What to filter; ``None`` switches a stage off. Stored in model bundles."""

    bandpass: tuple[float, float] | None = (1.0, 50.0)
    notch: float | None = 50.0
    order: int = 4
    notch_q: float = 30.0

    def to_dict(self) -> dict:
        return {
            "bandpass": list(self.bandpass) if self.bandpass else None,
            "notch": self.notch,
            "order": self.order,
            "notch_q": self.notch_q,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FilterSpec":
        bp = d.get("bandpass")
        return cls(tuple(bp) if bp else None, d.get("notch"), int(d.get("order", 4)), float(d.get("notch_q", 30.0)))


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def check_overrides(overrides: dict, srate: float, stream: str) -> None:
    """ValueError unless the filters a user gave (``{"bandpass": [lo, hi] | None, "notch": hz | None}``, as
    ``--bandpass``/``--notch`` or the config's ``[filters]``) lie below the Nyquist frequency of the stream.

    A model's own filters are not checked here: :func:`design_sos` adapts them to a slower stream.
    """
    nyq = srate / 2.0
    where = f"Nyquist ({nyq:g} Hz) of stream {stream!r} at {srate:g} Hz"
    bandpass, notch = overrides.get("bandpass"), overrides.get("notch")
    if bandpass is not None:
        low, high = bandpass
        given = f"--bandpass {low:g},{high:g}"
        if not 0 < low < high:
            raise ValueError(f"{given}: expected 0 < LOW < HIGH")
        if high >= nyq:
            raise ValueError(f"{given}: the {'low' if low >= nyq else 'high'} edge must be below {where}")
    if notch is not None and not 0 < notch < nyq:
        raise ValueError(f"--notch {notch:g}: must be above 0 and below {where}")


def design_sos(spec: FilterSpec, srate: float) -> np.ndarray | None:
    """Second-order sections for ``spec`` at ``srate``. A band-pass reaching 0.95 x Nyquist becomes a high-pass
    and a notch above Nyquist is skipped, with a warning (once): a model's filters on a slower stream than it was
    trained on. Filters a user gives are checked first (:func:`check_overrides`)."""
    nyq = srate / 2.0
    sections = []
    if spec.bandpass is not None:
        low, high = spec.bandpass
        if not 0 < low < nyq:
            raise ValueError(f"band-pass low edge {low} Hz must lie in (0, {nyq}) Hz at {srate} Hz")
        if high is None or high >= nyq * 0.95:
            if high is not None:
                _warn_once(f"band-pass {low:g}-{high:g} Hz reaches 0.95 x Nyquist ({nyq:g} Hz) at {srate:g} Hz: "
                           f"high-pass at {low:g} Hz only")
            sections.append(signal.butter(spec.order, low, "highpass", fs=srate, output="sos"))
        else:
            if high <= low:
                raise ValueError(f"band-pass edges must increase, got {low}-{high} Hz")
            sections.append(signal.butter(spec.order, (low, high), "bandpass", fs=srate, output="sos"))
    if spec.notch is not None and spec.notch < nyq:
        b, a = signal.iirnotch(spec.notch, spec.notch_q, fs=srate)
        sections.append(signal.tf2sos(b, a))
    elif spec.notch is not None:
        _warn_once(f"notch {spec.notch:g} Hz is not below Nyquist ({nyq:g} Hz) at {srate:g} Hz: no notch")
    return np.concatenate(sections) if sections else None


class CausalFilter:
    """Applies one SOS cascade to [n_samples, n_channels] chunks, channel-wise, with carried state."""

    def __init__(self, sos: np.ndarray | None, n_channels: int):
        self.sos = sos
        self._zi = None if sos is None else np.zeros((sos.shape[0], 2, n_channels))

    @classmethod
    def from_spec(cls, spec: FilterSpec, srate: float, n_channels: int) -> "CausalFilter":
        return cls(design_sos(spec, srate), n_channels)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        """Filter a chunk. Non-finite samples stay NaN in the output but enter the
        state as zeros, so one bad chunk marks its own windows, not all later ones."""
        if self.sos is None:
            return data
        bad = ~np.isfinite(data)
        has_bad = bool(bad.any())
        if has_bad:
            data = np.where(bad, 0.0, data)
        out, self._zi = signal.sosfilt(self.sos, data, axis=0, zi=self._zi)
        if has_bad:
            out[bad] = np.nan
        return out.astype(np.float32, copy=False)
