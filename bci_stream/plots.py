"""Figures of evaluation reports: confusion matrix, per-participant accuracy, online accuracy over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bci_stream.evaluation import CURVES


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def write_plots(reports: list[dict], folder) -> list[Path]:
    """One PNG per figure; ``reports`` may hold several normalizations of the same protocol."""
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    for r in reports:
        cm = np.asarray(r["confusion"], float)
        frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        ticks = range(len(r["classes"]))
        ax.set_xticks(ticks, r["classes"], rotation=30, ha="right")
        ax.set_yticks(ticks, r["classes"])
        for i in ticks:
            for j in ticks:
                ax.text(j, i, f"{frac[i, j]:.2f}", ha="center", va="center", color="white" if frac[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{r['dataset']} {r['protocol']} {r['norm']}: {r['mean_accuracy']:.1%}")
        written.append(_save(fig, folder / f"confusion_{r['norm']}.png"))

    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(reports[0]["folds"]) + 2), 3.5))
    width = 0.8 / len(reports)
    for k, r in enumerate(reports):
        x = np.arange(len(r["folds"])) + k * width
        ax.bar(x, [f["accuracy"] for f in r["folds"]], width, label=f"{r['norm']} ({r['mean_accuracy']:.1%})")
        if "online_mean_accuracy" in r:
            ax.plot(x, [f["online_accuracy"] for f in r["folds"]], "k_", markersize=8)
    ax.set_xticks(np.arange(len(reports[0]["folds"])) + 0.4 - width / 2, [f["participant"] for f in reports[0]["folds"]])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (bars offline, dashes online)")
    ax.set_xlabel("held-out participant" if reports[0]["protocol"] == "loso" else "fold")
    ax.legend(fontsize=8)
    written.append(_save(fig, folder / "accuracy_per_participant.png"))

    online = [r for r in reports if "online_curve" in r]
    if online:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for r in online:
            # A new person's first sessions and returning people's later ones apart; older reports have one curve.
            parts = ([(r[key], f"{r['norm']}, {what}", style) for (what, key), style in zip(CURVES, ("-", "--"))
                      if key in r] or [(r["online_curve"], r["norm"], "-")])
            for c, label, style in parts:
                if c:
                    ax.plot([b["t_start"] / 60 for b in c], [b["accuracy"] for b in c], style, marker=".", label=label)
        ax.set_xlabel("minutes since session start")
        ax.set_ylabel("online accuracy")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        written.append(_save(fig, folder / "online_accuracy_over_time.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path
