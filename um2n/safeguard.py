r"""The safeguard: a moved mesh is never handed out tangled.

Given the original valid coordinates :math:`x^0` (all cells positively oriented:
triangles by signed area, tetrahedra by signed volume) and a proposed move :math:`x^1`
(boundary vertices already on their curves or surfaces, with curve parameters :math:`s^1`
in 2D), the safeguard returns

.. math::

    x_i(\alpha) = x^0_i + \alpha_i (x^1_i - x^0_i)
    \quad\text{(along the boundary curve for sliding vertices)},

with per-vertex step lengths :math:`\alpha_i \in [0, 1]` chosen by a local backtracking
line search: every cell whose area (volume) falls below ``min_area_ratio`` times its
original one halves the :math:`\alpha` of its vertices, up to ``max_halvings`` times; a
vertex of a cell that is still too small after that is sent back to :math:`x^0`
(:math:`\alpha_i = 0`). Since :math:`\alpha = 0` is the valid original mesh, the loop
terminates with a valid mesh. Vertices away from trouble keep their full move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from um2n.mesh import MeshGraph


@dataclass
class SafeguardReport:
    """What the safeguard found and did.

    Attributes
    ----------
    inverted_before : int
        Cells with non-positive area (volume) in the proposed move.
    small_before : int
        Cells below ``min_area_ratio`` of their original area (volume) in the proposed move.
    limited_vertices : int
        Vertices whose move was shortened (:math:`\\alpha_i < 1`).
    reset_vertices : int
        Vertices sent back to their original position (:math:`\\alpha_i = 0`).
    min_alpha : float
    iterations : int
    inverted_after : int
        Always 0 (checked).
    """

    inverted_before: int
    small_before: int
    limited_vertices: int
    reset_vertices: int
    min_alpha: float
    iterations: int
    inverted_after: int

    @property
    def repaired(self) -> bool:
        return self.limited_vertices > 0


def untangle(graph: MeshGraph, x0: np.ndarray, x1: np.ndarray, s1: np.ndarray,
             min_area_ratio: float = 1e-3, max_halvings: int = 12,
             reference_measures: np.ndarray | None = None) -> tuple[np.ndarray, SafeguardReport]:
    """Shorten the move ``x0 -> x1`` locally until every triangle is valid (see module doc).

    Parameters
    ----------
    graph : MeshGraph or TetMeshGraph
        Connectivity (``cells``, ``cell_measures``) and boundary model.
    x0 : (N, 2) valid original coordinates.
    x1 : (N, 2) proposed coordinates, boundary vertices on their curves.
    s1 : (N,) curve parameters of ``x1`` (from :meth:`BoundaryModel.project`).
    min_area_ratio : float
        A triangle is acceptable when its area is above this fraction of its original area.
    reference_measures : (M,) optional
        The measures "original" refers to (default: those at ``x0``), for a move that starts
        from an already moved mesh; a cell already below the floor at ``x0`` may not shrink.
    """
    if not 0.0 <= min_area_ratio < 1.0:
        raise ValueError(f"min_area_ratio must be in [0, 1), got {min_area_ratio}")
    tri = graph.cells
    measure = graph.cell_measures
    a0 = measure(x0)
    if (a0 <= 0).any():
        raise ValueError("the original coordinates are tangled; the safeguard needs a valid start")
    floor = min_area_ratio * a0
    if reference_measures is not None:
        floor = np.minimum(min_area_ratio * np.abs(np.asarray(reference_measures, dtype=float)), a0 * (1 - 1e-12))
    n = len(x0)
    alpha = np.ones(n)
    x = graph.boundary.blend(x0, x1, s1, alpha)
    area = measure(x)
    inverted_before = int((area <= 0).sum())
    small_before = int((area <= floor).sum())
    it = 0
    while True:
        bad = area <= floor
        if not bad.any():
            break
        verts = np.unique(tri[bad])
        if it < max_halvings:
            alpha[verts] *= 0.5
        else:
            alpha[verts] = 0.0
        it += 1
        x = graph.boundary.blend(x0, x1, s1, alpha)
        area = measure(x)
        if it > max_halvings + n:  # unreachable: alpha = 0 everywhere is x0, which is valid
            raise RuntimeError("safeguard did not terminate")
    moved = np.linalg.norm(x1 - x0, axis=1) > 0
    report = SafeguardReport(
        inverted_before=inverted_before, small_before=small_before,
        limited_vertices=int((alpha < 1).sum()), reset_vertices=int(((alpha == 0) & moved).sum()),
        min_alpha=float(alpha.min()) if n else 1.0, iterations=it,
        inverted_after=int((measure(x) <= 0).sum()),
    )
    assert report.inverted_after == 0
    return x, report
