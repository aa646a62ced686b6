"""Our own EEG generator: realistic enough to train and test on, with emotions and person-to-person differences.

Each channel is a sum of band-limited noise components (delta ... gamma, with an
individual alpha peak) over a 1/f background, plus optional blinks, muscle
bursts and line noise. The emotion state scales band amplitudes with a fixed
spatial pattern (shared by everyone, which is what a cross-subject model can
learn); each participant and session multiplies channels and bands by its own
gains (which is what defeats a model without per-session normalization).
That alone is far easier than real EEG; ``SyntheticEEG``'s knobs (``difficulty="seed"``) add what
real recordings have: personal patterns, drift within a session, session and clip differences.
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
#: RMS of a storm's white noise in microvolts, before the episode's own factor (0.6 to 1.4).
STORM_UV = 500.0


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


#: Knob presets (see ``SyntheticEEG``). "easy" is the generator as it always was. "seed" is calibrated by
#: benchmarks/calibrate_synthetic.py to the SEED paper's offline LOSO figures on SEED's 15 people x 3 sessions of
#: 4-min trials, at EEG-sized median amplitudes (``spread``) with a real recording's loudest channels (``ceiling``),
#: blinks at a film viewer's rate, relaxed muscles (5-uV bursts) and people who lean a little negative or positive at
#: rest (``trait_valence``); the mean of data seeds 0-3 and each figure against the paper are in the README ("What
#: the preset adds") and docs/synthetic-calibration.md ("Three sessions a person").
DIFFICULTY = {
    "easy": {"effect": 1.0, "person_pattern": 0.0, "drift": 0.0, "session_scale": 1.0, "clip_variation": 0.0,
             "clip_arousal": 0.0, "spread": 1.0, "artifact_rate": 1.0, "muscle_uv": 60.0,
             "responsiveness": 0.0, "trait_valence": 0.0, "person_scale": 1.0, "ceiling": 0.0, "shared_arousal": 0.0},
    "seed": {"effect": 4.6, "person_pattern": 2.275, "drift": 0.4225, "session_scale": 0.6, "clip_variation": 4.225,
             "clip_arousal": 0.05, "spread": 0.3, "artifact_rate": 0.5, "muscle_uv": 5.0,
             "responsiveness": 0.0, "trait_valence": 0.3, "person_scale": 1.0, "ceiling": 20.0, "shared_arousal": 1.4},
}


def preset_tag(difficulty: str) -> str:
    """The preset's name and a hash of its knob values, for caches of generated data: data of a preset as it was
    before a re-calibration is never read for the preset as it is."""
    knobs = ",".join(f"{k}={v!r}" for k, v in sorted(DIFFICULTY[difficulty].items()))
    return f"{difficulty}{zlib.crc32(knobs.encode()):08x}"


class SyntheticEEG:
    """Deterministic generator: the same (seed, participant, session) gives the same bytes, block by block.

    What makes real EEG hard to decode across people is a set of knobs; ``difficulty`` picks their
    values from ``DIFFICULTY`` and a knob given explicitly overrides its preset. All are log amplitude
    of the five bands, and "relative" means relative to the RMS of the shared pattern as scaled by
    ``effect`` (log amplitude per unit of valence or arousal):

    - ``effect``: size of the emotion pattern everyone shares.
    - ``person_pattern``: each person's own pattern, added to the shared one (random per valence/arousal,
      band and channel; relative RMS). Real people express emotions differently, and a model trained on
      others cannot learn this part.
    - ``drift``: within a session, band amplitudes walk at random (electrode gel drying, drowsiness):
      SD of the log-amplitude change over one minute, growing with the square root of time; a third of
      the variance is common to a band, a third to a channel. Session statistics then blur the classes.
    - ``person_scale``: people differ at rest by this multiple of the easy setting's person draws (channel gains SD
      0.35, spectral offsets 0.5 per band and 0.25 per band and channel): skull, impedance, age. Only per-session
      statistics remove them; a model over the population meets them whole.
    - ``session_scale``: sessions of one person differ by this multiple of the easy setting's session
      draws (channel gains SD 0.05, spectral offsets 0.06 per band and 0.05 per band and channel).
    - ``clip_variation``: each trial (film clip) adds its own band x channel change (relative RMS), so
      clips of one class differ; drawn per person, session and trial.
    - ``clip_arousal``: emotional clips arouse more than neutral ones: each class's arousal rises by this
      many units per unit of |valence|, so neutral is no longer just the midpoint of negative and positive.
      The rise follows the arousal pattern less its projection on the person's valence pattern, so it moves
      neutral off the negative-positive axis, not along it (which people's offsets would hide without
      per-session normalization). With ``person_pattern`` large the person's arousal pattern is mostly their own,
      so neutral stands apart in a direction a model trained on other people cannot know.
    - ``shared_arousal``: the same rise as ``clip_arousal`` (units per unit of |valence|), but along the arousal
      pattern everyone shares (less its projection on the person's valence pattern): what sets neutral apart the
      same way in every person, which a model without per-session statistics can learn across people.
    - ``spread``: multiplies every log-amplitude departure from the bands' base amplitudes (people's gains and
      offsets, sessions' draws, the patterns, clip variation, drift), keeping their proportions. The other
      knobs are calibrated on features, which see only proportions (one second of DE averages over 310 features);
      this one keeps the EEG itself in microvolts real headsets give, so that the live path's amplitude-based
      artifact rule meets what it would meet in a lab.
    - ``artifact_rate``: multiplies how often blinks (15 a minute at 1, a resting person's rate) and muscle bursts
      (3 a minute) come, where ``blinks`` and ``muscle`` leave them on. People watching a film blink about half as
      often as at rest. Their sizes are in microvolts and do not follow ``spread``. Blinks leave cross-person
      decoding as it is without them; muscle bursts of 15-60 uV, even a few, sink it (README, "Which artifact
      does it").
    - ``muscle_uv``: RMS of a muscle burst's 20-60 Hz noise in microvolts over the temporal channels (less toward
      the midline, times the channel's gain); 60 is a clenched jaw. Bursts fall on the lateral beta and gamma that
      carry most of the valence pattern, where the EEG has 1-3 uV.
    - ``responsiveness``: people react to the same films more or less strongly. Each person's whole emotion pattern
      (shared, own, and the clip_arousal and shared_arousal rises) is multiplied by exp(responsiveness x z), z standard normal per person;
      clip variation and drift are not, so a weak responder's emotions are small against them. Per-subject SEED
      accuracies range over tens of points.
    - ``trait_valence``: each person's resting amplitudes carry a multiple (standard normal x trait_valence, in
      units of valence) of their own valence pattern, in every session and class: the trait part of frontal alpha
      asymmetry, a person who looks a little negative whatever the film. Per-session statistics take it out;
      statistics over the population cannot, and it lies on the axis that separates negative from positive.
    - ``ceiling``: microvolts at which each band's amplitude on a channel saturates, softly (a / sqrt(1 + (a /
      ceiling)^2)), so none exceeds it; 0 leaves amplitudes unbounded. Decoding difficulty is set on features, and
      to match SEED the knobs above need departures per band x channel (SD about 0.8 in log amplitude) far beyond a
      real recording's (0.1-0.2 between its 20-s stretches); unbounded, their lognormal tails put single channels
      at millivolts. Saturating in microvolts tames delta to alpha, which carry the microvolts, and leaves beta and
      gamma (1-3 uV), which carry most of the emotion pattern, nearly as they are.
    """

    def __init__(self, layout: str = "seed62", participant=1, session=1, seed: int = 0, srate: float | None = None,
                 trial_seconds: float = 20.0, schedule=None, blinks: bool = True, muscle: bool = True,
                 line_noise: float | None = 50.0, block_seconds: float = 0.02, effect: float | None = None,
                 storms: float = 0.0, difficulty: str = "easy", person_pattern: float | None = None,
                 drift: float | None = None, session_scale: float | None = None,
                 clip_variation: float | None = None, clip_arousal: float | None = None, spread: float | None = None,
                 artifact_rate: float | None = None, muscle_uv: float | None = None,
                 responsiveness: float | None = None, trait_valence: float | None = None,
                 person_scale: float | None = None, ceiling: float | None = None,
                 shared_arousal: float | None = None):
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
        if not 0 <= storms < float("inf"):
            raise SourceError(f"synthetic storms must be episodes per minute >= 0, got {storms}")
        #: Episodes per minute of broadband noise on every channel (a cable swinging, a charger nearby).
        self.storms = storms
        self._storm_noise = np.random.default_rng(_seed(seed, "storm", self.participant, self.session))
        self.line_noise = line_noise if line_noise and line_noise < nyq else None
        if difficulty not in DIFFICULTY:
            raise SourceError(f"unknown synthetic difficulty {difficulty!r}; known: {', '.join(DIFFICULTY)}")
        given = {"effect": effect, "person_pattern": person_pattern, "drift": drift, "session_scale": session_scale,
                 "clip_variation": clip_variation, "clip_arousal": clip_arousal, "spread": spread,
                 "artifact_rate": artifact_rate, "muscle_uv": muscle_uv, "responsiveness": responsiveness,
                 "trait_valence": trait_valence, "person_scale": person_scale, "ceiling": ceiling,
                 "shared_arousal": shared_arousal}
        self.knobs = {k: float(DIFFICULTY[difficulty][k] if v is None else v) for k, v in given.items()}
        for k, v in self.knobs.items():
            if not 0 <= v < float("inf"):
                raise SourceError(f"synthetic {k} must be a number >= 0, got {v}")
        (effect, person_pattern, drift, session_scale, clip_variation, clip_arousal, spread, rate, muscle_uv,
         responsiveness, trait_valence, person_scale, ceiling, shared_arousal) = self.knobs.values()
        self._ceiling = ceiling
        self._blink_rate, self._muscle_rate = 0.25 * rate, 0.05 * rate  # per second

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
        gain = np.exp(spread * (prng.normal(0, 0.35 * person_scale, C) + srng.normal(0, 0.05 * session_scale, C)))
        offset = spread * (prng.normal(0, 0.5 * person_scale, (B, 1)) + prng.normal(0, 0.25 * person_scale, (B, C))
                           + srng.normal(0, 0.06 * session_scale, (B, 1)) + srng.normal(0, 0.05 * session_scale, (B, C)))
        posterior = np.clip(-positions(L.channels)[:, 1], 0, 1)
        base = BAND_UV[:, None] * np.ones((B, C))
        base[2] *= 1 + 1.5 * posterior  # alpha is strongest over the back
        shared = pattern = emotion_pattern(L.channels) * effect * spread * prng.uniform(0.8, 1.2)
        unit = np.sqrt(np.mean(pattern ** 2))  # what the relative knobs are relative to
        if person_pattern:
            own = np.random.default_rng(_seed(seed, "pattern", self.participant)).standard_normal(pattern.shape)
            pattern = pattern + person_pattern * unit * own
        # Own generator per person for each, so that at 0 every other draw, and so the bytes, are as before.
        trait = trait_valence * np.random.default_rng(_seed(seed, "trait", self.participant)).standard_normal()
        offset = offset + trait * pattern[0]
        react = np.exp(
            responsiveness * np.random.default_rng(_seed(seed, "responsiveness", self.participant)).standard_normal())
        pattern, shared = pattern * react, shared * react
        self._clip_sd = clip_variation * unit
        self._clip_seed = _seed(seed, "clip", self.participant, self.session)
        # Drift: a random walk with a knot every second, interpolated between knots; one generator
        # drawn knot after knot, so the bytes do not depend on block size.
        self.drift = drift
        self._knot = max(1, round(self.srate))
        self._knot_sd = drift * spread * np.sqrt(self._knot / self.srate / 60) / np.sqrt(3)
        self._drift_rng = np.random.default_rng(_seed(seed, "drift", self.participant, self.session))
        self._walk, self._walk_k0 = np.zeros((1, B, C)), 0  # log-amplitude walk at knots _walk_k0, _walk_k0 + 1, ...
        affect = np.asarray(L.affect)  # [classes, 2]
        log_amp = np.log(base)[None] + offset[None] + np.einsum("kf,fbc->kbc", affect, pattern)
        if clip_arousal or shared_arousal:
            # Only the rise's part that the person's valence pattern does not share: that part would pull one
            # emotional class toward neutral along the negative-positive axis and push the other away.
            val = pattern[0]
            rise = clip_arousal * pattern[1] + shared_arousal * shared[1]
            rise = rise - np.sum(rise * val) / max(np.sum(val * val), 1e-300) * val
            log_amp = log_amp + np.abs(affect[:, 0])[:, None, None] * rise[None]
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
        self._muscle_w = muscle_uv * np.clip(np.abs(positions(L.channels)[:, 0]), 0.2, 1) * gain
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
        amp, row = self._amp, cls  # band amplitudes [rows, bands, C] and the row of each sample
        if self._clip_sd:
            trials, row = np.unique(idx // self.trial_len, return_inverse=True)
            amp = np.stack([self._amp[int(self.class_at(t * self.trial_len))] * np.exp(self._clip(t)) for t in trials])
        if self.drift:
            k, frac = np.divmod(idx, self._knot)
            walk = self._walk_between(int(k[0]), int(k[-1]) + 1)
            k, frac = k - int(k[0]), (frac / self._knot)[:, None]
        out = np.zeros((n, C))
        for b, ((sos, norm), zi) in enumerate(zip(self._band_sos, self._band_zi)):
            comp, self._band_zi[b] = signal.sosfilt(sos, noise[b].standard_normal((n, C)), axis=0, zi=zi)
            a = amp[row, b, :]
            if self.drift:
                a = a * np.exp(walk[k, b] + (walk[k + 1, b] - walk[k, b]) * frac)
            if self._ceiling:
                a = a / np.sqrt(1 + (a / self._ceiling) ** 2)
            out += comp * norm * a
        pink, self._pink_zi = signal.lfilter(*self._pink, noise[5].standard_normal((n, C)), axis=0, zi=self._pink_zi)
        out += pink * self._pink_gain
        out += self._artifacts(idx)
        if self.line_noise:
            out += np.sin(2 * np.pi * self.line_noise * idx / self.srate)[:, None] * self._line_w
        self.n += n
        return out.astype(np.float32), cls

    def _clip(self, trial: int) -> np.ndarray:
        """This trial's own log-amplitude change [bands, C]."""
        return np.random.default_rng(self._clip_seed + [int(trial)]).standard_normal(self._amp.shape[1:]) * self._clip_sd

    def _walk_between(self, first: int, last: int) -> np.ndarray:
        """The drift walk at knots ``first`` .. ``last`` [knots, bands, C], drawn as needed; earlier knots are forgotten."""
        self._walk, self._walk_k0 = self._walk[first - self._walk_k0 :], first
        m = last - (first + len(self._walk) - 1)
        if m > 0:
            B, C = self._walk.shape[1:]
            v = self._drift_rng.standard_normal((m, B + C + B * C)) * self._knot_sd
            steps = v[:, :B, None] + v[:, None, B : B + C] + v[:, B + C :].reshape(m, B, C)
            # accumulated one knot after another, so the sums do not depend on how knots are grouped
            self._walk = np.concatenate([self._walk, np.cumsum(np.concatenate([self._walk[-1:], steps]), axis=0)[1:]])
        return self._walk[: last - first + 1]

    def _draw_events(self, until: int) -> None:
        """Blink, muscle and storm onsets for every whole second that starts before ``until``."""
        sec = max(1, round(self.srate))
        while self._events_until < until:
            rng = np.random.default_rng(self._event_seed + [self._events_until // sec])
            start = self._events_until
            if self.blinks:
                for _ in range(rng.poisson(self._blink_rate)):
                    self._events.append(("blink", start + int(rng.integers(sec)), round(0.3 * self.srate), rng.uniform(0.6, 1.4)))
            if self.muscle:
                for _ in range(rng.poisson(self._muscle_rate)):
                    length = round(rng.uniform(0.5, 1.5) * self.srate)
                    self._events.append(("muscle", start + int(rng.integers(sec)), length, rng.uniform(0.5, 1.5)))
            if self.storms:
                for _ in range(rng.poisson(self.storms / 60)):
                    length = round(rng.uniform(5.0, 15.0) * self.srate)
                    self._events.append(("storm", start + int(rng.integers(sec)), length, rng.uniform(0.6, 1.4)))
            self._events_until += sec

    def _artifacts(self, idx: np.ndarray) -> np.ndarray:
        n = len(idx)
        start = int(idx[0])
        self._draw_events(start + n)
        envelope = {"blink": np.zeros(n), "muscle": np.zeros(n), "storm": np.zeros(n)}
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
        if self.storms:  # drawn for every block, so the bytes do not depend on block size
            out += envelope["storm"][:, None] * STORM_UV * self._storm_noise.standard_normal((n, len(self.layout.channels)))
        return out

    def generate(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """``n_samples`` more samples at once (for datasets and tests), with their classes."""
        return self.next_block(n_samples)


def _flag(v: str) -> bool:
    return parse_flag(v, "synthetic source")


class SyntheticSource(Source):
    """``synthetic:LAYOUT[?participant=P&session=S&seed=N&srate=HZ&realtime=1&trial=SEC&blinks=1&muscle=1&line=50&storms=0
    &difficulty=easy&effect=&person_pattern=&drift=&session_scale=&clip_variation=&clip_arousal=&spread=
    &artifact_rate=&muscle_uv=&responsiveness=&trait_valence=&person_scale=&ceiling=&shared_arousal=]``
    (knobs: ``SyntheticEEG``).

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
                "realtime": _flag, "blinks": _flag, "muscle": _flag, "line": lambda v: None if v in ("", "0", "off") else float(v),
                "storms": float, "difficulty": str, **dict.fromkeys(DIFFICULTY["easy"], float)}
        unknown = set(params) - set(conv)
        if unknown:
            raise SourceError(f"synthetic source {spec!r}: unknown option(s) {sorted(unknown)}; known: {', '.join(conv)}")
        kw = {k: defaults[k] for k in ("participant", "session", "seed") if defaults.get(k) is not None}
        for k, v in params.items():
            try:
                kw[k] = conv[k](v)
            except ValueError:
                raise SourceError(f"synthetic source {spec!r}: {k}={v!r}: expected a number") from None
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
