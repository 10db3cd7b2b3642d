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
    ("z + 1", "unknown name 'z'"),
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
    (np.ones(49), "has 49 values but the mesh has 50"),
    (np.r_[np.ones(49), np.nan], "NaN"),
    (np.r_[np.ones(49), -1.0], "negative"),
    (np.zeros(50), "zero everywhere"),
])
def test_bad_arrays(values, msg):
    with pytest.raises(MonitorError, match=msg):
        evaluate_monitor(values, PTS)


def test_callable_of_wrong_length():
    with pytest.raises(MonitorError, match="has 3 values but the mesh has 50"):
        evaluate_monitor(lambda x, y: np.ones(3), PTS)


def test_bad_values_from_expression():
    with pytest.raises(MonitorError, match="negative"):
        evaluate_monitor("x - 0.5", PTS)
    with pytest.raises(MonitorError, match="NaN"):
        evaluate_monitor("log(x - 2)", PTS)


def test_normalisation_and_range():
    v = np.array([1.0, 2.0, 4.0])
    assert np.allclose(normalise_monitor(v), [0.25, 0.5, 1.0])
    assert monitor_range(v) == pytest.approx(0.75)
    assert monitor_range(np.full(3, 7.0)) == 0.0
