"""Artifact detection and forgetting, measured on the synthetic generator through the live path.

1. Detection: each candidate rule decodes generated sessions (blinks, muscle bursts and storms at their
   generator rates) through ``LiveSession``; a window's kind is the worst event it overlaps (storm >
   muscle > blink), "storm tail" is a window that starts within 1 s after a storm (the filters still ring),
   "clean" overlaps none. Printed: the share of each kind's windows judged artifacts.
2. A 10-s storm (500 uV Gaussian noise on all channels, injected into the data) in a new person's session:
   labels that differ from the storm-free run 30 s after it and later, the saved input variance relative
   to the storm-free run's, and online accuracy of the storm-free run, with and without detection and
   with and without forgetting (halflife).

    python benchmarks/artifacts.py [--participants 3] [--minutes 5] [--storms 1.0]
"""

from __future__ import annotations

import argparse
import copy
import logging
import time

import numpy as np
import torch

from bci_stream.artifacts import ArtifactRule
from bci_stream.bundle import load_model
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.pipeline import Collect
from bci_stream.session import LiveSession, SessionOptions
from bci_stream.stream import Chunk

SEED = 11
#: Where the 10-s storm of part 2 starts, in seconds of the session.
STARTS = (30.0, 60.0, 90.0)
KINDS = ("clean", "blink", "muscle", "storm", "storm tail")
#: name -> rule (None: no detection)
RULES = {
    "amplitude 100 uV on 25 %": ArtifactRule(100.0, 0.25),
    "amplitude 150 uV on 25 %": ArtifactRule(150.0, 0.25),
    "amplitude 150 uV on 50 % (default)": ArtifactRule(),
    "amplitude 300 uV on 50 %": ArtifactRule(300.0, 0.5),
    "features median |z| > 3": (None, 3.0),
    "features median |z| > 5": (None, 5.0),
    "features median |z| > 10": (None, 10.0),
    "amplitude (default) or |z| > 5": (ArtifactRule(), 5.0),
}


class _FeatureDistance:
    """The candidate left out of the library: a window is an artifact when the median |z| of its features against
    the stratum's input statistics (pooled with their prior, learning nothing from the window) exceeds
    ``threshold``; or when ``amplitude`` (the library's detector, or None) says so."""

    def __init__(self, pipeline, threshold, amplitude):
        self.strata, self.threshold, self.amplitude = pipeline.strata, threshold, amplitude
        self.inputs = pipeline.strata._tracked[0]  # the input's StratifiedNormalizer, read without learning

    def __call__(self, windows, features):
        out = self.amplitude(windows, features) if self.amplitude else [None] * len(windows)
        distance = np.median(np.abs(self.inputs.transform(self.strata.key, features)), axis=1)
        return [o or ({"reason": "features", "distance": round(float(d), 1)} if d > self.threshold else None)
                for o, d in zip(out, distance)]


class _Drop:
    """An oracle in the detector's place: the windows overlapping samples [a, z) are the artifacts, whatever they hold."""

    def __init__(self, a, z, length, hop):
        self.a, self.z, self.length, self.hop, self.seen = a, z, length, hop, 0

    def __call__(self, windows, features):
        ends = self.length + self.hop * (self.seen + np.arange(len(windows)))
        self.seen += len(windows)
        return [{"reason": "oracle"} if self.a < e and e - self.length < self.z else None for e in ends]


def decode(gen_info, bundle, data, participant, rule, oracle=None):
    """Predictions of ``data`` decoded live in 0.1-s chunks, and the (closed) session."""
    keep = Collect()
    distance = isinstance(rule, tuple)  # (amplitude rule or None, |z| threshold): the feature-distance candidate
    live = LiveSession(gen_info, bundle, SessionOptions(participant, "1", artifacts=rule[0] if distance else rule),
                       sinks=[keep])
    if distance:
        live.pipeline.artifacts = _FeatureDistance(live.pipeline, rule[1], live.pipeline.artifacts)
    if oracle is not None:
        live.pipeline.artifacts = oracle
    ts = (np.arange(len(data)) + 1) / gen_info.srate
    step = round(0.1 * gen_info.srate)
    live.run(Chunk(data[i : i + step], ts[i : i + step]) for i in range(0, len(data), step))
    live.close()
    return keep.predictions, live


def window_kinds(gen: SyntheticEEG, seed: int, ends: np.ndarray, length: int, n: int) -> np.ndarray:
    """The worst event each window (ending before sample ``ends``) overlaps, as an index into KINDS."""
    ev = SyntheticEEG("seed62", participant=gen.participant, session=gen.session, seed=seed, storms=gen.storms)
    ev._draw_events(n)  # the generator's own event list, drawn as for the data
    kind = np.zeros(len(ends), int)
    sec = round(gen.srate)
    for k, name in ((1, "blink"), (2, "muscle"), (3, "storm")):
        for e, onset, size, _ in ev._events:
            if e == name:
                kind[(ends > onset) & (ends - length < onset + size)] = k
                if name == "storm":
                    tail = (ends - length >= onset + size) & (ends - length < onset + size + sec) & (kind == 0)
                    kind[tail] = 4
    return kind


def detection(bundle, participants, minutes, storms) -> None:
    print(f"\n1. Share of windows judged artifacts, {len(participants)} new people x {minutes} min, "
          f"storms {storms:g}/min (window kinds: worst event overlapped)")
    sessions = []
    for p in participants:
        gen = SyntheticEEG("seed62", participant=p, session="1", seed=SEED, storms=storms)
        data, _ = gen.generate(round(minutes * 60 * gen.srate))
        sessions.append((gen, data))
    counts = None
    print(f"{'rule':<36}" + "".join(f"{k:>12}" for k in KINDS) + f"{'s':>7}")
    for name, rule in RULES.items():
        flagged, total, t = np.zeros(len(KINDS)), np.zeros(len(KINDS)), time.perf_counter()
        for gen, data in sessions:
            preds, _ = decode(gen.info, bundle, data, gen.participant, rule)
            ends = np.array([p.window_index for p in preds])
            kind = window_kinds(gen, SEED, ends, round(bundle.window * gen.srate), len(data))
            art = np.array([p.artifact is not None for p in preds])
            for k in range(len(KINDS)):
                flagged[k] += art[kind == k].sum()
                total[k] += (kind == k).sum()
        counts = total
        print(f"{name:<36}" + "".join(f"{f / max(n, 1):>12.3f}" for f, n in zip(flagged, total))
              + f"{time.perf_counter() - t:>7.1f}")
    print(f"{'windows':<36}" + "".join(f"{int(n):>12d}" for n in counts))


def storm_effect(bundle, participants, minutes) -> None:
    print(f"\n2. A 10-s storm (500 uV on all channels) at {', '.join(f'{s:g}' for s in STARTS)} s (one per run), "
          f"{len(participants)} new people x {minutes} min; means over people and storms:")
    print("   labels differing from the same configuration's storm-free run 30-60 s after the storm and from then to "
          "the end;\n   floor: the same when the storm's windows are merely dropped from the storm-free data (what "
          "losing those 10 s of EEG costs by itself);\n   input variance saved at the end over the storm-free run's "
          "(median over features); online accuracy of the storm-free run; windows overlapping the storm classified")
    print(f"{'detection':<12}{'halflife':>10}{'30-60 s':>10}{'to end':>10}{'floor':>8}{'var ratio':>11}{'accuracy':>10}"
          f"{'classified in storm':>21}")
    srate, length = 200.0, 10.0
    for detect in (True, False):
        for halflife in (None, 300.0, 60.0):
            b = copy.deepcopy(bundle)
            b.normalization = {**b.normalization, "halflife_seconds": halflife}
            rule = ArtifactRule() if detect else None
            near, late, floor, ratios, acc, confident = [], [], [], [], [], []
            for k, p in enumerate(participants):
                gen = SyntheticEEG("seed62", participant=p, session="1", seed=SEED)
                data, cls = gen.generate(round(minutes * 60 * srate))
                preds, live = decode(gen.info, b, data, p, rule)
                clean, s_clean = {q.window_index: q for q in preds}, live.pipeline.strata.stats()
                truth = [(w, cls[w - 1]) for w in clean if cls[w - 200] == cls[w - 1]]
                acc.append(np.mean([clean[w].label == gen.class_names[c] for w, c in truth]))
                for start in STARTS:
                    a, z = round(start * srate), round((start + length) * srate)
                    stormy = data.copy()
                    stormy[a:z] += np.random.default_rng(k).normal(0, 500.0, (z - a, data.shape[1])).astype(np.float32)
                    preds, live = decode(gen.info, b, stormy, p, rule)
                    storm = {q.window_index: q for q in preds}
                    dropped = {q.window_index: q for q in decode(gen.info, b, data, p, rule, _Drop(a, z, 200, 20))[0]}
                    after = [w for w in clean if w - 200 >= z + 30 * srate]
                    near.append(np.mean([storm[w].label != clean[w].label for w in after if w - 200 < z + 60 * srate]))
                    late.append(np.mean([storm[w].label != clean[w].label for w in after]))
                    floor.append(np.mean([dropped[w].label != clean[w].label for w in after if w - 200 < z + 60 * srate]))
                    ratios.append(np.median(live.pipeline.strata.stats().var / s_clean.var))
                    confident.append(sum(storm[w].artifact is None for w in storm if a < w and w - 200 < z))
            print(f"{'on' if detect else 'off':<12}{'none' if halflife is None else f'{halflife:g} s':>10}"
                  f"{np.mean(near):>10.3f}{np.mean(late):>10.3f}{np.mean(floor):>8.3f}{np.mean(ratios):>11.2f}"
                  f"{np.mean(acc):>10.3f}{np.mean(confident):>21.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--storms", type=float, default=1.0, help="storm episodes per minute in part 1")
    args = ap.parse_args()
    last = (max(STARTS) + 10 + 60) / 60  # the last storm, and the minute of labels after it
    if args.minutes < last:
        ap.error(f"--minutes {args.minutes:g}: the last storm starts at {max(STARTS):g} s; at least {last:.2f} needed")
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.ERROR)
    bundle = load_model("seed62")
    people = [f"art{i + 1}" for i in range(args.participants)]
    detection(bundle, people, args.minutes, args.storms)
    storm_effect(bundle, people, args.minutes)


if __name__ == "__main__":
    main()
