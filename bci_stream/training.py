"""Cross-participant training: inputs and hidden layers normalized per stratum, or the baselines."""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from bci_stream import registry
from bci_stream.allocator import keep_freed_blocks
from bci_stream.batch import FeatureSet
from bci_stream.bundle import ModelBundle
from bci_stream.model import Classifier, model_class
from bci_stream.population import PopulationModel, relative_profile
from bci_stream.progress import Progress
from bci_stream.stratified import (INPUT_EPS, ClassEffects, Level, LiveStrata, batch_zscore, causal_zscore,
                                   population_prior, zscore)
from bci_stream.stream import Trial

#: --class-aware's values as TrainSettings.class_aware.
CLASS_AWARE = {"on": True, "off": False, "auto": "auto"}
#: --norm -> how inputs are normalized: per stratum, or by the training population's statistics.
NORMS = {"stratified": "stratified", "batch": "global", "none": "global"}


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides how a model is trained, as one value (stored in the bundle's report)."""

    norm: str = "stratified"
    model: str = "featurenet"
    epochs: int = 100
    lr: float = 5e-3
    seed: int = 0
    device: str = "cpu"
    batch_strata: int | None = None  # whole strata per minibatch; None: full batch
    #: Also train on sessions replayed through running statistics (:class:`LiveOrder`). Off by default: at full size
    #: on the `seed` preset it cost 1.6-2.1 points online and 2.1-2.6 offline on both data seeds, and bought `easy`
    #: 0.2 online, at twice the time and 3-4 times the memory (README, "Without the live pass at full size").
    live_pass: bool = False
    #: Live input statistics leave out each window's class effect, as the model judges it (stratified only), and let it
    #: fade back in with a half-life as long as the clips, so that a wrong guess cannot hold a session. On by default:
    #: at full size on the `seed` preset it added 2.7 and 2.5 points online on data seeds 0 and 1 (29 of 30 held-out
    #: people better); with clips shorter than 15 s it costs (README, "Class-aware statistics").
    #: "auto": on or off, whichever decodes the held-out training participants better online (nested: the choice
    #: never sees the people a model is tested on), so it needs train_bundle's holdout.
    class_aware: bool | str = True
    #: Beside the stratified model, a population-referenced one (bci_stream/population.py) that speaks for a new
    #: person while the population prior weighs in their statistics (stratified inputs, log-power features only).
    #: Off by default: on one data seed of the `seed` generator it lifted a new person's first minute from 0.42 to
    #: 0.80, on another it sank it from 0.65 to 0.15 (README, "A new person's first minutes").
    population: bool = False
    #: Warm-up priors live, in seconds: the population's for inputs (None: as long as the training data's clips,
    #: :func:`clip_seconds`) and for hidden layers, and a participant's own earlier sessions.
    prior_seconds: float | None = None
    #: A session's input level leaves its warm-up prior after this many seconds across the directions the classes do
    #: not separate (bci_stream/stratified/moments.py, Level); None: as slowly as along them.
    level_seconds: float | None = 3.0
    network_prior_seconds: float = 600.0
    participant_seconds: float = 240.0
    quiet: bool = False

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ValueError(f"norm {self.norm!r}: expected one of {', '.join(NORMS)}")
        if self.class_aware not in (True, False, "auto"):
            raise ValueError(f"class_aware {self.class_aware!r}: expected True, False or 'auto'")


#: The population-referenced model: featurenet without hidden layers, a multinomial logistic regression with
#: dropout on its inputs. With featurenet's three hidden layers it learnt the training people's own patterns: held-out
#: people 1 and 2 of the `seed` generator scored 0.44 and 0.53 against the linear model's 0.50 and 0.64, and pooled
#: in, it made a new person's first minute worse (benchmarks/online_variants.py, development folds).
POPULATION_MODEL = "featurenet"

#: The population prior of inputs where the training data's clips are unknown, and the least it is.
MIN_PRIOR_SECONDS = 15.0


def clip_seconds(fset: FeatureSet) -> float:
    """How long the training data's clips last (the median; MIN_PRIOR_SECONDS at least, or where trials are not
    known). A new person's input statistics lean on the training population for as long: until a session has seen a
    second emotion, its own mean is one emotion's (benchmarks/online_variants.py, trained and run so: on 4-min clips
    a 240-s prior left online accuracy 2.6 points below offline, against 3.6 with 15 s; on 30-s clips 30 s changed
    it by +0.2 points)."""
    if fset.trial is None:
        return MIN_PRIOR_SECONDS
    trials = stratum_ids(fset.participant, fset.session, fset.trial)
    windows = float(np.median(np.bincount(trials)))
    return max(MIN_PRIOR_SECONDS, fset.window + (windows - 1) * fset.hop)


def natural_key(name: str) -> list:
    """Participant 2 before participant 10, and session 9 before session 10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def stratum_ids(participant: np.ndarray, session: np.ndarray, *more: np.ndarray) -> np.ndarray:
    """One integer per distinct (participant, session, ...) of each row. The names are joined with a character
    no name holds, so ("a/b", "c") and ("a", "b/c") stay apart."""
    keys = participant.astype(str)
    for column in (session, *more):
        keys = np.char.add(np.char.add(keys, "\x1f"), column.astype(str))
    return np.unique(keys, return_inverse=True)[1]


def input_statistics(X: np.ndarray, strata: np.ndarray, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """What inputs are normalized by outside their own stratum: the average stratum (``stratified``,
    the live warm-up prior), or the whole training population (otherwise)."""
    if NORMS[norm] == "stratified":
        return population_prior(X, strata)
    return X.mean(axis=0, dtype=np.float64), X.var(axis=0, dtype=np.float64)


def normalize_inputs(X: np.ndarray, strata: np.ndarray, norm: str, train_stats=None) -> np.ndarray:
    """Per-stratum z-scores for ``stratified``; z-scores by the training population's statistics otherwise."""
    if NORMS[norm] == "stratified":
        return batch_zscore(X, strata, INPUT_EPS)
    mean, var = train_stats
    return zscore(np.asarray(X, np.float64), mean, var, INPUT_EPS).astype(np.float32)


class LiveOrder:
    """Training sessions laid out as the live path meets them, to train on live statistics.

    Each session's trials come in a fresh random order at every step (so no film
    order is learnt), each trial's windows in time order. Inputs are z-scored
    causally with the warm-up prior the live normalizer would use: the other
    participants' statistics for a participant's first session, their earlier
    sessions (in natural order) after that, each left as ``level`` says.
    """

    def __init__(self, fset: FeatureSet, strata: np.ndarray, prior_rows: float, participant_rows: float,
                 network_rows: float, level: Level | None = None):
        self.network_rows, self.level = network_rows, level
        self.sessions = {}  # stratum -> (its rows grouped by trial, prior mean, prior var, prior weight)
        for p in np.unique(fset.participant):
            mine = fset.participant == p
            others = ~mine if (~mine).any() else mine  # with one participant, the population is them
            prior = (*population_prior(fset.X[others], strata[others]), prior_rows)
            earlier = []
            for s in sorted(np.unique(fset.session[mine]), key=natural_key):
                rows = np.flatnonzero(mine & (fset.session == s))
                trials = [rows[fset.trial[rows] == t] for t in np.unique(fset.trial[rows])]
                self.sessions[int(strata[rows[0]])] = (trials, *prior)
                earlier.append(rows)
                pooled = fset.X[np.concatenate(earlier)]
                prior = (pooled.mean(0), pooled.var(0), participant_rows)
        self.X = torch.as_tensor(fset.X, dtype=torch.float64)

    def batch(self, rng: np.random.Generator, strata) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """(rows, their inputs z-scored live, start of each row's stratum) for the strata given."""
        rows, z, start = [], [], []
        n = 0
        for s in strata:
            trials, mean, var, weight = self.sessions[s]
            r = np.concatenate([trials[i] for i in rng.permutation(len(trials))])
            rows.append(r)
            z.append(causal_zscore(self.X[r], torch.zeros(len(r), dtype=torch.long), mean, var, weight, INPUT_EPS,
                                   self.level).float())
            start.append(np.full(len(r), n))
            n += len(r)
        return np.concatenate(rows), torch.cat(z), torch.as_tensor(np.concatenate(start))


def input_level(Xn: np.ndarray, y: np.ndarray, n_classes: int, settings: TrainSettings, hop: float) -> Level | None:
    """How a session's input level leaves its warm-up prior (stratified inputs with ``level_seconds``): slowly
    along the directions that separate the classes in the stratum z-scores ``Xn``, fast across the rest."""
    if settings.level_seconds is None or NORMS[settings.norm] != "stratified":
        return None
    return Level.from_class_means(ClassEffects.from_training(Xn, y, n_classes).means, settings.level_seconds / hop)


def build_classifier(settings: TrainSettings, n_features: int, n_classes: int,
                     arch_kwargs: dict | None = None) -> tuple[Classifier, dict]:
    """The registered model with its constructor arguments; ``--norm`` reaches the hidden layers of a
    model that declares it normalizes them."""
    cls = model_class(settings.model)
    kwargs = {"n_features": n_features, "n_classes": n_classes}
    if cls.hidden_norms:
        if settings.norm not in cls.hidden_norms:
            raise ValueError(f"model {settings.model!r} normalizes its hidden layers by {', '.join(cls.hidden_norms)}, "
                             f"not {settings.norm!r}")
        kwargs["norm"] = settings.norm
    kwargs.update(arch_kwargs or {})
    return cls(**kwargs), kwargs


def fit(X: np.ndarray, y: np.ndarray, strata: np.ndarray, n_classes: int, settings: TrainSettings,
        arch_kwargs: dict | None = None, live: LiveOrder | None = None) -> tuple[Classifier, dict]:
    """Adam, lr x0.2 at 40 % of the epochs (Fdez et al. 2021). Returns (model, constructor kwargs).

    Full-batch by default; with ``batch_strata`` each minibatch holds every window
    of that many whole strata, so stratified layers see the statistics they will see live.
    """
    keep_freed_blocks()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    device, epochs, batch_strata = settings.device, settings.epochs, settings.batch_strata
    model, kwargs = build_classifier(settings, X.shape[1], n_classes, arch_kwargs)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, int(0.4 * epochs)), gamma=0.2)
    xt = torch.as_tensor(X, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.long, device=device)
    st = torch.as_tensor(strata, dtype=torch.long, device=device)
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    progress = Progress(epochs, "training", settings.quiet)
    model.train()
    for _ in range(epochs):
        if batch_strata is None:
            batches = [slice(None)]
        else:
            order = rng.permutation(len(groups))
            batches = [torch.as_tensor(np.concatenate([groups[g] for g in order[i : i + batch_strata]]), device=device)
                       for i in range(0, len(order), batch_strata)]
        for rows in batches:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[rows], st[rows]), yt[rows])
            if live is not None:
                lrows, z, start = live.batch(rng, torch.unique(st[rows]).tolist())
                out = model(z.to(device), LiveStrata(start.to(device), live.network_rows))
                loss = loss + torch.nn.functional.cross_entropy(out, yt[torch.as_tensor(lrows, device=device)])
            loss.backward()
            opt.step()
        sched.step()
        progress.update(note=f"loss {loss.item():.4f}")
    model.fit_priors(xt, st)
    return model, kwargs


def fit_population(fset: FeatureSet, strata: np.ndarray, settings: TrainSettings) -> PopulationModel | None:
    """The population-referenced model of ``fset``'s windows, where ``settings`` ask for one and the features are
    log powers: a linear one (:data:`POPULATION_MODEL`), whatever ``settings.model`` is."""
    extractor = registry.load_plugin("features", fset.features)
    if not (settings.population and NORMS[settings.norm] == "stratified" and extractor.log_power):
        return None
    per_channel = len(extractor.per_channel)
    if fset.X.shape[1] != len(fset.channels) * per_channel:
        raise ValueError(f"{fset.X.shape[1]} features for {len(fset.channels)} channel(s) of {fset.features!r}, "
                         f"which gives {per_channel} per channel")
    R = relative_profile(fset.X, per_channel)
    mean, var = R.mean(axis=0), R.var(axis=0)
    population = PopulationModel(POPULATION_MODEL, {}, {}, mean, var, per_channel)
    plain = dataclasses.replace(settings, model=POPULATION_MODEL, norm="none", live_pass=False, class_aware=False)
    net, population.arch_kwargs = fit(population.inputs(fset.X), fset.y, strata, len(fset.class_names), plain,
                                      {"hidden": []})
    population.state_dict = {k: v.cpu() for k, v in net.state_dict().items()}
    return population


def predict(model, X: np.ndarray, strata: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Class indices offline: stratified layers use each whole test session's rows."""
    with torch.inference_mode():
        logits = model(torch.as_tensor(X, dtype=torch.float32, device=device),
                       torch.as_tensor(strata, dtype=torch.long, device=device))
    return logits.argmax(-1).cpu().numpy()


def heldout_participants(people: np.ndarray, holdout: float, seed: int) -> np.ndarray:
    """The training participants a bundle is first trained without, to report on and to choose its live
    statistics on: ``holdout`` of them, drawn by ``seed``; none of fewer than 3."""
    n_out = int(round(holdout * len(people))) if len(people) > 2 else 0
    return np.random.default_rng(seed).choice(people, n_out, replace=False)


def train_bundle(fset: FeatureSet, name: str, settings: TrainSettings = TrainSettings(), holdout: float = 0.2,
                 hop: float = 0.1, session_trials: Callable[[str], Iterable[Trial]] | None = None) -> ModelBundle:
    """Train on every window of ``fset``; with ``holdout``, first report accuracy on held-out participants.

    With ``live_pass`` (stratified inputs, trials known), every step also trains on
    the sessions replayed through running statistics (:class:`LiveOrder`), so the model
    meets in training the young statistics it meets live.

    With ``session_trials`` (a participant's raw trials) the held-out participants' sessions are also replayed
    through the live path, at the live ``hop``, and ``report["reliability"]`` keeps their accuracy by the
    stratum's age (:func:`reliability`), first sessions (a new person) and later ones (a returning person) apart:
    the curve a live session states its labels' reliability from. It means what the training data means.
    """
    t0 = time.perf_counter()
    if settings.prior_seconds is None:
        settings = dataclasses.replace(settings, prior_seconds=clip_seconds(fset))
    X, y, part, norm = fset.X, fset.y, fset.participant, settings.norm
    strata = stratum_ids(part, fset.session)
    stats = input_statistics(X, strata, norm)
    Xn = normalize_inputs(X, strata, norm, stats)
    people = np.unique(part)
    live_pass = settings.live_pass and NORMS[norm] == "stratified" and fset.trial is not None
    report = {
        "dataset": name, "features": fset.features, "norm": norm, "architecture": settings.model,
        "participants": len(people), "windows": int(len(y)), "classes": list(fset.class_names),
        "window": fset.window, "train_hop": fset.hop, "epochs": settings.epochs, "seed": settings.seed,
        "device": settings.device, "live_pass": live_pass,
    }
    live_rows = (settings.prior_seconds / fset.hop, settings.participant_seconds / fset.hop,
                 settings.network_prior_seconds / fset.hop)
    n_classes = len(fset.class_names)
    held = heldout_participants(people, holdout, settings.seed)
    choose = settings.class_aware == "auto" and NORMS[norm] == "stratified"
    if choose and not len(held):
        raise ValueError(f"class-aware auto chooses on held-out training participants: it needs at least 3 "
                         f"participants and a holdout, got {len(people)} participant(s) and holdout {holdout:g}")
    if len(held):
        test = np.isin(part, held)
        train_stats = input_statistics(X[~test], strata[~test], norm)
        Xh = normalize_inputs(X[~test], strata[~test], norm, train_stats)
        Xt = normalize_inputs(X[test], strata[test], norm, train_stats)
        level = input_level(Xh, y[~test], n_classes, settings, fset.hop)
        m, m_kwargs = fit(Xh, y[~test], strata[~test], n_classes, settings,
                          live=LiveOrder(fset.take(~test), strata[~test], *live_rows, level) if live_pass else None)
        report["heldout_participants"] = sorted(held.tolist())
        report["heldout_accuracy"] = float((predict(m, Xt, strata[test], settings.device) == y[test]).mean())
        if session_trials is not None or choose:
            held_out = _bundle(m, m_kwargs, train_stats, fset, dataclasses.replace(settings, class_aware=bool(
                settings.class_aware)), hop, name, {}, Xh, y[~test], level,
                fit_population(fset.take(~test), strata[~test], settings))
        if choose:
            report["class_aware_choice"] = choice = choose_class_aware(held_out, fset.take(test))
            settings = dataclasses.replace(settings, class_aware=choice["chosen"])
            if not choice["chosen"]:
                held_out = dataclasses.replace(held_out, normalization=ClassEffects.strip(held_out.normalization))
        if session_trials is not None:
            report["reliability"] = reliability(held_out, report["heldout_participants"], session_trials)
    report["class_aware"] = bool(settings.class_aware) and NORMS[norm] == "stratified"
    level = input_level(Xn, y, n_classes, settings, fset.hop)
    net, kwargs = fit(Xn, y, strata, n_classes, settings,
                      live=LiveOrder(fset, strata, *live_rows, level) if live_pass else None)
    report["train_accuracy"] = float((predict(net, Xn, strata, settings.device) == y).mean())
    population = fit_population(fset, strata, settings)
    report["population_model"] = population is not None
    report["train_seconds"] = round(time.perf_counter() - t0, 2)
    return _bundle(net, kwargs, stats, fset, settings, hop, name, report, Xn, y, level, population)


def _bundle(net: Classifier, kwargs: dict, stats, fset: FeatureSet, settings: TrainSettings, hop: float, name: str,
            report: dict, Xn: np.ndarray, y: np.ndarray, level: Level | None,
            population: PopulationModel | None = None) -> ModelBundle:
    """A trained network as a bundle, with the input statistics it was trained with (``Xn``, normalized, of
    classes ``y``) as its prior, their class means where live statistics are class-aware, the directions a new
    person's level leaves the prior slowly along (``level``), and the population model where there is one."""
    live = {}
    if settings.class_aware and NORMS[settings.norm] == "stratified":
        live = {**ClassEffects.from_training(Xn, y, len(fset.class_names)).to_dict(),
                "class_fade_seconds": settings.prior_seconds}
    if level is not None:
        live.update(level_basis=np.asarray(level.basis).tolist(), level_seconds=settings.level_seconds)
    return ModelBundle(
        architecture=settings.model, arch_kwargs=kwargs,
        state_dict={k: v.cpu() for k, v in net.state_dict().items()},
        features=fset.features, channels=list(fset.channels), srate=float(fset.srate), unit="microvolts",
        class_names=list(fset.class_names), window=fset.window, hop=hop, filters=fset.filters,
        normalization={"mode": NORMS[settings.norm], "prior_mean": np.asarray(stats[0]).tolist(),
                       "prior_var": np.asarray(stats[1]).tolist(), "prior_seconds": settings.prior_seconds,
                       "network_prior_seconds": settings.network_prior_seconds,
                       "participant_seconds": settings.participant_seconds, "halflife_seconds": None, **live},
        report=report, name=name, population=population.to_dict() if population is not None else {},
    )


def choose_class_aware(bundle: ModelBundle, held: FeatureSet) -> dict:
    """Plain or class-aware live statistics for ``bundle`` (trained with class means, without the participants of
    ``held``): whichever decodes ``held``'s sessions better online, each person's sessions in order as a returning
    person's, by the mean of their accuracies. Plain on a tie: class-aware statistics depend on the model's guesses."""
    from bci_stream.evaluation import replay_features  # evaluation imports this module

    plain = dataclasses.replace(bundle, normalization=ClassEffects.strip(bundle.normalization))
    people = sorted(np.unique(held.participant).tolist(), key=natural_key)
    accuracy = {kind: float(np.mean([np.mean(np.concatenate([p == t for p, t in replay_features(b, held, person)]))
                                     for person in people]))
                for kind, b in (("plain", plain), ("aware", bundle))}
    return {"participants": people, **accuracy, "chosen": accuracy["aware"] > accuracy["plain"]}


def reliability(bundle: ModelBundle, participants: list[str], session_trials: Callable[[str], Iterable[Trial]]) -> dict:
    """Accuracy of ``participants``' sessions replayed live through ``bundle`` (which never saw them), at its window
    and hop, by the stratum's age when each label was published: the seconds of windows its statistics had learned
    from (time since session start less a window plus a hop), which is what a live session knows of itself, resumed
    or not. ``first`` sessions start from the population prior, ``returning`` ones from the person's earlier ones."""
    from bci_stream.evaluation import CURVE_BIN, accuracy_curve, replay_participant  # evaluation imports this module

    first, returning = [], []
    for p in participants:
        for into, scored in zip((first, returning), replay_participant(bundle, session_trials(p), bundle.window,
                                                                       bundle.hop)):
            into += [(t - bundle.window + bundle.hop, predicted, true) for t, predicted, true in scored]
    return {"bin_seconds": CURVE_BIN, "hop": bundle.hop, "participants": list(participants),
            "first": accuracy_curve(first), "returning": accuracy_curve(returning)}
