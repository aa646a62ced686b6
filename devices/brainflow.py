"""BrainFlow boards (real or BrainFlow's own synthetic board) as a source."""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import pylsl

from bci_stream.sources import Source, SourceError, parse_query
from bci_stream.stream import Chunk, StreamInfo

#: BrainFlowInputParams fields a user may set in ``brainflow:BOARD?key=value``.
PARAMS = ("serial_port", "mac_address", "ip_address", "ip_address_aux", "ip_address_anc", "ip_port",
          "ip_port_aux", "ip_port_anc", "ip_protocol", "other_info", "timeout", "serial_number", "file",
          "file_aux", "file_anc", "master_board")
_INT_PARAMS = {"ip_port", "ip_port_aux", "ip_port_anc", "ip_protocol", "timeout", "master_board"}


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
    """Polls the board every ``poll`` seconds; BrainFlow's UNIX timestamps are mapped to the LSL clock."""

    def __init__(self, board: str = "synthetic", poll: float = 0.02, **params):
        from brainflow.board_shim import BoardShim, BrainFlowError, BrainFlowInputParams

        BoardShim.disable_board_logger()
        self.board_id = board_id(board)
        ip = BrainFlowInputParams()
        for k, v in params.items():
            if k not in PARAMS:
                raise SourceError(f"BrainFlow board {board!r}: unknown parameter {k!r}; known: {', '.join(PARAMS)}")
            setattr(ip, k, int(v) if k in _INT_PARAMS else v)
        self.poll = poll
        self.board = BoardShim(self.board_id, ip)
        try:
            self.eeg_rows = BoardShim.get_eeg_channels(self.board_id)
            self.ts_row = BoardShim.get_timestamp_channel(self.board_id)
            srate = BoardShim.get_sampling_rate(self.board_id)
            try:
                names = BoardShim.get_eeg_names(self.board_id)
            except BrainFlowError:
                names = [f"EEG{i + 1}" for i in range(len(self.eeg_rows))]
            device = BoardShim.get_device_name(self.board_id)
            self.board.prepare_session()
            self.board.start_stream(450000)
        except BrainFlowError as e:
            raise SourceError(f"BrainFlow board {board!r} (id {self.board_id}): {e}") from None
        self.info = StreamInfo(
            name=f"brainflow-{board}", channel_names=names, srate=float(srate), unit="microvolts",
            source_id=f"brainflow:{self.board_id}:{params.get('serial_number') or params.get('serial_port') or params.get('mac_address') or params.get('ip_address') or 'default'}",
            device=device,
        )
        self._open = True

    @classmethod
    def from_spec(cls, spec: str, **defaults) -> "BrainFlowSource":
        head, params = parse_query(spec)
        poll = float(params.pop("poll", 0.02))
        return cls(head or "synthetic", poll=poll, **params)

    def chunks(self) -> Iterator[Chunk]:
        while self._open:
            time.sleep(self.poll)
            raw = self.board.get_board_data()
            if raw.shape[1] == 0:
                yield Chunk(np.empty((0, len(self.eeg_rows)), np.float32), np.empty(0))  # a stall stays stoppable
                continue
            # UNIX -> LSL clock; the offset is re-read every poll so system clock steps are followed.
            offset = time.time() - pylsl.local_clock()
            yield Chunk(
                np.ascontiguousarray(raw[self.eeg_rows].T, np.float32),
                raw[self.ts_row] - offset,
            )

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self.board.stop_stream()
            finally:
                self.board.release_session()
