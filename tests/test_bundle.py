import numpy as np
import pytest
import torch

from bci_stream.bundle import BundleError, ModelBundle, bundled_paths, default_bundle_for
from bci_stream.channels import MontageError
from bci_stream.datasets.synthetic import synthetic_trials
from bci_stream.montages import DEAP32, SEED62
from bci_stream.pipeline import Pipeline
from bci_stream.stream import Chunk, StreamInfo
from conftest import Keep

#: Online accuracy the shipped bundles reach on unseen generated people, as measured, less a margin.
BUNDLE_FLOOR = {"seed62": 0.65, "deap32": 0.75, "brainflow16": 0.65}  # measured 0.750, 0.890, 0.754
BRAINFLOW16 = ["Fz", "C3", "Cz", "C4", "Pz", "PO7", "Oz", "PO8", "F5", "F7", "F3", "F1", "F2", "F4", "F6", "F8"]


def _bundle(channels=("C3", "C4")):
    from bci_stream.plugins.models import FeatureNet

    torch.manual_seed(0)
    kwargs = {"n_features": len(channels) * 5, "n_classes": 2, "hidden": [8], "norm": "none"}
    return ModelBundle("featurenet", kwargs, FeatureNet(**kwargs).state_dict(),
                       "de", list(channels), 200.0, "microvolts", ["low", "high"], 1.0, 0.1,
                       report={"note": "test"}, name="tiny")


def test_save_load_round_trip(tmp_path):
    b = _bundle()
    path = b.save(tmp_path / "m.pt")
    back = ModelBundle.load(path)
    assert back.class_names == ["low", "high"] and back.report == {"note": "test"} and back.channels == ["C3", "C4"]
    x = torch.randn(3, 10)
    assert torch.equal(b.build_model()(x), back.build_model()(x))
    assert not list(tmp_path.glob("*.tmp"))


def test_a_bundle_holding_numpy_values_saves_as_one_that_loads(tmp_path):
    """Channel names read from an .npz are numpy strings, which a weights-only load refuses."""
    b = _bundle(tuple(np.asarray(["C3", "C4"])))
    b.srate, b.report = np.float64(200.0), {"accuracy": np.float32(0.5), "curve": np.arange(2)}
    back = ModelBundle.load(b.save(tmp_path / "m.pt"))
    assert back.channels == ["C3", "C4"] and all(type(c) is str for c in back.channels)
    assert type(back.srate) is float and back.report == {"accuracy": 0.5, "curve": [0, 1]}


def test_channels_map_by_label_in_any_order_and_case():
    b = _bundle(("C3", "C4"))
    info = StreamInfo("amp", ["cz", "c4", "C3"], 200.0)
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(b.channel_map(info)(data), data[:, [2, 1]])


def test_missing_channels_beyond_the_limit_name_stream_channels_and_remedy():
    b = _bundle(("C3", "C4", "O1"))
    info = StreamInfo("my-amp", ["C3", "C4"], 200.0)
    with pytest.raises(MontageError, match=r"'my-amp' lacks 1 of model tiny's 3 channels .*: O1; .*--channels-of"):
        b.channel_map(info)


def test_foreign_file_is_refused(tmp_path):
    p = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, p)
    with pytest.raises(BundleError, match="expected format"):
        ModelBundle.load(p)
    (tmp_path / "y.pt").write_text("not a model")
    with pytest.raises(BundleError, match="y.pt"):
        ModelBundle.load(tmp_path / "y.pt")


@pytest.mark.parametrize("channels,srate,expected", [(SEED62, 200.0, "seed62"), (DEAP32, 128.0, "deap32"),
                                                     (BRAINFLOW16, 250.0, "brainflow16")])
def test_default_bundles_match_their_montage(channels, srate, expected):
    assert len(bundled_paths()) >= 3
    b = default_bundle_for(StreamInfo("s", channels, srate))
    assert b.name == expected
    assert b.normalization["mode"] == "stratified"
    assert len(b.normalization["prior_mean"]) == len(b.feature_names)


@pytest.mark.parametrize("layout", ["seed62", "deap32", "brainflow16"])
def test_bundled_models_decode_people_they_were_not_trained_on(layout):
    """Measured, not read from the bundle: the live path on generated people and a seed outside the
    bundles' training data (participants 1-10, seed 0), scored against the generator's truth."""
    trials = list(synthetic_trials(layout, ["201", "202"], ["1"], trials=6, trial_seconds=20, seed=11))
    bundle = default_bundle_for(trials[0].info)
    correct = total = 0
    for person in ("201", "202"):
        mine = [t for t in trials if t.participant == person]
        data = np.concatenate([t.data for t in mine])
        keep = Keep()
        srate = mine[0].info.srate
        Pipeline(mine[0].info, bundle, person, "1", sinks=[keep]).process(Chunk(data, (np.arange(len(data)) + 1) / srate))
        truth = np.concatenate([np.full(len(t.data), t.label) for t in mine])
        length = round(bundle.window * srate)
        for p in keep.predictions:
            window = truth[p.window_index - length : p.window_index]
            if (window == window[0]).all():  # inside one trial
                correct += bundle.class_names.index(p.label) == window[0]
                total += 1
    chance = 1 / len(bundle.class_names)
    accuracy = correct / total
    print(f"\n{layout}: online accuracy on unseen people {accuracy:.3f} over {total} windows (chance {chance:.2f})")
    assert accuracy > BUNDLE_FLOOR[layout]


def test_no_default_bundle_for_unknown_montage():
    with pytest.raises(BundleError, match="no bundled model fits stream 'odd'"):
        default_bundle_for(StreamInfo("odd", ["X1", "X2"], 100.0))
