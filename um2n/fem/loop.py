r"""The one moving-mesh time loop, shared by every simulation of um2n.

Each cycle of :func:`run_moving_mesh`:

1. **solve** one time step (:meth:`MovingMeshProblem.step`);
2. every ``move_every`` steps, **monitor**: the problem builds a P1 monitor from its
   current solution (:meth:`MovingMeshProblem.monitor`);
3. **move** the mesh with the chosen mover, always from the *reference* mesh
   :math:`\xi` (the mesh the run started on) to :math:`x(\xi)`, as r-adaptation does:

   * ``"um2n"``: the pretrained network (:class:`um2n.mover.UM2NMover`), fed the monitor
     evaluated at the reference vertices;
   * ``"ma"``: the Monge-Ampère mover (:class:`um2n.fem.monge_ampere.MongeAmpereMover`),
     which evaluates the monitor at every iterate by interpolation from the pre-move mesh;
   * ``"none"``: the mesh stays as it is (the static baseline).

   The orientation of every element is checked after each move. A move that fails (a
   Monge-Ampère :class:`~um2n.fem.monge_ampere.ConvergenceError`) or that would tangle the
   mesh is undone, counted in ``moves_rejected``, and the run goes on on the previous mesh:
   the loop never hands a tangled mesh to the solver;
4. **transfer** the fields onto the moved mesh (:class:`um2n.fem.transfer.FieldTransfer`,
   conservative :math:`L^2` projection on the supermesh by default), then let the problem
   refresh what it derives from the geometry (:meth:`MovingMeshProblem.mesh_moved`);
5. **output**: a row of diagnostics to ``diagnostics.csv`` every step, the output fields
   to a ParaView series ``solution.pvd`` (``VTKFile``, the mesh as it is at that time) every
   ``output_every`` steps, and a restart file ``checkpoint.h5`` (Firedrake
   ``CheckpointFile``: mesh, reference coordinates, prognostic fields, step) every
   ``checkpoint_every`` steps, written to a temporary name and renamed, so that a kill
   leaves the previous checkpoint intact.

Run again with the same output folder and ``resume=True``: the run continues from the last
checkpoint (the diagnostics written after it are dropped and redone), and gives the same
fields as a run that was never interrupted.
"""

from __future__ import annotations

import csv
import json
import os
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import firedrake as fd
import numpy as np

from um2n.errors import UM2NError
from um2n.fem.adapter import mesh_graph, move_mesh
from um2n.fem.transfer import FieldTransfer
from um2n.mesh import signed_areas

MOVERS = ("um2n", "ma", "none")


@dataclass
class LoopConfig:
    """Settings of :func:`run_moving_mesh` (every simulation's ``[loop]`` table)."""

    mover: str = "um2n"
    move_every: int = 10
    output_every: int = 50
    checkpoint_every: int = 100
    transfer: str = "conservative"
    weights: str | None = None
    ma_rtol: float = 1e-3
    ma_maxiter: int = 300
    output_dir: str = "output/run"
    write_vtk: bool = True
    snapshots: int = 4
    progress: bool = True

    def __post_init__(self):
        if self.mover not in MOVERS:
            raise UM2NError(f"mover must be one of {', '.join(MOVERS)}, not {self.mover!r}")
        for name in ("move_every", "output_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise UM2NError(f"{name} must be a positive number of steps, got {getattr(self, name)}")


class MovingMeshProblem(ABC):
    """What a simulation gives the loop. Build solvers once in ``__init__`` on ``mesh``."""

    #: time step and number of steps
    dt: float
    num_steps: int

    def __init__(self, mesh):
        self.mesh = mesh

    @abstractmethod
    def fields(self) -> dict[str, fd.Function]:
        """The prognostic fields: transferred after each move, saved in checkpoints."""

    @abstractmethod
    def step(self, t: float) -> None:
        """Advance the fields from ``t`` to ``t + dt`` on the current mesh."""

    @abstractmethod
    def monitor(self) -> fd.Function:
        """A P1 monitor function (values >= 1 after normalisation) from the current solution."""

    def sync_fields(self) -> None:
        """Bring :meth:`fields` up to date with the solver's state just before the loop reads
        them (a transfer, a checkpoint), for fields derived from it, such as a momentum
        :math:`q = Hu` kept beside a velocity; by default nothing (they are the state)."""

    def mesh_moved(self) -> None:
        """Refresh what depends on the geometry (re-evaluate data, reset solvers)."""

    def output_functions(self) -> list[fd.Function]:
        """Functions written to the ParaView series (default: the prognostic fields)."""
        return list(self.fields().values())

    def diagnostics(self, t: float) -> dict[str, float]:
        """Scalars written to ``diagnostics.csv`` after every step."""
        return {}

    def summary(self, t: float) -> dict:
        """End-of-run figures (errors against references, ...)."""
        return {}


@dataclass
class LoopResult:
    """What :func:`run_moving_mesh` measured."""

    steps: int
    t: float
    moves: int = 0
    moves_rejected: int = 0
    max_inverted: int = 0
    timings: dict = field(default_factory=lambda: {"solve": 0.0, "monitor": 0.0, "move": 0.0,
                                                   "transfer": 0.0, "output": 0.0})
    summary: dict = field(default_factory=dict)
    resumed_from_step: int | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["seconds_per_step"] = {k: v / max(self.steps, 1) for k, v in self.timings.items()}
        return d


class _Mover:
    """The chosen mover, always from the reference coordinates ``xi``."""

    def __init__(self, mesh, cfg: LoopConfig, xi: np.ndarray):
        self.mesh, self.cfg, self.xi = mesh, cfg, xi
        self.graph = None
        self.ma = None
        self._current_monitor: fd.Function | None = None
        self.P1 = fd.FunctionSpace(mesh, "CG", 1)
        if cfg.mover == "none":
            return
        coords = np.array(mesh.coordinates.dat.data_ro)
        mesh.coordinates.dat.data[:] = xi
        self.graph = mesh_graph(mesh)
        if cfg.mover == "um2n":
            from um2n.mover import UM2NMover

            self.um2n = UM2NMover(weights=cfg.weights)
        else:
            from um2n.fem.monge_ampere import MongeAmpereMover

            self.ma = MongeAmpereMover(mesh, lambda _mesh: self._current_monitor, rtol=cfg.ma_rtol,
                                       maxiter=cfg.ma_maxiter, graph=self.graph)
        mesh.coordinates.dat.data[:] = coords

    def move(self, frozen_monitor: fd.Function) -> dict:
        """Move the mesh for ``frozen_monitor`` (a P1 function on the pre-move mesh copy)."""
        from um2n.fem.monge_ampere import ConvergenceError

        before = np.array(self.mesh.coordinates.dat.data_ro)
        self._current_monitor = frozen_monitor
        info: dict = {"accepted": True}
        try:
            if self.cfg.mover == "um2n":
                self.mesh.coordinates.dat.data[:] = self.xi
                m_ref = fd.Function(self.P1).interpolate(frozen_monitor)     # monitor at xi
                result = move_mesh(self.mesh, m_ref, self.um2n, graph=self.graph)
                info["limited_vertices"] = int(result.safeguard.limited_vertices)
            else:
                res = self.ma.move()
                info["ma_iterations"] = res.iterations
        except ConvergenceError as exc:
            info = {"accepted": False, "reason": str(exc)}
        x = np.array(self.mesh.coordinates.dat.data_ro)
        if info["accepted"] and (signed_areas(x, self.graph.triangles) <= 0).any():
            info = {"accepted": False, "reason": "the moved mesh would be tangled"}
        if not info["accepted"]:
            self.mesh.coordinates.dat.data[:] = before
        if hasattr(self.mesh, "clear_spatial_index"):
            self.mesh.clear_spatial_index()
        return info


def write_snapshot(f: fd.Function, path: Path, title: str) -> None:
    """PNG of ``f`` with its mesh (matplotlib through ``firedrake.pyplot``), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from firedrake.pyplot import tripcolor, triplot

    mesh = f.function_space().mesh()
    X = mesh.coordinates.dat.data_ro
    w, h = np.ptp(X[:, 0]) or 1.0, np.ptp(X[:, 1]) or 1.0
    wide = w > 2 * h
    fig, ax = plt.subplots(figsize=(9.0, max(2.6, 9.0 * h / w + 1.6)) if wide else (6.4, 5.6))
    c = tripcolor(f, axes=ax, cmap="viridis")
    lw = 0.15 if mesh.num_cells() < 5000 else 0.05
    triplot(mesh, axes=ax, interior_kw={"linewidths": lw, "edgecolors": "w"},
            boundary_kw={"linewidths": 0.6, "colors": ["k"]})
    fig.colorbar(c, ax=ax, shrink=0.8, orientation="horizontal" if wide else "vertical")
    ax.set_aspect("equal")
    ax.set_title(title)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)


def count_tangled(mesh, triangles: np.ndarray, reference_sign: np.ndarray) -> int:
    """Number of elements whose signed area is zero or has flipped against the reference."""
    a = signed_areas(np.array(mesh.coordinates.dat.data_ro), triangles)
    return int((np.sign(a) != reference_sign).sum())


def _save_checkpoint(path: Path, mesh, xi_fn: fd.Function, fields: dict, step: int, t: float,
                     counters: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with fd.CheckpointFile(str(tmp), "w") as cf:
        cf.save_mesh(mesh)
        cf.save_function(xi_fn, name="reference_coordinates")
        cf.save_function(mesh.coordinates, name="current_coordinates")
        for name, f in fields.items():
            cf.save_function(f, name=name)
        cf.set_attr("/", "um2n_state", json.dumps({"step": step, "t": t, "mesh_name": mesh.name, **counters}))
    os.replace(tmp, path)


def run_moving_mesh(make_problem: Callable[[object], MovingMeshProblem], make_mesh: Callable[[], object],
                    cfg: LoopConfig, resume: bool = False, stop_after: int | None = None) -> LoopResult:
    """Run a simulation through the moving-mesh loop (see the module docstring).

    Parameters
    ----------
    make_problem : ``make_problem(mesh)`` builds the problem (its solvers) on a mesh
    make_mesh : builds the initial mesh (not called when resuming)
    cfg : loop settings; ``cfg.output_dir`` holds every output and the checkpoint
    resume : continue from ``output_dir/checkpoint.h5`` if there is one
    stop_after : for tests of restart: behave as a process killed after this many steps of
        this call (no final checkpoint, no flush of the diagnostics written since the last one)
    """
    from tqdm import tqdm

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.h5"
    state = None
    if resume and ckpt.exists():
        with fd.CheckpointFile(str(ckpt), "r") as cf:
            state = json.loads(cf.get_attr("/", "um2n_state"))
            mesh = cf.load_mesh(state["mesh_name"])
            xi_fn = cf.load_function(mesh, "reference_coordinates")
            cur = cf.load_function(mesh, "current_coordinates")
            saved = {}
            problem = make_problem(mesh)
            for name in problem.fields():
                saved[name] = cf.load_function(mesh, name)
        mesh.coordinates.assign(cur)
        for name, f in problem.fields().items():
            f.assign(saved[name])
        problem.mesh_moved()
    else:
        mesh = make_mesh()
        problem = make_problem(mesh)
        V = mesh.coordinates.function_space()
        xi_fn = fd.Function(V, name="reference_coordinates").assign(mesh.coordinates)
    xi = np.array(xi_fn.dat.data_ro)
    start = int(state["step"]) if state else 0
    result = LoopResult(steps=0, t=start * problem.dt, resumed_from_step=start if state else None)
    if state:
        result.moves, result.moves_rejected = state.get("moves", 0), state.get("moves_rejected", 0)
        result.max_inverted = state.get("max_inverted", 0)
    fields = problem.fields()
    transfer = FieldTransfer(mesh, fields, cfg.transfer)
    mover = _Mover(mesh, cfg, xi)
    triangles = fd.FunctionSpace(mesh, "CG", 1).cell_node_list
    reference_sign = np.sign(signed_areas(xi, triangles))
    P1_frozen = fd.FunctionSpace(transfer.frozen, "CG", 1)
    frozen_monitor = fd.Function(P1_frozen, name="monitor")

    diag_path = out / "diagnostics.csv"
    rows: list[dict] = []
    if state and diag_path.exists():              # keep the rows up to the checkpoint
        with open(diag_path) as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
    vtk = fd.VTKFile(str(out / "solution.pvd"), adaptive=True, mode="a" if state else "w") \
        if cfg.write_vtk else None
    if vtk is not None and not state:
        vtk.write(*problem.output_functions(), time=0.0)
    snap_steps = set()
    if cfg.snapshots > 0:
        snap_steps = {round(k * problem.num_steps / cfg.snapshots) for k in range(cfg.snapshots + 1)}

    def snapshot(step: int, t: float):
        if step in snap_steps:
            f = problem.output_functions()[0]
            write_snapshot(f, out / f"{f.name()}_{step:06d}.png",
                           f"{type(problem).__name__}: {f.name()} at t = {t:.4g} (mover {cfg.mover})")

    if not state:
        snapshot(0, 0.0)

    def write_rows():
        if not rows:
            return
        tmp = diag_path.with_name(diag_path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[-1]))
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, diag_path)

    T = result.timings
    inverted = count_tangled(mesh, triangles, reference_sign)
    result.max_inverted = max(result.max_inverted, inverted)
    end = problem.num_steps if stop_after is None else min(problem.num_steps, start + stop_after)
    bar = tqdm(range(start, end), desc=f"{type(problem).__name__} ({cfg.mover})", disable=not cfg.progress,
               initial=0, total=end - start)
    t = start * problem.dt
    for n in bar:
        t0 = time.perf_counter()
        problem.step(t)
        t = (n + 1) * problem.dt
        t1 = time.perf_counter()
        T["solve"] += t1 - t0
        step = n + 1
        moved = False
        if cfg.mover != "none" and step % cfg.move_every == 0 and step < problem.num_steps:
            m = problem.monitor()
            problem.sync_fields()
            transfer.before_move()
            frozen_monitor.dat.data[transfer.vertex_perm] = m.dat.data_ro
            t2 = time.perf_counter()
            T["monitor"] += t2 - t1
            move_info = mover.move(frozen_monitor)
            t3 = time.perf_counter()
            T["move"] += t3 - t2
            if move_info["accepted"]:
                transfer.after_move()
                problem.mesh_moved()
                result.moves += 1
                moved = True
            else:
                result.moves_rejected += 1
            T["transfer"] += time.perf_counter() - t3
        t4 = time.perf_counter()
        if moved:
            inverted = count_tangled(mesh, triangles, reference_sign)
        result.max_inverted = max(result.max_inverted, inverted)
        rows.append({"step": step, "t": t, "moved": int(moved), "inverted": inverted,
                     **problem.diagnostics(t)})
        if vtk is not None and (step % cfg.output_every == 0 or step == problem.num_steps):
            vtk.write(*problem.output_functions(), time=t)
        snapshot(step, t)
        if step % cfg.checkpoint_every == 0 or (step == end and stop_after is None):
            problem.sync_fields()
            _save_checkpoint(ckpt, mesh, xi_fn, fields, step, t,
                             {"moves": result.moves, "moves_rejected": result.moves_rejected,
                              "max_inverted": result.max_inverted})
            write_rows()
        T["output"] += time.perf_counter() - t4
        result.steps += 1
    bar.close()
    if stop_after is None:
        write_rows()
    result.t = t
    if end == problem.num_steps:
        result.summary = problem.summary(t)
        tmp = out / "summary.json.tmp"
        tmp.write_text(json.dumps({"mover": cfg.mover, **result.as_dict()}, indent=2, default=float))
        os.replace(tmp, out / "summary.json")
    result.mesh = mesh                    # type: ignore[attr-defined]
    result.problem = problem              # type: ignore[attr-defined]
    return result
