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

Monitor: :math:`1 + \alpha(|H|_F/\max|H|_F)^p` of the P1 projection of :math:`q`
(:func:`um2n.fem.monitors.hessian_monitor`), the monitor family of the shipped weights.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import firedrake as fd

from um2n.fem.loop import LoopConfig, MovingMeshProblem, run_moving_mesh
from um2n.fem.monitors import hessian_monitor

#: DG mass matrix: block diagonal, so one block-Jacobi/ILU application is an exact solve.
DG_MASS_SOLVER_PARAMETERS = {"ksp_type": "preonly", "pc_type": "bjacobi", "sub_pc_type": "ilu"}
#: P1 projection of the DG1 tracer (for the monitor).
P1_PROJECTION_SOLVER_PARAMETERS = {"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-10}


@dataclass
class SwirlConfig:
    """Settings of the swirl case (the ``[loop]`` table sets the moving-mesh loop)."""

    lc: float = 0.025
    mesh_seed: int = 0
    dt: float = 1e-3
    T: float = 1.0
    speed: float = 1.5
    r0: float = 0.2
    sigma: float = 0.05 / 3
    centre: tuple = (0.5, 0.5)
    monitor_alpha: float = 3.0
    monitor_power: float = 0.5
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
        self.P1 = fd.FunctionSpace(mesh, "CG", 1)
        self.q_p1 = fd.Function(self.P1, name="q_P1")
        p, w = fd.TrialFunction(self.P1), fd.TestFunction(self.P1)
        self.p1_solver = fd.LinearVariationalSolver(
            fd.LinearVariationalProblem(p * w * fd.dx, self.q * w * fd.dx, self.q_p1, constant_jacobian=True),
            solver_parameters=P1_PROJECTION_SOLVER_PARAMETERS)
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
        self.p1_solver.solve()
        return hessian_monitor(self.q_p1, self.cfg.monitor_alpha, self.cfg.monitor_power)

    def mesh_moved(self) -> None:
        self.solver.invalidate_jacobian()
        self.p1_solver.invalidate_jacobian()

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


def run_swirl(cfg: SwirlConfig, resume: bool = False, stop_after: int | None = None):
    """Run the swirl through the moving-mesh loop; returns the :class:`~um2n.fem.loop.LoopResult`."""
    return run_moving_mesh(lambda mesh: SwirlProblem(mesh, cfg), lambda: swirl_mesh(cfg), cfg.loop,
                           resume=resume, stop_after=stop_after)


def main(args) -> int:
    from um2n.config import load_config
    from um2n.io import atomic_path

    cfg = load_config(SwirlConfig, args.config)
    movers = args.mover or [cfg.loop.mover]
    base = Path(args.output_dir or cfg.loop.output_dir)
    results = {}
    for mover in movers:
        cfg.loop = LoopConfig(**{**asdict(cfg.loop), "mover": mover, "output_dir": str(base / mover)})
        res = run_swirl(cfg, resume=args.resume)
        per = res.as_dict()["seconds_per_step"]
        results[mover] = {"l2_error": res.summary.get("l2_error"), "mass_change": res.summary.get("mass_change"),
                          "moves": res.moves, "moves_rejected": res.moves_rejected, "max_inverted": res.max_inverted,
                          "seconds_per_step": per, "vertices": res.summary.get("vertices"),
                          "output": str(base / mover / "solution.pvd")}
    if "none" in results:
        e0 = results["none"]["l2_error"]
        for r in results.values():
            r["error_reduction_vs_none"] = (e0 - r["l2_error"]) / e0
    report = {"case": "swirl", "config": {k: v for k, v in asdict(cfg).items() if k != "loop"},
              "move_every": cfg.loop.move_every, "results": results}
    base.mkdir(parents=True, exist_ok=True)
    with atomic_path(base / "summary.json") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2, default=float))
    print(f"\nSwirl (LeVeque, T = {cfg.T:g}, dt = {cfg.dt:g}), DG1 on the lc = {cfg.lc:g} gmsh mesh, "
          f"mesh moved every {cfg.loop.move_every} steps")
    print(f"{'mover':<6} {'vertices':>8} {'L2 error':>10} {'ER vs none':>10} {'moves':>6} {'tangled':>7} "
          f"{'s/step':>7}  ParaView")
    for mover, r in results.items():
        er = r.get("error_reduction_vs_none")
        print(f"{mover:<6} {r['vertices']:>8} {r['l2_error']:>10.4e} {'' if er is None else f'{er:+.1%}':>10} "
              f"{r['moves']:>6} {r['max_inverted']:>7} {sum(r['seconds_per_step'].values()):>7.3f}  {r['output']}")
    print(f"(summary: {base / 'summary.json'})")
    return 0
