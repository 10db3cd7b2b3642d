r"""Depth-averaged shallow-water equations, DG1-DG1, with wetting and drying, on a static or
moving (ALE) mesh.

Tested: a lake at rest stays at rest (well balanced), a linear wave travels at
:math:`\sqrt{gd}`, a constant state stays constant and the water volume is kept to round-off
on a moving mesh, a standing wave converges at second order on a moving mesh, the NTHMP
run-up matches the analytic law within 5 % with wetting and drying
(:mod:`um2n_simulations.runup`), and the 2011 Tohoku case runs against 16 gauge records
(:mod:`um2n_simulations.tohoku`), both through the moving-mesh loop (:class:`ShallowWaterProblem`).

Unknowns: the elevation :math:`\eta` and the depth-averaged velocity :math:`u`, both
discontinuous P1; bathymetry :math:`b` (positive down, continuous P1), total depth
:math:`H = \eta + b`. Wetting and drying follow Kärnä et al. (2011): the total depth is
replaced by the smooth, always positive

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
when linear, one linear solve whose matrix and LU factors are kept while the mesh stands still.

**ALE form** (while the mesh moves with the velocity :math:`w` of
:class:`um2n.fem.ale.MeshMotion`, continuous P1, constant in time over a window). The test
functions move with the mesh. With :math:`D` the transported water quantity,
:math:`D = \eta` (linear, and nonlinear without wetting and drying: at a fixed point
:math:`\partial_t H = \partial_t\eta`) or :math:`D = \tilde H(\eta, b)` (wetting and drying),

.. math::

    \frac{d}{dt}\int_{K(t)} D\,\phi\,dx = \int_{K(t)} (\tilde H u - D w)\cdot\nabla\phi\,dx
    - \int_{\partial K(t)} \widehat{(\tilde H u - D w)\cdot n}\,\phi\,ds + \int_{K(t)} s\,\phi\,dx,

    \partial_t u\big|_{\text{mesh}} + ((u - w)\cdot\nabla) u + g\nabla\eta + \dots = 0

(linear: the advection is :math:`-(w\cdot\nabla) u`, still linear in the state). The
:math:`Dw` flux is upwinded with respect to :math:`-w` on interior facets,
:math:`\{D\}(-w\cdot n^+) + \tfrac12|w\cdot n^+|\,[\![D]\!]`, and takes the interior value on
the boundary (where :math:`w\cdot n = 0` on straight walls); the advection by :math:`u - w`
is the DG form above with the transport velocity :math:`u - w` and, for its :math:`-w` part,
the boundary term of the integration by parts. The whole :math:`\theta`-step is assembled on
the *midpoint geometry* :math:`K^{n+1/2}` (:meth:`MeshMotion.place(0.5)`); the cell
integrals at the old and new geometry are mapped onto it exactly, since for linear motion of
affine cells :math:`\partial x(t^{n+1/2} \pm \Delta t/2)/\partial x^{n+1/2} = I \pm \tfrac{\Delta t}{2}\nabla w`
(:math:`\nabla w` cellwise constant):

.. math::

    \int_{K^{n+1/2}} \frac{J_+ D^{n+1} - J_- D^n}{\Delta t}\,\phi\,dx
    + \theta\,R(\eta^{n+1}, u^{n+1}) + (1 - \theta)\,R(\eta^n, u^n) = \int_{K^{n+1/2}} s\,\phi\,dx,
    \qquad J_\pm = \det\big(I \pm \tfrac{\Delta t}{2}\nabla w\big),

with :math:`R` the spatial terms, the ALE ones included, and the plain mass matrix of
:math:`K^{n+1/2}` for the velocity (non-conservative form). In two dimensions
:math:`J_+ - J_- = \Delta t\,\nabla\cdot w` exactly, which is the discrete geometric
conservation law: a constant state (flat bottom, :math:`u = 0`) stays constant to
round-off on a moving mesh, for any :math:`\theta`. Summing over the test functions
:math:`\phi = 1`, the fluxes cancel, so the water quantity :math:`\int_\Omega D\,dx` on the
current mesh is kept to round-off, up to the source and the open boundaries: :math:`\int\eta`,
or, with wetting and drying, :math:`\int\tilde H(\eta, b_h)` with :math:`b_h` the bathymetry at
the current vertex positions (the volume that :mod:`um2n_simulations.runup` records).

The bathymetry moves with the vertices and is never transferred: it is sampled from its
source at the window's start and target positions (once per window: the start is the
previous target) and interpolated linearly in time per vertex in between, :math:`b^n` and
:math:`b^{n+1}` entering the old and new halves of the step (the mass term and
:math:`R`). The Coriolis parameter is re-evaluated at the midpoint geometry of each step
(it is cheap: a formula of the vertex coordinates). With :math:`w = 0` the forms are the
static ones, which are used (with their kept LU factors, when linear) while the mesh stands
still.

**Linear solves while the mesh moves.** The operator changes every step, so the LU factors
of the static mesh cannot be kept. ``ale_linear_solver`` chooses among: ``"matfree-ilu"``
(the default, :data:`SWE_ALE_MATFREE_ILU_PARAMETERS`): GMRES on the operator applied
matrix-free (each iteration assembles its action on the current geometry, so the operator is
never assembled as a matrix), preconditioned by ILU(0) of the operator assembled at the first
step of each window and kept over the window; ``"ilu"`` (:data:`SWE_ALE_ILU_PARAMETERS`): GMRES
preconditioned by ILU(0) of the current operator, assembled and factorised every step;
``"lagged"`` (:data:`SWE_ALE_LAGGED_LU_PARAMETERS`): GMRES
preconditioned by the MUMPS LU factors of the operator of the first step of each window,
reused over the window (PETSc keeps a preconditioner while its matrix is unchanged), so its
iterations grow with the distance from that step; ``"refactorise"``: a new LU every step.
The Krylov solves start from the old state and stop at a relative residual of
:math:`10^{-10}`; the water volume is then kept to that residual rather than to round-off
(``ale_linear_parameters`` overrides the tolerances).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import firedrake as fd
from firedrake.assemble import get_assembler
import numpy as np
import ufl
from mpi4py import MPI

from um2n.fem.ale import MeshMotion
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

#: The linear equations: one linear solve per step, the LU factors kept while the mesh stands
#: still (and, under ALE with ``ale_linear_solver = "refactorise"``, a new LU every step).
SWE_LINEAR_PARAMETERS = {
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
    "mat_type": "aij",
}

#: The linear equations while the mesh moves, ``ale_linear_solver = "lagged"``: GMRES on the
#: current operator, preconditioned by the LU factors of the operator of the window's first
#: step (kept over the window); right preconditioning, so that the tolerance bounds the true
#: residual (relative to the residual of the old state, the initial guess).
SWE_ALE_LAGGED_LU_PARAMETERS = {
    "ksp_type": "gmres",
    "ksp_pc_side": "right",
    "ksp_rtol": 1e-10,
    "ksp_atol": 1e-50,
    "ksp_max_it": 200,
    "ksp_gmres_restart": 200,
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
    "mat_type": "aij",
}

#: ``ale_linear_solver = "ilu"``: GMRES preconditioned by ILU(0) of the current operator,
#: rebuilt every step (cheap: no fill); the same tolerances as the lagged LU. Block Jacobi
#: with one block per rank: on one rank that block is the whole operator, under MPI each
#: rank factorises its own diagonal block.
SWE_ALE_ILU_PARAMETERS = {
    "ksp_type": "gmres",
    "ksp_pc_side": "right",
    "ksp_rtol": 1e-10,
    "ksp_atol": 1e-50,
    "ksp_max_it": 500,
    "ksp_gmres_restart": 200,
    "pc_type": "bjacobi",
    "sub_pc_type": "ilu",
    "mat_type": "aij",
}

#: ``ale_linear_solver = "matfree-ilu"``: GMRES on the operator applied matrix-free (its action
#: assembled on the current geometry at every iteration, so the operator is never assembled),
#: preconditioned by ILU(0) of the operator assembled at the window's first step (kept over
#: the window, as the lagged LU is); the same tolerances.
SWE_ALE_MATFREE_ILU_PARAMETERS = {**SWE_ALE_ILU_PARAMETERS, "mat_type": "matfree", "pmat_type": "aij"}

#: the choices of ``ale_linear_solver`` and their parameters
ALE_LINEAR_SOLVERS = {"lagged": SWE_ALE_LAGGED_LU_PARAMETERS, "refactorise": SWE_LINEAR_PARAMETERS,
                      "ilu": SWE_ALE_ILU_PARAMETERS, "matfree-ilu": SWE_ALE_MATFREE_ILU_PARAMETERS}
#: the solvers whose preconditioning matrix is assembled at a window's first step only
LAGGED_PRECONDITIONERS = ("lagged", "matfree-ilu")


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
    ale_linear_solver: str = "matfree-ilu"   # linear, mesh moving: a key of ALE_LINEAR_SOLVERS
    newton_parameters: dict = field(default_factory=dict)   # overrides of SWE_NEWTON_PARAMETERS
    ale_linear_parameters: dict = field(default_factory=dict)   # overrides of ALE_LINEAR_SOLVERS[...]

    def __post_init__(self):
        if self.ale_linear_solver not in ALE_LINEAR_SOLVERS:
            raise ValueError(f"ale_linear_solver must be one of {', '.join(ALE_LINEAR_SOLVERS)}, "
                             f"not {self.ale_linear_solver!r}")


class _MovingLinearSolver:
    """The linear theta-step while the mesh moves: the operator ``A`` changes every step.

    ``"lagged"``: GMRES on ``A`` (reassembled every step), preconditioned by the LU factors of
    a second matrix ``P`` that is reassembled (and so refactorised) only at the first step of
    each window: PETSc keeps a preconditioner while its matrix is unchanged. ``"refactorise"``:
    a new LU of ``A`` every step. ``"ilu"``: GMRES with ILU(0) of ``A``, reassembled every
    step. ``"matfree-ilu"``: GMRES on ``A`` applied matrix-free (never assembled), with ILU(0)
    of ``P`` kept over the window as for ``"lagged"``. The initial guess is the state on entry
    (the old state), so a Krylov tolerance is relative to its residual.
    """

    def __init__(self, a, L, state: fd.Function, fcp: dict | None, kind: str, overrides: dict):
        self.a, self.L, self.state, self.fcp, self.kind = a, L, state, fcp, kind
        self.matfree = kind == "matfree-ilu"
        self.A = fd.assemble(a, mat_type="matfree" if self.matfree else "aij", form_compiler_parameters=fcp)
        self.P = (fd.assemble(a, mat_type="aij", form_compiler_parameters=fcp) if kind in LAGGED_PRECONDITIONERS
                  else None)
        self.rhs = fd.Cofunction(state.function_space().dual())
        self.solver = fd.LinearSolver(self.A, P=self.P,
                                      solver_parameters={**ALE_LINEAR_SOLVERS[kind], **overrides})
        # assemblers built once: each step then runs the compiled kernels, not the form processing
        self._assemble_a = get_assembler(a, mat_type="aij", form_compiler_parameters=fcp)
        self._assemble_L = get_assembler(L, form_compiler_parameters=fcp)
        self._fresh = True          # A (and P) were just assembled

    def solve(self, new_window: bool) -> int:
        """Assemble and solve on the current geometry and data; the Krylov iterations taken."""
        if not self._fresh:
            if not self.matfree:                  # (a matrix-free action reads the geometry as it is)
                self._assemble_a.assemble(tensor=self.A)
            if self.P is not None and new_window:
                self._assemble_a.assemble(tensor=self.P)
        self._fresh = False
        self._assemble_L.assemble(tensor=self.rhs)
        self.solver.solve(self.state, self.rhs)
        return self.solver.ksp.getIterationNumber()


def _equal_on_every_rank(a: np.ndarray, b: np.ndarray, comm) -> bool:
    """Whether the arrays of every rank are equal (a collective decision: every rank takes the
    same branch, and so calls the same collective operations after it)."""
    return bool(comm.allreduce(a.shape == b.shape and np.array_equal(a, b), op=MPI.LAND))


class ShallowWaterSolver:
    """One time step of the DG1-DG1 shallow-water equations (see the module docstring).

    Parameters
    ----------
    mesh : the (possibly moving) mesh
    bathymetry : callable ``bathymetry(mesh) -> UFL expression`` (metres, positive down),
        evaluated from its source on the current coordinates (never transferred)
    dt : time step
    options : :class:`ShallowWaterOptions`
    coriolis : callable ``coriolis(mesh) -> UFL expression``, the Coriolis parameter
        :math:`f` (1/s), interpolated into P1 on the current coordinates; ``None``: no Coriolis
    motion : the :class:`~um2n.fem.ale.MeshMotion` of ``mesh``; while it is active, :meth:`step`
        is taken in ALE form (module docstring) and leaves the mesh at the end of the step.
        ``None``: a static mesh (or one moved by jumps, :meth:`mesh_moved`).
    """

    def __init__(self, mesh, bathymetry: Callable, dt: float, options: ShallowWaterOptions | None = None,
                 coriolis: Callable | None = None, motion: MeshMotion | None = None):
        self.mesh = mesh
        self.motion = motion
        self.options = o = options or ShallowWaterOptions()
        self.bathymetry_source = bathymetry
        P1DG = fd.FunctionSpace(mesh, "DG", 1)
        V = fd.VectorFunctionSpace(mesh, "DG", 1)
        P1 = fd.FunctionSpace(mesh, "CG", 1)
        self.W = W = P1DG * V
        #: the bathymetry at the current vertex positions (under ALE: at the end of the step)
        self.b = fd.Function(P1, name="bathymetry")
        #: under ALE, the bathymetry at the start of the step
        self.b_old = fd.Function(P1, name="bathymetry_old")
        self.update_bathymetry()
        self._coriolis = coriolis
        self.f = None if coriolis is None else fd.Function(P1, name="coriolis")
        self._update_coriolis()
        self.state = fd.Function(W)
        self.old = fd.Function(W)
        self.elevation = fd.Function(P1DG, name="elevation")
        self.velocity = fd.Function(V, name="velocity")
        self.dt = fd.Constant(dt)
        # a prescribed source of water depth (m/s), e.g. the seafloor uplift rate of a rupture
        # that lasts several steps: d(eta)/dt + div(H u) = s, with s the mean rate over the step
        self.source = fd.Function(P1DG, name="elevation_source")
        self._g = fd.Constant(o.g)
        self._alpha = fd.Constant(o.wetting_drying_alpha)
        self._fcp = None if o.quadrature_degree is None else {"quadrature_degree": o.quadrature_degree}
        self.solver = self._build_solver(ale=False)
        self._ale_solver = None               # built at the first step on a moving mesh
        # the momentum (flux depth times velocity), the field transferred across mesh jumps
        self.momentum = fd.Function(V, name="momentum")
        self._static_coordinates = np.array(mesh.coordinates.dat.data_ro)
        self._window = None                   # the target array of the window the bathymetry samples are for
        self._b_samples: list[tuple[np.ndarray, np.ndarray]] = []      # (coordinates, b) of that window
        self._new_window = False
        #: the number of linear (GMRES) iterations of the last ALE step (linear solver only)
        self.last_iterations = 0

    # ------------------------------------------------------------------ the equations
    def depth(self, e, b):
        r"""The total depth :math:`\tilde H(e, b)` (:math:`e + b` without wetting and drying)."""
        H = e + b
        if self.options.wetting_drying_alpha > 0:
            return 0.5 * (H + ufl.sqrt(H ** 2 + self._alpha ** 2))
        return H

    def _flux_depth_of(self, e, b):
        return self.depth(e, b) if self.options.nonlinear else b

    def _transported(self, e, b):
        """The water quantity D of the ALE mass term: the depth with wetting and drying, else eta."""
        return self.depth(e, b) if self.options.wetting_drying_alpha > 0 else e

    def _rhs(self, e, v, b, phi, psi, n, w=None):
        """The spatial terms R(e, v; phi, psi) with d/dt(mass) + R = 0 on the bathymetry ``b``;
        with the mesh velocity ``w``, the ALE terms too (module docstring)."""
        o, g = self.options, self._g
        Hf = self._flux_depth_of(e, b)
        Havg = fd.avg(Hf)
        un = fd.dot(fd.avg(v), n("+"))
        c = ufl.sqrt(g * ufl.max_value(Havg, 1e-12)) + (abs(un) if o.nonlinear else 0)
        # the Lax-Friedrichs penalty acts on the jump of the conserved depth (of eta in
        # the linear form): on dry land the depth is ~0 on both sides whatever eta does
        penalised = self.depth(e, b) if o.nonlinear and o.penalise == "depth" else e
        mass_flux = fd.dot(fd.avg(Hf * v), n("+")) + 0.5 * c * fd.jump(penalised)
        R = -Hf * fd.dot(v, fd.grad(phi)) * fd.dx + mass_flux * fd.jump(phi) * fd.dS
        eta_star = fd.avg(e) + 0.5 * ufl.sqrt(ufl.max_value(Havg, 1e-12) / g) * fd.jump(v, n)
        R += (-g * e * fd.div(psi) * fd.dx + g * eta_star * fd.jump(psi, n) * fd.dS
              + g * e * fd.dot(psi, n) * fd.ds)
        if o.nonlinear:
            R += self._advection(v, v if w is None else v - w, psi, n)
        elif w is not None:
            R += self._advection(v, -w, psi, n)
        if w is not None:
            # the flux -D w of the transported water quantity: upwind for -w inside, the
            # interior value on the boundary; the boundary term of the -w advection
            D = self._transported(e, b)
            wn = fd.dot(w("+"), n("+"))
            R += (D * fd.dot(w, fd.grad(phi)) * fd.dx
                  + (-wn * fd.avg(D) + 0.5 * abs(wn) * fd.jump(D)) * fd.jump(phi) * fd.dS
                  - D * fd.dot(w, n) * phi * fd.ds
                  - fd.dot(w, n) * fd.dot(v, psi) * fd.ds)
        if o.open_boundaries:
            # exterior state eta = 0, u = u: the Lax-Friedrichs flux of the interior facets
            Hb = Hf
            cb = ufl.sqrt(g * ufl.max_value(Hb, 1e-12)) + (abs(fd.dot(v, n)) if o.nonlinear else 0)
            ds_open = fd.ds(tuple(o.open_boundaries))
            R += (Hb * fd.dot(v, n) + 0.5 * cb * e) * phi * ds_open
            R += -0.5 * g * e * fd.dot(psi, n) * ds_open     # eta* = eta/2 replaces the wall's eta
        if self.f is not None:
            R += self.f * (v[0] * psi[1] - v[1] * psi[0]) * fd.dx
        if o.drag > 0 or o.manning > 0:
            Hd = self.depth(e, b)
            cd = o.drag + (g * o.manning ** 2 / Hd ** (1 / 3) if o.manning > 0 else 0)
            R += cd * ufl.sqrt(fd.dot(v, v) + 1e-12) * fd.dot(v, psi) / Hd * fd.dx
        if o.viscosity > 0:
            R += self._viscosity(v, psi, n, o.viscosity)
        return R

    def _residual(self, ale: bool):
        """The residual form of one theta-step: static, or in ALE form on the midpoint geometry."""
        phi, psi = fd.TestFunctions(self.W)
        eta, u = fd.split(self.state)
        eta0, u0 = fd.split(self.old)
        n = fd.FacetNormal(self.mesh)
        theta, dt = fd.Constant(self.options.theta), self.dt
        if not ale:
            b = self.b
            mass = ((self.depth(eta, b) - self.depth(eta0, b) - dt * self.source) * phi
                    + fd.dot(u - u0, psi)) / dt * fd.dx
            return mass + theta * self._rhs(eta, u, b, phi, psi, n) + (1 - theta) * self._rhs(eta0, u0, b, phi, psi, n)
        w = self.motion.velocity
        grad_w = fd.grad(w)
        I = ufl.Identity(2)
        J_new, J_old = ufl.det(I + 0.5 * dt * grad_w), ufl.det(I - 0.5 * dt * grad_w)
        b1, b0 = self.b, self.b_old
        mass = ((J_new * self._transported(eta, b1) - J_old * self._transported(eta0, b0) - dt * self.source) * phi
                + fd.dot(u - u0, psi)) / dt * fd.dx
        return (mass + theta * self._rhs(eta, u, b1, phi, psi, n, w)
                + (1 - theta) * self._rhs(eta0, u0, b0, phi, psi, n, w))

    def _build_solver(self, ale: bool):
        F = self._residual(ale)
        if self.options.nonlinear:
            return fd.NonlinearVariationalSolver(
                fd.NonlinearVariationalProblem(F, self.state, form_compiler_parameters=self._fcp),
                solver_parameters={**SWE_NEWTON_PARAMETERS, **self.options.newton_parameters})
        # F is affine in the state: a(state) = -F(0)
        W = self.W
        a = fd.derivative(F, self.state, fd.TrialFunction(W))
        L = -ufl.replace(F, {self.state: fd.Function(W)})
        if not ale:
            # on a static mesh the matrix (and its LU factors) is kept from step to step
            return fd.LinearVariationalSolver(
                fd.LinearVariationalProblem(a, L, self.state, constant_jacobian=True,
                                            form_compiler_parameters=self._fcp),
                solver_parameters=SWE_LINEAR_PARAMETERS)
        return _MovingLinearSolver(a, L, self.state, self._fcp, self.options.ale_linear_solver,
                                   self.options.ale_linear_parameters)

    @staticmethod
    def _advection(v, a, psi, n):
        r""":math:`((a\cdot\nabla)v, \psi)` in DG form: :math:`-(v_j, \nabla\cdot(a\,\psi_j))`,
        central facet values and a Lax-Friedrichs jump penalty :math:`\tfrac12|\{a\}\cdot n|`
        (no boundary term: :math:`a\cdot n = 0` on walls)."""
        vol = -sum(v[j] * fd.div(a * psi[j]) for j in range(2)) * fd.dx
        face = sum(fd.avg(v[j]) * fd.jump(psi[j] * a, n) for j in range(2)) * fd.dS
        gamma = 0.5 * abs(fd.dot(fd.avg(a), n("+")))
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

    # ------------------------------------------------------------------ data on the geometry
    def update_bathymetry(self) -> None:
        """Re-evaluate the bathymetry from its source at the current coordinates."""
        self.b.interpolate(self.bathymetry_source(self.mesh))
        self.b_old.assign(self.b)

    def _sample_bathymetry(self, coordinates: np.ndarray) -> np.ndarray:
        """The bathymetry's vertex values with the vertices at ``coordinates`` (the mesh is put back)."""
        for X, values in self._b_samples:
            if _equal_on_every_rank(X, coordinates, self.mesh.comm):
                return values
        dat = self.mesh.coordinates.dat
        here = np.array(dat.data_ro_with_halos)
        dat.data_with_halos[:] = coordinates
        try:
            values = np.array(fd.Function(self.b.function_space()).interpolate(
                self.bathymetry_source(self.mesh)).dat.data_ro)
        finally:
            dat.data_with_halos[:] = here
        return values

    def _update_coriolis(self) -> None:
        if self.f is not None:
            f = self._coriolis(self.mesh)
            if isinstance(f, fd.Function) and f.function_space() == self.f.function_space():
                self.f.assign(f)
            else:
                self.f.interpolate(f)

    @property
    def bathymetry_mid(self):
        """The bathymetry at the midpoint of the current step (a UFL expression)."""
        return 0.5 * (self.b + self.b_old)

    def geometry_changed(self) -> None:
        r"""The mesh was moved to where it is by something else than the motion (a restart):
        re-evaluate the bathymetry and the Coriolis parameter there, refactorise when the mesh
        next stands still, and sample the bathymetry afresh for the next window."""
        self.update_bathymetry()
        self._update_coriolis()
        self._static_coordinates = np.array(self.mesh.coordinates.dat.data_ro)
        if not self.options.nonlinear:
            self.solver.invalidate_jacobian()
        self._window, self._b_samples = None, []

    # ------------------------------------------------------------------ jumps (remap)
    def store_momentum(self) -> None:
        r""":math:`q = H u` (:math:`H` the flux depth: :math:`\tilde H`, or :math:`b` when linear),
        the :math:`L^2` projection onto DG1 (local, exact for the DG mass matrix)."""
        self.momentum.project(self._flux_depth_of(self.elevation, self.b) * self.velocity)

    def mesh_moved(self) -> None:
        r"""After a jump that transferred ``elevation`` and ``momentum``: re-evaluate the
        bathymetry (and the Coriolis parameter) from its source, recover :math:`u = q/H`,
        refactorise the operator."""
        self.geometry_changed()
        H = self._flux_depth_of(self.elevation, self.b)
        self.velocity.project(self.momentum / ufl.max_value(H, 1e-8))

    # ------------------------------------------------------------------ stepping
    def set_state(self, eta, u) -> None:
        self.elevation.interpolate(eta)
        self.velocity.interpolate(u)

    @property
    def moving(self) -> bool:
        """Whether the mesh moves during the current step."""
        return self.motion is not None and self.motion.active

    def prepare_step(self) -> None:
        r"""Put the mesh and the data where the step is assembled: on a moving mesh, the
        bathymetry at the step's start and end (:math:`b^n`, :math:`b^{n+1}`, from the window's
        samples) and the midpoint geometry (with its Coriolis parameter); on a still mesh that
        moved since the last static step, the bathymetry and Coriolis parameter there and a new
        LU. Call before setting a geometry-dependent :attr:`source`; :meth:`step` calls it."""
        if self.moving:
            m = self.motion
            if self._window is not m.target:                      # a new window (or a resumed one)
                b0 = self._sample_bathymetry(m.start_coordinates)
                b1 = self._sample_bathymetry(m.target)
                self._window = m.target
                self._b_samples = [(m.start_coordinates, b0), (m.target, b1)]
                self._new_window = True
            (_, b0), (_, b1) = self._b_samples
            s0, s1 = m.done / m.steps, (m.done + 1) / m.steps
            self.b_old.dat.data[:] = b0 + s0 * (b1 - b0)
            self.b.dat.data[:] = b0 + s1 * (b1 - b0)
            m.place(0.5)
            self._update_coriolis()
            return
        X = self.mesh.coordinates.dat.data_ro
        if not _equal_on_every_rank(X, self._static_coordinates, self.mesh.comm):   # moved (ALE) since
            self._static_coordinates = np.array(X)
            self._update_coriolis()
            self.b_old.assign(self.b)
            if not self.options.nonlinear:
                self.solver.invalidate_jacobian()

    def solve_step(self) -> None:
        """The theta-step from the current state (after :meth:`prepare_step`); on a moving mesh,
        assembled on the midpoint geometry, and the mesh left at the end of the step."""
        self.old.subfunctions[0].assign(self.elevation)
        self.old.subfunctions[1].assign(self.velocity)
        self.state.assign(self.old)
        if self.moving:
            if self._ale_solver is None:
                self._ale_solver = self._build_solver(ale=True)
            solver = self._ale_solver
            if self.options.nonlinear:
                solver.solve()
            else:
                self.last_iterations = solver.solve(new_window=self._new_window)
            self._new_window = False
            self.motion.place(1.0)
        else:
            self.solver.solve()
        self.elevation.assign(self.state.subfunctions[0])
        self.velocity.assign(self.state.subfunctions[1])

    def step(self) -> None:
        """One time step (:meth:`prepare_step`, then :meth:`solve_step`)."""
        self.prepare_step()
        self.solve_step()

    def total_depth(self):
        """:math:`\\tilde H` of the current state (a UFL expression)."""
        return self.depth(self.elevation, self.b)

    def water_volume(self) -> float:
        r"""The water quantity the ALE step keeps, :math:`\int_\Omega D\,dx` on the current mesh
        (:math:`\int\tilde H` with wetting and drying, else :math:`\int\eta`), integrated with the
        solver's quadrature, in which it is kept to round-off."""
        dx = fd.dx if self._fcp is None else fd.dx(degree=self.options.quadrature_degree)
        return float(fd.assemble(self._transported(self.elevation, self.b) * dx))


class ShallowWaterProblem:
    r"""The moving-mesh side of a shallow-water case, shared by the tsunami simulations.

    A mixin for :class:`um2n.fem.loop.MovingMeshProblem` whose solver ``self.swe`` is built
    with ``motion=self.motion``: call :meth:`setup_moving_mesh` once the solver holds the
    initial state. The solver is in ALE form (:attr:`supports_ale`): with the loop's
    ``transfer = "ale"`` the prognostic fields are the elevation and the velocity (the state
    itself: nothing is remapped, and a checkpoint holds exactly the state); with a remap
    (``"conservative"``, ``"interpolate"``) they are the elevation and the momentum
    :math:`q = Hu`, transferred across each jump, after which the bathymetry is re-evaluated
    from its source and :math:`u = q/H` recovered (:meth:`ShallowWaterSolver.mesh_moved`).
    The monitor is the case's ``[monitor]`` of the P1 projection of the elevation
    (:class:`um2n.fem.monitors.SolutionMonitor`).
    """

    swe: ShallowWaterSolver
    supports_ale = True

    def setup_moving_mesh(self, mesh, monitor: MonitorConfig, transfer: str = "ale") -> None:
        self._remap = transfer != "ale"
        if self._remap:
            self.swe.store_momentum()
        self._momentum_stale = False
        self._monitor = SolutionMonitor(mesh, self.swe.elevation, monitor, name="elevation_P1")

    def fields(self) -> dict:
        if self._remap:
            return {"elevation": self.swe.elevation, "momentum": self.swe.momentum}
        return {"elevation": self.swe.elevation, "velocity": self.swe.velocity}

    def update_source(self, t: float) -> None:
        """Set ``self.swe.source`` for the step from ``t`` (called on the step's geometry); by
        default nothing."""

    def step(self, t: float) -> None:
        self.swe.prepare_step()
        self.update_source(t)
        self.swe.solve_step()
        self._momentum_stale = self._remap

    def sync_fields(self) -> None:
        """With a remap: the momentum from the state advanced since the last move, before a
        transfer or a checkpoint (only then: the projection costs half a linear Tohoku step).
        Right after a move the transferred momentum is kept: the velocity was recovered from
        it, and a projection round trip would change what a resumed run starts from."""
        if self._momentum_stale:
            self.swe.store_momentum()
            self._momentum_stale = False

    def monitor(self) -> fd.Function:
        return self._monitor()

    def mesh_moved(self) -> None:
        """After a jump (remap), or a restart that put the mesh where it was saved."""
        if self._remap:
            self.swe.mesh_moved()
        else:
            self.swe.geometry_changed()
        self._momentum_stale = False          # the momentum is the transferred one
        self._monitor.mesh_moved()

    def output_functions(self) -> list:
        return [self.swe.elevation]
