"""One assembly of a live session: stream, model bundle, stratum, sinks and hooks.

``bci-stream run``, ``bci-stream view`` and the online evaluation all decode
through :class:`LiveSession`, so they share one stratum default, one way of
overriding the model's filters and one set of outputs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from bci_stream import registry
from bci_stream.artifacts import ArtifactRule
from bci_stream.bundle import ModelBundle, default_bundle_for, load_model
from bci_stream.channels import MAX_INTERPOLATED, MontageError, names_list
from bci_stream.control import StratumControl
from bci_stream.filters import FilterSpec, check_overrides
from bci_stream.outlets import PredictionOutlet
from bci_stream.pipeline import Pipeline, Sink
from bci_stream.quality import FLAT, NONFINITE, RAILED, QualityMonitor, QualityReport, Thresholds
from bci_stream.stratified import ANONYMOUS, Checkpoints
from bci_stream.stream import GENERATED, Chunk, StreamInfo

log = logging.getLogger("bci_stream.session")


def default_stratum(participant: str | None, session: str | None) -> tuple[str, str]:
    """Without a participant every run is its own session, named by its start time, so strangers never
    share statistics; a named participant's session is ``1`` unless given."""
    if session is None:
        session = "1" if participant is not None else time.strftime("%Y%m%dT%H%M%S")
    return (ANONYMOUS if participant is None else participant), session


def resolve_bundle(model: str | None, info: StreamInfo, options: SessionOptions | None = None) -> ModelBundle:
    """The bundle at path ``model`` or shipped under that name, else the shipped one that fits the stream best."""
    if model:
        return load_model(model)
    options = options or SessionOptions()
    return default_bundle_for(info, options.rename, options.max_interpolated)


#: Quality blocks (about a second each) in a row that an excluded channel must be good to be read again.
RECOVERY = 5


def warn_if_synthetic(bundle: ModelBundle, info: StreamInfo) -> None:
    """Once, at the start of a live run: a model trained on generated EEG says nothing about a real person."""
    if bundle.synthetic and info.device != GENERATED:
        log.warning("model %r was trained on %s, not on real EEG: its labels for stream %r demonstrate the "
                    "pipeline and mean nothing about this person; train a model on real recordings for that",
                    bundle.name, bundle.describe_provenance(), info.name)


@dataclass
class SessionOptions:
    """How to decode: the stratum, the model's timing and filters (None keeps the model's), where state lives."""

    participant: str | None = None
    session: str | None = None
    window: float | None = None
    hop: float | None = None
    device: str = "cpu"
    #: Overrides of the model's filters: ``{"bandpass": [lo, hi] | "off" | None, "notch": hz | "off" | None}``.
    filters: dict = field(default_factory=dict)
    state_dir: Path | None = None
    fresh: bool = False
    #: The stream's labels renamed before matching (``--rename OLD=NEW``).
    rename: dict = field(default_factory=dict)
    #: The share of the model's channels that may be interpolated (``--max-interpolated``).
    max_interpolated: float = MAX_INTERPOLATED
    #: Seconds of wall time between saves of the current stratum while it runs (with a state_dir).
    checkpoint: float = 10.0
    #: Which windows are artifacts, published as such and never classified or learned from; None: no detection.
    artifacts: ArtifactRule | None = ArtifactRule()


@dataclass
class Outputs:
    """Where predictions and status go besides the sinks a caller passes in."""

    prefix: str | None = None  # LSL streams PREFIX-labels, -probabilities, -status; None: no LSL outputs
    console: bool = False
    log: str | None = None  # JSON-lines file
    control: str | None = None  # LSL Markers stream that switches the stratum live
    quality: Thresholds | None = None  # check channel quality and log changes


class LiveSession:
    """A pipeline with its outputs and hooks, decoding one stream."""

    def __init__(self, info: StreamInfo, bundle: ModelBundle, options: SessionOptions = SessionOptions(),
                 outputs: Outputs = Outputs(), sinks: Iterable[Sink] = (),
                 hooks: Iterable[Callable[[Chunk], None]] = (), meta: dict | None = None,
                 listeners: Iterable[Callable[..., None]] = ()):
        """``listeners`` hear every status event as ``PREFIX-status`` carries it, ``(timestamp, **fields)``, with LSL
        outputs or without (the viewer running a pipeline in its own process)."""
        self.participant, self.session = default_stratum(options.participant, options.session)
        overrides = {k: None if v == "off" else v for k, v in options.filters.items() if v is not None}
        check_overrides(overrides, info.srate, info.name)  # the model's own filters may exceed Nyquist, not these
        filters = {**bundle.filters, **overrides}
        meta = {"model_provenance": bundle.describe_provenance(), "model_synthetic": bundle.synthetic, **(meta or {})}
        sinks, self.listeners = list(sinks), list(listeners)
        if outputs.prefix is not None:
            outlet = PredictionOutlet(outputs.prefix, bundle.class_names, {
                "participant": self.participant, "session": self.session, "window": options.window or bundle.window,
                "hop": options.hop or bundle.hop, **meta})
            sinks.append(outlet)
            self.listeners.append(outlet.report)
        if outputs.console:
            sinks.append(registry.load_plugin("sinks", "console")())
        if outputs.log:
            sinks.append(registry.load_plugin("sinks", "jsonl")(outputs.log))
        self.channels = bundle.channel_map(info, options.rename, options.max_interpolated)
        self.pipeline = Pipeline(info, bundle, self.participant, self.session, options.window, options.hop,
                                 options.device, sinks, state_dir=options.state_dir,
                                 filters=FilterSpec.from_dict(filters), channels=self.channels, report=self.report,
                                 fresh=options.fresh, artifacts=options.artifacts)
        self.hooks = list(hooks)
        self.checkpoints = None if options.state_dir is None else Checkpoints(self.pipeline.strata, options.checkpoint)
        if self.checkpoints is not None:
            self.hooks.append(self.checkpoints)
        self.info, self.bundle, self.options = info, bundle, options
        self._maps = {self.channels.excluded: self.channels}  # channel maps by the set of bad channels
        self._good_blocks: dict[str, int] = {}  # excluded channel -> quality blocks in a row it has been good
        if outputs.quality is not None:
            self.hooks.append(QualityMonitor(info, outputs.quality, on_report=self._repair))
        if outputs.control:
            self.hooks.append(StratumControl(outputs.control, self.pipeline.strata, self.report))

    def _repair(self, quality: QualityReport, block) -> None:
        """Read the EEG channels found non-finite, flat or railed as missing, so the model gets them interpolated
        from their good neighbours, and back when they recover; halt decoding while too many are bad to interpolate.
        Runs on each quality block (about a second); the interpolation matrix is rebuilt only when the set changes."""
        now = {c for i, c in enumerate(self.info.channel_names)
               if self.info.is_eeg(i) and quality.state[i] in (NONFINITE, FLAT, RAILED)}
        before = self.channels.excluded
        # A channel is excluded at once, and read again only after RECOVERY good blocks in a row: a flapping
        # electrode must not switch the model's inputs (and rebuild a matrix) every second.
        for c in before - now:
            self._good_blocks[c] = self._good_blocks.get(c, 0) + 1
        for c in now:
            self._good_blocks.pop(c, None)
        bad = frozenset(now | {c for c in before if self._good_blocks.get(c, 0) < RECOVERY})
        if bad == before:
            return
        for c in before - bad:
            self._good_blocks.pop(c, None)
        try:
            if bad not in self._maps:
                self._maps[bad] = self.bundle.channel_map(self.info, self.options.rename, self.options.max_interpolated,
                                                          bad)
            self.channels = self._maps[bad]
        except MontageError as e:
            if self.pipeline.halted is None:
                log.warning("stream %r: decoding halted: %s", self.info.name, e)
                self.report(quality.timestamp, event="halted", bad=",".join(sorted(bad)))
            self.pipeline.halted = str(e)
            return
        self.pipeline.channels, self.pipeline.halted = self.channels, None
        log.warning("stream %r: bad channel(s) now %s (%s recovered); the model's %s interpolated",
                    self.info.name, names_list(sorted(bad)), names_list(sorted(before - bad)),
                    names_list(self.channels.interpolated))
        self.report(quality.timestamp, event="channels", bad=",".join(sorted(bad)),
                    interpolated=",".join(self.channels.interpolated))

    def report(self, timestamp: float | None = None, **fields) -> None:
        """A status event, to ``PREFIX-status`` and every listener."""
        for listener in self.listeners:
            listener(timestamp, **fields)

    def run(self, chunks: Iterable[Chunk], duration: float | None = None,
            should_stop: Callable[[], bool] | None = None) -> None:
        self.pipeline.run(chunks, duration=duration, should_stop=should_stop, hooks=self.hooks)

    def close(self) -> None:
        """Save every stratum's statistics and close the outputs."""
        self.pipeline.close()
