r"""``TetMeshGraph``: the connectivity of a tetrahedral mesh as a graph for the mover.

The 3D counterpart of :class:`um2n.mesh.MeshGraph`: vertices :math:`x_i \in \mathbb{R}^3`,
the tetrahedra (oriented so that the signed volume

.. math::

    V(K) = \tfrac16 \det\,[x_1 - x_0,\; x_2 - x_0,\; x_3 - x_0]

is positive), the undirected edges, the boundary faces (faces of one tetrahedron, oriented
outwards) with their physical tags, and the :class:`~um2n.surface.SurfaceBoundaryModel`
that says which boundary vertices are corners and on which surface or feature edge the
others slide. It offers the interface the safeguard (:func:`um2n.safeguard.untangle`)
works on: ``cells``, :meth:`cell_measures` and ``boundary`` with ``project``/``blend``.

Bad input is refused with one line naming the file: no tetrahedra (a surface-only mesh),
tetrahedra together with other 3D cells or with triangles that are not boundary faces (a
mixed-dimension file), degenerate (zero-volume) tetrahedra, a face shared by more than two
tetrahedra, NaN coordinates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import meshio
import numpy as np
import torch

from um2n.errors import MeshInputError
from um2n.io import cell_tags, read_mesh, tagged_cells_of
from um2n.surface import CORNER, EDGE, FACE, INTERIOR, SurfaceBoundaryModel, classify_surface

_VOLUME_TYPES = ("tetra", "hexahedron", "wedge", "pyramid", "tetra10", "hexahedron20", "hexahedron27",
                 "wedge15", "pyramid13")
_LOWER_TYPES = ("vertex", "line", "line3", "triangle")


def signed_volumes(points: np.ndarray, tets: np.ndarray) -> np.ndarray:
    r"""Signed volumes :math:`\tfrac16 (x_1 - x_0) \cdot ((x_2 - x_0) \times (x_3 - x_0))`."""
    p0 = points[tets[:, 0]]
    a, b, c = points[tets[:, 1]] - p0, points[tets[:, 2]] - p0, points[tets[:, 3]] - p0
    return (a[:, 0] * (b[:, 1] * c[:, 2] - b[:, 2] * c[:, 1])
            - a[:, 1] * (b[:, 0] * c[:, 2] - b[:, 2] * c[:, 0])
            + a[:, 2] * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])) / 6.0


#: The faces of a positively oriented tetrahedron (0, 1, 2, 3), each oriented outwards.
TET_FACES = np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]])
TET_EDGES = np.array([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])


def tet_faces(tets: np.ndarray, num_vertices: int) -> tuple[np.ndarray, int]:
    """Boundary faces of a positively oriented tetrahedral mesh, oriented outwards, and the
    largest number of tetrahedra sharing one face."""
    f = tets[:, TET_FACES].reshape(-1, 3)
    s = np.sort(f, axis=1)
    n = num_vertices
    key = (s[:, 0] * n + s[:, 1]) * n + s[:, 2]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return f[counts[inverse.ravel()] == 1], int(counts.max())


def tet_edges(tets: np.ndarray, num_vertices: int) -> np.ndarray:
    """Undirected edges ``(E, 2)`` with ``i < j``."""
    e = tets[:, TET_EDGES].reshape(-1, 2)
    e = np.sort(e, axis=1)
    key = np.unique(e[:, 0] * num_vertices + e[:, 1])
    return np.column_stack([key // num_vertices, key % num_vertices]).astype(np.int64)


def tetrahedra_of(mesh: meshio.Mesh, name: str = "mesh") -> tuple[np.ndarray, np.ndarray | None]:
    """The tetrahedra of ``mesh`` and their tags, after checking that it is a linear
    tetrahedral mesh (see the module docstring for what is refused)."""
    pts = np.asarray(mesh.points)
    if pts.ndim != 2 or pts.shape[0] == 0:
        raise MeshInputError(f"{name}: the mesh has no points")
    if pts.shape[1] != 3:
        raise MeshInputError(f"{name}: points have {pts.shape[1]} coordinates; a tetrahedral mesh needs 3")
    if not np.all(np.isfinite(pts)):
        raise MeshInputError(f"{name}: {int((~np.isfinite(pts)).any(axis=1).sum())} point(s) have NaN or infinite coordinates")
    types = [c.type for c in mesh.cells]
    if "tetra" not in types:
        other = [t for t in types if t in _VOLUME_TYPES]
        if other:
            raise MeshInputError(f"{name}: has {other[0]} cells and no linear tetrahedra; um2n moves linear tetrahedral meshes in 3D")
        raise MeshInputError(f"{name}: a surface-only mesh (no tetrahedra, only {', '.join(sorted(set(types))) or 'no cells'}); "
                             "um2n moves 2D meshes in a plane or tetrahedral volume meshes")
    other = sorted({t for t in types if t != "tetra" and t not in _LOWER_TYPES})
    if other:
        raise MeshInputError(f"{name}: a mixed mesh (tetrahedra and {', '.join(other)} cells); um2n moves linear tetrahedral meshes only")
    tets = np.concatenate([c.data for c in mesh.cells if c.type == "tetra"]).astype(np.int64)
    if tets.min() < 0 or tets.max() >= len(pts):
        raise MeshInputError(f"{name}: tetrahedra refer to points that do not exist")
    return tets, cell_tags(mesh, "tetra")


@dataclass
class TetMeshGraph:
    """Graph of a tetrahedral mesh, with its boundary classified.

    Attributes
    ----------
    points : (N, 3) float64
    tets : (M, 4) int64
        Tetrahedra, positively oriented.
    edges : (E, 2) int64
        Undirected edges ``i < j``.
    boundary_faces : (B, 3) int64
        Boundary faces, oriented outwards.
    boundary_tags : (B,) int64
        Physical tag of each boundary face (-1 where the input had none).
    cell_tags : (M,) int64 or None
    boundary : SurfaceBoundaryModel
    vertex_map : (N,) int64
        Index of each graph vertex in the input point array.
    name : str
    """

    points: np.ndarray
    tets: np.ndarray
    edges: np.ndarray
    boundary_faces: np.ndarray
    boundary_tags: np.ndarray
    cell_tags: np.ndarray | None
    boundary: SurfaceBoundaryModel
    vertex_map: np.ndarray
    name: str = "mesh"
    _deform_edges: np.ndarray | None = field(default=None, repr=False)
    _directed_edges: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_arrays(cls, points: np.ndarray, tets: np.ndarray, boundary_triangles: np.ndarray | None = None,
                    boundary_triangle_tags: np.ndarray | None = None, cell_tags: np.ndarray | None = None,
                    feature_angle: float = 30.0, corner_angle: float = 30.0, name: str = "mesh") -> "TetMeshGraph":
        """Build the graph from coordinates and tetrahedra.

        Parameters
        ----------
        points : (N, 3) array
        tets : (M, 4) int array (either orientation)
        boundary_triangles, boundary_triangle_tags : optional
            Tagged boundary faces (gmsh ``triangle`` cells); a change of tag is a feature edge.
            Every triangle given must be a boundary face of the tetrahedra.
        cell_tags : (M,) optional
        feature_angle, corner_angle : float
            See :func:`um2n.surface.classify_surface`.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise MeshInputError(f"{name}: points must have shape (N, 3), got {pts.shape}")
        tet = np.asarray(tets, dtype=np.int64)
        if tet.ndim != 2 or tet.shape[1] != 4 or len(tet) == 0:
            raise MeshInputError(f"{name}: tetrahedra must have shape (M, 4), got {tet.shape}")
        if tet.min() < 0 or tet.max() >= len(pts):
            raise MeshInputError(f"{name}: tetrahedra refer to points that do not exist")
        if not np.all(np.isfinite(pts)):
            raise MeshInputError(f"{name}: coordinates contain NaN or infinity")
        used = np.unique(tet)
        remap = np.full(len(pts), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        p = pts[used]
        t = remap[tet]
        vol = signed_volumes(p, t)
        scale = float(np.ptp(p, axis=0).max()) ** 3
        degenerate = np.abs(vol) <= 1e-14 * scale
        if degenerate.any():
            k = int(np.flatnonzero(degenerate)[0])
            raise MeshInputError(f"{name}: {int(degenerate.sum())} degenerate (zero-volume) tetrahedra "
                                 f"(the first is cell {k}, vertices {tet[k].tolist()})")
        flip = vol < 0
        t[flip] = t[flip][:, [0, 2, 1, 3]]
        faces, max_share = tet_faces(t, len(p))
        if max_share > 2:
            raise MeshInputError(f"{name}: a face is shared by more than two tetrahedra (non-manifold mesh)")
        n = len(p)
        tags = np.full(len(faces), -1, dtype=np.int64)
        if boundary_triangles is not None and len(boundary_triangles):
            bt = np.asarray(boundary_triangles, dtype=np.int64)
            btags = (np.asarray(boundary_triangle_tags, dtype=np.int64) if boundary_triangle_tags is not None
                     else np.zeros(len(bt), dtype=np.int64))
            bt = remap[bt]
            s = np.sort(faces, axis=1)
            fkey = (s[:, 0] * n + s[:, 1]) * n + s[:, 2]
            ok = (bt >= 0).all(axis=1)
            sb = np.sort(bt[ok], axis=1)
            bkey = (sb[:, 0] * n + sb[:, 1]) * n + sb[:, 2]
            sorted_f = np.sort(fkey)
            pos = np.searchsorted(sorted_f, bkey)
            found = (pos < len(sorted_f)) & (sorted_f[np.minimum(pos, len(sorted_f) - 1)] == bkey)
            stray = int((~ok).sum() + (~found).sum())
            if stray:
                raise MeshInputError(f"{name}: a mixed-dimension mesh: {stray} triangle cell(s) are not boundary "
                                     "faces of the tetrahedra")
            lookup = dict(zip(bkey.tolist(), btags[ok].tolist()))
            tags = np.array([lookup.get(k, -1) for k in fkey.tolist()], dtype=np.int64)
        ctags = None if cell_tags is None else np.asarray(cell_tags, dtype=np.int64).ravel()
        if ctags is not None and len(ctags) != len(tet):
            raise MeshInputError(f"{name}: {len(ctags)} cell tags for {len(tet)} tetrahedra")
        bm = classify_surface(p, faces, tags, feature_angle=feature_angle, corner_angle=corner_angle)
        return cls(points=p, tets=t, edges=tet_edges(t, n), boundary_faces=faces, boundary_tags=tags,
                   cell_tags=ctags, boundary=bm, vertex_map=used, name=name)

    @classmethod
    def from_meshio(cls, mesh: meshio.Mesh, name: str = "mesh", feature_angle: float = 30.0,
                    corner_angle: float = 30.0) -> "TetMeshGraph":
        """Build the graph from a :class:`meshio.Mesh` (tetrahedra plus optional tagged triangles)."""
        tets, ctags = tetrahedra_of(mesh, name)
        tri = tagged_cells_of(mesh, "triangle")
        return cls.from_arrays(mesh.points, tets, boundary_triangles=None if tri is None else tri[0],
                               boundary_triangle_tags=None if tri is None else tri[1], cell_tags=ctags,
                               feature_angle=feature_angle, corner_angle=corner_angle, name=name)

    @classmethod
    def from_file(cls, path: str | os.PathLike, feature_angle: float = 30.0, corner_angle: float = 30.0) -> "TetMeshGraph":
        """Read a tetrahedral mesh file (``.msh``, ``.vtu``, ...) with meshio and build its graph."""
        return cls.from_meshio(read_mesh(path, dim=3), name=str(path), feature_angle=feature_angle, corner_angle=corner_angle)

    # ---------------------------------------------------------------- interface of the safeguard
    def with_points(self, points: np.ndarray) -> "TetMeshGraph":
        """The same mesh (topology, tags, surfaces and feature curves) at new vertex positions."""
        x = np.asarray(points, dtype=np.float64)
        if x.shape != self.points.shape:
            raise MeshInputError(f"{self.name}: {x.shape} coordinates for a mesh of shape {self.points.shape}")
        return replace(self, points=x.copy(), boundary=self.boundary.rebased(x))

    @property
    def cells(self) -> np.ndarray:
        return self.tets

    def cell_measures(self, points: np.ndarray | None = None) -> np.ndarray:
        """Signed volumes at ``points`` (default: the graph's own)."""
        return signed_volumes(self.points if points is None else points, self.tets)

    @property
    def num_vertices(self) -> int:
        return len(self.points)

    @property
    def num_cells(self) -> int:
        return len(self.tets)

    @property
    def is_boundary(self) -> np.ndarray:
        return self.boundary.kind != INTERIOR

    @property
    def corners(self) -> np.ndarray:
        return self.boundary.corners

    @property
    def dim(self) -> int:
        return 3

    @property
    def bounding_box(self) -> tuple[np.ndarray, float]:
        """Lowest corner and the largest side length of the bounding box."""
        lo = self.points.min(axis=0)
        return lo, float(np.max(self.points.max(axis=0) - lo))

    def edge_index(self) -> torch.Tensor:
        """(2, 2E) PyG ``edge_index`` with both directions of every mesh edge, sorted by
        target, then source."""
        if self._directed_edges is None:
            n = self.num_vertices
            both = np.concatenate([self.edges, self.edges[:, ::-1]])
            self._directed_edges = both[np.argsort(both[:, 1] * n + both[:, 0], kind="stable")].T.copy()
        return torch.from_numpy(self._directed_edges)

    def deform_edge_index(self) -> torch.Tensor:
        """Edges ``j -> i`` a convex-combination deformer averages over (self-loops
        included), sorted by ``i``: an interior vertex over all its neighbours, a vertex on
        a face over its neighbours along the boundary faces of its own patch, a vertex on a
        feature edge over its two neighbours along that edge, a corner over itself. A convex
        combination of these neighbours stays in the plane of a planar patch and on the
        line of a straight feature edge."""
        if self._deform_edges is None:
            n = self.num_vertices
            kind = self.boundary.kind
            both = np.concatenate([self.edges, self.edges[:, ::-1]])          # rows (src, dst)
            keep = kind[both[:, 1]] == INTERIOR
            # patch edges: (src, dst) on a boundary face of dst's patch
            f = self.boundary_faces
            pf = self.boundary.patch_of_face
            he = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]], f[:, [1, 0]], f[:, [2, 1]], f[:, [0, 2]]])
            hp = np.tile(pf, 6)
            dst_patch = np.full(n, -1, dtype=np.int64)
            fv = kind == FACE
            dst_patch[fv] = self.boundary.constraint[fv]
            on_patch = (kind[he[:, 1]] == FACE) & (hp == dst_patch[he[:, 1]])
            extra = [he[on_patch]]
            for verts, closed in self.boundary.chains:
                nxt = np.roll(verts, -1) if closed else verts[1:]
                cur = verts if closed else verts[:-1]
                pairs = np.concatenate([np.column_stack([cur, nxt]), np.column_stack([nxt, cur])])
                extra.append(pairs[kind[pairs[:, 1]] == EDGE])
            loops = np.repeat(np.arange(n), 2).reshape(n, 2)
            e = np.unique(np.concatenate([both[keep], *extra, loops]), axis=0)
            e = e[np.argsort(e[:, 1] * n + e[:, 0], kind="stable")]
            self._deform_edges = e.T.copy()
        return torch.from_numpy(self._deform_edges)

    def to_meshio(self, points: np.ndarray | None = None, template: meshio.Mesh | None = None) -> meshio.Mesh:
        """A :class:`meshio.Mesh` at ``points``; with ``template`` every block, tag and
        field of the template is kept and only the used vertices' coordinates change."""
        x = self.points if points is None else np.asarray(points)
        if template is not None:
            pts = np.array(template.points, dtype=np.float64, copy=True)
            pts[self.vertex_map] = x
            return meshio.Mesh(pts, template.cells, point_data=template.point_data,
                               cell_data=template.cell_data, field_data=template.field_data)
        ctags = self.cell_tags if self.cell_tags is not None else np.ones(self.num_cells, dtype=np.int64)
        return meshio.Mesh(x, [("triangle", self.boundary_faces), ("tetra", self.tets)],
                           cell_data={"gmsh:physical": [self.boundary_tags, ctags]})


__all__ = ["TetMeshGraph", "signed_volumes", "tet_faces", "tet_edges", "tetrahedra_of", "CORNER", "EDGE", "FACE",
           "INTERIOR"]
