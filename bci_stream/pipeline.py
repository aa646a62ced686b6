"""Chunks in, predictions out: filters -> windows -> features -> stratified normalizer -> classifier."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

import numpy as np
import torch

from bci_stream import registry
from bci_stream.bundle import ModelBundle
from bci_stream.filters import CausalFilter, FilterSpec
from bci_stream.normalizer import stratum_key
from bci_stream.stream import Chunk, StreamInfo
from bci_stream.timing import StageTimer
from bci_stream.windower import Windower

log = logging.getLogger("bci_stream.pipeline")

STAGES = ("filter", "window", "features", "normalize", "classify", "publish")


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

    def to_dict(self) -> dict:
        return {
            "timestamp": self.timestamp,
            "label": self.label,
            "probabilities": dict(zip(self.class_names, map(float, self.probabilities))),
            "sample": int(self.window_index),
            "participant": self.participant,
            "session": self.session,
            "warming_up": self.warming_up,
        }


class Sink(Protocol):
    def send(self, prediction: Prediction) -> None: ...

    def close(self) -> None: ...


class Pipeline:
    """One stream, one model, one stratum at a time; sinks receive every prediction."""

    def __init__(
        self,
        info: StreamInfo,
        bundle: ModelBundle,
        participant="anonymous",
        session="1",
        window: float | None = None,
        hop: float | None = None,
        device: str = "cpu",
        sinks: Iterable[Sink] = (),
        state_dir=None,
        filters: FilterSpec | None = None,
    ):
        self.info, self.bundle = info, bundle
        self.picks = bundle.channel_indices(info)
        self._all_channels = np.array_equal(self.picks, np.arange(info.n_channels))
        self.scale = np.float32(bundle.unit_scale(info))
        if abs(np.log(info.srate / bundle.srate)) > 0.01:
            log.info(
                "model %s was trained at %g Hz, stream %r runs at %g Hz: features are computed at the stream's rate",
                bundle.name, bundle.srate, info.name, info.srate,
            )
        self.window = float(window or bundle.window)
        self.hop = float(hop or bundle.hop)
        length, step = round(self.window * info.srate), round(self.hop * info.srate)
        self.filter = CausalFilter.from_spec(filters or FilterSpec.from_dict(bundle.filters), info.srate, len(self.picks))
        self.windower = Windower(length, step, len(self.picks))
        self.extractor = registry.load_plugin("features", bundle.features)
        state = None if state_dir is None else f"{state_dir}/{bundle.signature}"
        self.normalizer = bundle.make_normalizer(self.hop, state)
        self.device = torch.device(device)
        self.model = bundle.build_model(device)
        # Every set of per-stratum statistics the pipeline keeps: the input's, and the network's own.
        self.normalizers = [n for n in [self.normalizer] if n is not None and not n.frozen]
        if hasattr(self.model, "start_online"):
            self.normalizers += self.model.start_online(
                **bundle.online_settings(self.hop, "network"), state_dir=None if state is None else f"{state}/network",
                signature=bundle.signature,
            )
        self.class_names = tuple(bundle.class_names)
        self.sinks = list(sinks)
        self.stratum = None
        self.set_stratum(participant, session)
        self.timer = StageTimer(STAGES)
        self.n_windows = 0
        self.n_rejected = 0
        self.n_predictions = 0

    def set_stratum(self, participant, session) -> None:
        """Switch to another participant or session; its saved statistics resume if present."""
        self.save_state()
        self.stratum = stratum_key(participant, session)
        if hasattr(self.model, "set_stratum"):
            self.model.set_stratum(self.stratum)

    def reset_stratum(self) -> None:
        """Forget the current stratum's statistics (``--fresh``); saved ones are overwritten on close."""
        for n in self.normalizers:
            n.strata[self.stratum] = type(n.stats(self.stratum))(n.n_features, n.halflife)

    def save_state(self) -> None:
        for n in self.normalizers:
            if n.state_dir is not None and self.stratum in n.strata:
                n.save(self.stratum)

    def process(self, chunk: Chunk) -> list[Prediction]:
        t = self.timer
        t.start()
        data = chunk.data if self._all_channels else chunk.data[:, self.picks]
        if self.scale != 1:
            data = data * self.scale
        data = self.filter(data)
        t.lap("filter")
        windows = self.windower.push(data, chunk.timestamps)
        t.lap("window")
        if not len(windows):
            return []
        self.n_windows += len(windows)
        ok = np.isfinite(windows.data).all(axis=(1, 2))
        if not ok.all():
            self.n_rejected += int((~ok).sum())
            log.warning(
                "stream %r: %d window(s) ending at sample %s contain NaN/Inf and were not classified (%d so far)",
                self.info.name, int((~ok).sum()), windows.end_indices[~ok].tolist(), self.n_rejected,
            )
            if not ok.any():
                return []
        x = self.extractor.compute(windows.data[ok], self.info.srate)
        t.lap("features")
        # Warm-up as a person sees it: while the input statistics still lean on the population's.
        warm = bool(self.normalizers) and self.normalizers[0].warming_up(self.stratum)
        if self.normalizer is not None:
            x = self.normalizer.update_transform(self.stratum, x)
        t.lap("normalize")
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device))
            probs = torch.softmax(logits, dim=-1).cpu().numpy()
        t.lap("classify")
        preds = [
            Prediction(
                float(ts), self.class_names[int(p.argmax())], p, self.class_names, int(idx), *self.stratum, warm
            )
            for ts, idx, p in zip(windows.end_times[ok], windows.end_indices[ok], probs)
        ]
        for pred in preds:
            for sink in self.sinks:
                sink.send(pred)
        self.n_predictions += len(preds)
        t.lap("publish")
        return preds

    def run(self, chunks: Iterable[Chunk], duration: float | None = None, should_stop: Callable[[], bool] | None = None,
            hooks: Iterable[Callable[[Chunk], None]] = ()) -> None:
        """Process until the source ends, ``duration`` seconds of stream time pass, or ``should_stop``.

        ``hooks`` (quality checks, stratum control) see each chunk after its
        predictions are published, so they add no latency to the labels.
        """
        hooks = list(hooks)
        first = None
        for chunk in chunks:
            if len(chunk) == 0:
                continue
            self.process(chunk)
            for hook in hooks:
                hook(chunk)
            if first is None:
                first = chunk.timestamps[0]
            if duration is not None and chunk.timestamps[-1] - first >= duration:
                break
            if should_stop is not None and should_stop():
                break

    def close(self) -> None:
        for n in self.normalizers:
            if n.state_dir is not None and n.strata:
                n.save()
        for sink in self.sinks:
            sink.close()

    def summary(self) -> dict:
        return {
            "windows": self.n_windows,
            "predictions": self.n_predictions,
            "rejected_nonfinite": self.n_rejected,
            "ring_overwritten": self.windower.ring.overwritten,
            "stage_ms": self.timer.summary(),
        }
