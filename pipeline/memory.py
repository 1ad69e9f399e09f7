"""Memory a step frees goes back where the next step can take it: a big release's peak is then its
largest step, not the sum of every step's leftovers.

Two allocators kept freed memory to themselves. pyarrow's own pool (jemalloc or mimalloc) held the
frame read from Parquet after pandas let it go, where numpy could not reuse it; with the system pool
Arrow and numpy share glibc's malloc. glibc maps a large block on its own and unmaps it when it is
freed, but after the first such free it raises its threshold to that block's size (up to 32 MiB), and
later blocks come from the heap, which keeps what is freed in its middle. A fixed threshold keeps
every block from MMAP_THRESHOLD up mapped on its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MMAP_THRESHOLD = 1 << 20  # bytes: blocks this large are mapped alone and unmapped when freed
M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"


def return_freed_memory() -> None:
    """Set both allocators so (call before the data is read; other C libraries: nothing changes)."""
    if ARROW_POOL not in os.environ:  # a pool chosen by whoever runs us stays
        os.environ[ARROW_POOL] = "system"  # read when Arrow makes its default pool, in this process and children
        if "pyarrow" in sys.modules:  # made already (pandas imports pyarrow)
            import pyarrow

            pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): its own policy stays
        mallopt = None
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
