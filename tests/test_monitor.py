"""Monitors: safe expressions, callables, arrays, and their checks."""

import numpy as np
import pytest

from um2n.errors import MonitorError
from um2n.monitor import MonitorExpression, evaluate_monitor, monitor_range, normalise_monitor

PTS = np.random.default_rng(0).random((50, 2))


@pytest.mark.parametrize("expr,ref", [
    ("1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2)/0.01)",
     lambda x, y: 1 + 10 * np.exp(-((x - 0.3) ** 2 + (y - 0.2) ** 2) / 0.01)),
    ("1 + 5*tanh(20*(sqrt(x**2 + y**2) - 0.5))**2", lambda x, y: 1 + 5 * np.tanh(20 * (np.hypot(x, y) - 0.5)) ** 2),
    ("2 + sin(pi*x)*cos(2*pi*y) + abs(x - y)", lambda x, y: 2 + np.sin(np.pi * x) * np.cos(2 * np.pi * y) + abs(x - y)),
    ("3", lambda x, y: 3 + 0 * x),
    ("-x + 2 % 3 + e", lambda x, y: -x + 2 + np.e),
])
def test_expression_values(expr, ref):
    got = evaluate_monitor(expr, PTS)
    assert np.allclose(got, ref(PTS[:, 0], PTS[:, 1]), rtol=1e-14)


@pytest.mark.parametrize("expr,msg", [
    ("__import__('os').system('true')", "not allowed"),
    ("x.__class__", "Attribute is not allowed"),
    ("(lambda: 1)()", "not allowed"),
    ("[x][0]", "not allowed"),
    ("open('/etc/passwd')", "function 'open' is not allowed"),
    ("w + 1", "unknown name 'w'"),
    ("x if y else 1", "IfExp is not allowed"),
    ("exp(x, out=y)", "keyword"),
    ("1 +", "syntax error"),
    ("'abc'", "only numbers"),
    ("x < y", "Compare is not allowed"),
])
def test_expression_refuses_unsafe_or_invalid(expr, msg):
    with pytest.raises(MonitorError, match=msg):
        MonitorExpression(expr)


def test_callable_and_array():
    v = evaluate_monitor(lambda x, y: 1 + x, PTS)
    assert np.allclose(v, 1 + PTS[:, 0])
    assert np.allclose(evaluate_monitor(np.full(50, 2.0), PTS), 2.0)
    assert np.allclose(evaluate_monitor(lambda x, y: 4.0, PTS), 4.0)


@pytest.mark.parametrize("values,msg", [
    (np.ones(49), "monitor array: has 49 values but the mesh has 50"),
    (np.r_[np.ones(49), np.nan], "monitor array: 1 of 50 vertices have a NaN or infinite value"),
    (np.r_[np.ones(49), np.inf], "monitor array: 1 of 50 vertices have a NaN or infinite value"),
    (np.r_[np.ones(49), -1.0], r"monitor array: 1 of 50 vertices have a value <= 0 \(min -1\)"),
    (np.r_[np.ones(47), 0.0, 0.0, 0.0], r"monitor array: 3 of 50 vertices have a value <= 0 \(min 0\)"),
    (np.zeros(50), r"monitor array: 50 of 50 vertices have a value <= 0"),
])
def test_bad_arrays(values, msg):
    with pytest.raises(MonitorError, match=msg):
        evaluate_monitor(values, PTS)


def test_a_monitor_must_be_positive_at_every_vertex():
    """A zero anywhere is refused (equidistribution would let those elements grow without
    bound), naming the monitor and how to fix it; a tiny positive value is accepted."""
    x = np.r_[0.0, PTS[:, 0]]
    pts = np.column_stack([x, np.r_[0.0, PTS[:, 1]]])
    with pytest.raises(MonitorError) as info:
        evaluate_monitor("x", pts, mesh="lshape.msh")
    assert str(info.value) == ("monitor expression 'x' on lshape.msh: 1 of 51 vertices have a value <= 0 (min 0); "
                               "a monitor must be positive everywhere (e.g. add 1: '1 + x')")
    with pytest.raises(MonitorError, match=r"monitor expression 'x - 0.5': \d+ of 51 vertices .* "
                                           r"\(e.g. add 2: '2 \+ x - 0.5'\)"):
        evaluate_monitor("x - 0.5", pts)
    with pytest.raises(MonitorError, match=r"^monitor function test_a_monitor_.*<lambda>: 1 of 51 vertices .*"
                                           r"\(e.g. add a positive constant\)$"):
        evaluate_monitor(lambda x, y: x, pts)
    with pytest.raises(MonitorError, match=r"^my field: 1 of 51"):
        evaluate_monitor(x, pts, name="my field")
    assert evaluate_monitor(x + 1e-12, pts).min() == pytest.approx(1e-12)


def test_callable_of_wrong_length():
    with pytest.raises(MonitorError, match="has 3 values but the mesh has 50"):
        evaluate_monitor(lambda x, y: np.ones(3), PTS)


def test_bad_values_from_expression():
    with pytest.raises(MonitorError, match="monitor expression 'x - 0.5': .* have a value <= 0"):
        evaluate_monitor("x - 0.5", PTS)
    with pytest.raises(MonitorError, match="monitor expression 'log\\(x - 2\\)': 50 of 50 vertices have a NaN"):
        evaluate_monitor("log(x - 2)", PTS)
    with pytest.raises(MonitorError, match="monitor expression 'cos\\(pi\\*x\\)': .* <= 0"):
        evaluate_monitor("cos(pi*x)", np.array([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]]))


def test_the_mover_checks_every_monitor():
    """The mover checks every monitor it is given: the Firedrake adapter (a Function gathered
    to an array) and the CLI (an expression, or a field through check_monitor) go through it."""
    from um2n.mesh import MeshGraph
    from um2n.mover import UM2NMover

    pts = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]], dtype=float)
    g = MeshGraph.from_arrays(pts, np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]]), name="sq")
    mover = UM2NMover()
    with pytest.raises(MonitorError, match=r"^monitor array on sq: 1 of 5 vertices have a value <= 0"):
        mover.move(g, np.array([1.0, 1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(MonitorError, match=r"^monitor expression 'y' on sq: 2 of 5"):
        mover.move_batch([g, g], ["1 + x", "y"])


def test_normalisation_and_range():
    v = np.array([1.0, 2.0, 4.0])
    assert np.allclose(normalise_monitor(v), [0.25, 0.5, 1.0])
    assert monitor_range(v) == pytest.approx(0.75)
    assert monitor_range(np.full(3, 7.0)) == 0.0
