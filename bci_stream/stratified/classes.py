"""What each class adds to a stratum's features, so running statistics can leave it out.

Offline, a session's statistics cover every emotion in it, so its mean is the person's own level.
Live, a young session has seen one or two emotions, and their running mean takes the emotion for
the person's level: the clip under way looks average. Training knows, for every class, where its
windows lie in stratum z-scores (the class means below). Live, each window's own effect, as the
model judges it (its class probabilities times those means), is taken out before the window joins
the statistics, an EM-style step: the statistics estimate the person, the model the emotion.

A wrong guess taken out this way stays in the statistics and makes the next windows agree with it (a lock-on). So
what was taken out fades back in with a half-life (``fade``, in windows; the bundle's ``class_fade_seconds``, as long
as the training clips): within a clip the clip's own effect stays out, while a guess made clips ago no longer
counts, and over a session the statistics heal as plain ones do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassEffects:
    """``means`` [classes, features]: each class's mean stratum z-score in training; ``within`` [features]: the
    share of a stratum's variance left within classes, since residuals vary less than the windows themselves."""

    means: np.ndarray
    within: np.ndarray
    #: Half-life, in windows, of an effect taken out (None: it stays out for the session).
    fade: float | None = None

    @classmethod
    def from_training(cls, z: np.ndarray, y: np.ndarray, n_classes: int) -> "ClassEffects":
        """From stratum z-scores ``z`` (each stratum's rows at mean 0, variance 1) and their classes ``y``."""
        z = np.asarray(z, np.float64)
        share = np.bincount(y, minlength=n_classes) / len(y)
        means = np.stack([z[y == c].mean(axis=0) if share[c] else np.zeros(z.shape[1]) for c in range(n_classes)])
        # Floored: a feature that is nearly all class (none in real EEG) must not blow residual variance up.
        within = np.maximum(1.0 - share @ means**2, 0.05)
        return cls(means, within)

    def effect(self, var: np.ndarray, eps: float, probs: np.ndarray) -> np.ndarray:
        """The class effect ``probs`` expect, in the feature's units at variance ``var``."""
        return np.sqrt(var + eps) * (np.asarray(probs, np.float64) @ self.means)

    @property
    def kept(self) -> float:
        """The share of an effect taken out that stays out one window later."""
        return 1.0 if self.fade is None else 0.5 ** (1.0 / self.fade)

    #: The keys of a bundle's normalization that make its live statistics class-aware.
    KEYS = ("class_means", "within_share", "class_fade_seconds")

    def to_dict(self) -> dict:
        """Means and within shares; the fade is in seconds, which training stores beside them."""
        return {"class_means": self.means.tolist(), "within_share": self.within.tolist()}

    @classmethod
    def strip(cls, normalization: dict) -> dict:
        """A bundle's ``normalization`` with plain live statistics."""
        return {k: v for k, v in normalization.items() if k not in cls.KEYS}

    @classmethod
    def from_dict(cls, d: dict, hop: float) -> "ClassEffects | None":
        """From a bundle's ``normalization``, live at windows ``hop`` seconds apart. A bundle trained before the fade
        has none: its effects stay out, as they did when it was measured."""
        if "class_means" not in d:
            return None
        fade = d.get("class_fade_seconds")
        return cls(np.asarray(d["class_means"], np.float64), np.asarray(d["within_share"], np.float64),
                   None if fade is None else float(fade) / hop)
