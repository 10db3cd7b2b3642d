r"""DG1 upwind advection of a tracer on a moving mesh (ALE), with SSPRK3, in 2D and 3D.

.. math:: \partial_t q + \mathbf{u}\cdot\nabla q = 0,

for a divergence-free velocity :math:`\mathbf{u} = a(t)\,\mathbf{v}(x)` tangential on the
boundary (no inflow), given by a case (:mod:`um2n_simulations.swirl`,
:mod:`um2n_simulations.deformation`) through :meth:`ALEAdvectionProblem.velocity`,
:meth:`~ALEAdvectionProblem.velocity_scale` and :meth:`~ALEAdvectionProblem.exact`.

**ALE form.** The mesh moves with the continuous, piecewise linear velocity :math:`w`
(:mod:`um2n.fem.ale`; zero on a static mesh), the test functions move with it, and

.. math:: \frac{d}{dt}(q, \phi)_{\Omega(t)} = (q, \nabla\cdot(\phi\mathbf{u}))
          - (q, w\cdot\nabla\phi)
          - \langle [\![\phi]\!], \hat q\,(\mathbf{u} - w)\cdot n \rangle_{\mathcal{F}_i}
          - \langle \phi, \max((\mathbf{u} - w)\cdot n, 0)\, q \rangle_{\partial\Omega}
          =: R(q)_\phi,

upwind :math:`\hat q` with respect to the relative velocity :math:`\mathbf{u} - w`. Time
stepping: SSPRK3 on the moments :math:`U = M(t)\,q` in Butcher form,
:math:`M(t_n + c_i\Delta t)\,Y_i = U^n + \Delta t\sum_j a_{ij} R_j` and
:math:`U^{n+1} = U^n + \Delta t\sum_j b_j R_j`, with :math:`c = (0, 1, \tfrac12)`,
:math:`a_{21} = 1`, :math:`a_{31} = a_{32} = \tfrac14`, :math:`b = (\tfrac16, \tfrac16, \tfrac23)`.
Stage :math:`j`'s velocity is :math:`a(t_n + c_j\Delta t)\,\mathbf{v}` (:meth:`~ALEAdvectionProblem.velocity_scale`).

**Mass.** :math:`\sum_\phi R(q)_\phi = (q, \nabla\cdot\mathbf{u})` plus boundary outflow,
zero for a divergence-free :math:`\mathbf{u}` tangential on the boundary, so the tracer
mass :math:`(q, 1)_{\Omega(t)}` is kept to round-off on any moving mesh, in 2D and 3D.

**DGCL.** For a constant :math:`q = c`, :math:`R(c)_\phi = c\,(\phi, \nabla\cdot w)`, the rate of
change of :math:`c\,(1, \phi)_{\Omega(t)}`. Under linear motion of affine triangles
:math:`(1, \phi)_{\Omega(t)}` is quadratic in :math:`t`, its rate linear, so a stage reproduces
it exactly when its operators are evaluated on geometries at fractions :math:`\tau_j` of the step
with :math:`\sum_j a_{ij}\tau_j = c_i^2/2` and :math:`\sum_j b_j\tau_j = \tfrac12`:
:math:`\tau = (\tfrac12, 0, \tfrac58)`. A constant state then stays constant to round-off on any
moving 2D mesh. The geometry times differ from the velocity's stage times by
:math:`O(\Delta t)`, which leaves the moving-mesh scheme second order in time (the order of
DG1 in space). A tetrahedron's volume under linear motion is a cubic in :math:`t`: the same
rule integrates the linear part of its rate exactly and leaves, per step, a relative defect
of the order of the cube of the mesh's relative deformation in one step
(:math:`(\Delta t\,|\nabla w|)^3`, at most the cube of the mesh Courant number); a constant
state is then kept to that order, not to round-off (exact rules need two geometries per stage).

Each stage solves with the DG mass matrix (block Jacobi + ILU: exact for the block-diagonal
DG mass). The P1 mass block of an affine cell is its measure (area or volume) times a fixed
matrix, so the matrix is assembled once and, on a moving mesh, each cell's solution is
rescaled by the ratio of its measures: no reassembly while the mesh moves. With ``transfer =
"conservative"`` (2D) the mesh jumps instead and :math:`q` follows by the supermesh
:math:`L^2` projection (:mod:`um2n.fem.transfer`).
"""

from __future__ import annotations

import math

import firedrake as fd
from firedrake.assemble import get_assembler
import numpy as np
from mpi4py import MPI

from um2n.errors import UM2NError

from um2n.fem.adapter import vertex_count
from um2n.fem.loop import MovingMeshProblem
from um2n.fem.monitors import MonitorConfig, SolutionMonitor
from um2n.fem.study import Case, Variant
from um2n.mesh import signed_measures

#: DG mass matrix: block diagonal, so one block-Jacobi/ILU application is an exact solve.
DG_MASS_SOLVER_PARAMETERS = {"ksp_type": "preonly", "pc_type": "bjacobi", "sub_pc_type": "ilu"}


class ALEAdvectionProblem(MovingMeshProblem):
    """DG1 upwind + SSPRK3 for :math:`\\partial_t q + a(t)\\,\\mathbf{v}\\cdot\\nabla q = 0` in
    ALE form (see the module docstring). A case gives :meth:`velocity`,
    :meth:`velocity_scale` and :meth:`exact`.

    Parameters
    ----------
    mesh : a triangle or tetrahedral Firedrake mesh
    dt, T : the time step and the final time
    monitor : the monitor of the P1 projection of :math:`q`
    """

    supports_ale = True
    has_initial_state = True
    #: SSPRK3 in Butcher form: stage times c, the stage rows of A, the weights b
    C = (0.0, 1.0, 0.5)
    A = ((), (1.0,), (0.25, 0.25))
    B = (1 / 6, 1 / 6, 2 / 3)
    #: the fractions of the step at whose geometry each stage's operator is assembled: the
    #: one choice with sum_j A_ij TAU_j = C_i^2 / 2 and sum_j B_j TAU_j = 1/2, so that every
    #: stage integrates the (linear in t, in 2D) rate of change of the cell integrals exactly (DGCL)
    TAU = (0.5, 0.0, 0.625)
    #: a solution this many times larger than the initial state's maximum has blown up (the
    #: exact solution keeps the maximum; DG1 overshoots by a few per cent)
    BLOW_UP = 100.0
    #: the quadrature degree of the spatial operator (``None``: UFL's estimate, which is high
    #: for a velocity given by trigonometric functions)
    quadrature_degree: int | None = None

    def __init__(self, mesh, dt: float, T: float, monitor: MonitorConfig):
        super().__init__(mesh)
        self.dt, self.T = dt, T
        self.num_steps = int(round(T / dt))
        V = fd.FunctionSpace(mesh, "DG", 1)
        x = fd.SpatialCoordinate(mesh)
        self.q = fd.Function(V, name="q")
        self.stage = fd.Function(V, name="q_stage")
        self.Y = fd.Function(V, name="stage_value")
        self.a = fd.Constant(0.0)
        self.u = self.a * self.velocity(x)
        w = self.motion.velocity
        n = fd.FacetNormal(mesh)
        un = 0.5 * (fd.dot(self.u - w, n) + abs(fd.dot(self.u - w, n)))
        phi, dq = fd.TestFunction(V), fd.TrialFunction(V)
        q = self.stage
        md = {} if self.quadrature_degree is None else {"quadrature_degree": self.quadrature_degree}
        dx, dS, ds = fd.dx(metadata=md), fd.dS(metadata=md), fd.ds(metadata=md)
        self.operator_form = (q * fd.div(phi * self.u) * dx - q * fd.dot(w, fd.grad(phi)) * dx
                              - (phi("+") - phi("-")) * (un("+") * q("+") - un("-") * q("-")) * dS
                              - phi * un * q * ds)
        #: the operator's assembler, built once: each call then runs the compiled kernels only,
        #: without processing the form again (the coordinates and ``a`` are read at each call)
        self._operator_assembler = get_assembler(self.operator_form)
        self.mass_form = phi * dq * fd.dx
        self.mass = fd.assemble(self.mass_form)
        self.solver = fd.LinearSolver(self.mass, solver_parameters=DG_MASS_SOLVER_PARAMETERS)
        #: the cell of each DG node, and the vertices of each cell (for the cell measures)
        self._node_cell = np.empty(V.node_set.total_size, dtype=np.int64)
        self._node_cell[V.cell_node_list] = np.arange(len(V.cell_node_list))[:, None]
        self._node_cell = self._node_cell[:V.node_set.size]          # the owned nodes come first
        self._cell_vertices = mesh.coordinates.function_space().cell_node_list
        self._mass_measures = self._measures()
        self.U0 = fd.Cofunction(V.dual())
        self.rhs = fd.Cofunction(V.dual())
        self.R = [fd.Cofunction(V.dual()) for _ in self.C]
        self._monitor = SolutionMonitor(mesh, self.q, monitor, name="q_P1")
        self.initial_state()

    # ------------------------------------------------------------------ the case
    def velocity(self, x):
        """The velocity's shape :math:`\\mathbf{v}(x)` (UFL), divergence-free, tangential on the boundary."""
        raise NotImplementedError

    def velocity_scale(self, t: float, stage_time: float) -> float:
        """:math:`a` for the stage at ``stage_time`` of the step that starts at ``t``."""
        raise NotImplementedError

    def exact(self, x):
        """The initial state, also the exact final state (UFL)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ loop interface
    def fields(self):
        return {"q": self.q}

    def _operator(self, q_in: fd.Function, tau: float, out: fd.Cofunction) -> None:
        """The spatial operator of ``q_in`` on the geometry at fraction ``tau`` of the step."""
        self.motion.place(tau)
        self.stage.assign(q_in)
        self._operator_assembler.assemble(tensor=out)

    def _measures(self) -> np.ndarray:
        return signed_measures(np.asarray(self.mesh.coordinates.dat.data_ro_with_halos), self._cell_vertices)

    def _measure_ratio(self) -> np.ndarray:
        """Per DG node, the measure of its cell now over its measure when :attr:`mass` was
        assembled (exactly 1 on a mesh that has not moved since)."""
        return (self._measures() / self._mass_measures)[self._node_cell]

    def _solve_mass(self, theta: float, out: fd.Function) -> None:
        """``out`` from its moments ``self.rhs`` on the geometry at fraction ``theta`` of the step.

        An affine cell's P1 mass matrix is its measure times a fixed matrix, so the mass
        matrix is assembled once and a moving cell's block is rescaled by its measure ratio."""
        self.solver.solve(out, self.rhs)
        self.motion.place(theta)
        out.dat.data[:] /= self._measure_ratio()

    def _moments(self) -> None:
        """:attr:`U0` = :math:`M q` on the current geometry."""
        with self.q.dat.vec_ro as x, self.U0.dat.vec_wo as b:
            self.mass.petscmat.mult(x, b)
        self.U0.dat.data[:] *= self._measure_ratio()

    def step(self, t: float) -> None:
        r"""One SSPRK3 step on the moments :math:`U = M(t) q`: stage :math:`i` is
        :math:`M(t + c_i\Delta t) Y_i = U^n + \Delta t \sum_j a_{ij} R(Y_j)`, with
        :math:`R(Y_j)` assembled on the geometry at :math:`t + \tau_j \Delta t` (:attr:`TAU`)."""
        dt, stage = self.dt, self.Y
        self.motion.place(0.0)
        self._moments()
        U0 = self.U0.dat.data_ro
        stage.assign(self.q)
        for i, (c, row) in enumerate(zip(self.C, self.A)):
            if i:
                self.rhs.dat.data[:] = U0 + dt * sum(a * self.R[j].dat.data_ro for j, a in enumerate(row))
                self._solve_mass(c, stage)
            self.a.assign(self.velocity_scale(t, t + c * dt))
            self._operator(stage, self.TAU[i], self.R[i])
        self.rhs.dat.data[:] = U0 + dt * sum(b * self.R[j].dat.data_ro for j, b in enumerate(self.B))
        self._solve_mass(1.0, self.q)
        top = self.mesh.comm.allreduce(float(np.abs(self.q.dat.data_ro).max(initial=0.0)), op=MPI.MAX)
        if not top <= self.BLOW_UP * self.q0_max:          # (also for NaN)
            raise UM2NError(f"{type(self).__name__}: max |q| = {top:.3g}, {self.BLOW_UP:g} times the initial "
                            f"state's, after the step from t = {t:.6g}: the time "
                            f"step dt = {dt:g} is above the explicit scheme's stability limit on this mesh; lower dt, "
                            "or keep the moved cells larger (the monitor's alpha, loop.min_cell_ratio)")

    def monitor(self) -> fd.Function:
        return self._monitor()

    def initial_state(self) -> None:
        """The initial state on the current mesh (the loop adapts the mesh to it before the first step)."""
        self.q.interpolate(self.exact(fd.SpatialCoordinate(self.mesh)))
        self.mass0 = fd.assemble(self.q * fd.dx)
        self.q0_max = self.mesh.comm.allreduce(float(np.abs(self.q.dat.data_ro).max(initial=0.0)), op=MPI.MAX) or 1.0

    def mesh_moved(self) -> None:
        fd.assemble(self.mass_form, tensor=self.mass)
        self._mass_measures = self._measures()
        self._monitor.mesh_moved()

    def output_functions(self):
        return [self.q]

    def diagnostics(self, t: float) -> dict:
        return {"mass_change": fd.assemble(self.q * fd.dx) - self.mass0}

    def error(self) -> float:
        """:math:`\\|q_h - q_0\\|_{L^2}` on the current mesh (the exact state at t = T)."""
        x = fd.SpatialCoordinate(self.mesh)
        return math.sqrt(fd.assemble((self.q - self.exact(x)) ** 2 * fd.dx(degree=8)))

    def summary(self, t: float) -> dict:
        return {"l2_error": self.error(), "mass_change": fd.assemble(self.q * fd.dx) - self.mass0,
                "vertices": vertex_count(self.mesh), "dofs": self.q.function_space().dim()}


class AdvectionCase(Case):
    """The command line of an advection case (``config`` with ``lc`` and ``loop``): one run
    per mover, the static mesh first, and with ``--static-lc`` the static mesh at other sizes,
    so that every moved run is compared with the static runs at equal wall-clock time
    (:func:`um2n.fem.study.equal_cost`). A subclass gives :meth:`title`."""

    error_key = "l2_error"

    def title(self, cfg) -> str:
        """The first line of the report."""
        raise NotImplementedError

    def add_arguments(self, parser) -> None:
        parser.add_argument("--static-lc", nargs="+", type=float, default=[], metavar="LC",
                            help="also run the static mesh at these mesh sizes, and compare every moved run "
                                 "with the static runs at equal wall-clock time")

    def variants(self, cfg, args) -> list[Variant]:
        movers = args.mover or [cfg.loop.mover]
        static = [Variant(f"none-lc{lc:g}", {"loop.mover": "none", "lc": lc}) for lc in args.static_lc]
        first = [Variant(m, {"loop.mover": m}) for m in movers if m == "none"]
        return first + static + [Variant(m, {"loop.mover": m}) for m in movers if m != "none"]

    def report(self, cfg, study: dict) -> None:
        print(f"\n{self.title(cfg)}; mesh moved every {cfg.loop.move_every} steps ({cfg.loop.transfer})")
        print(f"{'run':<12} {'vertices':>8} {'L2 error':>10} {'ER vs none':>10} {'mass change':>11} {'moves':>6} "
              f"{'tangled':>7} {'wall s':>7}  ParaView")
        for label, r in study["runs"].items():
            er = r.get("error_reduction_vs_none")
            print(f"{label:<12} {r['summary']['vertices']:>8} {r['summary']['l2_error']:>10.4e} "
                  f"{'' if er is None else f'{er:+.1%}':>10} {r['summary']['mass_change']:>11.1e} {r['moves']:>6} "
                  f"{r['max_inverted']:>7} {r['wall_seconds']:>7.1f}  {r['output']}")
        comparison = study.get("equal_cost")
        if comparison:
            print("\nAt equal wall-clock time (static curve through the static runs, log-log):")
            for c in comparison:
                ref, dom = c["static_error_at_same_time"], c.get("dominated_static")
                if ref is not None:
                    tail = f"the static mesh reaches {ref:.4e} in that time: {c['verdict']} ({(ref - c['error']) / ref:+.1%})"
                elif dom is not None:
                    faster = c["verdict"] == "win"
                    tail = (f"{'faster' if faster else 'slower'} and {'more' if faster else 'less'} accurate than the "
                            f"{'cheapest' if faster else 'dearest'} static run ({dom[1]:.4e} in {dom[0]:.1f} s): "
                            f"{c['verdict']} ({(dom[1] - c['error']) / dom[1]:+.1%})")
                else:
                    tail = "the static mesh is outside its range of times"
                print(f"  {c['label']:<10} L2 error {c['error']:.4e} in {c['wall_seconds']:.1f} s; {tail}")
            print("  (wall times include Firedrake's one-off compilation of kernels in a fresh environment)")
        print(f"(summary: {study['summary_path']})")
