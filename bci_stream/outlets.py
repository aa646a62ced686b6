"""LSL outlets: EEG for simulate/replay, and the label + probability streams a pipeline publishes."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pylsl

from bci_stream.artifacts import ARTIFACT
from bci_stream.control import format_fields
from bci_stream.lslmeta import to_lsl
from bci_stream.pipeline import Prediction
from bci_stream.stream import Chunk, StreamInfo

log = logging.getLogger("bci_stream.outlets")


class EEGOutlet:
    """Publishes chunks with their own (LSL clock) timestamps."""

    def __init__(self, info: StreamInfo, chunk_size: int = 0):
        self.info = info
        self.outlet = pylsl.StreamOutlet(to_lsl(info), chunk_size=chunk_size)

    def push(self, chunk: Chunk) -> None:
        self.outlet.push_chunk(np.ascontiguousarray(chunk.data, np.float32), chunk.timestamps)

    def close(self) -> None:
        self.outlet = None


class MarkerOutlet:
    """A one-channel string Markers stream."""

    def __init__(self, name: str, source_id: str, meta: dict | None = None):
        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, "string", source_id)
        _add_meta(info, meta or {})
        self.outlet = pylsl.StreamOutlet(info)

    def push(self, marker: str, timestamp: float) -> None:
        self.outlet.push_sample([marker], timestamp)

    def close(self) -> None:
        self.outlet = None


def _add_meta(info: pylsl.StreamInfo, meta: dict) -> None:
    if meta:
        el = info.desc().append_child("bci_stream")
        for k, v in meta.items():
            el.append_child_value(k, str(v))


def _warn_of_others(mine: pylsl.StreamInfo, wait: float = 1.0) -> None:
    """Warn of another stream with our labels' name: consumers resolve by name and would follow either.
    Runs beside the pipeline, so looking for them (a second or more) never delays the first label."""
    for other in pylsl.resolve_byprop("name", mine.name(), minimum=2, timeout=wait):
        if other.uid() != mine.uid():
            log.warning("another LSL stream %r is already published, on host %s with source_id %r; consumers may "
                        "pick either: give this one another prefix with --name", other.name(), other.hostname(),
                        other.source_id())


class PredictionOutlet:
    """``PREFIX-labels`` (Markers, string), ``PREFIX-probabilities`` (float32, one channel per class)
    and ``PREFIX-status`` (Markers, ``key=value;...``: stratum, warm-up, reliability, control outcomes, faults).

    An artifact window publishes the label ``artifact`` and no probabilities, so a consumer of either
    stream never takes it for a confident class; the labels stream's metadata declares both.

    Source ids are derived from the prefix only, so a restarted pipeline is the
    same stream to recorders that were waiting for it. The stratum is restated
    every ``status_every`` seconds so a viewer that attaches late learns it.
    """

    def __init__(self, prefix: str, class_names, meta: dict | None = None, status_every: float = 2.0):
        meta = dict(meta or {})
        self.labels = MarkerOutlet(f"{prefix}-labels", f"bci-stream:{prefix}:labels",
                                   {**meta, "classes": ",".join(class_names), "artifact_label": ARTIFACT})
        self.duplicates = threading.Thread(target=_warn_of_others, args=(self.labels.outlet.get_info(),), daemon=True)
        self.duplicates.start()
        self.status = MarkerOutlet(f"{prefix}-status", f"bci-stream:{prefix}:status", meta)
        self.status_every = status_every
        self._stated, self._stated_at = None, -float("inf")
        info = pylsl.StreamInfo(
            f"{prefix}-probabilities", "Probabilities", len(class_names), pylsl.IRREGULAR_RATE,
            "float32", f"bci-stream:{prefix}:probabilities",
        )
        chans = info.desc().append_child("channels")
        for c in class_names:
            ch = chans.append_child("channel")
            ch.append_child_value("label", c)
            ch.append_child_value("unit", "probability")
            ch.append_child_value("type", "Probability")
        _add_meta(info, meta)
        self.probabilities = pylsl.StreamOutlet(info)

    def send(self, p: Prediction) -> None:
        self.labels.push(p.label, p.timestamp)
        if p.artifact is None:
            self.probabilities.push_sample(p.probabilities, p.timestamp)
        fields = p.reliability_fields()
        state = (p.participant, p.session, p.warming_up, fields.get("reliability"))
        if state != self._stated or p.timestamp - self._stated_at >= self.status_every:
            self._stated, self._stated_at = state, p.timestamp
            self.report(p.timestamp, event="stratum", participant=p.participant, session=p.session,
                        warming_up=int(p.warming_up), **fields)

    def report(self, timestamp: float | None = None, **fields) -> None:
        """One status marker, e.g. ``event=switch;participant=P07;session=2;warming_up=1``."""
        self.status.push(format_fields(fields), pylsl.local_clock() if timestamp is None else timestamp)

    def close(self) -> None:
        self.labels.close()
        self.status.close()
        self.probabilities = None
