"""Torch classifiers over normalized feature vectors."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Dropout -> [Linear -> LeakyReLU] x len(hidden) -> Linear; the baseline of Fdez et al. 2021."""

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (64, 64, 64), dropout: float = 0.25):
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU()]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
