import json
import time

import numpy as np
import pytest

from bci_stream.stratified import (Prior, RunningStats, Strata, StratifiedNormalizer, batch_zscore, causal_zscore,
                                 population_prior)


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


# ---------------------------------------------------------------- edges found by mutation testing


def test_state_files_are_one_per_stratum_directly_in_the_folder(tmp_path, rng):
    n = StratifiedNormalizer(2, state_dir=tmp_path, signature="s")
    keys = [("P/1", "1"), ("P/1", "2"), ("Q", "1")]
    for i, k in enumerate(keys):
        n.update(k, rng.normal(i, 1, (5, 2)))
    n.save(("Q", "1"))
    assert [p.name for p in tmp_path.iterdir()] == ["Q__1.json"]  # only the stratum asked for
    n.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P%2F1__1.json", "P%2F1__2.json", "Q__1.json"]
    back = StratifiedNormalizer(2, state_dir=tmp_path, signature="s")
    for k in keys:
        np.testing.assert_allclose(back.stats(k).mean, n.stats(k).mean)


def test_saving_without_a_folder_and_state_without_a_signature_say_what_is_wrong(tmp_path):
    """Damaged state files are set aside instead (tests/test_crash_safety.py)."""
    with pytest.raises(ValueError, match="^normalizer has no state_dir to save to$"):
        StratifiedNormalizer(2).save()
    path = tmp_path / "P__1.json"
    path.write_text(json.dumps({"stratum": ["P", "1"], "count": 1.0, "mean": [0.0] * 3, "m2": [0.0] * 3}))
    with pytest.raises(ValueError, match="written for features None"):  # no signature: refused, not guessed
        StratifiedNormalizer(3, state_dir=tmp_path).stats(("P", "1"))


def test_forgetting_statistics_keep_their_half_life_through_forget_save_and_resume(tmp_path, rng):
    h, key = 10.0, ("P", "1")
    x = rng.normal(size=(50, 2)) + np.linspace(0, 20, 50)[:, None]
    w = 0.5 ** ((len(x) - 1 - np.arange(len(x))) / h)
    mean = (w[:, None] * x).sum(0) / w.sum()
    n = StratifiedNormalizer(2, halflife=h, state_dir=tmp_path, signature="s")
    n.update(key, x)
    np.testing.assert_allclose(n.stats(key).mean, mean, rtol=1e-9)
    n.forget(key)
    n.update(key, x)
    np.testing.assert_allclose(n.stats(key).mean, mean, rtol=1e-9)
    n.save()
    back = StratifiedNormalizer(2, halflife=h, state_dir=tmp_path, signature="s")
    assert back.stats(key).halflife == h
    back.update(key, x[-1])  # keeps forgetting after the resume
    expected = RunningStats(2, h)
    expected.update(np.concatenate([x, x[-1:]]))
    np.testing.assert_allclose(back.stats(key).mean, expected.mean, rtol=1e-9)


def test_merging_nothing_changes_nothing():
    s = RunningStats(2)
    s.merge(0, np.ones(2), np.ones(2))
    assert s.count == 0 and np.array_equal(s.mean, [0.0, 0.0]) and np.array_equal(s.m2, [0.0, 0.0])


def test_float32_rows_are_accumulated_in_float64(rng):
    x = (1e4 + rng.normal(0, 1, (4000, 3))).astype(np.float32)
    s = RunningStats(3)
    s.update(x)
    exact = x.astype(np.float64)
    np.testing.assert_allclose(s.mean, exact.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.var, exact.var(0), rtol=1e-9)


def test_z_scores_come_back_as_float32_arrays_computed_in_float64(rng):
    x = (1e4 + rng.normal(0, 1, (60, 3))).astype(np.float32)
    strata = np.repeat([0, 1], 30)
    exact = x.astype(np.float64)
    expected = np.concatenate([(exact[:30] - exact[:30].mean(0)) / np.sqrt(exact[:30].var(0) + 1e-8),
                               (exact[30:] - exact[30:].mean(0)) / np.sqrt(exact[30:].var(0) + 1e-8)])
    z = batch_zscore(x, strata, 1e-8)
    assert isinstance(z, np.ndarray) and z.dtype == np.float32
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-5)
    c = causal_zscore(x, np.zeros(60, int), exact.mean(0), exact.var(0), 5.0, 1e-8)
    assert isinstance(c, np.ndarray) and c.dtype == np.float32
    n = StratifiedNormalizer(3, Prior(exact.mean(0), exact.var(0), 5.0))
    assert n.transform(("P", "1"), x[0]).dtype == np.float32
    np.testing.assert_allclose(c, n.update_transform(("P", "1"), x), rtol=1e-4, atol=1e-4)
    mean, var = population_prior(x, strata)
    assert isinstance(mean, np.ndarray) and isinstance(var, np.ndarray)


def test_a_stratum_of_one_row_counts_in_the_population_prior():
    x = np.array([[4.0], [1.0], [2.0], [6.0]])
    mean, var = population_prior(x, np.array([0, 1, 1, 1]))
    np.testing.assert_allclose(mean, [(4.0 + 3.0) / 2])  # the strata's means: 4 and 3
    np.testing.assert_allclose(var, [(0.0 + 14 / 3) / 2])  # their variances: 0 and 14/3


def test_a_participants_earlier_session_becomes_the_prior_once_it_has_two_windows(tmp_path, rng):
    population = Prior(np.zeros(2), np.ones(2), 5.0)
    for rows, own in ((1, False), (2, True)):
        n = StratifiedNormalizer(2, population, participant_weight=1.0, state_dir=tmp_path / str(rows), signature="s")
        x = rng.normal(3, 1, (rows, 2))
        n.update(("P/x", "1"), x)
        n.save()
        fresh = StratifiedNormalizer(2, population, participant_weight=1.0, state_dir=tmp_path / str(rows), signature="s")
        prior = fresh.prior_for(("P/x", "2"))  # found in the state folder
        if own:
            assert prior.weight == 1.0
            np.testing.assert_allclose(prior.mean, x.mean(0))
            np.testing.assert_allclose(prior.var, x.var(0))
        else:
            assert prior is population


def test_runs_that_name_no_participant_start_from_the_population_not_from_each_other(tmp_path, rng):
    """A run without --participant is stratum ("anonymous", start time): two such runs may be two people, so the
    second must not take the first's statistics for its own history, in a new process or in the same one."""
    population = Prior(np.zeros(2), np.ones(2), 5.0)
    first = StratifiedNormalizer(2, population, participant_weight=1.0, state_dir=tmp_path, signature="s")
    first.update(("anonymous", "20261207T080000"), rng.normal(3, 1, (50, 2)))
    first.save()
    assert (tmp_path / "anonymous__20261207T080000.json").exists()  # still saved: `--session` may resume it
    later = StratifiedNormalizer(2, population, participant_weight=1.0, state_dir=tmp_path, signature="s")
    assert later.prior_for(("anonymous", "20261207T090000")) is population
    assert first.prior_for(("anonymous", "20261207T090000")) is population
    # A named participant in the same folder still starts from their earlier session.
    x = rng.normal(-2, 1, (50, 2))
    first.update(("anonymous-not", "1"), x)
    assert first.prior_for(("anonymous-not", "2")).mean == pytest.approx(x.mean(0))


def test_a_prior_of_no_weight_leaves_the_stratum_its_own_statistics(rng):
    n = StratifiedNormalizer(2, Prior(np.ones(2), np.ones(2), 0.0))
    mean, var = n.moments(("P", "1"))
    assert np.array_equal(mean, [0.0, 0.0]) and np.array_equal(var, [0.0, 0.0])  # empty, not 0/0


def test_warm_up_ends_when_the_stratum_outweighs_its_prior(rng):
    for prior, weight in ((Prior(np.zeros(2), np.ones(2), 3.0), 3), (None, 2)):
        n, key = StratifiedNormalizer(2, prior), ("P", "1")
        for k in range(weight):
            assert n.warming_up(key), k
            n.update(key, rng.normal(size=2))
        assert not n.warming_up(key)


def test_strata_save_the_stratum_they_leave_and_read_any_stratum(tmp_path, rng):
    local, saved = StratifiedNormalizer(2), StratifiedNormalizer(2, state_dir=tmp_path, signature="s")
    strata = Strata("A", "1")
    steps = [strata.track(local), strata.track(saved)]
    for step in steps:
        step(rng.normal(size=(3, 2)))
    strata.switch("B", "1")
    deadline = time.monotonic() + 5  # written by the background writer
    while not (tmp_path / "A__1.json").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [p.name for p in tmp_path.iterdir()] == ["A__1.json"]  # the stratum left, and only it
    assert strata.stats(("A", "1"), which=1).count == 3 and strata.stats(which=1).count == 0
    assert strata.stats(which=2) is None
