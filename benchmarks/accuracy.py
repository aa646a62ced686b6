"""Cross-participant accuracy on the synthetic SEED-like dataset: no / batch / stratified normalization,
offline and online (through the live path, from empty statistics), leave-one-participant-out, beside a naive
reference on the same folds (a logistic regression on per-session z-scores, ``zscore_reference.py``).

The dataset is written in SEED's own file layout by the synthetic generator and
read back by the SEED reader, so `bci-stream evaluate` runs the same protocol
unchanged on a real SEED folder.

    python benchmarks/accuracy.py [--seed 1,2,3] [--data DIR] [--participants 15] [--trial-seconds 240] [--jobs N]
                                  [--difficulty seed|easy] [--classes negative,positive]
                                  [--folds 1,2,3 --report part1.json]
    python benchmarks/accuracy.py --merge part1.json part2.json ...

A full-size run of the seed preset takes about 1 h 30 min on 2 cores (a stratified fold about 7 min on one, twice
that with ``--live-pass``):
``--folds`` holds out only some participants and ``--merge`` prints the tables of parts' reports joined, as one run
over all their folds would.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from bci_stream import registry
from bci_stream.batch import relabel_trials, select_classes
from bci_stream.datasets.synthetic import SEED_ORDER, write_seed_folder
from bci_stream.devices.synthetic import DIFFICULTY, preset_tag
from bci_stream.evaluation import CURVE_BIN, CURVES, evaluate, format_report, load_reports, merge_reports
from bci_stream.featurecache import feature_set
from bci_stream.progress import Progress
from bci_stream.training import CLASS_AWARE, NORMS, TrainSettings
from zscore_reference import reference_report

#: The span of a new person's first session that the tables score on its own.
FIRST_SECONDS = 60
#: TrainSettings.class_aware -> its --class-aware value.
CLASS_AWARE_FLAG = {v: k for k, v in CLASS_AWARE.items()}


def _trials_of(folder, mapping, participant):
    trials = registry.load_dataset("seed")(folder).trials([participant])
    return trials if mapping is None else relabel_trials(trials, mapping)


def _evaluate(job, fsets, epochs, device, live_pass, class_aware, only, train_seed):
    # One thread per worker: two workers each on its own core beat two threads fighting over both.
    torch.set_num_threads(1)
    seed, norm = job
    fset, folder, mapping, every_class = fsets[seed]
    t = time.perf_counter()
    if norm == "reference":
        r = reference_report(every_class, list(fset.class_names), mapping, seed, only)
    else:
        settings = TrainSettings(norm=norm, epochs=epochs, seed=seed + train_seed, device=device,
                                 live_pass=live_pass, class_aware=class_aware)
        r = evaluate(fset, settings, "loso", online=True, dataset="synthetic-seed",
                     session_trials=functools.partial(_trials_of, folder, mapping), only=only)
        r["seed"], r["train_seed"] = seed, settings.seed  # tables group by the data
    r["data"] = folder.parent.name  # the generator's settings, which parts of one run must share
    r["seconds"] = round(time.perf_counter() - t, 1)
    return r


def _first_minute(report) -> float:
    """Online accuracy over a new person's first session's first FIRST_SECONDS, windows pooled over people."""
    bins = [c for c in report["online_curve_first"] if c["t_start"] < FIRST_SECONDS]
    return sum(c["n_correct"] for c in bins) / sum(c["n_windows"] for c in bins)


def _table(reports) -> None:
    print(f"{'norm':<11} {'offline':>16} {'online':>16} {'online-offline':>15} {f'new {FIRST_SECONDS} s':>9} "
          f"{'seconds':>8}")
    for r in reports:
        print(f"{r['norm']:<11} {r['mean_accuracy']:>9.3f} ± {r['std_accuracy']:.3f} "
              f"{r['online_mean_accuracy']:>9.3f} ± {r['online_std_accuracy']:.3f} "
              f"{r['online_mean_accuracy'] - r['mean_accuracy']:>+15.3f} {_first_minute(r):>9.3f} {r['seconds']:>8.1f}")
    print(f"(new {FIRST_SECONDS} s: online, the first {FIRST_SECONDS} s of each held-out person's first session)")
    by = {r["norm"]: r for r in reports}
    if "stratified" in by and "batch" in by:
        print(f"\nstratified - batch, offline: {by['stratified']['mean_accuracy'] - by['batch']['mean_accuracy']:+.3f}; "
              f"online: {by['stratified']['online_mean_accuracy'] - by['batch']['online_mean_accuracy']:+.3f}")
    if "stratified" in by and "reference" in by:
        print(f"stratified - reference, offline: "
              f"{by['stratified']['mean_accuracy'] - by['reference']['mean_accuracy']:+.3f}; online: "
              f"{by['stratified']['online_mean_accuracy'] - by['reference']['online_mean_accuracy']:+.3f}")
    if "stratified" in by:
        r = by["stratified"]
        print(f"stratified, new {FIRST_SECONDS} s - offline: {_first_minute(r) - r['mean_accuracy']:+.3f}")
        chosen = [f["class_aware_choice"]["chosen"] for f in r["folds"] if "class_aware_choice" in f]
        if chosen:
            print(f"stratified, class-aware auto: class-aware statistics chosen in {sum(chosen)} of {len(chosen)} "
                  f"folds")
    print("\nPer held-out participant:\n" + format_report(reports))
    _early_curves(reports)
    _by_clip(reports)


#: The span of a session the early-curve table shows, by the curves' bins.
EARLY_SECONDS = 300


def _early_curves(reports) -> None:
    """Online accuracy over each session's first EARLY_SECONDS, by the reports' 30-s bins: a new person's first
    session, and a returning person's later ones."""
    starts = np.arange(0, EARLY_SECONDS, CURVE_BIN)
    head = f"online accuracy by time since session start, by {CURVE_BIN:g} s:"
    print("\n" + head + " ".join(f"{t:>5g}" for t in starts))
    for r in reports:
        for what, key in CURVES:
            acc = {c["t_start"]: c["accuracy"] for c in r.get(key, [])}
            print(f"  {r['norm'] + ', ' + what:<{len(head) - 2}}" + " ".join(
                f"{acc[t]:>5.2f}" if t in acc else f"{'-':>5}" for t in starts))


def _by_clip(reports) -> None:
    """A new person's first session online, clip by clip in SEED's order, from the reports' 30-s curves."""
    clip = float(re.search(r"-t([\d.]+)-", reports[0]["data"]).group(1))
    if clip % CURVE_BIN:
        return  # a bin would straddle two clips
    sign = {0: "-", 1: "0", 2: "+"}  # SEED_ORDER's class indices: negative, neutral, positive
    print(f"\nA new person's first session online, by {clip:g}-s clip, SEED's order:")
    print(f"  {'':<12}" + " ".join(f"{sign[c]:>4}" for c in SEED_ORDER))
    for r in reports:
        clips = [[0, 0] for _ in SEED_ORDER]
        for b in r["online_curve_first"]:
            k = int(b["t_start"] // clip)
            if k < len(clips):
                clips[k][0] += b["n_correct"]
                clips[k][1] += b["n_windows"]
        print(f"  {r['norm']:<12}" + " ".join(f"{c / n:>4.2f}" if n else f"{'-':>4}" for c, n in clips))


def _across_seeds(reports, seeds) -> None:
    """Each seed's mean over held-out participants, then mean ± sd of those over seeds."""
    print(f"\nAcross seeds {','.join(map(str, seeds))}: mean ± sd over seeds of the participant-mean accuracy")
    print(f"{'norm':<11} {'offline':>16} {'online':>16} {'online-offline':>15}")
    for norm in dict.fromkeys(r["norm"] for r in reports):
        off = np.array([r["mean_accuracy"] for r in reports if r["norm"] == norm])
        on = np.array([r["online_mean_accuracy"] for r in reports if r["norm"] == norm])
        print(f"{norm:<11} {off.mean():>9.3f} ± {off.std(ddof=1):.3f} {on.mean():>9.3f} ± {on.std(ddof=1):.3f} "
              f"{(on - off).mean():>+15.3f}")
    curves = [r["online_curve"] for r in reports if r["norm"] == "stratified"]
    if curves:
        n = min(len(c) for c in curves)
        acc = np.array([[c[i]["accuracy"] for i in range(n)] for c in curves])
        print("\nStratified, online accuracy by time since session start (mean over seeds):")
        print("  " + "  ".join(f"{curves[0][i]['t_start'] / 60:.1f}m {acc[:, i].mean():.2f}" for i in range(n)))


def _class_aware(reports) -> str:
    """The stratified models' --class-aware (off in reports from before the option)."""
    setting = next((r.get("class_aware", False) for r in reports if r["norm"] == "stratified"), None)
    return {None: "-", **CLASS_AWARE_FLAG}[setting]


def _print_tables(reports) -> None:
    seeds = list(dict.fromkeys(r["seed"] for r in reports))
    for seed in seeds:
        mine = [r for r in reports if r["seed"] == seed]
        r = mine[0]
        trained = next((r["train_seed"] for r in mine if "train_seed" in r), seed)
        print(f"\nSeed {seed}, data {r['data']}: leave-one-participant-out accuracy, {len(r['classes'])} "
              f"classes, DE features, {r['epochs']} epochs, live pass "
              f"{'on' if any(r['live_pass'] for r in mine) else 'off'}, class-aware {_class_aware(mine)}, "
              f"training seed {trained}\n")
        _table(mine)
    if len(seeds) > 1:
        _across_seeds(reports, seeds)


def _print_merged(ap, paths) -> None:
    try:
        reports = merge_reports(load_reports(paths))
    except (KeyError, ValueError) as e:
        ap.error(f"--merge: {e}")
    print(f"{len(paths)} reports joined")
    _print_tables(reports)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path.home() / ".cache" / "bci-stream" / "synthetic-seed"))
    ap.add_argument("--seed", default="0",
                    help="seed of the generated data and of training; several (1,2,3) add mean ± sd over seeds. "
                         "Seed 0 is the development seed design choices are made on: report others")
    ap.add_argument("--participants", type=int, default=15)
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--difficulty", choices=tuple(DIFFICULTY), default="seed",
                    help="generator preset: seed (calibrated to the SEED paper's figures; the default), easy (the "
                         "generator before the calibration, far easier than real EEG)")
    ap.add_argument("--trial-seconds", type=float, help="default 30 s for easy, 240 s (SEED's clips) for seed")
    ap.add_argument("--hop", type=float, default=1.0, help="window hop for features and the online replay, s")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--train-seed", type=int, default=0,
                    help="training's seed is the data seed plus this: rerun with another value to see what a "
                         "difference between runs is worth when only the network's start and batch order change")
    ap.add_argument("--norms", default="none,batch,stratified,reference",
                    help="the network's normalizations, and 'reference': a logistic regression on per-session "
                         "z-scores offline and cumulative ones online (benchmarks/zscore_reference.py)")
    ap.add_argument("--classes", help="keep only these classes, e.g. negative,positive (SEED's 2-class task); the "
                    "others still stream online, unscored")
    ap.add_argument("--jobs", type=int, default=min(3, os.cpu_count() or 1),
                    help="evaluations run in parallel processes, one torch thread each")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--live-pass", action=argparse.BooleanOptionalAction, default=TrainSettings.live_pass,
                    help="train stratified models on live-order replays too (default: off, as train does)")
    ap.add_argument("--class-aware", choices=tuple(CLASS_AWARE),
                    default=CLASS_AWARE_FLAG[TrainSettings.class_aware],
                    help="stratified models' live statistics: plain (off), class-aware (on; the default, as train "
                         "does), or either, chosen per fold on 20 %% of its training participants held out (auto, "
                         "nested: one more model a fold)")
    ap.add_argument("--folds", help="hold out only these participants, e.g. 1,2,3 (default: all); write --report "
                                    "and join the parts with --merge")
    ap.add_argument("--merge", nargs="+", metavar="REPORT", help="print the tables of these --report files joined, "
                                                                "and run nothing")
    ap.add_argument("--report", help="write all reports as JSON here")
    ap.add_argument("--plots", help="write PNG figures here (one seed)")
    args = ap.parse_args()
    try:
        seeds = [int(x) for x in args.seed.split(",")]
    except ValueError:
        ap.error(f"--seed: expected integers separated by commas, got {args.seed!r}")
    if args.merge:
        return _print_merged(ap, args.merge)
    people = {str(p) for p in range(1, args.participants + 1)}  # write_seed_folder's names
    if args.folds and not people.issuperset(args.folds.split(",")):
        ap.error(f"--folds: expected participants 1 to {args.participants} separated by commas, got {args.folds!r}")
    if args.trial_seconds is None:
        args.trial_seconds = 30.0 if args.difficulty == "easy" else 240.0

    fsets = {}
    for seed in seeds:
        folder = (Path(args.data) / f"p{args.participants}-s{args.sessions}-t{args.trial_seconds:g}-seed{seed}-"
                  f"{preset_tag(args.difficulty)}" / "Preprocessed_EEG")
        t0 = time.perf_counter()
        if not (folder / "label.mat").exists():
            write_seed_folder(folder, args.participants, args.sessions, args.trial_seconds, seed=seed,
                              progress=Progress(args.participants * args.sessions, f"synthesize seed {seed}"),
                              jobs=args.jobs, difficulty=args.difficulty)
        fset = every_class = feature_set(registry.load_dataset("seed")(folder), features="de", window=1.0, hop=args.hop)
        mapping = None
        if args.classes:
            try:
                fset, mapping = select_classes(fset, args.classes.split(","))
            except ValueError as e:
                ap.error(f"--classes: {e}")
        fsets[seed] = fset, folder, mapping, every_class
        print(f"seed {seed}: {args.participants} participants x {args.sessions} sessions x 15 trials x "
              f"{args.trial_seconds:g} s, {len(fsets[seed][0].y)} windows ({time.perf_counter() - t0:.0f} s to prepare)",
              flush=True)
    norms = args.norms.split(",")
    unknown = [n for n in norms if n not in (*NORMS, "reference")]
    if unknown:
        ap.error(f"--norms: unknown {', '.join(unknown)}; expected some of {', '.join((*NORMS, 'reference'))}")
    # The longest evaluations first, so parallel workers finish together.
    jobs = sorted(((s, n) for s in seeds for n in norms), key=lambda j: j[1] != "stratified")
    only = args.folds.split(",") if args.folds else None
    run = functools.partial(_evaluate, fsets=fsets, epochs=args.epochs, device=args.device, live_pass=args.live_pass,
                            class_aware=CLASS_AWARE[args.class_aware], only=only, train_seed=args.train_seed)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            done = dict(zip(jobs, pool.map(run, jobs)))
    else:
        done = {j: run(j) for j in jobs}
    reports = [done[(s, n)] for s in seeds for n in norms]

    _print_tables(reports)
    if args.report:
        Path(args.report).write_text(json.dumps(reports, indent=2))
    if args.plots:
        from bci_stream.plots import write_plots

        write_plots([r for r in reports if r["seed"] == seeds[0]], args.plots)


if __name__ == "__main__":
    main()
