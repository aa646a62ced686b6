"""The model contract: what training and the live path need from a registered model."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from bci_stream import registry
from bci_stream.stratified import LiveStrata, Prior, StratifiedNorm, StratifiedNormalizer, Strata

#: What ``strata`` may be in ``Classifier.forward``.
StrataArg = torch.Tensor | LiveStrata | None


class Classifier(nn.Module):
    """Base class of every model registered as ``models.NAME`` in the ``bci_stream.plugins`` entry points.

    A model is built as ``cls(n_features=..., n_classes=..., **kwargs)`` and maps feature rows
    [n, n_features] to logits [n, n_classes] with ``forward(x, strata)``. It hands ``strata`` to
    each :class:`StratifiedNorm` it holds: stratum ids (training, and whole sessions offline),
    :class:`LiveStrata` (training on live-order statistics), or None (live, one window at a time).
    Online statistics, stratum switching and warm-up priors are done here, on those layers, so a
    new model is one class and one entry point.
    """

    #: Values its ``norm`` argument takes, i.e. how ``--norm`` may normalize its hidden layers; () takes none.
    hidden_norms: ClassVar[tuple[str, ...]] = ()

    def forward(self, x: torch.Tensor, strata: StrataArg = None) -> torch.Tensor:
        raise NotImplementedError

    def stratified_layers(self) -> list[StratifiedNorm]:
        return [m for m in self.modules() if isinstance(m, StratifiedNorm)]

    def start_online(self, strata: Strata, prior_weight: float, participant_weight: float = 0.0,
                     halflife: float | None = None, state_dir=None, signature: str = "") -> None:
        """Give every stratified layer running statistics that follow ``strata``'s current stratum."""
        for i, layer in enumerate(self.stratified_layers()):
            prior = Prior(layer.prior_mean.cpu().double().numpy(), layer.prior_var.cpu().double().numpy(), prior_weight)
            layer.online = strata.track(StratifiedNormalizer(
                len(prior.mean), prior, halflife, layer.eps, None if state_dir is None else f"{state_dir}/layer{i}",
                f"{signature}-layer{i}", participant_weight))

    @torch.no_grad()
    def fit_priors(self, x: torch.Tensor, strata: torch.Tensor) -> None:
        """Each stratified layer's warm-up prior: the average training stratum of what reaches it."""
        self.eval()
        inputs = []
        hooks = [layer.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
                 for layer in self.stratified_layers()]
        try:
            self.forward(x, strata)
        finally:
            for h in hooks:
                h.remove()
        for layer, h in zip(self.stratified_layers(), inputs):
            layer.set_prior(h, strata)


def model_class(name: str) -> type[Classifier]:
    """The registered model ``name``, checked against the contract."""
    cls = registry.load_plugin("models", name)
    if not (isinstance(cls, type) and issubclass(cls, Classifier)):
        raise registry.UnknownNameError(f"model plugin {name!r} is not a bci_stream.model.Classifier subclass")
    return cls


def trained_classifier(architecture: str, arch_kwargs: dict, state_dict: dict, device: str = "cpu") -> Classifier:
    """A registered model rebuilt from stored arguments and weights, on ``device``, in eval mode."""
    model = model_class(architecture)(**arch_kwargs)
    model.load_state_dict(state_dict)
    return model.to(device).eval()
