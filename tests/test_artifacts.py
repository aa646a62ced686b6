"""Artifacts do not poison the stratum: a storm of noise on every channel is labelled ``artifact`` (on LSL, in the
log, on the console), never classified, never learned from, so labels after it are those of a storm-free run."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import Keep, cli, stop
from test_cli_live import _inlet
from test_stream_health import _Watch

from bci_stream import config, registry
from bci_stream.artifacts import ArtifactRule
from bci_stream.bundle import load_model
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.filters import CausalFilter, FilterSpec
from bci_stream.session import LiveSession, Outputs, SessionOptions
from bci_stream.stratified import Prior, StratifiedNormalizer
from bci_stream.stream import Chunk

SRATE, SECONDS, LENGTH = 200, 160, 200  # LENGTH: the model's 1-s window in samples
#: Samples [a, z): 10 s, a minute in. The 10 s of EEG a storm destroys are lost to the statistics whatever the
#: detector does; how much that alone moves later labels depends on the person and when it falls (0 to 9 % of
#: labels 30-90 s later, measured on four generated people with storms at 30, 60, 90 and 120 s, see README).
STORM = (60 * SRATE, 70 * SRATE)
GEN = SyntheticEEG("seed62", participant="91", session="1", seed=7)
DATA, _ = GEN.generate(SECONDS * SRATE)
BUNDLE = load_model("seed62")


def _stormy(data):
    """``data`` with 10 s of 500 uV Gaussian noise added on every channel."""
    out = data.copy()
    a, z = STORM
    out[a:z] += np.random.default_rng(3).normal(0, 500.0, (z - a, data.shape[1])).astype(np.float32)
    return out


def _decode(data, state_dir=None, artifacts=ArtifactRule(), session="1", outputs=Outputs()):
    """Predictions by window end, decoding ``data`` live in 0.1-s chunks."""
    keep = Keep()
    live = LiveSession(GEN.info, BUNDLE, SessionOptions("91", session, state_dir=state_dir, artifacts=artifacts),
                       outputs, sinks=[keep])
    ts = (np.arange(len(data)) + 1) / SRATE
    live.run(Chunk(data[i : i + 20], ts[i : i + 20]) for i in range(0, len(data), 20))
    live.close()
    return {p.window_index: p for p in keep.predictions}, live


def _overlaps_storm(end):
    return end > STORM[0] and end - LENGTH < STORM[1]


def test_thirty_seconds_after_a_storm_labels_are_those_of_the_storm_free_run(tmp_path, caplog):
    clean, _ = _decode(DATA)
    log = tmp_path / "labels.jsonl"
    with caplog.at_level("INFO"):
        storm, live = _decode(_stormy(DATA), outputs=Outputs(log=str(log)))
    assert set(storm) == set(clean)  # every window published, none withheld
    during = [w for w in storm if _overlaps_storm(w)]
    assert all(storm[w].label == "artifact" and np.isnan(storm[w].probabilities).all() for w in during)
    after = [w for w in clean if w - LENGTH >= STORM[1] + 30 * SRATE]
    changed = np.mean([storm[w].label != clean[w].label for w in after])
    print(f"\n{changed:.3f} of {len(after)} labels 30 s and more after the storm differ from the storm-free run")
    assert changed <= 0.02
    # Said once per episode, in the log and in the JSON lines.
    flagged = sum(p.artifact is not None for p in storm.values())
    assert live.pipeline.summary()["artifacts"] == flagged and live.pipeline.summary()["predictions"] == len(storm) - flagged
    said = [r.getMessage() for r in caplog.records if "artifact" in r.getMessage()]
    assert len(said) == 2 and "reason=amplitude" in said[0] and f"after {flagged} artifact window(s)" in said[1]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    art = [d for d in lines if d["label"] == "artifact"]
    assert len(art) == flagged and all(d["artifact"] == "amplitude" and d["probabilities"] is None for d in art)


def test_without_detection_the_storm_is_classified_and_lingers():
    """The same storm with detection off: the fault the detector exists for (confident labels in the storm)."""
    clean, _ = _decode(DATA, artifacts=None)
    storm, _ = _decode(_stormy(DATA), artifacts=None)
    assert not [w for w in storm if storm[w].label == "artifact"]
    after = [w for w in clean if w - LENGTH >= STORM[1] + 30 * SRATE]
    assert np.mean([storm[w].label != clean[w].label for w in after]) > 0.05


def _features(data):
    """Each window's features, computed here from the model's filters and feature extractor, by window end."""
    filtered = CausalFilter.from_spec(FilterSpec.from_dict(BUNDLE.filters), SRATE, data.shape[1])(data)
    ends = np.arange(LENGTH, len(data) + 1, round(BUNDLE.hop * SRATE))
    windows = np.stack([filtered[e - LENGTH : e].T for e in ends])
    return dict(zip(ends, registry.load_plugin("features", BUNDLE.features).compute(windows, SRATE)))


def test_statistics_and_the_participants_prior_leave_the_storm_out(tmp_path):
    storm, live = _decode(_stormy(DATA), state_dir=tmp_path)
    artifacts = {w for w, p in storm.items() if p.artifact}
    overlapping = {w for w in storm if _overlaps_storm(w)}
    # The storm's windows, and at most the filters' ringing of the next second.
    assert overlapping <= artifacts <= {w for w in storm if w > STORM[0] and w - LENGTH < STORM[1] + SRATE}
    feats = _features(_stormy(DATA))
    kept = np.array([feats[w] for w in sorted(storm) if w not in artifacts], np.float64)
    saved = json.loads(next(tmp_path.glob("*/91__1.json")).read_text())
    assert saved["count"] == len(kept)
    np.testing.assert_allclose(saved["mean"], kept.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.array(saved["m2"]) / saved["count"], kept.var(axis=0), rtol=1e-5, atol=1e-6)
    for layer in tmp_path.glob("*/network/layer*/91__1.json"):  # every hidden layer learned the same windows
        assert json.loads(layer.read_text())["count"] == len(kept)
    assert len(list(tmp_path.glob("*/network/layer*/91__1.json"))) >= 1
    # The participant's next session starts from these statistics.
    norm = StratifiedNormalizer(len(kept[0]), Prior(np.zeros(len(kept[0])), np.ones(len(kept[0]))),
                                state_dir=next(tmp_path.glob("*/91__1.json")).parent,
                                signature=BUNDLE.signature, participant_weight=1.0)
    prior = norm.prior_for(("91", "2"))
    np.testing.assert_allclose(prior.mean, kept.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(prior.var, kept.var(axis=0), rtol=1e-5, atol=1e-6)


def test_blinks_and_muscle_at_the_generators_rates_do_not_stop_labels():
    preds, _ = _decode(DATA)
    assert len(preds) == (len(DATA) - LENGTH) // 20 + 1
    assert not [p for p in preds.values() if p.artifact]
    # Not vacuous: this minute holds blinks beyond 100 uV on the frontal channels after the filters.
    filtered = CausalFilter.from_spec(FilterSpec.from_dict(BUNDLE.filters), SRATE, 62)(DATA)
    assert (np.abs(filtered[:, GEN.info.channel_names.index("FP1")]) > 100).any()


def test_generated_storms_cover_every_channel_and_do_not_depend_on_block_size():
    whole, _ = SyntheticEEG("seed62", participant="3", seed=2, storms=6.0).generate(60 * SRATE)
    gen = SyntheticEEG("seed62", participant="3", seed=2, storms=6.0)
    pieces = np.concatenate([gen.next_block(n)[0] for n in [7, 300, 13] * 300])[: len(whole)]
    np.testing.assert_array_equal(whole, pieces)
    calm, _ = SyntheticEEG("seed62", participant="3", seed=2).generate(60 * SRATE)
    per_second = (whole - calm).reshape(60, SRATE, 62).std(axis=1)  # [second, channel] of the storm noise alone
    stormy = (per_second > 200).all(axis=1)
    assert 2 <= stormy.sum() <= 50 and ((per_second < 1e-3).all(axis=1) | (per_second > 100).all(axis=1)).all()


def test_artifacts_table_and_flag(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('source = "synthetic:seed62"\n[artifacts]\npeak_uv = 300\nchannel_share = 0.25\n')
    settings = config.effective(config.load(path), {})
    assert config.artifact_rule(settings) == ArtifactRule(300.0, 0.25)
    assert config.artifact_rule(config.effective(config.load(path), {"detect": False})) is None
    assert config.artifact_rule(config.effective(None, {})) == ArtifactRule()
    for share in (2, 0):
        path.write_text(f'[artifacts]\nchannel_share = {share}\n')
        with pytest.raises(config.ConfigError, match=r"\[artifacts\] channel_share must be a fraction in \(0, 1\]"):
            config.load(path)


#: A real EEG outlet in another process: 16 s of a new person's EEG, 500 uV noise on every channel from 5 s to 9 s.
STORMY_OUTLET = """
import sys, time
import numpy as np, pylsl
from bci_stream.devices.synthetic import SyntheticEEG
from bci_stream.outlets import EEGOutlet
from bci_stream.stream import Chunk, StreamInfo
name = sys.argv[1]
gen = SyntheticEEG("seed62", participant="91", seed=7)
data, _ = gen.generate(16 * 200)
data[1000:1800] += np.random.default_rng(3).normal(0, 500.0, (800, 62)).astype(np.float32)
out = EEGOutlet(StreamInfo(name, gen.info.channel_names, 200.0, source_id=name + "-src"))
out.outlet.wait_for_consumers(30)
t0 = pylsl.local_clock()
for i in range(0, len(data), 20):
    ts = t0 + (np.arange(i, i + 20) + 1) / 200.0
    time.sleep(max(0.0, ts[-1] - pylsl.local_clock()))
    out.push(Chunk(data[i : i + 20], ts))
time.sleep(30)
"""


def test_a_storm_is_visible_on_the_lsl_outputs_alone(uid):
    push = subprocess.Popen([sys.executable, "-c", STORMY_OUTLET, uid])
    run = cli("run", "--source", f"lsl:name={uid}", "--model", "seed62", "--no-state", "-q", "--name", f"{uid}-out")
    try:
        watch = _Watch(f"{uid}-out")
        probs = _inlet("name", f"{uid}-out-probabilities")
        meta = watch.labels.info().desc().child("bci_stream")
        assert meta.child_value("artifact_label") == "artifact"
        watch.until(lambda: watch.event("clean"), 40, "clean event")
        watch.until(lambda: len(watch.labels_after(watch.event("clean")[1])) >= 10, 10, "labels after the storm")
        stamps, more = [], True
        while more:
            more = probs.pull_chunk(timeout=0.5)[1]
            stamps += more
    finally:
        stop(run, push)
    events = [f for f, _ in watch.events if f["event"] in ("artifact", "clean")]
    assert [f["event"] for f in events] == ["artifact", "clean"]  # once per episode, not per window
    assert events[0]["reason"] == "amplitude" and int(events[0]["channels"]) >= 31
    artifacts = [t for label, t, _ in watch.got if label == "artifact"]
    assert int(events[1]["windows"]) == len(artifacts) >= 40  # 4 s of storm at 10 windows a second, and more
    # Windows are 0.1 s apart; the two inlets' clock corrections may differ by microseconds.
    nearest = [np.abs(np.asarray(stamps) - t).min() for t in artifacts]
    assert min(nearest) > 0.01  # no probabilities for an artifact
    classified = [t for label, t, _ in watch.got if label != "artifact"]
    assert classified and max(np.abs(np.asarray(stamps) - t).min() for t in classified) < 0.001
