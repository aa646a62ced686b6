"""A new person's level leaves the population prior fast across the directions the classes do not separate, and
slowly along them: the same rule live, in the training's live pass, and as the bundle stores it."""

import numpy as np
import pytest
import torch

from bci_stream.batch import FeatureSet
from bci_stream.pipeline import Pipeline
from bci_stream.stratified import Level, Prior, StratifiedNormalizer, causal_zscore
from bci_stream.stream import StreamInfo
from bci_stream.training import LiveOrder, TrainSettings, stratum_ids, train_bundle

EPS = 1e-8


def _expected_mean(rows, prior_mean, prior_var, weight, direction, fast):
    """The pooled mean written out for a basis of one unit ``direction`` (in z units of the prior)."""
    c = len(rows)
    sd = np.sqrt(prior_var + EPS)
    z = (np.mean(rows, axis=0) - prior_mean) / sd
    along = np.dot(z, direction) * direction
    return prior_mean + sd * ((z - along) * c / (c + fast) + along * c / (c + weight))


def test_the_mean_leaves_the_prior_fast_across_the_class_direction_and_slowly_along_it(rng):
    prior_mean, prior_var = np.array([1.0, -2.0, 0.5]), np.array([4.0, 1.0, 0.25])
    direction = np.array([1.0, 2.0, -2.0]) / 3.0
    n = StratifiedNormalizer(3, Prior(prior_mean, prior_var, 40.0, Level(direction[None], 2.0)))
    plain = StratifiedNormalizer(3, Prior(prior_mean, prior_var, 40.0))
    rows = rng.normal([3.0, 0.0, 1.0], 1.0, (25, 3))
    for k in range(1, len(rows) + 1):
        n.update(("P", "1"), rows[k - 1])
        plain.update(("P", "1"), rows[k - 1])
        mean, var = n.moments(("P", "1"))
        np.testing.assert_allclose(mean, _expected_mean(rows[:k], prior_mean, prior_var, 40.0, direction, 2.0),
                                   rtol=1e-10)
        np.testing.assert_allclose(var, plain.moments(("P", "1"))[1], rtol=1e-12)  # the variance pools as before
    # An offset along the class direction only stays with the prior as it would without a level.
    along = prior_mean + 0.8 * np.sqrt(prior_var) * direction
    m = StratifiedNormalizer(3, Prior(prior_mean, prior_var, 40.0, Level(direction[None], 2.0)))
    m.update(("P", "1"), np.tile(along, (10, 1)))
    np.testing.assert_allclose(m.moments(("P", "1"))[0], prior_mean + (along - prior_mean) * 10 / 50, rtol=1e-6)


def test_the_basis_spans_the_differences_of_the_class_means(rng):
    means = rng.normal(size=(3, 6))
    level = Level.from_class_means(means, 5.0)
    assert level.basis.shape == (2, 6)
    np.testing.assert_allclose(level.basis @ level.basis.T, np.eye(2), atol=1e-12)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        d = means[a] - means[b]
        np.testing.assert_allclose(level.basis.T @ (level.basis @ d), d, atol=1e-12)  # in the span
    assert Level.from_class_means(np.tile(means[:1], (3, 1)), 5.0).basis.shape == (0, 6)  # classes alike: nothing


def test_the_training_pass_and_the_live_normalizer_agree_with_a_level(rng):
    x = rng.normal(3, 2, (70, 5))
    start = torch.tensor([0] * 30 + [30] * 40)
    mean, var = rng.normal(size=5), rng.uniform(0.5, 2, 5)
    level = Level.from_class_means(rng.normal(size=(3, 5)), 4.0)
    z = causal_zscore(torch.tensor(x), start, torch.tensor(mean), torch.tensor(var), 12.0, EPS, level)
    live = StratifiedNormalizer(5, Prior(mean, var, 12.0, level))
    expected = np.concatenate([live.update_transform(("P", "1"), x[:30]), live.update_transform(("Q", "1"), x[30:])])
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(expected, causal_zscore(x, start, mean, var, 12.0, EPS), atol=1e-3)  # it matters


def _features(rng, participants=4, sessions=2, trials=4, windows=12, channels=("C3", "C4", "O1")):
    n = participants * sessions * trials * windows
    idx = np.indices((participants, sessions, trials, windows)).reshape(4, -1)
    y = idx[2] % 2
    X = rng.normal(size=(n, len(channels) * 5)) + 2.0 * y[:, None] * np.linspace(-1, 1, len(channels) * 5)
    X += rng.normal(0, 3, (participants, 1, len(channels) * 5))[idx[0], 0]  # each person's own level
    return FeatureSet(X=X, y=y, participant=(idx[0] + 1).astype(str), session=(idx[1] + 1).astype(str),
                      class_names=("a", "b"), channels=channels, srate=200.0, features="de", window=1.0, hop=0.5,
                      trial=idx[2] + 1)


def test_the_live_pass_gives_the_level_to_a_new_persons_first_session_and_to_their_later_ones(rng):
    fset = _features(rng)
    strata = stratum_ids(fset.participant, fset.session)
    level = Level.from_class_means(rng.normal(size=(2, fset.X.shape[1])), 3.0)
    live = LiveOrder(fset, strata, 6.0, 20.0, 100.0, level)
    order = [int(strata[(fset.participant == "2") & (fset.session == s)][0]) for s in ("1", "2")]
    rows, z, _ = live.batch(np.random.default_rng(1), order)
    others = fset.participant != "2"
    sessions = [fset.X[others & (strata == k)] for k in np.unique(strata[others])]
    prior = Prior(np.mean([x.mean(0) for x in sessions], 0), np.mean([x.var(0) for x in sessions], 0), 6.0, level)
    normalizer = StratifiedNormalizer(fset.X.shape[1], prior, participant_weight=20.0)
    half = len(rows) // 2
    expected = np.concatenate([normalizer.update_transform(("2", "1"), fset.X[rows[:half]]),
                               normalizer.update_transform(("2", "2"), fset.X[rows[half:]])])
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-4, atol=1e-4)
    # A returning person starts from their own earlier sessions, and their level in this one leaves it as fast.
    assert normalizer.prior_in_use(("2", "2")).level is level


def test_a_trained_bundle_keeps_the_class_direction_and_the_live_path_uses_it(rng):
    fset = _features(rng)
    bundle = train_bundle(fset, "t", TrainSettings(epochs=2, quiet=True), holdout=0, hop=0.5)
    norm = bundle.normalization
    assert norm["level_seconds"] == 3.0
    # Two classes: one direction, that of the difference of their mean stratum z-scores, computed here by hand.
    strata = stratum_ids(fset.participant, fset.session)
    z = np.empty_like(fset.X)
    for s in np.unique(strata):
        rows = strata == s
        z[rows] = (fset.X[rows] - fset.X[rows].mean(0)) / np.sqrt(fset.X[rows].var(0) + EPS)
    d = z[fset.y == 1].mean(0) - z[fset.y == 0].mean(0)
    basis = np.asarray(norm["level_basis"])
    assert basis.shape == (1, fset.X.shape[1])
    assert abs(np.dot(basis[0], d)) == pytest.approx(np.linalg.norm(d), rel=1e-5)
    pipe = Pipeline(StreamInfo("t", list(fset.channels), 200.0, "microvolts"), bundle, "P", "1", hop=0.5)
    prior = pipe.normalize_inputs.normalizer.prior
    assert prior.level is not None and prior.level.fast == pytest.approx(3.0 / 0.5)
    np.testing.assert_allclose(prior.level.basis, basis)
    pipe.close()
    for settings in (TrainSettings(epochs=1, quiet=True, level_seconds=None),
                     TrainSettings(epochs=1, quiet=True, norm="batch")):
        assert "level_basis" not in train_bundle(fset, "t", settings, holdout=0, hop=0.5).normalization


def test_train_keeps_the_level_unless_told_not_to(tmp_path):
    from bci_stream.bundle import ModelBundle
    from conftest import cli_run

    common = ("train", "--dataset", "synthetic", "--participants", "3", "--sessions", "1", "--trials", "3",
              "--epochs", "1", "-q")
    for flag, seconds in (((), 3.0), (("--level-seconds", "0"), None), (("--level-seconds", "7.5"), 7.5)):
        out = tmp_path / f"m{len(flag)}{seconds}.pt"
        r = cli_run(*common, *flag, "-o", out)
        assert r.returncode == 0, r.stderr
        norm = ModelBundle.load(out).normalization
        assert norm.get("level_seconds") == seconds and ("level_basis" in norm) == (seconds is not None)
    r = cli_run(*common, "--level-seconds", "soon", "-o", tmp_path / "x.pt")
    assert r.returncode == 2 and "argument --level-seconds: expected seconds >= 0, got 'soon'" in r.stderr
