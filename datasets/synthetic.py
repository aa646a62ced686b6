"""The synthetic generator as a dataset: participants x sessions x trials, generated, never read.

Also writes a SEED-like dataset in SEED's own file layout (``bci-stream synthesize``),
so the SEED reader and everything after it run on data whose truth is known.
"""

from __future__ import annotations

import functools
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from bci_stream.atomic import atomic_write
from bci_stream.dataset import Dataset, DatasetOption
from bci_stream.devices.synthetic import DIFFICULTY, LAYOUTS, SyntheticEEG
from bci_stream.stream import Trial


def synthetic_trials(layout: str, participants, sessions, trials: int, seed: int = 0, trial_seconds: float = 20.0,
                     **kwargs) -> Iterator[Trial]:
    """A dataset in the making: each session is generated as one continuous stream and cut into its trials."""
    for p in participants:
        for s in sessions:
            gen = SyntheticEEG(layout, participant=p, session=s, seed=seed, trial_seconds=trial_seconds, **kwargs)
            data, classes = gen.generate(trials * gen.trial_len)
            for t in range(trials):
                a = t * gen.trial_len
                yield Trial(str(p), str(s), t + 1, int(classes[a]), data[a : a + gen.trial_len], gen.info)


class SyntheticDataset(Dataset):
    """bci-stream's own generator: any layout, any size, with known truth; generated again on every use."""

    name = "synthetic"
    options = (
        DatasetOption("layout", str, "channel layout and classes of the generated EEG", tuple(LAYOUTS), "seed62"),
        DatasetOption("participants", int, "participants to generate", None, 10),
        DatasetOption("sessions", int, "sessions per participant", None, 2),
        DatasetOption("trials", int, "trials per session", None, 6),
        DatasetOption("trial_seconds", float, "seconds per trial", None, 20.0),
        DatasetOption("difficulty", str, "generator preset: easy, or seed (calibrated to the SEED paper's published "
                                         "cross-person figures)", tuple(DIFFICULTY), "easy"),
    )
    needs_root = False

    def __init__(self, root=None, seed: int = 0, **options):
        super().__init__(root, seed, **options)
        for name in ("participants", "sessions", "trials"):
            if self.option_values[name] < 1:
                raise ValueError(f"synthetic {name} {self.option_values[name]}: expected at least 1")
        if not self.option_values["trial_seconds"] > 0:
            raise ValueError(f"synthetic trial_seconds {self.option_values['trial_seconds']}: expected more than 0")

    @property
    def class_names(self) -> tuple[str, ...]:
        return LAYOUTS[self.option_values["layout"]].classes

    def sessions(self) -> list[tuple[str, str]]:
        o = self.option_values
        return [(str(p), str(s)) for p in range(1, o["participants"] + 1) for s in range(1, o["sessions"] + 1)]

    def _trials(self, participants: list[str], baseline: str) -> Iterator[Trial]:
        o = self.option_values
        return synthetic_trials(o["layout"], participants, range(1, o["sessions"] + 1), o["trials"], seed=self.seed,
                                trial_seconds=o["trial_seconds"], difficulty=o["difficulty"])

    def _n_trials(self, participants: list[str]) -> int:
        return len(participants) * self.option_values["sessions"] * self.option_values["trials"]

    def provenance(self) -> dict:
        out = super().provenance()
        out["options"]["seed"] = self.seed
        return out


#: SEED's film order as class indices (label.mat's -1/0/1 plus one), the same in every session.
SEED_ORDER = (2, 1, 0, 0, 1, 2, 0, 1, 2, 2, 1, 0, 1, 2, 0)


def _write_seed_session(folder: Path, p: int, s: int, trial_seconds: float, seed: int, generator: dict) -> None:
    import scipy.io

    trials = synthetic_trials("seed62", [p], [s], len(SEED_ORDER), seed=seed, trial_seconds=trial_seconds,
                              schedule=SEED_ORDER, **generator)
    variables = {f"p{p:02d}_eeg{t.trial}": np.ascontiguousarray(t.data.T) for t in trials}
    atomic_write(folder / f"{p}_202601{s:02d}.mat", lambda f: scipy.io.savemat(f, variables))


def write_seed_folder(folder, participants: int = 15, sessions: int = 3, trial_seconds: float = 60.0,
                      seed: int = 0, progress=None, jobs: int = 1, **generator) -> Path:
    """A SEED-like dataset in SEED's own layout: ``<subject>_<YYYYMMDD>.mat`` with ``<initials>_eeg1..15``
    (62 x T float32 microvolts at 200 Hz) and ``label.mat``, so it is read by the same reader as SEED.
    ``generator``: ``SyntheticEEG`` knobs (``difficulty="seed"``, ``drift=``...). Each session is seeded by its own
    (participant, session), so ``jobs`` processes write the same files as one."""
    import scipy.io

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cells = [(p, s) for p in range(1, participants + 1) for s in range(1, sessions + 1)]
    write = functools.partial(_write_seed_session, folder, trial_seconds=trial_seconds, seed=seed, generator=generator)
    pool = ProcessPoolExecutor(min(jobs, len(cells))) if jobs > 1 else None
    try:
        pending = [pool.submit(write, p, s) for p, s in cells] if pool else None
        for i, (p, s) in enumerate(cells):
            pending[i].result() if pool else write(p, s)
            if progress is not None:
                progress.update(note=f"participant {p} session {s}")
    finally:
        if pool:  # an interrupted write stops the sessions not yet begun
            pool.shutdown(cancel_futures=True)
    # Last: without it the SEED reader refuses the folder, so an interrupted write never passes for a whole one.
    labels = {"label": np.asarray(SEED_ORDER, np.int16)[None] - 1}
    atomic_write(folder / "label.mat", lambda f: scipy.io.savemat(f, labels))
    return folder
