import numpy as np
import pytest

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


def test_ring_buffer_rejects_wrong_channel_count():
    rb = RingBuffer(8, 3)
    with pytest.raises(ValueError, match="3 channels"):
        rb.write(np.zeros((2, 4), np.float32), np.zeros(2))
