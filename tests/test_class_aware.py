"""Class-aware running statistics: a young session that has seen one emotion must not take it for the person's level."""

import json

import numpy as np
import pytest

from bci_stream.stratified import ClassEffects, Prior, Strata, StratifiedNormalizer

#: Each class's mean stratum z-score on 3 features, and the share of variance within classes, in a stratum with the
#: three classes in equal parts (the law of total variance).
MEANS = np.array([[-1.0, 0.5, 0.0], [0.0, -1.0, 0.0], [1.0, 0.5, 0.0]])
WITHIN = 1 - (MEANS**2).mean(0)


def _sessions(rng, level, spread, classes, per_class=400):
    """Windows of one stratum: the person's ``level`` plus ``spread`` times its class's z-score, with noise such that
    a stratum with every class in equal parts has standard deviation ``spread``."""
    y = np.repeat(classes, per_class)
    return level + spread * (MEANS[y] + np.sqrt(WITHIN) * rng.standard_normal((len(y), 3))), y


def test_class_means_and_within_share_from_training(rng):
    z = rng.standard_normal((3000, 3))
    y = rng.integers(0, 3, 3000)
    z[:, 0] += np.array([-2.0, 0.0, 2.0])[y]
    z = (z - z.mean(0)) / z.std(0)  # a stratum's z-scores
    effects = ClassEffects.from_training(z, y, 3)
    for c in range(3):
        np.testing.assert_allclose(effects.means[c], [z[y == c, f].mean() for f in range(3)], rtol=1e-12)
    # within-class share of variance = 1 - between-class variance (the law of total variance)
    between = sum((y == c).mean() * z[y == c].mean(0) ** 2 for c in range(3))
    np.testing.assert_allclose(effects.within, 1 - between, rtol=1e-12)
    assert 0.2 < effects.within[0] < 0.4 and effects.within[1] > 0.99


def test_a_class_absent_from_training_has_no_effect(rng):
    z, y = rng.standard_normal((100, 3)), rng.integers(0, 2, 100)
    assert (ClassEffects.from_training(z, y, 3).means[2] == 0).all()


def test_one_emotion_is_not_taken_for_the_persons_level(rng):
    """After 400 windows of one class, plain statistics sit on that class; class-aware ones on the person."""
    level, spread = np.array([10.0, -5.0, 3.0]), np.array([2.0, 1.0, 4.0])
    x, y = _sessions(rng, level, spread, [2])
    aware = StratifiedNormalizer(3, classes=ClassEffects(MEANS, WITHIN))
    plain = StratifiedNormalizer(3)
    key = ("P", "1")
    for row, c in zip(x, y):
        aware.step(key, row)
        aware.learn(key, row, np.eye(3)[c])  # a model that is right
        plain.step(key, row)
    mean_aware, var_aware = aware.moments(key)
    mean_plain, _ = plain.moments(key)
    four_se = 4 * spread * np.sqrt(WITHIN / len(x))  # sampling error of a mean of the windows
    assert (abs(mean_aware - level) < four_se).all()  # the person's level
    assert (abs(mean_plain - (level + spread * MEANS[2])) < four_se).all()  # the clip under way
    # the residuals' variance is the within-class spread; scaled back up, a whole session's (spread^2)
    np.testing.assert_allclose(var_aware, spread**2, rtol=0.15)
    np.testing.assert_allclose(aware.transform(key, x).mean(0), MEANS[2], atol=0.15)  # the clip's class shows
    assert abs(plain.transform(key, x).mean(0)).max() < 0.01  # where plain statistics make it look average


def test_learning_follows_the_model_step_by_step(rng):
    """An independent loop: each window is z-scored by what came before it, pooled with the prior, and its residual
    (less its expected class effect at that variance) joins the statistics."""
    within = np.array([0.5, 0.8, 1.0])
    prior = Prior(np.array([1.0, 2.0, 3.0]), np.array([4.0, 1.0, 0.5]), weight=7.0)
    n = StratifiedNormalizer(3, prior=prior, classes=ClassEffects(MEANS, within))
    key = ("P", "1")
    x = rng.normal(0, 3, (60, 3))
    probs = rng.dirichlet(np.ones(3), 60)
    residuals = []
    for row, p in zip(x, probs):
        r = np.array(residuals).reshape(-1, 3)
        k = len(r)
        own_mean = r.mean(0) if k else np.zeros(3)
        ss = ((r - own_mean) ** 2).sum(0) / within if k else np.zeros(3)
        mean = (prior.weight * prior.mean + k * own_mean) / (prior.weight + k)
        var = (ss + prior.weight * prior.var + (own_mean - prior.mean) ** 2 * k * prior.weight / (prior.weight + k)) \
            / (prior.weight + k)
        got = n.step(key, row)
        np.testing.assert_allclose(got[0], (row - mean) / np.sqrt(var + 1e-8), rtol=1e-5, atol=1e-6)
        n.learn(key, row, p)
        residuals.append(row - np.sqrt(var + 1e-8) * (p @ MEANS))
    np.testing.assert_allclose(n.stats(key).mean, np.mean(residuals, axis=0), rtol=1e-10)


@pytest.mark.parametrize("halflife", [None, 50.0])
def test_an_effect_taken_out_fades_back_in_with_its_half_life(rng, halflife):
    """Against the closed form: the statistics' mean is the windows' (weighted as the statistics weigh them) less
    each window's class effect at its age, faded by half every ``fade`` windows."""
    fade = 20.0
    n = StratifiedNormalizer(3, halflife=halflife, classes=ClassEffects(MEANS, WITHIN, fade))
    key = ("P", "1")
    x = rng.normal(0, 3, (120, 3))
    effects = []
    for row, p in zip(x, rng.dirichlet(np.ones(3), 120)):
        n.step(key, row)
        effects.append(np.sqrt(n.moments(key)[1] + n.eps) * (p @ MEANS))
        n.learn(key, row[None], p[None])
    age = np.arange(119, -1, -1.0)[:, None]
    weight = np.ones_like(age) if halflife is None else 0.5 ** (age / halflife)
    expected = ((weight * x).sum(0) - (weight * 0.5 ** (age / fade) * np.array(effects)).sum(0)) / weight.sum()
    np.testing.assert_allclose(n.stats(key).mean, expected, rtol=1e-9)


def test_a_wrong_first_guess_leaves_no_trace_once_faded_and_stays_when_effects_do_not_fade(rng, tmp_path):
    """A lock-on's start: the first clip (positive) taken for negative, then 1200 windows of every class judged
    right; against the same windows all judged right. With a restart halfway, so the state carries the fade."""
    level, spread = np.array([10.0, -5.0, 3.0]), np.array([2.0, 1.0, 4.0])
    x, y = _sessions(rng, level, spread, [2, 0, 1, 2])
    right = np.eye(3)[y]
    wrong = right.copy()
    wrong[:400] = np.eye(3)[0]

    def mean(fade, guesses, folder, restart=800):
        n = None
        for i, (row, p) in enumerate(zip(x, guesses)):
            if i % restart == 0:  # (re)start: what has not faded back yet is saved and resumed
                if n is not None:
                    n.save(("P", "1"))
                n = StratifiedNormalizer(3, Prior(level, spread**2, 30.0), state_dir=folder, signature="s",
                                         classes=ClassEffects(MEANS, WITHIN, fade))
            n.step(("P", "1"), row)
            n.learn(("P", "1"), row, p)
        return n.stats(("P", "1")).mean

    trace = {fade: mean(fade, wrong, tmp_path / f"w{fade}") - mean(fade, right, tmp_path / f"r{fade}")
             for fade in (None, 100.0)}
    left = spread * (MEANS[2] - MEANS[0]) * 400 / len(y)  # what the misjudged clip leaves if it stays out
    np.testing.assert_allclose(trace[None], left, rtol=0.1, atol=1e-9)  # spreads estimated on the way
    # Faded: what is left comes through the spread, which still holds the misjudged clip's deviations.
    assert (abs(trace[100.0]) <= 0.15 * abs(left) + 1e-9).all()
    np.testing.assert_allclose(mean(100.0, right, tmp_path / "again"), mean(100.0, right, tmp_path / "once", len(x)),
                               rtol=1e-12)  # the restart changed nothing


def test_a_returning_person_starts_from_the_earlier_sessions_windows_as_they_were(rng, tmp_path):
    """What a session carries into the person's next one is its windows' own moments, effects left in: class-aware
    residuals would carry the model's wrong guesses along (here every guess is wrong, and the prior does not
    move). Statistics saved before the plain moments were kept carry their residuals, scaled as whole sessions."""
    within = np.array([0.5, 0.8, 1.0])
    effects = ClassEffects(MEANS, within)
    level, spread = np.array([10.0, -5.0, 3.0]), np.array([2.0, 1.0, 4.0])
    first = StratifiedNormalizer(3, state_dir=tmp_path, signature="s", classes=effects, participant_weight=50)
    x, y = _sessions(rng, level, spread, [0, 1, 2])
    residuals = []
    for row, c in zip(x, y):
        first.step(("P", "1"), row)
        wrong = (c + 1) % 3
        residuals.append(row - np.sqrt(first.moments(("P", "1"))[1] + first.eps) * MEANS[wrong])
        first.learn(("P", "1"), row, np.eye(3)[wrong])
    first.save(("P", "1"))
    later = StratifiedNormalizer(3, state_dir=tmp_path, signature="s", classes=effects, participant_weight=50)
    prior = later.prior_in_use(("P", "2"))
    np.testing.assert_allclose(prior.mean, x.mean(0), rtol=1e-9)
    np.testing.assert_allclose(prior.var, x.var(0), rtol=1e-9)
    assert prior.weight == 50

    saved = next(tmp_path.glob("P__1.json"))
    state = json.loads(saved.read_text())
    saved.write_text(json.dumps({k: v for k, v in state.items() if k != "plain"}))
    before = StratifiedNormalizer(3, state_dir=tmp_path, signature="s", classes=effects, participant_weight=50)
    prior = before.prior_in_use(("P", "2"))
    residuals = np.array(residuals)
    np.testing.assert_allclose(prior.mean, residuals.mean(0), rtol=1e-9)
    np.testing.assert_allclose(prior.var, residuals.var(0) / within, rtol=1e-9)


def test_plain_statistics_learn_at_once_and_ignore_the_model(rng):
    n = StratifiedNormalizer(3)
    strata = Strata("P", "1")
    step = strata.track(n)
    x = rng.normal(0, 1, (5, 3))
    step(x)
    step.learn(x, np.full((5, 3), 1 / 3))
    assert n.stats(("P", "1")).count == 5
    np.testing.assert_allclose(n.stats(("P", "1")).mean, x.mean(0), rtol=1e-12)


@pytest.mark.parametrize("norm, class_aware, stored", [("stratified", True, True), ("stratified", False, False),
                                                       ("batch", True, False)])
def test_training_stores_class_means_only_for_class_aware_stratified_models(norm, class_aware, stored, rng):
    from bci_stream.batch import FeatureSet
    from bci_stream.training import TrainSettings, train_bundle

    n = 240
    y = np.tile(np.repeat([0, 1, 2], 20), 4)
    participant = np.repeat(["1", "2", "3", "4"], 60)
    X = (rng.standard_normal((n, 4)) + np.eye(3, 4)[y] + rng.normal(0, 3, 4)).astype(np.float32)
    fset = FeatureSet(X=X, y=y, participant=participant, session=np.full(n, "1"), trial=np.repeat(np.arange(12), 20),
                      class_names=("a", "b", "c"), channels=("C1",), srate=100.0, features="de", window=1.0, hop=1.0)
    bundle = train_bundle(fset, "t", TrainSettings(norm=norm, epochs=2, class_aware=class_aware, quiet=True),
                          holdout=0, hop=1.0)
    assert ("class_means" in bundle.normalization) == ("class_fade_seconds" in bundle.normalization) == stored
    if stored:
        assert bundle.normalization["class_fade_seconds"] == 20.0  # as long as the clips: 20 windows, 1 s apart
        z = np.concatenate([(X[participant == p] - X[participant == p].mean(0)) / X[participant == p].std(0)
                            for p in "1234"])
        yy = np.concatenate([y[participant == p] for p in "1234"])
        np.testing.assert_allclose(bundle.normalization["class_means"],
                                   [z[yy == c].mean(0) for c in range(3)], rtol=1e-4, atol=1e-6)


def test_the_pipeline_teaches_class_aware_statistics_every_window_once_after_the_model():
    """With class means of zero, class-aware statistics must end where plain ones do: every classified window
    learned once, as its raw features, whatever the chunks; artifact windows never."""
    import dataclasses

    from bci_stream.artifacts import ArtifactRule
    from bci_stream.bundle import default_bundle_for
    from bci_stream.devices.synthetic import SyntheticEEG
    from bci_stream.pipeline import Pipeline
    from bci_stream.stream import Chunk

    g = SyntheticEEG("seed62", participant=2, session=1, seed=5, storms=6.0)
    data, _ = g.generate(round(30 * g.srate))
    ts = 1000.0 + (np.arange(len(data)) + 1) / g.srate
    plain = default_bundle_for(g.info)
    n_features = len(plain.normalization["prior_mean"])
    aware = dataclasses.replace(plain, normalization={**plain.normalization, "class_means": np.zeros((3, n_features)),
                                                      "within_share": np.ones(n_features)})
    stats = []
    for bundle, size in ((plain, 1000), (aware, 37)):
        pipe = Pipeline(g.info, bundle, "P2", "1", artifacts=ArtifactRule())
        preds = []
        for i in range(0, len(data), size):
            preds += pipe.process(Chunk(data[i : i + size], ts[i : i + size]))
        stats.append(pipe.strata.stats())
        classified = sum(p.artifact is None for p in preds)
        assert 0 < classified < len(preds)  # the storms made artifacts
    assert stats[0].count == stats[1].count == classified
    np.testing.assert_allclose(stats[1].mean, stats[0].mean, rtol=1e-9)
    np.testing.assert_allclose(stats[1].var, stats[0].var, rtol=1e-9)


def _trials_fset(lengths, hop=2.0, window=1.0, with_trials=True):
    from bci_stream.batch import FeatureSet

    trial = np.concatenate([np.full(n, t) for t, n in enumerate(lengths)])
    n = len(trial)
    return FeatureSet(X=np.zeros((n, 2), np.float32), y=trial % 3, participant=np.full(n, "1"),
                      session=np.full(n, "1"), trial=trial if with_trials else None, class_names=("a", "b", "c"),
                      channels=("C1",), srate=100.0, features="de", window=window, hop=hop)


def test_a_new_persons_prior_lasts_as_long_as_the_training_clips():
    from bci_stream.training import clip_seconds

    # the median clip: 30 windows at a 2-s hop span 1 + 29 x 2 s
    assert clip_seconds(_trials_fset([10, 30, 30, 40, 50])) == 59.0
    # trials of one participant's sessions are told apart by session, not merged by their number
    f = _trials_fset([30, 30])
    f.session[30:] = "2"
    f.trial[30:] = 0
    assert clip_seconds(f) == 59.0
    assert clip_seconds(_trials_fset([3, 3, 3])) == 15.0  # never shorter than 15 s
    assert clip_seconds(_trials_fset([100], with_trials=False)) == 15.0  # clips unknown


def test_training_takes_the_clip_length_unless_given(rng):
    from bci_stream.training import TrainSettings, train_bundle

    f = _trials_fset([20] * 12, hop=1.0)
    f.participant[:] = np.repeat(["1", "2", "3", "4"], 60)
    f.X[:] = rng.standard_normal(f.X.shape)
    for given, stored in ((None, 20.0), (7.0, 7.0)):
        bundle = train_bundle(f, "t", TrainSettings(epochs=1, prior_seconds=given, quiet=True), holdout=0, hop=1.0)
        assert bundle.normalization["prior_seconds"] == stored


def _four_people(rng, sessions=2):
    """Four people x ``sessions`` sessions x 6 trials of 20 windows, 3 classes along the first features, each
    person and session offset at random."""
    from bci_stream.batch import FeatureSet

    people, per = 4, 6 * 20
    y = np.tile(np.repeat([0, 1, 2, 2, 1, 0], 20), people * sessions)
    participant = np.repeat([str(p) for p in range(1, people + 1)], sessions * per)
    session = np.tile(np.repeat([str(s) for s in range(1, sessions + 1)], per), people)
    offset = np.repeat(rng.normal(0, 3, (people * sessions, 4)), per, axis=0)
    X = (rng.standard_normal((len(y), 4)) + 1.5 * np.eye(3, 4)[y] + offset).astype(np.float32)
    trial = np.repeat(np.arange(people * sessions * 6), 20)
    return FeatureSet(X=X, y=y, participant=participant, session=session, trial=trial, class_names=("a", "b", "c"),
                      channels=("C1",), srate=100.0, features="de", window=1.0, hop=1.0)


def _online_accuracy(bundle, fset, person, tmp_path):
    """The reference: the person's sessions in order through Pipeline.classify, one state folder for all."""
    from bci_stream.pipeline import Pipeline
    from bci_stream.stream import StreamInfo

    right = []
    for s in sorted(set(fset.session[fset.participant == person])):
        rows = np.flatnonzero((fset.participant == person) & (fset.session == s))
        pipe = Pipeline(StreamInfo("x", ["C1"], 100.0, "microvolts"), bundle, person, s, hop=1.0, state_dir=tmp_path)
        right.append(pipe.classify(fset.X[rows]).argmax(1) == fset.y[rows])
        pipe.close()
    return np.concatenate(right).mean()


def test_auto_chooses_by_the_held_out_participants_online_accuracy(rng, tmp_path):
    """The choice is made on the model trained without the held-out training participants, plain against
    class-aware statistics on their sessions replayed live; the bundle then carries what was chosen."""
    import dataclasses

    from bci_stream.training import TrainSettings, train_bundle

    fset = _four_people(rng)
    bundle = train_bundle(fset, "t", TrainSettings(epochs=3, class_aware="auto", quiet=True), holdout=0.5, hop=1.0)
    choice = bundle.report["class_aware_choice"]
    assert choice["participants"] == bundle.report["heldout_participants"] and len(choice["participants"]) == 2
    assert choice["chosen"] == (choice["aware"] > choice["plain"])
    assert ("class_means" in bundle.normalization) == choice["chosen"] == bundle.report["class_aware"]

    # The same accuracies from the model the choice used, trained again as train_bundle trains it (seeded).
    held = np.isin(fset.participant, choice["participants"])
    inner = train_bundle(fset.take(~held), "t", TrainSettings(epochs=3, class_aware=True, quiet=True), holdout=0,
                         hop=1.0)
    plain = dataclasses.replace(inner, normalization={k: v for k, v in inner.normalization.items()
                                                      if k not in ("class_means", "within_share")})
    for kind, b in (("plain", plain), ("aware", inner)):
        expected = np.mean([_online_accuracy(b, fset, p, tmp_path / kind / p) for p in choice["participants"]])
        assert choice[kind] == pytest.approx(expected, abs=1e-12), kind


def test_auto_keeps_plain_statistics_on_a_tie(rng):
    """A bundle without class means decodes alike both ways: the same accuracy, and plain is kept."""
    from bci_stream.training import TrainSettings, choose_class_aware, train_bundle

    fset = _four_people(rng)
    held = fset.participant == "4"
    bundle = train_bundle(fset.take(~held), "t", TrainSettings(epochs=2, class_aware=False, quiet=True), holdout=0,
                          hop=1.0)
    choice = choose_class_aware(bundle, fset.take(held))
    assert choice["aware"] == choice["plain"] and choice["chosen"] is False


def test_auto_in_evaluate_is_nested_never_chosen_on_the_test_fold(rng):
    from bci_stream.evaluation import evaluate
    from bci_stream.training import TrainSettings

    fset = _four_people(rng)
    report = evaluate(fset, TrainSettings(epochs=2, class_aware="auto", quiet=True), "loso", dataset="t")
    assert report["class_aware"] == "auto"
    for fold in report["folds"]:
        people = fold["class_aware_choice"]["participants"]
        assert len(people) == 1 and fold["participant"] not in people  # 20 % of three training people


def test_auto_without_held_out_participants_is_refused(rng):
    from bci_stream.training import TrainSettings, train_bundle

    fset = _four_people(rng)
    with pytest.raises(ValueError, match="class-aware auto chooses on held-out training participants: it needs at "
                                         "least 3 participants and a holdout, got 4 participant"):
        train_bundle(fset, "t", TrainSettings(epochs=1, class_aware="auto", quiet=True), holdout=0, hop=1.0)
