"""Integer LSL streams carry counts of the amplifier's own size: without a declared unit they are refused, with a
one-line error saying to give ``?unit=...&scale=...``; given them, samples are counts times the scale. Float
streams keep reading as before. Real int16/int32 outlets on loopback."""

import re
import time

import numpy as np
import pylsl
import pytest
from conftest import cli_run

from bci_stream.lslmeta import to_lsl
from bci_stream.sources import SourceError, open_source
from bci_stream.stream import StreamInfo

LABELS = ["Fp1", "Fp2", "Cz"]
#: liblsl's own log lines (``2026-11-29 11:53:48.753 (   1.532s) [  BC426B80]  api_config.cpp:126  INFO| ...``).
LIBLSL_LOG = re.compile(r"\d{4}-\d\d-\d\d [\d:.]+ \(\s*[\d.]+s\) \[.*\]\s+\S+:\d+\s+\w+\| ")


def _outlet(uid, fmt, unit=None):
    """An outlet of ``fmt`` samples named ``uid``; its channels declare ``unit``, or no unit at all."""
    if unit is not None:
        return pylsl.StreamOutlet(to_lsl(StreamInfo(uid, LABELS, 250.0, unit, source_id=f"{uid}-src"), fmt))
    info = pylsl.StreamInfo(uid, "EEG", len(LABELS), 250.0, fmt, f"{uid}-src")
    chans = info.desc().append_child("channels")
    for label in LABELS:
        chans.append_child("channel").append_child_value("label", label)
    return pylsl.StreamOutlet(info)


def _pull(src, out, counts):
    """``counts`` pushed through ``out``, as the source delivers them."""
    time.sleep(0.5)
    out.push_chunk(counts, pylsl.local_clock())
    got, deadline = [], time.monotonic() + 10
    for chunk in src.chunks():
        got.append(chunk.data.copy())
        assert chunk.data.dtype == np.float32
        if sum(len(g) for g in got) >= len(counts) or time.monotonic() > deadline:
            break
    return np.concatenate(got)


def _refusal(uid, fmt):
    return (f"LSL stream {uid!r} sends {fmt} samples and declares no unit: say what a count is with "
            f"lsl:name={uid}?unit=UNIT&scale=S (one count = S UNIT)")


@pytest.mark.parametrize("fmt", ["int16", "int32"])
@pytest.mark.parametrize("query", ["", "?unit=microvolts", "?scale=0.5"])
def test_integer_samples_without_a_unit_are_refused_unless_unit_and_scale_are_given(uid, fmt, query):
    out = _outlet(uid, fmt)
    try:
        with pytest.raises(SourceError) as e:
            open_source(f"lsl:name={uid}{query}")
        assert str(e.value) == _refusal(uid, fmt)
    finally:
        del out


def test_run_on_an_int16_stream_without_a_unit_ends_with_one_line(uid):
    """Before: the counts were taken as microvolts (44.7x too large for that amplifier) and decoded."""
    out = _outlet(uid, "int16")
    try:
        r = cli_run("run", "--source", f"lsl:name={uid}", "--name", f"{uid}-out", "--no-state", "-q", timeout=60)
    finally:
        del out
    ours = [line for line in r.stderr.splitlines() if not LIBLSL_LOG.match(line)]
    assert r.returncode == 2 and ours == [f"bci-stream run: error: {_refusal(uid, 'int16')}"], r.stderr


@pytest.mark.parametrize("fmt", ["int16", "int32"])
def test_given_unit_and_scale_samples_are_counts_times_the_scale(uid, rng, fmt):
    out = _outlet(uid, fmt)
    counts = rng.integers(-30000, 30000, (200, 3)).astype(fmt)
    try:
        with open_source(f"lsl:name={uid}?unit=millivolts&scale=0.0447") as src:
            assert src.info.unit == "millivolts" and src.info.channel_names == tuple(LABELS)
            got = _pull(src, out, counts)
    finally:
        del out
    np.testing.assert_allclose(got, counts.astype(np.float64) * 0.0447, rtol=1e-6)


def test_an_int16_stream_that_declares_its_unit_reads_counts_in_it(uid, rng):
    out = _outlet(uid, "int16", unit="microvolts")
    counts = rng.integers(-30000, 30000, (200, 3)).astype(np.int16)
    try:
        with open_source(f"lsl:name={uid}") as src:
            assert src.info.unit == "microvolts"
            got = _pull(src, out, counts)
    finally:
        del out
    np.testing.assert_array_equal(got, counts)


@pytest.mark.parametrize("query,factor", [("", 1.0), ("?scale=2.5", 2.5)])
def test_a_float_stream_without_a_unit_still_reads_as_microvolts_and_scales_if_asked(uid, rng, query, factor):
    out = _outlet(uid, "float32")
    data = rng.standard_normal((200, 3)).astype(np.float32)
    try:
        with open_source(f"lsl:name={uid}{query}") as src:
            assert src.info.unit == "microvolts"
            got = _pull(src, out, data)
    finally:
        del out
    np.testing.assert_allclose(got, data.astype(np.float64) * factor, rtol=1e-6)


@pytest.mark.parametrize("value", ["0", "-2", "x", "nan", "inf", ""])
def test_a_bad_scale_is_a_one_line_error_naming_the_source(value):
    with pytest.raises(SourceError) as e:
        open_source(f"lsl:name=S1?scale={value}")
    assert str(e.value) == f"LSL source lsl:name=S1: scale: expected the unit per count, a number > 0, got {value!r}"
