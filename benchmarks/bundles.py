"""What a model bundle says about generated people it never saw, through the live path.

The shipped bundles are trained on the generator; this measures what they, or a candidate to replace them, do on
new generated people of each preset: each person's sessions (clips in random class order, every class once per
round) replayed through ``LiveSession`` as a new person and then a returning one, raw EEG in 0.1-s chunks at the
bundle's hop. New people are drawn under a data seed the training did not use, so none of their draws (gains,
offsets, own patterns) was seen. Printed: accuracy over a new person's first session and over returning sessions,
over the first 60 s of the first session, and the first session by 30 s since its start.

    python benchmarks/bundles.py [--bundles seed62,new.pt] [--difficulty easy,seed] [--participants 5]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from bci_stream.bundle import BundleError, load_model
from bci_stream.datasets.synthetic import synthetic_trials
from bci_stream.devices.synthetic import DIFFICULTY
from bci_stream.evaluation import CURVE_BIN, accuracy_curve, replay_participant
from bci_stream.progress import Progress

#: Data seed of the new people; the bundles are trained on seed 0.
SEED = 1001
#: Bins of the first-session curve printed.
BINS = 10


def share(scored, until=float("inf")) -> str:
    """Accuracy of scored windows (seconds since session start, predicted, true) before ``until`` seconds, printed;
    "-" when there are none (one session: no returning person)."""
    hits = [p == y for t, p, y in scored if t < until]
    return f"{sum(hits) / len(hits):.3f}" if hits else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundles", default="seed62", help="bundled names or paths, separated by commas")
    ap.add_argument("--difficulty", default="easy,seed", help="generator presets of the new people")
    ap.add_argument("--participants", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--trials", type=int, default=15, help="clips per session")
    ap.add_argument("--trial-seconds", default="30,240", help="clip length per preset, in --difficulty's order")
    args = ap.parse_args()
    presets = args.difficulty.split(",")
    if not set(presets) <= set(DIFFICULTY):
        ap.error(f"--difficulty: expected presets among {', '.join(DIFFICULTY)} separated by commas, "
                 f"got {args.difficulty!r}")
    for name in ("participants", "sessions", "trials"):
        if getattr(args, name) < 1:
            ap.error(f"--{name}: expected at least 1, got {getattr(args, name)}")
    try:
        seconds = [float(x) for x in args.trial_seconds.split(",")]
    except ValueError:
        ap.error(f"--trial-seconds: expected numbers separated by commas, got {args.trial_seconds!r}")
    if not all(x > 0 for x in seconds):
        ap.error(f"--trial-seconds: expected lengths above 0, got {args.trial_seconds!r}")
    if len(seconds) != len(presets):
        ap.error(f"--trial-seconds: one length per --difficulty preset ({len(presets)}), got {len(seconds)}")
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.ERROR)
    try:
        bundles = {name: load_model(name) for name in args.bundles.split(",")}
    except BundleError as e:
        ap.error(f"--bundles: {e}")
    for name, bundle in bundles.items():
        data = bundle.report.get("data", {})
        if data.get("dataset") != "synthetic":
            ap.error(f"--bundles: {name} was trained on dataset {data.get('dataset')!r}; expected a bundle trained on "
                     f"the generator (bci-stream train --dataset synthetic), whose layout the new people take")
    people = [str(p) for p in range(1, args.participants + 1)]
    print(f"New people: {args.participants} x {args.sessions} sessions x {args.trials} clips, data seed {SEED}; "
          f"first session by {CURVE_BIN:g} s since its start")
    print(f"{'bundle (trained on)':<30}{'data':<12}{'first session':>14}{'returning':>10}{'first 60 s':>11}   "
          + " ".join(f"{k * CURVE_BIN:>4.0f}" for k in range(BINS)) + f"{'s':>7}")
    for name, bundle in bundles.items():
        options = bundle.report["data"]["options"]
        trained = f"{Path(name).stem} ({options['layout']}, {options.get('difficulty', 'easy')})"
        for preset, clip in zip(presets, seconds):
            t0, first, returning = time.perf_counter(), [], []
            progress = Progress(len(people), f"{name} on {preset}")
            for p in people:
                trials = synthetic_trials(options["layout"], [p], range(1, args.sessions + 1), args.trials, seed=SEED,
                                          trial_seconds=clip, difficulty=preset)
                new, again = replay_participant(bundle, trials, bundle.window, bundle.hop)
                first += new
                returning += again
                progress.update(note=f"participant {p}")
            curve = accuracy_curve(first)[:BINS]
            print(f"{trained:<30}{preset + f' {clip:g} s':<12}{share(first):>14}"
                  f"{share(returning):>10}{share(first, 60):>11}   "
                  + " ".join(f"{c['accuracy']:>4.2f}" for c in curve) + f"{time.perf_counter() - t0:>7.0f}")


if __name__ == "__main__":
    main()
