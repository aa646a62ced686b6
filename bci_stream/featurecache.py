"""Whole-dataset features for ``bci-stream features``, cached on the input files and the parameters.

The cache key hashes every input file's path, size and modification time with
every parameter and the package version, so a changed file, option or release
computes afresh; a hit is a copy of the earlier result. Entries are written
atomically, so an interrupted run never leaves a half file to be reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np

from bci_stream import registry
from bci_stream.batch import FeatureSet, build_features
from bci_stream.devices.datasets import dataset_files, dataset_trials
from bci_stream.filters import FilterSpec

FORMAT = "bci-stream-features/1"
BASELINES = ("drop", "subtract")


def default_cache_dir() -> Path:
    """``$BCI_STREAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/bci-stream/features`` (``~/.cache/...``)."""
    if os.environ.get("BCI_STREAM_CACHE_DIR"):
        return Path(os.environ["BCI_STREAM_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bci-stream" / "features"


def cache_key(files, params: dict) -> str:
    stats = []
    for f in files:
        st = Path(f).stat()
        stats.append([str(Path(f).resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps([FORMAT, version("bci-stream"), stats, params], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def to_arrays(fs: FeatureSet, dataset: str, baseline: str) -> dict[str, np.ndarray]:
    """What the ``.npz`` holds: the arrays the issue names, and what is needed to trust them."""
    return {
        "X": fs.X, "y": fs.y.astype(np.int64), "participant": fs.participant.astype(str),
        "session": fs.session.astype(str), "trial": fs.trial.astype(np.int64),
        "classes": np.asarray(fs.class_names, str),
        "feature_names": np.asarray(registry.load_plugin("features", fs.features).names(fs.channels), str),
        "channels": np.asarray(fs.channels, str), "srate": np.float64(fs.srate), "features": np.str_(fs.features),
        "window": np.float64(fs.window), "hop": np.float64(fs.hop), "filters": np.str_(json.dumps(fs.filters)),
        "dataset": np.str_(dataset), "baseline": np.str_(baseline), "format": np.str_(FORMAT),
    }


def write_npz(arrays: dict, path) -> Path:
    """Atomic: the file is either the whole new result or what was there before."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _arrays(kind: str, folder, features: str, window: float, hop: float, baseline: str,
            filters: FilterSpec | None, cache_dir, quiet: bool, reader_opts: dict) -> tuple[dict | None, Path | None]:
    """(arrays, cache path): arrays is None on a cache hit, whose file is then the cache path."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline {baseline!r}: expected one of {', '.join(BASELINES)}")
    if baseline == "subtract":
        if kind != "deap":
            raise ValueError(f"baseline subtraction needs a recorded baseline; only DEAP has one, not {kind!r}")
        reader_opts["baseline"] = "keep"
    registry.load_plugin("features", features)  # an unknown name fails before any reading
    params = {"kind": kind, "features": features, "window": window, "hop": hop, "baseline": baseline,
              "filters": filters.to_dict() if filters else None, "reader": reader_opts}
    cached = None
    if cache_dir is not False:
        files = dataset_files(kind, folder, reader_opts.get("participants"))
        cached = Path(cache_dir or default_cache_dir()) / f"{kind}-{features}-{cache_key(files, params)}.npz"
        if cached.is_file():
            return None, cached
    classes, trials, n = dataset_trials(kind, folder, **reader_opts)
    fs = build_features(trials, n, classes, features, window, hop, filters, quiet=quiet,
                        subtract_baseline=baseline == "subtract")
    arrays = to_arrays(fs, kind, baseline)
    if cached is not None:
        write_npz(arrays, cached)
    return arrays, cached


def dataset_features(kind: str, folder, output, features: str = "de", window: float = 1.0, hop: float = 0.5,
                     baseline: str = "drop", filters: FilterSpec | None = FilterSpec(), cache_dir=None,
                     quiet: bool = False, **reader_opts) -> tuple[Path, bool]:
    """Write the features of every window of dataset ``folder`` to ``output``; returns (output, from_cache).

    ``baseline="subtract"`` (DEAP only) reads trials with their 3-s baseline and
    subtracts its mean features (``build_features(subtract_baseline=True)``);
    ``"drop"`` leaves the baseline out. ``cache_dir=False`` turns the cache off.
    """
    arrays, cached = _arrays(kind, folder, features, window, hop, baseline, filters, cache_dir, quiet, reader_opts)
    output = Path(output)
    if arrays is None:
        _copy_atomic(cached, output)
        return output, True
    write_npz(arrays, output)
    return output, False


def feature_set(kind: str, folder, features: str = "de", window: float = 1.0, hop: float = 0.5,
                baseline: str = "drop", filters: FilterSpec | None = FilterSpec(), cache_dir=None,
                quiet: bool = False, **reader_opts) -> FeatureSet:
    """The same features as ``dataset_features``, through the same cache, as a FeatureSet for training."""
    arrays, cached = _arrays(kind, folder, features, window, hop, baseline, filters, cache_dir, quiet, reader_opts)
    if arrays is None:
        with np.load(cached) as z:
            arrays = {k: z[k] for k in z.files}
    return FeatureSet(
        X=arrays["X"], y=arrays["y"], participant=arrays["participant"], session=arrays["session"],
        class_names=tuple(arrays["classes"].tolist()), channels=tuple(arrays["channels"].tolist()),
        srate=float(arrays["srate"]), features=str(arrays["features"]), window=float(arrays["window"]),
        hop=float(arrays["hop"]), filters=json.loads(str(arrays["filters"])), trial=arrays["trial"],
    )
