"""Training on live statistics: causal z-scores' hand-written gradient against autograd through the same moments.

Training with the live pass (``train --live-pass``) back-propagates through every hidden layer's causal
z-scores. ``causal_zscore`` does that with a gradient written out (``_CausalZscore``); the reference, measured in the
same run, is autograd through the very same forward steps (``_causal_moments`` then ``zscore``). Two tables:

- one layer: forward and backward of ``units`` hidden units over every training row, seconds (median, p99) and the
  memory the graph keeps for the backward pass;
- training: ``fit`` with the live pass on random features shaped like a LOSO fold (participants x sessions x clips
  x windows, 310 features), seconds a run of ``--epochs`` epochs, and the largest weight difference of the two.

One core (torch and BLAS held to one thread). The data are random: speed does not depend on what the numbers are.

    python benchmarks/training_speed.py [--participants 14] [--windows 240] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import contextlib
import time

import numpy as np
import torch

import bci_stream.stratified.layers as layers
from bci_stream.batch import FeatureSet
from bci_stream.stratified import moments
from bci_stream.training import (LiveOrder, TrainSettings, fit, input_level, input_statistics, normalize_inputs,
                                 stratum_ids)


def by_autograd(x, start, prior_mean, prior_var, weight, eps, level=None):
    """The reference: autograd through the forward steps ``causal_zscore`` takes."""
    start = torch.as_tensor(start)
    pm, pv = moments._tensor(prior_mean).double(), moments._tensor(prior_var).double()
    _, mean, var, _ = moments._causal_moments(x, start, pm, pv, weight, level)
    return moments.zscore(x.double(), mean, var, eps).to(x.dtype)


@contextlib.contextmanager
def hidden_layers_use(zscore):
    saved, layers.causal_zscore = layers.causal_zscore, zscore
    try:
        yield
    finally:
        layers.causal_zscore = saved


@contextlib.contextmanager
def saved_for_backward():
    """The bytes of the tensors the graph keeps for the backward pass (each storage once), as a dict's "MB"."""
    storages, held = {}, {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield held
    held["MB"] = sum(storages.values()) / 1e6


def fold_like(rng, participants: int, sessions: int, clips: int, windows: int, features: int) -> FeatureSet:
    idx = np.indices((participants, sessions, clips, windows)).reshape(4, -1)
    X = (rng.normal(size=(idx.shape[1], features)) + idx[0][:, None] * 0.1).astype(np.float32)
    return FeatureSet(X=X, y=idx[2] % 3, participant=(idx[0] + 1).astype(str), session=(idx[1] + 1).astype(str),
                      class_names=("negative", "neutral", "positive"), channels=tuple(f"C{i}" for i in range(62)),
                      srate=200.0, features="de", window=1.0, hop=1.0, trial=idx[2] + 1)


def summary(t) -> tuple[float, float]:
    return float(np.median(t)), float(np.percentile(t, 99))


def one_layer(fset: FeatureSet, units: int, repeats: int) -> None:
    rows = len(fset.y)
    strata = stratum_ids(fset.participant, fset.session)
    start = torch.as_tensor(np.searchsorted(strata, strata))  # strata are contiguous and numbered in order
    x = torch.randn(rows, units)
    pm, pv = torch.zeros(units), torch.ones(units)
    print(f"\nOne hidden layer, {rows} rows x {units} units, forward + backward ({repeats} runs each, alternating):")
    print(f"{'gradient':<10} {'median s':>9} {'p99 s':>7} {'graph MB':>9} {'vs autograd':>12}")
    times, held = {"autograd": [], "hand": []}, {}
    for _ in range(repeats):
        for name, f in (("autograd", by_autograd), ("hand", moments.causal_zscore)):
            leaf = x.clone().requires_grad_()
            t = time.perf_counter()
            with saved_for_backward() as saved:
                z = f(leaf, start, pm, pv, 600.0, moments.HIDDEN_EPS)
            held[name] = saved["MB"]
            z.backward(torch.ones_like(z))
            times[name].append(time.perf_counter() - t)
            del z, leaf
    ref = np.median(times["autograd"])
    for name, t in times.items():
        med, p99 = summary(t)
        print(f"{name:<10} {med:>9.3f} {p99:>7.3f} {held[name]:>9.0f} {med / ref:>12.2f}")


def training(fset: FeatureSet, epochs: int, repeats: int) -> None:
    settings = TrainSettings(epochs=epochs, quiet=True, prior_seconds=240.0)
    strata = stratum_ids(fset.participant, fset.session)
    Xn = normalize_inputs(fset.X, strata, "stratified", input_statistics(fset.X, strata, "stratified"))
    level = input_level(Xn, fset.y, 3, settings, fset.hop)
    live = LiveOrder(fset, strata, settings.prior_seconds / fset.hop, settings.participant_seconds / fset.hop,
                     settings.network_prior_seconds / fset.hop, level)
    print(f"\nfit with the live pass, {len(fset.y)} rows x {fset.X.shape[1]} features, featurenet, {epochs} epochs "
          f"({repeats} runs each, alternating):")
    print(f"{'gradient':<10} {'median s':>9} {'p99 s':>7} {'s/epoch':>8} {'vs autograd':>12}")
    times, weights = {"autograd": [], "hand": []}, {}
    for _ in range(repeats):
        for name, f in (("autograd", by_autograd), ("hand", moments.causal_zscore)):
            with hidden_layers_use(f):
                t = time.perf_counter()
                net, _ = fit(Xn, fset.y, strata, 3, settings, live=live)
                times[name].append(time.perf_counter() - t)
            weights[name] = net.out.weight.detach()
    ref = np.median(times["autograd"])
    for name, t in times.items():
        med, p99 = summary(t)
        print(f"{name:<10} {med:>9.2f} {p99:>7.2f} {med / epochs:>8.2f} {med / ref:>12.2f}")
    print(f"largest output weight difference, hand against autograd: "
          f"{float((weights['hand'] - weights['autograd']).abs().max()):.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--participants", type=int, default=14, help="a LOSO fold of SEED's 15 trains on 14")
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--clips", type=int, default=15)
    ap.add_argument("--windows", type=int, default=240, help="windows a clip (240: 4-min clips at a 1-s hop)")
    ap.add_argument("--features", type=int, default=310, help="62 channels x 5 bands")
    ap.add_argument("--units", type=int, default=64, help="featurenet's hidden width")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    fset = fold_like(np.random.default_rng(0), args.participants, args.sessions, args.clips, args.windows,
                     args.features)
    one_layer(fset, args.units, max(args.repeats, 5))
    training(fset, args.epochs, args.repeats)


if __name__ == "__main__":
    main()
