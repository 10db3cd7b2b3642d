"""The equal-cost verdict (um2n.equal_cost): interpolation on the static curve and dominance
outside its range."""

import math

import pytest

from um2n.equal_cost import compare, static_error_at

#: a static curve e = 3 t^-0.5 through three runs, given out of order
STATIC = [(100.0, 0.3), (4.0, 1.5), (25.0, 0.6)]


@pytest.mark.parametrize("wall", [4.0, 10.0, 25.0, 60.0, 100.0])
def test_static_curve_is_exact_on_a_power_law(wall):
    assert static_error_at(STATIC, wall) == pytest.approx(3.0 / math.sqrt(wall), rel=1e-12)


@pytest.mark.parametrize("wall", [3.9, 100.1])
def test_static_curve_is_not_extrapolated(wall):
    assert static_error_at(STATIC, wall) is None


@pytest.mark.parametrize("moved, verdict, basis, dominated", [
    ((10.0, 0.9), "win", "interpolated", None),           # curve at 10 s: 0.9487
    ((10.0, 0.95), "loss", "interpolated", None),
    ((2.0, 1.2), "win", "dominance", (4.0, 1.5)),         # faster and more accurate than the cheapest
    ((2.0, 1.6), "outside the static range", "none", None),
    ((200.0, 0.4), "loss", "dominance", (100.0, 0.3)),    # slower and less accurate than the dearest
    ((200.0, 0.2), "outside the static range", "none", None),
])
def test_verdicts(moved, verdict, basis, dominated):
    (c,) = compare(STATIC, {"moved": moved})
    assert (c.verdict, c.basis, c.dominated_static) == (verdict, basis, dominated)
    ref = static_error_at(STATIC, moved[0])
    assert c.static_error_at_same_time == ref and (ref is None) == (basis != "interpolated")
    assert c.as_dict()["error"] == moved[1] and c.wall_seconds == moved[0]
