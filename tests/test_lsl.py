import time

import numpy as np
import pylsl
import pytest

from bci_stream.devices.lsl import LSLSource
from bci_stream.outlets import EEGOutlet
from bci_stream.sources import SourceError, open_source
from bci_stream.stream import Chunk, StreamInfo


@pytest.fixture
def eeg_outlet(uid):
    # A unique type too, so resolving by type cannot meet another test's stream.
    info = StreamInfo(uid, ["Fp1", "Fp2", "Cz"], 250.0, "volts", source_id=f"{uid}-src", device="test-amp",
                      kind=f"EEG-{uid}")
    out = EEGOutlet(info)
    yield info, out
    out.close()


@pytest.mark.parametrize("by", ["name", "type", "source_id"])
def test_resolves_and_reads_metadata(eeg_outlet, by, uid):
    info, out = eeg_outlet
    value = {"name": uid, "type": f"EEG-{uid}", "source_id": f"{uid}-src"}[by]
    with open_source(f"lsl:{by}={value}?timeout=5") as src:
        assert src.info.channel_names == ("Fp1", "Fp2", "Cz")
        assert src.info.srate == 250.0 and src.info.unit == "volts" and src.info.device == "test-amp"


def test_pulls_the_samples_that_were_pushed(eeg_outlet, uid, rng):
    info, out = eeg_outlet
    with LSLSource("source_id", f"{uid}-src", timeout=5) as src:
        time.sleep(0.5)
        data = rng.standard_normal((500, 3)).astype(np.float32)
        t0 = pylsl.local_clock()
        ts = t0 + np.arange(500) / 250.0
        for i in range(0, 500, 37):
            out.push(Chunk(data[i : i + 37], ts[i : i + 37]))
        got, times = [], []
        deadline = time.monotonic() + 5
        for chunk in src.chunks():
            got.append(chunk.data.copy())  # the source reuses its buffer
            times.append(chunk.timestamps.copy())
            if sum(len(g) for g in got) >= 500 or time.monotonic() > deadline:
                break
    np.testing.assert_array_equal(np.concatenate(got), data)
    # Same host: clock correction ~0, dejittering keeps the regular grid.
    np.testing.assert_allclose(np.concatenate(times), ts, atol=2e-3)


def test_stream_that_never_appears_gives_clear_error(uid):
    t = time.monotonic()
    with pytest.raises(SourceError, match=f"no LSL stream with name='{uid}-absent' appeared within 0.5 s"):
        open_source(f"lsl:name={uid}-absent?timeout=0.5")
    # It gives up rather than waiting on; liblsl's first resolve in a process sometimes takes ~5 s more.
    assert time.monotonic() - t < 10


def test_bad_specs_are_refused():
    with pytest.raises(SourceError, match="expected name=NAME"):
        open_source("lsl:S1")
    with pytest.raises(SourceError, match="cannot resolve by 'hostname'"):
        open_source("lsl:hostname=x")
    with pytest.raises(SourceError, match="unknown source 'eeg'; installed sources: .*brainflow.*lsl.*synthetic"):
        open_source("eeg:x")
    with pytest.raises(SourceError, match="has no scheme"):
        open_source("seed62")


def test_unlabelled_foreign_stream_gets_numbered_channels(uid):
    lsl = pylsl.StreamInfo(uid, "EEG", 4, 100, "float32", f"{uid}-src")
    out = pylsl.StreamOutlet(lsl)
    try:
        with open_source(f"lsl:source_id={uid}-src?timeout=5") as src:
            assert src.info.channel_names == ("ch1", "ch2", "ch3", "ch4") and src.info.unit == "microvolts"
    finally:
        del out


def test_several_matching_streams_are_an_error_listing_each(uid):
    """resolve_byprop returns at the first response: without looking on, one of three streams would be decoded."""
    outs = [pylsl.StreamOutlet(pylsl.StreamInfo(f"{uid}-{i}", f"EEG-{uid}", 2, 100, "float32", f"{uid}-src{i}"))
            for i in range(3)]
    try:
        with pytest.raises(SourceError) as e:
            open_source(f"lsl:type=EEG-{uid}?timeout=5")
        host = outs[0].get_info().hostname()
        for i in range(3):
            assert f"{uid}-{i} ({uid}-src{i}) on {host}" in str(e.value)
        assert str(e.value).startswith(f"3 LSL streams match type='EEG-{uid}'") and "lsl:source_id=" in str(e.value)
        del outs[1:]  # the one left is no longer ambiguous
        t = time.monotonic()
        with open_source(f"lsl:type=EEG-{uid}?timeout=5") as src:
            assert src.info.name == f"{uid}-0"
        assert time.monotonic() - t < 8  # resolve_wait adds 0.5 s; liblsl's first resolve may add ~5 s
    finally:
        del outs


def test_second_publisher_of_the_same_labels_is_warned_about(uid, caplog):
    """Two pipelines with one --name publish two PREFIX-labels; a consumer resolving by name gets either."""
    from bci_stream.outlets import PredictionOutlet

    other = pylsl.StreamOutlet(pylsl.StreamInfo(f"{uid}-labels", "Markers", 1, 0, "string", f"{uid}-other"))
    mine = None
    try:
        with caplog.at_level("WARNING", "bci_stream.outlets"):
            mine = PredictionOutlet(uid, ["a", "b"])
            mine.duplicates.join(timeout=30)  # it looks beside the pipeline
        warnings = [r.getMessage() for r in caplog.records if r.name == "bci_stream.outlets"]
        assert len(warnings) == 1
        assert (f"'{uid}-labels'" in warnings[0] and other.get_info().hostname() in warnings[0]
                and f"'{uid}-other'" in warnings[0] and "--name" in warnings[0])
    finally:
        if mine is not None:
            mine.close()
        del other


@pytest.mark.parametrize("option,value,expected", [
    ("timeout", "abc", "seconds > 0"), ("timeout", "0", "seconds > 0"), ("timeout", "inf", "seconds > 0"),
    ("resolve_wait", "-1", "seconds >= 0"), ("resolve_wait", "soon", "seconds >= 0"),
    ("max_chunk", "2.5", "a whole number > 0"), ("max_chunk", "0", "a whole number > 0"),
    ("max_chunk", "many", "a whole number > 0"),
])
def test_a_bad_option_is_a_one_line_error_naming_the_source_and_option(option, value, expected):
    """Refused while the spec is read, before any stream is looked for."""
    with pytest.raises(SourceError) as e:
        open_source(f"lsl:name=S1?{option}={value}")
    assert str(e.value) == f"LSL source lsl:name=S1: {option}: expected {expected}, got {value!r}"


def test_resolve_wait_zero_is_allowed(uid):
    """0 takes the first stream found: refused only where no stream appears."""
    with pytest.raises(SourceError, match="no LSL stream"):
        open_source(f"lsl:name={uid}-absent?timeout=0.2&resolve_wait=0&max_chunk=16")
