r"""Monitor functions built from Firedrake solutions.

All builders return a P1 :class:`firedrake.Function` :math:`m \ge 1` on the mesh of ``u``:

* :func:`recover_hessian`: the L2-projected Hessian :math:`H \in P1^{2\times2}` of a scalar
  :math:`u`, from :math:`(H, \tau) = -(\nabla u, \nabla\cdot\tau) + \langle \nabla u, \tau n\rangle_{\partial\Omega}`;
* :func:`hessian_monitor`: :math:`m = 1 + \alpha\, |H|_F^2 / \max |H|_F^2` (UM2N's monitor with
  :math:`\alpha = 5`);
* :func:`gradient_monitor`: :math:`m = 1 + \beta\, |g|^2 / \max |g|^2`, with :math:`g` the
  L2-projected gradient;
* :func:`combined_monitor`: :math:`m = 1 + \alpha\, \hat h + \beta\, \hat g` with the two
  normalised indicators above;
* :func:`smooth_monitor`: the Helmholtz smoothing :math:`(m_s, v) + \ell^2 (\nabla m_s, \nabla v) = (m, v)`,
  which widens sharp features over a length :math:`\ell` (an easier target for any mover).

:class:`MonitorConfig` is the ``[monitor]`` table of every simulation (kind, amplitude
:math:`\alpha`, power :math:`p`), and :class:`SolutionMonitor` the monitor of a simulation's
solution: a scalar expression brought into P1 (by an :math:`L^2` projection whose solver is
built once, or by interpolation), then the monitor of the configured kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import firedrake as fd
import numpy as np
from firedrake.assemble import get_assembler
from firedrake.interpolation import get_interpolator
from mpi4py import MPI

from um2n.errors import UM2NError

#: P1 mass-matrix solves of the projections.
PROJECTION_SOLVER_PARAMETERS = {"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-12}
#: The smoothing operator (mass + scaled Laplacian): symmetric positive definite.
SMOOTHING_SOLVER_PARAMETERS = {"ksp_type": "cg", "pc_type": "gamg", "ksp_rtol": 1e-12}


def _p1(u) -> fd.FunctionSpace:
    return fd.FunctionSpace(u.function_space().mesh(), "CG", 1)


def _recovery(u: fd.Function, order: int) -> tuple[fd.Function, object, object]:
    """The L2 recovery of the ``order``-th derivative of the scalar ``u`` (1: gradient, 2:
    Hessian): ``(out, a, L)``, ``out`` the P1 vector or tensor function that solves ``a == L``."""
    mesh = u.function_space().mesh()
    if order == 2:
        T = fd.TensorFunctionSpace(mesh, "CG", 1)
        D, tau = fd.TrialFunction(T), fd.TestFunction(T)
        n = fd.FacetNormal(mesh)
        L = -fd.inner(fd.div(tau), fd.grad(u)) * fd.dx + fd.inner(fd.dot(tau, n), fd.grad(u)) * fd.ds
        return fd.Function(T, name="hessian"), fd.inner(D, tau) * fd.dx, L
    V = fd.VectorFunctionSpace(mesh, "CG", 1)
    D, v = fd.TrialFunction(V), fd.TestFunction(V)
    return fd.Function(V, name="gradient"), fd.inner(D, v) * fd.dx, fd.inner(fd.grad(u), v) * fd.dx


def recover_hessian(u: fd.Function) -> fd.Function:
    """L2-projected Hessian of the scalar ``u`` (P1 tensor field)."""
    out, a, L = _recovery(u, 2)
    fd.solve(a == L, out, solver_parameters=PROJECTION_SOLVER_PARAMETERS)
    return out


def recover_gradient(u: fd.Function) -> fd.Function:
    """L2-projected gradient of the scalar ``u`` (P1 vector field)."""
    out, a, L = _recovery(u, 1)
    fd.solve(a == L, out, solver_parameters=PROJECTION_SOLVER_PARAMETERS)
    return out


#: a recovered derivative below this fraction of the field's own scale (max |u| over the
#: domain's size to the derivative's order) is round-off: the indicator is then zero
ROUNDOFF = 1e-9


def _roundoff_floor(u: fd.Function, order: int) -> float:
    """The squared size of an ``order``-th derivative of ``u`` that is round-off (:data:`ROUNDOFF`)."""
    mesh = u.function_space().mesh()
    X = mesh.coordinates.dat.data_ro
    comm = u.comm
    lo, hi = np.empty(X.shape[1]), np.empty(X.shape[1])
    comm.Allreduce(X.min(axis=0) if X.size else np.full(X.shape[1], np.inf), lo, op=MPI.MIN)
    comm.Allreduce(X.max(axis=0) if X.size else np.full(X.shape[1], -np.inf), hi, op=MPI.MAX)
    size = float(np.max(hi - lo)) or 1.0
    scale = comm.allreduce(float(np.abs(u.dat.data_ro).max()) if u.dat.data_ro.size else 0.0, op=MPI.MAX)
    return (ROUNDOFF * scale / size ** order) ** 2


def _normalised_indicator(expr, P1, floor: float = 0.0) -> fd.Function:
    """``expr / max(expr)`` interpolated into P1; zero where ``max(expr) <= floor`` (an
    indicator of a field with no such derivative, whose recovery left only round-off)."""
    f = fd.Function(P1).interpolate(expr)
    top = f.dat.data_ro.max() if f.dat.data_ro.size else 0.0
    top = f.comm.allreduce(top, op=MPI.MAX)
    if top > floor:
        f.dat.data[:] /= top
    else:
        f.dat.data[:] = 0.0
    return f


def hessian_monitor(u: fd.Function, alpha: float = 5.0, power: float = 2.0) -> fd.Function:
    r""":math:`1 + \alpha\,(|H(u)|_F / \max |H(u)|_F)^p` in P1, :math:`p` = ``power``.

    ``power=2`` is the UM2N paper's monitor; a smaller power (``0.5``, as the training data
    of the shipped weights use) spreads resolution over all features instead of the sharpest.
    """
    return DerivativeMonitor(u, MonitorConfig("hessian", alpha, power))()


def gradient_monitor(u: fd.Function, beta: float = 5.0, power: float = 2.0) -> fd.Function:
    r""":math:`1 + \beta\,(|\nabla u| / \max |\nabla u|)^p` in P1, :math:`p` = ``power``."""
    return DerivativeMonitor(u, MonitorConfig("gradient", beta, power))()


def combined_monitor(u: fd.Function, alpha: float = 5.0, beta: float = 5.0) -> fd.Function:
    r""":math:`1 + \alpha\,\hat h + \beta\,\hat g` (normalised Hessian and gradient indicators)."""
    P1 = _p1(u)
    H = recover_hessian(u)
    g = recover_gradient(u)
    h = _normalised_indicator(fd.inner(H, H), P1, _roundoff_floor(u, 2))
    gg = _normalised_indicator(fd.inner(g, g), P1, _roundoff_floor(u, 1))
    return fd.Function(P1, name="monitor").interpolate(1 + alpha * h + beta * gg)


def smooth_monitor(m: fd.Function, length: float) -> fd.Function:
    r"""Helmholtz-smoothed monitor :math:`(m_s, v) + \ell^2 (\nabla m_s, \nabla v) = (m, v)`.

    Preserves :math:`\int m` and keeps :math:`\min m \le m_s \le \max m` (up to P1 effects).
    """
    P1 = m.function_space()
    ms, v = fd.TrialFunction(P1), fd.TestFunction(P1)
    out = fd.Function(P1, name="monitor")
    ell2 = fd.Constant(length ** 2)
    fd.solve(ms * v * fd.dx + ell2 * fd.inner(fd.grad(ms), fd.grad(v)) * fd.dx == m * v * fd.dx, out,
             solver_parameters=SMOOTHING_SOLVER_PARAMETERS)
    return out


#: P1 L2 projection of a simulation's field, for :class:`SolutionMonitor`
P1_PROJECTION_SOLVER_PARAMETERS = {"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-10}
#: the kinds of :class:`MonitorConfig`
MONITOR_KINDS = ("hessian", "gradient")


@dataclass
class MonitorConfig:
    r"""The ``[monitor]`` table: :math:`m = 1 + \alpha\,(|D u| / \max |D u|)^p`, with
    :math:`D u` the recovered Hessian (``kind = "hessian"``, Frobenius norm) or gradient
    (``"gradient"``) of the case's monitored field. The defaults are the monitor family of the
    shipped weights' training data."""

    kind: str = "hessian"
    alpha: float = 3.0
    power: float = 0.5

    def __post_init__(self):
        if self.kind not in MONITOR_KINDS:
            raise UM2NError(f"kind must be one of {', '.join(MONITOR_KINDS)}, not {self.kind!r}")
        if not self.alpha >= 0:
            raise UM2NError(f"alpha must be >= 0, got {self.alpha!r}")
        if not self.power > 0:
            raise UM2NError(f"power must be > 0, got {self.power!r}")

    def build(self, u: fd.Function) -> fd.Function:
        """The monitor of the P1 field ``u``."""
        return DerivativeMonitor(u, self)()


class DerivativeMonitor:
    r"""The monitor of :class:`MonitorConfig` (:func:`hessian_monitor` or
    :func:`gradient_monitor`) of one P1 field ``u``, for repeated calls as ``u`` changes: the
    recovery's right-hand side, solver and the indicator's interpolation are built once, and
    each call runs their compiled kernels only (an assembly, the solves, an interpolation,
    and array arithmetic for :math:`1 + \alpha\,\hat h^{p/2}`). Same values as
    ``cfg.build(u)``, to the solver's tolerance.

    The recovery's mass matrix :math:`(D, \tau)` of P1 vectors or tensors pairs each
    component with itself only, so it is the scalar P1 mass matrix :math:`M` once per
    component: the components are solved one by one with :math:`M`, which is reassembled when
    the mesh's coordinates have changed since the last call (:math:`d^2` times smaller than
    the tensor matrix).
    """

    def __init__(self, u: fd.Function, cfg: "MonitorConfig"):
        mesh = u.function_space().mesh()
        self.u, self.cfg, self._mesh = u, cfg, mesh
        self._order = 2 if cfg.kind == "hessian" else 1
        self.derivative, _, L = _recovery(u, self._order)
        P1 = _p1(u)
        self._rhs = fd.Cofunction(self.derivative.function_space().dual())
        self._assemble_rhs = get_assembler(L)
        p, q = fd.TrialFunction(P1), fd.TestFunction(P1)
        self._assemble_mass = get_assembler(p * q * fd.dx)
        self._mass = self._assemble_mass.assemble()
        self._solver = fd.LinearSolver(self._mass, solver_parameters=PROJECTION_SOLVER_PARAMETERS)
        self._b, self._x = fd.Cofunction(P1.dual()), fd.Function(P1)
        self.indicator = fd.Function(P1, name="indicator")
        self._interpolator = get_interpolator(fd.interpolate(fd.inner(self.derivative, self.derivative), P1))
        self._coordinates = np.array(mesh.coordinates.dat.data_ro_with_halos)

    def __call__(self) -> fd.Function:
        """The monitor of ``u`` as it is now (a new P1 function)."""
        X = self._mesh.coordinates.dat.data_ro_with_halos
        if self._mesh.comm.allreduce(not np.array_equal(X, self._coordinates), op=MPI.LOR):
            self._assemble_mass.assemble(tensor=self._mass)
            self._coordinates = np.array(X)
        self._assemble_rhs.assemble(tensor=self._rhs)
        n = self._x.dat.data_ro.shape[0]
        rhs = self._rhs.dat.data_ro.reshape(n, -1)
        derivative = self.derivative.dat.data_wo.reshape(n, -1)
        for c in range(rhs.shape[1]):                       # each component with the scalar mass matrix
            self._b.dat.data_wo[:] = rhs[:, c]
            self._x.dat.data_wo[:] = 0.0                      # the initial guess of a fresh solve
            self._solver.solve(self._x, self._b)
            derivative[:, c] = self._x.dat.data_ro
        h = self._interpolator.assemble(tensor=self.indicator)
        top = self.u.comm.allreduce(h.dat.data_ro.max() if h.dat.data_ro.size else 0.0, op=MPI.MAX)
        out = fd.Function(h.function_space(), name="monitor")
        if top > _roundoff_floor(self.u, self._order):      # the owned values; halos follow on demand
            values = h.dat.data_ro / top
            if self.cfg.power != 2.0:
                values = np.maximum(values, 0.0) ** (0.5 * self.cfg.power)
            out.dat.data[:] = 1.0 + self.cfg.alpha * values
        else:
            out.dat.data[:] = 1.0
        return out


class SolutionMonitor:
    """The monitor of a scalar ``expr`` of a simulation's solution, on ``mesh``.

    ``method="project"``: the :math:`L^2` projection of ``expr`` into P1 (for a DG field; the
    mass-matrix solver is built once and refreshed by :meth:`mesh_moved`); ``"interpolate"``:
    interpolation into P1 (for a continuous field or a pointwise expression such as a speed).
    """

    def __init__(self, mesh, expr, cfg: MonitorConfig, method: str = "project", name: str = "monitored"):
        if method not in ("project", "interpolate"):
            raise ValueError(f"method must be 'project' or 'interpolate', not {method!r}")
        self.cfg, self.expr, self.method = cfg, expr, method
        P1 = fd.FunctionSpace(mesh, "CG", 1)
        self.field = fd.Function(P1, name=name)
        self._solver = None
        self._coordinates = np.array(mesh.coordinates.dat.data_ro_with_halos)
        self._mesh = mesh
        self._monitor = DerivativeMonitor(self.field, cfg)
        if method == "project":
            p, w = fd.TrialFunction(P1), fd.TestFunction(P1)
            self._solver = fd.LinearVariationalSolver(
                fd.LinearVariationalProblem(p * w * fd.dx, expr * w * fd.dx, self.field, constant_jacobian=True),
                solver_parameters=P1_PROJECTION_SOLVER_PARAMETERS)

    def __call__(self) -> fd.Function:
        """The monitor of the current solution (the projection refreshed if the mesh has
        moved since the last call, as it does continuously under ALE)."""
        if self._solver is not None:
            X = self._mesh.coordinates.dat.data_ro_with_halos
            if self._mesh.comm.allreduce(not np.array_equal(X, self._coordinates), op=MPI.LOR):
                self._solver.invalidate_jacobian()
                self._coordinates = np.array(X)
            self._solver.solve()
        else:
            self.field.interpolate(self.expr)
        return self._monitor()

    def mesh_moved(self) -> None:
        """Reassemble the projection's mass matrix on the moved mesh."""
        if self._solver is not None:
            self._solver.invalidate_jacobian()
