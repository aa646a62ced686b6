"""Online accuracy of the live path's statistics, choice by choice: plain or class-aware input statistics, with or
without the population model (bci_stream/population.py) pooled in, and how long a new person's statistics lean on
the training population (the population prior's weight, in seconds). ``auto`` is ``train --class-aware auto``'s
nested choice between the first two, made per fold on held-out training participants.

Each held-out participant's sessions go through ``Pipeline.classify``, window by window in time order: the live
path's own normalization and model, the objects ``run`` uses, with one state folder per participant so later
sessions start from earlier ones as a returning person's do. The features are computed as offline (each trial
filtered on its own); ``benchmarks/accuracy.py`` replays the raw EEG through the whole live path. Leaving the
filters out makes this fast enough to compare several choices on the one model trained per fold, so the
choices, not the training draw, make the differences.

A second table scores a new person's first minute from every clip of every held-out session (the session's clips
rotated to start there, a fresh pipeline each time): in natural order a fold has one first minute per person, and
SEED's order always starts with a positive clip. ``--batch-reference`` adds, on the same windows, a model trained
with batch normalization, which never knows the person: what decoding without their statistics achieves.

Data: the synthetic SEED-like dataset (SEED's clip order, 15 clips per session), generated in memory and its
DE features cached under ``--cache``. Training is as ``evaluate`` trains, on every ``--train-hop``-th window.

    python benchmarks/online_variants.py [--difficulty seed] [--participants 10] [--folds 1,2,6,7]
                                         [--variants plain:240,plain-level:240,aware:240] [--seed 0] [--jobs 2]
                                         [--batch-reference]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from bci_stream.batch import FeatureSet, build_features
from bci_stream.bundle import ModelBundle
from bci_stream.datasets.synthetic import SEED_ORDER, synthetic_trials
from bci_stream.devices.synthetic import DIFFICULTY, LAYOUTS, preset_tag
from bci_stream.evaluation import CHOICE_HOLDOUT, decode_features, feature_sessions, replay_features
from bci_stream.stratified import ClassEffects
from bci_stream.training import (TrainSettings, choose_class_aware, heldout_participants, natural_key,
                                 normalize_inputs, predict, stratum_ids, train_bundle)

#: Online accuracy of a new person's first session over its first FIRST_SECONDS, and the curve's bin.
FIRST_SECONDS, BIN = 60, 30


def _features(participant: int, difficulty: str, sessions: int, trial_seconds: float, seed: int) -> FeatureSet:
    torch.set_num_threads(1)
    trials = synthetic_trials("seed62", [participant], range(1, sessions + 1), len(SEED_ORDER), seed=seed,
                              trial_seconds=trial_seconds, schedule=SEED_ORDER, difficulty=difficulty)
    return build_features(trials, sessions * len(SEED_ORDER), LAYOUTS["seed62"].classes, "de", 1.0, 1.0, quiet=True)


def data_key(args) -> str:
    return (f"{preset_tag(args.difficulty)}-p{args.participants}-s{args.sessions}-t{args.trial_seconds:g}-"
            f"seed{args.seed}")


def dataset(args) -> FeatureSet:
    """Every participant's DE features at a 1-s hop, from the cache or generated (one process per participant)."""
    path = Path(args.cache) / f"{data_key(args)}.npz"
    if path.exists():
        with np.load(path) as z:
            d = dict(z)
        return FeatureSet(X=d["X"], y=d["y"], participant=d["participant"], session=d["session"], trial=d["trial"],
                          class_names=LAYOUTS["seed62"].classes, channels=tuple(d["channels"].tolist()), srate=200.0,
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


def variant_bundle(bundle, name: str, aware_chosen: bool | None = None):
    """``bundle`` as variant ``KIND[+pop][-level][-fade]:SECONDS``: plain or class-aware input statistics (``auto``:
    the fold's nested choice, ``aware_chosen``), population prior of SECONDS, with (``+pop``) or without the
    population model pooled in, without (``-level``) a session's level leaving its prior fast across the directions
    the classes do not separate, and class effects taken out that fade back in with a half-life of SECONDS or
    (``-fade``) stay out."""
    kind, seconds = name.split(":")
    kind, *mods = re.split(r"(?=[+-])", kind)
    if kind not in ("plain", "aware", "auto") or set(mods) - {"+pop", "-level", "-fade"}:
        raise SystemExit(f"variant {name}: expected (plain|aware|auto)[+pop][-level][-fade]:SECONDS")
    if kind == "auto":
        kind = "aware" if aware_chosen else "plain"
    norm = {**bundle.normalization, "prior_seconds": float(seconds)}
    if kind == "plain":
        norm = ClassEffects.strip(norm)
    elif "class_means" not in norm:
        raise SystemExit(f"variant {name}: the model was trained without class means (--no-class-aware?)")
    else:
        norm = {k: v for k, v in norm.items() if k != "class_fade_seconds"}
        if "-fade" not in mods:
            norm["class_fade_seconds"] = float(seconds)
    if "-level" in mods:
        norm = {k: v for k, v in norm.items() if k not in ("level_basis", "level_seconds")}
    return dataclasses.replace(bundle, normalization=norm, population=bundle.population if "+pop" in mods else {})


def trained(path: Path | None, train: FeatureSet, settings: TrainSettings, hop: float) -> ModelBundle:
    """A fold's model, from ``--models`` if it is there, else trained (and kept there)."""
    if path is not None and path.exists():
        return ModelBundle.load(path)
    bundle = train_bundle(train, "synthetic-seed", settings, holdout=0, hop=hop)
    if path is not None:
        bundle.save(path)
    return bundle


def nested_choice(train: FeatureSet, fset: FeatureSet, settings: TrainSettings, path: Path | None) -> dict:
    """Class-aware statistics or plain ones, as ``train --class-aware auto`` chooses: a model trained without
    CHOICE_HOLDOUT of the fold's training participants decodes their sessions (at ``fset``'s hop) both ways."""
    inner = heldout_participants(np.unique(train.participant), CHOICE_HOLDOUT, settings.seed)
    model = trained(path, train.take(~np.isin(train.participant, inner)), settings, fset.hop)
    return choose_class_aware(model, fset.take(np.isin(fset.participant, inner)))


def models_folder(args) -> None:
    """Check that ``--models`` holds the models of these training settings and data, and make it."""
    if not args.models:
        return
    folder = Path(args.models)
    settings = {"data": data_key(args), **{k: getattr(args, k) for k in
                                           ("train_hop", "train_prior", "train_level", "live_pass", "epochs",
                                            "seed")}}
    saved = folder / "settings.json"
    if saved.exists() and json.loads(saved.read_text()) != settings:
        raise SystemExit(f"--models {folder}: holds models of other settings ({saved.read_text().strip()}), "
                         f"expected {json.dumps(settings)}")
    folder.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(settings))


def first_minutes(bundle, fset: FeatureSet, participant: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, predicted classes) of a new person's first FIRST_SECONDS started at every clip of every session of
    the participant: the session's clips in its order, rotated to begin at that clip, decoded by a fresh pipeline
    with nothing saved. In natural order a fold has one first minute per person, and in SEED's order it is always
    a positive clip's; these are every clip's, of every class."""
    n = int(round(FIRST_SECONDS / fset.hop))
    out = []
    for s, rows in feature_sessions(fset, participant):
        clips = list(dict.fromkeys(fset.trial[rows]))
        for k in range(len(clips)):
            order = np.concatenate([rows[fset.trial[rows] == c] for c in clips[k:] + clips[:k]])[:n]
            out.append((order, decode_features(bundle, fset, participant, s, order)))
    return out


def fold(participant: str, fset: FeatureSet, args) -> dict:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    test = fset.participant == participant
    every = np.arange(len(fset.y)) % args.train_hop == 0
    train = dataclasses.replace(fset.take(~test & every), hop=float(args.train_hop))
    settings = TrainSettings(seed=args.seed, epochs=args.epochs, class_aware=True, population=True, quiet=True,
                             level_seconds=args.train_level or None, live_pass=args.live_pass,
                             **({"prior_seconds": args.train_prior} if args.train_prior else {}))
    path = (lambda role: Path(args.models) / f"fold{participant}-{role}.pt") if args.models else (lambda role: None)
    bundle = trained(path("stratified"), train, settings, fset.hop)
    held = fset.take(test)
    strata = stratum_ids(held.participant, held.session)
    def right(model, norm: str, stats=None) -> np.ndarray:
        """Whether each window of ``fset`` was classified right offline (False outside the held-out rows)."""
        out = np.zeros(len(fset.y), bool)
        out[test] = predict(model, normalize_inputs(held.X, strata, norm, stats), strata) == held.y
        return out

    offline_right = right(bundle.build_model(), "stratified")
    offline = float(offline_right[test].mean())
    first = held.session == sorted(np.unique(held.session), key=natural_key)[0]
    result = {"participant": participant, "offline": offline,
              "offline_first": float(offline_right[test][first][:FIRST_SECONDS].mean()),
              "offline_right": offline_right}
    if args.batch_reference:
        batch = trained(path("batch"), train, dataclasses.replace(
            settings, norm="batch", live_pass=False, class_aware=False, population=False), fset.hop)
        result["batch_right"] = right(batch.build_model(), "batch", (np.asarray(batch.normalization["prior_mean"]),
                                                                     np.asarray(batch.normalization["prior_var"])))
    if any(name.startswith("auto") for name in args.variants.split(",")):
        result["choice"] = nested_choice(train, fset, settings, path("inner"))
    for name in args.variants.split(","):
        variant = variant_bundle(bundle, name, result.get("choice", {}).get("chosen"))
        result[name] = replay_features(variant, fset, participant)
        result[f"{name} starts"] = first_minutes(variant, fset, participant)
    print(f"  fold {participant}: offline {offline:.3f}, " + ", ".join(
        f"{n} {np.mean(np.concatenate([p == y for p, y in result[n]])):.3f}" for n in args.variants.split(","))
        + (f", auto chose {'aware' if result['choice']['chosen'] else 'plain'} (held-out training participants "
           f"{','.join(result['choice']['participants'])}: plain {result['choice']['plain']:.3f}, aware "
           f"{result['choice']['aware']:.3f})" if "choice" in result else "")
        + f" ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return result


def table(results: list[dict], variants: list[str]) -> None:
    def sd(v):
        return np.std(v, ddof=1) if len(v) > 1 else 0.0

    offline = np.array([r["offline"] for r in results])
    offline_first = np.mean([r["offline_first"] for r in results])
    shortest = min(len(r[v][0][0]) for r in results for v in variants)  # a new person's first session, 1-s hop
    bins = min(300 // BIN, -(-shortest // BIN))  # no empty bins at the end of short sessions
    print(f"{'variant':<16}{'online':>15}{'-offline':>10}{'first sess.':>13}{'returning':>11}"
          f"{f'first {FIRST_SECONDS} s':>12}   first session by {BIN} s: " + " ".join(f"{b * BIN:>4}" for b in range(bins)))
    print(f"{'offline':<16}{offline.mean():>8.3f} ± {sd(offline):.3f}{'':>34}{offline_first:>12.3f}")
    for v in variants:
        sessions = [r[v] for r in results]
        acc = np.array([np.mean(np.concatenate([p == y for p, y in s])) for s in sessions])
        first = np.array([np.mean(s[0][0] == s[0][1]) for s in sessions])
        later = np.array([np.mean(np.concatenate([p == y for p, y in s[1:]])) for s in sessions if len(s) > 1])
        early = np.array([np.mean(s[0][0][:FIRST_SECONDS] == s[0][1][:FIRST_SECONDS]) for s in sessions])
        curve = [np.mean([np.mean(s[0][0][b * BIN : (b + 1) * BIN] == s[0][1][b * BIN : (b + 1) * BIN])
                          for s in sessions]) for b in range(bins)]
        print(f"{v:<16}{acc.mean():>8.3f} ± {sd(acc):.3f}{(acc - offline).mean():>+10.3f}{first.mean():>13.3f}"
              f"{later.mean() if len(later) else float('nan'):>11.3f}{early.mean():>12.3f}   "
              + " ".join(f"{c:>4.2f}" for c in curve))


def starts_table(results: list[dict], variants: list[str], y: np.ndarray, class_names) -> None:
    """A new person's first FIRST_SECONDS from every clip (:func:`first_minutes`): per variant, and for the same
    windows offline (whole-session statistics) and by the batch-normalized model, which never knows the person."""
    starts = [r[f"{variants[0]} starts"] for r in results]  # the same rows for every variant

    def row(name: str, right: list[list[np.ndarray]]) -> None:
        person = np.array([np.mean([r.mean() for r in rs]) for rs in right])
        first_class = [np.array([y[rows[0]] for rows, _ in st]) for st in starts]
        by_class = [np.mean([np.mean([r.mean() for r, c in zip(rs, fc) if c == k]) for rs, fc in zip(right, first_class)])
                    for k in range(len(class_names))]
        offline = np.array([r["offline"] for r in results])
        print(f"{name:<16}{person.mean():>8.3f} ± {person.std(ddof=1) if len(person) > 1 else 0.0:.3f}"
              f"{(person - offline).mean():>+10.3f}   " + " ".join(f"{b:>9.3f}" for b in by_class))

    print(f"\na new person's first {FIRST_SECONDS} s, started at every clip of every held-out session "
          f"({sum(len(s) for s in starts)} starts)\n")
    print(f"{'':<16}{'accuracy':>15}{'-offline':>10}   " + " ".join(f"{c[:9]:>9}" for c in class_names)
          + "   <- by the first clip's class")
    row("offline", [[r["offline_right"][rows] for rows, _ in st] for r, st in zip(results, starts)])
    if "batch_right" in results[0]:
        row("batch", [[r["batch_right"][rows] for rows, _ in st] for r, st in zip(results, starts)])
    for v in variants:
        row(v, [[pred == y[rows] for rows, pred in r[f"{v} starts"]] for r in results])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--difficulty", choices=tuple(DIFFICULTY), default="seed")
    ap.add_argument("--participants", type=int, default=10)
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--trial-seconds", type=float, help="default 240 s (SEED's clips) for seed, 30 s for easy")
    ap.add_argument("--folds", help="held-out participants, e.g. 1,2,6,7 (default: all)")
    ap.add_argument("--variants", default="plain-level:240,plain:240,aware-level:240,aware:240",
                    help="KIND[+pop][-level][-fade]:SECONDS,...: plain or aware (class-aware) input statistics, or "
                         "auto (either, chosen per fold on held-out training participants, nested), with the "
                         "population model pooled in (+pop) or not, without the fast level across the directions "
                         "the classes do not separate (-level), class effects that stay out rather than fade back "
                         "(-fade), population prior (and the effects' half-life) in s")
    ap.add_argument("--train-hop", type=int, default=4, help="train on every N-th 1-s window")
    ap.add_argument("--train-prior", type=float, help="population prior of the live pass in training, s "
                                                      "(default: as long as the clips, as train does)")
    ap.add_argument("--train-level", type=float, default=TrainSettings.level_seconds,
                    help="how soon a session's level leaves its prior across the directions the classes do not "
                         "separate, s, in training and live (0: as slowly as along them; -level variants drop it "
                         "live only)")
    ap.add_argument("--live-pass", action=argparse.BooleanOptionalAction, default=TrainSettings.live_pass,
                    help="train the stratified models with the live pass (default: off, as train does)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-reference", action="store_true",
                    help="also train a batch-normalized model per fold and score it on the same first minutes")
    ap.add_argument("--seed", type=int, default=0, help="seed of data and training; 0 is the development seed")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "bci-stream" / "online-variants"))
    ap.add_argument("--models", help="keep each fold's trained models in this folder and reuse them, so that live "
                                     "choices are compared on the same models at the cost of replays alone; it "
                                     "refuses models of other settings, but not of other code: empty it after a "
                                     "change to training")
    args = ap.parse_args()
    if args.trial_seconds is None:
        args.trial_seconds = 240.0 if args.difficulty == "seed" else 30.0
    fset = dataset(args)
    models_folder(args)
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
    if "choice" in results[0]:
        chose = [r["participant"] for r in results if r["choice"]["chosen"]]
        print(f"auto chose class-aware statistics in {len(chose)} of {len(results)} folds"
              + (f" (held out {','.join(chose)})" if chose else ""))
    starts_table(results, variants, fset.y, fset.class_names)


if __name__ == "__main__":
    main()
