"""Running per-stratum statistics, window by window, with warm-up priors and persistence.

Offline, stratified normalization z-scores each feature over a whole session.
Online we cannot wait for the session to end, so each stratum keeps running
statistics (Welford / Chan, exact; or exponentially forgetting), pooled with a
prior while only a few windows have been seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci_stream.atomic import atomic_write
from bci_stream.stratified.classes import ClassEffects
from bci_stream.stratified.moments import INPUT_EPS, Level, pool, zscore

log = logging.getLogger("bci_stream.stratified")

Stratum = tuple[str, str]

#: The participant of a run that names none: no one in particular, so its sessions are nobody's history.
ANONYMOUS = "anonymous"

#: What a participant or session name given by a person or a control marker may be.
NAME_RULE = "1 to 64 printable characters, none of them / or \\"
#: Longest piece of a state file's name one name becomes; with the tempfile's additions a name stays < 255 bytes.
FILE_PART_MAX = 80


def stratum_key(participant, session) -> Stratum:
    return (str(participant), str(session))


def name_problem(name: str) -> str | None:
    """What makes ``name`` unfit as a participant or session (see NAME_RULE), or None."""
    if not name:
        return "empty"
    if len(name) > 64:
        return f"{len(name)} characters long"
    bad = next((c for c in name if not c.isprintable() or c in "/\\"), None)
    return None if bad is None else f"contains {bad!r}"


def check_name(name: str, what: str) -> str:
    """``name`` if it keeps NAME_RULE, else ValueError naming ``what`` (a flag, a marker key) and the rule."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"{what}: {problem}; a name is {NAME_RULE}")
    return name


def _file_part(name: str) -> str:
    """``name`` as a piece of a file name: percent-quoted, and if that is long, cut and told apart by a hash
    (``+`` never occurs in a quoted name, so a cut one never equals another name's whole one). Parts are joined
    by ``__``, so an underscore that another follows, or that ends the name, is quoted too: then no part holds
    ``__`` or ends in ``_``, the first ``__`` of a file name is the joint, and ``a__b``/``c`` and ``a``/``b__c``
    never share a file. Other underscores (``sub_01``) stay as they always were."""
    quoted = re.sub(r"_(?=_)|_$", "%5F", urllib.parse.quote(name, safe=""))
    if len(quoted) <= FILE_PART_MAX:
        return quoted
    return quoted[: FILE_PART_MAX - 17] + "+" + hashlib.sha256(name.encode()).hexdigest()[:16]


def write_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(state).encode()))


def _state_problem(d, n_features: int) -> str | None:
    """What is wrong with the parsed contents ``d`` of a state file, or None."""
    if not isinstance(d, dict):
        return f"a JSON {type(d).__name__}, not an object"
    missing = [k for k in ("stratum", "count", "mean", "m2") if k not in d]
    if missing:
        return f"no {', '.join(missing)}"
    stratum = d["stratum"]
    if not (isinstance(stratum, list) and len(stratum) == 2 and all(isinstance(p, str) for p in stratum)):
        return f"stratum {str(stratum)[:80]} is not [participant, session]"
    count, halflife = d["count"], d.get("halflife")
    if isinstance(count, bool) or not isinstance(count, (int, float)) or not 0 <= count < math.inf:
        return f"count {str(count)[:80]} is not a finite number >= 0"
    if halflife is not None and (isinstance(halflife, bool) or not isinstance(halflife, (int, float))
                                 or not 0 < halflife < math.inf):
        return f"halflife {str(halflife)[:80]} is not a finite number > 0"
    for k in ("mean", "m2") + (("removed",) if "removed" in d else ()):
        try:
            v = np.asarray(d[k], np.float64)
        except (TypeError, ValueError):
            return f"{k} is not a list of numbers"
        if v.shape != (n_features,):
            return f"{k} has shape {v.shape}, expected {n_features} features"
        if not np.isfinite(v).all():
            return f"{k} holds non-finite numbers"
        if k == "m2" and (v < 0).any():
            return "m2 holds negative numbers"
    if "plain" in d:
        plain = d["plain"]
        problem = _state_problem({"stratum": stratum, **plain} if isinstance(plain, dict) else plain, n_features)
        if problem is not None:
            return f"plain: {problem}"
    return None


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
        self.removed: np.ndarray | None = None
        #: Class-aware statistics also keep the windows' own moments, effects left in: what the stratum's person
        #: carries into their next session, where a wrong guess must not follow them (:meth:`StratifiedNormalizer.
        #: prior_for`).
        self.plain: RunningStats | None = None

    @property
    def decay(self) -> float:
        """The weight a window learned keeps one window later."""
        return 1.0 if self._decay is None else self._decay

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
            **({} if self.removed is None else {"removed": self.removed.tolist()}),
            **({} if self.plain is None else {"plain": self.plain.to_dict()}),
        }

    @property
    def finite(self) -> bool:
        return bool(np.isfinite(self.count) and np.isfinite(self.mean).all() and np.isfinite(self.m2).all()
                    and (self.plain is None or self.plain.finite))

    @classmethod
    def from_dict(cls, d: dict) -> "RunningStats":
        s = cls(len(d["mean"]), d.get("halflife"))
        s.count = float(d["count"])
        s.mean = np.asarray(d["mean"], np.float64)
        s.m2 = np.asarray(d["m2"], np.float64)
        s.removed = np.asarray(d["removed"], np.float64) if "removed" in d else None
        s.plain = cls.from_dict(d["plain"]) if "plain" in d else None
        return s


@dataclass
class Prior:
    """Population statistics from training, trusted as much as ``weight`` windows of the stratum (and left faster
    where the classes do not move the features, with ``level``)."""

    mean: np.ndarray
    var: np.ndarray
    weight: float = 30.0
    level: Level | None = None


class StratifiedNormalizer:
    """Per-stratum running statistics with warm-up and atomic persistence.

    Warm-up: a young stratum is pooled with a prior. For a participant seen
    before (another session in memory or in ``state_dir``) the prior is that
    participant's own pooled statistics, weighted ``participant_weight``
    windows; for a new person it is the training population's.

    With ``classes`` the statistics are class-aware (:mod:`.classes`): a window is normalized first, and
    joins them in :meth:`learn`, less the class effect the model's probabilities for it expect.
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
        classes: ClassEffects | None = None,
    ):
        self.n_features = int(n_features)
        self.classes = classes
        self.prior = prior
        self.participant_weight = participant_weight
        self.halflife = halflife
        self.eps = eps
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.signature = signature
        self.strata: dict[Stratum, RunningStats] = {}
        self._priors: dict[Stratum, Prior | None] = {}  # chosen when a stratum is first normalized
        self._unsaveable: set[Stratum] = set()  # strata whose statistics went non-finite (warned once)

    def stats(self, key: Stratum) -> RunningStats:
        """The stratum's statistics, resumed from ``state_dir`` the first time a stratum is seen."""
        if key not in self.strata:
            saved = self._path(key)
            loaded = self._read(saved) if saved is not None and saved.exists() else None
            self.strata[key] = RunningStats(self.n_features, self.halflife) if loaded is None else loaded[1]
        return self.strata[key]

    def update(self, key: Stratum, x: np.ndarray) -> None:
        self.stats(key).update(x)

    def prior_for(self, key: Stratum) -> Prior | None:
        """The participant's other sessions pooled, if any were seen; else the population prior. Runs that name no
        participant (:data:`ANONYMOUS`) are strangers to each other: each starts from the population."""
        if self.participant_weight > 0 and key[0] != ANONYMOUS:
            if self.state_dir is not None and self.state_dir.is_dir():
                known = {self._path(k) for k in (key, *self.strata)}  # never read: ``key``'s may be --fresh's
                for path in self.state_dir.glob(_file_part(key[0]) + "__*.json"):
                    loaded = None if path in known else self._read(path)
                    if loaded is not None and loaded[0] != key:
                        self.strata.setdefault(*loaded)
            pooled = RunningStats(self.n_features)
            for other, s in self.strata.items():
                if other[0] == key[0] and other != key:
                    # A session's windows as they were: class-aware residuals would carry its wrong guesses along.
                    if s.plain is not None:
                        pooled.merge(s.plain.count, s.plain.mean, s.plain.m2)
                    else:
                        pooled.merge(s.count, s.mean, self._m2(s))
            if pooled.count > 1:
                return Prior(pooled.mean, pooled.m2 / pooled.count, self.participant_weight,
                             None if self.prior is None else self.prior.level)
        return self.prior

    def prior_in_use(self, key: Stratum) -> Prior | None:
        """The prior ``key`` is pooled with, chosen once, when the stratum is first normalized: a stratum keeps the
        warm-up it started with, whatever other strata come and go."""
        if key not in self._priors:
            self._priors[key] = self.prior_for(key)
        return self._priors[key]

    def moments(self, key: Stratum) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance used for ``key`` now: the stratum's, pooled with its prior while young."""
        s = self.stats(key)
        prior = self.prior_in_use(key)
        if prior is None or prior.weight <= 0:
            return s.mean, self._m2(s) / s.count if s.count > 0 else np.zeros_like(s.m2)
        return pool(s.count, s.mean, self._m2(s), prior.mean, prior.var, prior.weight, prior.level)

    def _m2(self, s: RunningStats) -> np.ndarray:
        """Squared deviations as a stratum with every class would have them: class-aware statistics gather
        residuals, which lack the variance between classes."""
        return s.m2 if self.classes is None else s.m2 / self.classes.within

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

    def step(self, key: Stratum, x: np.ndarray) -> np.ndarray:
        """The online step before the model: class-aware statistics learn a window only once the model has seen
        it (:meth:`learn`), others at once (:meth:`update_transform`)."""
        return self.update_transform(key, x) if self.classes is None else self.transform(key, np.atleast_2d(x))

    def learn(self, key: Stratum, x: np.ndarray, probs: np.ndarray) -> None:
        """Class-aware: windows ``x`` join the statistics less the class effect of the model's ``probs`` for them,
        one by one, each at the variance it was normalized by, and with what fades back in of the effects taken
        out before (:mod:`.classes`). Otherwise nothing: :meth:`step` learned them."""
        if self.classes is None:
            return
        kept = self.classes.kept
        for row, p in zip(np.atleast_2d(np.asarray(x, np.float64)), np.atleast_2d(probs)):
            effect = self.classes.effect(self.moments(key)[1], self.eps, p)
            s = self.stats(key)
            if s.plain is None and s.count == 0:  # not for statistics saved before they were kept
                s.plain = RunningStats(self.n_features, self.halflife)
            removed = np.zeros_like(effect) if s.removed is None else s.removed * s.decay
            s.update(row - effect + (1.0 - kept) * removed)
            s.removed = kept * removed + effect
            if s.plain is not None:
                s.plain.update(row)

    def warming_up(self, key: Stratum) -> bool:
        """True while the population prior still weighs more than the stratum's own windows."""
        weight = self.prior.weight if self.prior is not None else 2.0
        return self.stats(key).count < weight

    def population_share(self, key: Stratum) -> float:
        """The training population's share in ``key``'s statistics now: its prior's weight against the windows
        learned; 0 where the stratum started from the participant's earlier sessions (or no prior)."""
        prior = self.prior_in_use(key)
        if prior is None or prior is not self.prior or prior.weight <= 0:
            return 0.0
        return prior.weight / (prior.weight + self.stats(key).count)

    def forget(self, key: Stratum) -> None:
        """Start ``key`` from empty statistics; what was saved for it is overwritten at the next save."""
        self.strata[key] = RunningStats(self.n_features, self.halflife)

    # persistence --------------------------------------------------------
    def _path(self, key: Stratum) -> Path | None:
        if self.state_dir is None:
            return None
        return self.state_dir / f"{_file_part(key[0])}__{_file_part(key[1])}.json"

    def snapshot(self, keys) -> list[tuple[Path, dict]]:
        """What saving ``keys`` writes, copied, so that another thread may write it while statistics move on.
        Statistics gone non-finite are left out (one warning per stratum): the last good file stays."""
        out = []
        for k in keys:
            s = self.strata[k]
            if not s.finite:
                if k not in self._unsaveable:
                    self._unsaveable.add(k)
                    log.warning("statistics of stratum %s/%s are not finite: not saved, %s keeps the last good ones",
                                *k, self._path(k))
                continue
            out.append((self._path(k), {"stratum": list(k), "signature": self.signature, **s.to_dict()}))
        return out

    def save(self, key: Stratum | None = None) -> None:
        """Write one stratum (or all) atomically: a crash leaves the old file or the new one."""
        if self.state_dir is None:
            raise ValueError("normalizer has no state_dir to save to")
        for path, state in self.snapshot([key] if key is not None else list(self.strata)):
            write_state(path, state)

    def _read(self, path: Path) -> tuple[Stratum, RunningStats] | None:
        """A saved stratum and its statistics. A damaged file is moved aside with a warning (None: start
        fresh), so a crash or a bad disk never stops a run; another model's file is an error (wrong folder)."""
        try:
            d = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError) as e:
            d, problem = None, f"unreadable: {e}"
        else:
            problem = _state_problem(d, self.n_features)
        # A file without a signature is refused as another's only when nothing else is wrong with it.
        if isinstance(d, dict) and ("signature" in d or problem is None) and d.get("signature") != self.signature:
            raise ValueError(
                f"normalizer state {path} was written for features {d.get('signature')!r}, "
                f"this model computes {self.signature!r}; use another --state-dir"
            )
        if problem is None:
            return stratum_key(*d["stratum"]), RunningStats.from_dict(d)
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        try:
            path.rename(aside)
            where = f"moved aside to {aside.name}"
        except OSError as e:
            where = f"not moved aside ({e}), overwritten at the next save"
        log.warning("normalizer state %s is damaged (%s): %s; its stratum starts fresh", path, problem, where)
        return None
