import numpy as np
import pytest

from bci_stream.batch import build_features
from bci_stream.datasets.synthetic import synthetic_trials
from bci_stream.devices.synthetic import LAYOUTS, SyntheticEEG, SyntheticSource
from bci_stream.montages import DEAP32, SEED62
from bci_stream.sources import SourceError, open_source
from bci_stream.stratified import batch_zscore
from bci_stream.training import TrainSettings, fit, predict, stratum_ids


def test_layouts_have_dataset_channel_orders():
    assert SyntheticEEG("seed62").info.channel_names == tuple(SEED62)
    assert SyntheticEEG("deap32").info.srate == 128.0 and SyntheticEEG("deap32").info.channel_names == tuple(DEAP32)
    assert SyntheticEEG("seed62", srate=1000).info.srate == 1000.0


def test_same_seed_same_bytes_whatever_the_block_size():
    a, ca = SyntheticEEG("seed62", participant=3, session=2, seed=7).generate(2000)
    g = SyntheticEEG("seed62", participant=3, session=2, seed=7)
    parts = [g.next_block(k)[0] for k in (1, 7, 992, 1000)]
    np.testing.assert_array_equal(a, np.concatenate(parts))
    b, _ = SyntheticEEG("seed62", participant=3, session=2, seed=8).generate(2000)
    assert not np.array_equal(a, b)
    assert a.dtype == np.float32 and 5 < a.std() < 100  # microvolt scale


def test_participants_differ_more_than_emotions():
    """Between-person spread of band power exceeds the emotion effect: the reason for stratified normalization."""
    from bci_stream.plugins.features import differential_entropy

    means = {}
    for p in (1, 2):
        g = SyntheticEEG("seed62", participant=p, session=1, trial_seconds=10, blinks=False, muscle=False)
        x, cls = g.generate(200 * 60)
        w = x[: len(x) // 200 * 200].reshape(-1, 200, 62).transpose(0, 2, 1)
        f = differential_entropy.compute(w, 200.0)
        lab = cls[199::200]
        means[p] = np.stack([f[lab == k].mean(0) for k in range(3)])
    person = np.abs(means[1] - means[2]).mean()
    emotion = np.abs(means[1][2] - means[1][0]).mean()
    assert person > emotion > 0.05


def test_cross_participant_model_needs_per_session_normalization():
    trials = synthetic_trials("seed62", range(1, 7), (1,), trials=6, trial_seconds=10, blinks=False, muscle=False)
    fset = build_features(trials, 36, LAYOUTS["seed62"].classes, "de", 1.0, 1.0, quiet=True)
    test = np.isin(fset.participant, ["1", "2"])
    strata = stratum_ids(fset.participant, fset.session)
    strat = batch_zscore(fset.X, strata, 1e-8)
    glob = (fset.X - fset.X[~test].mean(0)) / fset.X[~test].std(0)
    acc = {}
    for name, X in (("stratified", strat), ("global", glob)):
        m, _ = fit(X[~test], fset.y[~test], strata[~test], 3, TrainSettings(norm="none", epochs=60, quiet=True))
        acc[name] = float((predict(m, X[test], strata[test]) == fset.y[test]).mean())
    assert acc["stratified"] > 0.8
    assert acc["stratified"] - acc["global"] > 0.2, acc


def test_source_spec_options_and_errors():
    src = open_source("synthetic:deap32?participant=4&session=2&seed=3&realtime=0&line=60")
    assert isinstance(src, SyntheticSource) and not src.realtime
    assert src.gen.participant == "4" and src.gen.line_noise == 60.0
    chunk = next(src.chunks())
    assert chunk.data.shape[1] == 32 and np.all(np.diff(chunk.timestamps) > 0)
    with pytest.raises(SourceError, match="unknown synthetic layout 'seed63'"):
        open_source("synthetic:seed63")
    with pytest.raises(SourceError, match=r"unknown option\(s\) \['colour'\]"):
        open_source("synthetic:seed62?colour=red")


def test_realtime_pacing_stamps_samples_when_they_exist():
    import pylsl

    src = SyntheticSource("seed62", realtime=True)
    got = []
    for chunk in src.chunks():
        got.append((pylsl.local_clock(), chunk.timestamps[-1]))
        if len(got) == 25:
            break
    lag = np.array([now - ts for now, ts in got])
    assert np.all(lag > -1e-3) and np.median(lag) < 0.005  # released when its last sample exists
