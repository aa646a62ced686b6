"""Cross-participant accuracy on a BIDS-EEG dataset written from the synthetic generator: stratified vs batch
normalization, offline and online (through the live path, from empty statistics), leave-one-participant-out.

The dataset is written by MNE-BIDS (BrainVision, events.tsv with a 'fixation' and a 'rating' event
around each trial, channels.tsv with a session's bad channels, electrodes.tsv) by the same writer
as ``tests/test_bids.py``, and read back by ``--dataset bids``: the path a lab's own BIDS
recordings take through ``bci-stream evaluate ROOT --dataset bids``.

    python benchmarks/bids_accuracy.py [--seed 1] [--participants 8] [--sessions 2] [--trials 6] [--trial-seconds 30]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bci_stream import registry
from bci_stream.evaluation import evaluate, format_report
from bci_stream.featurecache import feature_set
from bci_stream.training import TrainSettings

# The tests' writer: one way to make a BIDS dataset from the generator, not two.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_bids import CLASSES, write_bids

EVENTS = ",".join(f"{c}={c}" for c in CLASSES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1, help="seed of the generated data and of training")
    ap.add_argument("--participants", type=int, default=8)
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--trials", type=int, default=6, help="trials per session (a multiple of 3 balances the classes)")
    ap.add_argument("--trial-seconds", type=float, default=30.0)
    ap.add_argument("--hop", type=float, default=1.0, help="window hop for features and the online replay, s")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--norms", default="stratified,batch")
    ap.add_argument("--data", help="write the BIDS dataset here and keep it (default: a temporary folder)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    # Each fold's model is trained in evaluate, which records no provenance: every replayed session would warn so.
    logging.getLogger("bci_stream.session").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data or tmp) / (f"p{args.participants}-s{args.sessions}-t{args.trials}x{args.trial_seconds:g}"
                                         f"-seed{args.seed}")
        t0 = time.perf_counter()
        if not (root / "dataset_description.json").exists():
            write_bids(root, args.participants, args.sessions, seed=args.seed, trials=args.trials,
                       trial_seconds=args.trial_seconds)
        dataset = registry.load_dataset("bids")(root, events=EVENTS)
        fset = feature_set(dataset, features="de", window=1.0, hop=args.hop, cache_dir=False, quiet=True)
        print(f"seed {args.seed}: {args.participants} participants x {args.sessions} sessions x {args.trials} trials x "
              f"{args.trial_seconds:g} s, {len(fset.y)} windows ({time.perf_counter() - t0:.0f} s to write and read)",
              flush=True)
        reports = []
        for norm in args.norms.split(","):
            t = time.perf_counter()
            settings = TrainSettings(norm=norm, epochs=args.epochs, seed=args.seed, quiet=True)
            r = evaluate(fset, settings, "loso", dataset="bids", online=True,
                         session_trials=lambda p: dataset.trials([p]))
            r["seconds"] = round(time.perf_counter() - t, 1)
            reports.append(r)
            print(f"{norm}: {r['seconds']} s", file=sys.stderr, flush=True)

    print(f"\n{'norm':<11} {'offline':>16} {'online':>16} {'online-offline':>15} {'seconds':>8}")
    for r in reports:
        off = np.array([f["accuracy"] for f in r["folds"]])
        on = np.array([f["online_accuracy"] for f in r["folds"]])
        print(f"{r['norm']:<11} {off.mean():>9.3f} ± {off.std(ddof=1):.3f} {on.mean():>9.3f} ± {on.std(ddof=1):.3f} "
              f"{(on - off).mean():>+15.3f} {r['seconds']:>8.1f}")
    print(f"(mean ± sd over the {args.participants} held-out participants; chance {1 / len(CLASSES):.3f})")
    print("\nPer held-out participant:\n" + format_report(reports))
    for r in reports:
        print(f"\n{r['norm']}, online accuracy by time since session start (trials back to back):")
        print("  " + "  ".join(f"{c['t_start'] / 60:.1f}m {c['accuracy']:.2f}" for c in r["online_curve"]))


if __name__ == "__main__":
    main()
