r"""``MeshGraph``: the connectivity of a 2D triangle mesh as a graph for the mover.

A :class:`MeshGraph` holds the vertices :math:`x_i \in \mathbb{R}^2`, the triangles
(oriented counter-clockwise), the undirected edges, the boundary edges (edges of one
triangle, oriented with the domain on their left) with their physical tags, and the
:class:`~um2n.boundary.BoundaryModel` that says which boundary vertices are corners
(fixed) and on which curve every other boundary vertex slides.

It is built from arrays, from a :class:`meshio.Mesh` or a mesh file, or, through
:mod:`um2n.fem.adapter`, from a Firedrake mesh. Nothing here assumes a particular domain:
several boundary loops (holes), curved boundaries and re-entrant corners are all handled.
Vertices that no triangle uses (gmsh's circle centres, say) are left out of the graph and
left where they are when a moved mesh is written back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import meshio
import numpy as np
import torch

from um2n.boundary import CORNER, INTERIOR, SLIDING, BoundaryModel, classify_boundary
from um2n.errors import MeshInputError
from um2n.io import boundary_segments_of, cell_tags, read_mesh, triangles_of


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    r"""Signed areas :math:`\tfrac12 (x_1 - x_0) \times (x_2 - x_0)` of the triangles."""
    p0, p1, p2 = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return 0.5 * ((p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (p2[:, 0] - p0[:, 0]))


def signed_measures(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Signed areas of triangles ``(M, 3)`` or signed volumes of tetrahedra ``(M, 4)``."""
    if np.shape(cells)[1] == 4:
        from um2n.tetmesh import signed_volumes

        return signed_volumes(points, cells)
    return signed_areas(points, cells)


def mesh_edges(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Edges of a triangulation.

    Returns the undirected edges ``(E, 2)`` with ``i < j``, the boundary edges (those of
    one triangle) oriented as in their triangle (counter-clockwise triangles give the
    domain on the left), and the largest number of triangles sharing one edge.
    """
    tri = np.asarray(triangles, dtype=np.int64)
    half = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    nv = int(tri.max()) + 1
    key = np.minimum(half[:, 0], half[:, 1]) * nv + np.maximum(half[:, 0], half[:, 1])
    ukey, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    edges = np.column_stack([ukey // nv, ukey % nv])
    return edges, half[counts[inverse.ravel()] == 1], int(counts.max())


@dataclass
class MeshGraph:
    """Graph of a 2D triangle mesh, with its boundary classified.

    Attributes
    ----------
    points : (N, 2) float64
        Vertex coordinates.
    triangles : (M, 3) int64
        Triangles, counter-clockwise.
    edges : (E, 2) int64
        Undirected edges ``i < j``.
    boundary_edges : (B, 2) int64
        Boundary edges, oriented with the domain on the left.
    boundary_tags : (B,) int64
        Physical tag of each boundary edge (-1 where the input had none).
    cell_tags : (M,) int64 or None
        Physical tag of each triangle.
    boundary : BoundaryModel
        Corners, sliding vertices and their curves.
    vertex_map : (N,) int64
        Index of each graph vertex in the input point array.
    name : str
        Where the mesh came from (used in messages).
    corner_angle : float
        The turning angle (degrees) the boundary was classified with.
    """

    points: np.ndarray
    triangles: np.ndarray
    edges: np.ndarray
    boundary_edges: np.ndarray
    boundary_tags: np.ndarray
    cell_tags: np.ndarray | None
    boundary: BoundaryModel
    vertex_map: np.ndarray
    name: str = "mesh"
    corner_angle: float = 20.0
    _deform_edges: np.ndarray | None = field(default=None, repr=False)
    _directed_edges: np.ndarray | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        points: np.ndarray,
        triangles: np.ndarray,
        boundary_segments: np.ndarray | None = None,
        boundary_segment_tags: np.ndarray | None = None,
        cell_tags: np.ndarray | None = None,
        corner_angle: float = 20.0,
        name: str = "mesh",
    ) -> "MeshGraph":
        """Build the graph from coordinates and triangles.

        Parameters
        ----------
        points : (N, 2) or (N, 3) array
            Coordinates (a third column must be constant).
        triangles : (M, 3) int array
            Vertex indices of the triangles (either orientation).
        boundary_segments, boundary_segment_tags : optional
            Tagged boundary edges (gmsh ``line`` cells); a change of tag makes a corner.
        cell_tags : (M,) optional
            Physical tag of each triangle, carried through.
        corner_angle : float
            Boundary turning angle (degrees) above which a vertex is a fixed corner.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] not in (2, 3):
            raise MeshInputError(f"{name}: points must have shape (N, 2), got {pts.shape}")
        if pts.shape[1] == 3 and len(pts) and np.ptp(pts[:, 2]) > 1e-12 * max(np.ptp(pts[:, :2]), 1e-300):
            raise MeshInputError(f"{name}: the third coordinate varies; um2n moves planar 2D meshes")
        pts = pts[:, :2]
        tri = np.asarray(triangles, dtype=np.int64)
        if tri.ndim != 2 or tri.shape[1] != 3 or len(tri) == 0:
            raise MeshInputError(f"{name}: triangles must have shape (M, 3), got {tri.shape}")
        if tri.min() < 0 or tri.max() >= len(pts):
            raise MeshInputError(f"{name}: triangles refer to points that do not exist")
        if not np.all(np.isfinite(pts)):
            raise MeshInputError(f"{name}: coordinates contain NaN or infinity")
        # compact: drop vertices that no triangle uses
        used = np.unique(tri)
        remap = np.full(len(pts), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        pts_c = pts[used]
        tri_c = remap[tri]
        area = signed_areas(pts_c, tri_c)
        scale = max(np.ptp(pts_c[:, 0]), np.ptp(pts_c[:, 1])) ** 2
        degenerate = np.abs(area) <= 1e-14 * scale
        if degenerate.any():
            raise MeshInputError(f"{name}: {int(degenerate.sum())} degenerate (zero-area) triangle(s)")
        flip = area < 0
        tri_c[flip] = tri_c[flip][:, [0, 2, 1]]
        uniq, bnd, max_share = mesh_edges(tri_c)
        if max_share > 2:
            raise MeshInputError(f"{name}: an edge is shared by more than two triangles (non-manifold mesh)")
        tags = np.full(len(bnd), -1, dtype=np.int64)
        if boundary_segments is not None and len(boundary_segments):
            seg = remap[np.asarray(boundary_segments, dtype=np.int64)]
            seg_tags = (np.asarray(boundary_segment_tags, dtype=np.int64)
                        if boundary_segment_tags is not None else np.zeros(len(seg), dtype=np.int64))
            ok = (seg >= 0).all(axis=1)
            lookup = {tuple(sorted(e)): t for e, t in zip(seg[ok].tolist(), seg_tags[ok].tolist())}
            tags = np.array([lookup.get(tuple(sorted(e)), -1) for e in bnd.tolist()], dtype=np.int64)
        bm = classify_boundary(pts_c, bnd, tags, corner_angle=corner_angle)
        ctags = None if cell_tags is None else np.asarray(cell_tags, dtype=np.int64).ravel()
        if ctags is not None and len(ctags) != len(tri):
            raise MeshInputError(f"{name}: {len(ctags)} cell tags for {len(tri)} triangles")
        return cls(points=pts_c, triangles=tri_c, edges=uniq.astype(np.int64), boundary_edges=bnd,
                   boundary_tags=tags, cell_tags=ctags, boundary=bm, vertex_map=used, name=name, corner_angle=corner_angle)

    @classmethod
    def from_meshio(cls, mesh: meshio.Mesh, name: str = "mesh", corner_angle: float = 20.0) -> "MeshGraph":
        """Build the graph from a :class:`meshio.Mesh` (triangles plus optional tagged lines)."""
        segs = boundary_segments_of(mesh)
        return cls.from_arrays(
            mesh.points, triangles_of(mesh),
            boundary_segments=None if segs is None else segs[0],
            boundary_segment_tags=None if segs is None else segs[1],
            cell_tags=cell_tags(mesh, "triangle"), corner_angle=corner_angle, name=name,
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike, corner_angle: float = 20.0) -> "MeshGraph":
        """Read a mesh file (``.msh``, ``.vtu``, ...) with meshio and build its graph."""
        return cls.from_meshio(read_mesh(path), name=str(path), corner_angle=corner_angle)

    # ------------------------------------------------------------------ properties
    @property
    def num_vertices(self) -> int:
        return len(self.points)

    @property
    def num_cells(self) -> int:
        return len(self.triangles)

    @property
    def is_boundary(self) -> np.ndarray:
        """(N,) bool: vertex lies on the boundary."""
        return self.boundary.kind != INTERIOR

    @property
    def boundary_vertices(self) -> np.ndarray:
        return np.flatnonzero(self.is_boundary)

    @property
    def corners(self) -> np.ndarray:
        return np.flatnonzero(self.boundary.kind == CORNER)

    @property
    def bounding_box(self) -> tuple[np.ndarray, float]:
        """Lower-left corner and the larger side length of the bounding box."""
        lo = self.points.min(axis=0)
        return lo, float(np.max(self.points.max(axis=0) - lo))

    @property
    def dim(self) -> int:
        return 2

    @property
    def cells(self) -> np.ndarray:
        """The triangles (the safeguard's name for the cells of any dimension)."""
        return self.triangles

    def cell_measures(self, points: np.ndarray | None = None) -> np.ndarray:
        """Signed triangle areas at ``points`` (the safeguard's interface)."""
        return signed_areas(self.points if points is None else points, self.triangles)

    def areas(self, points: np.ndarray | None = None) -> np.ndarray:
        """Signed triangle areas at ``points`` (default: the graph's own)."""
        return signed_areas(self.points if points is None else points, self.triangles)

    def edge_index(self) -> torch.Tensor:
        """(2, 2E) PyG ``edge_index`` with both directions of every mesh edge, sorted by
        target, then source."""
        if self._directed_edges is None:
            n = self.num_vertices
            both = np.concatenate([self.edges, self.edges[:, ::-1]])
            self._directed_edges = both[np.argsort(both[:, 1] * n + both[:, 0], kind="stable")].T.copy()
        return torch.from_numpy(self._directed_edges)

    def deform_edge_index(self) -> torch.Tensor:
        """Edges ``j -> i`` the deformer averages over (self-loops included), sorted by ``i``.

        Interior vertices average over all their neighbours; a sliding boundary vertex only
        over its two boundary neighbours (so that on a straight segment the convex
        combination stays on the segment); a corner only over itself.
        """
        if self._deform_edges is None:
            n = self.num_vertices
            both = np.concatenate([self.edges, self.edges[:, ::-1]])          # rows (src, dst)
            kind = self.boundary.kind[both[:, 1]]
            keep = kind == INTERIOR
            sliding = np.flatnonzero(kind == SLIDING)
            key = lambda e: e.min(axis=1) * n + e.max(axis=1)  # noqa: E731
            keep[sliding[np.isin(key(both[sliding]), key(self.boundary_edges))]] = True
            loops = np.repeat(np.arange(n), 2).reshape(n, 2)
            e = np.concatenate([both[keep], loops])
            e = e[np.argsort(e[:, 1] * n + e[:, 0], kind="stable")]   # sorted by target, then source
            self._deform_edges = e.T.copy()
        return torch.from_numpy(self._deform_edges)

    def with_points(self, points: np.ndarray) -> "MeshGraph":
        """The same mesh (topology, tags, boundary curves) at new vertex positions.

        Used to move a mesh again from where an earlier move left it: corners and boundary
        curves stay those of the original mesh (see :meth:`BoundaryModel.rebased`).
        """
        x = np.asarray(points, dtype=np.float64)
        if x.shape != self.points.shape:
            raise MeshInputError(f"{self.name}: {x.shape} coordinates for a mesh of shape {self.points.shape}")
        return replace(self, points=x.copy(), boundary=self.boundary.rebased(x))

    # ------------------------------------------------------------------ output
    def to_meshio(self, points: np.ndarray | None = None, template: meshio.Mesh | None = None) -> meshio.Mesh:
        """A :class:`meshio.Mesh` at ``points``.

        With ``template`` (the mesh this graph was read from), every cell block, tag and
        field of the template is kept and only the coordinates of the used vertices change.
        """
        x = self.points if points is None else np.asarray(points)
        if template is not None:
            pts = np.array(template.points, dtype=np.float64, copy=True)
            pts[self.vertex_map, :2] = x
            return meshio.Mesh(pts, template.cells, point_data=template.point_data,
                               cell_data=template.cell_data, field_data=template.field_data)
        cells = [("line", self.boundary_edges), ("triangle", self.triangles)]
        cell_data = {"gmsh:physical": [self.boundary_tags, self.cell_tags if self.cell_tags is not None
                                       else np.ones(self.num_cells, dtype=np.int64)]}
        return meshio.Mesh(x, cells, cell_data=cell_data)
