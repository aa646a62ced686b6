"""`evaluate --online` scores held-out sessions through `replay_session`; that is only worth reporting if it is what
the live path (`bci-stream replay` + `bci-stream run`) would have done with the same recording, window for window."""

import json
import time

import numpy as np
import pytest
import torch

from bci_stream import evaluation
from bci_stream.batch import build_features
from bci_stream.datasets.seed import CLASSES, SeedDataset
from bci_stream.datasets.synthetic import write_seed_folder
from bci_stream.training import TrainSettings, train_bundle
from conftest import Keep, cli, stop

SRATE, WINDOW, HOP = 200, 1.0, 0.5  # SEED's rate; evaluate replays at the hop it trained at


def _live_predictions(log, until_sample: int, run, wait: float = 60.0) -> list[dict]:
    """The run's JSON-lines log, polled: on an LSL source ``run`` never ends by itself, so it is stopped once the
    session's last window is logged (or once it ended or ``wait`` s passed: what it logged is for the assertions)."""
    deadline = time.monotonic() + wait
    while True:
        lines = log.read_text().split("\n")[:-1] if log.exists() else []  # complete lines only: it may be writing
        rows = [json.loads(line) for line in lines]
        if any(r["sample"] == until_sample for r in rows) or run.poll() is not None or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.fixture
def one_thread():
    """torch on one thread here too, as ``run`` decodes; two threads also crawl on a busy two-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_evaluate_online_equals_replay_and_run_window_for_window(tmp_path, uid, one_thread):
    # 3 participants x 1 session of 15 3-s trials (45 s each), with noise storms so some windows are artifacts.
    folder = write_seed_folder(tmp_path / "SEED", participants=3, sessions=1, trial_seconds=3, storms=1.0)
    model, log = tmp_path / "model.pt", tmp_path / "live.jsonl"
    # The run starts first, so that its start-up (importing torch) overlaps the training: it reads the model only
    # once the replay's stream has appeared, and the replay starts only after the model is saved.
    run = cli("run", "--source", f"lsl:name={uid}?timeout=120", "--model", model, "--participant", "3",
              "--session", "1", "--state-dir", tmp_path / "live-state", "--name", f"{uid}-out", "--log", log, "-q")
    replay = None
    try:
        dataset = SeedDataset(folder)
        fset = build_features(dataset.trials(["1", "2"]), 30, CLASSES, "de", WINDOW, HOP, quiet=True)
        # As evaluate trains each fold: on the other participants, nothing held out, at the hop it replays at.
        # With the population model (opt-in), so the labels compared pool it in, as a new person's then do.
        bundle = train_bundle(fset, "seed", TrainSettings(epochs=5, live_pass=False, population=True, quiet=True),
                              holdout=0, hop=HOP)
        assert bundle.population
        bundle.save(model)
        held = list(dataset.trials(["3"]))
        assert {(t.participant, t.session) for t in held} == {("3", "1")}
        replay = cli("replay", folder / "3_20260101.mat", "--speed", 40, "--name", uid, "--wait", 60)

        # Reference, while the live path runs: evaluate --online's own replay of the session, every prediction kept.
        keep = Keep()
        scored = evaluation.replay_session(bundle, held, WINDOW, HOP, tmp_path / "online-state", sinks=[keep])
        reference = keep.predictions

        assert replay.wait(timeout=120) == 0, replay.stderr.read()
        live = _live_predictions(log, reference[-1].window_index, run)
    finally:
        stop(run, *([replay] if replay else []))
    err = run.stderr.read()
    assert run.returncode == 0, err
    # Only the live path checks channel quality (a hook that may swap channels for interpolated ones): it must not
    # have acted here, or the two paths would not have decoded the same inputs.
    assert "bad channel" not in err and "decoding halted" not in err, err

    # Every window of the 9000-sample session, by the sample one past its end: 200-sample windows every 100 samples.
    n = sum(len(t.data) for t in held)
    windows = list(range(round(WINDOW * SRATE), n + 1, round(HOP * SRATE)))
    assert [p.window_index for p in reference] == windows
    assert [r["sample"] for r in live] == windows
    assert [r["label"] for r in live] == [p.label for p in reference]
    assert [r["artifact"] for r in live] == [p.artifact for p in reference]
    # what a label says of its stratum does not depend on how the stream was cut into chunks either
    assert [r["warming_up"] for r in live] == [p.warming_up for p in reference]
    assert True in [p.warming_up for p in reference] and False in [p.warming_up for p in reference]
    classified = [i for i, p in enumerate(reference) if p.artifact is None]
    assert 20 < len(classified) < len(windows)  # artifact windows are compared too
    assert all(live[i]["probabilities"] is None for i in range(len(live)) if i not in classified)
    np.testing.assert_allclose([[live[i]["probabilities"][c] for c in CLASSES] for i in classified],
                               [reference[i].probabilities for i in classified], rtol=0, atol=1e-5)

    # What evaluate --online scores is the live labels of the clean windows inside one trial, with that trial's label.
    ends = np.cumsum([len(t.data) for t in held])  # one past each trial's last sample
    expected = []
    for r in live:
        first, last = np.searchsorted(ends, [r["sample"] - WINDOW * SRATE, r["sample"] - 1], side="right")
        if first == last and r["artifact"] is None:
            expected.append((r["sample"] / SRATE, CLASSES.index(r["label"]), held[last].label))
    assert scored == expected and len(expected) > 20
