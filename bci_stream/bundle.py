"""A model bundle: one file that carries everything needed to run a model on a live stream."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bci_stream import registry
from bci_stream.atomic import atomic_write
from bci_stream.channels import MAX_INTERPOLATED, ChannelMap, MontageError, check_rename, match, names_list
from bci_stream.filters import FilterSpec
from bci_stream.model import Classifier, trained_classifier
from bci_stream.population import PopulationDecoder, PopulationModel
from bci_stream.stratified import INPUT_EPS, ClassEffects, Level, Prior, Strata, StratifiedNormalizer, zscore
from bci_stream.stream import UNITS, StreamInfo

FORMAT = "bci-stream-bundle/1"


class BundleError(ValueError):
    pass


def _plain(value):
    """``value`` with numpy scalars and arrays as Python numbers, strings and lists: a bundle loads with
    ``weights_only``, which refuses numpy objects, so a channel name read from an ``.npz`` would make a model that
    saves but never loads."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


@dataclass
class ModelBundle:
    architecture: str
    arch_kwargs: dict
    state_dict: dict
    features: str
    channels: list[str]
    srate: float
    unit: str
    class_names: list[str]
    window: float
    hop: float
    filters: dict = field(default_factory=lambda: FilterSpec().to_dict())
    # {"mode": "stratified"|"global"|"none", "prior_mean": [...], "prior_var": [...],
    #  "prior_seconds": s, "participant_seconds": s, "halflife_seconds": s or None}
    normalization: dict = field(default_factory=lambda: {"mode": "none"})
    report: dict = field(default_factory=dict)
    name: str = ""
    #: A population-referenced model (bci_stream/population.py, ``PopulationModel.to_dict``); empty: none.
    population: dict = field(default_factory=dict)

    # persistence --------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Atomic write, so a crash never leaves half a model where a good one was."""
        payload = {"format": FORMAT, **_plain({k: v for k, v in asdict(self).items() if k != "state_dict"})}
        payload["state_dict"] = {k: v.detach().cpu() for k, v in self.state_dict.items()}
        return atomic_write(path, lambda f: torch.save(payload, f))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ModelBundle":
        path = Path(path)
        if not path.is_file():
            raise BundleError(f"model bundle {path}: no such file")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for foreign files
            raise BundleError(f"model bundle {path}: not a bci-stream bundle ({e.__class__.__name__}: {e})") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise BundleError(f"model bundle {path}: expected format {FORMAT!r}, got {payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r}")
        payload.pop("format")
        try:
            return cls(**payload)
        except TypeError as e:
            raise BundleError(f"model bundle {path}: {e}") from None

    # where it comes from -------------------------------------------------
    @property
    def provenance(self) -> dict:
        """The training data as ``train`` records it (``Dataset.provenance``); empty if unrecorded."""
        return dict(self.report.get("data") or {})

    @property
    def synthetic(self) -> bool:
        """Trained on generated EEG (or on data nobody recorded the origin of)."""
        return bool(self.provenance.get("synthetic", True))

    def describe_provenance(self) -> str:
        """One line: what the model was trained on."""
        data = self.provenance
        if not data:
            return "training data not recorded"
        opts = data.get("options") or {}
        people, sessions = len(data.get("participants", [])), sum(map(len, (data.get("sessions") or {}).values()))
        what = "synthetic EEG from bci-stream's generator" if data.get("synthetic") else f"dataset {data.get('dataset')!r}"
        settings = ", ".join(f"{k} {v}" for k, v in opts.items() if k not in ("participants", "sessions"))
        return f"{what}: {people} participants, {sessions} sessions" + (f" ({settings})" if settings else "")

    def reliability(self, age: float, returning: bool) -> float | None:
        """The accuracy held-out people of the training data reached live when their stratum was ``age`` seconds
        old (``report["reliability"]``: the bin (start, end] that holds ``age``, the last one past its end), in a
        returning person's session or a new person's first; None where the bundle has no such curve."""
        curve = (self.report.get("reliability") or {}).get("returning" if returning else "first")
        if not curve:
            return None
        return next((c for c in reversed(curve) if c["t_start"] < age), curve[0])["accuracy"]

    # use against a stream -----------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return registry.load_plugin("features", self.features).names(self.channels)

    @property
    def signature(self) -> str:
        """Identifies the feature space, so saved normalizer state is only reused where it means the same."""
        key = json.dumps([self.features, self.channels, self.filters, self.window], sort_keys=True)
        return f"{self.features}-{len(self.channels)}ch-{hashlib.sha1(key.encode()).hexdigest()[:10]}"

    def channel_map(self, info: StreamInfo, rename: dict[str, str] | None = None,
                    max_interpolated: float = MAX_INTERPOLATED, exclude: frozenset[str] = frozenset()) -> ChannelMap:
        """How the stream's channels feed this model: matched by name, the missing (or ``exclude``d) ones
        interpolated."""
        return match(self.channels, info, rename, max_interpolated, f"model {self.name or self.architecture}",
                     exclude)

    def unit_scale(self, info: StreamInfo) -> float:
        """Factor from the stream's unit to the model's."""
        return UNITS[info.unit] / UNITS[self.unit]

    def build_model(self, device: str = "cpu") -> Classifier:
        return trained_classifier(self.architecture, self.arch_kwargs, self.state_dict, device)

    def population_decoder(self, device: str = "cpu") -> PopulationDecoder | None:
        model = PopulationModel.from_dict(self.population)
        return None if model is None else PopulationDecoder(model, device)

    def online_settings(self, hop: float, part: str = "input") -> dict:
        """Warm-up weights and forgetting of the input (``part="input"``) or in-network statistics,
        stored in seconds, as window counts at this hop.

        Inputs carry person-specific offsets, so the population prior is trusted
        briefly, and a participant's earlier sessions replace it. Hidden
        activations of stratum-normalized inputs are much alike across people,
        so there the population prior is trusted for longer, and always: a
        participant's earlier hidden statistics were gathered while that
        session's input statistics were still settling (on the synthetic SEED
        benchmark using them cost 0.6 points online).
        """
        norm = self.normalization
        inputs = part == "input"
        prior = norm.get("prior_seconds", 15.0) if inputs else norm.get("network_prior_seconds", 600.0)
        halflife = norm.get("halflife_seconds")
        weights = {
            "prior_weight": float(prior) / hop,
            "participant_weight": float(norm.get("participant_seconds", 240.0)) / hop if inputs else 0.0,
            "halflife": None if halflife is None else halflife / hop,
        }
        if inputs:  # a session's level across the directions the classes do not separate (stratified/moments.py)
            level = norm.get("level_seconds")
            weights["level_weight"] = None if level is None else float(level) / hop
        return weights

    def input_normalization(self, strata: Strata, hop: float, state_dir=None) -> Callable[[np.ndarray], np.ndarray] | None:
        """The live step that normalizes feature rows: running statistics per stratum that follow
        ``strata`` (``stratified``; class-aware where training stored its class means, and then the step's
        ``learn`` takes the model's probabilities), the training population's fixed statistics (``global``), or None."""
        norm = self.normalization
        mode = norm.get("mode", "none")
        if mode == "none":
            return None
        if mode not in ("stratified", "global"):
            raise BundleError(f"model {self.name!r}: unknown normalization mode {mode!r}")
        mean, var = np.asarray(norm["prior_mean"], np.float64), np.asarray(norm["prior_var"], np.float64)
        if mode == "global":
            return lambda x: zscore(np.asarray(x, np.float64), mean, var, INPUT_EPS).astype(np.float32)
        s = self.online_settings(hop)
        level = None if s["level_weight"] is None else Level(np.asarray(norm["level_basis"], np.float64),
                                                             s["level_weight"])
        return strata.track(StratifiedNormalizer(len(mean), Prior(mean, var, s["prior_weight"], level), s["halflife"],
                                                 state_dir=state_dir, signature=self.signature,
                                                 participant_weight=s["participant_weight"],
                                                 classes=ClassEffects.from_dict(norm, hop)))


def bundled_paths() -> list[Path]:
    """Default bundles shipped in the package."""
    from importlib.resources import files

    return sorted(Path(str(p)) for p in files("bci_stream.plugins.bundles").iterdir() if p.name.endswith(".pt"))


def load_model(model: str | os.PathLike) -> ModelBundle:
    """A bundle by path, or a shipped one by name (``seed62``)."""
    shipped = {p.stem: p for p in bundled_paths()}
    if str(model) in shipped and not Path(model).exists():
        return ModelBundle.load(shipped[str(model)])
    if not Path(model).exists() and Path(model).suffix == "" and os.sep not in str(model):
        raise BundleError(f"--model {model}: no such file, and no bundled model of that name; "
                          f"bundled models: {', '.join(shipped) or 'none'}")
    return ModelBundle.load(model)


def default_bundle_for(info: StreamInfo, rename: dict[str, str] | None = None,
                       max_interpolated: float = MAX_INTERPOLATED) -> ModelBundle:
    """The shipped bundle that fits the stream best: all its channels present if any does (the most
    channels, then the nearest rate), else the one needing the fewest interpolated channels."""
    check_rename(info, rename or {})  # before the search, which takes a montage error as "does not fit"
    bundles = [(p, ModelBundle.load(p)) for p in bundled_paths()]

    def fitting(limit: float) -> list[tuple]:
        out = []
        for path, b in bundles:
            try:
                n_missing = len(b.channel_map(info, rename, limit).interpolated)
            except MontageError:
                continue
            out.append((n_missing, -len(b.channels), abs(np.log(b.srate / info.srate)), path.name, b))
        return out

    fits = fitting(0.0) or fitting(max_interpolated)  # interpolation only when no bundle fits as it is
    if not fits:
        raise BundleError(
            f"no bundled model fits stream {info.name!r} ({info.n_channels} channels: {names_list(info.channel_names)}); "
            f"bundled models: {', '.join(f'{p.stem} ({len(b.channels)} ch)' for p, b in bundles) or 'none'}; "
            "train a model for this montage (bci-stream train --channels-of SOURCE) and pass --model PATH"
        )
    return min(fits, key=lambda c: c[:4])[4]
