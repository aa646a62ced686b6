"""What every acquisition adapter is, and how a ``scheme:spec`` string picks one."""

from __future__ import annotations

import abc
import urllib.parse
from typing import Iterator

from bci_stream import registry
from bci_stream.stream import Chunk, StreamInfo


class SourceError(RuntimeError):
    """A source could not be opened or read; the message names it and says what was expected."""


class Source(abc.ABC):
    """Yields chunks in the LSL clock until exhausted or closed; a context manager."""

    info: StreamInfo

    @classmethod
    @abc.abstractmethod
    def from_spec(cls, spec: str, **defaults) -> "Source":
        """Build from the part after ``scheme:``; ``defaults`` carry run-wide options."""

    @abc.abstractmethod
    def chunks(self) -> Iterator[Chunk]:
        """Chunks as they come; a live source that waits for data yields an empty chunk at least every
        0.5 s meanwhile, so the consumer can notice a stall and honour a stop or a duration."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def parse_query(spec: str) -> tuple[str, dict[str, str]]:
    """``"head?k=v&k2=v2"`` -> ``("head", {"k": "v", "k2": "v2"})``; repeated keys are an error."""
    head, _, query = spec.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    params: dict[str, str] = {}
    for k, v in pairs:
        if k in params:
            raise SourceError(f"source option {k!r} given twice in {spec!r}")
        params[k] = v
    return head, params


def parse_flag(value: str, where: str) -> bool:
    """A yes/no source option (``1/0``, ``true/false``, ``yes/no``, ``on/off``); ``where`` names the source."""
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise SourceError(f"{where}: expected a yes/no value, got {value!r}")


def parse_positive(value: str, where: str, expected: str = "a number > 0", zero: bool = False,
                   integer: bool = False) -> float:
    """A source option that is a finite number > 0 (>= 0 with ``zero``; a whole one with ``integer``); ``where``
    names the source and the option."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (0 <= number if zero else 0 < number) or not number < float("inf") or (integer and number != int(number)):
        raise SourceError(f"{where}: expected {expected}, got {value!r}")
    return int(number) if integer else number


def open_source(spec: str, **defaults) -> Source:
    """``synthetic:seed62``, ``brainflow:synthetic``, ``lsl:name=S1``, ... -> an open source."""
    scheme, sep, rest = spec.partition(":")
    if not sep:
        raise SourceError(
            f"source {spec!r} has no scheme; expected SCHEME:SPEC with SCHEME one of "
            f"{', '.join(registry.source_names())}"
        )
    try:
        cls = registry.load_source(scheme)
    except registry.UnknownNameError as e:
        raise SourceError(str(e)) from None
    return cls.from_spec(rest, **defaults)
