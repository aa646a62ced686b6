"""Any LSL stream as a source, found by name, type or source_id."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pylsl

from bci_stream.lslmeta import from_lsl
from bci_stream.sources import Source, SourceError, parse_query
from bci_stream.stream import Chunk

PROPS = ("name", "type", "source_id")


class LSLSource(Source):
    """Pulls into preallocated arrays; clock correction, dejitter and stream recovery are on.

    ``lsl:name=S1``, ``lsl:type=EEG``, ``lsl:source_id=ID``; options after ``?``:
    ``timeout`` (seconds to wait for the stream, default 10), ``resolve_wait`` (seconds to keep looking
    for other matching streams once one appeared, default 0.5; more than one is an error, as the source
    would be an arbitrary one of them; 0 takes the first) and ``max_chunk``.
    """

    def __init__(self, prop: str, value: str, timeout: float = 10.0, max_chunk: int = 4096,
                 resolve_wait: float = 0.5):
        if prop not in PROPS:
            raise SourceError(f"LSL source: cannot resolve by {prop!r}; use one of {', '.join(PROPS)}")
        self.query = f"{prop}={value}"
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
        self.inlet = pylsl.StreamInlet(
            found[0], max_buflen=60, processing_flags=pylsl.proc_ALL, recover=True
        )
        full = self.inlet.info(timeout=timeout)
        if full.channel_format() not in (pylsl.cf_float32, pylsl.cf_double64, pylsl.cf_int16, pylsl.cf_int32):
            raise SourceError(f"LSL stream {full.name()!r}: expected numeric samples, got channel format {full.channel_format()}")
        try:
            self.info = from_lsl(full)
        except ValueError as e:
            raise SourceError(str(e)) from None
        self.max_chunk = max_chunk
        dtype = {pylsl.cf_float32: np.float32, pylsl.cf_double64: np.float64,
                 pylsl.cf_int16: np.int16, pylsl.cf_int32: np.int32}[full.channel_format()]
        self._buf = np.zeros((max_chunk, self.info.n_channels), dtype)
        self.inlet.open_stream(timeout=timeout)
        self._open = True

    @classmethod
    def from_spec(cls, spec: str, **defaults) -> "LSLSource":
        head, params = parse_query(spec)
        prop, sep, value = head.partition("=")
        if not sep or not value:
            raise SourceError(f"LSL source {spec!r}: expected name=NAME, type=TYPE or source_id=ID")
        unknown = set(params) - {"timeout", "max_chunk", "resolve_wait"}
        if unknown:
            raise SourceError(f"LSL source {spec!r}: unknown option(s) {sorted(unknown)}; "
                              "known: timeout, resolve_wait, max_chunk")
        return cls(prop, value, float(params.get("timeout", defaults.get("timeout", 10.0))), int(params.get("max_chunk", 4096)),
                   float(params.get("resolve_wait", 0.5)))

    def chunks(self, poll: float = 0.2) -> Iterator[Chunk]:
        """Yields each chunk as soon as its first sample arrives; the data view is reused next time."""
        buf = self._buf
        while self._open:
            _, ts = self.inlet.pull_chunk(timeout=poll, max_samples=self.max_chunk, dest_obj=buf, min_samples=1, as_numpy=True)
            n = len(ts)
            if n:
                data = buf[:n] if buf.dtype == np.float32 else buf[:n].astype(np.float32)
                yield Chunk(data, ts)

    def close(self) -> None:
        if self._open:
            self._open = False
            self.inlet.close_stream()
