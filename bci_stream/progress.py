"""Progress for long work on stderr: a bar on a terminal, a few plain lines otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str, quiet: bool = False, stream=None):
        self.total, self.desc, self.quiet = max(1, int(total)), desc, quiet
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
        # A terminal redraws often; a log file gets a line every 10 s or so.
        if not done and now - self._last < (0.1 if self._tty else 10.0):
            return
        self._last = now
        frac = min(1.0, self.n / self.total)
        elapsed = now - self._t0
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * int(frac * 30)
        line = f"{self.desc}: [{bar:<30}] {self.n}/{self.total} {elapsed:5.1f}s eta {eta:5.1f}s {note}"
        if self._tty:
            print("\r" + line, end="\n" if done else "", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)
