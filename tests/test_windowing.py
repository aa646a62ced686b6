import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bci_stream.ringbuffer import RingBuffer
from bci_stream.windower import Windower


def _push_in_chunks(signal, times, size, length=50, hop=13):
    w = Windower(length, hop, signal.shape[1], spare=64)
    out, t, ends = [], [], []
    for i in range(0, len(signal), size):
        got = w.push(signal[i : i + size], times[i : i + size])
        out.append(got.data)
        t.append(got.end_times)
        ends.append(got.end_indices)
    return np.concatenate(out), np.concatenate(t), np.concatenate(ends), w


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_windows_identical_whatever_the_chunk_size(rng, size):
    x = rng.standard_normal((2345, 5)).astype(np.float32)
    ts = 100.0 + np.arange(len(x)) / 250.0
    data, t, ends, w = _push_in_chunks(x, ts, size)
    n_expected = (len(x) - 50) // 13 + 1
    assert data.shape == (n_expected, 5, 50)
    for k in range(n_expected):
        np.testing.assert_array_equal(data[k], x[k * 13 : k * 13 + 50].T)
    np.testing.assert_array_equal(ends, np.arange(n_expected) * 13 + 50)
    np.testing.assert_array_equal(t, ts[ends - 1])
    assert w.ring.overwritten == 0


def test_hop_longer_than_window_skips_samples(rng):
    x = rng.standard_normal((100, 2)).astype(np.float32)
    w = Windower(10, 25, 2, spare=8)
    got = w.push(x, np.arange(100.0))
    np.testing.assert_array_equal(got.end_indices, [10, 35, 60, 85])
    np.testing.assert_array_equal(got.data[2], x[50:60].T)


def test_ring_buffer_counts_what_it_overwrote_unread():
    rb = RingBuffer(8, 1)
    rb.write(np.arange(6, dtype=np.float32)[:, None], np.arange(6.0))
    rb.release(4)
    rb.write(np.arange(6, 10, dtype=np.float32)[:, None], np.arange(6.0, 10.0))  # pushes out 0,1 (released)
    assert rb.overwritten == 0
    rb.write(np.arange(10, 14, dtype=np.float32)[:, None], np.arange(10.0, 14.0))  # pushes out 2..5, 4 and 5 unread
    assert rb.overwritten == 2
    out = np.empty((1, 8), np.float32)
    np.testing.assert_array_equal(rb.read(6, 14, out)[0], np.arange(6, 14))
    with pytest.raises(IndexError, match="not held"):
        rb.read(5, 7, out)
    rb.write(np.arange(100, dtype=np.float32)[:, None], np.arange(100.0))  # larger than capacity
    assert rb.n_written == 114 and rb.timestamp(113) == 99.0


def test_restart_after_a_break_numbers_on_and_keeps_the_overwritten_count(rng):
    x = rng.standard_normal((60, 2)).astype(np.float32)
    w = Windower(10, 5, 2, spare=8)
    first = w.push(x[:23], np.arange(23.0))
    assert list(first.end_indices) == [10, 15, 20]
    w.ring.write(np.zeros((30, 2), np.float32), np.zeros(30))  # unread samples pushed out: a fault to be counted
    lost = w.ring.overwritten
    assert lost > 0
    w.restart()
    got = w.push(x[23:], np.arange(23.0, 60.0))
    # 53 samples were delivered before the break (23 pushed, 30 written); after it, windows start at its first sample.
    np.testing.assert_array_equal(got.end_indices, 53 + np.array([10, 15, 20, 25, 30, 35]))
    np.testing.assert_array_equal(got.data[0], x[23:33].T)
    assert w.ring.overwritten == lost


def test_ring_buffer_rejects_wrong_channel_count():
    rb = RingBuffer(8, 3)
    with pytest.raises(ValueError, match="3 channels"):
        rb.write(np.zeros((2, 4), np.float32), np.zeros(2))


def test_one_sample_windows_and_hops_are_allowed_and_less_is_refused_by_name():
    w = Windower(1, 1, 2)
    out = w.push(np.arange(6, dtype=np.float32).reshape(3, 2), np.arange(3.0))
    assert out.data.dtype == np.float32 and out.end_indices.dtype == np.int64
    np.testing.assert_array_equal(out.end_indices, [1, 2, 3])
    np.testing.assert_array_equal(out.data[:, :, 0], [[0, 1], [2, 3], [4, 5]])
    for length, hop in ((0, 1), (1, 0)):
        with pytest.raises(ValueError, match=rf"^window length and hop must be >= 1 sample, got {length}, {hop}$"):
            Windower(length, hop, 2)
    empty = Windower(4, 1, 2).push(np.zeros((2, 2), np.float32), np.arange(2.0))
    assert len(empty) == 0 and empty.data.dtype == np.float32


def test_a_one_sample_ring_buffer_holds_the_last_sample_with_its_time():
    ring = RingBuffer(1, 1)
    ring.write(np.array([[1.5], [2.5]], np.float32), np.array([10.25, 11.125]))
    out = np.empty((1, 1), np.float32)
    assert ring.read(1, 2, out)[0, 0] == 2.5 and ring.timestamp(1) == 11.125
    assert ring.overwritten == 1  # the first sample was never released
    for capacity, channels in ((0, 1), (1, 0)):
        with pytest.raises(ValueError, match=rf"^ring buffer needs capacity and channels >= 1, got {capacity}, {channels}$"):
            RingBuffer(capacity, channels)


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 12),
       ops=st.lists(st.tuples(st.sampled_from(["write", "release"]), st.integers(0, 40)), min_size=1, max_size=25))
def test_ring_buffer_keeps_the_last_samples_and_counts_each_unread_loss(capacity, ops):
    """Against a sample-by-sample reference: which samples are held, and how many left unread (never released)."""
    ring = RingBuffer(capacity, 2)
    held: list[int] = []  # absolute indices the reference buffer holds, oldest first
    released = lost = written = 0
    for op, k in ops:
        if op == "release":
            ring.release(k)
            released = max(released, min(k, written))
            continue
        ring.write(np.stack([np.arange(written, written + k)] * 2, axis=1).astype(np.float32),
                   np.arange(written, written + k) * 0.5)
        for index in range(written, written + k):
            held.append(index)
            if len(held) > capacity:
                gone = held.pop(0)
                lost += gone >= released
                released = max(released, gone + 1)  # a lost sample cannot be released any more
        written += k
        assert ring.overwritten == lost and ring.n_written == written and ring.oldest == (held[0] if held else 0)
        if held:
            out = np.empty((2, len(held)), np.float32)
            np.testing.assert_array_equal(ring.read(held[0], written, out)[0], held)
            assert ring.timestamp(held[-1]) == held[-1] * 0.5


def test_ring_buffer_refuses_what_it_does_not_hold_by_name():
    ring = RingBuffer(4, 1)
    ring.write(np.arange(6, dtype=np.float32)[:, None], np.arange(6.0))
    out = np.empty((1, 4), np.float32)
    assert ring.read(3, 3, out).shape == (1, 4)  # an empty range is fine
    for start, stop in ((1, 3), (4, 7), (5, 4)):
        with pytest.raises(IndexError, match=rf"^samples \[{start}, {stop}\) not held; buffer holds \[2, 6\)$"):
            ring.read(start, stop, out)
    for index in (1, 6):
        with pytest.raises(IndexError, match=rf"^sample {index} not held; buffer holds \[2, 6\)$"):
            ring.timestamp(index)


def test_a_windower_started_at_an_origin_numbers_windows_from_it():
    """After a break the pipeline starts a windower afresh; its windows still end at stream sample indices."""
    w = Windower(4, 2, 1, origin=100)
    x = np.arange(10, dtype=np.float32)[:, None]
    out = w.push(x, np.arange(10.0))
    np.testing.assert_array_equal(out.end_indices, [104, 106, 108, 110])
    np.testing.assert_array_equal(out.data[:, 0, 0], [0, 2, 4, 6])  # the samples are still the pushed ones


@pytest.mark.parametrize("length", [250, 2345])  # two pieces; about twenty
def test_a_chunk_larger_than_the_ring_gives_every_window_of_every_piece(rng, length):
    """A chunk is consumed in pieces that fit the ring; the windows of all pieces come back, in order."""
    x = rng.standard_normal((length, 5)).astype(np.float32)
    w = Windower(50, 13, 5, spare=100)  # a 150-sample ring
    got = w.push(x, np.arange(len(x), dtype=float))
    n = (len(x) - 50) // 13 + 1
    assert got.data.shape == (n, 5, 50)
    for k in range(n):
        np.testing.assert_array_equal(got.data[k], x[k * 13 : k * 13 + 50].T)
    np.testing.assert_array_equal(got.end_indices, np.arange(n) * 13 + 50)
