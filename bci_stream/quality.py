"""Per-channel signal quality: is each electrode recording EEG, or is it flat, railed, noisy or broken?

Checks run on raw data (before the pipeline's filters, which would hide line
noise and DC problems), one block of about a second at a time, so they stay off
the per-chunk path. They only read the data: predictions do not depend on them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import fft

from bci_stream.channels import names_list
from bci_stream.numeric_settings import NumericSettings
from bci_stream.stream import Chunk, StreamInfo

log = logging.getLogger("bci_stream.quality")

#: Channel states, by increasing severity; a channel takes the most severe that applies.
STATES = ("ok", "line noise", "excessive amplitude", "flat", "railed", "non-finite")
OK, LINE_NOISE, EXCESSIVE, FLAT, RAILED, NONFINITE = range(len(STATES))

#: Mains frequencies; whichever is stronger counts.
LINE_HZ = (50.0, 60.0)


@dataclass(frozen=True)
class Thresholds(NumericSettings):
    """When a channel is not ok. Amplitudes are in microvolts whatever the stream's unit."""

    flat_uv: float = 0.5  # standard deviation below this: nothing is recorded
    rail_uv: float = 100_000.0  # |x| beyond this (100 mV) is past any amplifier's healthy offset
    rail_fraction: float = 0.1  # share of samples beyond the rail, or pinned at the block's extreme
    amplitude_uv: float = 150.0  # standard deviation above this: a loose electrode, not EEG
    line_ratio: float = 4.0  # power within 1 Hz of 50/60 Hz over the 1-45 Hz EEG power

    WHAT = "quality thresholds"


@dataclass
class QualityReport:
    """One block's verdict: ``state`` indexes STATES per channel; ``std_uv`` and ``line_ratio`` say why."""

    timestamp: float  # LSL time of the block's last sample
    state: np.ndarray  # int8 [n_channels]
    std_uv: np.ndarray  # [n_channels]
    line_ratio: np.ndarray  # [n_channels]; NaN where the rate cannot resolve 50 or 60 Hz


@lru_cache(maxsize=16)
def _spectral_plan(n: int, srate: float):
    """Taper, the bins within 1 Hz of each resolvable mains frequency, and the 1-45 Hz EEG bins without them."""
    freqs = np.fft.rfftfreq(n, 1.0 / srate)
    lines = [np.abs(freqs - hz) <= 1.0 for hz in LINE_HZ if hz + 1.0 < srate / 2]
    lines = [m for m in lines if m.any()]
    near_line = np.any(lines, axis=0) if lines else np.zeros(freqs.shape, bool)
    eeg = (freqs >= 1.0) & (freqs <= 45.0) & ~near_line
    return np.hanning(n).astype(np.float32)[:, None], lines, eeg


def assess(block: np.ndarray, srate: float, to_uv: float = 1.0, thresholds: Thresholds = Thresholds(),
           timestamp: float = float("nan")) -> QualityReport:
    """Quality of each channel of ``block`` [n_samples, n_channels]; ``to_uv`` converts its unit to microvolts."""
    th = thresholds
    x = np.asarray(block, np.float32) * np.float32(to_uv)
    finite = np.isfinite(x)
    nonfinite = ~finite.all(axis=0)
    if nonfinite.any():
        x = np.where(finite, x, np.float32(0))
    centred = x - x.mean(axis=0)
    std = centred.std(axis=0)

    beyond = (np.abs(x) >= th.rail_uv).mean(axis=0)
    pinned = np.maximum((x == x.max(axis=0)).mean(axis=0), (x == x.min(axis=0)).mean(axis=0))
    flat = std < th.flat_uv
    railed = (beyond >= th.rail_fraction) | ((pinned >= th.rail_fraction) & ~flat)

    taper, lines, eeg = _spectral_plan(x.shape[0], float(srate))
    spec = fft.rfft(centred * taper, axis=0)
    power = spec.real**2 + spec.imag**2
    if lines and eeg.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.max([power[m].sum(axis=0) for m in lines], axis=0) / power[eeg].sum(axis=0)
    else:
        ratio = np.full(x.shape[1], np.nan, np.float32)

    state = np.full(x.shape[1], OK, np.int8)
    for mask, code in ((ratio > th.line_ratio, LINE_NOISE), (std > th.amplitude_uv, EXCESSIVE),
                       (flat, FLAT), (railed, RAILED), (nonfinite, NONFINITE)):
        state[mask] = code
    return QualityReport(timestamp, state, std, ratio)


def describe(report: QualityReport, channel: int) -> str:
    """``flat (std 0.02 µV)``: a channel's state with the number that decided it."""
    s = int(report.state[channel])
    detail = {
        LINE_NOISE: f"50/60 Hz power {report.line_ratio[channel]:.1f}x the 1-45 Hz EEG power",
        EXCESSIVE: f"std {report.std_uv[channel]:.0f} µV",
        FLAT: f"std {report.std_uv[channel]:.2f} µV",
        RAILED: "clipped or beyond the rail",
        NONFINITE: "NaN/Inf samples",
    }.get(s)
    return STATES[s] if detail is None else f"{STATES[s]} ({detail})"


class QualityMonitor:
    """Collects raw chunks into blocks, assesses each, and logs channels whose state changed.

    A pipeline hook: call it with every chunk. A channel is logged again only
    after ``log_every`` seconds of stream time, so a flapping electrode does not
    flood the log; whatever state it settled in is then reported.
    """

    def __init__(self, info: StreamInfo, thresholds: Thresholds = Thresholds(), block_seconds: float = 1.0,
                 log_every: float = 10.0, on_report: Callable[[QualityReport, np.ndarray], None] | None = None):
        self.info, self.thresholds, self.log_every = info, thresholds, log_every
        self.to_uv = info.to_microvolts
        self.on_report = on_report
        self._block = np.empty((max(16, round(block_seconds * info.srate)), info.n_channels), np.float32)
        self._fill = 0
        self._logged = np.full(info.n_channels, OK, np.int8)
        self._logged_at = np.full(info.n_channels, -np.inf)
        self.latest: QualityReport | None = None

    def __call__(self, chunk: Chunk) -> None:
        data, i = chunk.data, 0
        while i < len(data):
            k = min(len(self._block) - self._fill, len(data) - i)
            self._block[self._fill : self._fill + k] = data[i : i + k]
            self._fill += k
            i += k
            if self._fill == len(self._block):
                self._fill = 0
                self._evaluate(float(chunk.timestamps[i - 1]))

    def _evaluate(self, timestamp: float) -> None:
        r = assess(self._block, self.info.srate, self.to_uv, self.thresholds, timestamp)
        self.latest = r
        if self.on_report is not None:
            self.on_report(r, self._block)
        due = (r.state != self._logged) & (timestamp - self._logged_at >= self.log_every)
        if not due.any():
            return
        self._logged[due] = r.state[due]
        self._logged_at[due] = timestamp
        names = self.info.channel_names
        bad = [c for c in np.flatnonzero(due) if r.state[c] != OK]
        if bad:
            # One entry per channel while few are affected; grouped by state when many are (a whole cap railed).
            entries = ([f"{names[c]} {describe(r, c)}" for c in bad] if len(bad) <= 8 else
                       [f"{STATES[s]}: {names_list([names[c] for c in bad if r.state[c] == s])}"
                        for s in sorted({int(r.state[c]) for c in bad})])
            log.warning("stream %r: %d channel(s) need attention: %s", self.info.name, len(bad), "; ".join(entries))
        good = [names[c] for c in np.flatnonzero(due) if r.state[c] == OK]
        if good:
            log.info("stream %r: channel(s) back to normal: %s", self.info.name, names_list(good))
