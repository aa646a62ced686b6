"""Live stratum control: experiment software switches participant/session through an LSL Markers stream.

Markers and status messages share one text format, ``key=value;key=value``
(``%``, ``;`` and ``=`` inside values are percent-encoded), so experiment
software parses the acknowledgements the way it writes the commands.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from typing import Callable

import pylsl

from bci_stream.stratified import Strata, check_name
from bci_stream.stream import Chunk

log = logging.getLogger("bci_stream.control")

#: What a control marker may set.
KEYS = ("participant", "session")
#: Longer markers are rejected unparsed; a status echo repeats at most ECHO characters of a marker or reason.
MAX_MARKER, ECHO = 1024, 200


def excerpt(text: str) -> str:
    """``text`` cut to ECHO characters, saying how long it was, so an echo of a flood stays small."""
    return text if len(text) <= ECHO else f"{text[:ECHO]}... ({len(text)} characters)"


def format_fields(fields: dict) -> str:
    """``{"participant": "P07", "session": 2}`` -> ``participant=P07;session=2``."""
    def quote(v) -> str:
        return str(v).replace("%", "%25").replace(";", "%3B").replace("=", "%3D")

    return ";".join(f"{k}={quote(v)}" for k, v in fields.items())


def parse_fields(text: str) -> dict[str, str]:
    """The inverse of :func:`format_fields`; raises ValueError saying what is wrong with ``text``."""
    fields: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), urllib.parse.unquote(value.strip())
        if not sep or not key:
            raise ValueError(f"{part.strip()!r} is not key=value")
        if key in fields:
            raise ValueError(f"key {key!r} given twice")
        fields[key] = value
    if not fields:
        raise ValueError("empty marker")
    return fields


def parse_stratum(text: str) -> dict[str, str]:
    """``participant=P07;session=2`` (either key may be left out) -> the fields it sets, names checked."""
    if len(text) > MAX_MARKER:
        raise ValueError(f"marker of {len(text)} characters, over the limit of {MAX_MARKER}")
    fields = parse_fields(text)
    unknown = sorted(set(fields) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; expected participant=P;session=S")
    empty = [k for k, v in fields.items() if not v]
    if empty:
        raise ValueError(f"empty value for {empty}")
    for key, value in fields.items():
        check_name(value, key)
    return fields


class StratumControl:
    """A pipeline hook that listens to the Markers stream ``name`` and switches the pipeline's ``strata``.

    The stream may appear after the pipeline starts (or come back after a
    restart): it is looked for in the background, checked about once a second,
    and read without waiting, so decoding never blocks on it. ``report`` gets
    each outcome as status fields (``event=switch`` or ``event=rejected``).
    """

    def __init__(self, name: str, strata: Strata, report: Callable[..., None], look_every: float = 1.0):
        self.name, self.strata, self.report = name, strata, report
        self.look_every = look_every
        self._resolver: pylsl.ContinuousResolver | None = pylsl.ContinuousResolver(prop="name", value=name)
        self._next_look = 0.0
        self.inlet: pylsl.StreamInlet | None = None
        self.n_switches = 0
        self.n_rejected = 0

    def __call__(self, chunk: Chunk | None = None) -> None:
        if self.inlet is None and not self._connect():
            return
        while True:
            sample, _ = self.inlet.pull_sample(timeout=0.0)
            if sample is None:
                return
            self.handle(sample[0])

    def _connect(self) -> bool:
        now = time.perf_counter()
        if now < self._next_look:
            return False
        self._next_look = now + self.look_every
        found = self._resolver.results()
        if not found:
            return False
        info = found[0]
        if len(found) > 1:
            log.warning("control: %d LSL streams are named %r (source ids %s); listening to %r",
                        len(found), self.name, [s.source_id() for s in found], info.source_id())
        if info.channel_format() != pylsl.cf_string or info.channel_count() != 1:
            log.error("control stream %r: expected a 1-channel string Markers stream, got %d channel(s) of format %d; "
                      "not listening to it", self.name, info.channel_count(), info.channel_format())
            self._next_look = float("inf")
            return False
        self.inlet = pylsl.StreamInlet(info, recover=True)  # follows the stream through restarts from now on
        self._resolver = None
        log.info("listening for stratum markers (participant=P;session=S) on LSL stream %r", self.name)
        return True

    def handle(self, marker: str) -> None:
        """Apply one marker; a malformed one is logged and reported, never applied in part."""
        try:
            fields = parse_stratum(marker)
        except ValueError as e:
            self.n_rejected += 1
            log.warning("control stream %r: ignored marker %r: %s", self.name, excerpt(marker), excerpt(str(e)))
            self.report(event="rejected", marker=excerpt(marker), reason=excerpt(str(e)))
            return
        participant, session = self.strata.key
        participant, session = fields.get("participant", participant), fields.get("session", session)
        self.strata.switch(participant, session)
        self.n_switches += 1
        warm = self.strata.warming_up()
        log.info("stratum switched to %s/%s by marker %r on %r%s", participant, session, marker, self.name,
                 " (warming up)" if warm else "")
        self.report(event="switch", participant=participant, session=session, warming_up=int(warm))
