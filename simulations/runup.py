r"""Solitary-wave run-up on a plane beach (Synolakis 1987; NTHMP benchmark problem 1).

A still-water depth :math:`d = 1` m offshore, a beach of slope :math:`1{:}19.85` whose toe
lies at :math:`X_0 = 19.85\,d` from the shoreline :math:`x = 0` (land at :math:`x < 0`), and
the solitary wave :math:`\eta_0 = H\,\mathrm{sech}^2(\gamma(x - X_1))`,
:math:`\gamma = \sqrt{3H/(4d^3)}`, :math:`u_0 = -\eta_0\sqrt{g/d}`, centred at
:math:`X_1 = X_0 + L`, :math:`L = \operatorname{arccosh}(\sqrt{20})/\gamma` (the half-wavelength
to where :math:`\eta = 0.05H`: the wave's front lies at the toe), with :math:`H/d = 0.019`
(non-breaking). Synolakis' run-up law gives

.. math:: R/d = 2.831\,\sqrt{\cot\beta}\,(H/d)^{5/4} \quad (= 0.0890).

The domain is a channel :math:`[-3, 60] \times [0, 0.2]` m (one element wide by default: the
problem is one-dimensional), solved by :class:`um2n_simulations.shallow_water.ShallowWaterSolver`,
nonlinear, with wetting and drying (:math:`\alpha` = 5 mm, about the bed's rise over one
cell), no bottom friction (the analytic law is frictionless) and a horizontal viscosity
:math:`\nu = 0.05` m²/s. The viscosity is what carries the run-down, where a thin film drains
off the beach into a small bore: at dx = 0.1 m without drag, Newton failed during the
run-down with no viscosity, with :math:`\nu = 0.01` and with 0.03 (at t = 23.8 s for the
last); a bottom drag also carries it (:math:`C_D = 0.0025` with :math:`\nu = 0.01`), but
lowers the run-up by 8 %.
:math:`\eta = \eta_0` everywhere at the start, below the bed on dry
land too: with the modified depth, :math:`\eta = 0, u = 0` is an exact rest state there.

The shoreline is the landmost point where the water depth :math:`\eta + b` (linear in each
cell) falls to ``wet_threshold`` (1 mm); the run-up is the highest bed elevation it reaches.
The mesh moves through the shared loop (:mod:`um2n.fem.loop`), by default continuously
(``transfer = "ale"``: the solver's ALE form keeps :math:`\int\tilde H`, the ``volume``
column of the diagnostics, to the tolerance of its Newton solves); the bathymetry follows the
vertices, evaluated from its formula (never transferred).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import firedrake as fd
import numpy as np
from mpi4py import MPI

from um2n.errors import ConvergenceError
from um2n.fem.adapter import vertex_count
from um2n.fem.loop import LoopConfig, MovingMeshProblem
from um2n.fem.monitors import MonitorConfig
from um2n.fem.study import Case, Variant
from um2n.io import atomic_path, save_figure
from um2n_simulations.shallow_water import ShallowWaterOptions, ShallowWaterProblem, ShallowWaterSolver

@dataclass
class RunupConfig:
    """Settings of the run-up case (``[monitor]``: the monitor, of the elevation; ``[loop]``: the
    moving-mesh loop). ``refine`` halves ``dx`` and doubles ``ny`` that many times (4 times the
    cells each)."""

    H: float = 0.019
    d: float = 1.0
    cot_beta: float = 19.85
    x_min: float = -3.0
    x_max: float = 60.0
    dx: float = 0.1
    width: float = 0.2
    ny: int = 1
    refine: int = 0
    dt: float = 0.01
    T: float = 25.0
    alpha: float = 0.005
    drag: float = 0.0
    manning: float = 0.0
    viscosity: float = 0.05
    wet_threshold: float = 0.001
    penalise: str = "depth"
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(output_dir="output/runup", mover="none",
                                                                move_every=10, output_every=50,
                                                                checkpoint_every=250))

    @property
    def analytic_runup(self) -> float:
        return self.d * 2.831 * math.sqrt(self.cot_beta) * (self.H / self.d) ** 1.25


def runup_mesh(cfg: RunupConfig):
    """The channel, ``cfg.ny`` elements wide, refined ``cfg.refine`` times."""
    nx = int(round((cfg.x_max - cfg.x_min) / cfg.dx)) * 2 ** cfg.refine
    # Firedrake's Lx is the right end when originX is given
    return fd.RectangleMesh(nx, cfg.ny * 2 ** cfg.refine, cfg.x_max, cfg.width, originX=cfg.x_min, name="runup")


class RunupProblem(ShallowWaterProblem, MovingMeshProblem):
    """The solitary wave on the plane beach (see the module docstring)."""

    def __init__(self, mesh, cfg: RunupConfig):
        super().__init__(mesh)
        self.cfg = cfg
        self.dt = cfg.dt
        self.num_steps = int(round(cfg.T / cfg.dt))
        X0 = cfg.d * cfg.cot_beta

        def bathymetry(m):
            return fd.min_value(fd.SpatialCoordinate(m)[0] / cfg.cot_beta, cfg.d)

        self.swe = ShallowWaterSolver(mesh, bathymetry, cfg.dt,
                                      ShallowWaterOptions(wetting_drying_alpha=cfg.alpha, drag=cfg.drag,
                                                          manning=cfg.manning, viscosity=cfg.viscosity,
                                                          penalise=cfg.penalise), motion=self.motion)
        g = self.swe.options.g
        gamma = math.sqrt(3 * cfg.H / (4 * cfg.d ** 3))
        X1 = X0 + math.acosh(math.sqrt(20.0)) / gamma       # the wave's 5 % front at the toe
        x = fd.SpatialCoordinate(mesh)[0]
        eta0 = cfg.H / fd.cosh(gamma * (x - X1)) ** 2
        # eta = eta0 everywhere, below the bed on dry land too: with the modified depth,
        # eta = 0, u = 0 is an exact rest state, dry land included
        self.swe.set_state(eta0, fd.as_vector([-eta0 * math.sqrt(g / cfg.d), 0]))
        self.setup_moving_mesh(mesh, cfg.monitor, cfg.loop.transfer)
        DG = self.swe.elevation.function_space()
        self._x = fd.Function(DG)
        self._Ht = fd.Function(DG)

    def step(self, t: float) -> None:
        try:
            super().step(t)
        except fd.ConvergenceError:
            raise ConvergenceError(f"run-up: Newton failed at t = {t + self.dt:.3f} s") from None

    def shoreline(self) -> tuple[float, float]:
        r"""(elevation, position) of the shoreline: the landmost point where the water depth
        :math:`\eta + b` (linear in each cell) falls to ``wet_threshold``, found on every cell
        edge between a wet and a dry node (or a wet node itself, where the front lies on a
        facet); its elevation is the bed's there, :math:`-b`."""
        self._x.interpolate(fd.SpatialCoordinate(self.mesh)[0])
        self._Ht.interpolate(self.swe.elevation + self.swe.b)
        cells = self._Ht.function_space().cell_node_list
        xs = self._x.dat.data_ro_with_halos[cells]
        H = self._Ht.dat.data_ro_with_halos[cells] - self.cfg.wet_threshold
        wet = H > 0
        best = float(xs[wet].min()) if wet.any() else np.inf     # a wet cell beside a dry one
        for i, j in ((0, 1), (1, 2), (2, 0)):
            a, b = H[:, i], H[:, j]
            cross = (a > 0) != (b > 0)
            if cross.any():
                t = a[cross] / (a[cross] - b[cross])
                best = min(best, float((xs[cross, i] + t * (xs[cross, j] - xs[cross, i])).min()))
        best = self.mesh.comm.allreduce(best, op=MPI.MIN)      # the landmost over every rank's cells
        if not np.isfinite(best):
            return float("nan"), float("nan")
        return -min(best / self.cfg.cot_beta, self.cfg.d), best

    def diagnostics(self, t: float) -> dict:
        z, x = self.shoreline()
        return {"shore_elevation": z, "shore_x": x, "volume": self.swe.water_volume()}

    def summary(self, t: float) -> dict:
        return {"vertices": vertex_count(self.mesh), "dofs": self.swe.W.dim()}


def shoreline_history(rows: list[dict]) -> np.ndarray:
    """Columns t, shoreline elevation, shoreline position, volume of a run's diagnostics."""
    return np.array([[r["t"], r["shore_elevation"], r["shore_x"], r["volume"]] for r in rows], dtype=float)


def plot_shoreline(h: np.ndarray, cfg: RunupConfig, path: Path, title: str) -> None:
    """The shoreline elevation over time against the analytic maximum run-up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(h[:, 0], h[:, 1] / cfg.d, "b-", label="model: shoreline elevation")
    ax.axhline(cfg.analytic_runup / cfg.d, color="k", ls="--", label="analytic maximum run-up")
    ax.set_xlabel("t (s)")
    ax.set_ylabel("z / d")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


class RunupCase(Case):
    """``um2n simulate runup``: the run-up on the static, moved and refined meshes."""

    name = "runup"
    help = "solitary-wave run-up on a plane beach (NTHMP 1), wetting and drying"
    description = ("Synolakis' solitary wave (H/d = 0.019) running up a 1:19.85 beach: nonlinear shallow water "
                   "with wetting and drying (DG1, Crank-Nicolson); prints the maximum run-up against the "
                   "analytic law R/d = 2.831 sqrt(cot b) (H/d)^(5/4) and writes the shoreline over time "
                   "(shoreline.csv, shoreline.png) and ParaView output.")
    config = RunupConfig

    def add_arguments(self, parser) -> None:
        parser.add_argument("--refine", type=int, help="halve the mesh size this many times (4x the cells each)")

    def configure(self, cfg: RunupConfig, args) -> None:
        if args.refine is not None:
            cfg.refine = args.refine

    def variants(self, cfg: RunupConfig, args) -> list[Variant]:
        suffix = f"_refine{cfg.refine}" if cfg.refine else ""
        return [Variant(m + suffix, {"loop.mover": m}) for m in (args.mover or [cfg.loop.mover])]

    def make_mesh(self, cfg: RunupConfig):
        return runup_mesh(cfg)

    def make_problem(self, cfg: RunupConfig, mesh) -> RunupProblem:
        return RunupProblem(mesh, cfg)

    def finish(self, cfg: RunupConfig, result, out: Path) -> None:
        """The highest wet elevation against the analytic run-up; ``shoreline.csv`` and ``.png``."""
        h = shoreline_history(result.diagnostics)
        runup = float(np.nanmax(h[:, 1]))
        result.extras.update({"runup": runup, "analytic": cfg.analytic_runup,
                              "relative_error": (runup - cfg.analytic_runup) / cfg.analytic_runup,
                              "t_max": float(h[np.nanargmax(h[:, 1]), 0]),
                              "volume_drift": float((h[:, 3].max() - h[:, 3].min()) / h[0, 3])})
        with atomic_path(out / "shoreline.csv") as tmp:
            np.savetxt(tmp, h, delimiter=",", header="t,shore_elevation,shore_x,volume", comments="")
        plot_shoreline(h, cfg, out / "shoreline.png", title=f"run-up, mover {cfg.loop.mover}")

    def report(self, cfg: RunupConfig, study: dict) -> None:
        print(f"\nSolitary-wave run-up (H/d = {cfg.H:g}, slope 1:{cfg.cot_beta:g}), analytic R/d = "
              f"{cfg.analytic_runup / cfg.d:.4f}")
        print(f"{'run':<14} {'vertices':>8} {'R/d':>7} {'error':>7} {'moves':>5} {'tangled':>7} "
              f"{'s/step solve':>12} {'move':>6} {'transfer':>8}")
        for label, r in study["runs"].items():
            per = r["seconds_per_step"]
            print(f"{label:<14} {r['summary']['vertices']:>8} {r['runup'] / cfg.d:>7.4f} {r['relative_error']:>+7.1%} "
                  f"{r['moves']:>5} {r['max_inverted']:>7} {per['solve']:>12.3f} {per['move']:>6.3f} "
                  f"{per['transfer']:>8.3f}")
        print(f"(shoreline over time: <run>/shoreline.csv and shoreline.png; summary: {study['summary_path']})")


CASE = RunupCase()
