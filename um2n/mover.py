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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch_geometric.data import Batch

from um2n.errors import UM2NError
from um2n.features import mesh_data
from um2n.heap import retained_heap
from um2n.mesh import MeshGraph
from um2n.model import UM2N, UM2NConfig
from um2n.monitor import MonitorLike, evaluate_monitor
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
        Seconds spent in ``model``, ``boundary`` and ``safeguard``.
    """

    points: np.ndarray
    raw_points: np.ndarray
    monitor: np.ndarray
    safeguard: SafeguardReport
    boundary_deviation: float
    timings: dict = field(default_factory=dict)


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
    """Move triangle meshes (or, with 3D weights, tetrahedral meshes) towards a monitor with UM2N.

    Parameters
    ----------
    weights : path, optional
        A safetensors file from :meth:`UM2N.save`; default: the shipped weights.
    model : UM2N, optional
        Use this model instead of loading weights.
    min_area_ratio : float
        Safeguard threshold: a moved triangle keeps at least this fraction of its area.

    Examples
    --------
    >>> graph = MeshGraph.from_file("square.msh")                      # doctest: +SKIP
    >>> result = UM2NMover().move(graph, "1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2)/0.01)")  # doctest: +SKIP
    >>> result.safeguard.inverted_after                                 # doctest: +SKIP
    0
    """

    def __init__(self, weights: str | Path | None = None, model: UM2N | None = None,
                 min_area_ratio: float = 1e-3):
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
        """Move several meshes (of any sizes) in one forward pass."""
        if len(graphs) != len(monitors):
            raise ValueError(f"{len(graphs)} meshes but {len(monitors)} monitors")
        dim = self.model.config.dim
        for g in graphs:
            if g.dim != dim:
                raise UM2NError(f"{g.name}: a {g.dim}D mesh, but the weights ({self.weights_info}) are for {dim}D meshes")
        values = [evaluate_monitor(m, g.points, mesh=g.name) for g, m in zip(graphs, monitors)]
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
                x, report = untangle(g, x0, x1, s1, min_area_ratio=self.min_area_ratio)
                t3 = time.perf_counter()
                results.append(MoveResult(
                    points=x, raw_points=x1, monitor=v, safeguard=report,
                    boundary_deviation=g.boundary.deviation(x),
                    timings={"model": t_model, "boundary": t2 - t1, "safeguard": t3 - t2},
                ))
        return results
