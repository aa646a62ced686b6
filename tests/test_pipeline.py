import logging

import numpy as np
import pytest

from bci_stream.bundle import default_bundle_for
from bci_stream.channels import MontageError
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.pipeline import Pipeline
from bci_stream.stream import Chunk, StreamInfo


def _stream(seconds=6.0, layout="seed62", **kw):
    g = SyntheticEEG(layout, participant=2, session=1, seed=5, **kw)
    data, _ = g.generate(round(seconds * g.srate))
    ts = 1000.0 + (np.arange(len(data)) + 1) / g.srate
    return g.info, data, ts


def _run(info, data, ts, size, **kw):
    pipe = Pipeline(info, default_bundle_for(info), "P2", "1", **kw)
    preds = []
    for i in range(0, len(data), size):
        preds += pipe.process(Chunk(data[i : i + size], ts[i : i + size]))
    return pipe, preds


def test_predictions_identical_whatever_the_chunk_size():
    info, data, ts = _stream()
    runs = {size: _run(info, data, ts, size)[1] for size in (1, 7, 1000)}
    n = (len(data) - 200) // 20 + 1  # 1 s windows, 100 ms hop at 200 Hz
    for preds in runs.values():
        assert len(preds) == n
    ref = np.stack([p.probabilities for p in runs[1000]])
    for size in (1, 7):
        np.testing.assert_allclose(np.stack([p.probabilities for p in runs[size]]), ref, rtol=1e-5, atol=1e-6)
        assert [p.timestamp for p in runs[size]] == [p.timestamp for p in runs[1000]]
        # and what each label states of its stratum: warming up, and its age and reliability once it is learned
        for field in ("warming_up", "reliability", "stratum_s"):
            assert [getattr(p, field) for p in runs[size]] == [getattr(p, field) for p in runs[1000]], field
    ages = [p.stratum_s for p in runs[1]]
    np.testing.assert_allclose(np.diff(ages), 0.1)  # one more 0.1-s window learned with each label


def test_prediction_describes_its_window():
    info, data, ts = _stream(3.0)
    pipe, preds = _run(info, data, ts, 50)
    p = preds[0]
    assert p.window_index == 200 and p.timestamp == ts[199]
    assert p.label in p.class_names and p.probabilities.sum() == pytest.approx(1, abs=1e-5)
    assert (p.participant, p.session) == ("P2", "1") and p.warming_up
    assert np.all(np.diff([q.timestamp for q in preds]) == pytest.approx(0.1))


def test_nan_chunk_is_counted_not_classified(caplog):
    info, data, ts = _stream(6.0)
    data = data.copy()
    data[600:610] = np.nan  # 50 ms of dropout at 3 s
    with caplog.at_level(logging.INFO, "bci_stream.pipeline"):
        pipe, preds = _run(info, data, ts, 20)
    n_windows = (len(data) - 200) // 20 + 1
    bad = {e for e in range(200, len(data) + 1, 20) if e - 200 < 610 and e > 600}
    assert pipe.n_windows == n_windows and pipe.n_rejected == len(bad)
    assert len(preds) == n_windows - len(bad)
    assert not bad & {p.window_index for p in preds}
    assert max(p.window_index for p in preds) == n_windows * 20 + 180  # decoding resumed after the gap
    # Said once when withholding starts, naming the channels, and once when classifying resumes; not per window.
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "windows not classified from here on: channel(s) FP1, FPZ" in warned[0]
    assert sum("classifying again" in r.getMessage() for r in caplog.records) == 1



def test_too_many_missing_channels_stop_with_clear_error():
    info, data, ts = _stream(1.0)
    bundle = default_bundle_for(info)
    gone = set(info.channel_names[:16])  # 16 of 62: above the 25 % that may be interpolated
    partial = StreamInfo("cap-without-16", [c for c in info.channel_names if c not in gone], 200.0)
    with pytest.raises(MontageError, match=r"'cap-without-16' lacks 16 of model seed62's 62 channels \(26%.*FP1, FPZ"):
        Pipeline(partial, bundle)


def test_volts_are_converted_to_the_model_unit():
    info, data, ts = _stream(2.0)
    volts = StreamInfo(info.name, info.channel_names, info.srate, unit="volts")
    a = _run(info, data, ts, 100)[1]
    b = Pipeline(volts, default_bundle_for(info), "P2", "1").process(Chunk(data * 1e-6, ts))
    np.testing.assert_allclose([p.probabilities for p in b], [p.probabilities for p in a], atol=1e-4)


def test_restarted_session_resumes_statistics(tmp_path):
    info, data, ts = _stream(8.0)
    half = len(data) // 2
    first, _ = _run(info, data[:half], ts[:half], 100, state_dir=tmp_path / "b")
    first.close()
    second = Pipeline(info, default_bundle_for(info), "P2", "1", state_dir=tmp_path / "b")
    # The restarted pipeline's windower starts afresh; its statistics continue from the saved ones.
    s = second.strata.stats()
    assert s.count == first.strata.stats().count > 0
    np.testing.assert_allclose(s.mean, first.strata.stats().mean)


def test_a_feature_without_a_floor_never_reaches_the_model_as_infinity(caplog):
    """A feature extractor without a floor (log of a flat channel's zero power) gives -inf: those windows are
    withheld like NaN ones, naming the channel, so no infinity reaches the statistics or the model."""
    from bci_stream.feature import FeatureExtractor

    info, data, ts = _stream(3.0)
    data = data.copy()
    data[:, 5] = 0.0
    pipe = Pipeline(info, default_bundle_for(info), "P2", "1", filters=None)
    de = pipe.extractor
    with np.errstate(divide="ignore"):
        pipe.extractor = FeatureExtractor("nofloor", lambda w, srate: np.where(
            np.var(w, axis=2, keepdims=True) == 0, -np.inf, de.compute(w, srate).reshape(len(w), w.shape[1], -1)
        ).reshape(len(w), -1).astype(np.float32), de.per_channel, "DE, -inf for a flat channel")
        with caplog.at_level(logging.WARNING, "bci_stream.pipeline"):
            preds = pipe.process(Chunk(data, ts))
    assert not preds and pipe.n_rejected == pipe.n_windows > 0
    assert "channel(s) F7 non-finite" in caplog.text
    assert pipe.strata.stats().count == 0  # nothing reached the statistics
