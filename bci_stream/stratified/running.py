"""Running per-stratum statistics, window by window, with warm-up priors and persistence.

Offline, stratified normalization z-scores each feature over a whole session.
Online we cannot wait for the session to end, so each stratum keeps running
statistics (Welford / Chan, exact; or exponentially forgetting), pooled with a
prior while only a few windows have been seen.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci_stream.atomic import atomic_write
from bci_stream.stratified.moments import INPUT_EPS, pool, zscore

Stratum = tuple[str, str]


def stratum_key(participant, session) -> Stratum:
    return (str(participant), str(session))


class RunningStats:
    """Running mean and (population) variance of feature vectors.

    With ``halflife`` (in windows) old windows fade: weights decay by half every
    ``halflife`` windows, so slow drift (electrode gel drying) is tracked.
    """

    def __init__(self, n_features: int, halflife: float | None = None):
        self.count = 0.0
        self.mean = np.zeros(n_features)
        self.m2 = np.zeros(n_features)
        self.halflife = halflife
        self._decay = None if halflife is None else 0.5 ** (1.0 / halflife)

    @property
    def var(self) -> np.ndarray:
        return self.m2 / self.count if self.count > 0 else np.zeros_like(self.m2)

    def merge(self, count: float, mean: np.ndarray, m2: np.ndarray) -> None:
        """Fold in another set of statistics (Chan et al.): exact, in any order."""
        if count <= 0:
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64)
        if x.ndim == 1:  # one window: the live path, kept to a few vector operations
            self._add(x)
            return
        x = x.reshape(-1, self.mean.shape[0])
        if self._decay is None and len(x) > 1:
            mean = x.mean(axis=0)
            self.merge(len(x), mean, ((x - mean) ** 2).sum(axis=0))
            return
        for row in x:
            self._add(row)

    def _add(self, row: np.ndarray) -> None:
        """Welford; exponentially weighted with a half-life (West 1979)."""
        if self._decay is None:
            self.count += 1.0
        else:
            self.count = self._decay * self.count + 1.0
            self.m2 = self.m2 * self._decay
        delta = row - self.mean
        self.mean = self.mean + delta / self.count
        self.m2 = self.m2 + delta * (row - self.mean)

    def to_dict(self) -> dict:
        return {
            "count": self.count,
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "halflife": self.halflife,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RunningStats":
        s = cls(len(d["mean"]), d.get("halflife"))
        s.count = float(d["count"])
        s.mean = np.asarray(d["mean"], np.float64)
        s.m2 = np.asarray(d["m2"], np.float64)
        return s


@dataclass
class Prior:
    """Population statistics from training, trusted as much as ``weight`` windows of the stratum."""

    mean: np.ndarray
    var: np.ndarray
    weight: float = 30.0


class StratifiedNormalizer:
    """Per-stratum running statistics with warm-up and atomic persistence.

    Warm-up: a young stratum is pooled with a prior. For a participant seen
    before (another session in memory or in ``state_dir``) the prior is that
    participant's own pooled statistics, weighted ``participant_weight``
    windows; for a new person it is the training population's.
    """

    def __init__(
        self,
        n_features: int,
        prior: Prior | None = None,
        halflife: float | None = None,
        eps: float = INPUT_EPS,
        state_dir: str | os.PathLike | None = None,
        signature: str = "",
        participant_weight: float = 0.0,
    ):
        self.n_features = int(n_features)
        self.prior = prior
        self.participant_weight = participant_weight
        self.halflife = halflife
        self.eps = eps
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.signature = signature
        self.strata: dict[Stratum, RunningStats] = {}
        self._priors: dict[Stratum, Prior | None] = {}  # chosen when a stratum is first normalized

    def stats(self, key: Stratum) -> RunningStats:
        """The stratum's statistics, resumed from ``state_dir`` the first time a stratum is seen."""
        if key not in self.strata:
            saved = self._path(key)
            if saved is not None and saved.exists():
                self.strata[key] = self._read(saved)
            else:
                self.strata[key] = RunningStats(self.n_features, self.halflife)
        return self.strata[key]

    def update(self, key: Stratum, x: np.ndarray) -> None:
        self.stats(key).update(x)

    def prior_for(self, key: Stratum) -> Prior | None:
        """The participant's other sessions pooled, if any were seen; else the population prior."""
        if self.participant_weight > 0:
            if self.state_dir is not None and self.state_dir.is_dir():
                prefix = urllib.parse.quote(key[0], safe="") + "__"
                for path in self.state_dir.glob(prefix + "*.json"):
                    other = tuple(json.loads(path.read_text())["stratum"])
                    if other != key:
                        self.stats(other)
            pooled = RunningStats(self.n_features)
            for other, s in self.strata.items():
                if other[0] == key[0] and other != key:
                    pooled.merge(s.count, s.mean, s.m2)
            if pooled.count > 1:
                return Prior(pooled.mean, pooled.var, self.participant_weight)
        return self.prior

    def moments(self, key: Stratum) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance used for ``key`` now: the stratum's, pooled with its prior while young."""
        s = self.stats(key)
        if key not in self._priors:
            self._priors[key] = self.prior_for(key)
        prior = self._priors[key]
        if prior is None or prior.weight <= 0:
            return s.mean, s.var
        return pool(s.count, s.mean, s.m2, prior.mean, prior.var, prior.weight)

    def transform(self, key: Stratum, x: np.ndarray) -> np.ndarray:
        mean, var = self.moments(key)
        return zscore(np.asarray(x, np.float64), mean, var, self.eps).astype(np.float32)

    def update_transform(self, key: Stratum, x: np.ndarray) -> np.ndarray:
        """Online step: each window joins its stratum's statistics, then is normalized by them."""
        x = np.atleast_2d(np.asarray(x, np.float64))
        out = np.empty(x.shape, np.float32)
        for i, row in enumerate(x):
            self.update(key, row)
            out[i] = self.transform(key, row)
        return out

    def warming_up(self, key: Stratum) -> bool:
        """True while the population prior still weighs more than the stratum's own windows."""
        weight = self.prior.weight if self.prior is not None else 2.0
        return self.stats(key).count < weight

    def forget(self, key: Stratum) -> None:
        """Start ``key`` from empty statistics; what was saved for it is overwritten at the next save."""
        self.strata[key] = RunningStats(self.n_features, self.halflife)

    # persistence --------------------------------------------------------
    def _path(self, key: Stratum) -> Path | None:
        if self.state_dir is None:
            return None
        name = "__".join(urllib.parse.quote(part, safe="") for part in key)
        return self.state_dir / f"{name}.json"

    def save(self, key: Stratum | None = None) -> None:
        """Write one stratum (or all) atomically: a crash leaves the old file or the new one."""
        if self.state_dir is None:
            raise ValueError("normalizer has no state_dir to save to")
        for k in [key] if key is not None else list(self.strata):
            payload = json.dumps({"stratum": list(k), "signature": self.signature, **self.strata[k].to_dict()})
            atomic_write(self._path(k), lambda f: f.write(payload.encode()))

    def _read(self, path: Path) -> RunningStats:
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"normalizer state {path}: unreadable ({e})") from e
        if d.get("signature") != self.signature:
            raise ValueError(
                f"normalizer state {path} was written for features {d.get('signature')!r}, "
                f"this model computes {self.signature!r}; use another --state-dir"
            )
        if len(d["mean"]) != self.n_features:
            raise ValueError(f"normalizer state {path}: {len(d['mean'])} features, expected {self.n_features}")
        return RunningStats.from_dict(d)
