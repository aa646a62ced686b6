"""Invariants the design rests on, over inputs hypothesis chooses: chunking never changes a label, no label
depends on data after its window, and incremental statistics equal the batch ones for any split."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bci_stream.bundle import default_bundle_for
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.pipeline import Pipeline
from bci_stream.stratified import Prior, RunningStats, StratifiedNormalizer
from bci_stream.stream import Chunk
from conftest import Keep

GEN = SyntheticEEG("seed62", seed=21, participant=31)
DATA, _ = GEN.generate(round(6 * GEN.info.srate))  # 6 s: 51 windows of 1 s at the bundled 0.1-s hop
TS = (np.arange(len(DATA)) + 1) / GEN.info.srate
BUNDLE = default_bundle_for(GEN.info)
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode(data, sizes):
    """Predictions of a fresh pipeline fed ``data`` in chunks of ``sizes`` (cycled)."""
    keep = Keep()
    pipe = Pipeline(GEN.info, BUNDLE, "P31", "1", sinks=[keep])
    i, k = 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        pipe.process(Chunk(data[i : i + n], TS[i : i + n]))
        i, k = i + n, k + 1
    return keep.predictions


WHOLE = _decode(DATA, [len(DATA)])


def _same(a, b):
    assert [p.window_index for p in a] == [p.window_index for p in b]
    np.testing.assert_allclose([p.probabilities for p in a], [p.probabilities for p in b], rtol=1e-5, atol=1e-6)
    assert [p.timestamp for p in a] == [p.timestamp for p in b]
    for p, q in zip(a, b):  # labels agree wherever the top two classes are not a near tie
        top = np.sort(p.probabilities)[-2:]
        assert p.label == q.label or top[1] - top[0] < 1e-4


@SLOW
@given(st.lists(st.integers(1, 700), min_size=1, max_size=8))
def test_chunk_sizes_never_change_windows_features_or_labels(sizes):
    assert len(WHOLE) == 51
    _same(_decode(DATA, sizes), WHOLE)


@SLOW
@given(st.integers(200, len(DATA) - 1), st.lists(st.integers(1, 400), min_size=1, max_size=5), st.integers(0, 2**32 - 1))
def test_no_label_depends_on_data_after_its_window(cut, sizes, seed):
    changed = DATA.copy()
    changed[cut:] = np.random.default_rng(seed).normal(0, 50, changed[cut:].shape)
    before = [p for p in _decode(changed, sizes) if p.window_index <= cut]
    _same(before, [p for p in WHOLE if p.window_index <= cut])


splits = st.lists(st.integers(1, 40), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), splits, st.floats(-1e3, 1e3), st.floats(1e-2, 1e3))
def test_incremental_statistics_equal_the_batch_for_any_split(seed, sizes, loc, scale):
    x = np.random.default_rng(seed).normal(loc, scale, (sum(sizes), 3))
    whole, parts = RunningStats(3), []
    i = 0
    for n in sizes:  # blocks and single rows alike
        whole.update(x[i] if n == 1 else x[i : i + n])
        part = RunningStats(3)
        part.update(x[i : i + n])
        parts.append(part)
        i += n
    merged = RunningStats(3)
    for part in reversed(parts):  # Chan's merge, in any order
        merged.merge(part.count, part.mean, part.m2)
    for s in (whole, merged):
        assert s.count == len(x)
        np.testing.assert_allclose(s.mean, x.mean(0), rtol=1e-9, atol=1e-9 * scale)
        np.testing.assert_allclose(s.var, x.var(0), rtol=1e-7, atol=1e-12 * scale**2)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), splits, st.floats(0, 50))
def test_online_z_scores_are_the_causal_pooled_z_scores_for_any_split(seed, sizes, weight):
    rng = np.random.default_rng(seed)
    x = rng.normal(3, 2, (sum(sizes), 4))
    prior_mean, prior_var = rng.normal(size=4), rng.uniform(0.5, 2, 4)
    n = StratifiedNormalizer(4, Prior(prior_mean, prior_var, weight))
    got, i = [], 0
    for size in sizes:
        got.append(n.update_transform(("P", "1"), x[i : i + size]))
        i += size
    # Reference: row t is z-scored by rows 0..t pooled with `weight` pseudo-rows of the prior.
    expected = []
    for t in range(len(x)):
        rows = x[: t + 1]
        total = len(rows) + weight
        mean = (rows.sum(0) + weight * prior_mean) / total
        second = ((rows**2).sum(0) + weight * (prior_var + prior_mean**2)) / total
        expected.append((x[t] - mean) / np.sqrt(second - mean**2 + 1e-8))
    np.testing.assert_allclose(np.concatenate(got), expected, rtol=1e-4, atol=1e-4)
