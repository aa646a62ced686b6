import numpy as np
import pytest
from scipy import signal

from bci_stream.filters import CausalFilter, FilterSpec, design_sos


@pytest.mark.parametrize("srate", [128.0, 200.0, 1000.0])
def test_chunked_filter_equals_sosfilt_on_whole_signal(rng, srate):
    x = rng.standard_normal((3000, 4)).astype(np.float32) * 20
    sos = design_sos(FilterSpec(), srate)
    whole = signal.sosfilt(sos, x.astype(np.float64), axis=0)
    f = CausalFilter(sos, 4)
    sizes = [1, 7, 1000, 13, 500]
    parts, i, k = [], 0, 0
    while i < len(x):
        parts.append(f(x[i : i + sizes[k % len(sizes)]]))
        i += sizes[k % len(sizes)]
        k += 1
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-5, atol=1e-4)


def test_nan_chunk_marks_itself_but_not_later_samples(rng):
    f = CausalFilter.from_spec(FilterSpec(), 200.0, 2)
    f(rng.standard_normal((400, 2)).astype(np.float32))
    bad = np.full((20, 2), np.nan, np.float32)
    assert np.isnan(f(bad)).all()
    after = f(rng.standard_normal((400, 2)).astype(np.float32))
    assert np.isfinite(after).all()


def test_band_edges_are_checked():
    with pytest.raises(ValueError, match="low edge"):
        design_sos(FilterSpec(bandpass=(0.0, 40.0)), 200.0)
    # A high edge above Nyquist becomes a high-pass, the notch above Nyquist is skipped.
    assert design_sos(FilterSpec(bandpass=(1.0, 50.0), notch=50.0), 90.0).shape[0] == 2
    assert CausalFilter.from_spec(FilterSpec(bandpass=None, notch=None), 100.0, 3).sos is None
