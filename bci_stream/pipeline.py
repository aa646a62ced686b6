"""Chunks in, predictions out: filters -> windows -> features -> stratified normalizer -> classifier."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

import numpy as np
import torch

from bci_stream import registry
from bci_stream.artifacts import ARTIFACT, ArtifactDetector, ArtifactRule
from bci_stream.bundle import ModelBundle
from bci_stream.channels import ChannelMap
from bci_stream.filters import CausalFilter, FilterSpec
from bci_stream.health import StreamHealth
from bci_stream.population import log_linear_pool
from bci_stream.stratified import ANONYMOUS, Strata
from bci_stream.stream import UNITS, Chunk, StreamInfo
from bci_stream.timing import StageTimer
from bci_stream.windower import Windower

log = logging.getLogger("bci_stream.pipeline")

STAGES = ("channels", "filter", "window", "features", "normalize", "classify", "publish")


@dataclass
class Prediction:
    timestamp: float  # LSL time of the window's last sample
    label: str
    probabilities: np.ndarray  # float32 [n_classes], ordered as class_names
    class_names: tuple[str, ...]
    window_index: int  # one past the window's last sample, in stream samples
    participant: str
    session: str
    warming_up: bool
    #: Why the window is an artifact (``amplitude``, ``features``), or None. An artifact's label is ``artifact``
    #: and its probabilities NaN: it was not classified.
    artifact: str | None = None
    #: The accuracy the bundle's held-out people reached live at this stratum's age, and that age in seconds of
    #: windows learned from (``Pipeline.reliability``); None where the bundle has no such curve.
    reliability: float | None = None
    stratum_s: float | None = None

    def to_dict(self) -> dict:
        return {
            "timestamp": self.timestamp,
            "label": self.label,
            "probabilities": None if self.artifact else dict(zip(self.class_names, map(float, self.probabilities))),
            "sample": int(self.window_index),
            "participant": self.participant,
            "session": self.session,
            "warming_up": self.warming_up,
            "artifact": self.artifact,
            **self.reliability_fields(),
        }

    def reliability_fields(self) -> dict:
        """``reliability`` and ``stratum_s`` as the status stream and the log state them; nothing without a curve."""
        if self.reliability is None:
            return {}
        return {"reliability": round(self.reliability, 2), "stratum_s": round(self.stratum_s, 1)}


class Sink(Protocol):
    def send(self, prediction: Prediction) -> None: ...

    def close(self) -> None: ...


class Collect:
    """A sink that keeps every prediction it is sent in ``predictions`` (a list of its own, or the one given), for
    scoring a replay, benchmarks and tests."""

    def __init__(self, predictions: list | None = None):
        self.predictions = [] if predictions is None else predictions

    def send(self, prediction: Prediction) -> None:
        self.predictions.append(prediction)

    def close(self) -> None:
        pass


class Pipeline:
    """One stream, one model, one stratum at a time; sinks receive every prediction."""

    def __init__(
        self,
        info: StreamInfo,
        bundle: ModelBundle,
        participant=ANONYMOUS,
        session="1",
        window: float | None = None,
        hop: float | None = None,
        device: str = "cpu",
        sinks: Iterable[Sink] = (),
        state_dir=None,
        filters: FilterSpec | None = None,
        channels: ChannelMap | None = None,
        report: Callable[..., None] | None = None,
        fresh: bool = False,
        artifacts: ArtifactRule | None = None,
    ):
        self.info, self.bundle = info, bundle
        self.channels = channels or bundle.channel_map(info)
        self.scale = np.float32(bundle.unit_scale(info))
        if abs(np.log(info.srate / bundle.srate)) > 0.01:
            log.info(
                "model %s was trained at %g Hz, stream %r runs at %g Hz: features are computed at the stream's rate",
                bundle.name, bundle.srate, info.name, info.srate,
            )
        self.window = float(window or bundle.window)
        self.hop = float(hop or bundle.hop)
        length, step = round(self.window * info.srate), round(self.hop * info.srate)
        for flag, seconds, samples in (("--window", self.window, length), ("--hop", self.hop, step)):
            if samples < 1:
                raise ValueError(f"{flag} {seconds:g} s is shorter than one sample at {info.srate:g} Hz")
        self.filter = CausalFilter.from_spec(filters or FilterSpec.from_dict(bundle.filters), info.srate, len(bundle.channels))
        self.windower = Windower(length, step, len(bundle.channels))
        self.extractor = registry.load_plugin("features", bundle.features)
        state = None if state_dir is None else f"{state_dir}/{bundle.signature}"
        # Every per-stratum statistic the pipeline keeps, the input's first and then the network's, follows one owner.
        self.strata = Strata(participant, session, fresh)
        self.normalize_inputs = bundle.input_normalization(self.strata, self.hop, state)
        self._learn_inputs = getattr(self.normalize_inputs, "learn", None)  # class-aware statistics learn after the model
        self.device = torch.device(device)
        self.model = bundle.build_model(device)
        self.population = bundle.population_decoder(device)
        self.model.start_online(self.strata, **bundle.online_settings(self.hop, "network"),
                                state_dir=None if state is None else f"{state}/network", signature=bundle.signature)
        self.class_names = tuple(bundle.class_names)
        self.sinks = list(sinks)
        self.health = StreamHealth(info.name, info.srate, report)
        self.report = report
        #: Judges each window; an artifact is published as such, never classified or learned from. None: off.
        self.artifacts = None if artifacts is None else ArtifactDetector(artifacts, UNITS[bundle.unit] / UNITS["microvolts"])
        self.n_artifacts = 0
        self._episode: int | None = None  # artifact windows in the episode under way, or None between episodes
        self.timer = StageTimer(STAGES)
        self.n_windows = 0
        self.n_rejected = 0  # windows withheld for non-finite samples or features
        self.n_halted = 0  # windows withheld while decoding was halted, their samples finite
        self._rejecting = False
        #: Why decoding is halted (too many bad channels to interpolate), or None; windows are still cut.
        self.halted: str | None = None
        self.n_predictions = 0

    def process(self, chunk: Chunk) -> list[Prediction]:
        t = self.timer
        t.start()
        data = self.channels(chunk.data)
        if self.scale != 1:
            data = data * self.scale
        t.lap("channels")
        data = self.filter(data)
        t.lap("filter")
        windows = self.windower.push(data, chunk.timestamps)
        t.lap("window")
        if not len(windows):
            return []
        self.n_windows += len(windows)
        # Nothing non-finite reaches the statistics or the model: a NaN sample, or a feature such as log(0).
        bad = ~np.isfinite(windows.data).all(axis=2)  # [window, model channel]
        ok = ~bad.any(axis=1) & (self.halted is None)
        x = self.extractor.compute(windows.data[ok], self.info.srate) if ok.any() else np.empty((0, 0), np.float32)
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            per = len(self.extractor.per_channel)
            bad[np.flatnonzero(ok)[~finite]] |= (~np.isfinite(x[~finite])).reshape(-1, bad.shape[1], per).any(axis=2)
            ok[np.flatnonzero(ok)[~finite]] = False
            x = x[finite]
        self._note_rejected(bad, ok)
        if not ok.any():
            return []
        why = [None] * len(x) if self.artifacts is None else self.artifacts(windows.data[ok], x)
        self._note_artifacts(why, windows.end_times[ok])
        clean = np.array([w is None for w in why])
        t.lap("features")
        probs = np.full((len(x), len(self.class_names)), np.nan, np.float32)
        # Window by window, so that what a label states of its stratum (warming up before it, reliability once it
        # is learned) is the same however the stream was cut into chunks.
        warm, known = [], []
        for i, w in enumerate(why):
            warm.append(self.strata.warming_up())
            if w is None:
                probs[i] = self.classify(x[i : i + 1])[0]
            known.append(None if w else self.reliability())
        preds = [
            Prediction(
                float(ts), ARTIFACT if w else self.class_names[int(p.argmax())], p, self.class_names, int(idx),
                *self.strata.key, wu, w and w["reason"], *(k or (None, None)),
            )
            for ts, idx, p, w, wu, k in zip(windows.end_times[ok], windows.end_indices[ok], probs, why, warm, known)
        ]
        for pred in preds:
            for sink in self.sinks:
                sink.send(pred)
        self.n_predictions += int(clean.sum())
        t.lap("publish")
        return preds

    def classify(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of clean feature rows, in time order, as the current stratum's: one window at a time,
        because class-aware statistics learn each window, from what the model made of it, before the next is
        normalized. A bundle's population model is pooled in while the population weighs in the stratum's
        statistics (bci_stream/population.py)."""
        t = self.timer
        probs = np.empty((len(x), len(self.class_names)), np.float32)
        for i in range(len(x)):
            z = x[i : i + 1] if self.normalize_inputs is None else self.normalize_inputs(x[i : i + 1])
            t.lap("normalize")
            with torch.inference_mode():
                logits = self.model(torch.from_numpy(np.ascontiguousarray(z, np.float32)).to(self.device))
                probs[i] = torch.softmax(logits, dim=-1).cpu().numpy()[0]
            share = 0.0 if self.population is None else self.strata.population_share()
            if share > 0:
                probs[i] = log_linear_pool(probs[i], self.population(x[i : i + 1])[0], share)
            if self._learn_inputs is not None:
                self._learn_inputs(x[i], probs[i])
            t.lap("classify")
        return probs

    def reliability(self) -> tuple[float, float] | None:
        """(the bundle's reliability at the current stratum's age, that age in seconds of windows learned from),
        the age read from the first statistics the data meets and the curve chosen by their warm-up prior; None
        where the bundle has no curve for it, or the model keeps no statistics per stratum. An artifact window
        gets neither: it has no class label to trust or not."""
        stats = self.strata.stats()
        if stats is None:
            return None
        age = stats.count * self.hop
        value = self.bundle.reliability(age, self.strata.returning())
        return None if value is None else (value, age)

    def _note_rejected(self, bad: np.ndarray, ok: np.ndarray) -> None:
        """Count withheld windows; say so once when withholding starts, naming the channels, and once when it ends."""
        nonfinite = bad.any(axis=1)
        self.n_rejected += int((~ok & nonfinite).sum())
        self.n_halted += int((~ok & ~nonfinite).sum())
        if (~ok).any() and not self._rejecting:
            channels = [c for c, b in zip(self.bundle.channels, bad.any(axis=0)) if b]
            why = (f"channel(s) {', '.join(channels)} non-finite (NaN/Inf samples or features)" if channels
                   else f"decoding halted: {self.halted}")
            log.warning("stream %r: windows not classified from here on: %s", self.info.name, why)
        elif ok.all() and self._rejecting:
            log.info("stream %r: classifying again (%d window(s) withheld so far)", self.info.name,
                     self.n_rejected + self.n_halted)
        self._rejecting = bool((~ok).any()) and not ok[-1]

    def _note_artifacts(self, why: list[dict | None], times: np.ndarray) -> None:
        """Count artifact windows; say so once when an episode starts (why) and once when it ends (how long),
        in the log and on the status stream."""
        for w, ts in zip(why, times):
            if w is not None and self._episode is None:
                self._episode = 0
                log.warning("stream %r: artifact (%s): windows labelled %r, neither classified nor learned from, "
                            "until it ends", self.info.name, ", ".join(f"{k}={v}" for k, v in w.items()), ARTIFACT)
                if self.report is not None:
                    self.report(float(ts), event="artifact", **w)
            elif w is None and self._episode is not None:
                log.info("stream %r: clean again after %d artifact window(s)", self.info.name, self._episode)
                if self.report is not None:
                    self.report(float(ts), event="clean", windows=self._episode)
                self._episode = None
            if w is not None:
                self._episode += 1
                self.n_artifacts += 1

    def run(self, chunks: Iterable[Chunk], duration: float | None = None, should_stop: Callable[[], bool] | None = None,
            hooks: Iterable[Callable[[Chunk], None]] = ()) -> None:
        """Process until the source ends, ``duration`` seconds pass, or ``should_stop``.

        ``duration`` is stream time since the first sample, so a replay faster than real time ends by its
        timestamps alike on any machine; while nothing arrives, wall-clock time since the last sample (or
        since the run began) counts on top, so a stalled or silent stream ends too. Sources yield empty
        chunks while they wait, so stop and duration are checked even then. ``hooks`` (quality checks,
        stratum control) see each chunk with data after its predictions are published, so they add no
        latency to the labels.
        """
        hooks = list(hooks)
        first, streamed, idle_since = None, 0.0, time.monotonic()
        for chunk in chunks:
            if len(chunk):
                self._process_stretches(chunk)
                for hook in hooks:
                    hook(chunk)
                if first is None:
                    first = chunk.timestamps[0]
                streamed, idle_since = chunk.timestamps[-1] - first, None
            else:
                self.health.check(chunk)
                idle_since = idle_since or time.monotonic()
            if should_stop is not None and should_stop():
                break
            idle = 0.0 if idle_since is None else time.monotonic() - idle_since
            if duration is not None and streamed + idle >= duration:
                break

    def _process_stretches(self, chunk: Chunk) -> None:
        """Filters and windows never reach across a gap or jump in the timestamps: they start afresh after one,
        and window indices go on counting the samples the stream delivered (the lost ones are ``lost_samples``)."""
        cuts = self.health.check(chunk)
        for start, end in zip([0, *cuts], [*cuts, len(chunk)]):
            if start == end:
                continue
            if start in cuts:
                self.filter = CausalFilter(self.filter.sos, len(self.bundle.channels))
                self.windower.restart()
            self.process(Chunk(chunk.data[start:end], chunk.timestamps[start:end]))

    def close(self) -> None:
        self.strata.close()
        for sink in self.sinks:
            sink.close()

    def summary(self) -> dict:
        return {
            "windows": self.n_windows,
            "predictions": self.n_predictions,
            "rejected_nonfinite": self.n_rejected,
            "halted": self.n_halted,
            "artifacts": self.n_artifacts,
            "ring_overwritten": self.windower.ring.overwritten,
            "gaps": self.health.gaps,
            "lost_samples": self.health.lost_samples,
            "stage_ms": self.timer.summary(),
        }
