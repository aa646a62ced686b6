"""SEED's preprocessed EEG (``Preprocessed_EEG/``) as labelled trials.

One file per session, ``<subject>_<YYYYMMDD>.mat``, holding ``<initials>_eeg1`` ...
``<initials>_eeg15``: 62 x T arrays at 200 Hz in microvolts, channels in SEED's
order. ``label.mat`` holds ``label``: one value per trial in {-1, 0, 1}, the same
film order for every session. A subject's sessions are numbered by date. Other
files in the folder are not SEED data and are left alone.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import numpy as np
import scipy.io

from bci_stream.dataset import Dataset
from bci_stream.montages import SEED62
from bci_stream.stream import StreamInfo, Trial

SRATE = 200.0
CLASSES = ("negative", "neutral", "positive")
SUBFOLDER = "Preprocessed_EEG"
_NAME = re.compile(r"(\d+)_(\d{8})\.mat")
_VAR = re.compile(r"(.+)_eeg(\d+)")


def session_files(folder) -> list[tuple[str, str, Path]]:
    """``(participant, session, path)`` of every session file, by subject then date; ``folder`` may be the root."""
    folder = Path(folder)
    if not (folder / "label.mat").exists() and (folder / SUBFOLDER).is_dir():
        folder = folder / SUBFOLDER
    if not folder.is_dir():
        raise FileNotFoundError(f"SEED folder {folder}: no such directory")
    by_subject = defaultdict(list)
    for p in folder.iterdir():
        if m := _NAME.fullmatch(p.name):
            by_subject[int(m.group(1))].append((m.group(2), p))
    if not by_subject:
        raise ValueError(f"SEED folder {folder}: no files named <subject>_<YYYYMMDD>.mat (expected {SUBFOLDER}/1_20131027.mat ...)")
    return [(str(s), str(k + 1), p) for s in sorted(by_subject) for k, (_, p) in enumerate(sorted(by_subject[s]))]


def load_labels(path) -> np.ndarray:
    """Class indices (0 negative, 1 neutral, 2 positive) from ``label.mat``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SEED labels {path}: no such file (every SEED folder has label.mat)")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for foreign files
        raise ValueError(f"SEED labels {path}: not a readable .mat file ({e.__class__.__name__}: {e})") from None
    if "label" not in mat:
        raise ValueError(f"SEED labels {path}: no variable 'label'; has {sorted(k for k in mat if not k.startswith('__'))}")
    values = np.asarray(mat["label"]).ravel()
    if not len(values) or not np.isin(values, (-1, 0, 1)).all():
        raise ValueError(f"SEED labels {path}: 'label' must be values in {{-1, 0, 1}}, got {values.tolist()}")
    return values.astype(np.int64) + 1


def read_session(path, labels: np.ndarray, participant: str, session: str) -> list[Trial]:
    """One session's trials, float32 microvolts; the file must hold exactly one ``_eegN`` per label."""
    path = Path(path)
    try:
        listing = scipy.io.whosmat(path)
    except Exception as e:  # includes MATLAB v7.3 (HDF5) files, which SEED never used
        raise ValueError(f"SEED file {path}: not a readable MATLAB v5 .mat file ({e.__class__.__name__}: {e})") from None
    trials = {}
    for name, shape, _ in listing:
        if m := _VAR.fullmatch(name):
            trials.setdefault(int(m.group(2)), []).append((name, shape))
    if not trials:
        raise ValueError(f"SEED file {path}: no <initials>_eegN variables (expected {len(labels)}, e.g. djc_eeg1); "
                         f"has {[n for n, *_ in listing]}")
    doubled = {k: [n for n, _ in v] for k, v in trials.items() if len(v) > 1}
    if doubled:
        raise ValueError(f"SEED file {path}: several variables for one trial: {doubled}")
    if sorted(trials) != list(range(1, len(labels) + 1)):
        raise ValueError(f"SEED file {path}: trials numbered {sorted(trials)}, but label.mat has {len(labels)} labels; "
                         f"expected _eeg1 ... _eeg{len(labels)}")
    for k, [(name, shape)] in trials.items():
        if len(shape) != 2 or shape[0] != len(SEED62):
            raise ValueError(f"SEED file {path}: {name} has shape {shape}; expected {len(SEED62)} channels x samples")
    names = [trials[k][0][0] for k in range(1, len(labels) + 1)]
    mat = scipy.io.loadmat(path, variable_names=names)
    info = StreamInfo("SEED", SEED62, SRATE, "microvolts", source_id=f"seed:{participant}:{session}",
                      device="SEED (ESI NeuroScan), preprocessed", extra={"file": str(path)})
    return [Trial(participant, session, k + 1, int(labels[k]), np.ascontiguousarray(mat[n].T, dtype=np.float32), info)
            for k, n in enumerate(names)]


def labels_path(folder) -> Path:
    return Path(folder) / "label.mat"


class SeedDataset(Dataset):
    """SEED's Preprocessed_EEG: 62 channels at 200 Hz, 15 film trials per session, negative/neutral/positive."""

    name = "seed"
    class_names = CLASSES

    def __init__(self, root=None, seed: int = 0, **options):
        super().__init__(root, seed, **options)
        self._entries = session_files(self.root)
        self._labels_path = labels_path(self._entries[0][2].parent)
        self._labels = load_labels(self._labels_path)

    def sessions(self) -> list[tuple[str, str]]:
        return [(p, s) for p, s, _ in self._entries]

    def _of(self, participants: list[str]) -> list[tuple[str, str, Path]]:
        return [e for e in self._entries if e[0] in participants]

    def _trials(self, participants: list[str], baseline: str) -> Iterator[Trial]:
        for participant, session, path in self._of(participants):
            yield from read_session(path, self._labels, participant, session)

    def _n_trials(self, participants: list[str]) -> int:
        return len(self._labels) * len(self._of(participants))

    def files(self, participants=None) -> list[Path]:
        return [e[2] for e in self._of(self.select(participants))] + [self._labels_path]

    @classmethod
    def claims(cls, path: Path) -> bool:
        return _NAME.fullmatch(path.name) is not None

    @classmethod
    def read_file(cls, path: Path, baseline: str = "drop", **options) -> tuple[tuple[str, ...], list[Trial]]:
        """A session numbered among its subject's files beside it, labelled by the ``label.mat`` beside it."""
        cls.check_options(options)
        cls.check_baseline(baseline)
        if not path.is_file():
            raise FileNotFoundError(f"SEED file {path}: no such file")
        participant, session, _ = next(e for e in session_files(path.parent) if e[2].name == path.name)
        return CLASSES, read_session(path, load_labels(labels_path(path.parent)), participant, session)
