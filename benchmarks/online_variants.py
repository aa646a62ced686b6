"""Online accuracy of the live path's statistics, choice by choice: plain or class-aware input statistics, with or
without the population model (bci_stream/population.py) pooled in, and how long a new person's statistics lean on
the training population (the population prior's weight, in seconds).

Each held-out participant's sessions go through ``Pipeline.classify``, window by window in time order: the live
path's own normalization and model, the objects ``run`` uses, with one state folder per participant so later
sessions start from earlier ones as a returning person's do. The features are computed as offline (each trial
filtered on its own); ``benchmarks/accuracy.py`` replays the raw EEG through the whole live path. Leaving the
filters out makes this fast enough to compare several choices on the one model trained per fold, so the
choices, not the training draw, make the differences.

Data: the synthetic SEED-like dataset (SEED's clip order, 15 clips per session), generated in memory and its
DE features cached under ``--cache``. Training is as ``evaluate`` trains, on every ``--train-hop``-th window.

    python benchmarks/online_variants.py [--difficulty seed] [--participants 10] [--folds 1,2,6,7]
                                         [--variants plain:240,plain+pop:240,aware:240] [--seed 0] [--jobs 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from bci_stream.batch import FeatureSet, build_features
from bci_stream.datasets.synthetic import SEED_ORDER, synthetic_trials
from bci_stream.devices.synthetic import DIFFICULTY, LAYOUTS
from bci_stream.pipeline import Pipeline
from bci_stream.stream import StreamInfo
from bci_stream.training import TrainSettings, natural_key, normalize_inputs, predict, stratum_ids, train_bundle

#: Online accuracy of a new person's first session over its first FIRST_SECONDS, and the curve's bin.
FIRST_SECONDS, BIN = 60, 30


def _features(participant: int, difficulty: str, sessions: int, trial_seconds: float, seed: int) -> FeatureSet:
    torch.set_num_threads(1)
    trials = synthetic_trials("seed62", [participant], range(1, sessions + 1), len(SEED_ORDER), seed=seed,
                              trial_seconds=trial_seconds, schedule=SEED_ORDER, difficulty=difficulty)
    return build_features(trials, sessions * len(SEED_ORDER), LAYOUTS["seed62"].classes, "de", 1.0, 1.0, quiet=True)


def dataset(args) -> FeatureSet:
    """Every participant's DE features at a 1-s hop, from the cache or generated (one process per participant)."""
    key = f"{args.difficulty}-p{args.participants}-s{args.sessions}-t{args.trial_seconds:g}-seed{args.seed}"
    path = Path(args.cache) / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            d = dict(z)
        return FeatureSet(X=d["X"], y=d["y"], participant=d["participant"], session=d["session"], trial=d["trial"],
                          class_names=LAYOUTS["seed62"].classes, channels=tuple(d["channels"]), srate=200.0,
                          features="de", window=1.0, hop=1.0, filters=json.loads(str(d["filters"])))
    t0 = time.perf_counter()
    make = functools.partial(_features, difficulty=args.difficulty, sessions=args.sessions,
                             trial_seconds=args.trial_seconds, seed=args.seed)
    people = range(1, args.participants + 1)
    with ProcessPoolExecutor(args.jobs) as pool:
        parts = []
        for p, f in zip(people, pool.map(make, people)):
            parts.append(f)
            print(f"  participant {p} generated ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    cat = {k: np.concatenate([getattr(f, k) for f in parts]) for k in ("X", "y", "participant", "session", "trial")}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, channels=np.asarray(parts[0].channels), filters=json.dumps(parts[0].filters), **cat)
    return dataclasses.replace(parts[0], **cat)


def variant_bundle(bundle, name: str):
    """``bundle`` as variant ``KIND[+pop]:SECONDS``: plain or class-aware input statistics, population prior of
    SECONDS, with (``+pop``) or without the population model pooled in."""
    kind, seconds = name.split(":")
    kind, _, pop = kind.partition("+")
    norm = {**bundle.normalization, "prior_seconds": float(seconds)}
    if kind == "plain":
        norm = {k: v for k, v in norm.items() if k not in ("class_means", "within_share")}
    elif "class_means" not in norm:
        raise SystemExit(f"variant {name}: the model was trained without class means (--no-class-aware?)")
    return dataclasses.replace(bundle, normalization=norm, population=bundle.population if pop else {})


def online(bundle, fset: FeatureSet, participant: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(predicted, true) classes of each of the participant's sessions, in natural order, through the live path."""
    info = StreamInfo("features", list(bundle.channels), bundle.srate, "microvolts")
    out = []
    with tempfile.TemporaryDirectory() as state:
        for s in sorted(np.unique(fset.session[fset.participant == participant]), key=natural_key):
            rows = (fset.participant == participant) & (fset.session == s)
            pipe = Pipeline(info, bundle, participant, s, hop=fset.hop, state_dir=state)
            out.append((pipe.classify(fset.X[rows]).argmax(1), fset.y[rows]))
            pipe.close()
    return out


def fold(participant: str, fset: FeatureSet, args) -> dict:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    test = fset.participant == participant
    every = np.arange(len(fset.y)) % args.train_hop == 0
    train = dataclasses.replace(fset.take(~test & every), hop=float(args.train_hop))
    settings = TrainSettings(seed=args.seed, epochs=args.epochs, class_aware=True, population=True, quiet=True,
                             **({"prior_seconds": args.train_prior} if args.train_prior else {}))
    bundle = train_bundle(train, "synthetic-seed", settings, holdout=0, hop=fset.hop)
    held = fset.take(test)
    strata = stratum_ids(held.participant, held.session)
    right = predict(bundle.build_model(), normalize_inputs(held.X, strata, "stratified"), strata) == held.y
    offline = float(right.mean())
    first = held.session == sorted(np.unique(held.session), key=natural_key)[0]
    result = {"participant": participant, "offline": offline,
              "offline_first": float(right[first][:FIRST_SECONDS].mean())}
    for name in args.variants.split(","):
        result[name] = online(variant_bundle(bundle, name), fset, participant)
    print(f"  fold {participant}: offline {offline:.3f}, " + ", ".join(
        f"{n} {np.mean(np.concatenate([p == y for p, y in result[n]])):.3f}" for n in args.variants.split(","))
        + f" ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return result


def table(results: list[dict], variants: list[str]) -> None:
    def sd(v):
        return np.std(v, ddof=1) if len(v) > 1 else 0.0

    offline = np.array([r["offline"] for r in results])
    offline_first = np.mean([r["offline_first"] for r in results])
    bins = 300 // BIN
    print(f"{'variant':<14}{'online':>15}{'-offline':>10}{'first sess.':>13}{'returning':>11}"
          f"{f'first {FIRST_SECONDS} s':>12}   first session by {BIN} s: " + " ".join(f"{b * BIN:>4}" for b in range(bins)))
    print(f"{'offline':<14}{offline.mean():>8.3f} ± {sd(offline):.3f}{'':>34}{offline_first:>12.3f}")
    for v in variants:
        sessions = [r[v] for r in results]
        acc = np.array([np.mean(np.concatenate([p == y for p, y in s])) for s in sessions])
        first = np.array([np.mean(s[0][0] == s[0][1]) for s in sessions])
        later = np.array([np.mean(np.concatenate([p == y for p, y in s[1:]])) for s in sessions if len(s) > 1])
        early = np.array([np.mean(s[0][0][:FIRST_SECONDS] == s[0][1][:FIRST_SECONDS]) for s in sessions])
        curve = [np.mean([np.mean(s[0][0][b * BIN : (b + 1) * BIN] == s[0][1][b * BIN : (b + 1) * BIN])
                          for s in sessions]) for b in range(bins)]
        print(f"{v:<14}{acc.mean():>8.3f} ± {sd(acc):.3f}{(acc - offline).mean():>+10.3f}{first.mean():>13.3f}"
              f"{later.mean() if len(later) else float('nan'):>11.3f}{early.mean():>12.3f}   "
              + " ".join(f"{c:>4.2f}" for c in curve))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--difficulty", choices=tuple(DIFFICULTY), default="seed")
    ap.add_argument("--participants", type=int, default=10)
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--trial-seconds", type=float, help="default 240 s (SEED's clips) for seed, 30 s for easy")
    ap.add_argument("--folds", help="held-out participants, e.g. 1,2,6,7 (default: all)")
    ap.add_argument("--variants", default="plain:240,plain+pop:240,aware:240,aware+pop:240",
                    help="KIND[+pop]:SECONDS,...: plain or aware (class-aware) input statistics, with the population "
                         "model pooled in (+pop) or not, population prior in s")
    ap.add_argument("--train-hop", type=int, default=4, help="train on every N-th 1-s window")
    ap.add_argument("--train-prior", type=float, help="population prior of the live pass in training, s "
                                                      "(default: as long as the clips, as train does)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="seed of data and training; 0 is the development seed")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "bci-stream" / "online-variants"))
    args = ap.parse_args()
    if args.trial_seconds is None:
        args.trial_seconds = 240.0 if args.difficulty == "seed" else 30.0
    fset = dataset(args)
    people = args.folds.split(",") if args.folds else sorted(np.unique(fset.participant), key=natural_key)
    t0 = time.perf_counter()
    run = functools.partial(fold, fset=fset, args=args)
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, people))
    variants = args.variants.split(",")
    print(f"\n{args.difficulty} generator, seed {args.seed}: {args.participants} participants x {args.sessions} sessions "
          f"x 15 clips of {args.trial_seconds:g} s; held out {','.join(people)}; trained on every {args.train_hop}-th "
          f"window, {args.epochs} epochs; {time.perf_counter() - t0:.0f} s\n"
          f"online accuracy, mean ± sd over held-out participants; first session = a new person's, returning = "
          f"their later sessions; offline's first {FIRST_SECONDS} s: the same windows, by whole-session statistics\n")
    table(results, variants)


if __name__ == "__main__":
    main()
