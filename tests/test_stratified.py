import numpy as np
import pytest

from bci_stream.stratified import Prior, RunningStats, StratifiedNormalizer


def test_online_statistics_equal_offline_per_stratum(rng):
    n = StratifiedNormalizer(6)
    data = {("P1", "1"): rng.normal(3, 2, (500, 6)), ("P1", "2"): rng.normal(-1, 5, (300, 6)),
            ("P2", "1"): rng.normal(100, 0.01, (400, 6))}
    # interleave strata window by window, as a pipeline switching strata would
    order = [(k, i) for k in data for i in range(len(data[k]))]
    for j in rng.permutation(len(order)):
        k, i = order[j]
        n.update(k, data[k][i])
    for k, x in data.items():
        s = n.stats(k)
        np.testing.assert_allclose(s.mean, x.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(s.var, x.var(axis=0), rtol=1e-6)
        assert s.count == len(x)


def test_batch_updates_equal_window_by_window(rng):
    x = rng.normal(5, 3, (257, 4))
    a, b = RunningStats(4), RunningStats(4)
    for row in x:
        a.update(row)
    for i in range(0, len(x), 50):
        b.update(x[i : i + 50])
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
    np.testing.assert_allclose(a.var, b.var, rtol=1e-10)


def test_exponential_forgetting_equals_weighted_statistics(rng):
    h = 20.0
    x = rng.normal(0, 1, (200, 3)) + np.linspace(0, 10, 200)[:, None]  # drifting
    s = RunningStats(3, halflife=h)
    s.update(x)
    w = 0.5 ** ((len(x) - 1 - np.arange(len(x))) / h)
    mean = (w[:, None] * x).sum(0) / w.sum()
    var = (w[:, None] * (x - mean) ** 2).sum(0) / w.sum()
    np.testing.assert_allclose(s.mean, mean, rtol=1e-9)
    np.testing.assert_allclose(s.var, var, rtol=1e-9)
    assert abs(s.mean[0] - x[-40:, 0].mean()) < abs(x[:, 0].mean() - x[-40:, 0].mean())


def test_transform_zscores_and_prior_fades(rng):
    prior = Prior(np.zeros(2), np.ones(2), weight=10)
    n = StratifiedNormalizer(2, prior=prior)
    key = ("P", "1")
    assert n.warming_up(key)
    x = rng.normal(50, 4, (2000, 2))
    z = n.update_transform(key, x)
    assert not n.warming_up(key)
    # The prior counts as 10 windows pooled with the stratum's 2000.
    c, k = len(x), 10
    mean = c * x.mean(0) / (c + k)
    var = (c * (x.var(0) + (x.mean(0) - mean) ** 2) + k * (1 + mean**2)) / (c + k)
    np.testing.assert_allclose(z[-1], (x[-1] - mean) / np.sqrt(var), rtol=1e-5)
    np.testing.assert_allclose(n.moments(key)[1], var, rtol=1e-9)
    assert abs(float(z[0, 0])) < 60  # first window: pooled with the prior, not divided by ~0


def test_save_load_round_trip_and_resume(tmp_path, rng):
    x = rng.normal(2, 3, (300, 5))
    key = ("P 07/ä", "2")  # odd characters still make a valid file name
    whole = StratifiedNormalizer(5, state_dir=tmp_path / "ref", signature="sig")
    whole.update_transform(key, x)

    first = StratifiedNormalizer(5, state_dir=tmp_path / "st", signature="sig")
    first.update_transform(key, x[:120])
    first.save()
    assert not list((tmp_path / "st").glob("*.tmp"))
    resumed = StratifiedNormalizer(5, state_dir=tmp_path / "st", signature="sig")
    z = resumed.update_transform(key, x[120:])
    np.testing.assert_allclose(resumed.stats(key).mean, whole.stats(key).mean, rtol=1e-12)
    np.testing.assert_allclose(resumed.stats(key).var, whole.stats(key).var, rtol=1e-12)
    np.testing.assert_allclose(z[-1], whole.transform(key, x[-1]), rtol=1e-6)


def test_state_for_other_features_is_refused(tmp_path, rng):
    a = StratifiedNormalizer(3, state_dir=tmp_path, signature="de-62ch")
    a.update(("P", "1"), rng.normal(size=(4, 3)))
    a.save()
    b = StratifiedNormalizer(3, state_dir=tmp_path, signature="bandpower-62ch")
    with pytest.raises(ValueError, match="written for features 'de-62ch'"):
        b.stats(("P", "1"))
