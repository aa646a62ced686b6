"""Stratified normalization inside a torch network: offline by whole strata, causally, or live."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from bci_stream.stratified.moments import HIDDEN_EPS, batch_zscore, causal_zscore, population_prior


class LiveStrata(NamedTuple):
    """Rows laid out as the live path meets them: ``start`` as in :func:`causal_zscore`, and the
    weight of the hidden layers' population prior in rows."""

    start: torch.Tensor
    prior_weight: float


class StratifiedNorm(nn.Module):
    """Normalization per (participant, session) stratum, with no learnable scale or shift.

    Given stratum ids (training, or a whole session offline) it uses each
    stratum's batch rows, as Fdez et al. 2021; given :class:`LiveStrata`, causal
    running statistics; given nothing (live), the online step it was attached to
    (:meth:`bci_stream.model.Classifier.start_online`). Weights are never touched.
    """

    def __init__(self, n_units: int, eps: float = HIDDEN_EPS):
        super().__init__()
        self.eps = eps
        self.register_buffer("prior_mean", torch.zeros(n_units))
        self.register_buffer("prior_var", torch.ones(n_units))
        self.online: Callable[[np.ndarray], np.ndarray] | None = None

    def forward(self, x: torch.Tensor, strata: torch.Tensor | LiveStrata | None = None) -> torch.Tensor:
        if isinstance(strata, LiveStrata):
            return causal_zscore(x, strata.start, self.prior_mean, self.prior_var, strata.prior_weight, self.eps)
        if strata is not None:
            if self.training:
                self.set_prior(x.detach(), strata)
            return batch_zscore(x, strata, self.eps)
        if self.online is None:
            raise RuntimeError("StratifiedNorm without strata needs start_online() first (the live path does it)")
        return torch.from_numpy(self.online(x.detach().cpu().numpy())).to(x.device)

    @torch.no_grad()
    def set_prior(self, x: torch.Tensor, strata: torch.Tensor) -> None:
        """The average stratum of these rows becomes the prior that causal and live statistics start from."""
        mean, var = population_prior(x, strata)
        self.prior_mean.copy_(mean)
        self.prior_var.copy_(var)
