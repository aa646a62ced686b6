import dataclasses
import functools
import json
import re

import numpy as np
import pytest

from bci_stream import cli
from bci_stream.batch import build_features
from bci_stream.bundle import default_bundle_for
from bci_stream.datasets.synthetic import synthetic_trials
from bci_stream.devices.synthetic import LAYOUTS
from bci_stream.evaluation import (accuracy_curve, evaluate, folds, format_report, merge_reports, replay_participant,
                                   replay_session)
from bci_stream.pipeline import Pipeline
from bci_stream.stream import Chunk
from bci_stream.training import TrainSettings
from conftest import Keep, cli_run

#: What stratified LOSO reaches online on this fixture, with margin (chance is 1/3): measured 0.64 with the default
#: class-aware statistics, 0.67 with plain ones (its 8-s clips are where class-aware statistics do worst).
ONLINE_FLOOR = 0.55


def _trials(participants):
    return synthetic_trials("seed62", participants, (1, 2), trials=3, trial_seconds=8, blinks=False, muscle=False)


def _progress(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_loso_offline_and_online_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("bci_stream.evaluation.CURVE_BIN", 10.0)  # 24-s sessions: three bins
    monkeypatch.setenv("BCI_STREAM_PROGRESS", "json")
    fset = build_features(_trials(["1", "2", "3"]), 18, LAYOUTS["seed62"].classes, "de", 1.0, 1.0, quiet=True)
    asked = []
    # The live pass asked of both: it is for stratified models only, and the report says whether it ran.
    reports = {norm: evaluate(fset, TrainSettings(norm=norm, epochs=40, quiet=norm == "none", seed=7, live_pass=True),
                              "loso", online=True, session_trials=lambda p: asked.append(p) or _trials([p]),
                              dataset="synthetic")
               for norm in ("none", "stratified")}
    assert asked == ["1", "2", "3"] * 2  # each fold replays its own held-out participant
    # Progress: a step per fold with its accuracies, from the non-quiet run only; the folds' training stays quiet.
    progress = _progress(capsys.readouterr().err)
    assert {p["task"] for p in progress} == {"loso stratified"} and progress[-1]["done"]
    assert (progress[-1]["n"], progress[-1]["total"]) == (3, 3)
    assert re.fullmatch(r"3: [01]\.\d{3} online [01]\.\d{3}", progress[-1]["note"]), progress[-1]
    r = reports["stratified"]
    assert {k: r[k] for k in ("dataset", "features", "norm", "protocol", "classes", "model", "epochs", "seed",
                              "window", "hop")} == {
        "dataset": "synthetic", "features": "de", "norm": "stratified", "protocol": "loso",
        "classes": list(LAYOUTS["seed62"].classes), "model": "featurenet", "epochs": 40, "seed": 7, "window": 1.0,
        "hop": 1.0}
    assert [f["participant"] for f in r["folds"]] == ["1", "2", "3"]
    assert sum(f["n_windows"] for f in r["folds"]) == len(fset.y) == np.asarray(r["confusion"]).sum()
    assert all(isinstance(v, int) for row in r["confusion"] for v in row)  # counts, as JSON integers
    off = [f["accuracy"] for f in r["folds"]]
    assert (r["mean_accuracy"], r["std_accuracy"]) == pytest.approx((np.mean(off), np.std(off)))
    on = [f["online_accuracy"] for f in r["folds"]]
    assert (r["online_mean_accuracy"], r["online_std_accuracy"]) == pytest.approx((np.mean(on), np.std(on)))
    # 8-s trials, 1-s windows at 1-s hop: 8 windows inside each of 6 trials per participant.
    assert all(f["online_windows"] == 6 * 8 for f in r["folds"])
    assert r["live_pass"] and not reports["none"]["live_pass"]
    assert r["mean_accuracy"] > reports["none"]["mean_accuracy"] + 0.15
    # Online, a new person's sessions from empty statistics: well above chance (1/3) on this easy fixture.
    print(f"\nonline {r['online_mean_accuracy']:.3f}, offline {r['mean_accuracy']:.3f}")
    assert r["online_mean_accuracy"] > ONLINE_FLOOR
    # The curve bins every scored window once, and pools to the folds' accuracies.
    curve = r["online_curve"]
    assert [c["t_start"] for c in curve] == [0.0, 10.0, 20.0]
    assert sum(c["n_windows"] for c in curve) == sum(f["online_windows"] for f in r["folds"])
    pooled = sum(f["online_accuracy"] * f["online_windows"] for f in r["folds"]) / sum(f["online_windows"] for f in r["folds"])
    assert sum(c["accuracy"] * c["n_windows"] for c in curve) / sum(c["n_windows"] for c in curve) == pytest.approx(pooled)


def test_a_run_split_by_held_out_participants_merges_into_the_whole_run(monkeypatch):
    """A full-size run is too long for one sitting: parts that each hold out some people, merged, give what one run
    over all of them gives (each fold trains from the same seed, whatever else runs)."""
    monkeypatch.setattr("bci_stream.evaluation.CURVE_BIN", 10.0)
    fset = build_features(_trials(["1", "2", "3"]), 18, LAYOUTS["seed62"].classes, "de", 1.0, 1.0, quiet=True)
    run = functools.partial(evaluate, fset, TrainSettings(norm="batch", epochs=20, quiet=True, seed=3), "loso",
                            online=True, session_trials=_trials, dataset="synthetic")
    whole = run()
    parts = [run(only=["3", "1"]), run(only=["2"])]
    assert [f["participant"] for f in parts[0]["folds"]] == ["1", "3"]
    (merged,) = merge_reports(parts)
    assert merged == whole
    # by hand: the pooled curve's first 10 s hold, in each of 3 people x 2 sessions, the 8 windows of the first 8-s
    # trial and the second trial's first two (ending at 9 and 10 s: a bin holds the labels of its data, (0, 10])
    first_bin = [c for f in whole["folds"] for key in ("online_curve_first", "online_curve_returning")
                 for c in f[key] if c["t_start"] == 0.0]
    assert merged["online_curve"][0]["n_windows"] == sum(c["n_windows"] for c in first_bin) == 3 * 2 * 10
    with pytest.raises(ValueError, match="no fold named 4; the folds are 1, 2, 3"):
        run(only=["4"])
    with pytest.raises(ValueError, match="participant.s. 2 held out in more than one report"):
        merge_reports([parts[1], parts[1]])
    with pytest.raises(ValueError, match="not run alike: they differ in epochs"):
        merge_reports([parts[0], {**parts[1], "epochs": 21}])


def test_online_scoring_takes_each_window_inside_one_trial_with_that_trial_s_label(rng):
    # 999-sample trials: the window ending at sample 1000 holds the next trial's first sample, so it is not scored.
    trials = list(synthetic_trials("seed62", ["P9"], [1], trials=4, trial_seconds=4.995, seed=3, blinks=False,
                                   muscle=False))
    trials[2] = dataclasses.replace(trials[2], label=-1)  # a trial with no label is streamed but not scored
    bundle = default_bundle_for(trials[0].info)
    scored = replay_session(bundle, trials, window=1.0, hop=0.5, state_dir=None)
    # Reference: the live path's labels for the session in one chunk, scored by hand.
    data = np.concatenate([t.data for t in trials])
    keep = Keep()
    Pipeline(trials[0].info, bundle, "P9", "1", 1.0, 0.5, sinks=[keep]).process(
        Chunk(data, (np.arange(len(data)) + 1) / 200.0))
    ends = np.cumsum([len(t.data) for t in trials])  # one past each trial's last sample
    expected = []
    for p in keep.predictions:
        first, last = np.searchsorted(ends, [p.window_index - 200, p.window_index - 1], side="right")
        if first == last and trials[last].label >= 0:
            expected.append((p.window_index / 200.0, bundle.class_names.index(p.label), trials[last].label))
    assert scored == expected
    # 999-sample trials, 200-sample windows at a 100-sample hop: 8 inside each of the 3 labelled trials
    # (a window is inside trial k when its first and last samples are; by hand: ends 200..900, 1200..1900, ...).
    assert len(expected) == 24 and {y for *_, y in expected} == {t.label for t in trials} - {-1}
    assert [round(t * 200) for t, *_ in expected][:9] == [200, 300, 400, 500, 600, 700, 800, 900, 1200]
    # A session of one trial is scored the same way.
    assert replay_session(bundle, trials[:1], window=1.0, hop=0.5, state_dir=None) == expected[:8]


def test_online_replay_keeps_each_session_s_statistics_under_its_stratum(tmp_path):
    """Sessions replay as their own strata, saved under (participant, session): a later session's warm-up
    prior comes from the participant's earlier ones, as live."""
    trials = list(synthetic_trials("seed62", ["P9"], [1, 2], trials=2, trial_seconds=3, seed=3))
    bundle = default_bundle_for(trials[0].info)
    for session in ("1", "2"):
        replay_session(bundle, [t for t in trials if t.session == session], 1.0, 0.5, tmp_path)
    saved = sorted(p.name for p in tmp_path.glob(f"{bundle.signature}/*.json"))
    assert saved == ["P9__1.json", "P9__2.json"], saved


def test_kfold_keeps_trials_whole(monkeypatch, capsys):
    full = build_features(_trials(["1", "2"]), 12, LAYOUTS["seed62"].classes, "de", 1.0, 1.0, quiet=True)
    # Trials of 1..8 windows, so the folds' sizes show which trials they hold.
    keys = list(zip(full.participant, full.session, full.trial))
    first = {k: keys.index(k) for k in dict.fromkeys(keys)}
    fset = full.take(np.array([i - first[k] <= j % 8 for i, k in enumerate(keys)
                               for j in [list(first).index(k)]]))
    masks = dict(folds(fset, "kfold", 3, seed=0))
    assert len(masks) == 3
    assert np.array_equal(sum(m.astype(int) for m in masks.values()), np.ones(len(fset.y), int))  # each window once
    trial_keys = [f"{p}/{s}/{t}" for p, s, t in zip(fset.participant, fset.session, fset.trial)]
    for test in masks.values():
        for key in set(trial_keys):
            inside = test[[k == key for k in trial_keys]]
            assert inside.all() or not inside.any(), f"trial {key} is split across folds"
    monkeypatch.setenv("BCI_STREAM_PROGRESS", "json")
    capsys.readouterr()
    r = evaluate(fset, TrainSettings(epochs=20), "kfold", k=3, dataset="synthetic")
    assert [f["n_windows"] for f in r["folds"]] == [int(m.sum()) for m in masks.values()]  # folds(seed=0), seeded
    progress = _progress(capsys.readouterr().err)
    assert {p["task"] for p in progress} == {"kfold stratified"}  # k steps; the folds' training stays quiet
    assert (progress[-1]["n"], progress[-1]["total"]) == (3, 3)
    assert re.fullmatch(r"fold3: [01]\.\d{3}", progress[-1]["note"]), progress[-1]
    with pytest.raises(ValueError, match="^kfold needs the number of folds$"):
        evaluate(fset, TrainSettings(epochs=1, quiet=True), "kfold", dataset="synthetic")
    for bad in (dict(protocol="kfold", online=True, session_trials=_trials), dict(protocol="loso", online=True)):
        with pytest.raises(ValueError, match=r"^--online replays held-out participants' sessions: it needs "
                                             r"--protocol loso and the raw data$"):
            evaluate(fset, TrainSettings(epochs=1, quiet=True), dataset="synthetic", k=3, **bad)


def test_sessions_replay_in_natural_order():
    from bci_stream.evaluation import by_session

    trials = list(synthetic_trials("deap32", ["1"], ["10", "2", "1"], trials=2, trial_seconds=1))
    assert [[(t.session, t.trial) for t in s] for s in by_session(trials)] == [
        [("1", 1), ("1", 2)], [("2", 1), ("2", 2)], [("10", 1), ("10", 2)]]


def test_evaluate_command_writes_report_and_plots(tmp_path):
    res = cli_run("--progress", "json", "evaluate", "--dataset", "synthetic", "--participants", "3", "--sessions", "1",
                  "--trials", "3", "--trial-seconds", "6", "--epochs", "10", "--online",
                  "--report", tmp_path / "r.json", "--plots", tmp_path / "plots", timeout=300)
    assert res.returncode == 0, res.stderr
    # Progress: one step per fold with its accuracies; the folds' own training stays quiet.
    progress = [json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")]
    folds = [p for p in progress if p["task"] != "features"]
    assert {p["task"] for p in folds} == {"loso stratified"} and folds[-1]["n"] == folds[-1]["total"] == 3
    assert folds[-1]["done"] and re.fullmatch(r"3: [01]\.\d{3} online [01]\.\d{3}", folds[-1]["note"])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["protocol"] == "loso" and len(report["folds"]) == 3 and "online_mean_accuracy" in report
    assert report["live_pass"] is False  # off by default
    assert "mean ± std" in res.stdout
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == ["accuracy_per_participant.png", "confusion_stratified.png", "online_accuracy_over_time.png"]
    assert all((tmp_path / "plots" / p).stat().st_size > 5000 for p in pngs)


def test_evaluate_held_out_in_parts_and_merge_reports_give_the_whole_run(tmp_path, capsys):
    """What a lab does with a LOSO run too long for one sitting: ``evaluate --held-out`` in parts, then
    ``merge-reports``; the joined report is the one-run report, and the table printed is its table."""
    common = ["evaluate", "--dataset", "synthetic", "--participants", "3", "--sessions", "1", "--trials", "3",
              "--trial-seconds", "6", "--epochs", "10", "-q"]
    printed = {}
    for name, extra in (("whole", []), ("a", ["--held-out", "3,1"]), ("b", ["--held-out", "2"])):
        res = cli_run(*common, *extra, "--report", tmp_path / f"{name}.json", timeout=300)
        assert res.returncode == 0, res.stderr
        printed[name] = res.stdout
    part = json.loads((tmp_path / "a.json").read_text())
    assert [f["participant"] for f in part["folds"]] == ["1", "3"]
    res = cli_run("merge-reports", tmp_path / "a.json", tmp_path / "b.json", "--report", tmp_path / "m.json")
    assert res.returncode == 0, res.stderr
    merged, whole = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("m", "whole"))
    assert merged == whole
    assert res.stdout == printed["whole"] and len(res.stdout.splitlines()) == 5  # head, 3 people, mean
    # user mistakes: one line each, naming the option or file
    for argv, said in (([*common, "--held-out", "4"], "--held-out: no fold named 4; the folds are 1, 2, 3"),
                       ([*common, "--held-out", "1", "--protocol", "kfold"], "--held-out names participants"),
                       (["merge-reports", str(tmp_path / "a.json"), str(tmp_path / "a.json")],
                        "participant(s) 1, 3 held out in more than one report"),
                       (["merge-reports", str(tmp_path / "none.json")], f"{tmp_path / 'none.json'}: expected a JSON "
                                                                          f"report written by --report")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err


def test_evaluate_runs_unchanged_on_seed_and_deap_folders(tmp_path):
    """The protocol of the accuracy benchmark, on folders in SEED's and DEAP's published layouts."""
    from bci_stream.datasets.synthetic import write_seed_folder
    from test_datasets import write_deap

    seed_dir = write_seed_folder(tmp_path / "SEED" / "Preprocessed_EEG", participants=3, sessions=1, trial_seconds=3)
    res = cli_run("evaluate", seed_dir, "--dataset", "seed", "--features", "multitaper", "--classes",
                  "negative,positive", "--epochs", "5", "--online", "--report", tmp_path / "seed.json", "-q",
                  timeout=300)
    assert res.returncode == 0, res.stderr
    r = json.loads((tmp_path / "seed.json").read_text())
    assert (r["dataset"], r["features"], r["classes"]) == ("seed", "multitaper", ["negative", "positive"])
    assert [f["participant"] for f in r["folds"]] == ["1", "2", "3"] and "online_mean_accuracy" in r

    rng = np.random.default_rng(0)
    deap_dir = tmp_path / "DEAP" / "data_preprocessed_python"
    for p in (1, 2, 3):
        write_deap(deap_dir, p, [[7, 2, 5, 5], [3, 8, 5, 5], [8, 7, 5, 5], [2, 3, 5, 5]], rng, n_samples=128 * 7)
    res = cli_run("evaluate", deap_dir, "--dataset", "deap", "--target", "arousal", "--threshold", "4.5",
                  "--epochs", "5", "--online", "--report", tmp_path / "deap.json", "-q", timeout=300)
    assert res.returncode == 0, res.stderr
    r = json.loads((tmp_path / "deap.json").read_text())
    assert r["dataset"] == "deap" and r["classes"] == ["low-arousal", "high-arousal"]
    assert len(r["folds"]) == 3 and all(f["n_windows"] > 0 for f in r["folds"])

    res = cli_run("evaluate", deap_dir, "--dataset", "deap", "--baseline", "subtract", "--online", "-q")
    assert res.returncode == 2 and "no live counterpart" in res.stderr
    res = cli_run("train", seed_dir, "--dataset", "seed", "--target", "arousal", "-o", tmp_path / "m.pt")
    assert res.returncode == 2 and "--target is an option of dataset deap, not seed" in res.stderr


def test_participants_and_sessions_come_in_natural_order():
    from bci_stream.training import natural_key

    ids = ["10", "2", "1", "P10", "P9", "P07"]
    assert sorted(ids, key=natural_key) == ["1", "2", "10", "P07", "P9", "P10"]


def test_report_table_has_a_row_per_fold_and_the_means():
    def report(norm, acc, online=None):
        folds = [{"participant": p, "accuracy": a} | ({"online_accuracy": o} if online else {})
                 for p, a, o in zip(("1", "10"), acc, online or acc)]
        r = {"norm": norm, "folds": folds, "mean_accuracy": float(np.mean(acc)), "std_accuracy": float(np.std(acc))}
        return r | ({"online_mean_accuracy": float(np.mean(online))} if online else {})

    assert format_report([report("batch", [0.5, 0.25])]).splitlines()[1] == "1".ljust(12) + "0.500".rjust(20)
    text = format_report([report("stratified", [0.9, 0.7], [0.8, 0.6]), report("batch", [0.5, 0.25])])
    assert text.splitlines() == [
        "participant " + "stratified offline".rjust(20) + "online".rjust(10) + "batch offline".rjust(20),
        "1".ljust(12) + "0.900".rjust(20) + "0.800".rjust(10) + "0.500".rjust(20),
        "10".ljust(12) + "0.700".rjust(20) + "0.600".rjust(10) + "0.250".rjust(20),
        "mean ± std".ljust(12) + "0.800".rjust(13) + " ± 0.100" + "0.700".rjust(10) + "0.375".rjust(13) + " ± 0.125",
    ]


def test_folds_come_in_natural_order_and_k_fold_follows_its_seed():
    fset = build_features(_trials(["2", "10", "1"]), 18, LAYOUTS["seed62"].classes, "de", 1.0, 2.0, quiet=True)
    assert [name for name, _ in folds(fset, "loso", 5, seed=0)] == ["1", "2", "10"]
    a, b, c = (dict(folds(fset, "kfold", 3, seed=s)) for s in (4, 4, 5))
    assert list(a) == ["fold1", "fold2", "fold3"]
    assert all(np.array_equal(a[f], b[f]) for f in a) and not all(np.array_equal(a[f], c[f]) for f in a)
    with pytest.raises(ValueError, match=r"^unknown protocol 'leave-one-out'; use loso or kfold$"):
        list(folds(fset, "leave-one-out", 3, seed=0))
    with pytest.raises(ValueError, match=r"^kfold needs the trial of every window; these features carry none$"):
        list(folds(dataclasses.replace(fset, trial=None), "kfold", 3, seed=0))


def test_k_fold_keeps_apart_trials_whose_names_join_alike():
    """Before: kfold joined the names with "/", so trial 1 of participant "a/b", session "c" and trial 1 of
    participant "a", session "b/c" were one trial, always in one fold."""
    fset = build_features(_trials(["1"]), 6, LAYOUTS["seed62"].classes, "de", 1.0, 2.0, quiet=True)
    half = len(fset.y) // 2
    two = dataclasses.replace(fset, participant=np.array(["a/b"] * half + ["a"] * (len(fset.y) - half)),
                              session=np.array(["c"] * half + ["b/c"] * (len(fset.y) - half)),
                              trial=np.ones(len(fset.y), int))
    masks = list(dict(folds(two, "kfold", 2, seed=0)).values())  # two trials, two folds: one each
    assert sorted(int(m.sum()) for m in masks) == sorted([half, len(fset.y) - half])


def test_accuracy_curve_bins_scored_windows_by_time_since_session_start(monkeypatch):
    monkeypatch.setattr("bci_stream.evaluation.CURVE_BIN", 10.0)
    # (seconds since session start of a label, predicted, true), out of order. A label at t is decoded from data up
    # to t, so by hand: bin 0 holds t 0.5, 9.9, 10.0 (2 of 3 right), bin 1 t 12, 19.99, 20.0 (3 of 3), bin 3 t 35
    # (0 of 1); no window falls in bin 2.
    scored = [(12.0, 1, 1), (0.5, 2, 2), (35.0, 0, 1), (10.0, 0, 0), (9.9, 1, 0), (19.99, 2, 2), (20.0, 1, 1)]
    assert accuracy_curve(scored) == [{"t_start": 0.0, "accuracy": 2 / 3, "n_correct": 2, "n_windows": 3},
                                      {"t_start": 10.0, "accuracy": 1.0, "n_correct": 3, "n_windows": 3},
                                      {"t_start": 30.0, "accuracy": 0.0, "n_correct": 0, "n_windows": 1}]
    assert accuracy_curve([]) == []


def test_replay_participant_splits_the_first_session_from_the_later_ones(tmp_path):
    """Sessions replay in natural order, each later one from the earlier ones' saved statistics; the first is
    a new person's, the others a returning person's."""
    trials = list(synthetic_trials("seed62", ["P9"], ["10", "2", "1"], trials=2, trial_seconds=3, seed=4,
                                   blinks=False, muscle=False))
    bundle = default_bundle_for(trials[0].info)
    first, later = replay_participant(bundle, trials, 1.0, 0.5)
    # Reference: the sessions replayed one by one with one state folder, in the order 1, 2, 10.
    expected = [replay_session(bundle, [t for t in trials if t.session == s], 1.0, 0.5, tmp_path)
                for s in ("1", "2", "10")]
    assert first == expected[0] and later == expected[1] + expected[2]
    assert len(first) == len(expected[1]) == len(expected[2]) == 2 * 5  # 3-s trials, 1-s windows at a 0.5-s hop
    # Session 2 started from session 1's statistics: alone, from the population prior, it is labelled otherwise.
    alone = replay_session(bundle, [t for t in trials if t.session == "2"], 1.0, 0.5, tmp_path / "empty")
    assert alone != expected[1]


def test_online_curves_keep_a_new_person_s_first_session_apart_from_returning_sessions(monkeypatch):
    monkeypatch.setattr("bci_stream.evaluation.CURVE_BIN", 10.0)
    fset = build_features(_trials(["1", "2", "3"]), 18, LAYOUTS["seed62"].classes, "de", 1.0, 1.0, quiet=True)
    # Live, the second session is a trial shorter (16 s) than the first (24 s), so the two curves differ in shape.
    r = evaluate(fset, TrainSettings(epochs=5, quiet=True), "loso", online=True, dataset="synthetic",
                 session_trials=lambda p: [t for t in _trials([p]) if (t.session, t.trial) != ("2", 3)])
    # 8-s trials, 1-s windows at 1-s hop: every window ending at 1..24 s (16 s) lies inside one trial.
    # By 10-s bin (a, a + 10] of its end time, per person: first session 10, 10, 4 windows; the second 10, 6.
    assert [f["online_windows"] for f in r["folds"]] == [24 + 16] * 3
    first, returning, both = r["online_curve_first"], r["online_curve_returning"], r["online_curve"]
    assert [(c["t_start"], c["n_windows"]) for c in first] == [(0.0, 30), (10.0, 30), (20.0, 12)]
    assert [(c["t_start"], c["n_windows"]) for c in returning] == [(0.0, 30), (10.0, 18)]
    # The pooled curve is the two together, bin by bin, and all of them count each fold's correct windows once.
    assert [(c["t_start"], c["n_windows"]) for c in both] == [(0.0, 60), (10.0, 48), (20.0, 12)]
    for b in both:
        parts = [c for c in first + returning if c["t_start"] == b["t_start"]]
        assert b["accuracy"] * b["n_windows"] == pytest.approx(sum(c["accuracy"] * c["n_windows"] for c in parts))
    correct = sum(f["online_accuracy"] * f["online_windows"] for f in r["folds"])
    assert sum(c["accuracy"] * c["n_windows"] for c in first + returning) == pytest.approx(correct)
    lines = format_report([r]).splitlines()
    assert lines[-3:] == [
        "online accuracy by time since session start: bin start, accuracy (windows)",
        "  stratified, first session " + "  ".join(f"{c['t_start']:g} s {c['accuracy']:.3f} ({c['n_windows']})"
                                                       for c in first),
        "  stratified, returning     " + "  ".join(f"{c['t_start']:g} s {c['accuracy']:.3f} ({c['n_windows']})"
                                                       for c in returning),
    ]


def test_report_table_prints_the_online_curves_after_the_means():
    def report(norm, first, returning):
        folds = [{"participant": "1", "accuracy": 0.5, "online_accuracy": 0.25}]
        return {"norm": norm, "folds": folds, "mean_accuracy": 0.5, "std_accuracy": 0.0, "online_mean_accuracy": 0.25,
                "online_curve_first": first, "online_curve_returning": returning}

    first = [{"t_start": 0.0, "accuracy": 0.6, "n_windows": 120}, {"t_start": 30.0, "accuracy": 0.8125, "n_windows": 7}]
    text = format_report([report("stratified", first, []), report("batch", first[:1], first[1:])])
    assert text.splitlines()[3:] == [
        "online accuracy by time since session start: bin start, accuracy (windows)",
        "  stratified, first session 0 s 0.600 (120)  30 s 0.812 (7)",
        "  stratified, returning     no such sessions",
        "  batch, first session      0 s 0.600 (120)",
        "  batch, returning          30 s 0.812 (7)",
    ]
