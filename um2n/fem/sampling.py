r"""P1 functions evaluated at arbitrary points, for movers that sample a monitor repeatedly.

:func:`evaluate_at` is the general rule: Firedrake's point evaluation on the function's own
mesh (:class:`firedrake.PointEvaluator`, within :data:`POINT_TOLERANCE` of a cell, on any
rank), and the value at the nearest vertex for a point outside every cell. It builds a
vertex-only mesh and a spatial index at every call.

:class:`PointSampler` gives the same values for the same points when the same points (or
points that moved a little, such as the vertices of a Monge-Ampère iterate) are sampled again
and again on a mesh that moves a little between calls: it remembers the cell each point was
found in. A point :math:`p` lies in the simplex :math:`K` with vertices :math:`v_0, \dots,
v_d` when its barycentric coordinates

.. math::

    \lambda_{1..d} = A^{-1} (p - v_0), \quad A = [v_1 - v_0, \dots, v_d - v_0], \quad
    \lambda_0 = 1 - \textstyle\sum_{k \ge 1} \lambda_k

are all :math:`\ge -\epsilon` (:data:`um2n.interpolation.INSIDE_TOLERANCE`), and then :math:`f(p) = \sum_k
\lambda_k f(v_k)` is the P1 value. Each call tries the remembered cell first, then the
cells nearest to the point by their centroids (16, then 128:
:meth:`um2n.interpolation.P1Interpolant.locate`); a point found in neither
(outside the rank's cells, or outside the mesh) goes to :func:`evaluate_at`, collectively.
The cell a point is found in may differ from Firedrake's on a shared face, where a
continuous P1 function has one value (to round-off).
"""

from __future__ import annotations

import firedrake as fd
import numpy as np
from mpi4py import MPI

from um2n.interpolation import INSIDE_TOLERANCE, P1Interpolant, barycentric

#: how far outside a cell (in its reference coordinates) a point may lie and still take the
#: function's value there in :func:`evaluate_at`: a vertex that slides along a curved or
#: polygonal boundary leaves the reference vertices of the corners it cut just outside the
#: mesh (Firedrake's default tolerance of a new mesh)
POINT_TOLERANCE = 0.5
#: meshes whose cells a :class:`PointSampler` keeps (the most recently sampled)
MESHES_KEPT = 4


def evaluate_at(f: fd.Function, points: np.ndarray) -> np.ndarray:
    """The P1 function ``f`` at ``points`` (each rank its own), by point evaluation on
    ``f``'s own mesh (:class:`firedrake.PointEvaluator`, within :data:`POINT_TOLERANCE` of a
    cell). A point outside every cell (an iterate of Monge-Ampère can carry a vertex over a
    boundary) takes ``f``'s value at the nearest vertex of the rank's part of that mesh.
    Collective."""
    from scipy.spatial import cKDTree

    source = f.function_space().mesh()
    tolerance = source.tolerance                   # a case may have set its own (for its probes)
    try:
        values = fd.PointEvaluator(source, points, tolerance=POINT_TOLERANCE, missing_points_behaviour="ignore",
                                   redundant=False).evaluate(f)
    finally:
        source.tolerance = tolerance
    missing = ~np.isfinite(values)
    if missing.any():
        _, nearest = cKDTree(source.coordinates.dat.data_ro_with_halos).query(points[missing])
        values[missing] = f.dat.data_ro_with_halos[nearest]
    return values


class PointSampler:
    """P1 (or DG1) values at points, with each point's cell remembered from one call to the next (see
    the module docstring). One sampler per sequence of related point sets (the same number
    of points, in the same order), on any number of meshes: the cells are remembered per mesh.
    Same values as :func:`evaluate_at`."""

    def __init__(self):
        self._cells: dict[int, tuple[object, np.ndarray]] = {}
        self._positions: dict[int, tuple] = {}          # DG1 node coordinates, per mesh
        #: points found in their remembered cell, near it, and left to :func:`evaluate_at` (totals)
        self.counts = {"remembered": 0, "nearest": 0, "point_evaluation": 0}

    @staticmethod
    def _discontinuous(f: fd.Function) -> bool:
        """Whether ``f`` is DG1 (else it must be P1)."""
        element = f.function_space().ufl_element()
        if element.degree() != 1 or f.function_space().value_size != 1:
            raise ValueError(f"PointSampler samples scalar P1 or DG1 functions, not {element}")
        return "Discontinuous" in element.family()

    def _node_positions(self, f: fd.Function) -> np.ndarray:
        """The coordinates of the nodes of ``f``'s (DG1) space, where the mesh is now."""
        mesh = f.function_space().mesh()
        held = self._positions.get(id(mesh))
        if held is None or held[0] is not mesh:
            X = fd.Function(fd.VectorFunctionSpace(mesh, f.function_space().ufl_element().family(), 1))
            held = (mesh, X, fd.SpatialCoordinate(mesh))
            self._positions[id(mesh)] = held
        _, X, x = held
        X.interpolate(x)
        return X.dat.data_ro_with_halos

    def __call__(self, f: fd.Function, points: np.ndarray) -> np.ndarray:
        """``f`` (P1 or DG1) at ``points`` (each rank its own). Collective."""
        mesh = f.function_space().mesh()
        points = np.asarray(points, dtype=np.float64)
        X = mesh.coordinates.dat.data_ro_with_halos
        cell_vertices = mesh.coordinates.cell_node_map().values_with_halo
        f_nodes = f.function_space().cell_node_map().values_with_halo
        values_at_nodes = f.dat.data_ro_with_halos
        n, ncell = len(points), len(cell_vertices)
        key = id(mesh)
        held = self._cells.get(key)
        cells = held[1] if held is not None and held[0] is mesh and len(held[1]) == n else np.full(n, -1)
        lam = np.full((n, cell_vertices.shape[1]), np.nan)
        known = np.flatnonzero((cells >= 0) & (cells < ncell))
        if len(known):
            lam[known] = barycentric(X[cell_vertices[cells[known]]], points[known])
        inside = np.all(lam >= -INSIDE_TOLERANCE, axis=1)
        self.counts["remembered"] += int(inside.sum())
        lost = np.flatnonzero(~inside)
        if len(lost) and ncell:                                 # among the cells nearest to them
            found_cells, found_lam, found = P1Interpolant(X, cell_vertices).locate(points[lost])
            cells[lost[found]] = found_cells[found]
            lam[lost[found]] = found_lam[found]
            inside[lost[found]] = True
            self.counts["nearest"] += int(found.sum())
        values = np.full(n, np.nan)
        cells[~inside] = -1
        if inside.any():
            if self._discontinuous(f):
                # the nodes of a DG1 cell are its vertices in another order: the barycentric
                # coordinates again, against the nodes' own positions
                Xf = self._node_positions(f)
                lam[inside] = barycentric(Xf[f_nodes[cells[inside]]], points[inside])
            values[inside] = np.einsum("ij,ij->i", lam[inside], values_at_nodes[f_nodes[cells[inside]]])
        self._cells.pop(key, None)
        self._cells[key] = (mesh, cells)
        while len(self._cells) > MESHES_KEPT:                   # the least recently sampled goes
            self._cells.pop(next(iter(self._cells)))
        rest = np.flatnonzero(~inside)
        if mesh.comm.allreduce(len(rest), op=MPI.SUM):         # collective: every rank takes part
            values[rest] = evaluate_at(f, points[rest])
            self.counts["point_evaluation"] += len(rest)
        return values
