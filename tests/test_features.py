import numpy as np
import pytest
from scipy import signal

from bci_stream import registry
from bci_stream.plugins.features import BANDS, band_power, differential_entropy, welch_band_power


@pytest.mark.parametrize("srate,seconds", [(128.0, 1.0), (200.0, 1.0), (1000.0, 1.0), (200.0, 4.0)])
def test_band_power_equals_scipy_welch(rng, srate, seconds):
    n = round(srate * seconds)
    x = rng.standard_normal((3, 4, n)).astype(np.float32) * 10
    got = welch_band_power(x, srate)
    nperseg = int(min(n // 2, 2 * round(srate)))
    f, psd = signal.welch(x.astype(np.float64), srate, nperseg=nperseg, noverlap=nperseg // 2, axis=-1)
    df = f[1] - f[0]
    want = np.stack([psd[..., (f >= lo) & (f < hi)].sum(-1) * df for lo, hi in BANDS.values()], axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_sine_power_lands_in_its_band():
    srate, t = 200.0, np.arange(200) / 200.0
    x = (np.sqrt(2) * 5 * np.sin(2 * np.pi * 10 * t)).astype(np.float32)[None, None]  # 25 uV^2 at 10 Hz
    p = welch_band_power(x, srate)[0, 0]
    assert np.argmax(p) == list(BANDS).index("alpha")
    assert p[2] == pytest.approx(25, rel=0.1)


def test_one_window_equals_the_batch(rng):
    x = rng.standard_normal((16, 62, 200)).astype(np.float32)
    for f in (differential_entropy, band_power):
        batch = f.compute(x, 200.0)
        assert batch.shape == (16, 62 * 5)
        for i in (0, 7, 15):
            np.testing.assert_array_equal(f.compute(x[i : i + 1], 200.0)[0], batch[i])


def test_names_follow_output_order(rng):
    x = np.zeros((1, 2, 200), np.float32)
    x[0, 1] = np.sin(2 * np.pi * 40 * np.arange(200) / 200)  # gamma on the second channel only
    out = band_power.compute(x + 1e-3 * rng.standard_normal(x.shape).astype(np.float32), 200.0)[0]
    names = band_power.names(["C3", "C4"])
    assert names[int(np.argmax(out))] == "C4:gamma"
    assert registry.load_plugin("features", "de") is differential_entropy


def test_too_short_window_names_the_bands():
    with pytest.raises(ValueError, match="delta"):
        welch_band_power(np.zeros((1, 1, 20), np.float32), 200.0)
