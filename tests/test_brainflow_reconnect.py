"""BrainFlow's synthetic board stopped, released or taken away behind the source's back: the source releases,
prepares and starts the session again, with backoff, logging every try, and keeps yielding (empty) chunks meanwhile
so a run stays stoppable. Real BrainFlow, no mocks."""

import logging
import os
import threading
import time

import numpy as np
import pytest
from brainflow.board_shim import BoardShim
from brainflow.data_filter import DataFilter

from bci_stream.sources import SourceError, open_source
from conftest import cli, stop


class _Log(logging.Handler):
    """Messages of the BrainFlow source, each with how many chunks the test had pulled when it was logged."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.pulled, self.records = 0, []

    def emit(self, record):
        self.records.append((record.getMessage(), self.pulled))

    def messages(self):
        return [m for m, _ in self.records]

    def at(self, text):
        """Chunks pulled when the first message containing ``text`` was logged."""
        return next(n for m, n in self.records if text in m)


@pytest.fixture
def watched():
    handler = _Log()
    logger = logging.getLogger("bci_stream.devices.brainflow")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


def _pull(it, log, done, timeout=60):
    """Chunks from ``it`` until ``done(chunks)``; (the chunks, how many of them were empty)."""
    got, deadline = [], time.monotonic() + timeout
    while not done(got):
        assert time.monotonic() < deadline, f"gave up; log: {log.messages()}"
        got.append(next(it))
        log.pulled += 1
    return got, sum(not len(c) for c in got)


def _samples(n):
    return lambda got: sum(len(c) for c in got) >= n


def _timestamps(chunks):
    return np.concatenate([c.timestamps for c in chunks if len(c)])


@pytest.mark.parametrize("fault", ["stop_stream", "release_session"])
def test_data_come_back_after_the_board_was_stopped_or_released_behind_the_sources_back(watched, fault):
    with open_source("brainflow:synthetic?stall=1") as src:
        it = src.chunks()
        before, _ = _pull(it, watched, _samples(100))
        getattr(src.board, fault)()
        after, empties = _pull(it, watched, _samples(100))
    messages = watched.messages()
    assert _timestamps(after)[0] > _timestamps(before)[-1]
    why = "no data for 1 s" if fault == "stop_stream" else "BrainFlow error: BOARD_NOT_CREATED_ERROR"
    assert f"brainflow-synthetic: {why}" in messages[0] and messages[0].endswith("; reconnecting"), messages
    assert [m for m in messages if "try" in m] == ["brainflow-synthetic: reconnecting, try 1",
                                                   "brainflow-synthetic: reconnected at try 1"]
    if fault == "stop_stream":
        assert empties > 1  # the stall was waited out in empty chunks, not in one blocking call


@pytest.fixture
def recording(tmp_path):
    """A BrainFlow file of 2 min in the synthetic board's layout, for BrainFlow's playback board; the board fails
    to prepare while the file is away."""
    path = tmp_path / "rec.csv"
    data = np.random.default_rng(0).standard_normal((BoardShim.get_num_rows(-1), 250 * 120))
    DataFilter.write_file(data, str(path), "w")
    return path


def test_tries_back_off_1_2_4_s_while_the_board_is_away_and_yield_empty_chunks_meanwhile(watched, recording):
    away = recording.with_suffix(".away")
    with open_source(f"brainflow:playback_file_board?file={recording}&master_board=-1&stall=1") as src:
        it = src.chunks()
        _pull(it, watched, _samples(100))
        recording.rename(away)
        src.board.release_session()
        _pull(it, watched, lambda _: any("try 3 failed" in m for m in watched.messages()))
        away.rename(recording)
        after, _ = _pull(it, watched, _samples(100))
    tries = [m.removeprefix("brainflow-playback_file_board: ") for m in watched.messages() if "try" in m]
    assert [t.split(":")[0] for t in tries] == ["reconnecting, try 1", "try 1 failed", "reconnecting, try 2",
                                                "try 2 failed", "reconnecting, try 3", "try 3 failed",
                                                "reconnecting, try 4", "reconnected at try 4"], tries
    assert all("unable to prepare streaming session" in t for t in tries if "failed" in t)
    assert [t.split("; ")[-1] for t in tries if "failed" in t] == ["next try in 1 s", "next try in 2 s",
                                                                  "next try in 4 s"]
    # Between tries the run was handed empty chunks, poll after poll.
    for n in (1, 2, 3):
        assert watched.at(f"reconnecting, try {n + 1}") - watched.at(f"try {n} failed") > 10
    assert len(_timestamps(after)) >= 100


def test_closing_while_backing_off_ends_at_once_and_releases_nothing_twice(watched, recording):
    with open_source(f"brainflow:playback_file_board?file={recording}&master_board=-1&stall=1") as src:
        it = src.chunks()
        _pull(it, watched, _samples(10))
        recording.rename(recording.with_suffix(".away"))
        src.board.release_session()
        _pull(it, watched, lambda _: any("try 1 failed" in m for m in watched.messages()))
        it.close()  # the run stopped mid-backoff; leaving the with block closes the source
    assert not src.board.is_prepared()
    assert not [m for m in watched.messages() if "try 2" in m]


def test_a_try_that_blocks_in_the_driver_leaves_the_run_stoppable(watched, recording):
    """A board that is away can block prepare_session (a Bluetooth scan, a serial timeout). Here the playback
    board's file is a FIFO no one writes, so opening it blocks for real. Before: the try ran on the run's thread,
    which then hung in BrainFlow, deaf to SIGTERM and --duration."""
    with open_source(f"brainflow:playback_file_board?file={recording}&master_board=-1&stall=1") as src:
        it = src.chunks()
        _pull(it, watched, _samples(10))
        recording.rename(recording.with_suffix(".away"))
        os.mkfifo(recording)
        src.board.release_session()
        pulled = []
        puller = threading.Thread(target=lambda: pulled.append(_pull(
            it, watched, lambda got: any("try 1" in m for m in watched.messages()) and len(got) >= 200)), daemon=True)
        try:
            puller.start()
            puller.join(30)
            assert not puller.is_alive(), f"the run's thread blocked in the try; log: {watched.messages()}"
            assert pulled[0][1] >= 190 and not [m for m in watched.messages() if "failed" in m or "reconnected" in m]
            assert src._trying.is_alive()  # the try is still blocked in BrainFlow
            it.close()
        finally:  # let the try's open() return (a writer comes and goes), whatever happened
            writer = os.open(recording, os.O_WRONLY | os.O_NONBLOCK)
            os.close(writer)
    assert "brainflow-playback_file_board: closed while reconnection try 1 was still under way; the board is left " \
           "to it" in watched.messages()
    src._trying.join(10)
    assert not src._trying.is_alive()
    if src.board.is_prepared():
        src.board.release_session()


def test_duration_ends_a_run_while_a_try_blocks(uid, tmp_path):
    """End to end: a 4-s recording plays out, the board stalls, and its try blocks on the FIFO put in the file's
    place. Before: the try blocked the run's thread, so `--duration 9` never ended it (a signal did, by
    interrupting the open; a driver's own wait need not be interruptible)."""
    path = tmp_path / "rec.csv"
    DataFilter.write_file(np.random.default_rng(0).standard_normal((BoardShim.get_num_rows(-1), 250 * 4)), str(path), "w")
    run = cli("run", "--source", f"brainflow:playback_file_board?file={path}&master_board=-1&stall=1",
              "--name", uid, "--no-state", "--duration", "9")
    try:
        while "running model" not in (line := run.stderr.readline()):
            assert line and run.poll() is None, run.stderr.read()
        path.rename(path.with_suffix(".away"))
        os.mkfifo(path)
        _, err = run.communicate(timeout=30)
        assert "reconnecting, try 1" in err and "closed while reconnection try 1 was still under way" in err, err
        assert run.returncode == 0 and "done:" in err, err
    finally:
        stop(run)  # the FIFO's only reader goes with it


@pytest.mark.parametrize("value", ["0", "-1", "x", "nan", "inf", ""])
def test_a_bad_stall_is_a_one_line_error(value):
    with pytest.raises(SourceError) as e:
        open_source(f"brainflow:synthetic?stall={value}")
    assert str(e.value) == f"BrainFlow board 'synthetic': stall: expected seconds > 0, got {value!r}"


@pytest.mark.parametrize("param,value", [("ip_port", "http"), ("master_board", "1.5"), ("timeout", "")])
def test_a_board_parameter_that_is_not_a_whole_number_is_a_one_line_error(param, value):
    with pytest.raises(SourceError) as e:
        open_source(f"brainflow:playback_file_board?{param}={value}")
    assert str(e.value) == f"BrainFlow board 'playback_file_board': {param}: expected a whole number, got {value!r}"
