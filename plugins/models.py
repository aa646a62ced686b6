"""Torch classifiers over feature vectors, with stratified, batch or no normalization inside."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from bci_stream.model import Classifier, StrataArg
from bci_stream.stratified import StratifiedNorm


class FeatureNet(Classifier):
    """Dropout -> [Linear -> LeakyReLU -> norm] x len(hidden) -> Linear (Fdez et al. 2021).

    ``norm`` is ``stratified``, ``batch`` or ``none`` (no normalization in the hidden blocks).
    """

    hidden_norms = ("stratified", "batch", "none")

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (64, 64, 64),
                 norm: str = "stratified", dropout: float = 0.25):
        super().__init__()
        if norm not in self.hidden_norms:
            raise ValueError(f"norm must be one of {', '.join(self.hidden_norms)}, got {norm!r}")
        self.norm = norm
        self.dropout = nn.Dropout(dropout)
        widths = [n_features, *hidden]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.act = nn.LeakyReLU()
        make = {"stratified": StratifiedNorm, "batch": nn.BatchNorm1d, "none": lambda n: nn.Identity()}[norm]
        self.norms = nn.ModuleList(make(h) for h in hidden)
        self.out = nn.Linear(widths[-1], n_classes)

    def forward(self, x: torch.Tensor, strata: StrataArg = None) -> torch.Tensor:
        x = self.dropout(x)
        for lin, norm in zip(self.linears, self.norms):
            x = self.act(lin(x))
            x = norm(x, strata) if isinstance(norm, StratifiedNorm) else norm(x)
        return self.out(x)


class _BinaryAsTwoLogits(nn.Module):
    """One output unit z served as logits [0, z]: softmax gives (1 - sigmoid(z), sigmoid(z))."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(z), z], dim=-1)


def _xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)


class DeapDNN(Classifier):
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

    def forward(self, x: torch.Tensor, strata: StrataArg = None) -> torch.Tensor:
        return self.net(x)


class DeapCNN(Classifier):
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

    def forward(self, x: torch.Tensor, strata: StrataArg = None) -> torch.Tensor:
        return self.net(x.reshape(-1, 1, *self.shape))
