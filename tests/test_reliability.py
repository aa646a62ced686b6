"""How much to trust a label now: the training population's online accuracy by stratum age, measured on held-out
participants when a bundle is trained, and stated live by `bci-stream run` on its status stream and log."""

import dataclasses
import json
import math

import numpy as np
import torch

from bci_stream.batch import build_features
from bci_stream.bundle import default_bundle_for
from bci_stream.control import parse_fields
from bci_stream.datasets.synthetic import synthetic_trials
from bci_stream.devices.synthetic import LAYOUTS
from bci_stream.montages import SEED62
from bci_stream.pipeline import Pipeline
from bci_stream.stream import Chunk, StreamInfo
from bci_stream.training import TrainSettings, train_bundle
from conftest import Keep, cli, stop
from test_cli_live import _inlet


def _trials(participants):
    return list(synthetic_trials("seed62", participants, (1, 2), trials=3, trial_seconds=8, blinks=False,
                                 muscle=False))


def test_training_measures_held_out_people_live_by_stratum_age(monkeypatch, tmp_path):
    monkeypatch.setattr("bci_stream.evaluation.CURVE_BIN", 10.0)
    people = ["1", "2", "3", "4"]
    fset = build_features(_trials(people), 18, LAYOUTS["seed62"].classes, "de", 1.0, 0.5, quiet=True)
    settings = TrainSettings(epochs=5, quiet=True)
    bundle = train_bundle(fset, "t", settings, holdout=0.25, hop=0.5, session_trials=lambda p: _trials([p]))
    rel = bundle.report["reliability"]
    (held,) = bundle.report["heldout_participants"]
    assert (rel["bin_seconds"], rel["hop"], rel["participants"]) == (10.0, 0.5, [held])
    # The replay leaves the model alone: the same weights as trained without it.
    without = train_bundle(fset, "t", settings, holdout=0.25, hop=0.5)
    assert "reliability" not in without.report
    assert all(torch.equal(bundle.state_dict[k], without.state_dict[k]) for k in bundle.state_dict)

    # Reference: the model trained on the other three (as holdout trains it), each held-out session streamed through
    # a Pipeline (session 2 resuming from session 1's saved statistics), scored by hand. 8-s trials, 1-s windows
    # at a 0.5-s hop: the n-th window (from 1) ends at 0.5 + 0.5 n s and leaves a stratum of 0.5 n s.
    others = train_bundle(fset.take(fset.participant != held), "t", settings, holdout=0, hop=0.5)
    expected = {}
    for session in ("1", "2"):
        mine = [t for t in _trials([held]) if t.session == session]
        keep = Keep()
        pipe = Pipeline(mine[0].info, others, held, session, sinks=[keep], state_dir=tmp_path)
        data = np.concatenate([t.data for t in mine])
        pipe.process(Chunk(data, (np.arange(len(data)) + 1) / 200.0))
        pipe.close()
        assert not any(p.artifact for p in keep.predictions)
        truth = np.concatenate([np.full(len(t.data), t.label) for t in mine])
        rows = []
        for n, p in enumerate(keep.predictions, 1):
            w = truth[p.window_index - 200 : p.window_index]
            if (w == w[0]).all():
                rows.append((math.ceil(0.5 * n / 10.0) - 1, others.class_names.index(p.label) == w[0]))
        expected[session] = [{"t_start": b * 10.0, "accuracy": np.mean([ok for bb, ok in rows if bb == b]),
                              "n_windows": sum(bb == b for bb, _ in rows)} for b in sorted({b for b, _ in rows})]
    # By hand: 15 windows inside each trial, of ages 0.5-7.5, 8.5-15.5, 16.5-23.5 s: 19, 19 and 7 per 10-s bin,
    # a bin (start, end] (the label at age 10 s was decoded from the first 10 s).
    assert [c["n_windows"] for c in expected["1"]] == [19, 19, 7]
    for key, session in (("first", "1"), ("returning", "2")):
        assert [(c["t_start"], c["n_windows"]) for c in rel[key]] == [(c["t_start"], c["n_windows"])
                                                                      for c in expected[session]]
        np.testing.assert_allclose([c["accuracy"] for c in rel[key]], [c["accuracy"] for c in expected[session]])



def _lookup(curve, age):
    """By hand: the last bin that starts before ``age`` (a bin holds (start, end]), the first for age 0."""
    return ([c for c in curve if c["t_start"] < age] or curve)[-1]["accuracy"]


def test_bci_stream_run_states_reliability_on_its_status_stream_and_log(uid, tmp_path):
    """A real run over LSL: the status stream's stratum statements and the log carry the curve's value at the
    stratum's age; a returning person's session (with saved statistics of their first) reads the returning curve.
    Runs that name no participant are strangers to each other: the second of two reads a new person's curve."""
    shipped = default_bundle_for(StreamInfo("s", SEED62, 200.0))
    curve = {"bin_seconds": 1.0, "hop": 0.1, "participants": ["x"],
             "first": [{"t_start": 0.0, "accuracy": 0.41, "n_windows": 9}, {"t_start": 3.0, "accuracy": 0.62, "n_windows": 9},
                       {"t_start": 5.0, "accuracy": 0.83, "n_windows": 9}],
             "returning": [{"t_start": 0.0, "accuracy": 0.55, "n_windows": 9}, {"t_start": 3.0, "accuracy": 0.97,
                                                                              "n_windows": 9}]}
    model = dataclasses.replace(shipped, report={**shipped.report, "reliability": curve}).save(tmp_path / "m.pt")
    runs = ((["--participant", "P1", "--session", "1"], "first"),
            (["--participant", "P1", "--session", "2"], "returning"), ([], "first"), ([], "first"))
    for k, (stratum, which) in enumerate(runs):
        prefix, log = f"{uid}{k}", tmp_path / f"{k}.jsonl"
        proc = cli("run", "--source", "synthetic:seed62", "--model", model, "--name", prefix, *stratum,
                   "--state-dir", tmp_path / "state", "--log", log, "--duration", 8, "-q")
        try:
            status = _inlet("name", f"{prefix}-status")
            stated = []
            while (sample := status.pull_sample(timeout=0.5))[0] is not None or proc.poll() is None:
                if sample[0] is not None and (fields := parse_fields(sample[0][0]))["event"] == "stratum":
                    stated.append(fields)
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
        finally:
            stop(proc)
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        clean = [r for r in rows if r["artifact"] is None]
        assert len(clean) > 50
        # Each clean label: one window older than the one before, and the curve's value at that age.
        assert [r["stratum_s"] for r in clean] == [round(0.1 * n, 1) for n in range(1, len(clean) + 1)]
        assert [r["reliability"] for r in clean] == [_lookup(curve[which], r["stratum_s"]) for r in clean]
        assert not any("reliability" in r for r in rows if r["artifact"])
        # The status stream says the same, restating it whenever it changes.
        said = [(float(f["stratum_s"]), float(f["reliability"])) for f in stated if "reliability" in f]
        assert said and all(v == _lookup(curve[which], age) for age, v in said)
        assert {c["accuracy"] for c in curve[which][1:]} <= {v for _, v in said}  # (the first bin may pass unseen)
