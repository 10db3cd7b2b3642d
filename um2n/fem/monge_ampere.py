r"""The classical Monge-Ampère mesh mover (McRae, Cotter & Budd 2018): baseline and label generator.

The moved mesh is :math:`x = \xi + \nabla\phi`, with :math:`\xi` the reference (original)
vertices and :math:`\phi` solving the equidistribution equation

.. math::

    m(\xi + \nabla\phi)\, \det(I + H(\phi)) = \theta, \qquad
    \theta = \frac{\int_\Omega m \det(I + H)\,d\xi}{\int_\Omega d\xi},

in the mixed form of McRae et al.: :math:`\phi \in P1` and a recovered Hessian
:math:`\sigma \in P1^{d\times d}` (:math:`d` = 2 or 3) with

.. math::

    (\sigma, \tau) + (\nabla\cdot\tau, \nabla\phi)
    - \langle \tau n, \nabla_{\!t}\phi \rangle_{\partial\Omega} = 0 \quad \forall \tau,

where only the tangential gradient :math:`\nabla_{\!t}\phi` enters the boundary term, which
builds the condition :math:`\partial\phi/\partial n = 0` into the recovered Hessian.

Solution method: relaxation, a pseudo-time stepping of :math:`-\Delta \phi_\tau = m\det(I+\sigma) - \theta`,

  .. math::

      (\nabla\phi^{k+1}, \nabla\psi) = (\nabla\phi^{k}, \nabla\psi)
        + \Delta\tau\,(m^k \det(I+\sigma^k) / \theta^k - 1, \psi),

  (scaled by :math:`\theta`, so that :math:`\Delta\tau` does not depend on the monitor's scale),
  then :math:`\sigma^{k+1}` from the Hessian equation: two linear solves per iteration
  (the Laplacian with its constant null space, and a mass matrix), both built once.
If the residual grows from one iteration to the next, the pseudo-timestep is halved.

Quasi-Newton (``method="quasi_newton"``): the elliptic form, the Hessian equation and

.. math:: (m \det(I + \sigma) - \theta, \psi) = 0

solved together for :math:`(\phi, \sigma)` by Newton's method (PETSc SNES), with the
monitor and :math:`\theta` *lagged*: before every residual and Jacobian evaluation the mesh
is moved to the current iterate and the monitor re-evaluated there, but the Jacobian does
not differentiate through :math:`m(x(\phi))`; hence quasi-Newton. Steps are damped (l2
line search, damping 0.8), GMRES is preconditioned by a field split of
the auxiliary operator :math:`(\sigma, \tau) + (\phi, \psi) + (\nabla\phi, \nabla\psi)`,
and the constants in :math:`\phi` are a null space. It stops on the same relative residual
as the relaxation, in fewer but dearer iterations.

Boundaries. :math:`\partial\phi/\partial n = 0` (natural in both forms) lets vertices slide
along the boundary; the boundary model of :class:`um2n.mesh.MeshGraph` then puts every
boundary vertex exactly on its segment or curve (circles included) and keeps corners fixed.
Holes and several boundary loops are handled the same way. On a tetrahedral mesh (serial
only) the boundary model of :class:`um2n.tetmesh.TetMeshGraph` keeps every boundary vertex
on its plane, sphere, cylinder or original triangulated surface, feature-edge vertices on
their edge, and corners fixed. The signed areas of the final
mesh are checked: the discrete map :math:`\xi + \nabla\phi` of a converged solution can
still invert a triangle (next to a re-entrant corner, say); such a mesh is repaired by
UM2N's untangling safeguard (:func:`um2n.safeguard.untangle`: the moves of the vertices of
inverted triangles are shortened), and the result counts the vertices it touched
(``repair=False``: it raises instead).

Continuation. When the direct solve fails, :meth:`MongeAmpereMover.move` solves again for
the monitors :math:`m^s`, :math:`s` rising in stages from 0 (uniform) to 1 (the target),
each stage started from the previous solution, and halves a stage that fails.

Failure (no convergence within ``maxiter``, divergence, a non-finite residual, or a tangled
mesh, and then of the continuation) raises :class:`~um2n.errors.ConvergenceError` and restores the mesh to where it started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import firedrake as fd
from firedrake.assemble import get_assembler
from firedrake.interpolation import get_interpolator
import numpy as np
import ufl
from mpi4py import MPI

from um2n.errors import ConvergenceError  # raised here; also importable from this module
from um2n.fem.adapter import mesh_graph
from um2n.mesh import MeshGraph, signed_areas

#: Laplacian with a constant null space (pure Neumann), conjugate gradients + AMG.
LAPLACE_SOLVER_PARAMETERS = {
    "ksp_type": "cg",
    "ksp_rtol": 1e-12,
    "pc_type": "gamg",
}
#: P1 mass matrix (Hessian recovery, gradient projection).
MASS_SOLVER_PARAMETERS = {
    "ksp_type": "cg",
    "ksp_rtol": 1e-12,
    "pc_type": "jacobi",
}
METHODS = ("relaxation", "quasi_newton")

#: Quasi-Newton on the mixed (phi, sigma) system: GMRES preconditioned by a multiplicative
#: field split of the auxiliary operator (AMG on phi's mass + stiffness, ILU on sigma's
#: mass), with a damped l2 line search.
QUASI_NEWTON_SOLVER_PARAMETERS = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "l2",
    "snes_linesearch_max_it": 5,
    "snes_linesearch_damping": 0.8,
    "snes_lag_preconditioner": -2,
    "ksp_type": "gmres",
    "ksp_gmres_restart": 200,
    "ksp_max_it": 200,
    "pc_type": "fieldsplit",
    "pc_fieldsplit_type": "multiplicative",
    "pc_fieldsplit_off_diag_use_amat": True,
    "fieldsplit_0_ksp_type": "preonly",
    "fieldsplit_0_pc_type": "gamg",
    "fieldsplit_0_mg_levels_ksp_max_it": 5,
    "fieldsplit_0_mg_levels_pc_type": "bjacobi",       # ILU of each rank's block (all of it in serial)
    "fieldsplit_0_mg_levels_sub_pc_type": "ilu",
    "fieldsplit_1_ksp_type": "preonly",
    "fieldsplit_1_pc_type": "bjacobi",
    "fieldsplit_1_sub_pc_type": "ilu",
}


def _tangential(v, n):
    """Tangential part of ``v`` on a facet with unit normal ``n``."""
    return v - fd.dot(v, n) * n


@dataclass
class MongeAmpereResult:
    """Outcome of :meth:`MongeAmpereMover.move`."""

    iterations: int
    residual: float
    residuals: list
    method: str
    #: the amplitudes :math:`s` of the monitor :math:`m^s` solved for, in order, when the
    #: direct solve failed and continuation reached the target (empty otherwise)
    continuation: list = field(default_factory=list)
    #: vertices whose move the untangling safeguard shortened, when the converged mesh was
    #: tangled and ``repair`` is on (0: the mesh is the solution's own)
    repaired_vertices: int = 0


MonitorFunction = Callable[[object], object]
"""``monitor(mesh) -> UFL expression`` on the *current physical* mesh (e.g. of its
``SpatialCoordinate``, or of a Function defined on it)."""


def _same_expression(a, b) -> bool:
    """Whether two monitor values are the same UFL expression (structurally: the same
    operators, literals and functions), so that one interpolation serves both."""
    try:
        return bool(a == b)
    except Exception:              # not UFL-comparable: build anew
        return False


class MongeAmpereMover:
    r"""Move a Firedrake mesh by solving the Monge-Ampère equation (see the module docstring).

    Parameters
    ----------
    mesh : firedrake.MeshGeometry
        The mesh to move (in place). Its coordinates at construction are the reference.
    monitor : callable ``monitor(mesh) -> UFL expression``
        The monitor function on the moved mesh, evaluated at every iteration.
    method : ``"relaxation"`` or ``"quasi_newton"``
    rtol : float
        Convergence when the relative residual of the discrete equidistribution equation,
        :math:`\|R\|_2 / \|T\|_2` with :math:`R_i = ((m\det(I+\sigma) - \theta), \psi_i)` and
        :math:`T_i = (\theta, \psi_i)` over the P1 basis :math:`\psi_i`, is below ``rtol``.
    maxiter : int
    pseudo_timestep : float
        :math:`\Delta\tau` of the relaxation (dimensionless).
    divergence_factor : float
        Stop with :class:`ConvergenceError` when the residual grows above this factor
        times the initial one.
    continuation : int
        When the direct solve fails, solve again by continuation in the monitor's amplitude
        in this many stages (0: never): see :meth:`move`.
    repair : bool
        When the converged mesh is tangled, shorten the moves around the inverted triangles
        with the untangling safeguard of UM2N (:func:`um2n.safeguard.untangle`) and return
        that mesh (``repaired_vertices`` > 0), instead of raising.
    """

    def __init__(self, mesh, monitor: MonitorFunction, method: str = "relaxation", rtol: float = 1e-3,
                 maxiter: int = 500, pseudo_timestep: float = 0.25, divergence_factor: float = 1e3,
                 graph: MeshGraph | None = None, continuation: int = 4, repair: bool = True):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if continuation < 0:
            raise ValueError(f"continuation must be >= 0 stages, not {continuation!r}")
        self.continuation = int(continuation)
        self.repair = bool(repair)
        self._exponent = 1.0
        self._exponent_c = fd.Constant(1.0)
        self.mesh = mesh
        self.monitor = monitor
        self.method = method
        self.rtol, self.maxiter, self.divergence_factor = rtol, maxiter, divergence_factor
        self.xi = np.array(mesh.coordinates.dat.data_ro, dtype=np.float64)
        self.dim = self.xi.shape[1]
        if mesh.comm.size > 1 and self.dim == 3:
            raise ValueError("Monge-Ampere on a tetrahedral mesh runs in serial only (the distributed "
                             "boundary projection is 2D)")
        if mesh.comm.size > 1:       # the mesh stays distributed: the boundary is projected globally
            from um2n.fem.adapter import PartitionRows, mesh_partition

            self.graph = None
            self._rows = PartitionRows(mesh, mesh_partition(mesh))
            self._xi_part = self._rows.to_partition(self.xi)
        else:
            self.graph = graph or mesh_graph(mesh)

        # reference mesh: phi and sigma live here, on the original coordinates
        self.ref = fd.Mesh(fd.Function(mesh.coordinates))
        self.P1 = fd.FunctionSpace(self.ref, "CG", 1)
        self.T1 = fd.TensorFunctionSpace(self.ref, "CG", 1)
        self.P1v = fd.VectorFunctionSpace(self.ref, "CG", 1)
        self.P1_phys = fd.FunctionSpace(mesh, "CG", 1)
        self.m_phys = fd.Function(self.P1_phys, name="monitor")
        self._monitor_expr = self._monitor_interpolator = None
        self.m = fd.Function(self.P1, name="monitor")
        self.area = fd.assemble(fd.Constant(1.0) * fd.dx(domain=self.ref))
        self.pseudo_timestep = pseudo_timestep
        self.dtau = fd.Constant(pseudo_timestep)
        self.theta = fd.Constant(1.0)
        n = fd.FacetNormal(self.ref)
        I = ufl.Identity(self.dim)

        # gradient of phi, projected to P1 vectors: the vertex displacement
        self.grad_phi = fd.Function(self.P1v, name="grad_phi")
        self.phi = fd.Function(self.P1, name="phi")
        self.sigma = fd.Function(self.T1, name="sigma")
        u, v = fd.TrialFunction(self.P1v), fd.TestFunction(self.P1v)
        self._grad_solver = fd.LinearVariationalSolver(
            fd.LinearVariationalProblem(fd.inner(u, v) * fd.dx, fd.inner(fd.grad(self.phi), v) * fd.dx,
                                        self.grad_phi), solver_parameters=MASS_SOLVER_PARAMETERS)
        q1 = fd.TestFunction(self.P1)
        self.residual_form = (self.m * fd.det(I + self.sigma) - self.theta) * q1 * fd.dx
        self.scale_form = self.theta * q1 * fd.dx
        self.theta_form = self.m * fd.det(I + self.sigma) * fd.dx
        # assemblers built once: each iteration runs the compiled kernels, not the form processing
        self._assemble_theta = get_assembler(self.theta_form)
        self._assemble_residual = get_assembler(self.residual_form)
        self._assemble_scale = get_assembler(self.scale_form)

        phi_new = fd.Function(self.P1)
        p, q = fd.TrialFunction(self.P1), fd.TestFunction(self.P1)
        rhs = (fd.inner(fd.grad(self.phi), fd.grad(q))
               + self.dtau * (self.m * fd.det(I + self.sigma) / self.theta - 1.0) * q) * fd.dx
        self._phi_new = phi_new
        constants = fd.VectorSpaceBasis(constant=True, comm=self.ref.comm)
        self._phi_solver = fd.LinearVariationalSolver(
            fd.LinearVariationalProblem(fd.inner(fd.grad(p), fd.grad(q)) * fd.dx, rhs, phi_new),
            solver_parameters=LAPLACE_SOLVER_PARAMETERS, nullspace=constants, transpose_nullspace=constants)
        s, t = fd.TrialFunction(self.T1), fd.TestFunction(self.T1)
        hess_rhs = (-fd.inner(fd.div(t), fd.grad(self.phi)) * fd.dx
                    + fd.inner(fd.dot(t, n), _tangential(fd.grad(self.phi), n)) * fd.ds)
        self._sigma_solver = fd.LinearVariationalSolver(
            fd.LinearVariationalProblem(fd.inner(s, t) * fd.dx, hess_rhs, self.sigma),
            solver_parameters=MASS_SOLVER_PARAMETERS)
        if method == "quasi_newton":
            self._build_quasi_newton()

    def _build_quasi_newton(self) -> None:
        Z = self.P1 * self.T1
        self.z = fd.Function(Z)
        self._z_current = fd.Function(Z)
        phi, sigma = fd.split(self.z)
        psi, tau = fd.TestFunctions(Z)
        n = fd.FacetNormal(self.ref)
        I = ufl.Identity(self.dim)
        F = (fd.inner(tau, sigma) * fd.dx + fd.inner(fd.div(tau), fd.grad(phi)) * fd.dx
             - fd.inner(fd.dot(tau, n), _tangential(fd.grad(phi), n)) * fd.ds
             - psi * (self.m * fd.det(I + sigma) - self.theta) * fd.dx)
        p, s = fd.TrialFunctions(Z)
        Jp = fd.inner(tau, s) * fd.dx + p * psi * fd.dx + fd.inner(fd.grad(p), fd.grad(psi)) * fd.dx
        nullspace = fd.MixedVectorSpaceBasis(Z, [fd.VectorSpaceBasis(constant=True, comm=self.ref.comm), Z.sub(1)])
        params = dict(QUASI_NEWTON_SOLVER_PARAMETERS, snes_max_it=self.maxiter)

        def at_iterate(current):
            """Move the mesh to the iterate ``current`` and lag the monitor and theta there."""
            with self._z_current.dat.vec_wo as v:
                current.copy(v)
            self.phi.assign(self._z_current.subfunctions[0])
            self.sigma.assign(self._z_current.subfunctions[1])
            self._update_mesh()
            self._update_monitor()
            self._update_theta()

        self._qn_solver = fd.NonlinearVariationalSolver(
            fd.NonlinearVariationalProblem(F, self.z, Jp=Jp), nullspace=nullspace, transpose_nullspace=nullspace,
            pre_function_callback=at_iterate, pre_jacobian_callback=at_iterate, solver_parameters=params)
        from firedrake.petsc import PETSc

        reason = PETSc.SNES.ConvergedReason

        def converged(snes, it, norms):
            r = self._residual()
            self._residuals.append(r)
            if r < self.rtol:
                return reason.CONVERGED_FNORM_ABS
            if not np.isfinite(r) or r > self.divergence_factor * self._residuals[0]:
                return reason.DIVERGED_DTOL
            if it >= self.maxiter:
                return reason.DIVERGED_MAX_IT
            return reason.ITERATING

        self._qn_solver.snes.setConvergenceTest(converged)

    def _move_quasi_newton(self) -> np.ndarray:
        """Quasi-Newton from the current ``phi`` and ``sigma``."""
        self.z.subfunctions[0].assign(self.phi)
        self.z.subfunctions[1].assign(self.sigma)
        self._residuals.pop()            # the convergence test records every residual itself
        try:
            self._qn_solver.solve()
        except fd.ConvergenceError:
            if not self._residuals or self._residuals[-1] >= self.rtol:
                raise ConvergenceError(self._failure(max(len(self._residuals) - 1, 0))) from None
        self.phi.assign(self.z.subfunctions[0])
        self.sigma.assign(self.z.subfunctions[1])
        return self._update_mesh()

    # ------------------------------------------------------------------ pieces
    def _update_monitor(self) -> None:
        """Evaluate the monitor on the current physical mesh and copy it to the reference."""
        expr = self.monitor(self.mesh)
        if self._exponent != 1.0:                 # a continuation stage: m^s
            self._exponent_c.assign(self._exponent)
            expr = expr ** self._exponent_c
        # the monitor callable builds a new expression at each call; while it is the same
        # expression (a function of the moving coordinates, or the same functions), the
        # interpolation built for it is kept and only its kernel runs
        if self._monitor_expr is None or not _same_expression(expr, self._monitor_expr):
            self._monitor_interpolator = get_interpolator(fd.interpolate(expr, self.P1_phys))
            self._monitor_expr = expr
        self._monitor_interpolator.assemble(tensor=self.m_phys)
        self.m.dat.data[:] = self.m_phys.dat.data_ro

    def _update_theta(self) -> None:
        self.theta.assign(self._assemble_theta.assemble() / self.area)

    def _residual(self) -> float:
        r = self._assemble_residual.assemble().dat.data_ro
        s = self._assemble_scale.assemble().dat.data_ro
        comm = self.mesh.comm
        return float(np.sqrt(comm.allreduce(float(r @ r)) / comm.allreduce(float(s @ s))))

    def _update_mesh(self) -> np.ndarray:
        """x = xi + grad(phi), boundary vertices put back on their boundary; returns x (the
        process's own vertices)."""
        self._grad_solver.solve()
        proposal = self.xi + self.grad_phi.dat.data_ro
        if self.graph is not None:
            x, self._s = self.graph.boundary.project(self.xi, proposal)
        else:
            self._x_part, self._s, self._local_boundary = self._rows.part.project_boundary(
                self._xi_part, self._rows.to_partition(proposal))
            x = self._rows.from_partition(self._x_part)
        self.mesh.coordinates.dat.data[:] = x
        return x

    def _untangled(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """``x`` (from the last :meth:`_update_mesh`) if no triangle is inverted, else what the
        safeguard makes of it, or :class:`ConvergenceError` if ``repair`` is off; with the
        number of vertices it moved less."""
        if not self._tangled(x):
            return x, 0
        if not self.repair:
            raise ConvergenceError(f"Monge-Ampère ({self.method}) converged to a tangled mesh")
        if self.graph is not None:
            from um2n.safeguard import untangle

            y, report = untangle(self.graph, self.xi, x, self._s)
        else:
            from um2n.distributed import untangle_distributed

            y, report = untangle_distributed(self._rows.part, self._xi_part, self._x_part, self._s,
                                             boundary=self._local_boundary)
            y = self._rows.from_partition(y)
        self.mesh.coordinates.dat.data[:] = y
        return y, int(report.limited_vertices)

    def _tangled(self, x: np.ndarray) -> bool:
        """Whether any triangle of the coordinates ``x`` (the process's own vertices) is
        inverted, on any rank."""
        if self.graph is not None:
            return bool((self.graph.cell_measures(x) <= 0).any())
        part = self._rows.part
        local = bool((signed_areas(self._rows.to_partition(x), part.triangles) <= 0).any())
        return bool(self.mesh.comm.allreduce(local, op=MPI.LOR))

    # ------------------------------------------------------------------ the solve
    def move(self) -> MongeAmpereResult:
        r"""Solve and move the mesh in place; raises :class:`ConvergenceError` on failure.

        The direct solve starts from :math:`\phi = 0`. If it fails (no convergence,
        divergence, a failed linear solve, or a tangled mesh) and ``continuation`` > 0, the
        equation is solved again for the monitors :math:`m^{s}`, :math:`0 < s_1 < \dots <
        s_K = 1` (from the uniform monitor to the target; the ratio of the largest to the
        smallest value grows as a power of it), each stage started from the previous one's
        :math:`(\phi, \sigma)`, with ``continuation`` equal steps in :math:`s`; a stage that
        fails is retried from the last converged one with half the step, down to 1/64.
        """
        start = np.array(self.mesh.coordinates.dat.data_ro, copy=True)
        try:
            try:
                return self._solve(1.0, cold=True)
            except ConvergenceError as exc:
                if not self.continuation:
                    raise
                direct = str(exc)
            return self._solve_by_continuation(direct)
        except BaseException:
            self.mesh.coordinates.dat.data[:] = start
            raise

    def _solve_by_continuation(self, direct: str) -> MongeAmpereResult:
        done, step, stages, iterations = 0.0, 1.0 / self.continuation, [], 0
        self.phi.assign(0.0)
        self.sigma.assign(0.0)
        phi, sigma = fd.Function(self.phi), fd.Function(self.sigma)
        while done < 1.0:
            s = min(1.0, done + step)
            try:
                result = self._solve(s, cold=False)
            except ConvergenceError as exc:
                self.phi.assign(phi)
                self.sigma.assign(sigma)
                step *= 0.5
                if step < 1.0 / 64:
                    raise ConvergenceError(f"{direct}; continuation in the monitor's amplitude stalled at "
                                           f"s = {done:.3g} of 1 ({exc})") from None
                continue
            done = s
            stages.append(s)
            iterations += result.iterations
            phi.assign(self.phi)
            sigma.assign(self.sigma)
        return MongeAmpereResult(iterations, result.residual, result.residuals, self.method, continuation=stages,
                                 repaired_vertices=result.repaired_vertices)

    def _solve(self, exponent: float, cold: bool) -> MongeAmpereResult:
        """Solve for the monitor ``m**exponent`` from phi = 0 (``cold``) or from the current
        ``phi`` and ``sigma``; the mesh is left at the result (or wherever it failed)."""
        self._exponent = exponent
        if cold:
            self.phi.assign(0.0)
            self.sigma.assign(0.0)
            self.mesh.coordinates.dat.data[:] = self.xi
        else:
            self._update_mesh()
        self._update_monitor()
        self._update_theta()
        residuals = [self._residual()]
        self._residuals = residuals
        try:
            if residuals[0] < self.rtol:
                return MongeAmpereResult(0, residuals[0], residuals, self.method)
            if self.method == "quasi_newton":
                x = self._move_quasi_newton()
                self._update_monitor()
                self._update_theta()
                residuals = self._residuals
                if not residuals or residuals[-1] >= self.rtol:
                    raise ConvergenceError(self._failure(len(residuals) - 1))
                x, repaired = self._untangled(x)
                return MongeAmpereResult(len(residuals) - 1, residuals[-1], residuals, self.method,
                                         repaired_vertices=repaired)
            self.dtau.assign(self.pseudo_timestep)
            for it in range(1, self.maxiter + 1):
                self._phi_solver.solve()
                self.phi.assign(self._phi_new)
                self._sigma_solver.solve()
                x = self._update_mesh()
                self._update_monitor()
                self._update_theta()
                residuals.append(self._residual())
                if residuals[-1] < self.rtol:
                    break
                if not np.isfinite(residuals[-1]) or residuals[-1] > self.divergence_factor * residuals[0]:
                    raise ConvergenceError(self._failure(it))
                if residuals[-1] > residuals[-2]:
                    self.dtau.assign(0.5 * float(self.dtau))
            else:
                raise ConvergenceError(self._failure(self.maxiter))
            x, repaired = self._untangled(x)
            return MongeAmpereResult(len(residuals) - 1, residuals[-1], residuals, self.method,
                                     repaired_vertices=repaired)
        except fd.ConvergenceError as exc:        # a failed linear solve
            reason = str(exc).strip().splitlines()[-1].strip()
            raise ConvergenceError(f"Monge-Ampère ({self.method}): linear solve failed ({reason})") from None
        finally:
            self._exponent = 1.0

    def _failure(self, iterations: int) -> str:
        r = self._residuals
        if not np.isfinite(r[-1]) or r[-1] > self.divergence_factor * r[0]:
            return f"Monge-Ampère ({self.method}) diverged at iteration {iterations} (residual {r[-1]:.3e})"
        return (f"Monge-Ampère ({self.method}) did not converge in {iterations} iterations "
                f"(residual {r[-1]:.3e} > rtol {self.rtol:g})")
