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

The outline's constants (chord, thickness, camber, root cut) are read from the ``.geo`` file
(:func:`blade_outline`), its only definition; :func:`suction_side_x` evaluates the suction
side of that outline, where the thermal loads' hot spots sit (:func:`suction_side_load`).
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import firedrake as fd
import numpy as np

from um2n_simulations.blade.hf import Dirichlet, NewtonConfig, QuasiStaticViscoplasticity, StepReport, VTKOutput
from um2n_simulations.blade.loading import LoadCycle, centrifugal_force, hot_spot_temperature
from um2n_simulations.blade.material import InternalVariables, Material
from um2n_simulations.blade.rom import ThermalLoad

ROOT, OUTER, HOLES = 1, 2, 3
#: the geometry (meshes/turbine_blade.geo) and the constants of its outline
GEOMETRY = "turbine_blade"
OUTLINE_CONSTANTS = ("c", "tau", "m", "pc", "xi0")
#: a plain numeric assignment ``name = value;`` at the start of a line of a .geo file
_GEO_NUMBER = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*;")


def geo_constants(geo: str | os.PathLike, names: Sequence[str]) -> dict[str, float]:
    """The numeric constants ``name = value;`` of a gmsh ``.geo`` file.

    ``geo`` is a path or the name of a geometry in ``meshes/``. Only plain numeric
    assignments at the start of a line are read (a comment may follow).

    Raises
    ------
    MeshInputError
        A constant of ``names`` is not assigned a number in the file, or is assigned more
        than once; the message names the file and the constant.
    """
    from um2n.errors import MeshInputError
    from um2n.meshing import geo_path

    path = geo_path(str(geo))
    found: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        if m := _GEO_NUMBER.match(line):
            found.setdefault(m[1], []).append(float(m[2]))
    out = {}
    for name in names:
        values = found.get(name, [])
        if len(values) != 1:
            what = "no line" if not values else f"{len(values)} lines"
            raise MeshInputError(f"{path}: constant {name!r}: {what} '{name} = <number>;' "
                                 f"(the blade outline needs {', '.join(names)})")
        out[name] = values[0]
    return out


@functools.lru_cache(maxsize=None)
def blade_outline() -> dict[str, float]:
    """Chord ``c``, thickness ``tau``, camber ``m`` at ``pc`` and root cut ``xi0`` of the blade (.geo)."""
    return geo_constants(GEOMETRY, OUTLINE_CONSTANTS)


def suction_side_x(y: float) -> float:
    r""":math:`x` of the suction side at span :math:`y`: :math:`c\,(y_c(\xi) + y_t(\xi))`,
    :math:`\xi = y/c + \xi_0` (the outline of ``meshes/turbine_blade.geo``)."""
    g = blade_outline()
    xi = y / g["c"] + g["xi0"]
    yt = 5 * g["tau"] * (0.2969 * np.sqrt(xi) - 0.1260 * xi - 0.3516 * xi ** 2 + 0.2843 * xi ** 3 - 0.1015 * xi ** 4)
    m, p = g["m"], g["pc"]
    yc = m / p ** 2 * (2 * p * xi - xi ** 2) if xi < p else m / (1 - p) ** 2 * (1 - 2 * p + 2 * p * xi - xi ** 2)
    return float(g["c"] * (yc + yt))


def suction_side_load(y: float, A: float, depth: float) -> ThermalLoad:
    """A hot spot ``depth`` mm inside the suction side at span ``y``, intensity ``A``."""
    return ThermalLoad((suction_side_x(y) - depth, float(y)), float(A))


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
        msh = generate_mesh(GEOMETRY, Path(tmp) / "blade.msh", lc=cfg.lc, numbers={"lc_hole": cfg.lc_hole})
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
