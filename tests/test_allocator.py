import ctypes
import sys

import numpy as np
import pytest

from bci_stream.allocator import keep_freed_blocks


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mapped_bytes() -> int:
    """glibc's own count of the bytes it holds in separate mmap blocks (mallinfo2)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2().hblkhd


@pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "mallinfo2"),
                    reason="glibc >= 2.33 only (the allocator it tunes)")
def test_large_blocks_come_from_the_heap_once_freed_blocks_are_kept():
    big = 100 * 2**20
    before = _mapped_bytes()
    a = np.ones(big, np.uint8)  # a fresh block: glibc maps it on its own by default
    assert _mapped_bytes() - before >= big
    del a
    assert keep_freed_blocks()
    before = _mapped_bytes()
    b = np.ones(big, np.uint8)
    assert _mapped_bytes() - before < big, "a 100 MB block was still mapped on its own"
    del b
