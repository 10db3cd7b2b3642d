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

**ALE form**, time stepping, mass and DGCL: :mod:`um2n_simulations.advection` (DG1 upwind,
SSPRK3, the mesh velocity in the fluxes). With ``transfer = "conservative"`` the mesh jumps
instead and :math:`q` follows by the supermesh :math:`L^2` projection (:mod:`um2n.fem.transfer`).

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

from um2n.fem.loop import LoopConfig
from um2n.fem.monitors import MonitorConfig
from um2n_simulations.advection import AdvectionCase, ALEAdvectionProblem


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


class SwirlProblem(ALEAdvectionProblem):
    """The reversing swirl on :class:`~um2n_simulations.advection.ALEAdvectionProblem` (DG1
    upwind + SSPRK3 in ALE form)."""

    def __init__(self, mesh, cfg: SwirlConfig):
        self.cfg = cfg
        super().__init__(mesh, cfg.dt, cfg.T, cfg.monitor)

    def velocity(self, x):
        pi = math.pi
        return fd.as_vector([fd.sin(pi * x[0]) ** 2 * fd.sin(2 * pi * x[1]),
                             -fd.sin(pi * x[1]) ** 2 * fd.sin(2 * pi * x[0])])

    def velocity_scale(self, t: float, stage_time: float) -> float:
        # the velocity of the whole step: the reversal at T/2 falls between two steps when the
        # number of steps is even, and no stage then sees the wrong sign
        return self.cfg.speed if t + 0.5 * self.dt < 0.5 * self.cfg.T else -self.cfg.speed

    def exact(self, x):
        return ring(self.cfg, x)


class SwirlCase(AdvectionCase):
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

    def title(self, cfg: SwirlConfig) -> str:
        return f"Swirl (LeVeque, T = {cfg.T:g}, dt = {cfg.dt:g}), DG1 on gmsh meshes of the unit square"

    def make_mesh(self, cfg: SwirlConfig):
        return swirl_mesh(cfg)

    def make_problem(self, cfg: SwirlConfig, mesh) -> SwirlProblem:
        return SwirlProblem(mesh, cfg)


CASE = SwirlCase()
