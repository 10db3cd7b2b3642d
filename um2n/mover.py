"""``UM2NMover``: move a mesh towards a monitor with the network, safely.

Pipeline for each mesh: monitor values -> :func:`um2n.features.mesh_data` -> :class:`UM2N`
-> physical coordinates -> boundary projection (:class:`um2n.boundary.BoundaryModel`)
-> safeguard (:func:`um2n.safeguard.untangle`) -> :class:`MoveResult`.

The monitor is checked first (:func:`um2n.monitor.evaluate_monitor`): one finite, positive
value per vertex, else :class:`~um2n.errors.MonitorError`. The model's weights are by default
the trained ones shipped in the package, ``um2n/weights/um2n-v1.safetensors`` (its model card,
``MODEL_CARD.md``, lies beside it); another file from :meth:`UM2N.save` can be given instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch_geometric.data import Batch

from um2n.errors import UM2NError
from um2n.features import mesh_data
from um2n.heap import retained_heap
from um2n.interpolation import P1Interpolant
from um2n.mesh import MeshGraph
from um2n.model import UM2N, UM2NConfig
from um2n.monitor import MonitorLike, evaluate_monitor
from um2n.quality import equidistribution_cv
from um2n.safeguard import SafeguardReport, untangle

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The trained weights shipped inside the package, by name (``--weights NAME``; model card:
#: ``um2n/weights/MODEL_CARD.md``).
SHIPPED_WEIGHTS = {"um2n-v1": WEIGHTS_DIR / "um2n-v1.safetensors", "um2n-v2": WEIGHTS_DIR / "um2n-v2.safetensors",
                   "um2n-v3": WEIGHTS_DIR / "um2n-v3.safetensors",
                   "um2n-3d-v1": WEIGHTS_DIR / "um2n-3d-v1.safetensors"}
#: The name of the default weights of :class:`UM2NMover`.
DEFAULT_WEIGHTS_NAME = "um2n-v1"
DEFAULT_WEIGHTS = SHIPPED_WEIGHTS[DEFAULT_WEIGHTS_NAME]
#: The weights ``um2n move`` uses for a tetrahedral mesh when none are given.
DEFAULT_WEIGHTS_3D_NAME = "um2n-3d-v1"
#: From this many vertices in a batch, the move (forward pass, boundary, safeguard) runs in
#: :func:`um2n.heap.retained_heap`.
RETAINED_HEAP_MIN_VERTICES = 50_000
#: Seed of the random initialisation used when the shipped weights file is missing.
RANDOM_INIT_SEED = 0


@dataclass
class MoveResult:
    """The moved coordinates and what happened on the way.

    Attributes
    ----------
    points : (N, d) float64
        New coordinates, never tangled.
    raw_points : (N, d) float64
        The network's proposal, after boundary projection, before the safeguard.
    monitor : (N,) float64
        Monitor values at the original vertices.
    safeguard : SafeguardReport
    boundary_deviation : float
        Largest distance of a boundary vertex from its curve or surface (or a corner from
        its place).
    timings : dict
        Seconds spent in ``model``, ``boundary`` and ``safeguard`` (and, with several passes,
        ``monitor``: evaluating it at the moved vertices).
    passes : int
        The forward passes the result is made of (the first, and each later one that lowered
        the equidistribution CV; :attr:`UM2NMover.passes` tried at most).
    """

    points: np.ndarray
    raw_points: np.ndarray
    monitor: np.ndarray
    safeguard: SafeguardReport
    boundary_deviation: float
    timings: dict = field(default_factory=dict)
    passes: int = 1


def _vertex_measures(cells: np.ndarray, measures: np.ndarray, n: int) -> np.ndarray:
    """Each vertex's share of its cells' measures (the lumped measure): sum over its cells of
    the cell's measure over its number of vertices."""
    return np.bincount(cells.ravel(), weights=np.repeat(measures / cells.shape[1], cells.shape[1]), minlength=n)


def resolve_weights(weights: str | Path) -> Path:
    """The file of ``weights``: a shipped name (:data:`SHIPPED_WEIGHTS`) or a path."""
    if str(weights) in SHIPPED_WEIGHTS:
        return SHIPPED_WEIGHTS[str(weights)]
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UM2NError(f"{weights}: weights file not found (shipped weights by name: {', '.join(SHIPPED_WEIGHTS)})")
    return path


def load_model(weights: str | Path | None = None) -> tuple[UM2N, str]:
    """The model with ``weights``, else the shipped weights (:data:`DEFAULT_WEIGHTS`).

    An installation without the shipped file falls back to a seeded random initialisation and
    says so in the description: its moves are safe (never tangled) but not adapted meshes.

    Returns the model (in eval mode) and a one-line description of the weights used.
    """
    if weights is not None:
        model, meta = UM2N.load(resolve_weights(weights))
        desc = f"weights {weights}" + (f" ({meta['description']})" if "description" in meta else "")
    elif DEFAULT_WEIGHTS.is_file():
        model, meta = UM2N.load(DEFAULT_WEIGHTS)
        desc = f"shipped pretrained weights {DEFAULT_WEIGHTS.name}" + (
            f" ({meta['description']})" if "description" in meta else "")
    else:
        torch.manual_seed(RANDOM_INIT_SEED)
        model = UM2N(UM2NConfig())
        desc = (f"random initialisation (seed {RANDOM_INIT_SEED}): the shipped weights {DEFAULT_WEIGHTS} "
                f"are missing from this installation, so the move is safe but not an adapted mesh")
    return model.eval(), desc


class UM2NMover:
    r"""Move triangle meshes (or, with 3D weights, tetrahedral meshes) towards a monitor with UM2N.

    Parameters
    ----------
    weights : path, optional
        A safetensors file from :meth:`UM2N.save`; default: the shipped weights.
    model : UM2N, optional
        Use this model instead of loading weights.
    min_area_ratio : float
        Safeguard threshold: a moved triangle keeps at least this fraction of its area.
    passes : int
        Forward passes per move. Pass :math:`k > 1` moves the mesh on from :math:`x^{k-1}`,
        where the previous pass left it, towards the residual monitor
        :math:`\tilde m = m(x^{k-1})\,\rho^{k-1}`, with :math:`\rho^{k-1}_i` the measure of
        vertex :math:`i`'s cells at :math:`x^{k-1}` over their measure on the original mesh
        :math:`\xi`. Equidistribution asks :math:`m(x)\,|K_x| = \theta\,|K_\xi|` for
        every cell; written relative to :math:`x^{k-1}` as the computational mesh this is
        :math:`\tilde m(x)\,|K_x| / |K_{x^{k-1}}| = \theta`, the same problem with
        :math:`\tilde m` in place of :math:`m`. So a pass continues where the network's
        reach (one ring of neighbours per deformer layer) stopped the previous one, and a
        mesh that already equidistributes :math:`m` gets a uniform :math:`\tilde m` and is
        left exactly as it is. A monitor given as an array is interpolated (P1, on the
        original mesh, :class:`um2n.interpolation.P1Interpolant`) at the moved vertices; a
        callable or an expression is evaluated there. The safeguard's floor stays
        ``min_area_ratio`` times each cell's original measure in every pass. The network's
        response to a weak residual is not a contraction on every monitor (a pass can
        overshoot), so a pass is kept only if it lowers the equidistribution CV of
        :math:`m\,|K|` over the cells, and the passes stop at the first that does not
        (:attr:`MoveResult.passes` says how many were kept).

    Examples
    --------
    >>> graph = MeshGraph.from_file("square.msh")                      # doctest: +SKIP
    >>> result = UM2NMover().move(graph, "1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2)/0.01)")  # doctest: +SKIP
    >>> result.safeguard.inverted_after                                 # doctest: +SKIP
    0
    """

    def __init__(self, weights: str | Path | None = None, model: UM2N | None = None,
                 min_area_ratio: float = 1e-3, passes: int = 1):
        if int(passes) != passes or passes < 1:
            raise ValueError(f"passes must be a positive integer, got {passes!r}")
        self.passes = int(passes)
        if model is not None:
            self.model, self.weights_info = model.eval(), "model given in code"
        else:
            self.model, self.weights_info = load_model(weights)
        if not 0.0 <= min_area_ratio < 1.0:
            raise ValueError(f"min_area_ratio must be in [0, 1), got {min_area_ratio}")
        self.min_area_ratio = min_area_ratio

    def move(self, graph: MeshGraph, monitor: MonitorLike) -> MoveResult:
        """Move one mesh. ``monitor``: per-vertex array, callable ``f(x, y)`` or expression, > 0
        at every vertex (else :class:`~um2n.errors.MonitorError`)."""
        return self.move_batch([graph], [monitor])[0]

    @torch.no_grad()
    def move_batch(self, graphs: Sequence[MeshGraph], monitors: Sequence[MonitorLike]) -> list[MoveResult]:
        """Move several meshes (of any sizes) in one forward pass (one per pass, :attr:`passes`)."""
        if len(graphs) != len(monitors):
            raise ValueError(f"{len(graphs)} meshes but {len(monitors)} monitors")
        dim = self.model.config.dim
        for g in graphs:
            if g.dim != dim:
                raise UM2NError(f"{g.name}: a {g.dim}D mesh, but the weights ({self.weights_info}) are for {dim}D meshes")
        values = [evaluate_monitor(m, g.points, mesh=g.name) for g, m in zip(graphs, monitors)]
        results = self._pass(graphs, values)
        if self.passes > 1:
            results = self._further_passes(graphs, monitors, values, results)
        return results

    def _further_passes(self, graphs: Sequence[MeshGraph], monitors: Sequence[MonitorLike],
                        values: Sequence[np.ndarray], results: list[MoveResult]) -> list[MoveResult]:
        """Passes 2, 3, ... (see the class docstring) on the graphs whose last pass lowered the
        equidistribution CV; a pass that does not lower it is undone, and that graph stops."""
        n = len(graphs)
        reference = [np.abs(g.cell_measures()) for g in graphs]
        vertex_reference = [_vertex_measures(g.cells, a, g.num_vertices) for g, a in zip(graphs, reference)]
        interpolants = [None if callable(m) or isinstance(m, str) else P1Interpolant(g.points, g.cells)
                        for g, m in zip(graphs, monitors)]

        def monitor_at(i: int, x: np.ndarray) -> np.ndarray:
            if interpolants[i] is None:
                return evaluate_monitor(monitors[i], x, mesh=graphs[i].name)
            return interpolants[i](values[i], x)

        def cv(i: int, x: np.ndarray, m: np.ndarray) -> float:
            return equidistribution_cv(x, graphs[i].cells, m)

        t0 = time.perf_counter()
        at_x = [monitor_at(i, results[i].points) for i in range(n)]
        cvs = [cv(i, results[i].points, at_x[i]) for i in range(n)]
        spent = [(time.perf_counter() - t0) / n] * n
        done = [1] * n
        active = list(range(n))
        for _ in range(self.passes - 1):
            if not active:
                break
            t0 = time.perf_counter()
            moved = [graphs[i].with_points(results[i].points) for i in active]
            residual = [at_x[i] * _vertex_measures(g.cells, np.abs(g.cell_measures()), g.num_vertices)
                        / vertex_reference[i] for i, g in zip(active, moved)]
            t_residual = (time.perf_counter() - t0) / len(active)
            later = self._pass(moved, residual, [reference[i] for i in active])
            still = []
            for i, q in zip(active, later):
                t1 = time.perf_counter()
                m_new = monitor_at(i, q.points)
                cv_new = cv(i, q.points, m_new)
                spent[i] += t_residual + time.perf_counter() - t1
                r = results[i]
                timings = {k: r.timings.get(k, 0.0) + q.timings.get(k, 0.0) for k in set(r.timings) | set(q.timings)}
                if cv_new < cvs[i]:
                    results[i], at_x[i], cvs[i] = replace(q, timings=timings), m_new, cv_new
                    done[i] += 1
                    still.append(i)
                else:
                    results[i] = replace(r, timings=timings)
            active = still
        return [replace(r, monitor=v, passes=k, timings={**r.timings, "monitor": t})
                for r, v, k, t in zip(results, values, done, spent)]

    def _pass(self, graphs: Sequence[MeshGraph], values: Sequence[np.ndarray],
              reference: Sequence[np.ndarray] | None = None) -> list[MoveResult]:
        """One forward pass from the graphs' points towards the per-vertex ``values``; the
        safeguard's floor relative to the cell measures ``reference`` (default: the graphs')."""
        t0 = time.perf_counter()
        datas = [mesh_data(g, v) for g, v in zip(graphs, values)]
        batch = Batch.from_data_list(datas)
        results = []
        with retained_heap(batch.num_nodes >= RETAINED_HEAP_MIN_VERTICES):
            y = self.model(batch).double()
            t_model = (time.perf_counter() - t0) / len(graphs)
            for k, (g, v, d) in enumerate(zip(graphs, values, datas)):
                t1 = time.perf_counter()
                a, b = int(batch.ptr[k]), int(batch.ptr[k + 1])
                disp = (y[a:b] - d.pos.double()).numpy() * float(d.scale)
                x0 = g.points
                x1, s1 = g.boundary.project(x0, x0 + disp)
                t2 = time.perf_counter()
                x, report = untangle(g, x0, x1, s1, min_area_ratio=self.min_area_ratio,
                                     reference_measures=None if reference is None else reference[k])
                t3 = time.perf_counter()
                results.append(MoveResult(
                    points=x, raw_points=x1, monitor=v, safeguard=report,
                    boundary_deviation=g.boundary.deviation(x),
                    timings={"model": t_model, "boundary": t2 - t1, "safeguard": t3 - t2},
                ))
        return results
