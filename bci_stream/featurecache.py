"""Whole-dataset features for ``bci-stream features`` and training, cached on the input files and the parameters.

The cache key hashes the dataset's name and options, every input file's path,
size and modification time, every parameter, the package version and the source
of the code that computes the features, so a changed file, option, release or
feature code computes afresh; a hit is a copy of the earlier
result. Entries are written atomically, so an interrupted run never leaves a
half file to be reused. A dataset without files (a generated one) is computed
every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import types
from importlib.metadata import version
from pathlib import Path

import numpy as np

from bci_stream import registry
from bci_stream.atomic import atomic_write
from bci_stream.batch import FeatureSet, build_features
from bci_stream.channels import onto_montage
from bci_stream.dataset import Dataset
from bci_stream.filters import FilterSpec

FORMAT = "bci-stream-features/1"
BASELINES = ("drop", "subtract")


def default_cache_dir() -> Path:
    """``$BCI_STREAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/bci-stream/features`` (``~/.cache/...``)."""
    if os.environ.get("BCI_STREAM_CACHE_DIR"):
        return Path(os.environ["BCI_STREAM_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bci-stream" / "features"


def code_version(dataset: Dataset, features: str) -> str:
    """A digest of the code that turns this dataset's files into these features: every bci_stream module the
    feature's module, the dataset's reader, the batch path, its filters and the montage mapping use, directly
    or through each other. An edit to any of them misses the cache, where the package version alone (bumped by
    hand, if ever) would serve stale features."""
    extractor = registry.load_plugin("features", features)
    roots = (extractor.compute.__module__, type(dataset).__module__, build_features.__module__,
             FilterSpec.__module__, onto_montage.__module__)
    modules: set[types.ModuleType] = set()
    for name in roots:  # a root may be another package's (a feature plug-in); what it uses is followed in ours
        modules.add(sys.modules[name])
        _used(sys.modules[name], modules, follow=True)
    digest = hashlib.sha256()
    for module in sorted(modules, key=lambda m: m.__name__):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def _used(module: types.ModuleType, into: set, follow: bool = False) -> None:
    """The bci_stream modules ``module`` uses (modules and objects in its namespace), transitively, into ``into``."""
    if not follow:
        if module in into or not module.__name__.startswith("bci_stream") or not getattr(module, "__file__", None):
            return
        into.add(module)
    for value in vars(module).values():
        used = value if isinstance(value, types.ModuleType) else sys.modules.get(getattr(value, "__module__", "") or "")
        if used is not None and used is not module:
            _used(used, into)


def cache_key(files, params: dict) -> str:
    stats = []
    for f in files:
        st = Path(f).stat()
        stats.append([str(Path(f).resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps([FORMAT, version("bci-stream"), stats, params], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def to_arrays(fset: FeatureSet, dataset: str, baseline: str) -> dict[str, np.ndarray]:
    """What the ``.npz`` holds: the arrays the issue names, and what is needed to trust them."""
    return {
        "X": fset.X, "y": fset.y.astype(np.int64), "participant": fset.participant.astype(str),
        "session": fset.session.astype(str), "trial": fset.trial.astype(np.int64),
        "classes": np.asarray(fset.class_names, str),
        "feature_names": np.asarray(registry.load_plugin("features", fset.features).names(fset.channels), str),
        "channels": np.asarray(fset.channels, str), "srate": np.float64(fset.srate), "features": np.str_(fset.features),
        "window": np.float64(fset.window), "hop": np.float64(fset.hop), "filters": np.str_(json.dumps(fset.filters)),
        "dataset": np.str_(dataset), "baseline": np.str_(baseline), "format": np.str_(FORMAT),
    }


def write_npz(arrays: dict, path) -> Path:
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def _copy(src: Path, dst) -> Path:
    with open(src, "rb") as f:
        return atomic_write(dst, lambda out: shutil.copyfileobj(f, out))


def _arrays(dataset: Dataset, participants, features: str, window: float, hop: float, baseline: str,
            filters: FilterSpec | None, cache_dir, quiet: bool, montage=None) -> tuple[dict | None, Path | None]:
    """(arrays, cache path): arrays is None on a cache hit, whose file is then the cache path.

    ``montage`` (channel names) re-expresses every trial on those channels first (``channels.onto_montage``).
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline {baseline!r}: expected one of {', '.join(BASELINES)}")
    if baseline == "subtract" and not dataset.has_baseline:
        raise ValueError(f"baseline subtraction needs a recorded pre-trial baseline; dataset {dataset.name!r} has none")
    registry.load_plugin("features", features)  # an unknown name fails before any reading
    participants = dataset.select(participants)
    files = dataset.files(participants) if cache_dir is not False else None
    cached = None
    if files is not None:
        params = {"dataset": dataset.name, "options": dataset.option_values, "participants": participants,
                  "features": features, "window": window, "hop": hop, "baseline": baseline,
                  "filters": filters.to_dict() if filters else None, "code": code_version(dataset, features),
                  "montage": None if montage is None else list(montage)}
        cached = Path(cache_dir or default_cache_dir()) / f"{dataset.name}-{features}-{cache_key(files, params)}.npz"
        if cached.is_file():
            return None, cached
    trials = dataset.trials(participants, baseline="keep" if baseline == "subtract" else "drop")
    if montage is not None:
        trials = onto_montage(trials, montage)
    fset = build_features(trials, dataset.n_trials(participants), dataset.class_names, features, window, hop, filters,
                        quiet=quiet, subtract_baseline=baseline == "subtract")
    arrays = to_arrays(fset, dataset.name, baseline)
    if cached is not None:
        write_npz(arrays, cached)
    return arrays, cached


def dataset_features(dataset: Dataset, output, features: str = "de", window: float = 1.0, hop: float = 0.5,
                     baseline: str = "drop", filters: FilterSpec | None = FilterSpec(), cache_dir=None,
                     quiet: bool = False, participants=None) -> tuple[Path, bool]:
    """Write the features of every window of ``dataset`` (of ``participants``: ids, default all) to ``output``;
    returns (output, from_cache).

    ``baseline="subtract"`` (datasets with ``has_baseline``) reads trials with their
    pre-trial baseline and subtracts its mean features (``build_features(subtract_baseline=True)``);
    ``"drop"`` leaves the baseline out. ``cache_dir=False`` turns the cache off.
    """
    arrays, cached = _arrays(dataset, participants, features, window, hop, baseline, filters, cache_dir, quiet)
    output = Path(output)
    if arrays is None:
        _copy(cached, output)
        return output, True
    write_npz(arrays, output)
    return output, False


def feature_set(dataset: Dataset, features: str = "de", window: float = 1.0, hop: float = 0.5,
                baseline: str = "drop", filters: FilterSpec | None = FilterSpec(), cache_dir=None,
                quiet: bool = False, participants=None, montage=None) -> FeatureSet:
    """The same features as ``dataset_features``, through the same cache, as a FeatureSet for training;
    ``montage`` (channel names): on those channels, for a headset's own model."""
    arrays, cached = _arrays(dataset, participants, features, window, hop, baseline, filters, cache_dir, quiet,
                             montage)
    if arrays is None:
        with np.load(cached) as z:
            arrays = {k: z[k] for k in z.files}
    return FeatureSet(
        X=arrays["X"], y=arrays["y"], participant=arrays["participant"], session=arrays["session"],
        class_names=tuple(arrays["classes"].tolist()), channels=tuple(arrays["channels"].tolist()),
        srate=float(arrays["srate"]), features=str(arrays["features"]), window=float(arrays["window"]),
        hop=float(arrays["hop"]), filters=json.loads(str(arrays["filters"])), trial=arrays["trial"],
    )
