"""The population-referenced model: what it reads, how it is pooled with the stratified model, and for whom."""

import dataclasses

import numpy as np
import pytest
import torch

from bci_stream.batch import FeatureSet
from bci_stream.model import model_class
from bci_stream.pipeline import Pipeline
from bci_stream.population import log_linear_pool, relative_profile
from bci_stream.stratified import Prior, StratifiedNormalizer
from bci_stream.stream import StreamInfo
from bci_stream.training import TrainSettings, train_bundle

CHANNELS, BANDS = ("C3", "C4", "O1"), 5


def _profile_reference(X, per_channel):
    out = np.empty(X.shape)
    for i, row in enumerate(X):
        for c in range(len(row) // per_channel):
            part = row[c * per_channel : (c + 1) * per_channel]
            out[i, c * per_channel : (c + 1) * per_channel] = part - sum(part) / per_channel
    return out


def test_the_relative_profile_takes_each_channels_mean_band_away(rng):
    X = rng.normal(0, 3, (7, 3 * BANDS))
    np.testing.assert_allclose(relative_profile(X, BANDS), _profile_reference(X, BANDS), atol=1e-12)
    gains = np.repeat(rng.normal(0, 2, 3), BANDS)  # a gain per channel is one log offset over its bands
    np.testing.assert_allclose(relative_profile(X + gains, BANDS), relative_profile(X, BANDS), atol=1e-12)
    band = np.tile(np.arange(BANDS, dtype=float), 3)  # an offset per band is not a gain: it stays
    assert not np.allclose(relative_profile(X + band, BANDS), relative_profile(X, BANDS))


def test_pooling_is_log_linear_with_the_population_weighted_by_its_share():
    live, population = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.3, 0.6])
    for share in (0.0, 0.25, 0.9, 1.0):
        expected = live ** (1 - share) * population**share
        np.testing.assert_allclose(log_linear_pool(live, population, share), expected / expected.sum(), rtol=1e-12)
    # a class one model rules out entirely can still win on the other's word
    assert log_linear_pool(np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.9).argmax() == 1


def test_the_population_share_falls_as_a_new_stratum_learns_and_is_nothing_for_a_returning_person(rng, tmp_path):
    prior = Prior(np.zeros(2), np.ones(2), 10.0)
    n = StratifiedNormalizer(2, prior, state_dir=tmp_path, participant_weight=5.0)
    new = ("P", "1")
    assert n.population_share(new) == 1.0
    for k in range(1, 31):
        n.step(new, rng.standard_normal(2))
        assert n.population_share(new) == pytest.approx(10 / (10 + k), rel=1e-12)
    n.save(new)
    later = StratifiedNormalizer(2, prior, state_dir=tmp_path, participant_weight=5.0)
    assert later.population_share(("P", "2")) == 0.0  # starts from session 1, not from the population
    assert later.population_share(("Q", "1")) == 1.0
    assert StratifiedNormalizer(2).population_share(new) == 0.0  # no prior at all


def _people(rng, n_people=6, per_class=40, gain=4.0):
    """Log band powers of people whose channels differ in gain by up to ``gain`` log units, where each class raises
    one band on every channel: only the relative profile tells the classes apart across people."""
    rows, y, part, trial = [], [], [], []
    pattern = np.zeros((3, len(CHANNELS), BANDS))
    pattern[0, :, 1], pattern[1, :, 2], pattern[2, :, 3] = 1.5, 1.5, 1.5
    for p in range(n_people):
        gains = rng.normal(0, gain, (len(CHANNELS), 1))
        for t, c in enumerate(np.tile([0, 1, 2], 2)):
            rows.append(gains + pattern[c] + rng.normal(0, 0.5, (per_class, len(CHANNELS), BANDS)))
            y += [c] * per_class
            part += [str(p + 1)] * per_class
            trial += [t] * per_class
    X = np.concatenate(rows).reshape(-1, len(CHANNELS) * BANDS).astype(np.float32)
    n = len(y)
    return FeatureSet(X=X, y=np.array(y), participant=np.array(part), session=np.full(n, "1"), trial=np.array(trial),
                      class_names=("a", "b", "c"), channels=CHANNELS, srate=100.0, features="de", window=1.0, hop=1.0)


@pytest.fixture(scope="module")
def bundle():
    fset = _people(np.random.default_rng(3))
    # Plain statistics: class-aware ones learn from the pooled labels, so the stratified model alone would not be the
    # one inside the pool that the test below rebuilds.
    return train_bundle(fset, "t", TrainSettings(epochs=60, population=True, class_aware=False, quiet=True), holdout=0,
                        hop=1.0)


def _population_probs(bundle, X):
    """The stored population model run by hand: relative profile, z-scored by the stored statistics."""
    d = bundle.population
    net = model_class(d["architecture"])(**d["arch_kwargs"])
    net.load_state_dict(d["state_dict"])
    z = (_profile_reference(X.astype(np.float64), d["per_channel"]) - np.asarray(d["mean"])) / np.sqrt(
        np.asarray(d["var"]) + 1e-6)
    with torch.inference_mode():
        return torch.softmax(net.eval()(torch.as_tensor(z, dtype=torch.float32)), -1).numpy()


def test_training_gives_a_population_model_that_decodes_a_new_person_whatever_their_gains(bundle):
    assert bundle.population and bundle.report["population_model"] is True
    new = _people(np.random.default_rng(11), n_people=1, gain=8.0)  # gains beyond anything in training
    assert (_population_probs(bundle, new.X).argmax(1) == new.y).mean() > 0.9


def test_a_new_persons_labels_pool_both_models_by_the_population_share_and_a_returning_persons_do_not(bundle, tmp_path):
    new = _people(np.random.default_rng(12), n_people=1)
    X = new.X[np.argsort(new.trial, kind="stable")]
    info = StreamInfo("features", list(CHANNELS), 100.0, "microvolts")
    W = bundle.normalization["prior_seconds"] / 1.0
    alone = dataclasses.replace(bundle, population={})
    live = Pipeline(info, alone, "N", "1", hop=1.0).classify(X)
    both = Pipeline(info, bundle, "N", "1", hop=1.0, state_dir=tmp_path)
    got = both.classify(X)
    both.close()
    share = W / (W + np.arange(1, len(X) + 1))[:, None]
    expected = live ** (1 - share) * _population_probs(bundle, X) ** share
    np.testing.assert_allclose(got, expected / expected.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    assert not np.allclose(got, live, atol=1e-3)  # the population model did speak
    # session 2 starts from session 1's statistics: the stratified model alone
    returning = Pipeline(info, bundle, "N", "2", hop=1.0, state_dir=tmp_path).classify(X)
    state2 = tmp_path / "alone"
    first = Pipeline(info, alone, "N", "1", hop=1.0, state_dir=state2)
    first.classify(X)
    first.close()
    np.testing.assert_allclose(returning, Pipeline(info, alone, "N", "2", hop=1.0, state_dir=state2).classify(X),
                               rtol=1e-6)


@pytest.mark.parametrize("change", [{"norm": "batch", "population": True}, {}])
def test_no_population_model_without_stratified_inputs_or_unless_asked(change):
    fset = _people(np.random.default_rng(4), n_people=3, per_class=5)
    bundle = train_bundle(fset, "t", TrainSettings(epochs=1, quiet=True, **change), holdout=0, hop=1.0)
    assert bundle.population == {} and bundle.population_decoder() is None


def test_no_population_model_for_features_that_are_not_log_powers():
    fset = dataclasses.replace(_people(np.random.default_rng(4), n_people=3, per_class=5), features="deap99")
    fset = dataclasses.replace(fset, X=np.repeat(fset.X, 99 * 3 // 15 + 1, axis=1)[:, : 3 * 99])
    assert train_bundle(fset, "t", TrainSettings(epochs=1, population=True, quiet=True), holdout=0,
                        hop=1.0).population == {}


def test_the_population_model_survives_saving(bundle, tmp_path):
    from bci_stream.bundle import ModelBundle

    X = _people(np.random.default_rng(5), n_people=1, per_class=5).X
    loaded = ModelBundle.load(bundle.save(tmp_path / "m.pt"))
    np.testing.assert_allclose(loaded.population_decoder()(X), _population_probs(bundle, X), rtol=1e-5, atol=1e-7)
