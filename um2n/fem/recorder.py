r"""Everything the moving-mesh loop writes, and the restart it reads back.

In the run's output folder:

* ``diagnostics.csv``: one row per step (``step``, ``t``, ``moved``, ``inverted`` and the
  problem's own :meth:`~um2n.fem.loop.MovingMeshProblem.diagnostics`), rewritten at every
  checkpoint and at the end;
* ``solution.pvd``: a ParaView series (``VTKFile``, ``adaptive=True``: the mesh as it is at
  that time) of the problem's output functions every ``output_every`` steps;
* ``<field>_<step>.png``: ``snapshots + 1`` pictures of the first output function with its
  mesh, evenly spaced over the run;
* ``checkpoint.h5``: a Firedrake ``CheckpointFile`` (mesh, reference and current
  coordinates, prognostic fields, the ALE window's start and target coordinates, and the
  loop's counters and the mesh's :func:`mesh_fingerprint` as a JSON attribute) every
  ``checkpoint_every`` steps;
* ``summary.json``: the run's result at its end.

Every file is written through :func:`um2n.io.atomic_path`: under a temporary name, renamed
when complete, so a killed run leaves the previous version intact. The diagnostics kept in
memory (:attr:`Recorder.rows`, numbers) are what a case's ``finish`` hook reads; a resumed
run starts from the rows up to its checkpoint.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import firedrake as fd
import numpy as np

from um2n.errors import UM2NError
from um2n.io import atomic_path, save_figure

CHECKPOINT = "checkpoint.h5"
DIAGNOSTICS = "diagnostics.csv"


def mesh_fingerprint(mesh, coordinates: fd.Function) -> dict:
    r"""What identifies a mesh whatever its numbering and distribution over ranks.

    The global numbers of vertices and cells, and the mean :math:`\bar x` and the second
    central moments :math:`\overline{(x_i - \bar x_i)(x_j - \bar x_j)}` of the vertex
    positions ``coordinates`` (P1, the owned vertices of every rank), each a sum reduced
    over the ranks.
    """
    comm = mesh.comm
    X = np.asarray(coordinates.dat.data_ro, dtype=float)
    n = comm.allreduce(X.shape[0])
    mean = comm.allreduce(X.sum(axis=0)) / n
    D = X - mean
    second = comm.allreduce(D.T @ D) / n
    return {"vertices": int(n), "cells": int(comm.allreduce(mesh.cell_set.size)),
            "mean": mean.tolist(), "second_moments": second.ravel().tolist()}


def same_mesh(a: dict, b: dict, rtol: float = 1e-8) -> bool:
    """Whether two :func:`mesh_fingerprint` s are of one mesh (moments to ``rtol`` of its size)."""
    if (a["vertices"], a["cells"]) != (b["vertices"], b["cells"]):
        return False
    size2 = max(np.trace(np.reshape(a["second_moments"], (len(a["mean"]),) * 2)), np.finfo(float).tiny)
    return bool(np.all(np.abs(np.subtract(a["mean"], b["mean"])) <= rtol * np.sqrt(size2))
                and np.all(np.abs(np.subtract(a["second_moments"], b["second_moments"])) <= rtol * size2))


def _describe(fp: dict) -> str:
    return (f"{fp['vertices']} vertices, {fp['cells']} cells, centred at "
            f"({', '.join(f'{v:.6g}' for v in fp['mean'])})")


def read_diagnostics(path: str | Path) -> list[dict]:
    """The rows of a ``diagnostics.csv``, as numbers (an empty cell is NaN)."""
    with open(path) as f:
        return [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _number(value: str):
    try:
        return int(value)
    except ValueError:
        return float(value) if value != "" else float("nan")


class Recorder:
    """The output of one run in ``out`` (see the module docstring).

    Parameters
    ----------
    out : the run's folder (created)
    output_every, checkpoint_every : steps between VTK writes and between checkpoints
    write_vtk : write the ParaView series
    snapshots : number of intervals between PNG snapshots (0: none)
    label : a title for the snapshots
    """

    def __init__(self, out: str | Path, *, output_every: int, checkpoint_every: int, write_vtk: bool = True,
                 snapshots: int = 4, label: str = ""):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.output_every, self.checkpoint_every = output_every, checkpoint_every
        self.write_vtk, self.snapshots, self.label = write_vtk, snapshots, label
        self.rows: list[dict] = []
        self._vtk = None
        self._snap_steps: set[int] = set()
        self._problem = None
        #: the run's :func:`mesh_fingerprint` (of its reference mesh), saved with each checkpoint
        self.mesh_id: dict | None = None

    # ------------------------------------------------------------------ restart
    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT

    def restore(self, make_problem, expected_mesh: dict | None = None):
        """Rebuild the run from ``checkpoint.h5``: ``(mesh, problem, reference coordinates,
        state)``; ``state`` holds ``step``, ``t``, the loop's counters and the mesh's
        fingerprint. ``expected_mesh``: the :func:`mesh_fingerprint` of the mesh the run's
        settings build; a checkpoint of another mesh is refused (on every rank alike)."""
        with fd.CheckpointFile(str(self.checkpoint_path), "r") as cf:
            state = json.loads(cf.get_attr("/", "um2n_state"))
            saved_mesh = state.get("mesh_fingerprint")
            if expected_mesh is not None and saved_mesh is not None and not same_mesh(saved_mesh, expected_mesh):
                raise UM2NError(f"{self.checkpoint_path}: the checkpoint is of another mesh ({_describe(saved_mesh)}) "
                                f"than the one these settings build ({_describe(expected_mesh)}); resume with the "
                                f"settings of the run that wrote it, or start in another output folder")
            mesh = cf.load_mesh(state["mesh_name"])
            xi = cf.load_function(mesh, "reference_coordinates")
            current = cf.load_function(mesh, "current_coordinates")
            problem = make_problem(mesh)
            saved = {name: cf.load_function(mesh, name) for name in problem.fields()}
            window = state.get("motion", {})
            motion = {name: cf.load_function(mesh, name) for name in ("ale_start", "ale_target")} \
                if window.get("steps") else {}
        mesh.coordinates.assign(current)
        for name, f in problem.fields().items():
            f.assign(saved[name])
        problem.mesh_moved()
        problem.motion.restore(window, motion, problem.dt)
        path = self.out / DIAGNOSTICS
        if path.exists():                        # the rows up to the checkpoint
            self.rows = [r for r in read_diagnostics(path) if r["step"] <= state["step"]]
        return mesh, problem, xi, state

    def checkpoint(self, mesh, xi: fd.Function, fields: dict[str, fd.Function], state: dict,
                   motion=None) -> None:
        """Save the restart file (atomically), then the diagnostics up to this step.
        ``motion``: the :class:`~um2n.fem.ale.MeshMotion` whose window a restart resumes."""
        if motion is not None and motion.active:
            state = {**state, "motion": motion.state()}
            fields = {**fields, **motion.functions()}
        with atomic_path(self.checkpoint_path, comm=mesh.comm) as tmp:
            with fd.CheckpointFile(tmp, "w", comm=mesh.comm) as cf:
                cf.save_mesh(mesh)
                cf.save_function(xi, name="reference_coordinates")
                cf.save_function(mesh.coordinates, name="current_coordinates")
                for name, f in fields.items():
                    cf.save_function(f, name=name)
                cf.set_attr("/", "um2n_state", json.dumps({**state, "mesh_name": mesh.name,
                                                            "mesh_fingerprint": self.mesh_id}))
        self.write_diagnostics()

    # ------------------------------------------------------------------ output
    def open(self, problem, num_steps: int, fresh: bool) -> None:
        """Start (``fresh``) or continue the ParaView series; write the state at t = 0."""
        self._problem = problem
        if self.snapshots > 0:
            self._snap_steps = {round(k * num_steps / self.snapshots) for k in range(self.snapshots + 1)}
        if self.write_vtk:
            self._vtk = fd.VTKFile(str(self.out / "solution.pvd"), adaptive=True, mode="w" if fresh else "a")
        if fresh:
            self.output(0, 0.0, force=True)

    def output(self, step: int, t: float, force: bool = False) -> None:
        """The ParaView series and the snapshots due at ``step``."""
        if self._vtk is not None and (force or step % self.output_every == 0):
            self._vtk.write(*self._problem.output_functions(), time=t)
        if step in self._snap_steps:
            f = self._problem.output_functions()[0]
            write_snapshot(f, self.out / f"{f.name()}_{step:06d}.png",
                           f"{type(self._problem).__name__}: {f.name()} at t = {t:.4g} {self.label}",
                           slice_z=getattr(self._problem, "snapshot_slice_z", None))

    def record(self, row: dict) -> None:
        """Keep one row of diagnostics (written at the next checkpoint or at the end)."""
        self.rows.append(row)

    def write_diagnostics(self) -> None:
        if not self.rows or fd.COMM_WORLD.rank != 0:
            return
        with atomic_path(self.out / DIAGNOSTICS) as tmp:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(self.rows[-1]))
                w.writeheader()
                w.writerows(self.rows)

    def write_json(self, name: str, data: dict) -> None:
        """``name`` in the output folder (:func:`write_json`)."""
        write_json(self.out / name, data)


def write_json(path: str | Path, data: dict) -> None:
    """``data`` as indented JSON at ``path``, atomically, by rank 0 only."""
    if fd.COMM_WORLD.rank == 0:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(data, indent=2, default=float))


def slice_triangles(points: np.ndarray, tets: np.ndarray, values: np.ndarray, z: float):
    r"""The section of a tetrahedral mesh by the plane :math:`z` = ``z``, as a triangulation.

    Each tetrahedron that the plane crosses is cut in a triangle or a quadrilateral (split
    in two triangles) whose corners lie on its edges; a field linear in each cell, given by
    its ``values`` at the cell's four vertices ``(M, 4)``, is interpolated there. Returns
    the corners' :math:`(x, y)` ``(P, 2)``, the field at them ``(P,)`` and the triangles ``(T, 3)``.
    """
    from um2n.tetmesh import TET_EDGES

    d = points[tets][:, :, 2] - z
    cut = (d.min(axis=1) < 0) & (d.max(axis=1) > 0)
    p, v, d = points[tets[cut]], np.asarray(values)[cut], d[cut]
    a, b = TET_EDGES[:, 0], TET_EDGES[:, 1]
    da, db = d[:, a], d[:, b]
    crossing = (da < 0) != (db < 0)                                  # (n, 6)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(crossing, da / (da - db), 0.0)
    xy = p[:, a, :2] + s[:, :, None] * (p[:, b, :2] - p[:, a, :2])   # (n, 6, 2)
    val = v[:, a] + s * (v[:, b] - v[:, a])
    centre = (xy * crossing[:, :, None]).sum(axis=1) / crossing.sum(axis=1)[:, None]
    angle = np.where(crossing, np.arctan2(xy[:, :, 1] - centre[:, None, 1], xy[:, :, 0] - centre[:, None, 0]), np.inf)
    order = np.argsort(angle, axis=1)                               # the cut's corners around it first
    xy = np.take_along_axis(xy, order[:, :, None], axis=1)
    val = np.take_along_axis(val, order, axis=1)
    count = crossing.sum(axis=1)                                     # 3 or 4
    base = 6 * np.arange(len(xy))
    tris = [np.stack([base, base + 1, base + 2], axis=1)]
    quad = count == 4
    tris.append(np.stack([base[quad], base[quad] + 2, base[quad] + 3], axis=1))
    return xy.reshape(-1, 2), val.reshape(-1), np.concatenate(tris)


def write_snapshot(f: fd.Function, path: Path, title: str, slice_z: float | None = None) -> None:
    """PNG of ``f`` with its mesh (matplotlib through ``firedrake.pyplot``), written atomically.

    On a tetrahedral mesh, the section by the plane :math:`z` = ``slice_z`` (default: the
    middle of the mesh's extent in :math:`z`; :func:`slice_triangles`) with the cut cells'
    edges, which show the mesh's resolution there."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from firedrake.pyplot import tripcolor, triplot

    mesh = f.function_space().mesh()
    if mesh.coordinates.dat.data_ro.shape[1] == 3:
        _write_slice_snapshot(f, path, title, slice_z)
        return
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
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _write_slice_snapshot(f: fd.Function, path: Path, title: str, slice_z: float | None) -> None:
    """:func:`write_snapshot` of a field on a tetrahedral mesh: its section by a plane."""
    import matplotlib.pyplot as plt
    from matplotlib.tri import Triangulation

    mesh = f.function_space().mesh()
    X = np.asarray(mesh.coordinates.dat.data_ro)
    cells = mesh.coordinates.function_space().cell_node_list
    V = f.function_space()
    if not (V.ufl_element().degree() == 1 and V.value_size == 1):
        V = fd.FunctionSpace(mesh, "DG", 1)
        f = fd.Function(V).interpolate(f)
    values = f.dat.data_ro[V.cell_node_list]          # degree 1: the cell's nodes are its vertices
    z = 0.5 * (X[:, 2].min() + X[:, 2].max()) if slice_z is None else float(slice_z)
    xy, val, tris = slice_triangles(X, cells, values, z)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    if len(tris):
        tri = Triangulation(xy[:, 0], xy[:, 1], tris)
        c = ax.tripcolor(tri, val, shading="gouraud", cmap="viridis")
        ax.triplot(tri, color="w", linewidth=0.1)
        fig.colorbar(c, ax=ax, shrink=0.8)
    ax.set_aspect("equal")
    ax.set_title(f"{title}\nsection z = {z:.3g}", fontsize=9)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)
