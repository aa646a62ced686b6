"""Torch classifiers over feature vectors, with stratified, batch or no normalization inside."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from bci_stream.normalizer import Prior, StratifiedNormalizer, Stratum


def stratum_moments(x: torch.Tensor, strata: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean and (population) variance of each stratum's rows, [strata, units], and their row counts [strata]."""
    n = int(strata.max()) + 1
    count = torch.bincount(strata, minlength=n).to(x.dtype)
    per_row = count.clamp(min=1)[:, None]
    mean = torch.zeros(n, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, strata, x) / per_row
    var = torch.zeros_like(mean).index_add_(0, strata, (x - mean[strata]) ** 2) / per_row
    return mean, var, count


def stratified_zscore(x: torch.Tensor, strata: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each row z-scored by the mean and (population) variance of the rows of its own stratum."""
    mean, var, _ = stratum_moments(x, strata)
    return (x - mean[strata]) / torch.sqrt(var[strata] + eps)


def causal_zscore(x: torch.Tensor, start: torch.Tensor, prior_mean: torch.Tensor, prior_var: torch.Tensor,
                  weight, eps: float = 1e-5) -> torch.Tensor:
    """Each row z-scored as the live path does it: by its stratum's rows up to and including itself,
    pooled with ``weight`` pseudo-rows of the prior. Differentiable, so a model can be trained
    on the statistics it will meet live.

    A stratum's rows are contiguous and in time order; ``start[i]`` is the first row of
    row i's stratum. ``prior_*`` and ``weight`` broadcast against the rows.
    """
    d = (x - prior_mean).double()
    zero = d.new_zeros(1, d.shape[1])
    c1 = torch.cat([zero, d.cumsum(0)])
    c2 = torch.cat([zero, (d * d).cumsum(0)])
    i = torch.arange(len(x), device=x.device)
    n = (i - start + 1).double()[:, None] + weight
    mean = (c1[i + 1] - c1[start]) / n
    var = (c2[i + 1] - c2[start] + weight * prior_var.double()) / n - mean * mean
    return ((d - mean) / torch.sqrt(var.clamp(min=0) + eps)).to(x.dtype)


class LiveStrata(NamedTuple):
    """Rows laid out as the live path meets them: ``start`` as in :func:`causal_zscore`, and the
    weight of the hidden layers' population prior in rows."""

    start: torch.Tensor
    prior_weight: float


class StratifiedNorm(nn.Module):
    """Normalization per (participant, session) stratum, with no learnable scale or shift.

    Given ``strata`` (training, or a whole session offline) it uses the batch
    rows of each stratum, as Fdez et al. 2021. Without them (live), it keeps
    running statistics per stratum, updated window by window, pooled with the
    training population's within-stratum statistics while the stratum is young.
    Weights are never touched.
    """

    def __init__(self, n_units: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("prior_mean", torch.zeros(n_units))
        self.register_buffer("prior_var", torch.ones(n_units))
        self.online: StratifiedNormalizer | None = None
        self.stratum: Stratum = ("anonymous", "1")

    def forward(self, x: torch.Tensor, strata: torch.Tensor | LiveStrata | None = None) -> torch.Tensor:
        if isinstance(strata, LiveStrata):
            return causal_zscore(x, strata.start, self.prior_mean, self.prior_var, strata.prior_weight, self.eps)
        if strata is not None:
            if self.training:
                self._track_prior(x.detach(), strata)
            return stratified_zscore(x, strata, self.eps)
        if self.online is None:
            raise RuntimeError("StratifiedNorm without strata needs start_online() first (the live path does it)")
        z = self.online.update_transform(self.stratum, x.detach().cpu().numpy())
        return torch.from_numpy(z).to(x.device)

    @torch.no_grad()
    def _track_prior(self, x: torch.Tensor, strata: torch.Tensor) -> None:
        """The mean within-stratum statistics of this training batch: the prior that live-order passes use."""
        mean, var, count = stratum_moments(x, strata)
        self.prior_mean.copy_(mean[count > 0].mean(0))
        self.prior_var.copy_(var[count > 0].mean(0))

    def start_online(self, prior_weight: float, participant_weight: float = 0.0, halflife=None, state_dir=None,
                     signature="") -> StratifiedNormalizer:
        prior = Prior(self.prior_mean.cpu().numpy().astype(np.float64), self.prior_var.cpu().numpy().astype(np.float64),
                      prior_weight)
        self.online = StratifiedNormalizer(len(self.prior_mean), prior, halflife, self.eps, state_dir, signature,
                                           participant_weight)
        return self.online


class FeatureNet(nn.Module):
    """Dropout -> [Linear -> LeakyReLU -> norm] x len(hidden) -> Linear (Fdez et al. 2021).

    ``norm`` is ``stratified``, ``batch`` or ``none`` (a plain MLP).
    """

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (64, 64, 64),
                 norm: str = "stratified", dropout: float = 0.25):
        super().__init__()
        if norm not in ("stratified", "batch", "none"):
            raise ValueError(f"norm must be stratified, batch or none, got {norm!r}")
        self.norm = norm
        self.dropout = nn.Dropout(dropout)
        widths = [n_features, *hidden]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.act = nn.LeakyReLU()
        make = {"stratified": StratifiedNorm, "batch": nn.BatchNorm1d, "none": lambda n: nn.Identity()}[norm]
        self.norms = nn.ModuleList(make(h) for h in hidden)
        self.out = nn.Linear(widths[-1], n_classes)

    def forward(self, x: torch.Tensor, strata: torch.Tensor | None = None) -> torch.Tensor:
        x = self.dropout(x)
        for lin, norm in zip(self.linears, self.norms):
            x = self.act(lin(x))
            x = norm(x, strata) if isinstance(norm, StratifiedNorm) else norm(x)
        return self.out(x)

    # the live path -------------------------------------------------------
    def stratified_layers(self) -> list[StratifiedNorm]:
        return [n for n in self.norms if isinstance(n, StratifiedNorm)]

    def start_online(self, prior_weight: float = 30.0, participant_weight: float = 0.0, halflife=None,
                     state_dir=None, signature="") -> list:
        """Switch every stratified layer to running per-stratum statistics; returns their normalizers."""
        return [
            layer.start_online(prior_weight, participant_weight, halflife,
                               None if state_dir is None else f"{state_dir}/layer{i}", f"{signature}-layer{i}")
            for i, layer in enumerate(self.stratified_layers())
        ]

    def set_stratum(self, key: Stratum) -> None:
        for layer in self.stratified_layers():
            layer.stratum = key

    @torch.no_grad()
    def fit_priors(self, x: torch.Tensor, strata: torch.Tensor) -> None:
        """Store each stratified layer's mean within-stratum input statistics: the warm-up prior live."""
        self.eval()
        inputs = []
        hooks = [layer.register_forward_pre_hook(lambda m, args: inputs.append(args[0])) for layer in self.stratified_layers()]
        self.forward(x, strata)
        for h in hooks:
            h.remove()
        for layer, h in zip(self.stratified_layers(), inputs):
            layer._track_prior(h, strata)


class _BinaryAsTwoLogits(nn.Module):
    """One output unit z served as logits [0, z]: softmax gives (1 - sigmoid(z), sigmoid(z))."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(z), z], dim=-1)


def _xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)


class DeapDNN(nn.Module):
    """DEAP baseline over the 32 x 99 statistical features: Dropout 0.25 -> 5000 -> 500 -> 1000 -> 1 (ReLU, Dropout 0.5)."""

    def __init__(self, n_features: int = 3168, n_classes: int = 2):
        super().__init__()
        if n_classes != 2:
            raise ValueError("DeapDNN is a binary (one-output) model")
        self.net = nn.Sequential(
            nn.Dropout(0.25), nn.Linear(n_features, 5000), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(5000, 500), nn.ReLU(), nn.Dropout(0.5), nn.Linear(500, 1000), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(1000, 1), _BinaryAsTwoLogits(),
        )
        _xavier(self)

    def forward(self, x: torch.Tensor, strata=None) -> torch.Tensor:
        return self.net(x)


class DeapCNN(nn.Module):
    """DEAP baseline: the 32 x 99 features as an image; conv 3x3 1->20, conv 3x3 20->40, max-pool 2x2, dense 128 -> 1."""

    def __init__(self, n_features: int = 3168, n_classes: int = 2, n_channels: int = 32):
        super().__init__()
        if n_classes != 2 or n_features % n_channels:
            raise ValueError(f"DeapCNN needs 2 classes and channels x per-channel features, got {n_features}, {n_classes}")
        self.shape = (n_channels, n_features // n_channels)
        h, w = (self.shape[0] - 4) // 2, (self.shape[1] - 4) // 2
        self.net = nn.Sequential(
            nn.Conv2d(1, 20, 3), nn.ReLU(), nn.Conv2d(20, 40, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(40 * h * w, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 1), _BinaryAsTwoLogits(),
        )
        _xavier(self)

    def forward(self, x: torch.Tensor, strata=None) -> torch.Tensor:
        return self.net(x.reshape(-1, 1, *self.shape))
