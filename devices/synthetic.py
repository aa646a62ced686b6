"""Our own EEG generator: realistic enough to train and test on, with emotions and person-to-person differences.

Each channel is a sum of band-limited noise components (delta ... gamma, with an
individual alpha peak) over a 1/f background, plus optional blinks, muscle
bursts and line noise. The emotion state scales band amplitudes with a fixed
spatial pattern (shared by everyone, which is what a cross-subject model can
learn); each participant and session multiplies channels and bands by its own
gains (which is what defeats a model without per-session normalization).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pylsl
from scipy import signal

from bci_stream.montages import DEAP32, SEED62, positions
from bci_stream.sources import Source, SourceError, parse_flag, parse_query
from bci_stream.stream import GENERATED, Chunk, StreamInfo

BANDS = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 14.0), "beta": (14.0, 31.0), "gamma": (31.0, 50.0)}
#: Band RMS amplitudes in microvolts before any gain.
BAND_UV = np.array([6.0, 4.0, 4.0, 2.5, 1.2])


@dataclass(frozen=True)
class Layout:
    name: str
    channels: tuple[str, ...]
    srate: float
    classes: tuple[str, ...]
    #: (valence, arousal) of each class, in [-1, 1]
    affect: tuple[tuple[float, float], ...]


LAYOUTS = {
    "seed62": Layout("seed62", tuple(SEED62), 200.0, ("negative", "neutral", "positive"),
                     ((-1.0, 0.0), (0.0, 0.0), (1.0, 0.0))),
    # BrainFlow's synthetic board montage, to train the model that runs on it.
    "brainflow16": Layout("brainflow16", ("Fz", "C3", "Cz", "C4", "Pz", "PO7", "Oz", "PO8", "F5", "F7", "F3", "F1",
                                          "F2", "F4", "F6", "F8"), 250.0, ("negative", "neutral", "positive"),
                          ((-1.0, 0.0), (0.0, 0.0), (1.0, 0.0))),
    "deap32": Layout("deap32", tuple(DEAP32), 128.0,
                     ("low-valence/low-arousal", "low-valence/high-arousal",
                      "high-valence/low-arousal", "high-valence/high-arousal"),
                     ((-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0))),
}


def _seed(*parts) -> list[int]:
    return [p if isinstance(p, int) else zlib.crc32(str(p).encode()) for p in parts]


def emotion_pattern(channels) -> np.ndarray:
    """Log-amplitude change per (valence/arousal unit, band, channel): [2, bands, channels].

    Loosely after the SEED/DEAP literature: positive valence raises lateral
    temporal beta/gamma and lowers left-frontal alpha; arousal raises beta and
    lowers posterior alpha.
    """
    xy = positions(channels)
    x, y = xy[:, 0], xy[:, 1]
    lateral, frontal, posterior = np.abs(x), np.clip(y, 0, 1), np.clip(-y, 0, 1)
    left = np.clip(-x, 0, 1)
    val = np.stack([0.15 * frontal, -0.10 + 0 * x, -0.35 * frontal * left - 0.1,
                    0.30 * lateral + 0.1, 0.45 * lateral + 0.15])
    aro = np.stack([-0.1 * frontal, 0.2 * frontal, -0.35 * posterior - 0.1, 0.3 + 0 * x, 0.2 * lateral])
    return np.stack([val, aro])


class SyntheticEEG:
    """Deterministic generator: the same (seed, participant, session) gives the same bytes, block by block."""

    def __init__(self, layout: str = "seed62", participant=1, session=1, seed: int = 0, srate: float | None = None,
                 trial_seconds: float = 20.0, schedule=None, blinks: bool = True, muscle: bool = True,
                 line_noise: float | None = 50.0, block_seconds: float = 0.02, effect: float = 1.0):
        if layout not in LAYOUTS:
            raise SourceError(f"unknown synthetic layout {layout!r}; known: {', '.join(LAYOUTS)}")
        self.layout = L = LAYOUTS[layout]
        self.srate = float(srate or L.srate)
        nyq = self.srate / 2
        if nyq <= 20:
            raise SourceError(f"synthetic EEG needs a sampling rate above 40 Hz, got {self.srate}")
        self.participant, self.session = str(participant), str(session)
        C = len(L.channels)
        self.block = max(1, round(block_seconds * self.srate))
        self.trial_len = max(1, round(trial_seconds * self.srate))
        self.blinks, self.muscle = blinks, muscle
        self.line_noise = line_noise if line_noise and line_noise < nyq else None

        prng = np.random.default_rng(_seed(seed, "participant", self.participant))
        srng = np.random.default_rng(_seed(seed, "session", self.participant, self.session))
        # One generator per noise component and one per second of artefact events, so the
        # bytes do not depend on how the stream is cut into blocks.
        self._noise = [np.random.default_rng(_seed(seed, "noise", k, self.participant, self.session)) for k in range(7)]
        self._event_seed = _seed(seed, "events", self.participant, self.session)
        self._events_until = 0  # artefact events are drawn for whole seconds before this sample
        self._schedule_rng = np.random.default_rng(_seed(seed, "schedule", self.participant, self.session))
        B = len(BANDS)
        iaf = prng.uniform(8.5, 11.5)
        # Person and session: channel gains and band x channel spectral offsets (log amplitude).
        # Sessions of one person differ less than people do (re-placed electrodes, impedance).
        gain = np.exp(prng.normal(0, 0.35, C) + srng.normal(0, 0.05, C))
        offset = (prng.normal(0, 0.5, (B, 1)) + prng.normal(0, 0.25, (B, C))
                  + srng.normal(0, 0.06, (B, 1)) + srng.normal(0, 0.05, (B, C)))
        posterior = np.clip(-positions(L.channels)[:, 1], 0, 1)
        base = BAND_UV[:, None] * np.ones((B, C))
        base[2] *= 1 + 1.5 * posterior  # alpha is strongest over the back
        pattern = emotion_pattern(L.channels) * effect * prng.uniform(0.8, 1.2)
        affect = np.asarray(L.affect)  # [classes, 2]
        log_amp = np.log(base)[None] + offset[None] + np.einsum("kf,fbc->kbc", affect, pattern)
        self._amp = (np.exp(log_amp) * gain[None, None, :]).astype(np.float64)  # [classes, bands, C]

        edges = list(BANDS.values())
        edges[2] = (iaf - 2.5, iaf + 2.5)
        self._band_sos = []
        for lo, hi in edges:
            hi = min(hi, nyq * 0.9)
            sos = signal.butter(3, (lo, hi), "bandpass", fs=self.srate, output="sos")
            self._band_sos.append((sos, 1.0 / np.sqrt(2 * (hi - lo) / self.srate)))
        self._band_zi = [np.zeros((s.shape[0], 2, C)) for s, _ in self._band_sos]
        # 1/f background: Kellet/Smith pink-noise filter.
        self._pink = (np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786]),
                      np.array([1, -2.494956002, 2.017265875, -0.522189400]))
        self._pink_zi = np.zeros((3, C))
        self._pink_gain = 2.0 * gain / 0.087  # the filter passes 0.087 of white noise's RMS: 2 uV
        self._muscle_sos = signal.butter(3, (20.0, min(60.0, nyq * 0.9)), "bandpass", fs=self.srate, output="sos")
        self._muscle_zi = np.zeros((self._muscle_sos.shape[0], 2, C))
        self._muscle_w = 60.0 * np.clip(np.abs(positions(L.channels)[:, 0]), 0.2, 1) * gain
        self._blink_w = 120.0 * np.exp(-4 * (1 - np.clip(positions(L.channels)[:, 1], -1, 1)))
        self._line_w = prng.uniform(2, 10, C)
        self._events: list[tuple[str, int, int, float]] = []  # (kind, onset, length, amplitude)
        # Class of each trial: a given order repeated (SEED shows films in one fixed order),
        # or seeded shuffles in which every class appears once per round.
        self._schedule: list[int] = list(schedule or [])
        self._fixed_schedule = list(schedule or [])
        self.n = 0  # samples generated so far
        self.info = StreamInfo(
            name=f"synthetic-{layout}", channel_names=L.channels, srate=self.srate, unit="microvolts",
            source_id=f"synthetic:{layout}:{self.participant}:{self.session}:{seed}",
            device=GENERATED,
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.layout.classes

    def class_at(self, index: np.ndarray | int) -> np.ndarray:
        """True class index of each absolute sample index (trials follow a seeded shuffled order)."""
        trial = np.asarray(index) // self.trial_len
        k = len(self.layout.classes)
        while len(self._schedule) <= int(np.max(trial)):
            self._schedule.extend(self._fixed_schedule or self._schedule_rng.permutation(k).tolist())
        return np.asarray(self._schedule)[trial]

    def next_block(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` (default ``block``) samples [n, C] in microvolts and their true class indices."""
        n = n or self.block
        C, noise = len(self.layout.channels), self._noise
        idx = np.arange(self.n, self.n + n)
        cls = self.class_at(idx)
        out = np.zeros((n, C))
        for b, ((sos, norm), zi) in enumerate(zip(self._band_sos, self._band_zi)):
            comp, self._band_zi[b] = signal.sosfilt(sos, noise[b].standard_normal((n, C)), axis=0, zi=zi)
            out += comp * norm * self._amp[cls, b, :]
        pink, self._pink_zi = signal.lfilter(*self._pink, noise[5].standard_normal((n, C)), axis=0, zi=self._pink_zi)
        out += pink * self._pink_gain
        out += self._artifacts(idx)
        if self.line_noise:
            out += np.sin(2 * np.pi * self.line_noise * idx / self.srate)[:, None] * self._line_w
        self.n += n
        return out.astype(np.float32), cls

    def _draw_events(self, until: int) -> None:
        """Blink and muscle onsets for every whole second that starts before ``until``."""
        sec = max(1, round(self.srate))
        while self._events_until < until:
            rng = np.random.default_rng(self._event_seed + [self._events_until // sec])
            start = self._events_until
            if self.blinks:
                for _ in range(rng.poisson(0.25)):
                    self._events.append(("blink", start + int(rng.integers(sec)), round(0.3 * self.srate), rng.uniform(0.6, 1.4)))
            if self.muscle:
                for _ in range(rng.poisson(0.05)):
                    length = round(rng.uniform(0.5, 1.5) * self.srate)
                    self._events.append(("muscle", start + int(rng.integers(sec)), length, rng.uniform(0.5, 1.5)))
            self._events_until += sec

    def _artifacts(self, idx: np.ndarray) -> np.ndarray:
        n = len(idx)
        start = int(idx[0])
        self._draw_events(start + n)
        envelope = {"blink": np.zeros(n), "muscle": np.zeros(n)}
        for kind, onset, length, amp in self._events:
            a, b = max(onset, start), min(onset + length, start + n)
            if a < b:
                phase = (np.arange(a, b) - onset) / length
                envelope[kind][a - start : b - start] += amp * (np.sin(np.pi * phase) ** 2 if kind == "blink" else 1.0)
        self._events = [e for e in self._events if e[1] + e[2] > start + n]
        out = envelope["blink"][:, None] * self._blink_w
        if self.muscle:
            burst, self._muscle_zi = signal.sosfilt(
                self._muscle_sos, self._noise[6].standard_normal((n, len(self.layout.channels))), axis=0, zi=self._muscle_zi
            )
            out += envelope["muscle"][:, None] * burst * self._muscle_w
        return out

    def generate(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """``n_samples`` more samples at once (for datasets and tests), with their classes."""
        return self.next_block(n_samples)


def _flag(v: str) -> bool:
    return parse_flag(v, "synthetic source")


class SyntheticSource(Source):
    """``synthetic:LAYOUT[?participant=P&session=S&seed=N&srate=HZ&realtime=1&trial=SEC&blinks=1&muscle=1&line=50]``.

    Sample ``i`` is stamped ``t0 + (i + 1) / srate`` in the LSL clock and, in real
    time, released at that moment: the timestamp is when the sample exists.
    """

    def __init__(self, layout: str = "seed62", realtime: bool = True, **kwargs):
        self.gen = SyntheticEEG(layout, **kwargs)
        self.info = self.gen.info
        self.realtime = realtime
        self.last_classes = np.empty(0, np.int64)
        self._open = True

    @classmethod
    def from_spec(cls, spec: str, **defaults) -> "SyntheticSource":
        layout, params = parse_query(spec)
        conv = {"participant": str, "session": str, "seed": int, "srate": float, "trial": float,
                "realtime": _flag, "blinks": _flag, "muscle": _flag, "line": lambda v: None if v in ("", "0", "off") else float(v)}
        unknown = set(params) - set(conv)
        if unknown:
            raise SourceError(f"synthetic source {spec!r}: unknown option(s) {sorted(unknown)}; known: {', '.join(conv)}")
        kw = {k: defaults[k] for k in ("participant", "session", "seed") if defaults.get(k) is not None}
        kw.update({k: conv[k](v) for k, v in params.items()})
        rename = {"trial": "trial_seconds", "line": "line_noise"}
        kw = {rename.get(k, k): v for k, v in kw.items()}
        return cls(layout or "seed62", **kw)

    def chunks(self) -> Iterator[Chunk]:
        srate = self.gen.srate
        t0 = pylsl.local_clock()
        while self._open:
            start = self.gen.n
            data, self.last_classes = self.gen.next_block()
            ts = t0 + (np.arange(start, start + len(data)) + 1) / srate
            if self.realtime:
                wait = ts[-1] - pylsl.local_clock()
                if wait > 0:
                    time.sleep(wait)
            yield Chunk(data, ts)

    def close(self) -> None:
        self._open = False
