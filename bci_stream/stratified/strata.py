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
        # Saves queued for the background writer, newest per file: a file's newer state replaces its older one,
        # another stratum's file is never dropped, so the queue is bounded by the strata of the run.
        self._queued: dict[Path, tuple[int, dict]] = {}
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

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
        """Queue the current stratum's save, then continue in another; its saved statistics resume if present.
        The save is written in the background: a switch costs the decoding thread a copy, not an fsync."""
        self.save_later()
        self._key = stratum_key(participant, session)
        for n in self._tracked:
            n.stats(self._key)

    def save_later(self) -> None:
        """Copy the current stratum's statistics now (cheap: no file is touched) and write them atomically on
        the background writer. Only the current stratum can have changed since it was last saved: a switch
        saves the stratum it leaves."""
        snapshot = self.snapshot()
        if not snapshot:
            return
        with self._wake:
            self._queued.update(snapshot)
            self._wake.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._write_queued, name="bci-stream saves", daemon=True)
            self._thread.start()

    def save(self) -> None:
        """Persist the current stratum and every save still queued, on this thread (raising what fails)."""
        failed = self.write({**self._take_queued(), **self.snapshot()})
        if failed:
            raise failed[0][1]

    def close(self) -> None:
        """Let a write under way finish, stop the background writer, then save what is left on this thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
        self.save()

    def _take_queued(self) -> dict[Path, tuple[int, dict]]:
        with self._wake:
            queued, self._queued = self._queued, {}
        return queued

    def _write_queued(self) -> None:
        while True:
            with self._wake:
                while not self._queued and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
            for stratum, e in self.write(self._take_queued()):
                log.warning("statistics of stratum %s not saved: %s", stratum, e)

    def snapshot(self) -> dict[Path, tuple[int, dict]]:
        """The current stratum's files and states, copied now and numbered, for :meth:`write` on any thread."""
        self._taken += 1
        return {path: (self._taken, state)
                for n in self._tracked if n.state_dir is not None for path, state in n.snapshot([self._key])}

    def write(self, snapshot: dict[Path, tuple[int, dict]]) -> list[tuple[str, OSError]]:
        """Write each file atomically, skipping any a newer snapshot already wrote (the background writer may
        hold an older one while ``save`` writes); returns the failures as (stratum, error)."""
        failed = []
        with self._writing:
            for path, (taken, state) in snapshot.items():
                if self._written.get(path, 0) >= taken:
                    continue
                try:
                    write_state(path, state)
                except OSError as e:
                    failed.append(("/".join(state["stratum"]), e))
                else:
                    self._written[path] = taken
        return failed

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
    loses at most one interval. Written by the strata's background writer, so a slow disk never holds up
    decoding."""

    def __init__(self, strata: Strata, every: float):
        self.strata, self.every = strata, every
        self._due = time.monotonic() + every

    def __call__(self, chunk=None) -> None:
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self.every
        self.strata.save_later()
