"""One way into the recorded datasets, for batch features and cross-participant training.

    class_names, trials, n = dataset_trials("seed", "SEED/Preprocessed_EEG")
    class_names, trials, n = dataset_trials("deap", "DEAP", target="arousal", participants=["1", "2"])

Trials come participant by participant, session by session, reading one file at
a time, so a whole dataset never sits in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from bci_stream.devices import deap, seed
from bci_stream.stream import Trial

KINDS = ("seed", "deap")
#: Options each kind takes besides ``participants``.
OPTIONS = {"seed": (), "deap": ("target", "threshold", "baseline")}


def _entries(kind: str, folder, participants: Iterable[str] | None) -> list[tuple]:
    if kind not in KINDS:
        raise ValueError(f"unknown dataset {kind!r}; expected one of {', '.join(KINDS)}")
    entries = seed.session_files(folder) if kind == "seed" else deap.participant_files(folder)
    if participants is None:
        return entries
    wanted = [str(p) for p in participants]
    have = sorted({e[0] for e in entries}, key=int)
    missing = [p for p in wanted if p not in have]
    if missing:
        raise ValueError(f"{kind.upper()} folder {folder}: no participant(s) {missing}; it has {have}")
    return [e for e in entries if e[0] in wanted]


def dataset_trials(kind: str, folder, participants: Iterable[str] | None = None,
                   **opts) -> tuple[tuple[str, ...], Iterator[Trial], int]:
    """``(class_names, trials, n_trials)`` of a dataset folder (the dataset's root or its data folder).

    ``kind`` is ``"seed"`` (``Preprocessed_EEG/``: 3 classes negative/neutral/positive,
    sessions by date) or ``"deap"`` (``data_preprocessed_python/``: one session;
    options ``target`` = ``"valence"`` (default) | ``"arousal"`` | ``"valence-arousal"``,
    ``threshold`` = 5.0 (a rating above it is high), ``baseline`` = ``"drop"``
    (default) | ``"keep"``). ``participants`` picks some by id ("1", "2", ...).
    Every trial's ``label`` indexes ``class_names``; data are float32 microvolts.
    """
    unknown = sorted(set(opts) - set(OPTIONS.get(kind, opts)))  # an unknown kind is reported by _entries
    if unknown:
        raise ValueError(f"dataset {kind!r} takes no option(s) {unknown}; it takes "
                         f"{', '.join(('participants',) + OPTIONS[kind])}")
    entries = _entries(kind, folder, participants)
    if kind == "seed":
        return seed.trials(entries)
    return deap.trials(entries, **opts)


def dataset_files(kind: str, folder, participants: Iterable[str] | None = None) -> list[Path]:
    """Every file ``dataset_trials`` reads for these participants (to key caches on)."""
    entries = _entries(kind, folder, participants)
    paths = [e[-1] for e in entries]
    return paths + [seed.labels_path(paths[0].parent)] if kind == "seed" else paths
