r"""Incompressible Navier-Stokes, Taylor-Hood P2-P1, Crank-Nicolson, on a fixed or moving mesh.

.. math::

    \Big(\frac{u - u^n}{\Delta t}, v\Big) + \tfrac12\, a(u; u, v) + \tfrac12\, a(u^n; u^n, v)
    - (p, \nabla\cdot v) + (\nabla\cdot u, q) = 0,
    \qquad a(z; u, v) = ((z - w)\cdot\nabla u, v) + \nu(\nabla u, \nabla v),

(the pressure at the new time), or the steady problem :math:`a(u; u, v) - (p, \nabla\cdot v)
+ (\nabla\cdot u, q) = 0`. Monolithic: one Newton solve (PETSc SNES, MUMPS LU) per step,
built once and re-solved.

**ALE form.** :math:`w` is the mesh velocity (:mod:`um2n.fem.ale`; zero on a static mesh).
The nodal values of :math:`u` move with the mesh, so :math:`(u - u^n)/\Delta t` is the time
derivative along the mesh motion and the convection is relative to it. The step is solved
on the geometry at its end, where :math:`\nabla\cdot u = 0` is imposed. The velocity is not a
conserved quantity in this form and a uniform flow stays uniform for any :math:`w` (its
convection and divergence vanish), so no further geometric conservation is needed. Walls
keep their physical velocity (:math:`u = 0` on a wall whose vertices only slide along it).
The Newton solve rebuilds and refactorises its Jacobian at every step on a static mesh as
well, so moving the mesh adds no factorisation.

**Initial guess.** Newton starts from the extrapolation :math:`2u^n - u^{n-1}` (second order
in :math:`\Delta t`, so one iteration fewer than from :math:`u^n` at the same tolerance) when
the velocity is the one the previous step left, and from :math:`u^n` after anything else
changed it (the first step, a transfer, a restart). The solution does not depend on the
guess beyond the Newton tolerance.
"""

from __future__ import annotations

from typing import Callable

import firedrake as fd
import numpy as np
from mpi4py import MPI

#: Newton with a direct solve (MUMPS) of the Taylor-Hood saddle point system.
NEWTON_MUMPS_PARAMETERS = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_rtol": 1e-10,
    "snes_atol": 1e-12,
    "snes_max_it": 20,
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}


class NavierStokesSolver:
    """One Crank-Nicolson step (or the steady solve) of the equations in the module docstring.

    Parameters
    ----------
    mesh : the (possibly moving) mesh
    nu : kinematic viscosity
    dt : time step (ignored when ``steady``)
    boundary_conditions : ``boundary_conditions(W) -> list[DirichletBC]`` on the mixed space
    mesh_velocity : the mesh velocity :math:`w` (a vector function), or ``None`` for a static mesh
    steady : solve the steady problem instead of a time step
    pressure_nullspace : the pressure is fixed only up to a constant (velocity given on the
        whole boundary): the solve removes the constant (MUMPS with null-pivot detection)
    """

    def __init__(self, mesh, nu: float, dt: float, boundary_conditions: Callable,
                 mesh_velocity: fd.Function | None = None, steady: bool = False,
                 pressure_nullspace: bool = False):
        V = fd.VectorFunctionSpace(mesh, "CG", 2)
        Q = fd.FunctionSpace(mesh, "CG", 1)
        self.W = W = V * Q
        self.state = fd.Function(W)
        self.u_old = fd.Function(V, name="velocity_old")
        self.velocity = fd.Function(V, name="velocity")
        self.pressure = fd.Function(Q, name="pressure")
        self.steady = steady
        u, p = fd.split(self.state)
        v, q = fd.TestFunctions(W)
        nu = fd.Constant(nu)
        w = mesh_velocity if mesh_velocity is not None else fd.Constant((0.0, 0.0))

        def a(z, uu, vv):
            return (fd.inner(fd.dot(z - w, fd.nabla_grad(uu)), vv) * fd.dx
                    + nu * fd.inner(fd.grad(uu), fd.grad(vv)) * fd.dx)

        idt = fd.Constant(1.0 / dt)

        def momentum(vv):
            """The momentum residual tested with ``vv`` (a test function, or a probe field)."""
            if steady:
                return a(u, u, vv) - p * fd.div(vv) * fd.dx
            return (idt * fd.inner(u - self.u_old, vv) * fd.dx + 0.5 * a(u, u, vv)
                    + 0.5 * a(self.u_old, self.u_old, vv) - p * fd.div(vv) * fd.dx)

        self.momentum = momentum
        self._start = fd.Function(V)        # the velocity at the start of the last step
        self._left = fd.Function(V)         # the velocity the last step left
        self._stepped = False
        F = momentum(v) + fd.div(u) * q * fd.dx
        self.bcs = boundary_conditions(W)
        nullspace, parameters = None, dict(NEWTON_MUMPS_PARAMETERS)
        if pressure_nullspace:
            nullspace = fd.MixedVectorSpaceBasis(W, [W.sub(0), fd.VectorSpaceBasis(constant=True, comm=mesh.comm)])
            parameters["mat_mumps_icntl_24"] = 1
        self.solver = fd.NonlinearVariationalSolver(fd.NonlinearVariationalProblem(F, self.state, bcs=self.bcs),
                                                    solver_parameters=parameters, nullspace=nullspace)

    def step(self) -> None:
        """Advance ``velocity`` and ``pressure`` by one step on the mesh as it is now."""
        self.u_old.assign(self.velocity)
        if self._extrapolate():
            self.state.subfunctions[0].assign(2.0 * self.velocity - self._start)
        else:
            self.state.subfunctions[0].assign(self.velocity)
        self.state.subfunctions[1].assign(self.pressure)
        self._start.assign(self.velocity)
        self.solver.solve()
        self.velocity.assign(self.state.subfunctions[0])
        self.pressure.assign(self.state.subfunctions[1])
        self._left.assign(self.velocity)
        self._stepped = True

    def _extrapolate(self) -> bool:
        """Whether the velocity is still the one the previous step left (on every rank)."""
        if self.steady or not self._stepped:
            return False
        same = bool(np.array_equal(self.velocity.dat.data_ro, self._left.dat.data_ro))
        return self.velocity.function_space().mesh().comm.allreduce(same, op=MPI.LAND)
