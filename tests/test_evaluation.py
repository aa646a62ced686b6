import json

import numpy as np

from bci_stream.batch import build_features
from bci_stream.devices.synthetic import LAYOUTS, synthetic_trials
from bci_stream.evaluation import evaluate
from conftest import cli_run


def _trials(participants):
    return synthetic_trials("seed62", participants, (1, 2), trials=3, trial_seconds=8, blinks=False, muscle=False)


def test_loso_offline_and_online_report(tmp_path):
    fs = build_features(_trials(["1", "2", "3"]), 18, LAYOUTS["seed62"].classes, "de", 1.0, 1.0, quiet=True)
    reports = {norm: evaluate(fs, norm, "loso", epochs=40, online=True, session_trials=lambda p: _trials([p]),
                              dataset="synthetic", quiet=True) for norm in ("none", "stratified")}
    r = reports["stratified"]
    for key in ("dataset", "features", "norm", "protocol", "classes", "folds", "mean_accuracy", "std_accuracy",
                "online_mean_accuracy", "online_curve", "confusion"):
        assert key in r
    assert [f["participant"] for f in r["folds"]] == ["1", "2", "3"]
    assert sum(f["n_windows"] for f in r["folds"]) == len(fs.y) == np.asarray(r["confusion"]).sum()
    # 8-s trials, 1-s windows at 1-s hop: 8 windows inside each of 6 trials per participant.
    assert all(f["online_windows"] == 6 * 8 for f in r["folds"])
    assert r["mean_accuracy"] > reports["none"]["mean_accuracy"] + 0.15
    assert 0 <= r["online_mean_accuracy"] <= 1


def test_kfold_keeps_trials_whole():
    fs = build_features(_trials(["1", "2"]), 12, LAYOUTS["seed62"].classes, "de", 1.0, 1.0, quiet=True)
    r = evaluate(fs, "stratified", "kfold", epochs=20, k=3, quiet=True)
    assert len(r["folds"]) == 3 and sum(f["n_windows"] for f in r["folds"]) == len(fs.y)


def test_evaluate_command_writes_report_and_plots(tmp_path):
    res = cli_run("evaluate", "--dataset", "synthetic", "--participants", "3", "--sessions", "1", "--trials", "3",
                  "--trial-seconds", "6", "--epochs", "10", "--online", "--report", tmp_path / "r.json",
                  "--plots", tmp_path / "plots", "-q", timeout=300)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["protocol"] == "loso" and len(report["folds"]) == 3 and "online_mean_accuracy" in report
    assert "mean ± std" in res.stdout
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == ["accuracy_per_participant.png", "confusion_stratified.png", "online_accuracy_over_time.png"]
    assert all((tmp_path / "plots" / p).stat().st_size > 5000 for p in pngs)
