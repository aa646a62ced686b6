"""Cross-participant accuracy on the synthetic SEED-like dataset: no / batch / stratified normalization,
offline and online (through the live path, from empty statistics), leave-one-participant-out.

The dataset is written in SEED's own file layout by the synthetic generator and
read back by the SEED reader, so `bci-stream evaluate` runs the same protocol
unchanged on a real SEED folder.

    python benchmarks/accuracy.py [--data DIR] [--participants 15] [--trial-seconds 30] [--jobs N]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from bci_stream import registry
from bci_stream.datasets.synthetic import write_seed_folder
from bci_stream.evaluation import evaluate, format_report
from bci_stream.featurecache import feature_set
from bci_stream.progress import Progress
from bci_stream.training import TrainSettings


def _trials_of(folder, participant):
    return registry.load_dataset("seed")(folder).trials([participant])


def _evaluate(norm, fset, folder, epochs, device, live_pass):
    # One thread per worker: two workers each on its own core beat two threads fighting over both.
    torch.set_num_threads(1)
    t = time.perf_counter()
    settings = TrainSettings(norm=norm, epochs=epochs, device=device, live_pass=live_pass)
    r = evaluate(fset, settings, "loso", online=True, dataset="synthetic-seed",
                 session_trials=functools.partial(_trials_of, folder))
    r["seconds"] = round(time.perf_counter() - t, 1)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path.home() / ".cache" / "bci-stream" / "synthetic-seed"))
    ap.add_argument("--participants", type=int, default=15)
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--trial-seconds", type=float, default=30.0)
    ap.add_argument("--hop", type=float, default=1.0, help="window hop for features and the online replay, s")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--norms", default="none,batch,stratified")
    ap.add_argument("--jobs", type=int, default=min(3, os.cpu_count() or 1),
                    help="normalizations evaluated in parallel processes, one torch thread each")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--live-pass", action=argparse.BooleanOptionalAction, default=True,
                    help="train stratified models on live-order replays too (--no-live-pass: offline statistics only)")
    ap.add_argument("--report", help="write all reports as JSON here")
    ap.add_argument("--plots", help="write PNG figures here")
    args = ap.parse_args()

    folder = Path(args.data) / f"p{args.participants}-s{args.sessions}-t{args.trial_seconds:g}" / "Preprocessed_EEG"
    t0 = time.perf_counter()
    if not (folder / "label.mat").exists():
        write_seed_folder(folder, args.participants, args.sessions, args.trial_seconds, seed=0,
                          progress=Progress(args.participants * args.sessions, "synthesize"))
    fset = feature_set(registry.load_dataset("seed")(folder), features="de", window=1.0, hop=args.hop)
    print(f"dataset: {args.participants} participants x {args.sessions} sessions x 15 trials x "
          f"{args.trial_seconds:g} s, {len(fset.y)} windows ({time.perf_counter() - t0:.0f} s to prepare)", flush=True)
    norms = args.norms.split(",")
    run = functools.partial(_evaluate, fset=fset, folder=folder, epochs=args.epochs, device=args.device,
                            live_pass=args.live_pass)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            reports = list(pool.map(run, norms))
    else:
        reports = [run(n) for n in norms]

    print(f"\nLeave-one-participant-out accuracy, 3 classes, DE features, {args.epochs} epochs, "
          f"live pass {'on' if args.live_pass else 'off'}\n")
    print(f"{'norm':<11} {'offline':>16} {'online':>16} {'online-offline':>15} {'seconds':>8}")
    for r in reports:
        print(f"{r['norm']:<11} {r['mean_accuracy']:>9.3f} ± {r['std_accuracy']:.3f} "
              f"{r['online_mean_accuracy']:>9.3f} ± {r['online_std_accuracy']:.3f} "
              f"{r['online_mean_accuracy'] - r['mean_accuracy']:>+15.3f} {r['seconds']:>8.1f}")
    by = {r["norm"]: r for r in reports}
    if "stratified" in by and "batch" in by:
        print(f"\nstratified - batch, offline: {by['stratified']['mean_accuracy'] - by['batch']['mean_accuracy']:+.3f}; "
              f"online: {by['stratified']['online_mean_accuracy'] - by['batch']['online_mean_accuracy']:+.3f}")
    print("\nPer held-out participant:\n" + format_report(reports))
    if "stratified" in by:
        curve = by["stratified"]["online_curve"]
        print("\nStratified, online accuracy by time since session start:")
        print("  " + "  ".join(f"{c['t_start'] / 60:.1f}m {c['accuracy']:.2f}" for c in curve))
    if args.report:
        Path(args.report).write_text(json.dumps(reports, indent=2))
    if args.plots:
        from bci_stream.plots import write_plots

        write_plots(reports, args.plots)


if __name__ == "__main__":
    main()
