"""The naive reference of ``benchmarks/accuracy.py`` is causal online, times windows as the live path does, and
reports as ``evaluate`` does, so its row stands beside the network's on the same folds."""

import sys
from pathlib import Path

import numpy as np

from bci_stream.batch import FeatureSet
from bci_stream.evaluation import merge_reports

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from zscore_reference import cumulative_zscored, reference_report, session_seconds  # noqa: E402


def test_cumulative_zscores_use_only_the_windows_so_far():
    X = np.random.default_rng(0).normal(3.0, 2.0, (40, 5))
    expected = np.zeros_like(X)
    for t in range(1, len(X)):
        seen = X[: t + 1]
        expected[t] = (X[t] - seen.mean(0)) / seen.std(0)
    z = cumulative_zscored(X)
    assert np.allclose(z, expected, atol=1e-6)
    later = X.copy()
    later[20:] += 100.0
    assert np.array_equal(cumulative_zscored(later)[:20], z[:20])


def _fset(trial_windows, hop=0.5, window=1.0, X=None, y=None, participant=None, session=None):
    n = sum(trial_windows)
    trial = np.repeat(np.arange(len(trial_windows)), trial_windows)
    return FeatureSet(X=np.zeros((n, 2)) if X is None else X, y=np.zeros(n, int) if y is None else y,
                      participant=np.full(n, "1") if participant is None else participant,
                      session=np.full(n, "1") if session is None else session, class_names=("a", "b", "c"),
                      channels=("C3",), srate=200.0, features="de", window=window, hop=hop, trial=trial)


def test_a_window_ends_where_the_live_path_would_have_cut_it():
    fset = _fset([3, 2])  # trials of 2 s and 1.5 s, back to back
    assert session_seconds(fset, np.arange(5)).tolist() == [1.0, 1.5, 2.0, 3.0, 3.5]


def _people(n_people=4, sessions=2, windows=30, seed=1):
    """Each session: one trial per class, a class pattern under a large offset of the session's own."""
    rng = np.random.default_rng(seed)
    pattern = rng.normal(0, 3, (3, 6))
    rows = {k: [] for k in ("X", "y", "participant", "session", "trial")}
    for p in range(1, n_people + 1):
        for s in range(1, sessions + 1):
            offset = rng.normal(0, 20, 6)
            for c in range(3):
                rows["X"].append(offset + pattern[c] + rng.normal(0, 0.3, (windows, 6)))
                rows["y"].append(np.full(windows, c))
                rows["participant"].append(np.full(windows, str(p)))
                rows["session"].append(np.full(windows, str(s)))
                rows["trial"].append(np.full(windows, c))
    cat = {k: np.concatenate(v) for k, v in rows.items()}
    return FeatureSet(class_names=("a", "b", "c"), channels=tuple("ABCDEF"), srate=200.0, features="de", window=1.0,
                      hop=1.0, **cat)


def test_the_reference_decodes_what_per_session_zscores_reveal_and_its_parts_merge():
    fset = _people()
    whole = reference_report(fset, ["a", "b", "c"], None, seed=0)
    assert whole["norm"] == "reference" and whole["mean_accuracy"] == 1.0  # offsets gone, patterns apart
    # Online, the first trial of a session is all one class: its cumulative z-scores hold no class, so the first
    # 30 s cannot be what offline is.
    first = whole["online_curve_first"][0]
    assert first["t_start"] == 0.0 and first["accuracy"] < 1.0 and whole["online_mean_accuracy"] < 1.0
    parts = [reference_report(fset, ["a", "b", "c"], None, seed=0, only=only) for only in (["1", "2"], ["3", "4"])]
    merged, = merge_reports(parts)
    assert merged["mean_accuracy"] == whole["mean_accuracy"]
    assert merged["online_curve"] == whole["online_curve"]


def test_classes_left_out_still_stream_online_and_are_not_scored():
    fset = _people()
    two = reference_report(fset, ["c", "a"], {2: 0, 0: 1}, seed=0)
    assert two["classes"] == ["c", "a"] and two["mean_accuracy"] == 1.0
    scored = sum(b["n_windows"] for b in two["online_curve"])
    assert scored == 2 * 30 * 2 * 4  # two classes' trials of 30 windows, 2 sessions, 4 people
    # Class b (trial 1) still streamed: a's windows (trial 0) and c's (trial 2) keep their times in the session.
    # a's 30-s trial fills the bin (0, 30], c's (60, 90]; b's (30, 60] is not scored (were b dropped: 0 and 30).
    assert {b["t_start"] for b in two["online_curve_first"]} == {0.0, 60.0}
