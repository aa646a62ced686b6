"""Keep freed memory in the process for the next tensor of the same size.

glibc serves every block above 32 MiB by mmap and unmaps it when freed, so the next
tensor of that size faults its pages in afresh. Training allocates dozens of such
tensors per step (a float64 copy of 97,200 windows x 64 units is 50 MB), and those page
faults took most of an epoch: elementwise ops ran 5-7 times slower than on reused memory.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_blocks() -> bool:
    """Serve large blocks from the heap and keep it grown; True where the C library took the settings (glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # another C library (musl): its own allocator, nothing to tune here
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 40))
