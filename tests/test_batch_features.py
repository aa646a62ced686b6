"""``bci-stream features`` over test-made datasets, its cache, and the multitaper and DEAP-statistics extractors."""

import importlib
import os
import sys

import numpy as np
import pytest
from scipy import signal, stats

from bci_stream import registry
from bci_stream.featurecache import dataset_features, feature_set
from bci_stream.filters import CausalFilter, FilterSpec
from bci_stream.montages import DEAP32, SEED62
from bci_stream.plugins.features import BANDS, deap_statistics, multitaper, multitaper_band_power
from bci_stream.registry import UnknownNameError
from bci_stream.windower import Windower
from conftest import cli_run
from test_datasets import SEED_LABELS, open_dataset, write_deap, write_seed, write_seed_labels


@pytest.fixture
def seed_dir(tmp_path, rng):
    folder = tmp_path / "Preprocessed_EEG"
    write_seed(folder, "1_20131027.mat", rng)
    write_seed(folder, "1_20131030.mat", rng)
    write_seed(folder, "2_20140404.mat", rng, initials="jl")
    write_seed_labels(folder)
    return folder


def test_features_command_on_a_seed_folder(seed_dir, tmp_path):
    out, cache = tmp_path / "seed.npz", tmp_path / "cache"
    r = cli_run("features", seed_dir, "--dataset", "seed", "--window", 1, "--hop", 0.5, "--cache-dir", cache, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "features: [" in r.stderr and "computed in" in r.stderr  # the progress bar, then the summary
    z = dict(np.load(out))
    ds = open_dataset("seed", seed_dir)
    classes, trials = ds.class_names, list(ds.trials())
    per_trial = [(len(t.data) - 200) // 100 + 1 for t in trials]  # 1-s windows, 0.5-s hop at 200 Hz
    assert z["X"].shape == (sum(per_trial), 62 * 5) and z["X"].dtype == np.float32
    assert list(z["classes"]) == list(classes) == ["negative", "neutral", "positive"]
    assert list(z["feature_names"]) == registry.load_plugin("features", "de").names(SEED62)
    assert list(z["feature_names"][:2]) == ["FP1:delta", "FP1:theta"]
    key = [(t.participant, t.session, t.trial, t.label) for t, k in zip(trials, per_trial) for _ in range(k)]
    assert list(zip(z["participant"], z["session"], z["trial"].tolist(), z["y"].tolist())) == key
    assert set(zip(z["participant"], z["session"])) == {("1", "1"), ("1", "2"), ("2", "1")}
    assert z["y"][0] == SEED_LABELS[0] + 1

    # The batch rows are what the live path computes: causal filter and windower fed chunk by chunk.
    t0 = trials[0]
    filt, win = CausalFilter.from_spec(FilterSpec(), 200.0, 62), Windower(200, 100, 62)
    live = []
    for a in range(0, len(t0.data), 37):
        w = win.push(filt(t0.data[a : a + 37]), np.zeros(len(t0.data[a : a + 37])))
        if len(w):
            live.append(registry.load_plugin("features", "de").compute(w.data, 200.0))
    np.testing.assert_allclose(np.concatenate(live), z["X"][: per_trial[0]], rtol=1e-5, atol=1e-5)

    again = cli_run("features", seed_dir, "--dataset", "seed", "--cache-dir", cache, "-o", tmp_path / "again.npz")
    assert again.returncode == 0 and "from the cache" in again.stderr
    assert (tmp_path / "again.npz").read_bytes() == out.read_bytes()
    h, cached = dataset_features(ds, tmp_path / "h.npz", hop=0.25, cache_dir=cache, quiet=True)
    assert not cached and np.load(h)["X"].shape[0] > z["X"].shape[0]
    st = (seed_dir / "2_20140404.mat").stat()
    os.utime(seed_dir / "2_20140404.mat", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert not dataset_features(ds, tmp_path / "t.npz", cache_dir=cache, quiet=True)[1]
    assert dataset_features(ds, tmp_path / "t.npz", cache_dir=cache, quiet=True)[1]
    # Participant 1 alone has an entry of its own, which a change to participant 2's file leaves valid.
    one, cached = dataset_features(ds, tmp_path / "one.npz", cache_dir=cache, quiet=True, participants=["1"])
    assert not cached and set(np.load(one)["participant"]) == {"1"}
    os.utime(seed_dir / "2_20140404.mat", ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    assert dataset_features(ds, tmp_path / "one.npz", cache_dir=cache, quiet=True, participants=["1"])[1]
    assert len(list(cache.glob("seed-de-*.npz"))) == 4 and not list(cache.glob("*.tmp"))


def test_features_command_errors_name_the_problem(seed_dir, tmp_path):
    r = cli_run("features", seed_dir, "--dataset", "seed", "--baseline", "subtract", "--no-cache", "-o", tmp_path / "x.npz")
    assert r.returncode == 2
    assert r.stderr == ("bci-stream features: error: baseline subtraction needs a recorded pre-trial baseline; "
                        "dataset 'seed' has none\n")
    r = cli_run("features", seed_dir, "--dataset", "seed", "--threshold", "4", "-o", tmp_path / "x.npz")
    assert r.returncode == 2 and r.stderr == "bci-stream features: error: --threshold is an option of dataset deap, not seed\n"
    r = cli_run("features", seed_dir, "--dataset", "synthetic", "-o", tmp_path / "x.npz")
    assert r.returncode == 2 and "invalid choice: 'synthetic'" in r.stderr
    with pytest.raises(UnknownNameError, match="unknown features plugin 'wavelets'"):
        dataset_features(open_dataset("seed", seed_dir), tmp_path / "x.npz", "wavelets", cache_dir=False)
    with pytest.raises(ValueError, match=r"dataset 'seed': no participant\(s\) \['3'\]"):
        dataset_features(open_dataset("seed", seed_dir), tmp_path / "x.npz", cache_dir=False, participants=["3"])
    assert not (tmp_path / "x.npz").exists()


def test_cache_keys_on_the_dataset_options_and_skips_generated_data(tmp_path, rng):
    write_deap(tmp_path / "DEAP", 1, [[2, 7, 1, 1], [8, 3, 1, 1]], rng, n_samples=128 * 5)
    cache = tmp_path / "cache"
    run = lambda **options: dataset_features(open_dataset("deap", tmp_path / "DEAP", **options),  # noqa: E731
                                             tmp_path / "d.npz", cache_dir=cache, quiet=True)[1]
    assert not run() and not run(target="arousal") and not run(threshold=2.5)
    assert run(target="valence", threshold=5.0)  # the defaults, given: the same data, the same entry
    assert np.load(tmp_path / "d.npz")["y"][0] == 0 and len(list(cache.glob("deap-de-*.npz"))) == 3

    synthetic = open_dataset("synthetic", seed=1, participants=2, sessions=1, trials=3, trial_seconds=2)
    fset = feature_set(synthetic, cache_dir=cache, quiet=True)
    assert fset.class_names == ("negative", "neutral", "positive") and set(fset.participant) == {"1", "2"}
    assert len(fset.y) == 2 * 3 * 3 and set(fset.trial.tolist()) == {1, 2, 3}
    assert sorted(p.name.split("-")[0] for p in cache.glob("*.npz")) == ["deap"] * 3  # nothing to key it on


def test_deap_baseline_subtraction_and_statistics(tmp_path, rng):
    _, raw = write_deap(tmp_path, 1, [[2, 2, 1, 1], [8, 7, 1, 1]], rng)
    deap = open_dataset("deap", tmp_path)
    out, _ = dataset_features(deap, tmp_path / "d.npz", "de", 1.0, 0.5, baseline="subtract", cache_dir=False,
                              quiet=True)
    z = np.load(out)
    assert z["X"].shape == (2 * 119, 32 * 5) and z["y"].tolist() == [0] * 119 + [1] * 119  # (7680 - 128) // 64 + 1
    de = registry.load_plugin("features", "de")
    x = CausalFilter.from_spec(FilterSpec(), 128.0, 32)(raw[1, :32].T.astype(np.float32))  # filtered as one trial
    cut = lambda a: np.stack([a[s : s + 128].T for s in range(0, len(a) - 127, 64)])  # noqa: E731
    want = de.compute(cut(x[384:]), 128.0) - de.compute(cut(x[:384]), 128.0).mean(axis=0)
    np.testing.assert_allclose(z["X"][119:], want, rtol=1e-4, atol=1e-4)
    dropped = np.load(dataset_features(deap, tmp_path / "k.npz", cache_dir=False, quiet=True)[0])
    assert dropped["X"].shape == z["X"].shape and not np.allclose(dropped["X"], z["X"])

    out, _ = dataset_features(deap, tmp_path / "s.npz", "deap99", 60.0, 60.0, cache_dir=False, quiet=True)
    s = np.load(out)
    assert s["X"].shape == (2, 32 * 99) and len(s["feature_names"]) == 32 * 99
    assert s["feature_names"][0] == "FP1:seg01:mean" and s["feature_names"][-1] == "O2:all:kurtosis"
    assert list(s["channels"]) == list(DEAP32)


# ------------------------------------------------------------------ extractors


def _multitaper_reference(x, srate):
    """Per window, straight from the definition: eigenvalue-weighted |FFT|^2 of DPSS-tapered data, one-sided."""
    t = x.shape[-1]
    tapers, ratios = signal.windows.dpss(t, 4.0, 7, return_ratios=True)
    f = np.fft.rfftfreq(t, 1 / srate)
    out = np.zeros(x.shape[:2] + (len(BANDS),))
    for i, j in np.ndindex(*x.shape[:2]):
        v = x[i, j].astype(np.float64) - x[i, j].mean()
        psd = sum(r * np.abs(np.fft.rfft(v * tp)) ** 2 for r, tp in zip(ratios, tapers)) / ratios.sum() / srate
        psd[1 : (t + 1) // 2] *= 2
        out[i, j] = [psd[(f >= lo) & (f < hi)].sum() * (f[1] - f[0]) for lo, hi in BANDS.values()]
    return out


@pytest.mark.parametrize("srate,n", [(200.0, 200), (128.0, 128), (1000.0, 1000), (200.0, 333)])
def test_multitaper_equals_its_definition(rng, srate, n):
    x = rng.standard_normal((3, 4, n)).astype(np.float32) * 10
    np.testing.assert_allclose(multitaper_band_power(x, srate), _multitaper_reference(x, srate), rtol=1e-4)
    batch = multitaper.compute(x, srate)
    assert batch.shape == (3, 20)
    np.testing.assert_array_equal(multitaper.compute(x[1:2], srate)[0], batch[1])


def test_multitaper_finds_the_power_of_a_slow_sine():
    t = np.arange(400) / 200.0  # 2 s: the tapers' +-2 Hz smoothing stays inside alpha
    x = (np.sqrt(2) * 5 * np.sin(2 * np.pi * 11 * t)).astype(np.float32)[None, None]
    p = multitaper_band_power(x, 200.0)[0, 0]
    assert np.argmax(p) == list(BANDS).index("alpha") and p[2] == pytest.approx(25, rel=0.02)
    names = multitaper.names(["C3", "C4"])
    y = np.concatenate([np.zeros_like(x), x], axis=1) + 1e-3
    assert names[int(np.argmax(multitaper.compute(y, 200.0)[0]))] == "C4:alpha"
    assert registry.load_plugin("features", "multitaper") is multitaper


@pytest.mark.parametrize("n", [7680, 133])
def test_deap_statistics_match_scipy(rng, n):
    x = rng.standard_normal((2, 3, n)).astype(np.float32) * 20 + 5
    got = deap_statistics.compute(x, 128.0).reshape(2, 3, 11, 9)
    parts = np.array_split(np.arange(n), 10) + [np.arange(n)]
    for k, idx in enumerate(parts):
        v = x[..., idx].astype(np.float64)
        want = [v.mean(-1), np.median(v, -1), v.max(-1), v.min(-1), v.std(-1), v.var(-1), np.ptp(v, -1),
                stats.skew(v, axis=-1), stats.kurtosis(v, axis=-1)]
        np.testing.assert_allclose(got[:, :, k], np.stack(want, -1), rtol=1e-5, atol=1e-4)
    names = deap_statistics.names(["C3", "C4", "Cz"])
    assert len(names) == 3 * 99 and names[99 + 9 * 10 + 4] == "C4:all:std"
    flat = deap_statistics.compute(np.ones((1, 1, 100), np.float32), 128.0)
    assert np.isfinite(flat).all() and registry.load_plugin("features", "deap99") is deap_statistics
    with pytest.raises(ValueError, match="10 segments"):
        deap_statistics.compute(np.zeros((1, 1, 9), np.float32), 128.0)


TOY_FEATURE = '''
import numpy as np
from bci_stream.feature import FeatureExtractor
SCALE = {scale}
logvar = FeatureExtractor("toylogvar", lambda w, srate: (SCALE * np.log(np.var(w, axis=2))).astype(np.float32),
                          ("logvar",), "log variance, scaled")
'''


def test_cache_misses_when_the_feature_code_changes(seed_dir, tmp_path, monkeypatch):
    """The key holds a digest of the code that computes the features, not only parameters and the release."""
    pkg = tmp_path / "pkg"
    (pkg / "toyfeat-0.1.dist-info").mkdir(parents=True)
    (pkg / "toyfeat-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: toyfeat\nVersion: 0.1\n")
    (pkg / "toyfeat-0.1.dist-info" / "entry_points.txt").write_text(
        "[bci_stream.plugins]\nfeatures.toylogvar = toyfeat:logvar\n")
    (pkg / "toyfeat.py").write_text(TOY_FEATURE.format(scale=1.0))
    monkeypatch.syspath_prepend(str(pkg))
    ds, cache = open_dataset("seed", seed_dir), tmp_path / "cache"
    try:
        first, cached = dataset_features(ds, tmp_path / "a.npz", "toylogvar", cache_dir=cache, quiet=True)
        assert not cached
        assert dataset_features(ds, tmp_path / "b.npz", "toylogvar", cache_dir=cache, quiet=True)[1]
        assert not dataset_features(ds, tmp_path / "c.npz", "toylogvar", hop=0.25, cache_dir=cache, quiet=True)[1]
        (pkg / "toyfeat.py").write_text(TOY_FEATURE.format(scale=2.0))  # same parameters, same release
        importlib.reload(sys.modules["toyfeat"])
        second, cached = dataset_features(ds, tmp_path / "d.npz", "toylogvar", cache_dir=cache, quiet=True)
        assert not cached
        np.testing.assert_allclose(np.load(second)["X"], 2 * np.load(first)["X"], rtol=1e-5)
    finally:
        sys.modules.pop("toyfeat", None)


def test_cache_key_covers_the_code_a_dataset_reads_through():
    """A dataset's reader uses shared code (BIDS and recordings cut trials in datasets/events.py and read files with
    devices/files.py): an edit there must miss the cache too."""
    import bci_stream.datasets.bids
    import bci_stream.datasets.events
    import bci_stream.devices.files
    from bci_stream.featurecache import _used

    modules: set = set()
    _used(bci_stream.datasets.bids, modules)
    assert {bci_stream.datasets.events, bci_stream.devices.files} <= modules
