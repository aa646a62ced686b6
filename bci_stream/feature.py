"""The feature contract: what a registered ``features.NAME`` plugin is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class FeatureExtractor:
    """A named feature: ``compute(windows [n, ch, t], srate) -> [n, ch * len(per_channel)]`` float32.

    The live path calls it with one window, the batch path with thousands: one
    vectorized function serves both, so they cannot diverge.
    """

    name: str
    compute: Callable[[np.ndarray, float], np.ndarray]
    per_channel: Sequence[str]
    doc: str
    #: Each value is the logarithm of a power, so a channel's gain (electrode, skull) is one offset shared by all
    #: its values: what :func:`bci_stream.population.relative_profile` cancels.
    log_power: bool = False

    def names(self, channels: Sequence[str]) -> list[str]:
        """Feature names in output order: channel-major, then ``per_channel``."""
        return [f"{ch}:{part}" for ch in channels for part in self.per_channel]
