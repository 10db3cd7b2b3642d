r"""Swirl: LeVeque's reversing vortex, DG1 upwind with SSPRK3, on a moving mesh.

.. math::

    \partial_t q + \mathbf{u}\cdot\nabla q = 0 \text{ in } (0, 1)^2, \qquad
    \mathbf{u} = a(t)\,\big(\sin^2(\pi x)\sin(2\pi y),\; -\sin^2(\pi y)\sin(2\pi x)\big),

with :math:`a = 1.5` for :math:`t < T/2` and :math:`-1.5` after (UM2N's step reversal of
LeVeque's :math:`\cos(\pi t/T)` factor), :math:`T = 1`, so that the exact final state is the
initial ring

.. math:: q_0 = \exp\!\big(-(\sqrt{(x-x_0)^2 + (y-y_0)^2} - r_0)^2 / (2\sigma^2)\big),
          \quad r_0 = 0.2,\ \sigma = 0.05/3,\ (x_0, y_0) = (0.5, 0.5),

and the error is :math:`\|q_h(T) - q_0\|_{L^2}`. The velocity is tangential on the whole
boundary, so no inflow data is needed.

Discretisation: DG1, upwind flux :math:`\hat q = q^{\mathrm{up}}` on interior facets,

.. math:: (\Delta q, \phi) = \Delta t\,\Big[(q, \nabla\cdot(\phi\mathbf{u}))
          - \langle [\![\phi]\!], u_n^+ q^+ - u_n^- q^- \rangle_{\mathcal{F}_i}
          - \langle \phi, \max(u\cdot n, 0)\, q \rangle_{\partial\Omega}\Big],

and the three stages of SSPRK3 (Shu-Osher). One ``LinearVariationalSolver`` (DG mass
matrix, block Jacobi + ILU: exact for the block-diagonal DG mass) is built once; its
matrix is reassembled only after a mesh move. The mesh moves between steps (the loop of
:mod:`um2n.fem.loop`), and :math:`q` is transferred conservatively (supermesh :math:`L^2`
projection): the tracer mass is kept to round-off across moves.

Monitor: the ``[monitor]`` table (:class:`um2n.fem.monitors.MonitorConfig`; by default
:math:`1 + 3(|H|_F/\max|H|_F)^{1/2}`) of the P1 projection of :math:`q`.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import firedrake as fd

from um2n.fem.loop import LoopConfig, MovingMeshProblem
from um2n.fem.monitors import MonitorConfig, SolutionMonitor
from um2n.fem.study import Case

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
    r0: float = 0.2
    sigma: float = 0.05 / 3
    centre: tuple = (0.5, 0.5)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
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
    """DG1 upwind + SSPRK3 for the reversing swirl (see the module docstring)."""

    def __init__(self, mesh, cfg: SwirlConfig):
        super().__init__(mesh)
        self.cfg = cfg
        self.dt = cfg.dt
        self.num_steps = int(round(cfg.T / cfg.dt))
        V = fd.FunctionSpace(mesh, "DG", 1)
        x = fd.SpatialCoordinate(mesh)
        self.q = fd.Function(V, name="q").interpolate(ring(cfg, x))
        self.stage = fd.Function(V, name="q_stage")
        self.dq = fd.Function(V)
        self.q1, self.q2 = fd.Function(V), fd.Function(V)
        self.a = fd.Constant(cfg.speed)
        pi = math.pi
        self.u = self.a * fd.as_vector([fd.sin(pi * x[0]) ** 2 * fd.sin(2 * pi * x[1]),
                                        -fd.sin(pi * x[1]) ** 2 * fd.sin(2 * pi * x[0])])
        n = fd.FacetNormal(mesh)
        un = 0.5 * (fd.dot(self.u, n) + abs(fd.dot(self.u, n)))
        phi, dq = fd.TestFunction(V), fd.TrialFunction(V)
        q = self.stage
        L = cfg.dt * (q * fd.div(phi * self.u) * fd.dx
                      - (phi("+") - phi("-")) * (un("+") * q("+") - un("-") * q("-")) * fd.dS
                      - phi * un * q * fd.ds)
        problem = fd.LinearVariationalProblem(phi * dq * fd.dx, L, self.dq, constant_jacobian=True)
        self.solver = fd.LinearVariationalSolver(problem, solver_parameters=DG_MASS_SOLVER_PARAMETERS)
        self._monitor = SolutionMonitor(mesh, self.q, cfg.monitor, name="q_P1")
        self.mass0 = fd.assemble(self.q * fd.dx)

    # ------------------------------------------------------------------ loop interface
    def fields(self):
        return {"q": self.q}

    def _rhs(self, q_in: fd.Function, t: float) -> fd.Function:
        self.a.assign(self.cfg.speed if t < 0.5 * self.cfg.T else -self.cfg.speed)
        self.stage.assign(q_in)
        self.solver.solve()
        return self.dq

    def step(self, t: float) -> None:
        dt, q, q1, q2 = self.dt, self.q, self.q1, self.q2
        q1.assign(q + self._rhs(q, t))
        q2.assign(0.75 * q + 0.25 * (q1 + self._rhs(q1, t + dt)))
        q.assign(q / 3 + 2.0 / 3.0 * (q2 + self._rhs(q2, t + 0.5 * dt)))

    def monitor(self) -> fd.Function:
        return self._monitor()

    def mesh_moved(self) -> None:
        self.solver.invalidate_jacobian()
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
                "vertices": self.mesh.num_vertices(), "dofs": self.q.function_space().dim()}


class SwirlCase(Case):
    """``um2n simulate swirl``: the swirl on the static and the moved mesh."""

    name = "swirl"
    help = "LeVeque's reversing swirl, DG1 upwind + SSPRK3, on a moving mesh"
    description = ("Advect a ring through the reversing vortex (T = 1) with the mesh moved every k steps by "
                   "the chosen mover(s); print the L2 error against the exact final state and, with 'none' "
                   "among the movers, each mover's error reduction. Writes OUTPUT/<mover>/solution.pvd, "
                   "diagnostics.csv, snapshots (PNG) and checkpoint.h5.")
    config = SwirlConfig
    error_key = "l2_error"

    def make_mesh(self, cfg: SwirlConfig):
        return swirl_mesh(cfg)

    def make_problem(self, cfg: SwirlConfig, mesh) -> SwirlProblem:
        return SwirlProblem(mesh, cfg)

    def report(self, cfg: SwirlConfig, study: dict) -> None:
        print(f"\nSwirl (LeVeque, T = {cfg.T:g}, dt = {cfg.dt:g}), DG1 on the lc = {cfg.lc:g} gmsh mesh, "
              f"mesh moved every {cfg.loop.move_every} steps")
        print(f"{'mover':<6} {'vertices':>8} {'L2 error':>10} {'ER vs none':>10} {'moves':>6} {'tangled':>7} "
              f"{'s/step':>7}  ParaView")
        for label, r in study["runs"].items():
            er = r.get("error_reduction_vs_none")
            print(f"{label:<6} {r['summary']['vertices']:>8} {r['summary']['l2_error']:>10.4e} "
                  f"{'' if er is None else f'{er:+.1%}':>10} {r['moves']:>6} {r['max_inverted']:>7} "
                  f"{sum(r['seconds_per_step'].values()):>7.3f}  {r['output']}")
        print(f"(summary: {study['summary_path']})")


CASE = SwirlCase()
