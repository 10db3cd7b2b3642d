r"""Training data for UM2N: random domains, random anisotropic monitors, Monge-Ampère targets.

Each sample is one mesh, one monitor and the Monge-Ampère (MA) mesh for that monitor:

1. a domain, drawn from ``unit_square``, ``convex`` (convex hull of random points),
   ``nonconvex`` (a random star-shaped polygon) and ``hole`` (a star-shaped polygon with a
   polygonal hole), scaled to the unit box, meshed with gmsh at a size ``lc`` drawn from the
   configured list (boundary tags: 1 outer, 2 hole);
2. a manufactured solution :math:`u = \sum_{k=1}^{K} a_k \exp(-\tfrac12 (x - c_k)^T R_k^T
   D_k^{-2} R_k (x - c_k))` with :math:`K \in [1, 6]` random anisotropic Gaussians (the
   evaluation solves Helmholtz problems with it as exact solution);
3. the monitor :math:`m = 1 + \alpha\,(|H(u)|_F / \max |H(u)|_F)^p` from the *exact* Hessian
   of :math:`u` (UFL differentiation), so that the MA solver can evaluate it at any moved
   vertex. The UM2N paper uses :math:`\alpha = 5, p = 2`; the default here is
   :math:`\alpha = 3, p = 1/2`, closer to the :math:`|H|^{1/3}`-like density that is optimal
   for the P1 interpolation error in :math:`L^2`, and chosen by measurement: on 8 validation
   cases (seed 7) the Helmholtz error reduction of the MA mesh averaged +0.22 with it and
   -0.09 with the paper's monitor (which starves every feature but the sharpest);
4. the MA mesh (:class:`~um2n.fem.monge_ampere.MongeAmpereMover`, relaxation, with
   continuation in the monitor's amplitude when the direct solve fails). A solve that fails
   (no convergence, divergence, a tangled solution: labels are not repaired) is recorded in
   the manifest with its reason and skipped: never kept silently.

With ``dim = 3`` the domains are the gmsh solids of :func:`um2n.meshing.generate_solid_mesh`
(:data:`DOMAINS_3D`, meshed at sizes :data:`LCS_3D` unless configured), the Gaussians are
3D (three widths and three Euler angles), and the samples hold tetrahedra and boundary faces.

Files: ``<out>/samples/<id>.npz`` (points, triangles, boundary segments and tags, monitor at
the vertices, MA coordinates) and ``<out>/manifest.jsonl``, one JSON line per attempted
sample (seed, domain, lc, sources, status, MA iterations, residual and continuation stages
(0: the direct solve converged), time). Every sample
is written atomically before its manifest line, so an interrupted run resumes where it
stopped: samples already in the manifest are not redone. :class:`um2n.data.MeshMoveDataset`
loads the files as PyG ``Data``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import firedrake as fd
import numpy as np
import ufl

from um2n.errors import ConvergenceError, UM2NError
from um2n.fem.adapter import mesh_graph
from um2n.fem.monge_ampere import MongeAmpereMover
from um2n.fem.monitors import MonitorConfig
from um2n.io import atomic_path
from um2n.progress import progress as report_progress

DOMAINS = ("unit_square", "convex", "nonconvex", "hole")
#: families held out of training altogether (``benchmarks/um2n_vs_ma.py``)
HELD_OUT_DOMAINS = ("channel",)


@dataclass
class GenerateConfig:
    """What :func:`generate` makes (also the manifest's header)."""

    out: str
    num_samples: int = 100
    seed: int = 0
    domains: tuple = DOMAINS
    lcs: tuple = (0.05, 0.06, 0.07)
    max_sources: int = 6
    alpha: float = MonitorConfig.alpha          # the monitor family of the shipped weights
    power: float = MonitorConfig.power
    ma_rtol: float = 1e-3
    ma_maxiter: int = 400
    dim: int = 2                                # 3: tetrahedral meshes of the gmsh solids


#: The 3D data: :data:`um2n.meshing.SOLIDS` meshed at these sizes.
DOMAINS_3D = ("box", "l_prism", "box_sphere_hole", "box_cylinder_hole")
LCS_3D = (0.1, 0.125, 0.15)


@dataclass
class Source:
    """One anisotropic Gaussian of the manufactured solution."""

    amplitude: float
    centre: list
    widths: list
    angle: float | list          # 2D: the rotation angle; 3D: three Euler angles (z, y, z)

    def rotation(self) -> np.ndarray:
        """The 3D rotation :math:`R = R_z(a_0) R_y(a_1) R_z(a_2)` of the Gaussian's axes."""
        def rz(t):
            return np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])

        def ry(t):
            return np.array([[np.cos(t), 0.0, np.sin(t)], [0.0, 1.0, 0.0], [-np.sin(t), 0.0, np.cos(t)]])

        a = self.angle
        return rz(a[0]) @ ry(a[1]) @ rz(a[2])

    def ufl(self, x, constants: bool = False):
        """The Gaussian at ``x``; with ``constants`` its parameters are Firedrake Constants,
        so that forms with different sources share one compiled kernel."""
        if len(self.centre) == 3:
            R = self.rotation()
            d = [x[i] - self.centre[i] for i in range(3)]
            r = [sum(float(R[k, i]) * d[k] for k in range(3)) / self.widths[i] for i in range(3)]
            return self.amplitude * ufl.exp(-0.5 * (r[0] ** 2 + r[1] ** 2 + r[2] ** 2))
        c, s = np.cos(self.angle), np.sin(self.angle)
        values = [c, s, *self.centre, *self.widths, self.amplitude]
        if constants:
            values = [fd.Constant(v) for v in values]
        c, s, x0, y0, w0, w1, a = values
        dx, dy = x[0] - x0, x[1] - y0
        r1 = (c * dx + s * dy) / w0
        r2 = (-s * dx + c * dy) / w1
        return a * ufl.exp(-0.5 * (r1 ** 2 + r2 ** 2))


@dataclass
class Sample:
    """The random choices of one sample (stored in the manifest)."""

    index: int
    seed: int
    domain: str
    lc: float
    sources: list = field(default_factory=list)
    outer: list = field(default_factory=list)
    hole: list = field(default_factory=list)


# ---------------------------------------------------------------------------- domains
def random_polygon(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Outer polygon (counter-clockwise) and optional hole, in the unit box."""
    if kind == "unit_square":
        return np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float), None
    if kind == "channel":
        return _channel(rng), None
    if kind == "convex":
        pts = rng.random((12, 2))
        outer = _convex_hull(pts)
    else:
        n = int(rng.integers(6, 11))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        gaps = np.diff(np.r_[ang, ang[0] + 2 * np.pi])
        if gaps.min() < 0.25:                                 # avoid slivers: re-space evenly with jitter
            ang = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(-0.15, 0.15, n)
        lo = 0.45 if kind == "nonconvex" else 0.75
        rad = rng.uniform(lo, 1.0, len(ang))
        outer = np.column_stack([rad * np.cos(ang), rad * np.sin(ang)])
    outer = _unit_box(outer)
    hole = None
    if kind == "hole":
        c = outer.mean(axis=0) + rng.uniform(-0.05, 0.05, 2)
        m = int(rng.integers(4, 7))
        a = np.linspace(0, 2 * np.pi, m, endpoint=False) + rng.uniform(0, 2 * np.pi)
        r = rng.uniform(0.08, 0.14)
        hole = c + r * np.column_stack([np.cos(a), np.sin(a)])
    return outer, hole


def _channel_centre(x: np.ndarray, amplitude: float, waves: float, phase: float) -> np.ndarray:
    return 0.5 + amplitude * np.sin(2 * np.pi * waves * x + phase)


def _channel(rng: np.random.Generator) -> np.ndarray:
    """A long thin winding channel across the unit box: the centre line
    y = 1/2 + a sin(2 pi k x + p) over x in [0, 1], a width w in [0.12, 0.2] (offset
    vertically), 24 points a side."""
    a, k, p = rng.uniform(0.05, 0.15), rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi)
    w = rng.uniform(0.12, 0.2)
    x = np.linspace(0.0, 1.0, 24)
    c = _channel_centre(x, a, k, p)
    outer = np.vstack([np.column_stack([x, c - w / 2]), np.column_stack([x[::-1], c[::-1] + w / 2])])
    return outer


def _inside_channel(outer: np.ndarray, rng: np.random.Generator, sources: list) -> list:
    """Move each source's centre into the channel ``outer`` (same abscissa, within a third
    of the half-width of the centre line)."""
    n = len(outer) // 2
    x, lower, upper = outer[:n, 0], outer[:n, 1], outer[n:, 1][::-1]
    for src in sources:
        cx = float(np.clip(src.centre[0], 0.05, 0.95))
        lo, hi = np.interp(cx, x, lower), np.interp(cx, x, upper)
        src.centre = [cx, float(0.5 * (lo + hi) + rng.uniform(-1, 1) * (hi - lo) / 6)]
    return sources


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def _convex_hull(pts: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain, counter-clockwise."""
    p = pts[np.lexsort((pts[:, 1], pts[:, 0]))]

    def half(points):
        h = []
        for q in points:
            while len(h) >= 2 and _cross(h[-1] - h[-2], q - h[-2]) <= 0:
                h.pop()
            h.append(q)
        return h

    lower, upper = half(p), half(p[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _unit_box(poly: np.ndarray) -> np.ndarray:
    lo = poly.min(axis=0)
    return (poly - lo) / (poly.max(axis=0) - lo).max()


def mesh_polygon(outer: np.ndarray, hole: np.ndarray | None, lc: float, path: Path, seed: int = 0) -> Path:
    """Mesh a polygon (with an optional hole) with gmsh; tags 1 outer, 2 hole, surface 1."""
    import gmsh

    gmsh.initialize(readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("domain")
        loops, tags = [], {}
        for k, poly in enumerate([outer] + ([] if hole is None else [hole])):
            pts = [gmsh.model.geo.addPoint(x, y, 0.0, lc) for x, y in poly]
            lines = [gmsh.model.geo.addLine(pts[i], pts[(i + 1) % len(pts)]) for i in range(len(pts))]
            loops.append(gmsh.model.geo.addCurveLoop(lines))
            tags[k + 1] = lines
        surf = gmsh.model.geo.addPlaneSurface(loops)
        gmsh.model.geo.synchronize()
        for tag, lines in tags.items():
            gmsh.model.addPhysicalGroup(1, lines, tag)
        gmsh.model.addPhysicalGroup(2, [surf], 1)
        gmsh.option.setNumber("Mesh.RandomSeed", seed)
        gmsh.model.mesh.generate(2)
        gmsh.option.setNumber("Mesh.MshFileVersion", 2.2)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()
    return path


# ---------------------------------------------------------------------------- monitors
def random_sources(rng: np.random.Generator, max_sources: int, dim: int = 2) -> list[Source]:
    k = int(rng.integers(1, max_sources + 1))
    if dim == 3:
        return [Source(amplitude=float(rng.uniform(0.5, 1.5) * rng.choice([-1, 1])),
                       centre=rng.uniform(0.1, 0.9, 3).tolist(), widths=rng.uniform(0.05, 0.3, 3).tolist(),
                       angle=rng.uniform(0, np.pi, 3).tolist())
                for _ in range(k)]
    return [Source(amplitude=float(rng.uniform(0.5, 1.5) * rng.choice([-1, 1])),
                   centre=rng.uniform(0.1, 0.9, 2).tolist(),
                   widths=rng.uniform(0.03, 0.25, 2).tolist(), angle=float(rng.uniform(0, np.pi)))
            for _ in range(k)]


def exact_solution(sources: list[Source], x, constants: bool = False):
    """The manufactured solution, the sum of the Gaussians (see :meth:`Source.ufl`)."""
    return sum(s.ufl(x, constants) for s in sources)


def hessian_monitor_function(sources: list[Source], alpha: float, reference_mesh, power: float = 2.0,
                             constants: bool = False):
    r"""``monitor(mesh)``: :math:`1 + \alpha (|H(u)|_F / M)^p`, with :math:`M` the maximum of
    :math:`|H(u)|_F` over the vertices of ``reference_mesh`` and :math:`p` = ``power``
    (``constants``: the parameters as Firedrake Constants, see :meth:`Source.ufl`)."""
    x = ufl.SpatialCoordinate(reference_mesh)
    u = exact_solution(sources, x, constants)
    H = ufl.grad(ufl.grad(u))
    P1 = fd.FunctionSpace(reference_mesh, "CG", 1)
    top = float(fd.Function(P1).interpolate(ufl.inner(H, H)).dat.data_ro.max())
    half = 0.5 * power
    a, t, tiny = (fd.Constant(alpha), fd.Constant(top), fd.Constant(1e-30 * top)) if constants else \
        (alpha, top, 1e-30 * top)

    def monitor(mesh):
        y = ufl.SpatialCoordinate(mesh)
        Hy = ufl.grad(ufl.grad(exact_solution(sources, y, constants)))
        if power == 2.0:
            return 1 + a * ufl.inner(Hy, Hy) / t
        return 1 + a * ((ufl.inner(Hy, Hy) + tiny) / t) ** half

    return monitor


# ---------------------------------------------------------------------------- the run
def draw_sample(config: GenerateConfig, index: int) -> Sample:
    seed = int(np.random.SeedSequence([config.seed, index]).generate_state(1)[0])
    rng = np.random.default_rng(seed)
    domain = str(config.domains[index % len(config.domains)])
    if config.dim == 3:
        lc = float(rng.choice(config.lcs))
        sources = random_sources(rng, config.max_sources, dim=3)
        return Sample(index=index, seed=seed, domain=domain, lc=lc, sources=[asdict(s) for s in sources],
                      outer=[], hole=None)
    outer, hole = random_polygon(rng, domain)
    lc = float(rng.choice(config.lcs))
    rng.choice(("helmholtz", "poisson"))     # kept: a draw of the first data set, keeps its seeds valid
    sources = random_sources(rng, config.max_sources)
    if domain == "channel":
        sources = _inside_channel(outer, rng, sources)
    return Sample(index=index, seed=seed, domain=domain, lc=lc,
                  sources=[asdict(s) for s in sources],
                  outer=outer.tolist(), hole=None if hole is None else hole.tolist())


def make_sample(config: GenerateConfig, sample: Sample, workdir: Path) -> dict:
    """Mesh, monitor and MA target of one sample; returns the arrays to save."""
    if config.dim == 3:
        from um2n.meshing import generate_solid_mesh

        msh = generate_solid_mesh(sample.domain, workdir / f"{sample.index}.msh", lc=sample.lc,
                                  seed=sample.seed % (2 ** 31))
    else:
        msh = mesh_polygon(np.array(sample.outer), None if sample.hole is None else np.array(sample.hole),
                           sample.lc, workdir / f"{sample.index}.msh", seed=sample.seed % (2 ** 31))
    mesh = fd.Mesh(str(msh))
    graph = mesh_graph(mesh)
    sources = [Source(**s) for s in sample.sources]
    monitor = hessian_monitor_function(sources, config.alpha, mesh, config.power)
    P1 = fd.FunctionSpace(mesh, "CG", 1)
    m0 = np.array(fd.Function(P1).interpolate(monitor(mesh)).dat.data_ro)
    # a label is an MA solution: continuation may find it, but a tangled one is not repaired
    mover = MongeAmpereMover(mesh, monitor, rtol=config.ma_rtol, maxiter=config.ma_maxiter, graph=graph,
                             repair=False)
    result = mover.move()
    cells = ({"tets": graph.tets, "boundary_faces": graph.boundary_faces} if config.dim == 3 else
             {"triangles": graph.triangles, "boundary_segments": graph.boundary_edges})
    return {
        "points": graph.points, **cells, "boundary_tags": graph.boundary_tags,
        "monitor": m0, "target": np.array(mesh.coordinates.dat.data_ro),
        "ma_iterations": result.iterations, "ma_residual": result.residual,
        "ma_continuation_stages": len(result.continuation),
    }


def _save_npz(path: Path, arrays: dict) -> None:
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def read_manifest(out: Path) -> list[dict]:
    path = out / "manifest.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:   # a line cut by a kill: that sample is redone
                continue
    return rows


def generate(config: GenerateConfig, progress: bool = True) -> dict:
    """Make ``config.num_samples`` samples in ``config.out``, resuming an earlier run."""
    out = Path(config.out)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    header = out / "config.json"
    cfg = asdict(config)
    if header.exists():
        old = json.loads(header.read_text())
        old.setdefault("power", 2.0)              # data sets made before ``power`` existed
        old.setdefault("dim", 2)                  # ... and before ``dim``
        keys = set(cfg) - {"num_samples", "out"}
        same = {k: old.get(k) for k in keys} == {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()
                                                  if k in keys}
        if not same:
            raise ValueError(f"{out}: holds a data set made with another configuration ({header}); "
                             "use another folder")
    else:
        with atomic_path(header) as tmp:
            Path(tmp).write_text(json.dumps(cfg, indent=2))
    done = {row["index"] for row in read_manifest(out)}
    todo = [i for i in range(config.num_samples) if i not in done]
    counts = {"ok": 0, "failed": 0, "skipped_done": len(done)}
    mpath = out / "manifest.jsonl"
    if mpath.exists() and mpath.stat().st_size:
        with open(mpath, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        if cut:                                   # a line cut by a kill: end it, it is ignored
            with open(mpath, "a") as f:
                f.write("\n")
    with tempfile.TemporaryDirectory() as work, open(out / "manifest.jsonl", "a") as manifest:
        for i in report_progress(todo, "um2n generate", enabled=progress, unit="sample"):
            sample = draw_sample(config, i)
            row = asdict(sample)
            t0 = time.perf_counter()
            try:
                arrays = make_sample(config, sample, Path(work))
                _save_npz(out / "samples" / f"{i:06d}.npz", arrays)
                row.update(status="ok", file=f"samples/{i:06d}.npz", vertices=int(len(arrays["points"])),
                           ma_iterations=int(arrays["ma_iterations"]), ma_residual=float(arrays["ma_residual"]),
                           ma_continuation_stages=int(arrays["ma_continuation_stages"]))
                counts["ok"] += 1
            except (UM2NError, fd.ConvergenceError, RuntimeError, ValueError) as exc:
                # a failed sample (MA divergence or tangling, a failed solve, a gmsh error) is
                # recorded and skipped; the run goes on
                reason = str(exc) if isinstance(exc, ConvergenceError) else f"{type(exc).__name__}: {exc}"
                row.update(status="failed", reason=reason.strip().splitlines()[0] if reason.strip() else reason)
                counts["failed"] += 1
            row["seconds"] = round(time.perf_counter() - t0, 3)
            manifest.write(json.dumps(row) + "\n")
            manifest.flush()
            os.fsync(manifest.fileno())
    return counts
