r"""The classical Monge-Ampère mesh mover (McRae, Cotter & Budd 2018): baseline and label generator.

The moved mesh is :math:`x = \xi + \nabla\phi`, with :math:`\xi` the reference (original)
vertices and :math:`\phi` solving the equidistribution equation

.. math::

    m(\xi + \nabla\phi)\, \det(I + H(\phi)) = \theta, \qquad
    \theta = \frac{\int_\Omega m \det(I + H)\,d\xi}{\int_\Omega d\xi},

in the mixed form of McRae et al.: :math:`\phi \in P1` and a recovered Hessian
:math:`\sigma \in P1^{2\times2}` with

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
Holes and several boundary loops are handled the same way. The signed areas of the final
mesh are checked; a tangled result raises instead of being returned.

Failure (no convergence within ``maxiter``, divergence, a non-finite residual, or a tangled
mesh) raises :class:`~um2n.errors.ConvergenceError` and restores the mesh to where it started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import firedrake as fd
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


MonitorFunction = Callable[[object], object]
"""``monitor(mesh) -> UFL expression`` on the *current physical* mesh (e.g. of its
``SpatialCoordinate``, or of a Function defined on it)."""


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
    """

    def __init__(self, mesh, monitor: MonitorFunction, method: str = "relaxation", rtol: float = 1e-3,
                 maxiter: int = 500, pseudo_timestep: float = 0.25, divergence_factor: float = 1e3,
                 graph: MeshGraph | None = None):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        self.mesh = mesh
        self.monitor = monitor
        self.method = method
        self.rtol, self.maxiter, self.divergence_factor = rtol, maxiter, divergence_factor
        self.xi = np.array(mesh.coordinates.dat.data_ro, dtype=np.float64)
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
        self.m = fd.Function(self.P1, name="monitor")
        self.area = fd.assemble(fd.Constant(1.0) * fd.dx(domain=self.ref))
        self.pseudo_timestep = pseudo_timestep
        self.dtau = fd.Constant(pseudo_timestep)
        self.theta = fd.Constant(1.0)
        n = fd.FacetNormal(self.ref)
        I = ufl.Identity(2)

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
        I = ufl.Identity(2)
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
        self.z.assign(0.0)
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
        self.m_phys.interpolate(self.monitor(self.mesh))
        self.m.dat.data[:] = self.m_phys.dat.data_ro

    def _update_theta(self) -> None:
        self.theta.assign(fd.assemble(self.theta_form) / self.area)

    def _residual(self) -> float:
        r = fd.assemble(self.residual_form).dat.data_ro
        s = fd.assemble(self.scale_form).dat.data_ro
        comm = self.mesh.comm
        return float(np.sqrt(comm.allreduce(float(r @ r)) / comm.allreduce(float(s @ s))))

    def _update_mesh(self) -> np.ndarray:
        """x = xi + grad(phi), boundary vertices put back on their boundary; returns x (the
        process's own vertices)."""
        self._grad_solver.solve()
        proposal = self.xi + self.grad_phi.dat.data_ro
        if self.graph is not None:
            x, _ = self.graph.boundary.project(self.xi, proposal)
        else:
            x, _, _ = self._rows.part.project_boundary(self._xi_part, self._rows.to_partition(proposal))
            x = self._rows.from_partition(x)
        self.mesh.coordinates.dat.data[:] = x
        return x

    def _tangled(self, x: np.ndarray) -> bool:
        """Whether any triangle of the coordinates ``x`` (the process's own vertices) is
        inverted, on any rank."""
        if self.graph is not None:
            return bool((signed_areas(x, self.graph.triangles) <= 0).any())
        part = self._rows.part
        local = bool((signed_areas(self._rows.to_partition(x), part.triangles) <= 0).any())
        return bool(self.mesh.comm.allreduce(local, op=MPI.LOR))

    # ------------------------------------------------------------------ the solve
    def move(self) -> MongeAmpereResult:
        """Solve and move the mesh in place; raises :class:`ConvergenceError` on failure."""
        start = np.array(self.mesh.coordinates.dat.data_ro, copy=True)
        self.phi.assign(0.0)
        self.sigma.assign(0.0)
        self.mesh.coordinates.dat.data[:] = self.xi
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
                if self._tangled(x):
                    raise ConvergenceError(f"Monge-Ampère ({self.method}) converged to a tangled mesh")
                return MongeAmpereResult(len(residuals) - 1, residuals[-1], residuals, self.method)
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
            if self._tangled(x):
                raise ConvergenceError(f"Monge-Ampère ({self.method}) converged to a tangled mesh")
            return MongeAmpereResult(len(residuals) - 1, residuals[-1], residuals, self.method)
        except fd.ConvergenceError as exc:        # a failed linear solve
            self.mesh.coordinates.dat.data[:] = start
            reason = str(exc).strip().splitlines()[-1].strip()
            raise ConvergenceError(f"Monge-Ampère ({self.method}): linear solve failed ({reason})") from None
        except BaseException:
            self.mesh.coordinates.dat.data[:] = start
            raise

    def _failure(self, iterations: int) -> str:
        r = self._residuals
        if not np.isfinite(r[-1]) or r[-1] > self.divergence_factor * r[0]:
            return f"Monge-Ampère ({self.method}) diverged at iteration {iterations} (residual {r[-1]:.3e})"
        return (f"Monge-Ampère ({self.method}) did not converge in {iterations} iterations "
                f"(residual {r[-1]:.3e} > rtol {self.rtol:g})")
