"""``um2n.heap.retained_heap``: large blocks come from the heap inside it (glibc), the default
comes back after it, and the mover's result does not depend on it."""

import ctypes

import numpy as np
import pytest

from um2n import heap, mover as mover_module
from um2n.mover import UM2NMover

pytestmark = pytest.mark.skipif(not heap.available(), reason="glibc only")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(k, ctypes.c_size_t) for k in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mmapped_bytes() -> int:
    """Bytes that malloc holds in mmap-ed blocks now (glibc's ``mallinfo2().hblkhd``)."""
    f = heap._glibc().mallinfo2
    f.restype = _MallInfo2
    return int(f().hblkhd)


def _free_heap_bytes() -> int:
    """Bytes free in malloc's heap now (``mallinfo2().fordblks``)."""
    f = heap._glibc().mallinfo2
    f.restype = _MallInfo2
    return int(f().fordblks)


def test_large_blocks_come_from_the_heap_inside_and_from_mmap_outside():
    # above glibc's largest mmap threshold (32 MiB), and larger than all the free memory the
    # earlier tests of this process left in the heap: a free chunk that fits would serve the
    # request without mmap whatever the threshold
    size = 64 * 2 ** 20 + _free_heap_bytes()
    before = _mmapped_bytes()
    a = np.empty(size // 8)
    assert _mmapped_bytes() - before >= size  # default: a fresh mmap
    del a
    with heap.retained_heap():
        with heap.retained_heap():            # re-entrant: the inner exit keeps the setting
            pass
        before = _mmapped_bytes()
        b = np.empty(size // 8)
        assert _mmapped_bytes() - before < size
        del b
    assert heap._depth == 0
    size = 64 * 2 ** 20 + _free_heap_bytes()
    before = _mmapped_bytes()
    c = np.empty(size // 8)
    assert _mmapped_bytes() - before >= size  # the default is back
    del c


def test_move_is_the_same_with_and_without_the_retained_heap(graph_of, monkeypatch):
    g = graph_of("polygon_with_hole")
    monitor = "1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2)/0.01)"
    m = UM2NMover()
    plain = m.move(g, monitor).points
    monkeypatch.setattr(mover_module, "RETAINED_HEAP_MIN_VERTICES", 0)
    retained = m.move(g, monitor).points
    assert np.array_equal(plain, retained)
