r"""Depth-averaged shallow-water equations, DG1-DG1, with wetting and drying (in progress).

Status: the wet equations are well balanced (a lake at rest stays at rest, tested) and a
linear wave travels at :math:`\sqrt{gd}` (tested); wetting and drying is not yet validated
(see :mod:`simulations.runup`: Newton fails on the thin films of the run-down), and the
solver is not yet run through the moving-mesh loop.

Unknowns: the elevation :math:`\eta` and the depth-averaged velocity :math:`u`, both
discontinuous P1; bathymetry :math:`b` (positive down), total depth :math:`H = \eta + b`.
Wetting and drying follow Kärnä et al. (2011): the total depth is replaced by the smooth,
always positive

.. math:: \tilde H = \tfrac12\big(H + \sqrt{H^2 + \alpha^2}\big)

(:math:`\tilde H \to H` where :math:`H \gg \alpha`, :math:`\tilde H \to 0^+` on dry land), so the
same equations hold on wet and dry elements:

.. math::

    \partial_t \tilde H + \nabla\cdot(\tilde H u) = 0, \qquad
    \partial_t u + (u\cdot\nabla) u + g\nabla\eta + C_D \frac{|u|\,u}{\tilde H} = 0

(the nonlinear form; ``nonlinear=False`` drops the advection and uses the still-water depth
:math:`b` in the mass flux). Fluxes on interior facets: Lax-Friedrichs for the mass flux,
:math:`\widehat{\tilde H u}\cdot n^+ = \{\tilde H u\}\cdot n^+ + \tfrac12 c\,[\![\eta]\!]`
with :math:`c = \sqrt{g\{\tilde H\}} + |\{u\}\cdot n|`; the elevation flux
:math:`\eta^* = \{\eta\} + \tfrac12\sqrt{\{\tilde H\}/g}\,[\![u\cdot n]\!]` in the pressure
term; central advection with a Lax-Friedrichs jump penalty :math:`\tfrac12|\{u\}\cdot n|` for
the velocity. All boundaries are walls (:math:`u\cdot n = 0`). Time stepping: the
:math:`\theta`-method (:math:`\theta = 1/2`, Crank-Nicolson) with one Newton solve (MUMPS)
per step, built once.
"""

from __future__ import annotations

from dataclasses import dataclass

import firedrake as fd
import ufl

#: Newton + MUMPS for the coupled (eta, u) step.
SWE_NEWTON_PARAMETERS = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "bt",
    "snes_rtol": 1e-8,
    "snes_atol": 1e-12,
    "snes_max_it": 30,
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
    "mat_type": "aij",
}


@dataclass
class ShallowWaterOptions:
    """Physical and numerical settings of :class:`ShallowWaterSolver`."""

    g: float = 9.81
    nonlinear: bool = True
    wetting_drying_alpha: float = 0.0     # 0: no wetting and drying
    drag: float = 0.0                     # quadratic bottom drag C_D
    theta: float = 0.5


class ShallowWaterSolver:
    """One time step of the DG1-DG1 shallow-water equations (see the module docstring).

    Parameters
    ----------
    mesh : the (possibly moving) mesh
    bathymetry : callable ``bathymetry(mesh) -> UFL expression`` (metres, positive down),
        re-evaluated from its source on the current coordinates (never transferred)
    dt : time step
    options : :class:`ShallowWaterOptions`
    """

    def __init__(self, mesh, bathymetry, dt: float, options: ShallowWaterOptions | None = None):
        self.mesh = mesh
        self.options = o = options or ShallowWaterOptions()
        self.bathymetry_source = bathymetry
        P1DG = fd.FunctionSpace(mesh, "DG", 1)
        V = fd.VectorFunctionSpace(mesh, "DG", 1)
        self.W = W = P1DG * V
        self.b = fd.Function(fd.FunctionSpace(mesh, "CG", 1), name="bathymetry")
        self.update_bathymetry()
        self.state = fd.Function(W)
        self.old = fd.Function(W)
        self.elevation = fd.Function(P1DG, name="elevation")
        self.velocity = fd.Function(V, name="velocity")
        self.dt = fd.Constant(dt)
        g = fd.Constant(o.g)
        alpha = fd.Constant(o.wetting_drying_alpha)
        theta = fd.Constant(o.theta)
        n = fd.FacetNormal(mesh)
        phi, psi = fd.TestFunctions(W)
        eta, u = fd.split(self.state)
        eta0, u0 = fd.split(self.old)

        def depth(e):
            H = e + self.b
            if o.wetting_drying_alpha > 0:
                return 0.5 * (H + ufl.sqrt(H ** 2 + alpha ** 2))
            return H

        def flux_depth(e):
            return depth(e) if o.nonlinear else self.b

        def rhs(e, v):
            """The spatial terms R(e, v; phi, psi) with d/dt(mass) + R = 0."""
            Hf = flux_depth(e)
            Havg = fd.avg(Hf)
            un = fd.dot(fd.avg(v), n("+"))
            c = ufl.sqrt(g * ufl.max_value(Havg, 1e-12)) + abs(un)
            mass_flux = fd.dot(fd.avg(Hf * v), n("+")) + 0.5 * c * fd.jump(e)
            R = -Hf * fd.dot(v, fd.grad(phi)) * fd.dx + mass_flux * fd.jump(phi) * fd.dS
            eta_star = fd.avg(e) + 0.5 * ufl.sqrt(ufl.max_value(Havg, 1e-12) / g) * fd.jump(v, n)
            R += (-g * e * fd.div(psi) * fd.dx + g * eta_star * fd.jump(psi, n) * fd.dS
                  + g * e * fd.dot(psi, n) * fd.ds)
            if o.nonlinear:
                R += self._advection(v, psi, n)
            if o.drag > 0:
                R += o.drag * ufl.sqrt(fd.dot(v, v) + 1e-12) * fd.dot(v, psi) / depth(e) * fd.dx
            return R

        mass = ((depth(eta) - depth(eta0)) * phi + fd.dot(u - u0, psi)) / self.dt * fd.dx
        F = mass + theta * rhs(eta, u) + (1 - theta) * rhs(eta0, u0)
        self.solver = fd.NonlinearVariationalSolver(fd.NonlinearVariationalProblem(F, self.state),
                                                    solver_parameters=SWE_NEWTON_PARAMETERS)
        self._depth = depth

    @staticmethod
    def _advection(v, psi, n):
        r""":math:`((v\cdot\nabla)v, \psi)` in DG form: :math:`-(v_j, \partial_i(v_i\psi_j))`, central
        facet values and a Lax-Friedrichs jump penalty."""
        vol = -sum(v[j] * fd.div(v * psi[j]) for j in range(2)) * fd.dx
        face = sum(fd.avg(v[j]) * fd.jump(psi[j] * v, n) for j in range(2)) * fd.dS
        gamma = 0.5 * abs(fd.dot(fd.avg(v), n("+")))
        return vol + face + gamma * fd.dot(fd.jump(v), fd.jump(psi)) * fd.dS

    def update_bathymetry(self) -> None:
        """Re-evaluate the bathymetry from its source at the current coordinates."""
        self.b.interpolate(self.bathymetry_source(self.mesh))

    def set_state(self, eta, u) -> None:
        self.elevation.interpolate(eta)
        self.velocity.interpolate(u)

    def step(self) -> None:
        self.old.subfunctions[0].assign(self.elevation)
        self.old.subfunctions[1].assign(self.velocity)
        self.state.assign(self.old)
        self.solver.solve()
        self.elevation.assign(self.state.subfunctions[0])
        self.velocity.assign(self.state.subfunctions[1])

    def total_depth(self):
        """:math:`\\tilde H` of the current state (a UFL expression)."""
        return self._depth(self.elevation)
