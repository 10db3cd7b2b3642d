r"""Equal-cost comparison: is a moved run more accurate than refining the static mesh?

The static runs at several resolutions trace a curve of error :math:`e` against wall-clock
time :math:`t`. Between two neighbouring static points the curve is taken as a power law,
linear in :math:`(\log t, \log e)`:

.. math:: \log e(t) = \log e_i + \frac{\log t - \log t_i}{\log t_{i+1} - \log t_i}
          (\log e_{i+1} - \log e_i), \qquad t_i \le t \le t_{i+1}.

A moved run at time :math:`t_m` with error :math:`e_m` *wins* when :math:`e_m < e(t_m)`: at
the same cost it is more accurate than the static mesh. Outside the static runs' range of
times the curve is not extrapolated. There the verdict rests on dominance alone, with the
static error taken as non-increasing in time (a finer static mesh is slower and no less
accurate): a moved run faster than the cheapest static run :math:`(t_0, e_0)` and more accurate
than it wins, since :math:`e(t_m) \ge e_0 > e_m`; one slower than the dearest static run
:math:`(t_n, e_n)` and less accurate than it loses. Any other run outside the range gets no
verdict, and the comparison says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class EqualCost:
    """One moved run against the static curve."""

    label: str
    wall_seconds: float
    error: float
    static_error_at_same_time: float | None
    verdict: str               # "win", "loss", or "outside the static range"
    #: "interpolated" (against the static curve at the same time), "dominance" (outside the
    #: range, against the static run at its nearer end: ``dominated_static``), or "none"
    basis: str = "interpolated"
    #: for ``basis == "dominance"``: the static run compared with, ``(wall seconds, error)``
    dominated_static: tuple[float, float] | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def static_error_at(static: list[tuple[float, float]], wall: float) -> float | None:
    """The static curve's error at ``wall`` seconds (module docstring), or ``None`` outside
    the static runs' range. ``static``: ``(wall seconds, error)`` pairs, any order."""
    pts = sorted((t, e) for t, e in static if t > 0 and e > 0)
    if len(pts) < 2 or not pts[0][0] <= wall <= pts[-1][0]:
        return None
    for (t0, e0), (t1, e1) in zip(pts, pts[1:]):
        if t0 <= wall <= t1:
            if t1 == t0:
                return min(e0, e1)
            f = (math.log(wall) - math.log(t0)) / (math.log(t1) - math.log(t0))
            return math.exp(math.log(e0) + f * (math.log(e1) - math.log(e0)))
    return None


def compare(static: list[tuple[float, float]], moved: dict[str, tuple[float, float]]) -> list[EqualCost]:
    """Each moved run (label -> ``(wall seconds, error)``) against the static curve."""
    pts = sorted((t, e) for t, e in static if t > 0 and e > 0)
    out = []
    for label, (wall, error) in moved.items():
        ref = static_error_at(static, wall)
        if ref is not None:
            out.append(EqualCost(label, wall, error, ref, "win" if error < ref else "loss"))
        elif pts and wall < pts[0][0] and error < pts[0][1]:
            out.append(EqualCost(label, wall, error, None, "win", "dominance", pts[0]))
        elif pts and wall > pts[-1][0] and error > pts[-1][1]:
            out.append(EqualCost(label, wall, error, None, "loss", "dominance", pts[-1]))
        else:
            out.append(EqualCost(label, wall, error, None, "outside the static range", "none"))
    return out
