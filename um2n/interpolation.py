r"""Piecewise-linear (P1) interpolation on a simplicial mesh, at arbitrary points.

A point :math:`p` lies in the simplex :math:`K = (v_0, \dots, v_d)` when its barycentric
coordinates :math:`\lambda = (\lambda_0, \dots, \lambda_d)`,

.. math::

    (\lambda_1, \dots, \lambda_d) = A^{-1}(p - v_0), \quad A = [v_1 - v_0, \dots, v_d - v_0],
    \quad \lambda_0 = 1 - \textstyle\sum_{k \ge 1} \lambda_k,

are all non-negative, and the P1 value there is :math:`\sum_k \lambda_k f(v_k)`. Each point
is looked for among the cells nearest to it by their centroids (:data:`NEAREST_CELLS`, a
k-d tree built once per mesh). A point in no cell (a vertex that slid along a curved boundary
can leave the polygonal mesh by a sliver) takes the value of the cell nearest to containing
it, with its barycentric coordinates clipped to :math:`[0, 1]` and renormalised: the value
of the nearest point of that cell's closure, up to the clipping.
"""

from __future__ import annotations

import numpy as np

#: cells, nearest by centroid, tried for each point: so many first, then so many for the
#: points not yet found
NEAREST_CELLS = (16, 128)
#: the least barycentric coordinate of a point counted as inside a cell
INSIDE_TOLERANCE = 1e-12
#: points searched at a time (the search's memory is proportional: chunk x cells x (d+1) x d)
SEARCH_CHUNK = 8192


def barycentric(vertices: np.ndarray, points: np.ndarray) -> np.ndarray:
    r"""Barycentric coordinates :math:`(\lambda_0, \dots, \lambda_d)` of ``points`` (M, d) in
    the simplices ``vertices`` (M, d + 1, d), one simplex per point; rows of a degenerate
    simplex are NaN."""
    A = np.swapaxes(vertices[:, 1:] - vertices[:, :1], 1, 2)                 # (M, d, d)
    b = points - vertices[:, 0]
    lam = np.full((len(points), vertices.shape[1]), np.nan)
    ok = np.abs(np.linalg.det(A)) > 0
    if ok.any():
        rest = np.linalg.solve(A[ok], b[ok][..., None])[..., 0]
        lam[ok, 1:] = rest
        lam[ok, 0] = 1.0 - rest.sum(axis=1)
    return lam


class P1Interpolant:
    """Interpolate vertex values of the mesh ``(points, cells)`` at other points.

    Parameters
    ----------
    points : (N, d) vertex coordinates, d = 2 or 3
    cells : (M, d + 1) vertex indices of the triangles or tetrahedra (none degenerate)
    """

    def __init__(self, points: np.ndarray, cells: np.ndarray):
        from scipy.spatial import cKDTree

        self.points = np.asarray(points, dtype=np.float64)
        self.cells = np.asarray(cells, dtype=np.int64)
        self._tree = cKDTree(self.points[self.cells].mean(axis=1))

    def locate(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cell, lam, inside)`` of each target: the cell it lies in (else the cell where
        its least barycentric coordinate is largest), its barycentric coordinates there
        (clipped and renormalised where it lies in no cell), and whether it lies in it."""
        targets = np.asarray(targets, dtype=np.float64)
        if len(targets) > SEARCH_CHUNK:
            parts = [self.locate(targets[a:a + SEARCH_CHUNK]) for a in range(0, len(targets), SEARCH_CHUNK)]
            return tuple(np.concatenate(p) for p in zip(*parts))
        n, m = len(targets), len(self.cells)
        cell = np.zeros(n, dtype=np.int64)
        lam = np.zeros((n, self.cells.shape[1]))
        best = np.full(n, -np.inf)
        todo = np.arange(n)
        for k in NEAREST_CELLS:
            k = min(k, m)
            if not len(todo):
                break
            _, near = self._tree.query(targets[todo], k=k)
            near = near.reshape(len(todo), k)
            cand = barycentric(self.points[self.cells[near.ravel()]], np.repeat(targets[todo], k, axis=0))
            cand = cand.reshape(len(todo), k, -1)
            worst = np.nan_to_num(cand.min(axis=2), nan=-np.inf)
            j = worst.argmax(axis=1)
            score = worst[np.arange(len(todo)), j]
            better = score > best[todo]
            upd = todo[better]
            cell[upd] = near[better, j[better]]
            lam[upd] = cand[better, j[better]]
            best[upd] = score[better]
            todo = todo[best[todo] < -INSIDE_TOLERANCE]
            if k == m:
                break
        inside = best >= -INSIDE_TOLERANCE
        if not inside.all():
            out = ~inside
            lam[out] = np.clip(lam[out], 0.0, None)
            lam[out] /= lam[out].sum(axis=1, keepdims=True)
        return cell, lam, inside

    def __call__(self, values: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The P1 interpolant of the vertex ``values`` at ``targets`` (M, d)."""
        cell, lam, _ = self.locate(targets)
        return np.einsum("ij,ij->i", lam, np.asarray(values, dtype=np.float64)[self.cells[cell]])
