"""The current stratum of one live pipeline, owned in one place.

The input normalizer and every stratified hidden layer keep statistics per
stratum. Which stratum is current, switching, forgetting, saving and the warm-up
rule live here alone, so they can never disagree about where the session is.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from bci_stream.stratified.running import RunningStats, StratifiedNormalizer, Stratum, stratum_key, write_state

log = logging.getLogger("bci_stream.stratified")


class Strata:
    """Owns a pipeline's current stratum and the running statistics that follow it."""

    def __init__(self, participant, session, fresh: bool = False):
        """``fresh`` (``--fresh``): the first stratum starts from empty statistics and what was saved for it is
        never read (a damaged file cannot matter), only overwritten at the next save."""
        self._key = stratum_key(participant, session)
        self._fresh = fresh
        self._tracked: list[StratifiedNormalizer] = []
        self._writing = threading.Lock()
        self._taken = 0  # snapshots taken; a file is never overwritten by an older snapshot than it holds
        self._written: dict[Path, int] = {}

    @property
    def key(self) -> Stratum:
        return self._key

    def track(self, normalizer: StratifiedNormalizer) -> "Step":
        """Make ``normalizer`` follow the current stratum; returns its online step.

        The first one tracked is the one the data meets first (the input's): its warm-up is the session's.
        """
        self._tracked.append(normalizer)
        if self._fresh:
            normalizer.forget(self._key)
        else:
            normalizer.stats(self._key)  # resume what was saved now, not in the middle of the first window
        return Step(self, normalizer)

    def switch(self, participant, session) -> None:
        """Save the current stratum, then continue in another; its saved statistics resume if present."""
        self.save()
        self._key = stratum_key(participant, session)
        for n in self._tracked:
            n.stats(self._key)

    def save(self) -> None:
        """Persist the current stratum where a state folder is set. Only the current one can have changed since
        it was last saved: a switch saves the stratum it leaves."""
        self.write(self.snapshot())

    def snapshot(self) -> tuple[int, list[tuple[Path, dict]]]:
        """What ``save`` writes, copied (cheap: no file is touched), for :meth:`write` on any thread."""
        self._taken += 1
        return self._taken, [s for n in self._tracked if n.state_dir is not None for s in n.snapshot([self._key])]

    def write(self, snapshot: tuple[int, list[tuple[Path, dict]]]) -> None:
        """Write a snapshot's files atomically, skipping any a newer snapshot already wrote (a checkpoint
        written in the background may finish after a switch saved the same stratum)."""
        taken, states = snapshot
        with self._writing:
            for path, state in states:
                if self._written.get(path, 0) < taken:
                    write_state(path, state)
                    self._written[path] = taken

    def warming_up(self) -> bool:
        """The one warm-up rule: the first statistics still lean more on their prior than on the stratum."""
        return bool(self._tracked) and self._tracked[0].warming_up(self._key)

    def returning(self) -> bool:
        """Whether the first statistics lean on the participant's own earlier sessions (a returning person), not
        on the training population's (a new one): which of the two warm-ups the current stratum is in."""
        if not self._tracked:
            return False
        first = self._tracked[0]
        prior = first.prior_in_use(self._key)
        return prior is not None and prior is not first.prior

    def population_share(self) -> float:
        """The training population's share in the current stratum's first statistics (0 where none are kept)."""
        return self._tracked[0].population_share(self._key) if self._tracked else 0.0

    def stats(self, key: Stratum | None = None, which: int = 0) -> RunningStats | None:
        """A stratum's statistics (default: the current one's, the input's) to read, or None where there
        are none yet; never creates or loads any, so another thread may call it."""
        if len(self._tracked) <= which:
            return None
        return self._tracked[which].strata.get(self._key if key is None else key)


class Step:
    """A tracked normalizer's online step on whichever stratum is current: z-score windows, then learn from
    what the model made of them (class-aware statistics; for others a no-op)."""

    def __init__(self, strata: Strata, normalizer: StratifiedNormalizer):
        self.strata, self.normalizer = strata, normalizer

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.normalizer.step(self.strata.key, x)

    def learn(self, x: np.ndarray, probs: np.ndarray) -> None:
        self.normalizer.learn(self.strata.key, x, probs)


class Checkpoints:
    """A pipeline hook that saves the current stratum every ``every`` seconds of wall time, so a killed run
    loses at most one interval. Statistics are copied on the decoding thread and written (fsync, rename) on
    a background one; a snapshot not yet written when the next is taken is replaced, so a slow disk never
    queues work."""

    def __init__(self, strata: Strata, every: float):
        self.strata, self.every = strata, every
        self._due = time.monotonic() + every
        self._pending: tuple | None = None
        self._closed = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def __call__(self, chunk=None) -> None:
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self.every
        snapshot = self.strata.snapshot()
        with self._wake:
            self._pending = snapshot
            self._wake.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._write, name="bci-stream checkpoints", daemon=True)
            self._thread.start()

    def _write(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                snapshot, self._pending = self._pending, None
            try:
                self.strata.write(snapshot)
            except OSError as e:
                log.warning("checkpoint of stratum %s/%s not written: %s", *self.strata.key, e)

    def close(self) -> None:
        """Stop checkpointing (what is pending is dropped: the final save follows) and wait for a write under way."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
