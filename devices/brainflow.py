"""BrainFlow boards (real or BrainFlow's own synthetic board) as a source."""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterator

import numpy as np
import pylsl

from bci_stream.sources import Source, SourceError, parse_positive, parse_query
from bci_stream.stream import Chunk, StreamInfo

log = logging.getLogger("bci_stream.devices.brainflow")

#: BrainFlowInputParams fields a user may set in ``brainflow:BOARD?key=value``.
PARAMS = ("serial_port", "mac_address", "ip_address", "ip_address_aux", "ip_address_anc", "ip_port",
          "ip_port_aux", "ip_port_anc", "ip_protocol", "other_info", "timeout", "serial_number", "file",
          "file_aux", "file_anc", "master_board")
_INT_PARAMS = {"ip_port", "ip_port_aux", "ip_port_anc", "ip_protocol", "timeout", "master_board"}

#: Seconds without data after which the board is reconnected, unless ``?stall=`` says otherwise. A dongle that
#: lost its headset, or a board reset, may give no error at all: the data just stop.
STALL = 5.0
#: Seconds between reconnection tries: the first comes at once, then 1, 2, 4, ... s up to the cap, so a board that
#: is away for long is not hammered and one that is back soon is found soon.
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
#: Samples BrainFlow buffers between polls.
BUFFER = 450000


def board_id(name: str) -> int:
    """``synthetic``, ``SYNTHETIC_BOARD``, ``cyton`` or a numeric id -> BrainFlow board id."""
    from brainflow.board_shim import BoardIds

    if name.lstrip("-").isdigit():
        return int(name)
    key = name.upper().replace("-", "_")
    for candidate in (key, key + "_BOARD"):
        if candidate in BoardIds.__members__:
            return BoardIds[candidate].value
    known = ", ".join(m.lower().removesuffix("_board") for m in BoardIds.__members__)
    raise SourceError(f"unknown BrainFlow board {name!r}; known boards: {known}")


class BrainFlowSource(Source):
    """Polls the board every ``poll`` seconds; BrainFlow's UNIX timestamps are mapped to the LSL clock.

    On a BrainFlow error or ``stall`` s without data the session is released, prepared and started again,
    with backoff (``BACKOFF_FIRST``); empty chunks keep coming meanwhile, so the run stays stoppable. Each try
    runs on a thread of its own: a board that is away can block ``prepare_session`` for as long as its driver
    waits (a Bluetooth scan, a serial or network timeout).
    """

    def __init__(self, board: str = "synthetic", poll: float = 0.02, stall: float = STALL, **params):
        from brainflow.board_shim import BoardIds, BoardShim, BrainFlowError, BrainFlowInputParams

        BoardShim.disable_board_logger()
        self.board_id = board_id(board)
        ip = BrainFlowInputParams()
        for k, v in params.items():
            if k not in PARAMS:
                raise SourceError(f"BrainFlow board {board!r}: unknown parameter {k!r}; known: {', '.join(PARAMS)}")
            if k in _INT_PARAMS:
                try:
                    v = int(v)
                except ValueError:
                    raise SourceError(f"BrainFlow board {board!r}: {k}: expected a whole number, got {v!r}") from None
            setattr(ip, k, v)
        self.poll, self.stall = poll, stall
        # A recorded file or a stream of another process has the layout of the board that recorded it.
        layout = (ip.master_board if self.board_id in (BoardIds.PLAYBACK_FILE_BOARD, BoardIds.STREAMING_BOARD)
                  else self.board_id)
        try:
            self.board = BoardShim(self.board_id, ip)
            self.eeg_rows = BoardShim.get_eeg_channels(layout)
            self.ts_row = BoardShim.get_timestamp_channel(layout)
            srate = BoardShim.get_sampling_rate(layout)
            try:
                names = BoardShim.get_eeg_names(layout)
            except BrainFlowError:
                names = [f"EEG{i + 1}" for i in range(len(self.eeg_rows))]
            device = BoardShim.get_device_name(layout)
            self.board.prepare_session()
            self.board.start_stream(BUFFER)
        except BrainFlowError as e:
            raise SourceError(f"BrainFlow board {board!r} (id {self.board_id}): {e}") from None
        self.info = StreamInfo(
            name=f"brainflow-{board}", channel_names=names, srate=float(srate), unit="microvolts",
            source_id=f"brainflow:{self.board_id}:{params.get('serial_number') or params.get('serial_port') or params.get('mac_address') or params.get('ip_address') or 'default'}",
            device=device,
        )
        self._empty = Chunk(np.empty((0, len(self.eeg_rows)), np.float32), np.empty(0))
        self._tries = 0
        self._trying: threading.Thread | None = None
        self._open = True

    @classmethod
    def from_spec(cls, spec: str, **defaults) -> "BrainFlowSource":
        head, params = parse_query(spec)
        where = f"BrainFlow board {head or 'synthetic'!r}"
        poll = parse_positive(params.pop("poll", "0.02"), f"{where}: poll", "seconds > 0")
        stall = parse_positive(params.pop("stall", str(STALL)), f"{where}: stall", "seconds > 0")
        return cls(head or "synthetic", poll=poll, stall=stall, **params)

    def chunks(self) -> Iterator[Chunk]:
        from brainflow.board_shim import BrainFlowError

        last = time.monotonic()
        while self._open:
            time.sleep(self.poll)
            try:
                raw = self.board.get_board_data()
            except BrainFlowError as e:
                yield from self._reconnect(f"BrainFlow error: {e}")
                last = time.monotonic()
                continue
            if raw.shape[1] == 0:
                if time.monotonic() - last > self.stall:
                    yield from self._reconnect(f"no data for {self.stall:g} s")
                    last = time.monotonic()
                yield self._empty  # a stall stays stoppable
                continue
            last, self._tries = time.monotonic(), 0
            # UNIX -> LSL clock; the offset is re-read every poll so system clock steps are followed.
            offset = time.time() - pylsl.local_clock()
            yield Chunk(
                np.ascontiguousarray(raw[self.eeg_rows].T, np.float32),
                raw[self.ts_row] - offset,
            )

    def _reconnect(self, why: str) -> Iterator[Chunk]:
        """Release, prepare and start the session until it works or the source is closed; each try is logged."""
        log.warning("%s: %s; reconnecting", self.info.name, why)
        while self._open:
            if self._tries:  # tries since data last came; a board that fails again at once is backed off from too
                until = time.monotonic() + self._backoff()
                while self._open and time.monotonic() < until:
                    yield self._empty
                    time.sleep(self.poll)
                if not self._open:
                    return
            self._tries += 1
            log.warning("%s: reconnecting, try %d", self.info.name, self._tries)
            failed: list = []  # the try's BrainFlowError, if it failed
            self._trying = threading.Thread(target=self._restart, args=(failed,), daemon=True,
                                            name=f"{self.info.name} reconnect")
            self._trying.start()
            while self._open and self._trying.is_alive():
                yield self._empty
                self._trying.join(self.poll)
            if not self._open:
                return
            self._trying = None
            if failed:
                log.warning("%s: try %d failed: %s; next try in %g s", self.info.name, self._tries, failed[0],
                            self._backoff())
            else:
                log.warning("%s: reconnected at try %d", self.info.name, self._tries)
                return

    def _restart(self, failed: list) -> None:
        from brainflow.board_shim import BrainFlowError

        try:
            self._release()
            self.board.prepare_session()
            self.board.start_stream(BUFFER)
        except BrainFlowError as e:
            failed.append(e)

    def _backoff(self) -> float:
        return min(BACKOFF_FIRST * 2 ** min(self._tries - 1, 16), BACKOFF_MAX)

    def _release(self) -> None:
        """Stop and release whatever is left of the session; a stream already stopped is no error here."""
        from brainflow.board_shim import BrainFlowError

        if self.board.is_prepared():
            try:
                self.board.stop_stream()
            except BrainFlowError as e:
                log.debug("%s: stop_stream: %s", self.info.name, e)
            self.board.release_session()

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        if self._trying is not None and self._trying.is_alive():
            # The board is the try's until its driver returns; releasing it beside a prepare is not safe.
            log.warning("%s: closed while reconnection try %d was still under way; the board is left to it",
                        self.info.name, self._tries)
            return
        self._release()
