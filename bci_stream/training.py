"""Cross-participant training of a model bundle from per-session-normalized features."""

from __future__ import annotations

import time

import numpy as np
import torch

from bci_stream import registry
from bci_stream.batch import FeatureSet
from bci_stream.bundle import ModelBundle
from bci_stream.progress import Progress


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


def fit(X: np.ndarray, y: np.ndarray, n_classes: int, architecture: str = "mlp", arch_kwargs: dict | None = None,
        epochs: int = 100, lr: float = 5e-3, seed: int = 0, device: str = "cpu", quiet: bool = False):
    """Full-batch Adam, lr x0.2 at 40 % of the epochs (as in Fdez et al. 2021). Returns (model, kwargs)."""
    torch.manual_seed(seed)
    kwargs = {"n_features": X.shape[1], "n_classes": n_classes, **(arch_kwargs or {})}
    model = registry.load_plugin("models", architecture)(**kwargs).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, int(0.4 * epochs)), gamma=0.2)
    xt = torch.as_tensor(X, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.long, device=device)
    progress = Progress(epochs, "training", quiet)
    model.train()
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        sched.step()
        progress.update(note=f"loss {loss.item():.4f}")
    return model.eval(), kwargs


def accuracy(model, X: np.ndarray, y: np.ndarray, device: str = "cpu") -> float:
    with torch.inference_mode():
        pred = model(torch.as_tensor(X, dtype=torch.float32, device=device)).argmax(-1).cpu().numpy()
    return float((pred == y).mean())


def train_bundle(fs: FeatureSet, name: str, architecture: str = "mlp", epochs: int = 100, seed: int = 0,
                 device: str = "cpu", holdout: float = 0.2, hop: float = 0.1, quiet: bool = False,
                 prior_weight: float = 30.0) -> ModelBundle:
    """Train on per-session z-scored features; report accuracy on held-out participants, then refit on all."""
    t0 = time.perf_counter()
    strata = stratum_ids(fs.participant, fs.session)
    Xn = stratified_zscore(fs.X, strata)
    people = np.unique(fs.participant)
    rng = np.random.default_rng(seed)
    n_out = max(1, int(round(holdout * len(people)))) if len(people) > 1 else 0
    held = set(rng.choice(people, n_out, replace=False).tolist()) if n_out else set()
    test = np.isin(fs.participant, list(held))
    report = {
        "dataset": name, "features": fs.features, "norm": "stratified", "architecture": architecture,
        "participants": len(people), "windows": int(len(fs.y)), "classes": list(fs.class_names),
        "window": fs.window, "train_hop": fs.hop, "epochs": epochs, "seed": seed,
    }
    if held:
        model, _ = fit(Xn[~test], fs.y[~test], len(fs.class_names), architecture, epochs=epochs, seed=seed,
                       device=device, quiet=quiet)
        report["heldout_participants"] = sorted(held)
        report["heldout_accuracy"] = accuracy(model, Xn[test], fs.y[test], device)
        report["train_accuracy"] = accuracy(model, Xn[~test], fs.y[~test], device)
    model, kwargs = fit(Xn, fs.y, len(fs.class_names), architecture, epochs=epochs, seed=seed, device=device, quiet=quiet)
    report["train_seconds"] = round(time.perf_counter() - t0, 2)
    return ModelBundle(
        architecture=architecture, arch_kwargs=kwargs, state_dict=model.state_dict(), features=fs.features,
        channels=list(fs.channels), srate=float(fs.srate), unit="microvolts", class_names=list(fs.class_names),
        window=fs.window, hop=hop, filters=fs.filters,
        normalization={"mode": "stratified", "prior_mean": fs.X.mean(axis=0).tolist(),
                       "prior_var": within_stratum_var(fs.X, strata).tolist(), "prior_weight": prior_weight,
                       "halflife": None},
        report=report, name=name,
    )
