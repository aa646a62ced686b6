"""Live viewer for the people running a session: is the signal good, and what does the decoder say?

Two feeds fill one :class:`ViewState`: ``--source`` runs the pipeline in this
process on a worker thread; ``--attach PREFIX`` reads a pipeline running
elsewhere through its LSL outputs, polled without waiting. A Qt timer draws
whatever the state holds, so a slow frame never holds up decoding.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque

import numpy as np

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")  # pyqtgraph picks its Qt binding at import

import pylsl  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets  # noqa: E402

from bci_stream.control import parse_fields  # noqa: E402
from bci_stream.filters import CausalFilter, FilterSpec  # noqa: E402
from bci_stream.lslmeta import channel_labels, from_lsl  # noqa: E402
from bci_stream.plugins.features import BANDS, welch_band_power  # noqa: E402
from bci_stream.quality import OK, STATES, QualityMonitor, QualityReport  # noqa: E402
from bci_stream.sources import SourceError, parse_query  # noqa: E402
from bci_stream.stream import Chunk, StreamInfo  # noqa: E402

log = logging.getLogger("bci_stream.viewer")

#: Colours the tests look for: nothing else in the window is drawn in exactly these.
TRACE_RGB = (20, 60, 120)
LABEL_RGB = (58, 12, 163)
QUALITY_COLOURS = {"ok": "#2ca02c", "line noise": "#ff7f0e", "excessive amplitude": "#e6b800",
                   "flat": "#7f7f7f", "railed": "#d62728", "non-finite": "#000000"}
NO_DATA_COLOUR = "#dddddd"
UNCLASSIFIED_COLOUR = "#b4b4b4"  # an artifact window's label: no class was decided
CLASS_COLOURS = ("#1f77b4", "#9467bd", "#17becf", "#bcbd22", "#8c564b", "#e377c2", "#393b79", "#637939")
FRAME_MS = 50
SIDE_WIDTH = 380  # px of the right-hand column


def _hex(rgb) -> str:
    return "#%02x%02x%02x" % tuple(rgb)


def minmax_decimate(data: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """[n, C] -> (sample positions, [2 * bins, C]): each bin's min and max, so spikes survive decimation."""
    n = len(data)
    if n <= 2 * bins:
        return np.arange(n, dtype=np.float64), data
    k = -(-n // bins)  # samples per bin
    bins = n // k
    start = n - bins * k  # fewer than k of the oldest samples fall off; the newest stay on the grid
    blocks = data[start:].reshape(bins, k, -1)
    out = np.empty((2 * bins, data.shape[1]), data.dtype)
    out[0::2], out[1::2] = blocks.min(axis=1), blocks.max(axis=1)
    pos = start + np.repeat(np.arange(bins) * k, 2) + np.tile([0, k - 1], bins)
    return pos.astype(np.float64), out


class ViewState:
    """Everything the window shows, written by a feed (any thread) and read by the window under one lock."""

    def __init__(self, info: StreamInfo | None, class_names, span: float = 10.0, history: float = 30.0):
        self.lock = threading.Lock()
        self.info = info
        self.class_names = tuple(class_names)
        self.span, self.history = span, history
        self.probabilities: deque = deque()  # (timestamp, probabilities)
        self.labels: deque = deque()  # (timestamp, label)
        self.stratum: tuple[str, str] | None = None
        self.warming_up: bool | None = None
        self.note = ""  # the latest thing the operator should know (rejected control marker, feed error)
        self.health: dict[str, tuple[str, bool]] = {}  # what the run last said of each fault kind: (text, a fault now)
        self.n_samples = self.dropped = 0
        self.last_ts: float | None = None
        self.rate = float("nan")
        self.quality: QualityReport | None = None
        self.band_share: np.ndarray | None = None
        if info is None:
            return
        self.to_uv = info.to_microvolts
        self.ring = np.zeros((max(1, round(span * info.srate)), info.n_channels), np.float32)
        # Traces show 1-40 Hz: drift and mains would bury the EEG; quality checks see the raw signal.
        self.display_filter = CausalFilter.from_spec(
            FilterSpec(bandpass=(1.0, min(40.0, 0.4 * info.srate)), notch=None), info.srate, info.n_channels)
        self.monitor = QualityMonitor(info, on_report=self._on_quality)
        self._rate_mark: tuple[float, int] | None = None  # (when, samples so far), from the first chunk on

    # -- writers ---------------------------------------------------------
    def add_chunk(self, chunk: Chunk) -> None:
        """Raw EEG in the stream's unit; a pipeline hook in ``--source`` mode."""
        # NaN/Inf would break the drawn path; such a channel is flagged non-finite instead
        shown = np.nan_to_num(self.display_filter(chunk.data) * np.float32(self.to_uv), nan=0.0, posinf=0.0, neginf=0.0)
        self.monitor(chunk)
        srate, cap = self.info.srate, len(self.ring)
        ts = chunk.timestamps
        with self.lock:
            k = min(len(shown), cap)
            start = self.n_samples + len(shown) - k
            self.ring[(start + np.arange(k)) % cap] = shown[-k:]
            if self.last_ts is not None and (ts[0] - self.last_ts) * srate > 1.5:
                self.dropped += int(round((ts[0] - self.last_ts) * srate)) - 1
            self.last_ts = float(ts[-1])
            self.n_samples += len(shown)
            now = pylsl.local_clock()
            if self._rate_mark is None:
                self._rate_mark = (now, self.n_samples)
            elif now - self._rate_mark[0] >= 2.0:
                t0, n0 = self._rate_mark
                self.rate = (self.n_samples - n0) / (now - t0)
                self._rate_mark = (now, self.n_samples)

    def _on_quality(self, report: QualityReport, block: np.ndarray) -> None:
        power = welch_band_power(block.T[None], self.info.srate)[0]  # [C, bands]
        usable = report.state == OK
        share = power / np.maximum(power.sum(axis=1, keepdims=True), 1e-30)
        band_share = share[usable].mean(axis=0) if usable.any() else np.full(len(BANDS), np.nan)
        with self.lock:
            self.quality, self.band_share = report, band_share

    def add_probabilities(self, timestamps, probabilities) -> None:
        with self.lock:
            self.probabilities.extend(zip(map(float, timestamps), np.asarray(probabilities, np.float32)))
            self._trim(self.probabilities)

    def add_labels(self, timestamps, labels) -> None:
        with self.lock:
            self.labels.extend(zip(map(float, timestamps), labels))
            self._trim(self.labels)

    def set_stratum(self, participant: str, session: str, warming_up: bool | None) -> None:
        with self.lock:
            self.stratum, self.warming_up = (participant, session), warming_up

    def on_status(self, timestamp=None, **f) -> None:
        """A status event of the run (``PREFIX-status``'s fields; a session listener in ``--source`` mode)."""
        event = f.get("event")
        if event in ("stratum", "switch"):
            self.set_stratum(f.get("participant", "?"), f.get("session", "?"), str(f.get("warming_up")) == "1")
            return
        if event == "rejected":
            with self.lock:
                self.note = f"control marker {f.get('marker')!r} rejected: {f.get('reason')}"
            return
        said = _HEALTH.get(event)
        if said is not None:
            kind, text, fault = said(f)
            with self.lock:
                self.health[kind] = (text, fault)

    def send(self, p) -> None:
        """A pipeline sink in ``--source`` mode."""
        self.add_probabilities([p.timestamp], [p.probabilities])
        self.add_labels([p.timestamp], [p.label])
        self.set_stratum(p.participant, p.session, p.warming_up)

    def close(self) -> None:
        pass

    def _trim(self, q: deque) -> None:
        while q and q[-1][0] - q[0][0] > self.history:
            q.popleft()

    # -- reader ----------------------------------------------------------
    def snapshot(self) -> dict:
        with self.lock:
            s = {k: getattr(self, k) for k in ("stratum", "warming_up", "note", "n_samples", "dropped", "last_ts",
                                               "rate", "quality", "band_share")}
            s["health"] = dict(self.health)
            s["probabilities"] = list(self.probabilities)
            s["labels"] = list(self.labels)
            if self.info is not None:
                n, cap = min(self.n_samples, len(self.ring)), len(self.ring)
                i = self.n_samples % cap
                s["eeg"] = np.concatenate([self.ring[i:], self.ring[:i]]) if n == cap else self.ring[:n].copy()
        return s


def _rate(f: dict) -> tuple[str, str, bool]:
    nominal, effective = float(f.get("nominal", "nan")), float(f.get("effective", "nan"))
    return "rate", f"effective rate {effective:g} Hz, nominal {nominal:g}", not abs(effective / nominal - 1) <= 0.01


#: The run's status events on faults, as the window states them: event -> fields -> (kind, text, a fault now).
#: A kind's latest event replaces its earlier one (a stall by the data's return, an artifact by its end).
_HEALTH = {
    "stalled": lambda f: ("stream", f"stream stalled: no data for {f.get('idle_s')} s", True),
    "resumed": lambda f: ("stream", f"data again after {f.get('gap_s')} s; {f.get('lost_samples')} samples lost", False),
    "gap": lambda f: ("timestamps", f"timestamps broke by {f.get('gap_s')} s; {f.get('lost_samples')} samples lost",
                      False),
    "rate": _rate,
    "artifact": lambda f: ("artifact", "artifact under way ("
                           + ", ".join(f"{k}={v}" for k, v in f.items() if k != "event") + "): not classified", True),
    "clean": lambda f: ("artifact", f"clean again after {f.get('windows')} artifact windows", False),
    "channels": lambda f: ("channels", f"bad channels {f.get('bad') or 'none'}; interpolated "
                           f"{f.get('interpolated') or 'none'}", bool(f.get("bad"))),
    "halted": lambda f: ("channels", f"decoding halted: too many bad channels ({f.get('bad')})", True),
}


# ---------------------------------------------------------------- feeds
class PipelineFeed:
    """``--source``: the pipeline runs on a worker thread; its hook and sink fill the state."""

    def __init__(self, spec: str, model: str | None, participant: str | None, session: str | None,
                 seed: int | None):
        import torch

        from bci_stream.session import LiveSession, SessionOptions, resolve_bundle, warn_if_synthetic
        from bci_stream.sources import open_source

        torch.set_num_threads(1)
        self.source = open_source(spec, participant=participant, session=session, seed=seed)
        try:
            bundle = resolve_bundle(model, self.source.info)
            warn_if_synthetic(bundle, self.source.info)
            self.state = ViewState(self.source.info, bundle.class_names)
            self.live = LiveSession(self.source.info, bundle, SessionOptions(participant, session),
                                    sinks=[self.state], hooks=[self.state.add_chunk], listeners=[self.state.on_status])
        except BaseException:
            self.source.close()
            raise
        self.title = f"{spec} -> {bundle.name or model}"
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="bci-stream-view-pipeline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _work(self) -> None:
        try:
            self.live.run(self.source.chunks(), should_stop=self._stop.is_set)
        except Exception as e:  # shown in the window and returned as the exit status
            self.error = e
            log.error("pipeline stopped: %s: %s", type(e).__name__, e)
            with self.state.lock:
                self.state.note = f"pipeline stopped: {e}"

    def poll(self) -> None:
        pass

    def warmup_detail(self) -> str:
        stats = self.live.pipeline.strata.stats()
        return "" if stats is None else f"{int(stats.count)} windows seen"

    def clock_offset(self) -> float | None:
        inlet = getattr(self.source, "inlet", None)  # an LSL source; others stamp in this clock already
        return 0.0 if inlet is None else _time_correction(inlet)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)  # the run loop ends at its next chunk
        self.source.close()  # and a source that sends nothing is ended by closing it
        self._thread.join(timeout=5.0)
        self.live.close()


def _time_correction(inlet: pylsl.StreamInlet) -> float | None:
    """The inlet's clock offset, or None while LSL is still measuring it."""
    try:
        return inlet.time_correction(timeout=0.0)
    except pylsl.util.TimeoutError:
        return None


def _resolve_one(name: str, timeout: float, required: bool = True) -> pylsl.StreamInfo | None:
    found = pylsl.resolve_byprop("name", name, minimum=1, timeout=timeout)
    if not found:
        if required:
            raise SourceError(f"no LSL stream named {name!r} appeared within {timeout:g} s; "
                              f"is `bci-stream run --name {name.rsplit('-', 1)[0]}` running?")
        return None
    if len(found) > 1:
        raise SourceError(f"{len(found)} LSL streams are named {name!r} (source ids "
                          f"{[s.source_id() for s in found]}); give each pipeline its own --name")
    return found[0]


class AttachFeed:
    """``--attach PREFIX``: labels, probabilities and status of a running pipeline, and its EEG if on LSL."""

    def __init__(self, prefix: str, timeout: float = 10.0):
        flags = pylsl.proc_clocksync | pylsl.proc_dejitter
        self.labels = pylsl.StreamInlet(_resolve_one(f"{prefix}-labels", timeout), processing_flags=flags, recover=True)
        self.probs = pylsl.StreamInlet(_resolve_one(f"{prefix}-probabilities", timeout),
                                       processing_flags=flags, recover=True)
        status = _resolve_one(f"{prefix}-status", 1.0, required=False)
        self.status = None if status is None else pylsl.StreamInlet(status, processing_flags=flags, recover=True)
        full = self.labels.info(timeout=timeout)  # keep it referenced: desc() points into it
        el = full.desc().child("bci_stream")
        meta = {k: el.child_value(k) for k in ("source", "source_uid", "participant", "session", "model")}
        class_names = channel_labels(self.probs.info(timeout=timeout))[0]
        if class_names is None:
            raise SourceError(f"LSL stream {prefix + '-probabilities'!r} does not name its classes in desc/channels")
        self.source_spec = meta["source"]
        eeg = self._resolve_eeg(self.source_spec, meta["source_uid"])
        self.eeg = None if eeg is None else pylsl.StreamInlet(eeg, max_buflen=10, processing_flags=flags, recover=True)
        info = None if self.eeg is None else from_lsl(self.eeg.info(timeout=timeout))
        self.state = ViewState(info, class_names)
        if meta["participant"]:
            self.state.set_stratum(meta["participant"], meta["session"], None)
        if self.eeg is None:
            self.state.note = f"the EEG of source {self.source_spec!r} is not on LSL: no traces or quality"
        self.title = f"attached to {prefix} ({meta['model'] or 'unknown model'})"
        self.error = None
        self.prefix = prefix

    @staticmethod
    def _resolve_eeg(spec: str, uid: str) -> pylsl.StreamInfo | None:
        """The pipeline's input, when it is itself an LSL stream (``lsl:name=...``)."""
        scheme, _, rest = spec.partition(":")
        if scheme != "lsl":
            return None
        prop, _, value = parse_query(rest)[0].partition("=")
        found = pylsl.resolve_byprop(prop, value, minimum=1, timeout=2.0)
        return next((s for s in found if s.uid() == uid), found[0] if found else None)

    def start(self) -> None:
        for inlet in (self.labels, self.probs, self.status, self.eeg):
            if inlet is not None:
                inlet.open_stream(timeout=5.0)

    def poll(self) -> None:
        st = self.state
        if self.eeg is not None:
            data, ts = self.eeg.pull_chunk(timeout=0.0, max_samples=65536)
            if ts:
                st.add_chunk(Chunk(np.asarray(data, np.float32), np.asarray(ts)))
        labels, ts = self.labels.pull_chunk(timeout=0.0)
        if ts:
            st.add_labels(ts, [s[0] for s in labels])
        probs, ts = self.probs.pull_chunk(timeout=0.0)
        if ts:
            st.add_probabilities(ts, probs)
        if self.status is not None:
            markers, _ = self.status.pull_chunk(timeout=0.0)
            for (text,) in markers:
                try:
                    st.on_status(**parse_fields(text))
                except ValueError as e:
                    log.warning("status stream %r: unreadable marker %r: %s", f"{self.prefix}-status", text, e)

    def warmup_detail(self) -> str:
        return ""

    def clock_offset(self) -> float | None:
        return _time_correction(self.eeg or self.labels)

    def stop(self) -> None:
        for inlet in (self.labels, self.probs, self.status, self.eeg):
            if inlet is not None:
                inlet.close_stream()


# ---------------------------------------------------------------- window
class ViewerWindow(QtWidgets.QWidget):
    """Traces with quality colours on the left; label, stratum, probabilities, bands and status on the right."""

    def __init__(self, feed):
        super().__init__()
        self.feed, self.state = feed, feed.state
        st = self.state
        self.setWindowTitle(f"bci-stream view: {feed.title}")
        self.colours = [CLASS_COLOURS[i % len(CLASS_COLOURS)] for i in range(len(st.class_names))]
        # Brushes made once: pyqtgraph caches symbols per brush object, so fresh ones every frame pile up.
        self.class_brushes = [pg.mkBrush(c) for c in self.colours]
        self.unclassified_brush = pg.mkBrush(UNCLASSIFIED_COLOUR)
        self.quality_brushes = [pg.mkBrush(QUALITY_COLOURS[name]) for name in STATES]
        self.frame_ms = deque(maxlen=40)

        grid = QtWidgets.QGridLayout(self)
        self.trace_plot = pg.PlotWidget()
        self._setup_traces()
        grid.addWidget(self.trace_plot, 0, 0, 2, 1)

        side = QtWidgets.QVBoxLayout()
        self.label_text = QtWidgets.QLabel()
        self.label_text.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._shown_label = None
        self._show_label("waiting for predictions", None)
        self.stratum_text = QtWidgets.QLabel("stratum: unknown")
        self.stratum_text.setStyleSheet("font-size: 12pt; padding: 4px;")
        self.stratum_text.setWordWrap(True)
        side.addWidget(self.label_text)
        side.addWidget(self.stratum_text)

        bars = pg.GraphicsLayoutWidget()
        self.prob_plot = bars.addPlot(row=0, col=0, title="class probabilities")
        k = len(st.class_names)
        # Horizontal bars: class names (DEAP's are long) read on the left axis.
        self.prob_bars = pg.BarGraphItem(x0=np.zeros(k), y=-np.arange(k), height=0.7, width=np.zeros(k),
                                         brushes=self.colours)
        self.prob_plot.addItem(self.prob_bars)
        self.prob_plot.setXRange(0, 1, padding=0.02)
        self.prob_plot.setYRange(-k + 0.5, 0.5, padding=0)
        self.prob_plot.getAxis("left").setTicks([[(-i, n) for i, n in enumerate(st.class_names)]])
        self.prob_plot.setMouseEnabled(False, False)
        self.band_plot = bars.addPlot(row=1, col=0, title="relative band power (good channels)")
        self.band_bars = pg.BarGraphItem(x=np.arange(len(BANDS)), height=np.zeros(len(BANDS)), width=0.7,
                                         brush="#6a8caf")
        self.band_plot.addItem(self.band_bars)
        self.band_plot.setYRange(0, 1, padding=0.02)
        self.band_plot.getAxis("bottom").setTicks([list(enumerate(BANDS))])
        self.band_plot.setMouseEnabled(False, False)
        side.addWidget(bars, stretch=1)

        legend = " ".join(f'<span style="color:{c}">&#9632;</span> {name}' for name, c in QUALITY_COLOURS.items())
        self.legend_text = QtWidgets.QLabel(f"channel quality: {legend}")
        self.legend_text.setWordWrap(True)
        side.addWidget(self.legend_text)
        self.status_text = QtWidgets.QLabel("")
        self.status_text.setStyleSheet("font-family: monospace; font-size: 9pt; padding: 4px;")
        self.status_text.setWordWrap(True)
        side.addWidget(self.status_text)
        holder = QtWidgets.QWidget()
        holder.setLayout(side)
        holder.setFixedWidth(SIDE_WIDTH)
        grid.addWidget(holder, 0, 1)

        self.history_plot = pg.PlotWidget(title=f"decoded over the last {st.history:g} s")
        self.history_plot.addLegend(offset=(10, 5), brush=(255, 255, 255, 210))
        self.history_plot.setYRange(0, 1.12, padding=0)
        self.history_plot.setLabel("bottom", "s")
        self.history_curves = [self.history_plot.plot(pen=pg.mkPen(c, width=2), name=name)
                               for name, c in zip(st.class_names, self.colours)]
        self.label_strip = pg.ScatterPlotItem(pen=None, symbol="s", size=7)
        self.history_plot.addItem(self.label_strip)
        self.history_plot.setFixedHeight(190)
        grid.addWidget(self.history_plot, 2, 0, 1, 2)
        grid.setRowStretch(0, 1)

        self._status_due = 0.0
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(FRAME_MS)

    def _setup_traces(self) -> None:
        """One plot: channel names on its axis, a quality square per channel left of time -span, traces after."""
        info, span = self.state.info, self.state.span
        tp = self.trace_plot.getPlotItem()
        tp.setLabel("bottom", "s")
        margin = 0.04 * span
        tp.setXRange(-span - margin, 0, padding=0)
        tp.setMouseEnabled(False, False)
        tp.hideButtons()
        if info is None:
            note = pg.TextItem(self.state.note, color="#555555", anchor=(0.5, 0.5))
            note.setPos(-span / 2, 0)
            tp.addItem(note)
            tp.setYRange(-1, 1)
            return
        C = info.n_channels
        self.offsets = -np.arange(C, dtype=np.float64)
        tp.setYRange(-C + 0.5, 0.5, padding=0)
        axis = tp.getAxis("left")
        font = axis.style.get("tickFont") or QtGui.QFont()
        font.setPointSize(7 if C > 40 else 8)
        axis.setStyle(tickFont=font)
        axis.setTicks([[(o, n) for o, n in zip(self.offsets, info.channel_names)]])
        self.quality_bars = pg.BarGraphItem(x0=np.full(C, -span - margin), width=np.full(C, 0.8 * margin),
                                            y0=self.offsets - 0.45, height=np.full(C, 0.9), pen=None,
                                            brushes=[NO_DATA_COLOUR] * C)
        tp.addItem(self.quality_bars)
        self.curve = pg.PlotCurveItem(pen=pg.mkPen(TRACE_RGB, width=1))
        tp.addItem(self.curve)
        self._connect_cache = (0, None)  # (points per channel, where the combined curve breaks between channels)
        self._title = self._drawn_quality = None

    def _show_label(self, text: str, colour: str | None) -> None:
        """The decoded label, large, on its class's colour; the font shrinks until long names fit."""
        if (text, colour) == self._shown_label:
            return  # restyling is costly; most frames show the same label
        self._shown_label = (text, colour)
        font = QtGui.QFont(self.label_text.font())
        font.setBold(True)
        size = 26
        while size > 10:
            font.setPointSize(size)
            if QtGui.QFontMetrics(font).horizontalAdvance(text) <= SIDE_WIDTH - 40:
                break
            size -= 1
        bg = "#f0f0f0" if colour is None else pg.mkColor(colour).lighter(175).name()
        fg = "#777777" if colour is None else _hex(LABEL_RGB)
        self.label_text.setStyleSheet(f"color: {fg}; background: {bg}; font-size: {size}pt; font-weight: bold; "
                                      "padding: 10px; border-radius: 6px;")
        self.label_text.setText(text)

    # -- drawing -----------------------------------------------------------
    def refresh(self, text: bool = False) -> None:
        """One frame; the text panels only twice a second (relayout is not free) unless ``text``."""
        t0 = time.perf_counter()
        self.feed.poll()
        s = self.state.snapshot()
        now = s["last_ts"] if s["last_ts"] is not None else pylsl.local_clock()
        if self.state.info is not None:
            self._draw_traces(s)
        self._draw_predictions(s, now)
        if text or t0 >= self._status_due:
            self._status_due = t0 + 0.5
            self._draw_status(s)
        self.frame_ms.append((time.perf_counter() - t0) * 1e3)

    def _draw_traces(self, s: dict) -> None:
        eeg, info = s["eeg"], self.state.info
        if len(eeg):
            bins = max(100, int(self.trace_plot.getPlotItem().vb.width()) // 2)
            pos, y = minmax_decimate(eeg, bins)
            x = (pos - (len(eeg) - 1)) / info.srate
            sigma = float(np.median(y.std(axis=0))) or 1.0
            lane_uv = 6 * sigma  # one lane holds about +-3 sigma of a typical channel
            ys = (y / lane_uv + self.offsets).T.ravel()
            n = len(x)
            if self._connect_cache[0] != n:
                connect = np.ones(n * info.n_channels, bool)
                connect[n - 1 :: n] = False
                self._connect_cache = (n, connect)
            self.curve.setData(np.tile(x, info.n_channels), ys, connect=self._connect_cache[1])
            title = f"{info.name}: {info.n_channels} ch, 1-40 Hz, lane = {lane_uv:.0f} µV"
            if title != self._title:
                self._title = title
                self.trace_plot.setTitle(title)
        q = s["quality"]
        if q is not None and q is not self._drawn_quality:  # a new report once a second of data
            self._drawn_quality = q
            self.quality_bars.setOpts(brushes=[self.quality_brushes[c] for c in q.state])
            self.band_bars.setOpts(height=np.nan_to_num(s["band_share"]))

    def _draw_predictions(self, s: dict, now: float) -> None:
        probs = s["probabilities"]
        if probs:
            t = np.array([p[0] for p in probs]) - now
            P = np.stack([p[1] for p in probs])
            for i, curve in enumerate(self.history_curves):
                curve.setData(t, P[:, i])
            self.prob_bars.setOpts(width=P[-1])
            # An artifact's probabilities are NaN: its mark is grey, not the first class argmax would make of it.
            brushes = [self.class_brushes[w] if np.isfinite(p).all() else self.unclassified_brush
                       for w, p in zip(np.nan_to_num(P, nan=-1.0).argmax(axis=1), P)]
            self.label_strip.setData(t, np.full(len(t), 1.06), brush=brushes)
            self.history_plot.setXRange(-self.state.history, 0, padding=0)
        if s["labels"]:
            label = s["labels"][-1][1]
            names = self.state.class_names
            i = names.index(label) if label in names else None
            p = f"  {probs[-1][1][i]:.0%}" if probs and i is not None else ""
            self._show_label(f"{label}{p}", self.colours[i] if i is not None else UNCLASSIFIED_COLOUR)

    def _draw_status(self, s: dict) -> None:
        if s["stratum"] is not None:
            warm = s["warming_up"]
            detail = self.feed.warmup_detail()
            state, colour = (("warm-up state unknown", "#555555") if warm is None else
                             ("warming up", "#b36b00") if warm else ("warmed up", "#1b7a1b"))
            self.stratum_text.setText(f"stratum <b>{s['stratum'][0]}/{s['stratum'][1]}</b> · "
                                      f'<span style="color:{colour}">{state}</span>'
                                      + (f" ({detail})" if detail else ""))
        info = self.state.info
        lines = []
        if info is not None:
            offset = self.feed.clock_offset()
            lines.append(f"{info.name}: {s['n_samples']} samples")
            lines.append(f"rate {s['rate']:.1f} Hz of {info.srate:g} nominal" if s["rate"] == s["rate"]
                         else f"rate measuring ({info.srate:g} Hz nominal)")
            lines.append(f"dropped samples {s['dropped']}")
            lines.append("clock offset measuring" if offset is None else f"clock offset {offset * 1e3:+.3f} ms")
            if s["quality"] is not None:
                lines.append(f"channels {_counts(s['quality'])}")
        lines.append(f"predictions shown {len(s['probabilities'])}")
        if self.frame_ms:
            lines.append(f"frame {np.median(self.frame_ms):.1f} ms")
        for text, fault in s["health"].values():
            lines.append(f"<span style='color:#b00000'>{text}</span>" if fault else text)
        if s["note"]:
            lines.append(f"<span style='color:#b00000'>{s['note']}</span>")
        self.status_text.setText("<br>".join(lines))

    def summary(self) -> str:
        """What the window shows, in one line for the terminal (and for tests of the screenshot)."""
        s = self.state.snapshot()
        quality = "" if s["quality"] is None else f", quality {_counts(s['quality'])}"
        return (f"label {self.label_text.text()!r}, {len(s['probabilities'])} predictions, "
                f"{0 if self.state.info is None else self.state.info.n_channels} channels, "
                f"{s['n_samples']} samples{quality}"
                + "".join(f"; {text}" for text, _ in s["health"].values()))

    def closeEvent(self, event) -> None:
        self.timer.stop()
        super().closeEvent(event)


def _counts(report: QualityReport) -> str:
    """``59 ok, 1 line noise, 2 flat``"""
    return ", ".join(f"{int((report.state == c).sum())} {STATES[c]}" for c in np.unique(report.state))


def _has_display() -> bool:
    return bool(os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or sys.platform in ("win32", "darwin"))


def view(source: str | None = None, attach: str | None = None, duration: float | None = None,
         screenshot: str | None = None, model: str | None = None, participant: str | None = None,
         session: str | None = None, seed: int | None = None, timeout: float = 10.0) -> int:
    """Open the window; with ``duration``, close after that many seconds (saving ``screenshot`` first)."""
    if not _has_display():
        if screenshot is None:
            raise SystemExit("bci-stream view: no display; set DISPLAY, or give --screenshot to render offscreen")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = pg.mkQApp("bci-stream view")
    pg.setConfigOptions(background="w", foreground="#333333", antialias=False)
    feed = AttachFeed(attach, timeout) if attach else PipelineFeed(source, model, participant, session, seed)
    win = ViewerWindow(feed)
    win.resize(1280, 800)
    win.show()
    feed.start()

    failed = []

    def finish():
        win.refresh(text=True)
        if screenshot:
            if win.grab().save(str(screenshot)):
                print(f"wrote {screenshot}: {win.summary()}", flush=True)
            else:
                failed.append(f"could not write screenshot {screenshot}")
        win.close()

    if duration is not None:
        QtCore.QTimer.singleShot(int(duration * 1000), finish)
    try:
        app.exec()
    finally:
        feed.stop()
    if feed.error is not None:
        failed.append(f"pipeline stopped: {type(feed.error).__name__}: {feed.error}")
    for message in failed:
        print(f"bci-stream view: error: {message}", file=sys.stderr)
    return 1 if failed else 0
