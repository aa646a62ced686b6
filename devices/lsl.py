"""Any LSL stream as a source, found by name, type or source_id."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Iterator

import numpy as np
import pylsl

from bci_stream.lslmeta import channel_labels, from_lsl
from bci_stream.sources import Source, SourceError, parse_positive, parse_query
from bci_stream.stream import Chunk, StreamInfo, given_unit

log = logging.getLogger("bci_stream.devices.lsl")

PROPS = ("name", "type", "source_id")

#: Clock correction only. Dejitter fits a line through the timestamps and so spreads a jump or a restart's gap
#: over seconds of labels; monotonize clamps a backward jump into a run of equal stamps. Either would hide from
#: the pipeline (``bci_stream.health``) what it must see to keep windows off a break; the jitter left in is
#: tolerated there.
FLAGS = pylsl.proc_clocksync

#: Seconds without data after which the stream is looked for again by the user's query, e.g. an outlet restarted
#: with a new source_id, which liblsl's own recovery (by source_id) never finds.
RERESOLVE_AFTER = 3.0

_DTYPES = {pylsl.cf_float32: np.float32, pylsl.cf_double64: np.float64, pylsl.cf_int16: np.int16,
           pylsl.cf_int32: np.int32}


class LSLSource(Source):
    """Pulls into preallocated arrays; clock correction and stream recovery are on, dejitter is off (``FLAGS``).

    ``lsl:name=S1``, ``lsl:type=EEG``, ``lsl:source_id=ID``; options after ``?``:
    ``timeout`` (seconds to wait for the stream, default 10), ``resolve_wait`` (seconds to keep looking
    for other matching streams once one appeared, default 0.5; more than one is an error, as the source
    would be an arbitrary one of them; 0 takes the first), ``max_chunk``, ``unit`` (the unit the samples
    really are in, where the stream's metadata is wrong or silent) and ``scale`` (that unit per count: samples
    are multiplied by it); both said at start-up. Integer samples are counts of an amplifier's own size: a
    stream of them that declares no unit is refused unless ``unit`` and ``scale`` are given.
    """

    def __init__(self, prop: str, value: str, timeout: float = 10.0, max_chunk: int = 4096,
                 resolve_wait: float = 0.5, unit: str | None = None, scale: float | None = None):
        if prop not in PROPS:
            raise SourceError(f"LSL source: cannot resolve by {prop!r}; use one of {', '.join(PROPS)}")
        self.prop, self.value, self.query = prop, value, f"{prop}={value}"
        found = pylsl.resolve_byprop(prop, value, minimum=1, timeout=timeout)
        if not found:
            raise SourceError(f"no LSL stream with {prop}={value!r} appeared within {timeout:g} s")
        if resolve_wait > 0:
            # resolve_byprop returns at the first response; one asking for more than can exist runs for the whole
            # wait and so hears every stream that matches.
            found = list({s.uid(): s for s in found + pylsl.resolve_byprop(prop, value, minimum=1024,
                                                                          timeout=resolve_wait)}.values())
        if len(found) > 1:
            ids = ", ".join(f"{s.name()} ({s.source_id() or s.uid()}) on {s.hostname()}" for s in found)
            raise SourceError(f"{len(found)} LSL streams match {prop}={value!r}: {ids}; pick one with "
                              f"lsl:source_id=ID (e.g. lsl:source_id={found[0].source_id() or '...'})")
        self.uid = found[0].uid()
        if unit is not None:
            try:
                unit = given_unit(unit, f"LSL source lsl:{self.query}")
            except ValueError as e:
                raise SourceError(str(e)) from None
        self.told = unit is not None and scale is not None
        self.inlet, self.info, dtype = _open_inlet(found[0], timeout, self.query, self.told)
        self.scale = 1.0 if scale is None else scale
        if unit is not None or scale is not None:
            declared = self.info.unit
            self.info = replace(self.info, unit=unit or declared,
                                extra={**self.info.extra, "unit_declared": declared, "scale": self.scale})
            log.info("LSL stream lsl:%s: %s samples times %g read as %s, as given", self.query,
                     np.dtype(dtype).name, self.scale, self.info.unit)
        self.max_chunk = max_chunk
        self._buf = np.zeros((max_chunk, self.info.n_channels), dtype)
        self._empty = Chunk(np.empty((0, self.info.n_channels), np.float32), np.empty(0))
        self._open = True

    @classmethod
    def from_spec(cls, spec: str, **defaults) -> "LSLSource":
        head, params = parse_query(spec)
        prop, sep, value = head.partition("=")
        if not sep or not value:
            raise SourceError(f"LSL source {spec!r}: expected name=NAME, type=TYPE or source_id=ID")
        unknown = set(params) - {"timeout", "max_chunk", "resolve_wait", "unit", "scale"}
        if unknown:
            raise SourceError(f"LSL source {spec!r}: unknown option(s) {sorted(unknown)}; "
                              "known: timeout, resolve_wait, max_chunk, unit, scale")
        where = f"LSL source lsl:{head}"
        scale = params.get("scale")
        if scale is not None:
            scale = parse_positive(scale, f"{where}: scale", "the unit per count, a number > 0")
        timeout = parse_positive(params.get("timeout", defaults.get("timeout", 10.0)), f"{where}: timeout",
                                 "seconds > 0")
        max_chunk = parse_positive(params.get("max_chunk", 4096), f"{where}: max_chunk", "a whole number > 0",
                                   integer=True)
        resolve_wait = parse_positive(params.get("resolve_wait", 0.5), f"{where}: resolve_wait", "seconds >= 0",
                                      zero=True)
        return cls(prop, value, timeout, max_chunk, resolve_wait, params.get("unit"), scale)

    def chunks(self, poll: float = 0.2) -> Iterator[Chunk]:
        """Yields each chunk as soon as its first sample arrives, an empty one after each empty poll; the data
        view is reused next time. After ``RERESOLVE_AFTER`` s without data the query is resolved again."""
        last, looking = time.monotonic(), False
        while self._open:
            buf = self._buf
            _, ts = self.inlet.pull_chunk(timeout=poll, max_samples=self.max_chunk, dest_obj=buf, min_samples=1, as_numpy=True)
            n = len(ts)
            if n:
                last, looking = time.monotonic(), False
                if buf.dtype == np.float32 and self.scale == 1:
                    yield Chunk(buf[:n], ts)
                else:
                    yield Chunk(np.multiply(buf[:n], self.scale, dtype=np.float32), ts)
                continue
            yield self._empty
            if time.monotonic() - last > RERESOLVE_AFTER:
                if not looking:
                    log.warning("LSL stream %s: no data for %.0f s; looking for lsl:%s again", self.info.name,
                                RERESOLVE_AFTER, self.query)
                looking = True
                if self._resolve_again(poll):
                    last, looking = time.monotonic(), False

    def _resolve_again(self, wait: float) -> bool:
        """Switch to another stream that answers the query (within ``wait`` s); False if none did."""
        found = [s for s in pylsl.resolve_byprop(self.prop, self.value, minimum=1, timeout=wait) if s.uid() != self.uid]
        if not found:
            return False
        try:
            inlet, info, dtype = _open_inlet(found[0], 1.0, self.query, self.told)
        except TimeoutError:
            return False  # gone again before it described itself; keep looking
        if (info.channel_names, info.srate) != (self.info.channel_names, self.info.srate):
            inlet.close_stream()
            raise SourceError(f"LSL stream lsl:{self.query} came back with another layout: {_layout(info)} "
                              f"(source_id {found[0].source_id()!r}) instead of {_layout(self.info)}; "
                              "restart bci-stream to decode it")
        self.inlet.close_stream()
        self.inlet, self.uid = inlet, found[0].uid()
        if dtype != self._buf.dtype:
            self._buf = np.zeros_like(self._buf, dtype)
        log.warning("LSL stream lsl:%s found again: source_id %r on %s", self.query, found[0].source_id(),
                    found[0].hostname())
        return True

    def close(self) -> None:
        if self._open:
            self._open = False
            self.inlet.close_stream()


def _open_inlet(stream: pylsl.StreamInfo, timeout: float, query: str,
                told: bool) -> tuple[pylsl.StreamInlet, StreamInfo, type]:
    """An open inlet on ``stream``, its description and the numpy type of its samples. ``told``: the user gave
    the unit and the scale, which integer samples need when the stream declares no unit."""
    inlet = pylsl.StreamInlet(stream, max_buflen=60, processing_flags=FLAGS, recover=True)
    full = inlet.info(timeout=timeout)
    if full.channel_format() not in _DTYPES:
        raise SourceError(f"LSL stream {full.name()!r}: expected numeric samples, got channel format {full.channel_format()}")
    dtype = _DTYPES[full.channel_format()]
    if np.issubdtype(dtype, np.integer) and not told and not any(u.strip() for u in channel_labels(full)[1]):
        raise SourceError(f"LSL stream {full.name()!r} sends {np.dtype(dtype).name} samples and declares no unit: "
                          f"say what a count is with lsl:{query}?unit=UNIT&scale=S (one count = S UNIT)")
    try:
        info = from_lsl(full)
    except ValueError as e:
        raise SourceError(str(e)) from None
    inlet.open_stream(timeout=timeout)
    return inlet, info, dtype


def _layout(info: StreamInfo) -> str:
    return f"{info.n_channels} ch ({', '.join(info.channel_names[:4])}{', ...' if info.n_channels > 4 else ''}) @ {info.srate:g} Hz"
