import io
import json

import pytest

from bci_stream import progress
from bci_stream.progress import Progress
from conftest import cli_run


@pytest.fixture(autouse=True)
def no_process_mode(monkeypatch):
    monkeypatch.setattr(progress, "_mode", None)
    monkeypatch.delenv(progress.ENV, raising=False)


def test_json_mode_writes_one_object_per_line():
    out = io.StringIO()
    p = Progress(3, "training", stream=out, mode="json")
    for i in range(3):
        p.update(note=f"epoch {i}")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert lines[0]["task"] == "training" and lines[0]["n"] == 1 and lines[0]["total"] == 3
    assert lines[-1]["done"] is True and lines[-1]["note"] == "epoch 2" and lines[-1]["n"] == 3


def test_mode_comes_from_the_process_then_the_environment(monkeypatch):
    monkeypatch.setenv(progress.ENV, "json")
    assert Progress(1, "x").mode == "json"
    progress.set_mode("quiet")
    assert Progress(1, "x").mode == "quiet"
    assert Progress(1, "x", mode="bar").mode == "bar"
    assert Progress(1, "x", quiet=True, mode="json").mode == "quiet"  # a task asked to be quiet stays quiet


def test_quiet_writes_nothing_and_bad_modes_are_named(monkeypatch):
    out = io.StringIO()
    Progress(2, "x", quiet=True, stream=out).update(2)
    assert out.getvalue() == ""
    monkeypatch.setenv(progress.ENV, "loud")
    with pytest.raises(ValueError, match="BCI_STREAM_PROGRESS: expected one of bar, quiet, json, got 'loud'"):
        Progress(1, "x")


def test_train_reports_feature_extraction_and_training_as_json(tmp_path):
    r = cli_run("--progress", "json", "train", "--dataset", "synthetic", "--layout", "deap32", "--participants", "2",
                "--sessions", "1", "--trials", "2", "--trial-seconds", "4", "--epochs", "3", "-o", tmp_path / "m.pt",
                timeout=180)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    tasks = {rec["task"] for rec in records if rec["done"]}
    assert "features" in tasks and "training" in tasks, r.stderr
    assert not any("[####" in line for line in r.stderr.splitlines())
