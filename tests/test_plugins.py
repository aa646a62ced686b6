"""A third-party package adds a dataset, a feature and a model through entry points alone, and
``train``, ``evaluate`` and ``run`` use them end to end with no change to bci-stream."""

import json
import os
import subprocess
import textwrap

from conftest import BIN

TOY = '''
import numpy as np
import torch
from torch import nn

from bci_stream.dataset import Dataset, DatasetOption
from bci_stream.feature import FeatureExtractor
from bci_stream.model import Classifier
from bci_stream.stratified import StratifiedNorm
from bci_stream.stream import StreamInfo, Trial

CHANNELS = ("Fz", "Cz", "Pz", "Oz")
SRATE = 200.0


class ToyDataset(Dataset):
    """Two states told apart by 10-Hz power, under each person's own gains."""

    name = "toy"
    needs_root = False
    options = (DatasetOption("people", int, "participants to generate", None, 3),)

    @property
    def class_names(self):
        return ("calm", "alert")

    def sessions(self):
        return [(str(p), str(s)) for p in range(1, self.option_values["people"] + 1) for s in (1, 2)]

    def _trials(self, participants, baseline):
        info = StreamInfo("toy", CHANNELS, SRATE)
        t = np.arange(int(8 * SRATE)) / SRATE
        for p in participants:
            for s in ("1", "2"):
                rng = np.random.default_rng([int(p), int(s), self.seed])
                gain = rng.uniform(0.5, 3.0, len(CHANNELS))
                for k in range(4):
                    label = k % 2
                    alpha = (1.0 + 2.0 * label) * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6))[:, None]
                    x = gain * (rng.normal(size=(len(t), len(CHANNELS))) + alpha)
                    yield Trial(p, s, k + 1, label, x.astype(np.float32), info)

    def _n_trials(self, participants):
        return len(participants) * 2 * 4


logvar = FeatureExtractor("logvar", lambda w, srate: np.log(np.var(w, axis=2) + 1e-12).astype(np.float32),
                          ("logvar",), "log variance of each channel")


class ToyNet(Classifier):
    """Linear -> stratified normalization -> linear: the smallest model that uses the contract."""

    def __init__(self, n_features, n_classes):
        super().__init__()
        self.hidden, self.norm, self.out = nn.Linear(n_features, 8), StratifiedNorm(8), nn.Linear(8, n_classes)

    def forward(self, x, strata=None):
        return self.out(self.norm(torch.relu(self.hidden(x)), strata))
'''

ENTRY_POINTS = '''
[bci_stream.datasets]
toy = toyplug:ToyDataset

[bci_stream.plugins]
features.logvar = toyplug:logvar
models.toynet = toyplug:ToyNet
'''


def _toy_package(root):
    (root / "toyplug.py").write_text(TOY)
    info = root / "toyplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))


def _cli(root, *args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([str(BIN / "bci-stream"), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_toy_dataset_feature_and_model_train_evaluate_and_run(tmp_path, uid):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    _toy_package(pkg)

    help_text = _cli(pkg, "train", "--help").stdout
    assert "toy" in help_text and "--people" in help_text and "logvar" in help_text and "toynet" in help_text

    common = ("--dataset", "toy", "--people", 3, "--features", "logvar", "--model", "toynet", "--epochs", 40,
              "--window", 1.0, "--train-hop", 0.5, "-q")
    res = _cli(pkg, "train", *common, "--hop", 0.5, "-o", tmp_path / "toy.pt")
    assert res.returncode == 0, res.stderr
    res = _cli(pkg, "evaluate", *common, "--protocol", "loso", "--online", "--report", tmp_path / "r.json")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["classes"] == ["calm", "alert"] and len(report["folds"]) == 3
    assert report["mean_accuracy"] > 0.8  # 10-Hz power separates the states once each person is normalized
    assert report["online_mean_accuracy"] > 0.6

    # Live: the synthetic headset carries the toy model's four channels at its rate.
    res = _cli(pkg, "run", "--source", "synthetic:seed62?realtime=0", "--model", tmp_path / "toy.pt",
               "--duration", 10, "--no-state", "--name", uid, "-q", "--log", tmp_path / "p.jsonl")
    assert res.returncode == 0, res.stderr
    labels = [json.loads(line)["label"] for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(labels) >= 15 and set(labels) <= {"calm", "alert"}
