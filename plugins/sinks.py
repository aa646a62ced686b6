"""Prediction sinks besides LSL: a JSON-lines log and a one-line-per-prediction console printer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bci_stream.pipeline import Prediction


class JsonlLog:
    """Appends one JSON object per prediction; flushed per line so a crash loses nothing written."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", encoding="utf-8")

    def send(self, p: Prediction) -> None:
        self._f.write(json.dumps(p.to_dict()) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class ConsolePrinter:
    """``t=12.300 positive  negative=0.08 neutral=0.21 positive=0.71 [P1/1 warm-up]``; an artifact window:
    ``t=12.400 artifact     (amplitude) [P1/1]``."""

    def __init__(self, stream=None, t0: float | None = None):
        self.stream = stream or sys.stdout
        self.t0 = t0

    def send(self, p: Prediction) -> None:
        if self.t0 is None:
            self.t0 = p.timestamp
        probs = f"({p.artifact})" if p.artifact else " ".join(f"{c}={v:.2f}" for c, v in zip(p.class_names, p.probabilities))
        warm = " warm-up" if p.warming_up else ""
        print(f"t={p.timestamp - self.t0:8.3f} {p.label:<12} {probs} [{p.participant}/{p.session}{warm}]",
              file=self.stream, flush=True)

    def close(self) -> None:
        pass
