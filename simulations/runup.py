r"""Solitary-wave run-up on a plane beach (Synolakis 1987; NTHMP benchmark problem 1): NOT VALIDATED.

Status (work in progress, not wired into the CLI, no test yet): with :math:`\eta = \eta_0`
everywhere (below the bed on dry land, where the modified depth makes
:math:`\eta = 0, u = 0` an exact rest state), dt = 0.01 s, :math:`\alpha` = 5 mm and a
quadratic drag of 0.0025, the highest wet elevation reached 0.0839 m before Newton failed
at t = 20.2 s, during the run-down (analytic run-up 0.0890 m: -5.7 %).

A still-water depth :math:`d = 1` m offshore, a beach of slope :math:`1{:}19.85` whose toe
lies at :math:`X_0 = 19.85\,d` from the shoreline :math:`x = 0` (land at :math:`x < 0`), and
the solitary wave :math:`\eta_0 = H\,\mathrm{sech}^2(\gamma(x - X_1))`,
:math:`\gamma = \sqrt{3H/(4d^3)}`, :math:`u_0 = -\eta_0\sqrt{g/d}`, centred half a wavelength
:math:`L = \operatorname{arccosh}(\sqrt{20})/\gamma` beyond the toe, with :math:`H/d = 0.019`
(non-breaking). Synolakis' run-up law gives

.. math:: R/d = 2.831\,\sqrt{\cot\beta}\,(H/d)^{5/4}.

The domain is a channel one element wide (the problem is one-dimensional), solved by
:class:`simulations.shallow_water.ShallowWaterSolver` with wetting and drying; the run-up
is the highest elevation reached by a wet node (:math:`\tilde H > h_{wet}`) over the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import firedrake as fd
import numpy as np

from simulations.shallow_water import ShallowWaterOptions, ShallowWaterSolver


@dataclass
class RunupConfig:
    H: float = 0.019
    d: float = 1.0
    cot_beta: float = 19.85
    x_min: float = -3.0
    x_max: float = 60.0
    dx: float = 0.1
    width: float = 0.2
    dt: float = 0.02
    T: float = 25.0
    alpha: float = 0.005
    drag: float = 0.0
    wet_threshold: float = 0.01

    @property
    def analytic_runup(self) -> float:
        return self.d * 2.831 * math.sqrt(self.cot_beta) * (self.H / self.d) ** 1.25


def run_runup(cfg: RunupConfig, progress: bool = False) -> dict:
    from tqdm import tqdm

    nx = int(round((cfg.x_max - cfg.x_min) / cfg.dx))
    mesh = fd.RectangleMesh(nx, 1, cfg.x_max - cfg.x_min, cfg.width, originX=cfg.x_min, name="runup")
    X0 = cfg.d * cfg.cot_beta

    def bathymetry(m):
        x = fd.SpatialCoordinate(m)[0]
        return fd.min_value(x / cfg.cot_beta, cfg.d)

    solver = ShallowWaterSolver(mesh, bathymetry, cfg.dt,
                                ShallowWaterOptions(wetting_drying_alpha=cfg.alpha, drag=cfg.drag))
    g = solver.options.g
    gamma = math.sqrt(3 * cfg.H / (4 * cfg.d ** 3))
    X1 = X0 + math.acosh(math.sqrt(20.0)) / gamma / 2
    x = fd.SpatialCoordinate(mesh)[0]
    eta0 = cfg.H / fd.cosh(gamma * (x - X1)) ** 2
    # eta = eta0 everywhere, below the bed on dry land too: with the modified depth,
    # eta = 0, u = 0 is an exact rest state, dry land included
    solver.set_state(eta0, fd.as_vector([-eta0 * math.sqrt(g / cfg.d), 0]))
    DG = solver.elevation.function_space()
    xs = fd.Function(DG).interpolate(x).dat.data_ro.copy()
    Ht = fd.Function(DG)
    near = xs < 0.5 * X0
    history = []
    steps = int(round(cfg.T / cfg.dt))
    mass = []
    for n in tqdm(range(steps), disable=not progress, desc="run-up"):
        try:
            solver.step()
        except fd.ConvergenceError:
            raise RuntimeError(f"run-up: Newton failed at t = {(n + 1) * cfg.dt:.3f} s "
                               f"(highest wet elevation so far {max([h[1] for h in history], default=0):.4f} m)") from None
        Ht.interpolate(solver.total_depth())
        e = solver.elevation.dat.data_ro
        wet = (Ht.dat.data_ro > cfg.wet_threshold) & near
        shore = float(e[wet].max()) if wet.any() else float("nan")
        xshore = float(xs[wet].min()) if wet.any() else float("nan")
        history.append(((n + 1) * cfg.dt, shore, xshore))
        mass.append(fd.assemble(Ht * fd.dx))
    h = np.array(history)
    runup = float(np.nanmax(h[:, 1]))
    return {"runup": runup, "analytic": cfg.analytic_runup,
            "relative_error": (runup - cfg.analytic_runup) / cfg.analytic_runup,
            "t_max": float(h[np.nanargmax(h[:, 1]), 0]), "history": h, "mass_drift": (max(mass) - min(mass)) / mass[0]}
