"""Cross-participant training: inputs and hidden layers normalized per stratum, or the baselines."""

from __future__ import annotations

import re
import time

import numpy as np
import torch

from bci_stream import registry
from bci_stream.batch import FeatureSet
from bci_stream.bundle import ModelBundle
from bci_stream.progress import Progress
from bci_stream.plugins.models import LiveStrata, causal_zscore

#: --norm -> (how inputs are normalized, how hidden layers are)
NORMS = {"stratified": "stratified", "batch": "global", "none": "global"}


def natural_key(name: str) -> list:
    """Participant 2 before participant 10, and session 9 before session 10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def stratum_ids(participant: np.ndarray, session: np.ndarray) -> np.ndarray:
    keys = np.char.add(np.char.add(participant.astype(str), "\x1f"), session.astype(str))
    return np.unique(keys, return_inverse=True)[1]


def stratified_zscore(X: np.ndarray, strata: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Offline stratified normalization: each stratum's rows z-scored by that stratum's own statistics."""
    out = np.empty_like(X, dtype=np.float32)
    for s in np.unique(strata):
        rows = strata == s
        m, v = X[rows].mean(axis=0), X[rows].var(axis=0)
        out[rows] = (X[rows] - m) / np.sqrt(v + eps)
    return out


def within_stratum_var(X: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Mean of the per-stratum variances: the spread a model sees inside one session."""
    return np.mean([X[strata == s].var(axis=0) for s in np.unique(strata)], axis=0)


def normalize_inputs(X: np.ndarray, strata: np.ndarray, norm: str, train_stats=None) -> np.ndarray:
    """Per-stratum z-scores for ``stratified``; z-scores by the training population's statistics otherwise."""
    if NORMS[norm] == "stratified":
        return stratified_zscore(X, strata)
    mean, var = train_stats
    return ((X - mean) / np.sqrt(var + 1e-8)).astype(np.float32)


class LiveOrder:
    """Training sessions laid out as the live path meets them, to train on live statistics.

    Each session's trials come in a fresh random order at every step (so no film
    order is learnt), each trial's windows in time order. Inputs are z-scored
    causally with the warm-up prior the live normalizer would use: the other
    participants' statistics for a participant's first session, their earlier
    sessions (in natural order) after that.
    """

    def __init__(self, fs: FeatureSet, strata: np.ndarray, prior_rows: float, participant_rows: float,
                 network_rows: float):
        self.network_rows = network_rows
        self.sessions = {}  # stratum -> (its rows grouped by trial, prior mean, prior var, prior weight)
        for p in np.unique(fs.participant):
            mine = fs.participant == p
            others = ~mine if (~mine).any() else mine  # with one participant, the population is them
            prior = (fs.X[others].mean(0), within_stratum_var(fs.X[others], strata[others]), prior_rows)
            earlier = []
            for s in sorted(np.unique(fs.session[mine]), key=natural_key):
                rows = np.flatnonzero(mine & (fs.session == s))
                trials = [rows[fs.trial[rows] == t] for t in np.unique(fs.trial[rows])]
                self.sessions[int(strata[rows[0]])] = (trials, *prior)
                earlier.append(rows)
                pooled = fs.X[np.concatenate(earlier)]
                prior = (pooled.mean(0), pooled.var(0), participant_rows)
        self.X = torch.as_tensor(fs.X, dtype=torch.float64)

    def batch(self, rng: np.random.Generator, strata) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """(rows, their inputs z-scored live, start of each row's stratum) for the strata given."""
        rows, z, start = [], [], []
        n = 0
        for s in strata:
            trials, mean, var, weight = self.sessions[s]
            r = np.concatenate([trials[i] for i in rng.permutation(len(trials))])
            rows.append(r)
            z.append(causal_zscore(self.X[r], torch.zeros(len(r), dtype=torch.long), torch.as_tensor(mean),
                                   torch.as_tensor(var), weight, 1e-8).float())
            start.append(np.full(len(r), n))
            n += len(r)
        return np.concatenate(rows), torch.cat(z), torch.as_tensor(np.concatenate(start))


def architecture_for(norm: str, model: str | None = None) -> tuple[str, dict]:
    """Registered model name and its arguments; the DEAP baselines are asked for by name."""
    if model in (None, "featurenet"):
        return "featurenet", {"norm": norm}
    return model, {}


def fit(X: np.ndarray, y: np.ndarray, strata: np.ndarray, n_classes: int, architecture: str = "featurenet",
        arch_kwargs: dict | None = None, epochs: int = 100, lr: float = 5e-3, seed: int = 0, device: str = "cpu",
        batch_strata: int | None = None, quiet: bool = False, live: LiveOrder | None = None):
    """Adam, lr x0.2 at 40 % of the epochs (Fdez et al. 2021). Returns (model, constructor kwargs).

    Full-batch by default; with ``batch_strata`` each minibatch holds every window
    of that many whole strata, so stratified layers see the statistics they will see live.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    kwargs = {"n_features": X.shape[1], "n_classes": n_classes, **(arch_kwargs or {})}
    model = registry.load_plugin("models", architecture)(**kwargs).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, int(0.4 * epochs)), gamma=0.2)
    xt = torch.as_tensor(X, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.long, device=device)
    st = torch.as_tensor(strata, dtype=torch.long, device=device)
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    progress = Progress(epochs, "training", quiet)
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
    model.eval()
    if hasattr(model, "fit_priors"):
        model.fit_priors(xt, st)
    return model, kwargs


def predict(model, X: np.ndarray, strata: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Class indices offline: stratified layers use each whole test session's rows."""
    with torch.inference_mode():
        logits = model(torch.as_tensor(X, dtype=torch.float32, device=device),
                       torch.as_tensor(strata, dtype=torch.long, device=device))
    return logits.argmax(-1).cpu().numpy()


def train_bundle(fs: FeatureSet, name: str, norm: str = "stratified", model: str | None = None, epochs: int = 100,
                 seed: int = 0, device: str = "cpu", holdout: float = 0.2, hop: float = 0.1, quiet: bool = False,
                 prior_seconds: float = 15.0, network_prior_seconds: float = 600.0, participant_seconds: float = 240.0,
                 batch_strata: int | None = None, live_pass: bool = True) -> ModelBundle:
    """Train on every window of ``fs``; with ``holdout``, first report accuracy on held-out participants.

    With ``live_pass`` (stratified FeatureNet, trials known), every step also trains on
    the sessions replayed through running statistics (:class:`LiveOrder`), so the model
    meets in training the young statistics it meets live.
    """
    t0 = time.perf_counter()
    X, y, part = fs.X, fs.y, fs.participant
    strata = stratum_ids(part, fs.session)
    stats = (X.mean(axis=0), X.var(axis=0))
    Xn = normalize_inputs(X, strata, norm, stats)
    arch, arch_kwargs = architecture_for(norm, model)
    people = np.unique(part)
    live_pass = live_pass and norm == "stratified" and arch == "featurenet" and fs.trial is not None
    report = {
        "dataset": name, "features": fs.features, "norm": norm, "architecture": arch,
        "participants": len(people), "windows": int(len(y)), "classes": list(fs.class_names),
        "window": fs.window, "train_hop": fs.hop, "epochs": epochs, "seed": seed, "device": device,
        "live_pass": live_pass,
    }
    fit_args = dict(arch_kwargs=arch_kwargs, epochs=epochs, seed=seed, device=device, batch_strata=batch_strata,
                    quiet=quiet)
    live_rows = (prior_seconds / fs.hop, participant_seconds / fs.hop, network_prior_seconds / fs.hop)
    n_out = int(round(holdout * len(people))) if len(people) > 2 else 0
    if n_out:
        held = np.random.default_rng(seed).choice(people, n_out, replace=False)
        test = np.isin(part, held)
        Xh = normalize_inputs(X[~test], strata[~test], norm, (X[~test].mean(0), X[~test].var(0)))
        Xt = normalize_inputs(X[test], strata[test], norm, (X[~test].mean(0), X[~test].var(0)))
        m, _ = fit(Xh, y[~test], strata[~test], len(fs.class_names), arch, **fit_args,
                   live=LiveOrder(fs.take(~test), strata[~test], *live_rows) if live_pass else None)
        report["heldout_participants"] = sorted(held.tolist())
        report["heldout_accuracy"] = float((predict(m, Xt, strata[test], device) == y[test]).mean())
    net, kwargs = fit(Xn, y, strata, len(fs.class_names), arch, **fit_args,
                      live=LiveOrder(fs, strata, *live_rows) if live_pass else None)
    report["train_accuracy"] = float((predict(net, Xn, strata, device) == y).mean())
    report["train_seconds"] = round(time.perf_counter() - t0, 2)
    input_mode = NORMS[norm]
    return ModelBundle(
        architecture=arch, arch_kwargs=kwargs, state_dict={k: v.cpu() for k, v in net.state_dict().items()},
        features=fs.features, channels=list(fs.channels), srate=float(fs.srate), unit="microvolts",
        class_names=list(fs.class_names), window=fs.window, hop=hop, filters=fs.filters,
        normalization={"mode": input_mode, "prior_mean": stats[0].tolist(),
                       "prior_var": (within_stratum_var(X, strata) if input_mode == "stratified" else stats[1]).tolist(),
                       "prior_seconds": prior_seconds, "network_prior_seconds": network_prior_seconds,
                       "participant_seconds": participant_seconds,
                       "halflife_seconds": None},
        report=report, name=name,
    )
