"""Which windows are artifacts, and why.

An artifact window (a storm of noise on every channel, a loose cap) is neither
classified nor learned from: its label would be noise read as emotion, and its
features would drag the stratum's statistics (and the participant's prior saved
from them) for minutes. The rules and their defaults were chosen by measuring
them on the generator's blinks, muscle bursts and storms (``benchmarks/artifacts.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bci_stream.numeric_settings import NumericSettings

#: The label an artifact window publishes instead of a class.
ARTIFACT = "artifact"


@dataclass(frozen=True)
class ArtifactRule(NumericSettings):
    """When a window is an artifact. Amplitudes are in microvolts after the pipeline's filters."""

    peak_uv: float = 150.0  # a channel is beyond when |x| exceeds this anywhere in the window ...
    channel_share: float = 0.5  # ... and the window is an artifact when at least this share of channels is

    WHAT = "artifact rule"


class ArtifactDetector:
    """Judges windows by ``rule``; ``to_uv`` converts the windows' unit to microvolts.

    A rule on the features' distance from the stratum's statistics was measured too and left out: it missed
    windows only partly in a storm, and since the statistics learn only from what it accepts, a real change
    of the signal could shut a stratum out for good (``benchmarks/artifacts.py``)."""

    def __init__(self, rule: ArtifactRule, to_uv: float = 1.0):
        self.rule, self.to_uv = rule, float(to_uv)

    def __call__(self, windows: np.ndarray, features: np.ndarray) -> list[dict | None]:
        """For each window [n, channels, samples] (and its feature row, which this rule does not need): None
        (clean), or the status fields saying why it is an artifact (``reason=amplitude;channels=K;peak_uv=P``)."""
        out: list[dict | None] = [None] * len(windows)
        peak = np.abs(windows).max(axis=2) * self.to_uv  # [n, channels]
        beyond = (peak > self.rule.peak_uv).sum(axis=1)
        for i in np.flatnonzero(beyond >= self.rule.channel_share * windows.shape[1]):
            out[i] = {"reason": "amplitude", "channels": int(beyond[i]), "peak_uv": round(float(peak[i].max()))}
        return out
