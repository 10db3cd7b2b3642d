"""Keep the memory freed during a large forward pass in the process heap (glibc).

glibc's ``malloc`` serves every block above its mmap threshold (at most 32 MiB on 64-bit
systems) with a fresh anonymous ``mmap`` and unmaps it again on ``free``. A forward pass of
the network over a large mesh allocates and frees many temporaries of :math:`O(E\\,d)`
bytes, so each of them page-faults its memory in anew, and the kernel zeroes every page.
:func:`retained_heap` switches ``mmap`` off for the duration (``mallopt(M_MMAP_MAX, 0)``), so
that large blocks come from the heap and a freed block is reused by the next allocation, and
afterwards restores the default and returns the free heap memory to the system
(``malloc_trim``). The price is a higher peak resident size (freed blocks are kept, and the
heap can fragment) for the length of the pass.

Elsewhere than on glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import threading
from contextlib import contextmanager
from typing import Iterator

#: ``mallopt`` parameter of glibc's ``malloc.h``, and its default value.
M_MMAP_MAX, DEFAULT_MMAP_MAX = -4, 65536

_lock = threading.Lock()
_depth = 0
_libc: ctypes.CDLL | None | bool = False


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is False:
        _libc = None
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim"):
                    _libc = lib
            except OSError:
                pass
    return _libc


def available() -> bool:
    """Whether :func:`retained_heap` has an effect here (a glibc process)."""
    return _glibc() is not None


@contextmanager
def retained_heap(enabled: bool = True) -> Iterator[None]:
    """Inside the block, large allocations come from the heap and freed memory is reused
    (see the module docstring). Re-entrant and thread-safe: the default comes back when the
    outermost block ends."""
    global _depth
    libc = _glibc() if enabled else None
    if libc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            libc.mallopt(M_MMAP_MAX, 0)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.malloc_trim(0)
