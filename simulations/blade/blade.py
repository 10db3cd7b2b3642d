r"""The turbine-blade case: mesh, loads, boundary conditions and the loading cycle.

Geometry ``meshes/turbine_blade.geo`` (mm): a cambered aerofoil-like blade whose chord runs
along the radial direction :math:`y`, with three cooling holes. Plane strain in the plane of
rotation (see :mod:`um2n_simulations.blade.loading` for the load model): the root edge
:math:`y = 0` is **clamped** (:math:`u = 0`, a blade held by its disc), the outer surface
and the holes are traction free (no gas or coolant pressure). Loads: the hot-spot
temperature field and the radial centrifugal body force, both scaled by the cycle factor
:math:`\lambda(t)`. Units: mm, N, MPa, s, t/mm³ (:math:`\rho = 8.2\cdot10^{-9}` for a
nickel superalloy), °C.

:class:`BladeHF` runs the cycle with :class:`um2n_simulations.blade.hf.QuasiStaticViscoplasticity`
and keeps the snapshots a reduced model is built from: the displacement dof vectors and the
cumulated plastic strain at the quadrature points after every step.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import firedrake as fd
import numpy as np

from um2n_simulations.blade.hf import Dirichlet, NewtonConfig, QuasiStaticViscoplasticity, StepReport, VTKOutput
from um2n_simulations.blade.loading import LoadCycle, centrifugal_force, hot_spot_temperature
from um2n_simulations.blade.material import InternalVariables, Material

ROOT, OUTER, HOLES = 1, 2, 3


@dataclass
class BladeConfig:
    """Settings of the blade case (mm, N, MPa, s, °C)."""

    lc: float = 1.0                   # mesh size inside and on the outer surface
    lc_hole: float = 0.5              # mesh size on the cooling holes
    degree: int = 2                   # displacement: vector CG2
    material: Material = field(default_factory=Material)
    T0: float = 600.0                 # base temperature (= material T_ref: no base thermal stress)
    hot_spot: tuple[float, float] = (6.5, 14.0)
    hot_spot_width: float = 2.5       # s
    hot_spot_intensity: float = 250.0  # A
    rho: float = 8.2e-9               # t/mm^3
    omega: float = 1000.0             # rad/s
    r0: float = 400.0                 # radius of the root, mm
    cycle: LoadCycle = field(default_factory=LoadCycle)
    newton: NewtonConfig = field(default_factory=NewtonConfig)
    output_dir: str | None = None     # VTK series written there if set


def blade_mesh(cfg: BladeConfig) -> fd.Mesh:
    """The gmsh mesh of ``meshes/turbine_blade.geo`` at ``lc`` and ``lc_hole``."""
    from um2n.meshing import generate_mesh

    with tempfile.TemporaryDirectory() as tmp:
        msh = generate_mesh("turbine_blade", Path(tmp) / "blade.msh", lc=cfg.lc, numbers={"lc_hole": cfg.lc_hole})
        return fd.Mesh(str(msh), name="turbine_blade")


class BladeHF:
    """The high-fidelity blade model over one loading cycle (module docstring).

    Attributes a reduced model reuses: ``solver`` (the quadrature-point hooks), ``lam`` (the
    load factor Constant), ``snapshots`` (``t``, ``u`` (steps, n_dofs), ``p`` (steps, N), and
    with ``full_snapshots`` also ``stress`` and ``eps_p`` (steps, N, 4), Mandel).
    """

    def __init__(self, cfg: BladeConfig, mesh: fd.Mesh | None = None, full_snapshots: bool = False):
        self.cfg = cfg
        self.mesh = mesh if mesh is not None else blade_mesh(cfg)
        self.lam = fd.Constant(0.0)
        # the hot spot's parameters are Constants: set_load changes the thermal load without
        # rebuilding the solver (its forms are compiled once)
        self.hot_spot = (fd.Constant(cfg.hot_spot[0]), fd.Constant(cfg.hot_spot[1]))
        self.intensity = fd.Constant(cfg.hot_spot_intensity)
        T = hot_spot_temperature(self.mesh, cfg.T0, self.intensity, self.hot_spot, cfg.hot_spot_width, self.lam)
        f = centrifugal_force(self.mesh, cfg.rho, cfg.omega, cfg.r0, self.lam)
        self.solver = QuasiStaticViscoplasticity(
            self.mesh, cfg.material, degree=cfg.degree, temperature=T, body_force=f,
            dirichlet=[Dirichlet(ROOT, fd.Constant((0.0, 0.0)))], newton=cfg.newton)
        self.output = None
        if cfg.output_dir:
            Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
            self.output = VTKOutput(self.solver, str(Path(cfg.output_dir) / "blade.pvd"))
        self.full_snapshots = full_snapshots
        self.snapshots: dict[str, list] = {"t": [], "u": [], "p": []}
        if full_snapshots:
            self.snapshots.update(stress=[], eps_p=[])

    def set_load(self, hot_spot: tuple[float, float], intensity: float) -> None:
        """Change the thermal load (hot-spot position and intensity) and restart the cycle."""
        self.cfg = replace(self.cfg, hot_spot=tuple(hot_spot), hot_spot_intensity=intensity)
        self.hot_spot[0].assign(hot_spot[0])
        self.hot_spot[1].assign(hot_spot[1])
        self.intensity.assign(intensity)
        self.reset()

    def reset(self) -> None:
        """Back to the virgin state at t = 0 (displacement, internal variables, stress, snapshots)."""
        s = self.solver
        s.u.assign(0.0)
        s.set_internal_variables(InternalVariables.zeros(s.n_points))
        s.stress_q.assign(0.0)
        s.t = 0.0
        s.history.clear()
        self.lam.assign(0.0)
        for v in self.snapshots.values():
            v.clear()

    def run(self, steps: int | None = None) -> list[StepReport]:
        """Run the cycle (or its first ``steps`` steps); returns the step reports."""
        times = self.cfg.cycle.times()
        if steps is not None:
            times = times[:steps]
        reports = []
        for t in times:
            dt = t - self.solver.t
            self.lam.assign(self.cfg.cycle.factor(t))
            reports.append(self.solver.step(dt))
            self.snapshots["t"].append(self.solver.t)
            self.snapshots["u"].append(np.array(self.solver.u.dat.data_ro).ravel())
            self.snapshots["p"].append(np.array(self.solver.p_q.dat.data_ro))
            if self.full_snapshots:
                self.snapshots["stress"].append(np.array(self.solver.stress_q.dat.data_ro))
                self.snapshots["eps_p"].append(np.array(self.solver.eps_p_q.dat.data_ro))
            if self.output is not None:
                self.output.write()
        return reports
