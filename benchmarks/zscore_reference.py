"""The naive reference the live path must beat: a multinomial logistic regression on per-session z-scored features.

Offline it z-scores each session by its own mean and standard deviation; online by the session's cumulative ones
(every window so far, itself included), each session from nothing, in recording order. No network, no prior, no
hidden statistics: what per-session normalization alone buys, measured on the same windows and folds as the
network (``accuracy.py --norms reference``). The issue that asked for an honest benchmark measured this reference
at 0.854 offline and 0.772 online on a SEED-layout set of its own, against the live path's 0.875 and 0.782.
"""

from __future__ import annotations

import numpy as np
import torch

from bci_stream.batch import FeatureSet
from bci_stream.evaluation import accuracy_curve, folds, summarize
from bci_stream.training import natural_key

#: L2 penalty on the weights (per window, as in a mean loss), and LBFGS iterations: fixed, never chosen on a test fold.
L2, ITERATIONS = 1e-3, 200


def _sessions(fset: FeatureSet, rows: np.ndarray):
    """(participant, session, its row indices in recording order) of ``rows``, sessions in natural order."""
    keys = sorted({(p, s) for p, s in zip(fset.participant[rows], fset.session[rows])},
                  key=lambda k: (natural_key(str(k[0])), natural_key(str(k[1]))))
    for p, s in keys:
        yield p, s, rows[(fset.participant[rows] == p) & (fset.session[rows] == s)]


def zscored(X: np.ndarray) -> np.ndarray:
    """One session z-scored by its own mean and standard deviation."""
    return (X - X.mean(0)) / (X.std(0) + 1e-8)


def cumulative_zscored(X: np.ndarray) -> np.ndarray:
    """One session z-scored window by window by the mean and standard deviation of the windows so far; the first
    window, whose spread is unknown, is all zeros."""
    n = np.arange(1, len(X) + 1)[:, None]
    mean = np.cumsum(X, 0) / n
    var = np.maximum(np.cumsum(X * X, 0) / n - mean**2, 0.0)
    return np.where(n > 1, (X - mean) / (np.sqrt(var) + 1e-8), 0.0)


def fit(X: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> torch.nn.Linear:
    torch.manual_seed(seed)
    model = torch.nn.Linear(X.shape[1], n_classes, dtype=torch.float64)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.LBFGS(model.parameters(), max_iter=ITERATIONS, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = torch.nn.functional.cross_entropy(model(Xt), yt) + L2 * model.weight.pow(2).sum()
        value.backward()
        return value

    opt.step(loss)
    return model


def predict(model: torch.nn.Linear, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(X)).argmax(1).numpy()


def session_seconds(fset: FeatureSet, rows: np.ndarray) -> np.ndarray:
    """Each window's end in seconds since its session started: trials back to back, as the live path meets them,
    each ``(n - 1) * hop + window`` long for its ``n`` windows."""
    trial = fset.trial[rows]
    starts = np.flatnonzero(np.r_[True, trial[1:] != trial[:-1]])
    lengths = np.diff(np.r_[starts, len(rows)])
    offset = np.repeat(np.cumsum(np.r_[0, (lengths[:-1] - 1) * fset.hop + fset.window]), lengths)
    return offset + (np.arange(len(rows)) - np.repeat(starts, lengths)) * fset.hop + fset.window


def reference_report(fset: FeatureSet, classes: list[str], mapping: dict[int, int] | None, seed: int,
                     only=None) -> dict:
    """Leave one participant out on ``fset`` (every class), scoring ``classes`` (``select_classes``'s ``mapping``
    of the labels, or None for all), as ``evaluate(online=True)`` reports it: offline on the scored windows
    z-scored among themselves, online on every window in recording order as the live path replays them, the curves
    by time since session start with a new person's first session apart from the later ones. Norm name
    ``reference``."""
    X = fset.X.astype(np.float64)
    y = fset.y if mapping is None else np.array([mapping.get(v, -1) for v in fset.y.tolist()], np.int64)
    n_classes = len(classes)
    results, confusion = [], np.zeros((n_classes, n_classes), np.int64)
    for name, test in folds(fset, "loso", 0, seed):
        if only is not None and name not in only:
            continue
        parts = [r[y[r] >= 0] for _, _, r in _sessions(fset, np.flatnonzero(~test))]
        model = fit(np.concatenate([zscored(X[r]) for r in parts]), np.concatenate([y[r] for r in parts]),
                    n_classes, seed)
        offline, first, returning = [], [], []
        for k, (_, _, rows) in enumerate(_sessions(fset, np.flatnonzero(test))):
            keep = y[rows] >= 0
            offline.append((predict(model, zscored(X[rows[keep]])), y[rows[keep]]))
            online = predict(model, cumulative_zscored(X[rows]))
            t = session_seconds(fset, rows)
            (first if k == 0 else returning).extend(zip(t[keep], online[keep], y[rows][keep]))
        p, yt = (np.concatenate(v) for v in zip(*offline))
        np.add.at(confusion, (yt, p), 1)
        _, po, yo = (np.array(v) for v in zip(*first, *returning))
        results.append({"participant": name, "accuracy": float((p == yt).mean()), "n_windows": int(len(yt)),
                        "online_accuracy": float((po == yo).mean()), "online_windows": int(len(yo)),
                        "online_curve_first": accuracy_curve(first),
                        "online_curve_returning": accuracy_curve(returning)})
    meta = {"dataset": "synthetic-seed", "features": fset.features, "norm": "reference", "protocol": "loso",
            "classes": list(classes), "model": "logistic regression", "epochs": 0, "seed": seed,
            "window": fset.window, "hop": fset.hop, "live_pass": False}
    return summarize(meta, results, confusion.tolist())
