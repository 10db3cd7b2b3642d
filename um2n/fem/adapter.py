"""Firedrake mesh <-> :class:`~um2n.mesh.MeshGraph`, and in-place moves of Firedrake meshes.

This is the one place where the mover meets Firedrake. A Firedrake mesh with a P1
(affine) coordinate field is turned into a :class:`MeshGraph` (vertices, triangles and the
boundary tagged with the mesh's exterior-facet markers); :func:`move_mesh` runs a mover on
it and writes the new coordinates into ``mesh.coordinates`` in place, so that every
:class:`firedrake.Function` on the mesh now lives on the moved mesh.

Parallel runs (MPI), two ways. :func:`mesh_partition` and :func:`move_mesh_distributed` keep
the mesh distributed: each rank moves the vertices it owns with
:class:`um2n.distributed.DistributedMover`, exchanging only its halo, the latent summaries
and the boundary (the default of the loop's UM2N mover under MPI). The *gathered* fallback,
:func:`mesh_graph` and :func:`move_mesh`: every rank contributes its owned vertices
(by their global numbers, from the P1 local-to-global map) and owned cells; every rank then
holds the same global :class:`MeshGraph` (vertex ``i`` = global P1 node ``i``). The move is
computed on rank 0 only, its coordinates are broadcast, and each rank writes the entries of
its own (owned and ghost) vertices. This costs one copy of the whole mesh per rank and
serialises the (fast) network move. The global numbering depends on the partition, and the
network's float32 sums depend on the order of their terms, so the network sees the mesh in
a numbering of its own that does not: vertices sorted by their reference coordinates,
triangles by their vertices. A move then gives the same coordinates on any number of ranks.
A monitor given as an array is read in this global numbering; a Function, a callable or an
expression works the same in serial and parallel.
"""

from __future__ import annotations

from dataclasses import replace

import firedrake as fd
import numpy as np

from um2n.errors import MeshInputError
from um2n.mesh import MeshGraph, mesh_edges
from um2n.monitor import MonitorLike
from um2n.mover import MoveResult, UM2NMover
from um2n.tetmesh import TetMeshGraph, tet_faces


def _attr(attr):
    return attr() if callable(attr) else attr   # methods in older Firedrake/UFL, properties now


def _dim(attr) -> int:
    return int(_attr(attr))


def _check_mesh(mesh, dims: tuple[int, ...] = (2,)) -> fd.Function:
    tdim, gdim = _dim(mesh.topological_dimension), _dim(mesh.geometric_dimension)
    if tdim != gdim or tdim not in dims:
        what = " and ".join(f"{d}D meshes in {d}D" for d in dims)
        raise MeshInputError(f"um2n moves {what} (got topological dimension {tdim}, geometric {gdim})")
    coords = mesh.coordinates
    elem = coords.function_space().ufl_element()
    cellname = _attr(mesh.ufl_cell().cellname)
    degree = _attr(elem.degree)
    family = _attr(elem.family)
    cell = {2: "triangle", 3: "tetrahedron"}[tdim]
    if degree != 1 or cellname != cell or family not in ("Lagrange", "Q", "CG"):
        raise MeshInputError(f"um2n moves affine {cell} meshes (continuous P1 coordinates on {cell}s); "
                             f"got {family} {cellname} of degree {degree}")
    return coords


def vertex_count(mesh) -> int:
    """The number of vertices of ``mesh`` over all ranks (``mesh.num_vertices()`` is the rank's)."""
    return int(mesh.comm.allreduce(fd.FunctionSpace(mesh, "CG", 1).dof_dset.size))


class _Numbering:
    """Local P1 nodes of this rank and their global numbers."""

    def __init__(self, mesh):
        self.P1 = fd.FunctionSpace(mesh, "CG", 1)
        self.comm = mesh.comm
        self.local_to_global = np.asarray(self.P1.dof_dset.lgmap.indices, dtype=np.int64)
        self.n_owned = int(self.P1.dof_dset.size)
        self.n_global = int(self.comm.allreduce(self.n_owned))

    def gather(self, local: np.ndarray) -> np.ndarray:
        """Global array (every rank) from the owned rows of a per-local-node array."""
        owned = self.local_to_global[: self.n_owned]
        ids = np.concatenate(self.comm.allgather(owned))
        vals = np.concatenate(self.comm.allgather(np.asarray(local)[: self.n_owned]))
        out = np.empty((self.n_global,) + vals.shape[1:], dtype=vals.dtype)
        out[ids] = vals
        return out

    def gather_ids(self, local_ids: np.ndarray) -> np.ndarray:
        """Global numbers of a set of local nodes, united over the ranks."""
        return np.unique(np.concatenate(self.comm.allgather(self.local_to_global[np.asarray(local_ids, dtype=np.int64)])))


def mesh_graph(mesh, corner_angle: float = 20.0) -> "MeshGraph | TetMeshGraph":
    """The global graph of a Firedrake mesh, boundary edges (2D) or faces (3D) tagged with its
    markers: a :class:`MeshGraph` for a triangle mesh, a :class:`~um2n.tetmesh.TetMeshGraph`
    for a tetrahedral one.

    Vertex ``i`` of the graph is global P1 node ``i`` (in serial: node ``i`` of
    ``mesh.coordinates``). In parallel every rank gets the same global graph.
    """
    coords = _check_mesh(mesh, dims=(2, 3))
    num = _Numbering(mesh)
    pts = num.gather(np.array(coords.dat.data_ro, dtype=np.float64))
    n_cells = mesh.cell_set.size
    local_cells = np.asarray(num.P1.cell_node_list, dtype=np.int64)[:n_cells]
    cells = np.concatenate(num.comm.allgather(num.local_to_global[local_cells]))
    if cells.shape[1] == 4:
        bnd, _ = tet_faces(cells, len(pts))
    else:
        _, bnd, _ = mesh_edges(cells)
    facet_tags = np.full(len(bnd), -1, dtype=np.int64)
    markers = sorted({int(t) for t in mesh.exterior_facets.unique_markers})
    for tag in markers:
        nodes = np.zeros(len(pts), dtype=bool)
        nodes[num.gather_ids(fd.DirichletBC(num.P1, 0.0, tag).nodes)] = True
        on = nodes[bnd].all(axis=1) & (facet_tags < 0)
        facet_tags[on] = tag
    name = f"Firedrake mesh {mesh.name}"
    if cells.shape[1] == 4:
        return TetMeshGraph.from_arrays(pts, cells, boundary_triangles=bnd, boundary_triangle_tags=facet_tags,
                                        name=name)
    return MeshGraph.from_arrays(pts, cells, boundary_segments=bnd, boundary_segment_tags=facet_tags,
                                 corner_angle=corner_angle, name=name)


def mesh_partition(mesh, corner_angle: float = 20.0):
    """This rank's :class:`um2n.distributed.Partition` of a Firedrake mesh (collective).

    Each rank gives its P1 nodes (owned and halo, with their global numbers and owning ranks),
    the cells it owns and the exterior facets it holds, tagged with their markers; the
    partition completes the stars of the owned vertices across ranks. Nothing is gathered.
    """
    from um2n.distributed import Partition

    coords = _check_mesh(mesh)
    num = _Numbering(mesh)
    owner = fd.Function(num.P1)
    owner.dat.data[:] = mesh.comm.rank
    owners = np.rint(owner.dat.data_ro_with_halos).astype(np.int64)      # the halo from its owners
    pts = np.array(coords.dat.data_ro_with_halos, dtype=np.float64)
    cells = np.asarray(num.P1.cell_node_list, dtype=np.int64)[: mesh.cell_set.size]
    edges, tags = [], []
    for tag in sorted({int(t) for t in mesh.exterior_facets.unique_markers}):
        facets = mesh.exterior_facets.subset(tag)
        nodes = num.P1.exterior_facet_node_map().values_with_halo[facets.indices] if len(facets.indices) else None
        if nodes is None:
            continue
        # the two vertices of each facet: the nodes of the facet's cell that lie on it
        local = mesh.exterior_facets.local_facet_dat.data_ro_with_halos[facets.indices]
        local = np.asarray(local).reshape(len(facets.indices), -1)[:, 0]
        keep = np.array([[k for k in range(3) if k != int(f)] for f in local], dtype=np.int64)
        edges.append(np.take_along_axis(nodes, keep, axis=1))
        tags.append(np.full(len(keep), tag, dtype=np.int64))
    be = np.concatenate(edges) if edges else np.zeros((0, 2), np.int64)
    bt = np.concatenate(tags) if tags else np.zeros(0, np.int64)
    return Partition.from_local(mesh.comm, num.local_to_global, owners, pts, cells, be, bt,
                                corner_angle=corner_angle)


def move_mesh_distributed(mesh, monitor: fd.Function, part, mover, reference: np.ndarray | None = None,
                          rows: "PartitionRows | None" = None):
    """Move a Firedrake mesh in place with the distributed network (collective).

    ``monitor`` a P1 Function on ``mesh``; ``part`` from :func:`mesh_partition` (built on the
    reference coordinates); ``mover`` a :class:`um2n.distributed.DistributedMover`; the move
    starts from ``reference`` (every local node; default: the current coordinates); ``rows``:
    the :class:`PartitionRows` of ``mesh`` and ``part``, kept by a caller that moves often.
    Returns the :class:`um2n.distributed.DistributedMoveResult`.
    """
    coords = _check_mesh(mesh)
    rows = rows or PartitionRows(mesh, part)
    start = np.array(coords.dat.data_ro_with_halos if reference is None else reference, dtype=np.float64)
    m = monitor if monitor.function_space() == rows.P1 else fd.Function(rows.P1).interpolate(monitor)
    result = mover.move(part, rows.to_partition(np.asarray(m.dat.data_ro)), current=rows.to_partition(start))
    coords.dat.data[:] = rows.from_partition(result.points)
    coords.dat.data_ro_with_halos                          # the halo from its owners, now
    if hasattr(mesh, "clear_spatial_index"):
        mesh.clear_spatial_index()
    return result


class PartitionRows:
    """Between a Firedrake mesh's P1 rows (owned first) and its :class:`~um2n.distributed.Partition`'s."""

    def __init__(self, mesh, part):
        num = _Numbering(mesh)
        self.P1, self.part = num.P1, part
        owned = num.local_to_global[:num.n_owned]
        order = np.argsort(owned)
        #: Firedrake's row of each owned vertex of the partition
        self.rows = order[np.searchsorted(owned[order], part.global_ids[:part.num_owned])]

    def to_partition(self, a: np.ndarray) -> np.ndarray:
        """Rows of the partition's vertices (ghosts from their owners) from Firedrake's rows
        (at least the owned ones). Collective."""
        a = np.asarray(a)
        out = np.zeros((self.part.num_vertices,) + a.shape[1:], dtype=np.float64)
        out[: self.part.num_owned] = a[self.rows]
        return self.part.exchange(out)

    def from_partition(self, a: np.ndarray) -> np.ndarray:
        """Firedrake's owned rows from the partition's rows."""
        out = np.empty((len(self.rows),) + np.shape(a)[1:], dtype=np.float64)
        out[self.rows] = np.asarray(a)[: self.part.num_owned]
        return out


def _canonical(graph: "MeshGraph | TetMeshGraph") -> tuple["MeshGraph | TetMeshGraph", np.ndarray]:
    """``graph`` renumbered independently of the partition, and the permutation ``perm``
    (vertex ``k`` of the renumbered graph is vertex ``perm[k]`` of ``graph``); cached on the graph."""
    cached = graph.__dict__.get("_canonical_numbering")
    if cached is not None:
        return cached
    perm = np.lexsort(graph.points.T[::-1])
    rank = np.empty_like(perm)
    rank[perm] = np.arange(len(perm))
    if graph.dim == 3:
        tet = rank[graph.tets]
        tet = tet[np.lexsort(np.sort(tet, axis=1).T[::-1])]
        faces = rank[graph.boundary_faces]
        order = np.lexsort(np.sort(faces, axis=1).T[::-1])
        canonical = TetMeshGraph.from_arrays(graph.points[perm], tet, boundary_triangles=faces[order],
                                             boundary_triangle_tags=graph.boundary_tags[order], name=graph.name)
        graph.__dict__["_canonical_numbering"] = (canonical, perm)
        return canonical, perm
    tri = rank[graph.triangles]
    first = np.argmin(tri, axis=1)                  # rotate: smallest label first, orientation kept
    tri = np.take_along_axis(tri, (first[:, None] + np.arange(3)) % 3, axis=1)
    tri = tri[np.lexsort(tri.T[::-1])]
    seg = rank[graph.boundary_edges]
    order = np.lexsort(np.sort(seg, axis=1).T[::-1])
    canonical = MeshGraph.from_arrays(graph.points[perm], tri, boundary_segments=seg[order],
                                      boundary_segment_tags=graph.boundary_tags[order],
                                      corner_angle=graph.corner_angle, name=graph.name)
    graph.__dict__["_canonical_numbering"] = (canonical, perm)
    return canonical, perm


def move_mesh(mesh, monitor: MonitorLike | fd.Function, mover: UM2NMover | None = None,
              graph: MeshGraph | None = None) -> MoveResult:
    """Move a Firedrake mesh in place towards ``monitor`` (serial or MPI, see the module doc).

    Parameters
    ----------
    mesh : firedrake.MeshGeometry
    monitor : array (global numbering), callable ``f(x, y)``, expression string, or a
        :class:`firedrake.Function` (interpolated to P1 first)
    mover : UM2NMover, optional (default: the shipped weights)
    graph : MeshGraph, optional
        The graph of the mesh before its first move (from :func:`mesh_graph`). Reuse it for
        every later move: its corners and boundary curves stay the reference, so repeated
        moves never drift from the original boundary.

    Returns the :class:`MoveResult` (the same on every rank).
    """
    coords = _check_mesh(mesh, dims=(2, 3))
    num = _Numbering(mesh)
    if graph is None:
        graph = mesh_graph(mesh)
    if isinstance(monitor, fd.Function):
        m = monitor if monitor.function_space() == num.P1 else fd.Function(num.P1).interpolate(monitor)
        monitor = num.gather(np.array(m.dat.data_ro, dtype=np.float64))
    current = num.gather(np.array(coords.dat.data_ro, dtype=np.float64))
    result, error = None, None
    if num.comm.rank == 0:
        try:
            canonical, perm = _canonical(graph)
            if not callable(monitor) and not isinstance(monitor, str):
                monitor = np.asarray(monitor)[perm]
            moved = (mover or UM2NMover()).move(canonical.with_points(current[perm]), monitor)
            back = np.empty_like(perm)
            back[perm] = np.arange(len(perm))
            result = replace(moved, points=moved.points[back], raw_points=moved.raw_points[back],
                             monitor=np.asarray(moved.monitor)[back])
        except Exception as exc:          # every rank must learn of it, or the others wait forever
            error = exc
    result, error = num.comm.bcast((result, error), root=0)
    if error is not None:
        raise error
    coords.dat.data_with_halos[:] = result.points[num.local_to_global]
    if hasattr(mesh, "clear_spatial_index"):
        mesh.clear_spatial_index()
    return result
