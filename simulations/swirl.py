r"""Swirl: LeVeque's reversing vortex, DG1 upwind with SSPRK3, on a moving mesh (ALE).

.. math::

    \partial_t q + \mathbf{u}\cdot\nabla q = 0 \text{ in } (0, 1)^2, \qquad
    \mathbf{u} = a(t)\,\big(\sin^2(\pi x)\sin(2\pi y),\; -\sin^2(\pi y)\sin(2\pi x)\big),

with :math:`a = 1.5` for :math:`t < T/2` and :math:`-1.5` after (UM2N's step reversal of
LeVeque's :math:`\cos(\pi t/T)` factor), :math:`T = 1`, so that the exact final state is the
initial ring

.. math:: q_0 = \exp\!\big(-(\sqrt{(x-x_0)^2 + (y-y_0)^2} - r_0)^2 / (2\sigma^2)\big),
          \quad r_0 = 0.15,\ \sigma = 0.05/3,\ (x_0, y_0) = (0.5, 0.75),

and the error is :math:`\|q_h(T) - q_0\|_{L^2}`. Off the vortex's centre the ring is
stretched into a thin spiral filament by :math:`t = T/2` (LeVeque's placement of his cone
and slotted cylinder), which is what a moving mesh has to follow. The velocity is
tangential on the whole boundary, so no inflow data is needed.

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

**DGCL.** For a constant :math:`q = c`, :math:`R(c)_\phi = c\,(\phi, \nabla\cdot w)`, the rate of
change of :math:`c\,(1, \phi)_{\Omega(t)}`. Under linear motion of affine triangles
:math:`(1, \phi)_{\Omega(t)}` is quadratic in :math:`t`, its rate linear, so a stage reproduces
it exactly when its operators are evaluated on geometries at fractions :math:`\tau_j` of the step
with :math:`\sum_j a_{ij}\tau_j = c_i^2/2` and :math:`\sum_j b_j\tau_j = \tfrac12`:
:math:`\tau = (\tfrac12, 0, \tfrac58)`. A constant state then stays constant to round-off on any
moving mesh, and :math:`\sum_\phi R_\phi = 0` keeps the tracer mass. The stage times of the
velocity remain :math:`c_i`; the geometry times differ from them by :math:`O(\Delta t)`, which
leaves the moving-mesh scheme second order in time (the order of DG1 in space).

Each stage solves with the DG mass matrix (block Jacobi + ILU: exact for the block-diagonal
DG mass). The P1 mass block of an affine cell is its area times a fixed matrix, so the matrix
is assembled once and, on a moving mesh, each cell's solution is rescaled by the ratio of its
areas: no reassembly while the mesh moves. With ``transfer = "conservative"`` the mesh jumps instead and :math:`q` follows by the
supermesh :math:`L^2` projection (:mod:`um2n.fem.transfer`).

Monitor: the ``[monitor]`` table (:class:`um2n.fem.monitors.MonitorConfig`) of the P1
projection of :math:`q`; by default the Hessian monitor :math:`1 + 8(|H|_F/\max|H|_F)^{1/2}`.
The choice was made on this synthetic case alone (exact solution; UM2N, ALE, a move every 10
steps, lc 0.04, dt 2e-3, the mesh adapted to the initial ring): error reduction against the
static mesh 15 % with the Hessian and alpha 3 (the training family), 22 % with alpha 8, 25 %
with alpha 20, 21 % with the gradient and alpha 10. Alpha 20 makes the smallest elements
about 4.6 times smaller than the largest, which puts the explicit step close to its CFL
limit and slows down some moves (the mesh Courant limit); alpha 8 (about 3 times) keeps a
margin.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import firedrake as fd
import numpy as np

from um2n.fem.adapter import vertex_count
from um2n.fem.loop import LoopConfig, MovingMeshProblem
from um2n.fem.monitors import MonitorConfig, SolutionMonitor
from um2n.fem.study import Case, Variant
from um2n.mesh import signed_areas

#: DG mass matrix: block diagonal, so one block-Jacobi/ILU application is an exact solve.
DG_MASS_SOLVER_PARAMETERS = {"ksp_type": "preonly", "pc_type": "bjacobi", "sub_pc_type": "ilu"}


@dataclass
class SwirlConfig:
    """Settings of the swirl case (``[monitor]``: the monitor; ``[loop]``: the moving-mesh loop)."""

    lc: float = 0.03
    mesh_seed: int = 0
    dt: float = 1e-3
    T: float = 1.0
    speed: float = 1.5
    r0: float = 0.15
    sigma: float = 0.05 / 3
    centre: tuple = (0.5, 0.75)
    monitor: MonitorConfig = field(default_factory=lambda: MonitorConfig(alpha=8.0))
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(output_dir="output/swirl", move_every=10))


def swirl_mesh(cfg: SwirlConfig, workdir: str | Path | None = None):
    """The unstructured gmsh mesh of the unit square (``meshes/unit_square.geo``) at ``cfg.lc``."""
    from um2n.meshing import generate_mesh

    with tempfile.TemporaryDirectory() as tmp:
        msh = generate_mesh("unit_square", Path(workdir or tmp) / f"swirl_lc{cfg.lc:g}.msh", lc=cfg.lc,
                            seed=cfg.mesh_seed)
        return fd.Mesh(str(msh), name="swirl")


def ring(cfg: SwirlConfig, x):
    """The initial (and exact final) state :math:`q_0` as a UFL expression."""
    r = fd.sqrt((x[0] - cfg.centre[0]) ** 2 + (x[1] - cfg.centre[1]) ** 2)
    return fd.exp(-((r - cfg.r0) ** 2) / (2 * cfg.sigma ** 2))


class SwirlProblem(MovingMeshProblem):
    """DG1 upwind + SSPRK3 for the reversing swirl, in ALE form (see the module docstring)."""

    supports_ale = True
    has_initial_state = True
    #: SSPRK3 in Butcher form: stage times c, the stage rows of A, the weights b
    C = (0.0, 1.0, 0.5)
    A = ((), (1.0,), (0.25, 0.25))
    B = (1 / 6, 1 / 6, 2 / 3)
    #: the fractions of the step at whose geometry each stage's operator is assembled: the
    #: one choice with sum_j A_ij TAU_j = C_i^2 / 2 and sum_j B_j TAU_j = 1/2, so that every
    #: stage integrates the (linear in t) rate of change of the cell integrals exactly (DGCL)
    TAU = (0.5, 0.0, 0.625)

    def __init__(self, mesh, cfg: SwirlConfig):
        super().__init__(mesh)
        self.cfg = cfg
        self.dt = cfg.dt
        self.num_steps = int(round(cfg.T / cfg.dt))
        V = fd.FunctionSpace(mesh, "DG", 1)
        x = fd.SpatialCoordinate(mesh)
        self.q = fd.Function(V, name="q")
        self.stage = fd.Function(V, name="q_stage")
        self.Y = fd.Function(V, name="stage_value")
        self.a = fd.Constant(cfg.speed)
        pi = math.pi
        self.u = self.a * fd.as_vector([fd.sin(pi * x[0]) ** 2 * fd.sin(2 * pi * x[1]),
                                        -fd.sin(pi * x[1]) ** 2 * fd.sin(2 * pi * x[0])])
        w = self.motion.velocity
        n = fd.FacetNormal(mesh)
        un = 0.5 * (fd.dot(self.u - w, n) + abs(fd.dot(self.u - w, n)))
        phi, dq = fd.TestFunction(V), fd.TrialFunction(V)
        q = self.stage
        self.operator_form = (q * fd.div(phi * self.u) * fd.dx - q * fd.dot(w, fd.grad(phi)) * fd.dx
                              - (phi("+") - phi("-")) * (un("+") * q("+") - un("-") * q("-")) * fd.dS
                              - phi * un * q * fd.ds)
        self.mass_form = phi * dq * fd.dx
        self.mass = fd.assemble(self.mass_form)
        self.solver = fd.LinearSolver(self.mass, solver_parameters=DG_MASS_SOLVER_PARAMETERS)
        #: the cell of each DG node, and the vertices of each cell (for the cell areas)
        self._node_cell = np.empty(V.node_set.total_size, dtype=np.int64)
        self._node_cell[V.cell_node_list] = np.arange(len(V.cell_node_list))[:, None]
        self._node_cell = self._node_cell[:V.node_set.size]          # the owned nodes come first
        self._cell_vertices = mesh.coordinates.function_space().cell_node_list
        self._mass_areas = self._areas()
        self.U0 = fd.Cofunction(V.dual())
        self.rhs = fd.Cofunction(V.dual())
        self.R = [fd.Cofunction(V.dual()) for _ in self.C]
        self._monitor = SolutionMonitor(mesh, self.q, cfg.monitor, name="q_P1")
        self.initial_state()

    # ------------------------------------------------------------------ loop interface
    def fields(self):
        return {"q": self.q}

    def _operator(self, q_in: fd.Function, tau: float, out: fd.Cofunction) -> None:
        """The spatial operator of ``q_in`` on the geometry at fraction ``tau`` of the step."""
        self.motion.place(tau)
        self.stage.assign(q_in)
        fd.assemble(self.operator_form, tensor=out)

    def _areas(self) -> np.ndarray:
        return signed_areas(np.asarray(self.mesh.coordinates.dat.data_ro_with_halos), self._cell_vertices)

    def _area_ratio(self) -> np.ndarray:
        """Per DG node, the area of its cell now over its area when :attr:`mass` was assembled
        (exactly 1 on a mesh that has not moved since)."""
        return (self._areas() / self._mass_areas)[self._node_cell]

    def _solve_mass(self, theta: float, out: fd.Function) -> None:
        """``out`` from its moments ``self.rhs`` on the geometry at fraction ``theta`` of the step.

        An affine cell's P1 mass matrix is its area times a fixed matrix, so the mass matrix
        is assembled once and a moving cell's block is rescaled by its area ratio."""
        self.solver.solve(out, self.rhs)
        self.motion.place(theta)
        out.dat.data[:] /= self._area_ratio()

    def _moments(self) -> None:
        """:attr:`U0` = :math:`M q` on the current geometry."""
        with self.q.dat.vec_ro as x, self.U0.dat.vec_wo as b:
            self.mass.petscmat.mult(x, b)
        self.U0.dat.data[:] *= self._area_ratio()

    def step(self, t: float) -> None:
        r"""One SSPRK3 step on the moments :math:`U = M(t) q`: stage :math:`i` is
        :math:`M(t + c_i\Delta t) Y_i = U^n + \Delta t \sum_j a_{ij} R(Y_j)`, with
        :math:`R(Y_j)` assembled on the geometry at :math:`t + \tau_j \Delta t` (:attr:`TAU`)."""
        dt, stage = self.dt, self.Y
        # the velocity of the whole step: the reversal at T/2 falls between two steps when the
        # number of steps is even, and no stage then sees the wrong sign
        self.a.assign(self.cfg.speed if t + 0.5 * dt < 0.5 * self.cfg.T else -self.cfg.speed)
        self.motion.place(0.0)
        self._moments()
        U0 = self.U0.dat.data_ro
        stage.assign(self.q)
        for i, (c, row) in enumerate(zip(self.C, self.A)):
            if i:
                self.rhs.dat.data[:] = U0 + dt * sum(a * self.R[j].dat.data_ro for j, a in enumerate(row))
                self._solve_mass(c, stage)
            self._operator(stage, self.TAU[i], self.R[i])
        self.rhs.dat.data[:] = U0 + dt * sum(b * self.R[j].dat.data_ro for j, b in enumerate(self.B))
        self._solve_mass(1.0, self.q)

    def monitor(self) -> fd.Function:
        return self._monitor()

    def initial_state(self) -> None:
        """The ring :math:`q_0` on the current mesh (the loop adapts the mesh to it before the first step)."""
        self.q.interpolate(ring(self.cfg, fd.SpatialCoordinate(self.mesh)))
        self.mass0 = fd.assemble(self.q * fd.dx)

    def mesh_moved(self) -> None:
        fd.assemble(self.mass_form, tensor=self.mass)
        self._mass_areas = self._areas()
        self._monitor.mesh_moved()

    def output_functions(self):
        return [self.q]

    def diagnostics(self, t: float) -> dict:
        return {"mass_change": fd.assemble(self.q * fd.dx) - self.mass0}

    def error(self) -> float:
        """:math:`\\|q_h - q_0\\|_{L^2}` on the current mesh (the exact state at t = T)."""
        x = fd.SpatialCoordinate(self.mesh)
        return math.sqrt(fd.assemble((self.q - ring(self.cfg, x)) ** 2 * fd.dx(degree=8)))

    def summary(self, t: float) -> dict:
        return {"l2_error": self.error(), "mass_change": fd.assemble(self.q * fd.dx) - self.mass0,
                "vertices": vertex_count(self.mesh), "dofs": self.q.function_space().dim()}


class SwirlCase(Case):
    """``um2n simulate swirl``: the swirl on the static and the moved mesh, and the static
    mesh refined (``--static-lc``) for the comparison at equal wall-clock time."""

    name = "swirl"
    help = "LeVeque's reversing swirl, DG1 upwind + SSPRK3, on a moving mesh"
    description = ("Advect a ring through the reversing vortex (T = 1) with the mesh moved by the chosen "
                   "mover(s) (continuously, ALE, by default); print the L2 error against the exact final state, "
                   "each mover's error reduction with 'none' among the movers, and with --static-lc the moved "
                   "runs against the static mesh refined, at equal wall-clock time. Writes "
                   "OUTPUT/<run>/solution.pvd, diagnostics.csv, snapshots (PNG) and checkpoint.h5.")
    config = SwirlConfig
    error_key = "l2_error"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--static-lc", nargs="+", type=float, default=[], metavar="LC",
                            help="also run the static mesh at these mesh sizes, and compare every moved run "
                                 "with the static runs at equal wall-clock time")

    def variants(self, cfg: SwirlConfig, args) -> list[Variant]:
        movers = args.mover or [cfg.loop.mover]
        static = [Variant(f"none-lc{lc:g}", {"loop.mover": "none", "lc": lc}) for lc in args.static_lc]
        first = [Variant(m, {"loop.mover": m}) for m in movers if m == "none"]
        return first + static + [Variant(m, {"loop.mover": m}) for m in movers if m != "none"]

    def make_mesh(self, cfg: SwirlConfig):
        return swirl_mesh(cfg)

    def make_problem(self, cfg: SwirlConfig, mesh) -> SwirlProblem:
        return SwirlProblem(mesh, cfg)

    def report(self, cfg: SwirlConfig, study: dict) -> None:
        print(f"\nSwirl (LeVeque, T = {cfg.T:g}, dt = {cfg.dt:g}), DG1 on gmsh meshes of the unit square; "
              f"mesh moved every {cfg.loop.move_every} steps ({cfg.loop.transfer})")
        print(f"{'run':<12} {'vertices':>8} {'L2 error':>10} {'ER vs none':>10} {'moves':>6} {'tangled':>7} "
              f"{'wall s':>7}  ParaView")
        for label, r in study["runs"].items():
            er = r.get("error_reduction_vs_none")
            print(f"{label:<12} {r['summary']['vertices']:>8} {r['summary']['l2_error']:>10.4e} "
                  f"{'' if er is None else f'{er:+.1%}':>10} {r['moves']:>6} {r['max_inverted']:>7} "
                  f"{r['wall_seconds']:>7.1f}  {r['output']}")
        comparison = study.get("equal_cost")
        if comparison:
            print("\nAt equal wall-clock time (static curve through the static runs, log-log):")
            for c in comparison:
                ref = c["static_error_at_same_time"]
                print(f"  {c['label']:<10} L2 error {c['error']:.4e} in {c['wall_seconds']:.1f} s; the static mesh "
                      + ("is outside its range of times" if ref is None else
                         f"reaches {ref:.4e} in that time: {c['verdict']} ({(ref - c['error']) / ref:+.1%})"))
            print("  (wall times include Firedrake's one-off compilation of kernels in a fresh environment)")
        print(f"(summary: {study['summary_path']})")


CASE = SwirlCase()
