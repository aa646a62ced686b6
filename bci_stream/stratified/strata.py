"""The current stratum of one live pipeline, owned in one place.

The input normalizer and every stratified hidden layer keep statistics per
stratum. Which stratum is current, switching, forgetting, saving and the warm-up
rule live here alone, so they can never disagree about where the session is.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from bci_stream.stratified.running import RunningStats, StratifiedNormalizer, Stratum, stratum_key


class Strata:
    """Owns a pipeline's current stratum and the running statistics that follow it."""

    def __init__(self, participant, session):
        self._key = stratum_key(participant, session)
        self._tracked: list[StratifiedNormalizer] = []

    @property
    def key(self) -> Stratum:
        return self._key

    def track(self, normalizer: StratifiedNormalizer) -> Callable[[np.ndarray], np.ndarray]:
        """Make ``normalizer`` follow the current stratum; returns its online step (update, then z-score).

        The first one tracked is the one the data meets first (the input's): its warm-up is the session's.
        """
        self._tracked.append(normalizer)
        normalizer.stats(self._key)  # resume what was saved now, not in the middle of the first window
        return lambda x: normalizer.update_transform(self._key, x)

    def switch(self, participant, session) -> None:
        """Save the current stratum, then continue in another; its saved statistics resume if present."""
        self.save()
        self._key = stratum_key(participant, session)
        for n in self._tracked:
            n.stats(self._key)

    def reset(self) -> None:
        """Start the current stratum from empty statistics (``--fresh``); the saved ones are overwritten on save."""
        for n in self._tracked:
            n.forget(self._key)

    def save(self, every_stratum: bool = False) -> None:
        """Persist the current stratum (or every one this run touched) where a state folder is set."""
        for n in self._tracked:
            if n.state_dir is None or not n.strata:
                continue
            if every_stratum:
                n.save()
            elif self._key in n.strata:
                n.save(self._key)

    def warming_up(self) -> bool:
        """The one warm-up rule: the first statistics still lean more on their prior than on the stratum."""
        return bool(self._tracked) and self._tracked[0].warming_up(self._key)

    def stats(self, key: Stratum | None = None, which: int = 0) -> RunningStats | None:
        """A stratum's statistics (default: the current one's, the input's) to read, or None where there
        are none yet; never creates or loads any, so another thread may call it."""
        if len(self._tracked) <= which:
            return None
        return self._tracked[which].strata.get(self._key if key is None else key)
