r"""Depth-averaged shallow-water equations, DG1-DG1, with wetting and drying.

Tested: a lake at rest stays at rest (well balanced), a linear wave travels at
:math:`\sqrt{gd}`, the NTHMP run-up matches the analytic law within 5 % with wetting and
drying (:mod:`um2n_simulations.runup`), and the 2011 Tohoku case runs against 16 gauge records
(:mod:`um2n_simulations.tohoku`), both through the moving-mesh loop (:class:`ShallowWaterProblem`).

Unknowns: the elevation :math:`\eta` and the depth-averaged velocity :math:`u`, both
discontinuous P1; bathymetry :math:`b` (positive down), total depth :math:`H = \eta + b`.
Wetting and drying follow Kärnä et al. (2011): the total depth is replaced by the smooth,
always positive

.. math:: \tilde H = \tfrac12\big(H + \sqrt{H^2 + \alpha^2}\big)

(:math:`\tilde H \to H` where :math:`H \gg \alpha`, :math:`\tilde H \to 0^+` on dry land), so the
same equations hold on wet and dry elements:

.. math::

    \partial_t \tilde H + \nabla\cdot(\tilde H u) = s, \qquad
    \partial_t u + (u\cdot\nabla) u + g\nabla\eta + C_D \frac{|u|\,u}{\tilde H} = 0

(the nonlinear form; ``nonlinear=False`` drops the advection and uses the still-water depth
:math:`b` in the mass flux). :math:`s` (``solver.source``, zero unless set) is a prescribed
rate of change of the water column, the seafloor uplift rate of a rupture that lasts several
steps; it is held at its mean over each step. Fluxes on interior facets: Lax-Friedrichs for the mass flux,
:math:`\widehat{\tilde H u}\cdot n^+ = \{\tilde H u\}\cdot n^+ + \tfrac12 c\,[\![\tilde H]\!]`
(the jump of :math:`\eta` in the linear form; on dry land :math:`\tilde H \approx 0` on both
sides, whatever :math:`\eta` does there) with :math:`c = \sqrt{g\{\tilde H\}} + |\{u\}\cdot n|`
(:math:`\sqrt{gb}` when linear); the elevation flux
:math:`\eta^* = \{\eta\} + \tfrac12\sqrt{\{\tilde H\}/g}\,[\![u\cdot n]\!]` in the pressure
term; central advection with a Lax-Friedrichs jump penalty :math:`\tfrac12|\{u\}\cdot n|` for
the velocity. Boundaries are walls (:math:`u\cdot n = 0`) except ``open_boundaries``, where
the exterior state is :math:`\eta = 0, u = u` (the same fluxes). Optional: Coriolis
:math:`f\,k\times u`, a Manning drag :math:`C_D = g n^2/\tilde H^{1/3}`, and a viscosity
:math:`\nu\Delta u` by symmetric interior penalty. Time stepping: the :math:`\theta`-method
(:math:`\theta = 1/2`, Crank-Nicolson): one Newton solve (MUMPS) per step when nonlinear;
when linear, one linear solve whose matrix and LU factors are kept until the mesh moves.
Solvers are built once.
"""

from __future__ import annotations

from dataclasses import dataclass

import firedrake as fd
import ufl

from um2n.fem.monitors import MonitorConfig, SolutionMonitor

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

#: The linear equations: one linear solve per step, the LU factors kept until the mesh moves.
SWE_LINEAR_PARAMETERS = {
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
    manning: float = 0.0                  # Manning's n: C_D = g n^2 / H^(1/3) (added to drag)
    viscosity: float = 0.0                # horizontal viscosity nu (m^2/s), interior penalty
    penalise: str = "depth"               # jump penalised by the mass flux: "depth" or "elevation"
    theta: float = 0.5
    open_boundaries: tuple = ()           # boundary ids where the exterior state is eta = 0
    quadrature_degree: int | None = 4     # None: UFL's estimate (very high with wetting and drying)


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

    def __init__(self, mesh, bathymetry, dt: float, options: ShallowWaterOptions | None = None,
                 coriolis=None):
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
            c = ufl.sqrt(g * ufl.max_value(Havg, 1e-12)) + (abs(un) if o.nonlinear else 0)
            # the Lax-Friedrichs penalty acts on the jump of the conserved depth (of eta in
            # the linear form): on dry land the depth is ~0 on both sides whatever eta does
            penalised = depth(e) if o.nonlinear and o.penalise == "depth" else e
            mass_flux = fd.dot(fd.avg(Hf * v), n("+")) + 0.5 * c * fd.jump(penalised)
            R = -Hf * fd.dot(v, fd.grad(phi)) * fd.dx + mass_flux * fd.jump(phi) * fd.dS
            eta_star = fd.avg(e) + 0.5 * ufl.sqrt(ufl.max_value(Havg, 1e-12) / g) * fd.jump(v, n)
            R += (-g * e * fd.div(psi) * fd.dx + g * eta_star * fd.jump(psi, n) * fd.dS
                  + g * e * fd.dot(psi, n) * fd.ds)
            if o.nonlinear:
                R += self._advection(v, psi, n)
            if o.open_boundaries:
                # exterior state eta = 0, u = u: the Lax-Friedrichs flux of the interior facets
                Hb = flux_depth(e)
                cb = ufl.sqrt(g * ufl.max_value(Hb, 1e-12)) + (abs(fd.dot(v, n)) if o.nonlinear else 0)
                ds_open = fd.ds(tuple(o.open_boundaries))
                R += (Hb * fd.dot(v, n) + 0.5 * cb * e) * phi * ds_open
                R += -0.5 * g * e * fd.dot(psi, n) * ds_open     # eta* = eta/2 replaces the wall's eta
            if coriolis is not None:
                f = coriolis(mesh)
                R += f * (v[0] * psi[1] - v[1] * psi[0]) * fd.dx
            if o.drag > 0 or o.manning > 0:
                Hd = depth(e)
                cd = o.drag + (g * o.manning ** 2 / Hd ** (1 / 3) if o.manning > 0 else 0)
                R += cd * ufl.sqrt(fd.dot(v, v) + 1e-12) * fd.dot(v, psi) / Hd * fd.dx
            if o.viscosity > 0:
                R += self._viscosity(v, psi, n, o.viscosity)
            return R

        # a prescribed source of water depth (m/s), e.g. the seafloor uplift rate of a rupture
        # that lasts several steps: d(eta)/dt + div(H u) = s, with s the mean rate over the step
        self.source = fd.Function(P1DG, name="elevation_source")
        mass = ((depth(eta) - depth(eta0) - self.dt * self.source) * phi + fd.dot(u - u0, psi)) / self.dt * fd.dx
        F = mass + theta * rhs(eta, u) + (1 - theta) * rhs(eta0, u0)
        fcp = None if o.quadrature_degree is None else {"quadrature_degree": o.quadrature_degree}
        if o.nonlinear:
            self.solver = fd.NonlinearVariationalSolver(
                fd.NonlinearVariationalProblem(F, self.state, form_compiler_parameters=fcp),
                solver_parameters=SWE_NEWTON_PARAMETERS)
        else:
            # F is affine in the state: a(state) = -F(0), with the matrix (and its LU factors)
            # kept from step to step until the mesh moves
            a = fd.derivative(F, self.state, fd.TrialFunction(W))
            L = -ufl.replace(F, {self.state: fd.Function(W)})
            self.solver = fd.LinearVariationalSolver(
                fd.LinearVariationalProblem(a, L, self.state, constant_jacobian=True, form_compiler_parameters=fcp),
                solver_parameters=SWE_LINEAR_PARAMETERS)
        # the momentum (flux depth times velocity), the field transferred across mesh moves
        self.momentum = fd.Function(V, name="momentum")
        self._flux_depth = flux_depth
        self._depth = depth

    @staticmethod
    def _advection(v, psi, n):
        r""":math:`((v\cdot\nabla)v, \psi)` in DG form: :math:`-(v_j, \partial_i(v_i\psi_j))`, central
        facet values and a Lax-Friedrichs jump penalty."""
        vol = -sum(v[j] * fd.div(v * psi[j]) for j in range(2)) * fd.dx
        face = sum(fd.avg(v[j]) * fd.jump(psi[j] * v, n) for j in range(2)) * fd.dS
        gamma = 0.5 * abs(fd.dot(fd.avg(v), n("+")))
        return vol + face + gamma * fd.dot(fd.jump(v), fd.jump(psi)) * fd.dS

    @staticmethod
    def _viscosity(v, psi, n, nu: float, sigma: float = 10.0):
        r""":math:`(\nu\nabla v, \nabla\psi)` by symmetric interior penalty (penalty
        :math:`\sigma\nu/\{h\}`); natural (stress-free) on the boundary."""
        h = fd.avg(fd.CellDiameter(ufl.domain.extract_unique_domain(v)))
        return nu * (fd.inner(fd.grad(v), fd.grad(psi)) * fd.dx
                     - fd.inner(fd.avg(fd.grad(v)) * n("+"), fd.jump(psi)) * fd.dS
                     - fd.inner(fd.avg(fd.grad(psi)) * n("+"), fd.jump(v)) * fd.dS
                     + sigma / h * fd.inner(fd.jump(v), fd.jump(psi)) * fd.dS)

    def update_bathymetry(self) -> None:
        """Re-evaluate the bathymetry from its source at the current coordinates."""
        self.b.interpolate(self.bathymetry_source(self.mesh))

    def store_momentum(self) -> None:
        r""":math:`q = H u` (:math:`H` the flux depth: :math:`\tilde H`, or :math:`b` when linear),
        the :math:`L^2` projection onto DG1 (local, exact for the DG mass matrix)."""
        self.momentum.project(self._flux_depth(self.elevation) * self.velocity)

    def mesh_moved(self) -> None:
        r"""After a move that transferred ``elevation`` and ``momentum``: re-evaluate the
        bathymetry from its source, recover :math:`u = q/H`, refactorise the operator."""
        self.update_bathymetry()
        H = self._flux_depth(self.elevation)
        self.velocity.project(self.momentum / ufl.max_value(H, 1e-8))
        if not self.options.nonlinear:
            self.solver.invalidate_jacobian()      # a new matrix (and LU) at the next solve

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


class ShallowWaterProblem:
    r"""The moving-mesh side of a shallow-water case, shared by the tsunami simulations.

    A mixin for :class:`um2n.fem.loop.MovingMeshProblem`: call :meth:`setup_moving_mesh` once
    the solver ``self.swe`` holds the initial state. The prognostic fields are the elevation
    and the momentum :math:`q = Hu` (both transferred conservatively across moves); the
    monitor is the case's ``[monitor]`` of the P1 projection of the elevation
    (:class:`um2n.fem.monitors.SolutionMonitor`); after a move the bathymetry is re-evaluated
    from its source and :math:`u = q/H` recovered (:meth:`ShallowWaterSolver.mesh_moved`).
    """

    swe: ShallowWaterSolver

    def setup_moving_mesh(self, mesh, monitor: MonitorConfig) -> None:
        self.swe.store_momentum()
        self._momentum_stale = False
        self._monitor = SolutionMonitor(mesh, self.swe.elevation, monitor, name="elevation_P1")

    def fields(self) -> dict:
        return {"elevation": self.swe.elevation, "momentum": self.swe.momentum}

    def step(self, t: float) -> None:
        self.swe.step()
        self._momentum_stale = True

    def sync_fields(self) -> None:
        """The momentum from the state advanced since the last move, before a transfer or a
        checkpoint (only then: the projection costs half a linear Tohoku step). Right after a
        move the transferred momentum is kept: the velocity was recovered from it, and a
        projection round trip would change what a resumed run starts from."""
        if self._momentum_stale:
            self.swe.store_momentum()
            self._momentum_stale = False

    def monitor(self) -> fd.Function:
        return self._monitor()

    def mesh_moved(self) -> None:
        self.swe.mesh_moved()
        self._momentum_stale = False          # the momentum is the transferred one
        self._monitor.mesh_moved()

    def output_functions(self) -> list:
        return [self.swe.elevation]
