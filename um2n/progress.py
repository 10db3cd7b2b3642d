"""Progress reporting that suits where the output goes.

On a terminal, :func:`progress` draws a ``tqdm`` bar. Redirected to a file or a pipe, a
bar would write one carriage-return frame per update; there it writes instead a plain line
at every tenth of the work (and at the end), with the elapsed time and the rate, so that a
log of a long run stays a few lines long.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T], desc: str, total: int | None = None, enabled: bool = True,
             unit: str = "it", lines: int = 10, stream=None) -> Iterator[T]:
    """Iterate over ``iterable`` while reporting progress on ``stream`` (default: stderr).

    Parameters
    ----------
    iterable : what to iterate over
    desc : a label, printed at the start of every line
    total : the number of items (default: ``len(iterable)`` when it has one)
    enabled : ``False`` reports nothing
    unit : the name of one item, for the rate
    lines : on a non-terminal stream, the number of progress lines over the whole work
    stream : where to write (default: ``sys.stderr``)
    """
    stream = sys.stderr if stream is None else stream
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not enabled:
        yield from iterable
        return
    if getattr(stream, "isatty", lambda: False)():
        from tqdm import tqdm

        yield from tqdm(iterable, desc=desc, total=total, unit=unit, file=stream)
        return
    start = time.perf_counter()
    every = max(1, -(-total // max(lines, 1))) if total else None
    done = 0
    for item in iterable:
        yield item
        done += 1
        if every is not None and (done % every == 0 or done == total):
            elapsed = time.perf_counter() - start
            print(f"{desc}: {done}/{total} {unit} ({100 * done / total:.0f} %), {elapsed:.1f} s, "
                  f"{done / elapsed if elapsed > 0 else float('inf'):.3g} {unit}/s", file=stream, flush=True)
    if total is None:
        print(f"{desc}: {done} {unit} in {time.perf_counter() - start:.1f} s", file=stream, flush=True)
