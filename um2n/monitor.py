r"""Monitor functions at the vertices: arrays, callables and safe expressions.

A monitor :math:`m(x) > 0` says where resolution is wanted: the mover equidistributes
:math:`m |K|` over the elements :math:`K`. um2n takes it as

* a per-vertex array of length N,
* a Python callable ``f(x, y) -> array`` (``x``, ``y`` the vertex coordinate arrays;
  ``f(x, y, z)`` on a tetrahedral mesh), or
* an expression string in ``x`` and ``y`` (and ``z`` in 3D) with numpy syntax, e.g.
  ``"1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2)/0.01)"``.

Expressions are parsed with :mod:`ast` and evaluated by walking the tree: only numbers,
the names ``x``, ``y``, ``z``, ``pi``, ``e``, the operators ``+ - * / ** %`` and the functions
in :data:`FUNCTIONS` are allowed. Nothing is passed to ``eval``; there are no builtins,
attributes, subscripts or keyword arguments.

The model sees the monitor normalised per mesh, :math:`\hat m = m / \max m`.

Every monitor is checked at the vertices (:func:`check_monitor`): it must be finite and
strictly positive everywhere. Where :math:`m = 0` an element costs nothing, so
equidistribution would let it grow without bound; the network, trained on monitors
:math:`\ge 1`, then makes the mesh worse instead. A monitor that fails the check raises
:class:`~um2n.errors.MonitorError` naming the monitor (its expression, a field's name, or
"monitor array"), how many vertices fail and how to fix it; it is never regularised silently.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Callable, Union

import numpy as np

from um2n.errors import MonitorError

#: Functions an expression may call.
FUNCTIONS: dict[str, Callable] = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "sinh": np.sinh, "cosh": np.cosh,
    "arctan": np.arctan, "arctan2": np.arctan2, "minimum": np.minimum, "maximum": np.maximum,
}
_CONSTANTS = {"pi": np.pi, "e": np.e}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}

MonitorLike = Union[np.ndarray, Callable, str]


class MonitorExpression:
    """A monitor given as an expression in ``x``, ``y`` (and ``z``), parsed once and evaluated safely.

    Examples
    --------
    >>> m = MonitorExpression("1 + 5*tanh(50*(x - 0.5))**2")
    >>> m(np.array([0.5]), np.array([0.0]))
    array([1.])
    """

    def __init__(self, text: str):
        self.text = text
        self.uses_z = False
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise MonitorError(f"monitor expression {text!r}: syntax error at column {exc.offset}") from None
        self._check(tree.body)
        self._tree = tree.body

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise MonitorError(f"monitor expression {self.text!r}: only numbers are allowed as constants")
        elif isinstance(node, ast.Name):
            if node.id not in ("x", "y", "z") and node.id not in _CONSTANTS:
                raise MonitorError(f"monitor expression {self.text!r}: unknown name {node.id!r} "
                                   f"(use x, y, z (3D), pi, e and {', '.join(sorted(FUNCTIONS))})")
            if node.id == "z":
                self.uses_z = True
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise MonitorError(f"monitor expression {self.text!r}: operator {type(node.op).__name__} is not allowed")
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise MonitorError(f"monitor expression {self.text!r}: operator {type(node.op).__name__} is not allowed")
            self._check(node.operand)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                what = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise MonitorError(f"monitor expression {self.text!r}: function {what!r} is not allowed "
                                   f"(allowed: {', '.join(sorted(FUNCTIONS))})")
            if node.keywords:
                raise MonitorError(f"monitor expression {self.text!r}: keyword arguments are not allowed")
            for a in node.args:
                self._check(a)
        else:
            raise MonitorError(f"monitor expression {self.text!r}: {type(node).__name__} is not allowed")

    def _eval(self, node, env):
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return env[node.id] if node.id in env else _CONSTANTS[node.id]
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, env))
        return FUNCTIONS[node.func.id](*(self._eval(a, env) for a in node.args))

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        if z is None and self.uses_z:
            raise MonitorError(f"monitor expression {self.text!r}: uses z, but the mesh is 2D")
        env = {"x": np.asarray(x, float), "y": np.asarray(y, float)}
        if z is not None:
            env["z"] = np.asarray(z, float)
        with np.errstate(all="ignore"):
            val = self._eval(self._tree, env)
        return np.broadcast_to(np.asarray(val, dtype=float), np.shape(x)).copy()

    def __repr__(self) -> str:
        return f"MonitorExpression({self.text!r})"


def evaluate_monitor(monitor: MonitorLike, points: np.ndarray, name: str | None = None,
                     mesh: str | None = None) -> np.ndarray:
    """Monitor values at the vertices ``points``, checked (:func:`check_monitor`).

    Parameters
    ----------
    monitor : per-vertex array, callable ``f(x, y)`` (``f(x, y, z)`` for 3D points) or
        expression string
    points : (N, 2) or (N, 3) vertex coordinates
    name : how errors name the monitor (default: ``monitor expression '...'``,
        ``monitor function NAME`` or ``monitor array``)
    mesh : the mesh's name, added to the monitor's in errors (``... on MESH``)

    Raises
    ------
    MonitorError
        Wrong length, NaN/infinite values, or a value <= 0 at some vertex.
    """
    pts = np.asarray(points, dtype=float)
    expression = None
    if isinstance(monitor, str):
        monitor = MonitorExpression(monitor)
    if isinstance(monitor, MonitorExpression):
        expression = monitor.text
        label = f"monitor expression {monitor.text!r}"
    elif callable(monitor):
        label = f"monitor function {getattr(monitor, '__qualname__', type(monitor).__name__)}"
    else:
        label = "monitor array"
    label = name or label
    if mesh:
        label = f"{label} on {mesh}"
    if callable(monitor):
        try:
            values = monitor(*(pts[:, k] for k in range(pts.shape[1])))
        except MonitorError:
            raise
        except Exception as exc:
            raise MonitorError(f"{label}: evaluation failed ({exc})") from None
        values = np.asarray(values, dtype=float)
        if values.ndim == 0:
            values = np.full(len(pts), float(values))
    else:
        values = np.asarray(monitor, dtype=float).ravel()
    return check_monitor(values, len(pts), label, expression=expression)


def check_monitor(values: np.ndarray, n: int, name: str = "monitor array",
                  expression: str | None = None) -> np.ndarray:
    """Check that ``values`` is a usable monitor on ``n`` vertices and return it as float64.

    A usable monitor has one value per vertex, every value finite and > 0. ``name`` names the
    monitor in the error; ``expression`` (the monitor's expression, if it has one) lets the
    error suggest a fixed expression.

    Raises
    ------
    MonitorError
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.shape[0] != n:
        raise MonitorError(f"{name}: has {v.shape[0]} values but the mesh has {n} vertices")
    bad = ~np.isfinite(v)
    if bad.any():
        raise MonitorError(f"{name}: {int(bad.sum())} of {n} vertices have a NaN or infinite value; "
                           "a monitor must be finite and positive everywhere")
    low = v <= 0
    if low.any():
        lo = float(v.min())
        if expression is not None:
            shift = 1 if lo >= 0 else math.ceil(-lo) + 1
            fix = f"e.g. add {shift}: '{shift} + {expression}'"
        else:
            fix = "e.g. add a positive constant"
        raise MonitorError(f"{name}: {int(low.sum())} of {n} vertices have a value <= 0 (min {lo:g}); "
                           f"a monitor must be positive everywhere ({fix})")
    return v.copy()


def normalise_monitor(values: np.ndarray) -> np.ndarray:
    r"""Per-mesh normalisation :math:`\hat m = m / \max m \in (0, 1]`."""
    v = np.asarray(values, dtype=float)
    return v / v.max()


def monitor_range(values: np.ndarray) -> float:
    r"""Dynamic range :math:`\gamma = 1 - \min m / \max m \in [0, 1)`; zero for a uniform monitor."""
    v = np.asarray(values, dtype=float)
    return float(1.0 - v.min() / v.max())
