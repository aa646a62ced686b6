"""DEAP's preprocessed Python files (``data_preprocessed_python/sNN.dat``) as labelled trials.

Each file is a Python-2 pickle of a dict: ``data`` trials x 40 channels x samples
at 128 Hz (the published files: 40 x 40 x 8064, starting with a 3-s pre-trial
baseline), ``labels`` trials x 4 ratings (valence, arousal, dominance, liking,
1-9). The first 32 channels are EEG in the Geneva order, in microvolts; the other
8 are peripheral signals and are not EEG. Pickles run code when loaded: open only
DEAP files you trust.
"""

from __future__ import annotations

import functools
import pickle
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from bci_stream.dataset import Dataset, DatasetOption
from bci_stream.montages import DEAP32
from bci_stream.stream import StreamInfo, Trial

SRATE = 128.0
BASELINE_SECONDS = 3.0
FILE_CHANNELS = 40
SUBFOLDER = "data_preprocessed_python"
_NAME = re.compile(r"s(\d+)\.dat")

#: Class names per target; ``valence-arousal`` matches the synthetic ``deap32`` layout and its bundled model.
CLASSES = {
    "valence": ("low-valence", "high-valence"),
    "arousal": ("low-arousal", "high-arousal"),
    "valence-arousal": ("low-valence/low-arousal", "low-valence/high-arousal",
                        "high-valence/low-arousal", "high-valence/high-arousal"),
}
_EXPECTED = "a Python-2 pickle of a dict with 'data' (trials x 40 x samples, 128 Hz) and 'labels' (trials x 4)"


def participant_files(folder) -> list[tuple[str, Path]]:
    """``(participant, path)`` of every ``sNN.dat``, by number; ``folder`` may be the dataset root."""
    folder = Path(folder)
    if not (folder / "s01.dat").exists() and (folder / SUBFOLDER).is_dir():
        folder = folder / SUBFOLDER
    if not folder.is_dir():
        raise FileNotFoundError(f"DEAP folder {folder}: no such directory")
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.fullmatch(p.name)))
    if not found:
        raise ValueError(f"DEAP folder {folder}: no files named sNN.dat (expected {SUBFOLDER}/s01.dat ...)")
    return [(str(n), p) for n, p in found]


def load(path) -> tuple[np.ndarray, np.ndarray]:
    """``(data [trials, 40, samples], labels [trials, 4])`` of one file, checked against DEAP's layout."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="latin1")
    except FileNotFoundError:
        raise
    except Exception as e:  # unpickling a damaged file raises many types
        raise ValueError(f"DEAP file {path}: cannot be unpickled ({e.__class__.__name__}: {e}); expected {_EXPECTED}") from None
    if not isinstance(obj, dict) or not {"data", "labels"} <= set(obj):
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"DEAP file {path}: got {got}; expected {_EXPECTED}")
    data, labels = np.asarray(obj["data"]), np.asarray(obj["labels"])
    baseline = round(BASELINE_SECONDS * SRATE)
    if data.ndim != 3 or data.shape[1] != FILE_CHANNELS or data.shape[2] <= baseline:
        raise ValueError(f"DEAP file {path}: 'data' has shape {data.shape}; expected trials x {FILE_CHANNELS} x "
                         f"more than {baseline} samples (8064 in the published files)")
    if labels.shape != (data.shape[0], 4):
        raise ValueError(f"DEAP file {path}: 'labels' has shape {labels.shape}; expected {data.shape[0]} x 4 "
                         "(one valence, arousal, dominance, liking rating per trial)")
    if not np.isfinite(labels).all():
        raise ValueError(f"DEAP file {path}: 'labels' holds non-finite ratings")
    return data, labels


def label_of(ratings: np.ndarray, target: str, threshold: float) -> int:
    """High means a rating above ``threshold``; ``valence-arousal`` numbers the quadrants as CLASSES does."""
    high = ratings[:2] > threshold
    return {"valence": int(high[0]), "arousal": int(high[1]), "valence-arousal": int(2 * high[0] + high[1])}[target]


def read_participant(path, target: str = "valence", threshold: float = 5.0, baseline: str = "drop") -> list[Trial]:
    """One participant's trials, EEG only, float32 microvolts.

    ``baseline="keep"`` leaves the 3-s pre-trial baseline at the start of each
    trial and says how long it is in ``info.extra["baseline_samples"]``, for
    callers that subtract baseline features (``bci-stream features --baseline subtract``).
    ``DeapDataset`` checks the options.
    """
    path = Path(path)
    m = _NAME.fullmatch(path.name)
    participant = str(int(m.group(1))) if m else path.stem
    data, labels = load(path)
    skip = round(BASELINE_SECONDS * SRATE) if baseline == "drop" else 0
    info = StreamInfo("DEAP", DEAP32, SRATE, "microvolts", source_id=f"deap:s{participant.zfill(2)}",
                      device="DEAP (BioSemi ActiveTwo), preprocessed",
                      extra={"file": str(path), "baseline_samples": 0 if skip else round(BASELINE_SECONDS * SRATE)})
    return [Trial(participant, "1", k + 1, label_of(labels[k], target, threshold),
                  np.ascontiguousarray(data[k, : len(DEAP32), skip:].T, dtype=np.float32), info)
            for k in range(len(data))]


class DeapDataset(Dataset):
    """DEAP's data_preprocessed_python: 32 EEG channels at 128 Hz, 40 music-video trials, rated valence and arousal."""

    name = "deap"
    options = (
        DatasetOption("target", str, "which rating gives the true label", tuple(CLASSES), "valence"),
        DatasetOption("threshold", float, "ratings above it are high", None, 5.0),
    )
    has_baseline = True

    def __init__(self, root=None, seed: int = 0, **options):
        super().__init__(root, seed, **options)
        self._entries = participant_files(self.root)

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASSES[self.option_values["target"]]

    def sessions(self) -> list[tuple[str, str]]:
        return [(p, "1") for p, _ in self._entries]

    def _paths(self, participants: list[str]) -> list[Path]:
        return [path for p, path in self._entries if p in participants]

    @functools.cached_property
    def per_file(self) -> int:
        """Trials in every file: as many as the first holds (40 in the published dataset)."""
        return len(load(self._entries[0][1])[1])

    def _trials(self, participants: list[str], baseline: str) -> Iterator[Trial]:
        per_file, first = self.per_file, self._entries[0][1]
        for path in self._paths(participants):
            got = read_participant(path, baseline=baseline, **self.option_values)
            if len(got) != per_file:
                raise ValueError(f"DEAP file {path}: {len(got)} trials, but {first.name} has {per_file}; "
                                 "DEAP files all hold the same number of trials")
            yield from got

    def _n_trials(self, participants: list[str]) -> int:
        return self.per_file * len(self._paths(participants))

    def files(self, participants=None) -> list[Path]:
        return self._paths(self.select(participants))

    @classmethod
    def claims(cls, path: Path) -> bool:
        return _NAME.fullmatch(path.name) is not None

    @classmethod
    def read_file(cls, path: Path, baseline: str = "drop", **options) -> tuple[tuple[str, ...], list[Trial]]:
        options = cls.check_options(options)
        cls.check_baseline(baseline)
        return CLASSES[options["target"]], read_participant(path, baseline=baseline, **options)
