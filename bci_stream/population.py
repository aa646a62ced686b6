"""Population-referenced decoding: a second classifier that owes nothing to the session so far, for a new person
while their own statistics are young.

Until a new person's session has seen a second emotion, its running mean is the first clip's, and stratum z-scores
take that emotion for the person's level. This classifier reads each window's relative spectral profile (every
channel's log band powers less their mean, so the channel's gain cancels) z-scored by the training population's
statistics. Live, its log-probabilities are pooled with the stratified model's, weighted by the share the population
prior still has in the person's input statistics: all at the first window, W / (W + n) after n windows, nothing for
a returning person, whose statistics start from their own earlier sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bci_stream.model import trained_classifier
from bci_stream.stratified import INPUT_EPS, zscore

#: Probabilities are floored here before their logarithm, so a class one model rules out can still be pooled.
TINY = 1e-9


def relative_profile(X: np.ndarray, per_channel: int) -> np.ndarray:
    """Each channel's values less their mean over the channel's ``per_channel`` values (channel-major rows of log
    powers): a gain that scales all of a channel's bands is one offset, and it cancels."""
    X = np.asarray(X, np.float64)
    v = X.reshape(len(X), -1, per_channel)
    return (v - v.mean(axis=2, keepdims=True)).reshape(len(X), -1)


def log_linear_pool(live: np.ndarray, population: np.ndarray, share: float) -> np.ndarray:
    """Log-linear pooling of two class distributions, the population's with weight ``share``, renormalized."""
    logp = (1.0 - share) * np.log(np.maximum(live, TINY)) + share * np.log(np.maximum(population, TINY))
    p = np.exp(logp - logp.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


@dataclass
class PopulationModel:
    """The classifier with the training population's statistics of its inputs, as a bundle stores it."""

    architecture: str
    arch_kwargs: dict
    state_dict: dict
    mean: np.ndarray
    var: np.ndarray
    per_channel: int

    def inputs(self, X: np.ndarray) -> np.ndarray:
        return zscore(relative_profile(X, self.per_channel), self.mean, self.var, INPUT_EPS).astype(np.float32)

    def to_dict(self) -> dict:
        return {"architecture": self.architecture, "arch_kwargs": dict(self.arch_kwargs),
                "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()},
                "mean": np.asarray(self.mean).tolist(), "var": np.asarray(self.var).tolist(),
                "per_channel": int(self.per_channel)}

    @classmethod
    def from_dict(cls, d: dict) -> PopulationModel | None:
        if not d:
            return None
        return cls(d["architecture"], dict(d["arch_kwargs"]), dict(d["state_dict"]),
                   np.asarray(d["mean"], np.float64), np.asarray(d["var"], np.float64), int(d["per_channel"]))


class PopulationDecoder:
    """A bundle's population model ready to classify raw feature rows live."""

    def __init__(self, population: PopulationModel, device: str = "cpu"):
        self.population, self.device = population, device
        self.model = trained_classifier(population.architecture, population.arch_kwargs, population.state_dict,
                                        device)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(self.population.inputs(x)).to(self.device))
            return torch.softmax(logits, dim=-1).cpu().numpy()
