r"""LeVeque's 3D deformation test: a blob advected through a reversing vortex, DG1 on a
moving tetrahedral mesh (ALE).

.. math::

    \partial_t q + \mathbf{u}\cdot\nabla q = 0 \text{ in } (0, 1)^3, \qquad
    \mathbf{u} = \cos(\pi t / T)\,\big(2\sin^2(\pi x)\sin(2\pi y)\sin(2\pi z),\;
    -\sin(2\pi x)\sin^2(\pi y)\sin(2\pi z),\; -\sin(2\pi x)\sin(2\pi y)\sin^2(\pi z)\big),

(LeVeque 1996, Section 9.5, with :math:`T = 1.5`), divergence-free and tangential on the
cube's faces. The flow reverses in time, :math:`\mathbf{u}(T - t) = -\mathbf{u}(t)`, so the
exact final state is the initial one,

.. math:: q_0 = \exp\!\big(-|x - x_0|^2 / (2\sigma^2)\big), \quad \sigma = 0.06,
          \ x_0 = (0.35, 0.35, 0.35),

a smooth stand-in for LeVeque's ball of radius 0.15 (which is :math:`2.5\sigma`), on which
DG1 meets no Gibbs oscillations of an indicator; the error is
:math:`\|q_h(T) - q_0\|_{L^2}`. By :math:`t = T/2` the blob is stretched into a thin
curved sheet, which a moving mesh has to follow.

Under MPI the run agrees with the serial one to the quadrature error, not to round-off:
the quadrature rules of a tetrahedron are not symmetric under a permutation of its
vertices, and a distributed mesh numbers them differently, so the terms that are not
polynomials (the velocity, the exact solution) are sampled at other points.

Discretisation: :mod:`um2n_simulations.advection` (DG1 upwind, SSPRK3, ALE, the stage
velocity at each stage's time), on the gmsh mesh of the unit cube
(:func:`um2n.meshing.generate_solid_mesh`). The mesh is moved by the 3D mover (default
weights ``um2n-3d-v1``), its boundary vertices sliding in the cube's faces and along its
edges, its corners fixed. Monitor: the Hessian monitor of the P1 projection of :math:`q`,
:math:`1 + 3(|H|_F/\max|H|_F)^{1/2}`, the family of the 3D weights' training data. Chosen
on this synthetic case alone (exact solution; lc 0.12, dt 0.005, a move every 5 steps):
amplitude 3 reduces the error against the static mesh by 12 %; amplitude 8 makes cells
small enough for the explicit step to exceed its CFL limit at that time step. The mover's
safeguard keeps every cell at least a quarter of its reference volume
(``loop.min_cell_ratio = 0.25``, the least ratio amplitude 3 asks for): without it a few
cells collapse to a tenth of their volume far from any feature, and their altitudes, six
times smaller than the static mesh's smallest, set the stable time step.

Output: ``solution.pvd`` (the moving mesh and :math:`q`, for ParaView) and PNG sections of
:math:`q` and the mesh by the plane :math:`z = z_0` through the blob's centre.
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
class DeformationConfig:
    """Settings of the 3D deformation case (``[monitor]``, ``[loop]`` as for every case)."""

    lc: float = 0.12
    mesh_seed: int = 0
    dt: float = 0.005
    T: float = 1.5
    sigma: float = 0.06
    centre: tuple = (0.35, 0.35, 0.35)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    #: under MPI the network runs on the gathered mesh (the distributed network is 2D)
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(output_dir="output/deformation", move_every=5,
                                                                min_cell_ratio=0.25, parallel_network="gathered"))


def deformation_mesh(cfg: DeformationConfig, workdir: str | Path | None = None):
    """The unstructured gmsh mesh of the unit cube at ``cfg.lc``."""
    from um2n.meshing import generate_solid_mesh

    with tempfile.TemporaryDirectory() as tmp:
        msh = generate_solid_mesh("box", Path(workdir or tmp) / f"cube_lc{cfg.lc:g}.msh", lc=cfg.lc,
                                  seed=cfg.mesh_seed)
        return fd.Mesh(str(msh), name="cube")


def blob(cfg: DeformationConfig, x):
    """The initial (and exact final) state :math:`q_0` as a UFL expression."""
    return fd.exp(-sum((x[i] - cfg.centre[i]) ** 2 for i in range(3)) / (2 * cfg.sigma ** 2))


class DeformationProblem(ALEAdvectionProblem):
    """LeVeque's 3D deformation flow on :class:`~um2n_simulations.advection.ALEAdvectionProblem`."""

    #: q (degree 1) times the gradient of a test function (degree 0) times a velocity that
    #: varies on the scale of the domain: degree 4 integrates it to well below the
    #: discretisation error, at a fraction of the cost of UFL's estimate for the sines
    quadrature_degree = 4

    def __init__(self, mesh, cfg: DeformationConfig):
        self.cfg = cfg
        #: the PNG snapshots cut the mesh through the blob's centre
        self.snapshot_slice_z = cfg.centre[2]
        super().__init__(mesh, cfg.dt, cfg.T, cfg.monitor)

    def velocity(self, x):
        s, pi = fd.sin, math.pi
        return fd.as_vector([2 * s(pi * x[0]) ** 2 * s(2 * pi * x[1]) * s(2 * pi * x[2]),
                             -s(2 * pi * x[0]) * s(pi * x[1]) ** 2 * s(2 * pi * x[2]),
                             -s(2 * pi * x[0]) * s(2 * pi * x[1]) * s(pi * x[2]) ** 2])

    def velocity_scale(self, t: float, stage_time: float) -> float:
        return math.cos(math.pi * stage_time / self.cfg.T)

    def exact(self, x):
        return blob(self.cfg, x)


class DeformationCase(AdvectionCase):
    """``um2n simulate deformation``: the 3D deformation test, static and moved, and the
    static mesh refined (``--static-lc``) for the comparison at equal wall-clock time."""

    name = "deformation"
    help = "LeVeque's 3D deformation test, DG1 upwind + SSPRK3, on a moving tetrahedral mesh"
    description = ("Advect a Gaussian blob through LeVeque's reversing 3D vortex (T = 1.5) with the tetrahedral "
                   "mesh moved by the chosen mover(s) (continuously, ALE); print the L2 error against the exact "
                   "final state, each mover's error reduction with 'none' among the movers, and with --static-lc "
                   "the moved runs against the static mesh refined, at equal wall-clock time. Writes "
                   "OUTPUT/<run>/solution.pvd, diagnostics.csv, PNG sections (z through the blob's centre) "
                   "and checkpoint.h5.")
    config = DeformationConfig

    def title(self, cfg: DeformationConfig) -> str:
        return (f"3D deformation (LeVeque, T = {cfg.T:g}, dt = {cfg.dt:g}), DG1 on gmsh meshes of the unit cube "
                f"(lc {cfg.lc:g})")

    def make_mesh(self, cfg: DeformationConfig):
        return deformation_mesh(cfg)

    def make_problem(self, cfg: DeformationConfig, mesh) -> DeformationProblem:
        return DeformationProblem(mesh, cfg)


CASE = DeformationCase()
