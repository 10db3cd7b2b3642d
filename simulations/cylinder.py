r"""Flow past a cylinder: the DFG benchmarks 2D-1 (Re = 20, steady) and 2D-2 (Re = 100, periodic).

Schäfer & Turek (1996): channel :math:`[0, 2.2]\times[0, 0.41]`, cylinder of diameter
:math:`D = 0.1` centred at :math:`(0.2, 0.2)` (``meshes/dfg_cylinder.geo``), :math:`\rho = 1`,
:math:`\nu = 10^{-3}`, inflow :math:`u = 4U y(0.41 - y)/0.41^2`, no slip on the walls and the
cylinder, do-nothing outflow; :math:`U = 0.3` (2D-1) or :math:`1.5` (2D-2), mean inflow
:math:`\bar U = 2U/3`.

Discretisation: :class:`um2n_simulations.navier_stokes.NavierStokesSolver` (Taylor-Hood
P2-P1, Crank-Nicolson, one Newton solve per step with MUMPS, built once and re-solved; in
ALE form on a moving mesh, the convection relative to the mesh velocity).

Forces on the cylinder, :math:`F = -\int_{S} \sigma n\,ds` with
:math:`\sigma = -pI + \nu(\nabla u + \nabla u^T)` and :math:`n` the outward normal of the
fluid, are evaluated in the equivalent *weak* (residual) form: for a P2 field :math:`w`
equal to :math:`e_x` (drag) or :math:`e_y` (lift) on the cylinder and 0 on the other
boundaries, :math:`F\cdot e = -R(u, p; w)`, with :math:`R` the solver's momentum residual
(the boundary integral by parts). It is the same stress integral, but converges at the rate
of the solution instead of the polygonal boundary's. :math:`c_D = 2F_D/(\rho\bar U^2 D)`,
:math:`c_L = 2F_L/(\rho\bar U^2 D)`, :math:`\Delta p = p(0.15, 0.2) - p(0.25, 0.2)`, and the
Strouhal number :math:`St = D f/\bar U` from the mean period between the maxima of
:math:`c_L(t)` over the last part of the run.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import firedrake as fd
import numpy as np

from um2n.errors import UM2NError
from um2n.fem.adapter import vertex_count
from um2n.fem.loop import LoopConfig, MovingMeshProblem
from um2n.fem.monitors import MonitorConfig, SolutionMonitor
from um2n.fem.study import Case
from um2n_simulations.navier_stokes import NavierStokesSolver

INFLOW, OUTFLOW, WALLS, CYLINDER = 1, 2, 3, 4
DIAMETER = 0.1
CENTRE = (0.2, 0.2)

#: The DFG reference intervals (Schäfer & Turek 1996).
REFERENCE = {
    "2d-1": {"c_D": (5.57, 5.59), "c_L": (0.0104, 0.0110), "dp": (0.1172, 0.1176)},
    "2d-2": {"c_D_max": (3.22, 3.24), "c_L_max": (0.99, 1.01), "St": (0.295, 0.305), "dp": (2.46, 2.50)},
}


@dataclass
class CylinderConfig:
    """Settings of the cylinder case (``[monitor]``: the monitor, of the speed; ``[loop]``: the
    moving-mesh loop)."""

    case: str = "2d-2"
    lc: float = 0.04
    lc_cyl: float = 0.008
    lc_wake: float = 0.0        # size in the wake box [0.1, 1] x [0.1, 0.31]; 0: no box
    curved: bool = False        # P2 geometry: the cylinder's edges on the circle (static meshes)
    refine: int = 0
    nu: float = 1e-3
    dt: float = 0.01
    T: float = 8.0
    statistics_from: float = 6.0
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(output_dir="output/cylinder", move_every=10,
                                                                output_every=20, checkpoint_every=50))

    @property
    def U(self) -> float:
        return {"2d-1": 0.3, "2d-2": 1.5}[self.case]

    @property
    def Ubar(self) -> float:
        return 2.0 * self.U / 3.0


def cylinder_mesh(cfg: CylinderConfig):
    """The gmsh mesh of ``meshes/dfg_cylinder.geo`` at ``lc`` (far field), ``lc_cyl`` and
    ``lc_wake``, all halved ``refine`` times; with ``curved``, of degree 2
    (:func:`curved_cylinder_mesh`)."""
    from um2n.meshing import generate_mesh

    with tempfile.TemporaryDirectory() as tmp:
        scale = 0.5 ** cfg.refine
        numbers = {"lc_cyl": cfg.lc_cyl * scale}
        if cfg.lc_wake > 0:
            numbers["lc_wake"] = cfg.lc_wake * scale
        msh = generate_mesh("dfg_cylinder", Path(tmp) / "dfg.msh", lc=cfg.lc * scale, numbers=numbers)
        mesh = fd.Mesh(str(msh), name="dfg_cylinder")
    return curved_cylinder_mesh(mesh) if cfg.curved else mesh


def curved_cylinder_mesh(mesh):
    r"""The mesh with P2 coordinates whose nodes on the cylinder lie on the circle.

    Every node of the P2 coordinate field on the cylinder (the vertices, already on it, and
    the edge midpoints, inside it by :math:`r(1 - \cos(\pi/N))` on a polygon of :math:`N`
    edges) is placed at :math:`c + r (x - c)/|x - c|`; the other nodes are the straight
    elements' own. The boundary is then followed to :math:`O(h^3)` instead of
    :math:`O(h^2)`, which is what the P2 velocity's forces on the cylinder need to converge at
    their own order."""
    V = fd.VectorFunctionSpace(mesh, "CG", 2)
    X = fd.Function(V).interpolate(fd.SpatialCoordinate(mesh))
    nodes = fd.DirichletBC(V, fd.Constant((0.0, 0.0)), CYLINDER).nodes
    centre = np.array(CENTRE)
    d = X.dat.data_ro[nodes] - centre
    X.dat.data[nodes] = centre + 0.5 * DIAMETER * d / np.linalg.norm(d, axis=1)[:, None]
    return fd.Mesh(X, name=mesh.name)


class CylinderFlow(MovingMeshProblem):
    """Taylor-Hood Navier-Stokes around the DFG cylinder (see the module docstring)."""

    supports_ale = True

    def __init__(self, mesh, cfg: CylinderConfig):
        super().__init__(mesh)
        if cfg.case not in REFERENCE:
            raise ValueError(f"case must be one of {', '.join(REFERENCE)}, not {cfg.case!r}")
        self.cfg = cfg
        self.steady = cfg.case == "2d-1"
        self.dt = cfg.dt
        self.num_steps = 1 if self.steady else int(round(cfg.T / cfg.dt))
        x = fd.SpatialCoordinate(mesh)
        inflow = fd.as_vector([4 * cfg.U * x[1] * (0.41 - x[1]) / 0.41 ** 2, 0])

        def bcs(W):
            return [fd.DirichletBC(W.sub(0), inflow, INFLOW), fd.DirichletBC(W.sub(0), 0, WALLS),
                    fd.DirichletBC(W.sub(0), 0, CYLINDER)]

        self.ns = NavierStokesSolver(mesh, cfg.nu, cfg.dt, bcs, mesh_velocity=self.motion.velocity,
                                     steady=self.steady)
        self.W, self.w = self.ns.W, self.ns.state
        self.velocity, self.pressure, self.momentum = self.ns.velocity, self.ns.pressure, self.ns.momentum
        V = self.velocity.function_space()
        # force probes: w = e on the cylinder, 0 elsewhere (rebuilt after a move)
        self._probe = {k: fd.Function(V) for k in ("drag", "lift")}
        self._probe_bcs = {"drag": fd.DirichletBC(V, fd.Constant((1.0, 0.0)), CYLINDER),
                           "lift": fd.DirichletBC(V, fd.Constant((0.0, 1.0)), CYLINDER)}
        self._force_forms = {k: self.momentum(f) for k, f in self._probe.items()}
        self._set_probes()
        self.P1 = fd.FunctionSpace(mesh, "CG", 1)
        self.vorticity = fd.Function(self.P1, name="vorticity")
        self._monitor = SolutionMonitor(mesh, fd.sqrt(fd.inner(self.velocity, self.velocity)), cfg.monitor,
                                        method="interpolate", name="speed")
        #: the coefficients after the latest step (the loop's diagnostics keep them all)
        self.latest: dict = {}
        self._set_pressure_probe()

    def _set_pressure_probe(self):
        # the two points lie on the cylinder: a small tolerance finds them on a polygonal mesh
        self._dp_points = fd.PointEvaluator(self.mesh, [[0.15, 0.2], [0.25, 0.2]], tolerance=1e-6)

    def _set_probes(self):
        for k, f in self._probe.items():
            f.assign(0)
            self._probe_bcs[k].apply(f)

    # ------------------------------------------------------------------ loop interface
    def fields(self):
        return {"velocity": self.velocity, "pressure": self.pressure}

    def step(self, t: float) -> None:
        """One Crank-Nicolson step; on a moving mesh (ALE), on the geometry at the step's end."""
        if self.motion.active:
            self.motion.place(1.0)
            self._set_pressure_probe()
        self.ns.step()
        self.latest = {"t": t + (0.0 if self.steady else self.dt), **self.coefficients()}

    def monitor(self) -> fd.Function:
        return self._monitor()

    def mesh_moved(self) -> None:
        self._set_probes()
        self._set_pressure_probe()

    def output_functions(self):
        self.vorticity.interpolate(self.velocity[1].dx(0) - self.velocity[0].dx(1))
        return [self.vorticity, self.velocity, self.pressure]

    def coefficients(self) -> dict:
        """c_D, c_L (weak-form stress integral) and Δp of the current solution."""
        scale = 2.0 / (self.cfg.Ubar ** 2 * DIAMETER)
        out = {}
        for k, name in (("drag", "c_D"), ("lift", "c_L")):
            out[name] = -scale * float(fd.assemble(self._force_forms[k]))
        front, back = np.ravel(self._dp_points.evaluate(self.w.subfunctions[1]))
        out["dp"] = float(front - back)
        return out

    def diagnostics(self, t: float) -> dict:
        return dict(self.latest)

    def summary(self, t: float) -> dict:
        """The mesh size, and for 2D-1 the coefficients (2D-2's statistics come from the whole
        run's diagnostics, in :meth:`CylinderCase.finish`)."""
        return {**(self.latest if self.steady else {}), "vertices": vertex_count(self.mesh),
                "dofs": self.W.dim()}


def sampled_maximum(y: np.ndarray) -> float:
    r"""The maximum of a smooth signal sampled at equal steps: the vertex of the parabola
    through the largest sample and its two neighbours (the sample itself at an end). The
    reference values are maxima of the continuous signal, which a sample can miss by
    :math:`O((2\pi f \Delta t)^2)`."""
    i = int(np.argmax(y))
    if i == 0 or i == len(y) - 1:
        return float(y[i])
    y0, y1, y2 = y[i - 1], y[i], y[i + 1]
    den = y0 - 2 * y1 + y2
    return float(y1 - (y0 - y2) ** 2 / (8 * den)) if den < 0 else float(y1)


def periodic_statistics(history: list[dict], cfg: CylinderConfig) -> dict:
    """max c_D and max c_L (:func:`sampled_maximum`), St (mean period between lift maxima) and
    the Δp of the window."""
    h = [r for r in history if r["t"] >= cfg.statistics_from and "c_L" in r]
    if len(h) < 3:
        return {"error": f"no data after t = {cfg.statistics_from}"}
    t = np.array([r["t"] for r in h])
    cl = np.array([r["c_L"] for r in h])
    cd = np.array([r["c_D"] for r in h])
    dp = np.array([r["dp"] for r in h])
    peaks = [i for i in range(1, len(cl) - 1) if cl[i] > cl[i - 1] and cl[i] >= cl[i + 1] and cl[i] > 0]
    out = {"c_D_max": sampled_maximum(cd), "c_L_max": sampled_maximum(cl), "c_L_min": -sampled_maximum(-cl),
           "window": [float(t[0]), float(t[-1])], "lift_maxima": len(peaks)}
    if len(peaks) >= 2:
        # parabolic refinement of each maximum's time
        tp = []
        for i in peaks:
            y0, y1, y2 = cl[i - 1], cl[i], cl[i + 1]
            den = y0 - 2 * y1 + y2
            shift = 0.5 * (y0 - y2) / den if den != 0 else 0.0
            tp.append(t[i] + shift * (t[1] - t[0]))
        period = float(np.mean(np.diff(tp)))
        out["St"] = DIAMETER / (period * cfg.Ubar)
        # Δp at the start of a period: the time of the lift maximum (as in the benchmark's t0 + 1/(2f))
        out["dp_at_lift_max"] = float(dp[peaks[-1]])
    return out


def check_reference(case: str, values: dict) -> dict:
    """For each reference quantity: value, interval and whether it lies inside."""
    out = {}
    for k, (lo, hi) in REFERENCE[case].items():
        key = "dp_at_lift_max" if case == "2d-2" and k == "dp" else k
        v = values.get(key)
        out[k] = {"value": v, "interval": [lo, hi], "inside": v is not None and lo <= v <= hi}
    return out


class CylinderCase(Case):
    """``um2n simulate cylinder``: DFG 2D-1 or 2D-2 against the reference intervals."""

    name = "cylinder"
    help = "DFG flow past a cylinder (2D-1 steady, 2D-2 periodic), Taylor-Hood"
    description = ("Navier-Stokes flow past the DFG cylinder (meshes/dfg_cylinder.geo) with Taylor-Hood P2-P1 "
                   "and Newton + MUMPS; prints c_D, c_L, St and dp against the reference intervals of Schaefer "
                   "& Turek (1996). Writes OUTPUT/<mover>/solution.pvd, diagnostics.csv (forces over time), "
                   "snapshots (PNG) and checkpoint.h5.")
    config = CylinderConfig

    def add_arguments(self, parser) -> None:
        parser.add_argument("--case", dest="case_name", choices=list(REFERENCE),
                            help="benchmark (default: the config's)")

    def configure(self, cfg: CylinderConfig, args) -> None:
        if args.case_name:
            cfg.case = args.case_name

    def make_mesh(self, cfg: CylinderConfig):
        if cfg.curved and cfg.loop.mover != "none":
            raise UM2NError(f"cylinder: curved = true needs mover 'none', not {cfg.loop.mover!r} "
                            "(the movers move meshes with straight (P1) elements)")
        return cylinder_mesh(cfg)

    def make_problem(self, cfg: CylinderConfig, mesh) -> CylinderFlow:
        return CylinderFlow(mesh, cfg)

    def finish(self, cfg: CylinderConfig, result, out: Path) -> None:
        """2D-2's statistics over the diagnostics from ``statistics_from`` on (a resumed run's
        included), and every reference quantity against its interval."""
        if cfg.case != "2d-1":
            result.summary.update(periodic_statistics(result.diagnostics, cfg))
        result.extras["reference"] = check_reference(cfg.case, result.summary)

    def report(self, cfg: CylinderConfig, study: dict) -> None:
        print(f"\nDFG {cfg.case} (Schaefer & Turek 1996): value [reference interval]")
        for label, r in study["runs"].items():
            ref = "  ".join(f"{k} {v['value']:.4g} [{v['interval'][0]:g}, {v['interval'][1]:g}]"
                            f"{'' if v['inside'] else ' (outside)'}" if v["value"] is not None else f"{k} -"
                            for k, v in r["reference"].items())
            print(f"{label:<6} {r['summary'].get('vertices', '-'):>7} vertices  {ref}  {r['moves']} moves, "
                  f"{r['max_inverted']} tangled  ({r['output']})")
        print(f"(summary: {study['summary_path']})")


CASE = CylinderCase()
