"""Firedrake mesh <-> :class:`~um2n.mesh.MeshGraph`, and in-place moves of Firedrake meshes.

This is the one place where the mover meets Firedrake. A Firedrake mesh with a P1
(affine) coordinate field is turned into a :class:`MeshGraph` (vertices, triangles and the
boundary tagged with the mesh's exterior-facet markers); :func:`move_mesh` runs a mover on
it and writes the new coordinates into ``mesh.coordinates`` in place, so that every
:class:`firedrake.Function` on the mesh now lives on the moved mesh.

Parallel runs: the graph is built from the coordinates of one process. Runs on more than
one MPI rank are not supported yet by this adapter (it raises a clear error); the plan is
to gather the mesh to rank 0, move it there and scatter the coordinates back.
"""

from __future__ import annotations

import firedrake as fd
import numpy as np

from um2n.errors import MeshInputError
from um2n.mesh import MeshGraph, mesh_edges
from um2n.monitor import MonitorLike
from um2n.mover import MoveResult, UM2NMover


def _attr(attr):
    return attr() if callable(attr) else attr   # methods in older Firedrake/UFL, properties now


def _dim(attr) -> int:
    return int(_attr(attr))


def _check_mesh(mesh) -> fd.Function:
    if mesh.comm.size > 1:
        raise NotImplementedError("um2n.fem.adapter: meshes distributed over several MPI ranks "
                                  "are not supported yet; run the mover on one rank")
    tdim, gdim = _dim(mesh.topological_dimension), _dim(mesh.geometric_dimension)
    if tdim != 2 or gdim != 2:
        raise MeshInputError(f"um2n moves 2D meshes in 2D (got topological dimension {tdim}, geometric {gdim})")
    coords = mesh.coordinates
    elem = coords.function_space().ufl_element()
    cellname = _attr(mesh.ufl_cell().cellname)
    degree = _attr(elem.degree)
    if degree != 1 or cellname != "triangle":
        raise MeshInputError("um2n moves affine triangle meshes (P1 coordinates on triangles); "
                             f"got {cellname} of degree {degree}")
    return coords


def mesh_graph(mesh, corner_angle: float = 20.0) -> MeshGraph:
    """The :class:`MeshGraph` of a Firedrake mesh, boundary edges tagged with its facet markers.

    Vertex ``i`` of the graph is node ``i`` of ``mesh.coordinates``.
    """
    coords = _check_mesh(mesh)
    V = coords.function_space()
    pts = np.array(coords.dat.data_ro, dtype=np.float64)
    tri = np.asarray(V.cell_node_list, dtype=np.int64)
    _, bnd, _ = mesh_edges(tri)
    seg_tags = np.full(len(bnd), -1, dtype=np.int64)
    for tag in sorted(int(t) for t in mesh.exterior_facets.unique_markers):
        nodes = np.zeros(len(pts), dtype=bool)
        nodes[fd.DirichletBC(V, fd.Constant((0.0, 0.0)), tag).nodes] = True
        both = nodes[bnd[:, 0]] & nodes[bnd[:, 1]] & (seg_tags < 0)
        seg_tags[both] = tag
    return MeshGraph.from_arrays(pts, tri, boundary_segments=bnd, boundary_segment_tags=seg_tags,
                                 corner_angle=corner_angle, name=f"Firedrake mesh {mesh.name}")


def move_mesh(mesh, monitor: MonitorLike | fd.Function, mover: UM2NMover | None = None,
              graph: MeshGraph | None = None) -> MoveResult:
    """Move a Firedrake mesh in place towards ``monitor``.

    Parameters
    ----------
    mesh : firedrake.MeshGeometry
    monitor : array, callable ``f(x, y)``, expression string, or a P1 :class:`firedrake.Function`
        The monitor at the vertices (a Function is interpolated to P1 first).
    mover : UM2NMover, optional (default: the shipped weights)
    graph : MeshGraph, optional
        The graph of the mesh before its first move (from :func:`mesh_graph`). Reuse it for
        every later move: its corners and boundary curves stay the reference, so repeated
        moves never drift from the original boundary.
    """
    coords = _check_mesh(mesh)
    if graph is None:
        graph = mesh_graph(mesh)
    if isinstance(monitor, fd.Function):
        P1 = fd.FunctionSpace(mesh, "CG", 1)
        m = monitor if monitor.function_space() == P1 else fd.Function(P1).interpolate(monitor)
        monitor = np.array(m.dat.data_ro, dtype=np.float64)
    current = graph.with_points(np.array(coords.dat.data_ro, dtype=np.float64))
    result = (mover or UM2NMover()).move(current, monitor)
    coords.dat.data[:] = result.points
    return result
