"""Stratified statistics and z-scores, defined once.

Three ways meet a stratum's rows: all at once (offline, Fdez et al. 2021), causally
row by row as a differentiable tensor (training on live statistics), and window by
window (the live path, :mod:`.running`). All three pool their own moments with a
prior through :func:`pool` and z-score through :func:`zscore`, which take numpy
arrays and torch tensors alike, so they cannot drift apart.
"""

from __future__ import annotations

import numpy as np
import torch

#: Added to the variance before the square root: inputs (features of any scale) and hidden units.
INPUT_EPS = 1e-8
HIDDEN_EPS = 1e-5


def pool(count, mean, m2, prior_mean, prior_var, weight, level: "Level | None" = None):
    """Mean and variance of ``count`` rows (their ``mean`` and sum of squared deviations ``m2``)
    pooled with ``weight`` pseudo-rows drawn from the prior (Chan et al.'s merge).

    With ``level`` the mean leaves the prior faster across the directions the classes do not separate (see
    :class:`Level`); the variance is pooled as without."""
    n = count + weight
    d = mean - prior_mean
    shift = d * (count / n) if level is None else level.shift(d, prior_var, count, n)
    return prior_mean + shift, (m2 + weight * prior_var + d * d * (count * weight / n)) / n


class Level:
    """How a session's level leaves its prior (the population's for a new person, their earlier sessions' for a
    returning one): fast where emotions do not move the features, slowly where they do.

    A young session has seen one or two emotions, so its mean is the person's level plus those emotions' effect.
    Along the directions that separate the classes (``basis``: orthonormal rows, in z units of the prior) the two
    cannot be told apart, and the mean stays with the prior for its full weight. Across every other direction the
    session's mean is the person's level whatever the emotion, and it is trusted after ``fast`` rows.
    """

    def __init__(self, basis, fast: float):
        self.basis, self.fast = basis, float(fast)

    @classmethod
    def from_class_means(cls, means: np.ndarray, fast: float) -> "Level":
        """The span of the class means' differences (stratum z-scores, [classes, features])."""
        means = np.asarray(means, np.float64)
        _, sv, vt = np.linalg.svd(means - means.mean(axis=0), full_matrices=False)
        return cls(vt[sv > 1e-9 * max(np.linalg.norm(means), 1.0)], fast)  # rounding is no direction

    def shift(self, d, prior_var, count, n):
        """The mean's move from the prior, given the rows' mean less the prior's (``d``) after ``count`` rows, ``n``
        with the prior's weight."""
        sd = (prior_var + INPUT_EPS) ** 0.5
        basis = self.basis if not isinstance(d, torch.Tensor) else torch.as_tensor(self.basis, dtype=d.dtype,
                                                                                   device=d.device)
        dz = d / sd
        along = (dz @ basis.T) @ basis
        return sd * ((dz - along) * (count / (count + self.fast)) + along * (count / n))


def zscore(x, mean, var, eps: float):
    return (x - mean) / (var + eps) ** 0.5


def _tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=torch.float64)


def stratum_moments(x, strata) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean and (population) variance of each stratum's rows, [strata, units], and their row counts [strata].

    ``strata`` numbers the rows' strata from 0; numpy input is computed in float64.
    """
    x, strata = _tensor(x), torch.as_tensor(np.asarray(strata) if not isinstance(strata, torch.Tensor) else strata)
    n = int(strata.max()) + 1
    count = torch.bincount(strata, minlength=n).to(x.dtype)
    per_row = count.clamp(min=1)[:, None]
    mean = torch.zeros(n, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, strata, x) / per_row
    var = torch.zeros_like(mean).index_add_(0, strata, (x - mean[strata]) ** 2) / per_row
    return mean, var, count


def population_prior(x, strata):
    """The average stratum: mean over strata of each stratum's mean and of its variance.

    This is what a new stratum is expected to look like before it has any rows of its own.
    """
    mean, var, count = stratum_moments(x, strata)
    seen = count > 0
    mean, var = mean[seen].mean(0), var[seen].mean(0)
    return (mean, var) if isinstance(x, torch.Tensor) else (mean.numpy(), var.numpy())


def batch_zscore(x, strata, eps: float):
    """Each row z-scored by the mean and variance of all rows of its own stratum (offline)."""
    t = _tensor(x)
    s = torch.as_tensor(np.asarray(strata)) if not isinstance(strata, torch.Tensor) else strata
    mean, var, _ = stratum_moments(t, s)
    z = zscore(t, mean[s], var[s], eps)
    return z if isinstance(x, torch.Tensor) else z.numpy().astype(np.float32)


def causal_zscore(x, start, prior_mean, prior_var, weight, eps: float, level: Level | None = None):
    """Each row z-scored as the live path does it: by its stratum's rows up to and including itself,
    pooled with ``weight`` pseudo-rows of the prior (and ``level``, see :func:`pool`). Differentiable in ``x``
    (without ``level``).

    A stratum's rows are contiguous and in time order; ``start[i]`` is the first row of
    row i's stratum. ``prior_*`` and ``weight`` broadcast against the rows.
    """
    t = _tensor(x)
    start = torch.as_tensor(start, device=t.device)
    pm, pv = _tensor(prior_mean).to(t.device).double(), _tensor(prior_var).to(t.device).double()
    if t.requires_grad and torch.is_grad_enabled():
        if level is not None:
            raise ValueError("causal_zscore: a level is for inputs, which need no gradient")
        return _CausalZscore.apply(t, start, pm, pv, weight, eps)
    _, mean, var, _ = _causal_moments(t, start, pm, pv, weight, level)
    z = zscore(t.double(), mean, var, eps).to(t.dtype)
    return z if isinstance(x, torch.Tensor) else z.numpy().astype(np.float32)


def _causal_moments(t: torch.Tensor, start: torch.Tensor, pm: torch.Tensor, pv: torch.Tensor, weight, level):
    """(rows less the prior mean, each row's pooled mean and variance, its stratum's rows so far), float64."""
    d = t.double() - pm  # sums about the prior mean stay small, so float64 cumsums keep their precision
    zero = d.new_zeros(1, d.shape[1])
    s1, s2 = torch.cat([zero, _cumsum_rows(d)]), torch.cat([zero, _cumsum_rows(d * d)])
    i = torch.arange(len(t), device=t.device)
    count = (i - start + 1).double()[:, None]
    s1, s2 = s1[1:] - s1[start], s2[1:] - s2[start]
    own = s1 / count
    mean, var = pool(count, pm + own, (s2 - s1 * own).clamp(min=0), pm, pv, weight, level)
    return d, mean, var, count


class _CausalZscore(torch.autograd.Function):
    """:func:`causal_zscore` with its gradient written out, so that training on live statistics keeps four tensors a
    layer for the backward pass instead of autograd's every float64 step: half the memory, and training is faster
    (``benchmarks/training_speed.py``).

    With ``n = count + weight`` rows pooled, ``S1``, ``S2`` the prefix sums of ``d = x - prior mean`` and of ``d**2``,
    :func:`pool` gives ``mean = prior mean + a`` with ``a = S1 / n`` and ``var = (S2 + weight * prior var) / n - a**2``.
    Row k's z moves with every earlier row of its stratum through ``S1`` and ``S2``, so the gradient of row j sums
    over the rows from j to its stratum's end: reversed prefix sums.
    """

    @staticmethod
    def forward(ctx, x, start, pm, pv, weight, eps):
        d, mean, var, count = _causal_moments(x, start, pm, pv, weight, None)
        z, sd = zscore(x.double(), mean, var, eps), (var + eps).sqrt()  # z exactly as without a gradient
        stop = start + torch.bincount(start, minlength=len(x))[start]  # one past the last row of each row's stratum
        ctx.save_for_backward(d, mean - pm, sd, z, count + weight, stop)
        return z.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        d, a, sd, z, n, stop = ctx.saved_tensors
        g = grad.double()
        dvar = -g * z / (2 * sd * sd)
        da = -g / sd - 2 * a * dvar
        zero = d.new_zeros(1, d.shape[1])
        c1, c2 = torch.cat([zero, _cumsum_rows(da / n)]), torch.cat([zero, _cumsum_rows(dvar / n)])
        i = torch.arange(len(d), device=d.device)
        dx = g / sd + (c1[stop] - c1[i]) + 2 * d * (c2[stop] - c2[i])
        return dx.to(grad.dtype), None, None, None, None, None


def _cumsum_rows(v: torch.Tensor) -> torch.Tensor:
    """Cumulative sums down the rows, taken along contiguous memory: four times faster than ``cumsum(0)`` on a
    [rows, units] tensor on CPU, which is where training on live statistics spent its epochs."""
    return v.T.contiguous().cumsum(1).T
