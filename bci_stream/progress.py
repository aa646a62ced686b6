"""Progress for long work on stderr: a bar for people, JSON lines for scripts, or nothing.

The mode is chosen once per process (``bci-stream --progress``, or the
``BCI_STREAM_PROGRESS`` environment variable) so every long task follows it
without each caller passing it along.
"""

from __future__ import annotations

import json
import os
import sys
import time

MODES = ("bar", "quiet", "json")
ENV = "BCI_STREAM_PROGRESS"
_mode: str | None = None


def _checked(mode: str, where: str) -> str:
    if mode not in MODES:
        raise ValueError(f"{where}: expected one of {', '.join(MODES)}, got {mode!r}")
    return mode


def set_mode(mode: str) -> None:
    global _mode
    _mode = _checked(mode, "progress mode")


def default_mode() -> str:
    """The mode set for this process, else ``$BCI_STREAM_PROGRESS``, else ``bar``."""
    if _mode is not None:
        return _mode
    return _checked(os.environ.get(ENV) or "bar", f"environment variable {ENV}")


class Progress:
    """``quiet=True`` silences this one task whatever the mode; ``mode`` overrides the process's mode."""

    def __init__(self, total: int, desc: str, quiet: bool = False, stream=None, mode: str | None = None):
        self.total, self.desc = max(1, int(total)), desc
        self.mode = "quiet" if quiet else _checked(mode, "progress mode") if mode else default_mode()
        self.quiet = self.mode == "quiet"
        self.stream = stream or sys.stderr
        self.n = 0
        self._t0 = time.perf_counter()
        self._last = -1.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, k: int = 1, note: str = "") -> None:
        self.n += k
        if self.quiet:
            return
        now = time.perf_counter()
        done = self.n >= self.total
        # A terminal redraws often, a script reads twice a second, a log file gets a line every 10 s or so.
        every = 0.5 if self.mode == "json" else 0.1 if self._tty else 10.0
        if not done and now - self._last < every:
            return
        self._last = now
        frac = min(1.0, self.n / self.total)
        elapsed = now - self._t0
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        if self.mode == "json":
            print(json.dumps({"task": self.desc, "n": self.n, "total": self.total, "elapsed_s": round(elapsed, 3),
                              "eta_s": round(eta, 3), "done": done, "note": note}), file=self.stream, flush=True)
            return
        bar = "#" * int(frac * 30)
        line = f"{self.desc}: [{bar:<30}] {self.n}/{self.total} {elapsed:5.1f}s eta {eta:5.1f}s {note}"
        if self._tty:
            print("\r" + line, end="\n" if done else "", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)
