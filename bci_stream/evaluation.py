"""Cross-subject evaluation: leave-one-participant-out or k-fold, offline and through the live path."""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from bci_stream.batch import FeatureSet
from bci_stream.bundle import ModelBundle
from bci_stream.pipeline import Collect, Pipeline
from bci_stream.progress import Progress
from bci_stream.session import LiveSession, SessionOptions
from bci_stream.stream import Chunk, StreamInfo, Trial
from bci_stream.training import NORMS, TrainSettings, natural_key, normalize_inputs, predict, stratum_ids, train_bundle

#: Online accuracy is binned by time since session start, in seconds.
CURVE_BIN = 30.0
#: The share of a fold's training participants held out to choose its live statistics on (class-aware "auto").
CHOICE_HOLDOUT = 0.2
#: The online curves ``format_report`` prints: a new person's first session, and a returning person's later ones.
CURVES = (("first session", "online_curve_first"), ("returning", "online_curve_returning"))


def replay_session(bundle: ModelBundle, trials: list[Trial], window: float, hop: float, state_dir,
                   chunk_seconds: float = 0.1, sinks=()):
    """Stream one session's trials back to back through a fresh Pipeline, as a live session would run.

    The stratum is the trials' own (participant, session). The session starts with empty
    statistics; what earlier sessions of the same participant left in ``state_dir`` serves
    as its warm-up prior, as live.

    ``sinks`` also receive every prediction, as a live run's would. Returns, for each window that lies inside one
    trial and is no artifact, (seconds since session start, predicted class index, true class index).
    """
    info = trials[0].info
    data = np.concatenate([t.data for t in trials]).astype(np.float32)
    trial_of = np.concatenate([np.full(len(t.data), i) for i, t in enumerate(trials)])
    ts = (np.arange(len(data)) + 1) / info.srate
    preds = []
    options = SessionOptions(trials[0].participant, trials[0].session, window, hop, state_dir=state_dir)
    live = LiveSession(info, bundle, options, sinks=[Collect(preds), *sinks])
    step = max(1, round(chunk_seconds * info.srate))
    live.run(Chunk(data[i : i + step], ts[i : i + step]) for i in range(0, len(data), step))
    live.close()
    length = round(window * info.srate)
    names = list(bundle.class_names)
    out = []
    for p in preds:
        first, last = trial_of[p.window_index - length], trial_of[p.window_index - 1]
        if first == last and trials[last].label >= 0 and p.artifact is None:  # an artifact has no class to score
            out.append((p.window_index / info.srate, names.index(p.label), trials[last].label))
    return out


def replay_participant(bundle: ModelBundle, trials: Iterable[Trial], window: float, hop: float) -> tuple[list, list]:
    """One participant's sessions replayed in natural order, sharing a state folder, so each later session starts
    from the earlier ones' statistics, as a returning person's does live.

    Returns the scored windows (see :func:`replay_session`) of the first session (a new person) and of the later
    ones (a returning person).
    """
    with tempfile.TemporaryDirectory() as state:
        scored = [replay_session(bundle, s, window, hop, state) for s in by_session(trials)]
    return scored[0], [row for s in scored[1:] for row in s]


def feature_sessions(fset: FeatureSet, participant: str):
    """(session, its rows) of the participant, in natural order."""
    for s in sorted(np.unique(fset.session[fset.participant == participant]), key=natural_key):
        yield s, np.flatnonzero((fset.participant == participant) & (fset.session == s))


def decode_features(bundle: ModelBundle, fset: FeatureSet, participant: str, session: str, rows: np.ndarray,
                    state_dir=None) -> np.ndarray:
    """Predicted classes of feature ``rows``, in that order, by a fresh pipeline on the live path (its normalization
    and model, ``Pipeline.classify``), without the filters and features: fast enough to compare live choices."""
    info = StreamInfo("features", list(bundle.channels), bundle.srate, "microvolts")
    pipe = Pipeline(info, bundle, participant, session, hop=fset.hop, state_dir=state_dir)
    try:
        return pipe.classify(fset.X[rows]).argmax(1)
    finally:
        pipe.close()


def replay_features(bundle: ModelBundle, fset: FeatureSet, participant: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(predicted, true) classes of each of the participant's sessions, in natural order, decoded as by
    :func:`decode_features` with one state folder, so later sessions start from earlier ones as a returning
    person's do."""
    with tempfile.TemporaryDirectory() as state:
        return [(decode_features(bundle, fset, participant, s, rows, state), fset.y[rows])
                for s, rows in feature_sessions(fset, participant)]


def accuracy_curve(scored: list) -> list[dict]:
    """Accuracy of scored windows ``(seconds since session start, predicted, true)`` by CURVE_BIN seconds.

    A label at t is decoded from the data up to t, so the bin that starts at a holds t in (a, a + CURVE_BIN]: the
    labels of the session's first a + CURVE_BIN seconds, and a clip that ends on a bin's edge keeps its last window.
    """
    return pool_curves([[{"t_start": max(math.ceil(t / CURVE_BIN) - 1, 0) * CURVE_BIN, "n_correct": int(p == y),
                          "n_windows": 1} for t, p, y in scored]])


def pool_curves(curves: Iterable[list[dict]]) -> list[dict]:
    """Several accuracy curves' bins pooled window by window (people's curves into a population's)."""
    bins: dict[float, list[int]] = {}  # bin start -> [correct, total]
    for curve in curves:
        for c in curve:
            b = bins.setdefault(c["t_start"], [0, 0])
            b[0] += c["n_correct"]
            b[1] += c["n_windows"]
    return [{"t_start": t, "accuracy": c / n, "n_correct": c, "n_windows": n} for t, (c, n) in sorted(bins.items())]


def folds(fset: FeatureSet, protocol: str, k: int, seed: int):
    if protocol == "loso":
        for p in sorted(np.unique(fset.participant).astype(str), key=natural_key):
            yield p, fset.participant == p
    elif protocol == "kfold":
        # Whole trials go to one fold, so no window of a test trial is trained on.
        trial = getattr(fset, "trial", None)
        if trial is None:
            raise ValueError("kfold needs the trial of every window; these features carry none")
        inv = stratum_ids(fset.participant, fset.session, trial)
        fold_of = np.random.default_rng(seed).permutation(inv.max() + 1) % k
        for f in range(k):
            yield f"fold{f + 1}", fold_of[inv] == f
    else:
        raise ValueError(f"unknown protocol {protocol!r}; use loso or kfold")


class UnknownFoldError(ValueError):
    """``only`` named a fold the protocol does not make."""


def evaluate(fset: FeatureSet, settings: TrainSettings, protocol: str, *, dataset: str, k: int | None = None,
             online: bool = False, session_trials: Callable[[str], Iterable[Trial]] | None = None,
             only: Iterable[str] | None = None) -> dict:
    """Train on the other folds, test on each; with ``online`` also replay held-out sessions live.

    ``k`` is the number of folds of ``kfold``; ``session_trials(participant)`` gives a
    held-out participant's raw trials for ``online``. ``only`` names the folds to run, so that a run too long for
    one sitting can be split; ``merge_reports`` joins the parts.
    """
    if protocol == "kfold" and not k:
        raise ValueError("kfold needs the number of folds")
    if online and (protocol != "loso" or session_trials is None):
        raise ValueError("--online replays held-out participants' sessions: it needs --protocol loso and the raw data")
    every = list(folds(fset, protocol, k, settings.seed))
    if only is not None:
        only = list(only)
        names = [name for name, _ in every]
        unknown = [name for name in only if name not in names]
        if unknown:
            raise UnknownFoldError(f"no fold named {', '.join(unknown)}; the folds are {', '.join(names)}")
        every = [(name, test) for name, test in every if name in only]
    if not every:
        raise ValueError("no folds to run")
    n_classes = len(fset.class_names)
    strata = stratum_ids(fset.participant, fset.session)
    results, confusion = [], np.zeros((n_classes, n_classes), np.int64)
    norm, device = settings.norm, settings.device
    progress = Progress(len(every), f"{protocol} {norm}", settings.quiet)
    # Class-aware "auto" is chosen on some of each fold's training participants: nested, never on the test fold.
    holdout = CHOICE_HOLDOUT if settings.class_aware == "auto" and NORMS[norm] == "stratified" else 0
    for name, test in every:
        bundle = train_bundle(fset.take(~test), dataset, dataclasses.replace(settings, quiet=True), holdout=holdout,
                              hop=fset.hop)
        net = bundle.build_model(device)
        train_stats = (np.asarray(bundle.normalization["prior_mean"]), np.asarray(bundle.normalization["prior_var"]))
        Xt = normalize_inputs(fset.X[test], strata[test], norm, train_stats)
        pred = predict(net, Xt, strata[test], device)
        np.add.at(confusion, (fset.y[test], pred), 1)
        fold = {"participant": name, "accuracy": float((pred == fset.y[test]).mean()), "n_windows": int(test.sum())}
        if "class_aware_choice" in bundle.report:
            fold["class_aware_choice"] = bundle.report["class_aware_choice"]
        if online:
            first, returning = replay_participant(bundle, session_trials(name), fset.window, fset.hop)
            _, p, y = (np.array(v) for v in zip(*first, *returning))
            fold["online_accuracy"] = float((p == y).mean())
            fold["online_windows"] = int(len(y))
            fold["online_curve_first"] = accuracy_curve(first)  # a new person
            fold["online_curve_returning"] = accuracy_curve(returning)  # from their own earlier sessions
        results.append(fold)
        progress.update(note=f"{name}: {fold['accuracy']:.3f}" + (f" online {fold['online_accuracy']:.3f}" if online else ""))
    meta = {"dataset": dataset, "features": fset.features, "norm": norm, "protocol": protocol,
            "classes": list(fset.class_names), "model": settings.model, "epochs": settings.epochs,
            "seed": settings.seed, "window": fset.window, "hop": fset.hop, "live_pass": bundle.report["live_pass"],
            "class_aware": settings.class_aware if NORMS[norm] == "stratified" else False}
    return summarize(meta, results, confusion.tolist())


def summarize(meta: dict, results: list[dict], confusion: list) -> dict:
    """The report of these folds: their means, and the population's online curves pooled from theirs."""
    acc = np.array([f["accuracy"] for f in results])
    report = {**meta, "folds": results, "mean_accuracy": float(acc.mean()), "std_accuracy": float(acc.std()),
              "confusion": confusion}
    if "online_accuracy" in results[0]:
        on = np.array([f["online_accuracy"] for f in results])
        report["online_mean_accuracy"] = float(on.mean())
        report["online_std_accuracy"] = float(on.std())
        for _, key in CURVES:
            report[key] = pool_curves(f[key] for f in results)
        report["online_curve"] = pool_curves(report[key] for _, key in CURVES)
    return report


#: What ``summarize`` computes from the folds; the rest of a report says what was run, and parts must agree on it.
SUMMARY = ("folds", "mean_accuracy", "std_accuracy", "confusion", "online_mean_accuracy", "online_std_accuracy",
           "online_curve", *(key for _, key in CURVES), "seconds")


def merge_reports(parts: list[dict]) -> list[dict]:
    """Reports of runs that each held out some participants (``evaluate(only=...)``), one report per norm and seed:
    the same as one run over all of those folds."""
    groups: dict[tuple, list[dict]] = {}
    for r in parts:
        groups.setdefault((r["norm"], r["seed"]), []).append(r)
    merged = []
    for (norm, seed), rs in groups.items():
        meta = {k: v for k, v in rs[0].items() if k not in SUMMARY}
        for r in rs[1:]:
            other = {k: v for k, v in r.items() if k not in SUMMARY}
            differ = sorted(k for k in meta.keys() | other.keys() if meta.get(k) != other.get(k))
            if differ:
                raise ValueError(f"reports of norm {norm}, seed {seed} were not run alike: they differ in "
                                 f"{', '.join(differ)}")
        results = sorted((f for r in rs for f in r["folds"]), key=lambda f: natural_key(f["participant"]))
        names = [f["participant"] for f in results]
        twice = sorted({n for n in names if names.count(n) > 1}, key=natural_key)
        if twice:
            raise ValueError(f"norm {norm}, seed {seed}: participant(s) {', '.join(twice)} held out in more than one "
                             f"report")
        report = summarize(meta, results, np.sum([r["confusion"] for r in rs], axis=0).tolist())
        if all("seconds" in r for r in rs):
            report["seconds"] = round(sum(r["seconds"] for r in rs), 1)
        merged.append(report)
    return merged


def load_reports(paths: Iterable[str]) -> list[dict]:
    """The reports in these JSON files (``evaluate --report``: one report; ``benchmarks/accuracy.py --report``: a list
    of them), for ``merge_reports``."""
    reports = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: expected a JSON report written by --report: {e}") from None
        data = [data] if isinstance(data, dict) else data
        if not (isinstance(data, list) and data and all(isinstance(r, dict) and "folds" in r for r in data)):
            raise ValueError(f"{path}: expected a report written by --report (a report, or a list of them), got "
                             f"something else")
        reports += data
    return reports


def by_session(trials: Iterable[Trial]) -> list[list[Trial]]:
    """A participant's trials grouped by session, sessions in natural order (1, 2, 10): earlier sessions
    are replayed first, so their statistics are a later session's prior, as live."""
    sessions: dict[str, list[Trial]] = {}
    for t in trials:
        sessions.setdefault(t.session, []).append(t)
    return [sessions[s] for s in sorted(sessions, key=natural_key)]


def format_report(reports: list[dict]) -> str:
    """A table: one row per fold, then mean and standard deviation, one column pair per report."""
    head = "participant " + "".join(f"{r['norm'] + ' offline':>20}" + (f"{'online':>10}" if "online_mean_accuracy" in r else "")
                                    for r in reports)
    lines = [head]
    for i, fold in enumerate(reports[0]["folds"]):
        row = f"{fold['participant']:<12}"
        for r in reports:
            f = r["folds"][i]
            row += f"{f['accuracy']:>20.3f}" + (f"{f['online_accuracy']:>10.3f}" if "online_accuracy" in f else "")
        lines.append(row)
    row = f"{'mean ± std':<12}"
    for r in reports:
        row += f"{r['mean_accuracy']:>13.3f} ± {r['std_accuracy']:.3f}"
        if "online_mean_accuracy" in r:
            row += f"{r['online_mean_accuracy']:>10.3f}"
    lines.append(row)
    curves = [(f"{r['norm']}, {what}", r[key]) for r in reports for what, key in CURVES if key in r]
    if curves:
        lines.append("online accuracy by time since session start: bin start, accuracy (windows)")
    for name, curve in curves:
        lines.append(f"  {name:<26}" + ("  ".join(f"{c['t_start']:g} s {c['accuracy']:.3f} ({c['n_windows']})"
                                                   for c in curve) or "no such sessions"))
    return "\n".join(lines)
