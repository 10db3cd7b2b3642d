r"""Boundary geometry of a tetrahedral mesh: surfaces, feature edges and corners.

The boundary of a tetrahedral mesh is the set of faces that belong to one tetrahedron.
It is split into *patches*: two boundary faces that share an edge are in the same patch
when they carry the same physical tag and their normals differ by less than
``feature_angle`` degrees. A boundary vertex is then

* on a *face* (``FACE``) when it touches one patch: it slides on that patch's surface;
* on a *feature edge* (``EDGE``) when it touches two patches: it slides along the curve
  where they meet;
* a *corner* (``CORNER``, fixed) when it touches three or more patches, sits on a
  non-manifold boundary edge, ends an open feature edge, or where its feature edge turns
  by more than ``corner_angle`` degrees.

Each patch is recognised, in this order, as a :class:`Plane` (all vertices within
``1e-9`` of the patch's size from their best-fit plane), a :class:`Sphere` or a
:class:`Cylinder` (least-squares fits with a relative residual below ``1e-7``), and
otherwise as a :class:`TriangulatedSurface`: the vertices slide on the original boundary
triangles, which keeps the discrete domain exactly. Each feature edge (a chain of boundary
edges between corners, or a closed loop) is a :class:`Line` when its vertices are
collinear, a :class:`Circle` when they are coplanar and concyclic, and a :class:`Polyline`
otherwise.

A constrained vertex is put back on its surface or curve by the closest-point projection
:math:`P`. Blending an old and a new position takes :math:`P(x_0 + \alpha (x_1 - x_0))`:
on planes and lines the blend already lies on the constraint, on spheres, cylinders and
circles it is projected radially, which is continuous in :math:`\alpha` and equal to
:math:`x_0` at :math:`\alpha = 0` (where the start is returned bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial import cKDTree

INTERIOR, CORNER, FACE, EDGE = 0, 1, 2, 3

#: Relative tolerance of the plane and line tests (of the patch's or chain's size).
FLAT_TOL = 1e-9
#: Relative residual below which a sphere, cylinder or circle fit is accepted.
FIT_TOL = 1e-7


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


class Constraint:
    """A surface or curve that boundary vertices are kept on."""

    def project(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """The closest points of the constraint to the rows of ``x``."""
        raise NotImplementedError

    def distance(self, x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(x - self.project(x), axis=1)


# ---------------------------------------------------------------------------- surfaces
@dataclass
class Plane(Constraint):
    """The plane :math:`(x - p) \\cdot n = 0` (``n`` a unit vector)."""

    point: np.ndarray
    normal: np.ndarray

    def project(self, x):
        return x - ((x - self.point) @ self.normal)[:, None] * self.normal[None, :]


@dataclass
class Sphere(Constraint):
    """The sphere :math:`|x - c| = r`."""

    centre: np.ndarray
    radius: float

    def project(self, x):
        return self.centre + self.radius * _unit(x - self.centre)


@dataclass
class Cylinder(Constraint):
    """The cylinder of radius ``r`` about the line through ``point`` along the unit ``axis``."""

    point: np.ndarray
    axis: np.ndarray
    radius: float

    def project(self, x):
        d = x - self.point
        along = (d @ self.axis)[:, None] * self.axis[None, :]
        return self.point + along + self.radius * _unit(d - along)


def closest_on_triangles(x: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point of triangle ``(a[k], b[k], c[k])`` to ``x[k]``, row by row (Ericson,
    *Real-Time Collision Detection*, 5.1.5: the Voronoi regions of vertices, edges, face)."""
    ab, ac, ap = b - a, c - a, x - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp = x - b
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    cp = x - c
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v_face, w_face = vb / denom, vc / denom
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    out = a + v_face[:, None] * ab + w_face[:, None] * ac
    cases = [
        ((d1 <= 0) & (d2 <= 0), a),
        ((d3 >= 0) & (d4 <= d3), b),
        ((d6 >= 0) & (d5 <= d6), c),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + t_ab[:, None] * ab),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + t_ac[:, None] * ac),
        ((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), b + t_bc[:, None] * (c - b)),
    ]
    done = np.zeros(len(x), dtype=bool)
    for mask, value in cases:
        m = mask & ~done
        out[m] = value[m]
        done |= m
    return out


@dataclass
class TriangulatedSurface(Constraint):
    """The original boundary triangles of a patch: the closest point on any of them.

    The candidates of each query are the ``candidates`` triangles whose centroids are
    nearest to it (a k-d tree), which finds the closest triangle whenever the patch's
    triangles are of comparable size near the query.
    """

    points: np.ndarray
    faces: np.ndarray
    candidates: int = 16
    _tree: cKDTree = field(default=None, repr=False)

    def __post_init__(self):
        self._tree = cKDTree(self.points[self.faces].mean(axis=1))

    def project(self, x):
        if len(x) == 0:
            return x.copy()
        k = min(self.candidates, len(self.faces))
        _, cand = self._tree.query(x, k=k)
        cand = np.asarray(cand).reshape(len(x), k)
        xr = np.repeat(x, k, axis=0)
        f = self.faces[cand.ravel()]
        y = closest_on_triangles(xr, self.points[f[:, 0]], self.points[f[:, 1]], self.points[f[:, 2]])
        d = np.linalg.norm(y - xr, axis=1).reshape(len(x), k)
        best = d.argmin(axis=1)
        return y.reshape(len(x), k, 3)[np.arange(len(x)), best]


# ---------------------------------------------------------------------------- curves
@dataclass
class Line(Constraint):
    """The segment from ``p0`` to ``p1``: vertices slide on it, never past its ends."""

    p0: np.ndarray
    p1: np.ndarray

    def project(self, x):
        d = self.p1 - self.p0
        s = np.clip((x - self.p0) @ d / float(d @ d), 0.0, 1.0)
        return self.p0 + s[:, None] * d[None, :]


@dataclass
class Circle(Constraint):
    """The circle of radius ``r`` about ``centre`` in the plane of unit normal ``normal``."""

    centre: np.ndarray
    normal: np.ndarray
    radius: float

    def project(self, x):
        d = x - self.centre
        d = d - (d @ self.normal)[:, None] * self.normal[None, :]
        return self.centre + self.radius * _unit(d)


@dataclass
class Polyline(Constraint):
    """A chain of straight segments ``points[k] -> points[k + 1]``."""

    points: np.ndarray

    def project(self, x):
        if len(x) == 0:
            return x.copy()
        a, b = self.points[:-1], self.points[1:]
        d = b - a
        dd = np.maximum((d * d).sum(1), 1e-300)
        best = np.empty_like(x)
        for lo in range(0, len(x), 2048):
            xs = x[lo:lo + 2048]
            t = np.clip(np.einsum("nkd,kd->nk", xs[:, None, :] - a[None], d) / dd[None], 0.0, 1.0)
            y = a[None] + t[..., None] * d[None]
            k = np.linalg.norm(y - xs[:, None, :], axis=2).argmin(axis=1)
            best[lo:lo + 2048] = y[np.arange(len(xs)), k]
        return best


# ---------------------------------------------------------------------------- fits
def _fit_plane(p: np.ndarray, size: float) -> Plane | None:
    c = p.mean(axis=0)
    _, _, vt = np.linalg.svd(p - c)
    n = vt[-1]
    if np.max(np.abs((p - c) @ n)) <= FLAT_TOL * size:
        return Plane(point=c, normal=n)
    return None


def _fit_sphere(p: np.ndarray) -> Sphere | None:
    if len(p) < 5:
        return None
    A = np.column_stack([2 * p, np.ones(len(p))])
    sol, *_ = np.linalg.lstsq(A, (p * p).sum(1), rcond=None)
    c = sol[:3]
    r2 = sol[3] + c @ c
    if r2 <= 0:
        return None
    r = float(np.sqrt(r2))
    if np.max(np.abs(np.linalg.norm(p - c, axis=1) - r)) <= FIT_TOL * r:
        return Sphere(centre=c, radius=r)
    return None


def _fit_circle_2d(q: np.ndarray) -> tuple[np.ndarray, float] | None:
    A = np.column_stack([2 * q, np.ones(len(q))])
    sol, *_ = np.linalg.lstsq(A, (q * q).sum(1), rcond=None)
    c = sol[:2]
    r2 = sol[2] + c @ c
    if r2 <= 0:
        return None
    return c, float(np.sqrt(r2))


def _fit_cylinder(p: np.ndarray, normals: np.ndarray) -> Cylinder | None:
    """Cylinder through ``p``: the axis first from the face normals (nearly orthogonal to
    it), then a least-squares refinement of axis, centre line and radius."""
    if len(p) < 6:
        return None
    _, _, vt = np.linalg.svd(normals)
    u0 = vt[-1]
    e1 = _unit(np.cross(u0, [1.0, 0.0, 0.0] if abs(u0[0]) < 0.9 else [0.0, 1.0, 0.0]))
    e2 = np.cross(u0, e1)
    circ = _fit_circle_2d(np.column_stack([p @ e1, p @ e2]))
    if circ is None:
        return None
    (c1, c2), r0 = circ
    p0 = c1 * e1 + c2 * e2

    def unpack(z):
        u = _unit(u0 + z[0] * e1 + z[1] * e2)
        a1 = _unit(e1 - (e1 @ u) * u)
        a2 = np.cross(u, a1)
        return u, p0 + z[2] * a1 + z[3] * a2, z[4]

    def residual(z):
        u, q, r = unpack(z)
        d = p - q
        return np.linalg.norm(d - (d @ u)[:, None] * u[None, :], axis=1) - r

    sol = least_squares(residual, np.array([0.0, 0.0, 0.0, 0.0, r0]), xtol=1e-15, ftol=1e-15, gtol=1e-15)
    u, q, r = unpack(sol.x)
    if r > 0 and np.max(np.abs(residual(sol.x))) <= FIT_TOL * r:
        return Cylinder(point=q, axis=u, radius=float(r))
    return None


def fit_surface(points: np.ndarray, faces: np.ndarray, normals: np.ndarray) -> Constraint:
    """The constraint of one boundary patch (see the module docstring for the order)."""
    verts = np.unique(faces)
    p = points[verts]
    size = float(max(np.ptp(p, axis=0).max(), 1e-300))
    for fit in (lambda: _fit_plane(p, size), lambda: _fit_sphere(p), lambda: _fit_cylinder(p, normals)):
        s = fit()
        if s is not None:
            return s
    return TriangulatedSurface(points=points.copy(), faces=faces)


def fit_curve(p: np.ndarray, closed: bool) -> Constraint:
    """The constraint of one feature edge through the points ``p`` (in order)."""
    size = float(max(np.ptp(p, axis=0).max(), 1e-300))
    if not closed:
        d = _unit(p[-1] - p[0])
        off = (p - p[0]) - ((p - p[0]) @ d)[:, None] * d[None, :]
        if np.max(np.linalg.norm(off, axis=1)) <= FLAT_TOL * size:
            return Line(p0=p[0].copy(), p1=p[-1].copy())
    if len(p) >= 4:
        plane = _fit_plane(p, size)
        if plane is not None:
            e1 = _unit(np.cross(plane.normal, [1.0, 0.0, 0.0] if abs(plane.normal[0]) < 0.9 else [0.0, 1.0, 0.0]))
            e2 = np.cross(plane.normal, e1)
            circ = _fit_circle_2d(np.column_stack([(p - plane.point) @ e1, (p - plane.point) @ e2]))
            if circ is not None:
                (c1, c2), r = circ
                c = plane.point + c1 * e1 + c2 * e2
                if np.max(np.abs(np.linalg.norm(p - c, axis=1) - r)) <= FIT_TOL * r:
                    return Circle(centre=c, normal=plane.normal, radius=r)
    return Polyline(points=np.vstack([p, p[:1]]) if closed else p.copy())


# ---------------------------------------------------------------------------- the model
@dataclass
class SurfaceBoundaryModel:
    """Classification of the vertices of a tetrahedral mesh and their constraints.

    Attributes
    ----------
    kind : (N,) int8
        ``INTERIOR``, ``CORNER``, ``FACE`` or ``EDGE``.
    constraint : (N,) int64
        Index into ``constraints`` of the surface or curve of a ``FACE`` or ``EDGE``
        vertex, else -1.
    constraints : list of Constraint
        The patches' surfaces (first ``num_patches`` entries), then the feature edges' curves.
    patch_of_face : (B,) int64
        Patch of each boundary face.
    num_patches : int
    chains : list of (vertex index array, closed flag)
        The feature edges, in order along each; chain ``k`` lies on
        ``constraints[num_patches + k]``.
    corner_positions : (C, 3)
        Where the corners are (they never move).
    """

    kind: np.ndarray
    constraint: np.ndarray
    constraints: list
    patch_of_face: np.ndarray
    num_patches: int
    chains: list
    corner_positions: np.ndarray

    @property
    def corners(self) -> np.ndarray:
        return np.flatnonzero(self.kind == CORNER)

    def constraint_types(self) -> dict[str, int]:
        """How many surfaces and curves of each type the boundary has."""
        out: dict[str, int] = {}
        for c in self.constraints:
            out[type(c).__name__] = out.get(type(c).__name__, 0) + 1
        return out

    def _apply(self, x0: np.ndarray, x: np.ndarray) -> np.ndarray:
        for ci, con in enumerate(self.constraints):
            idx = np.flatnonzero(self.constraint == ci)
            if idx.size:
                x[idx] = con.project(x[idx])
        corners = self.kind == CORNER
        x[corners] = x0[corners]
        return x

    def project(self, x0: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, None]:
        """Put the boundary vertices of the proposed coordinates ``x`` back on their
        surfaces and curves; corners get ``x0``, and so does every vertex whose proposed
        position is ``x0`` (bit for bit: a mesh that is not moved is not changed by the
        rounding of the fitted surfaces). Returns ``(x, None)`` (no parameters: see
        :meth:`blend`)."""
        x = np.array(x, dtype=float, copy=True)
        still = (x == x0).all(axis=1)
        x = self._apply(x0, x)
        x[still] = x0[still]
        return x, None

    def blend(self, x0: np.ndarray, x1: np.ndarray, s1, alpha: np.ndarray) -> np.ndarray:
        r""":math:`P(x_0 + \alpha (x_1 - x_0))` for constrained vertices; exactly ``x0``
        where :math:`\alpha = 0` or :math:`x_1 = x_0`."""
        a = np.asarray(alpha, dtype=float)
        x = self._apply(x0, x0 + a[:, None] * (x1 - x0))
        still = (a == 0.0) | (x1 == x0).all(axis=1)
        x[still] = x0[still]
        return x

    def rebased(self, x: np.ndarray) -> "SurfaceBoundaryModel":
        """The same model for the same mesh at positions ``x`` (the constraints are those
        of the original mesh, so repeated moves never drift)."""
        return self

    def deviation(self, x: np.ndarray) -> float:
        """Largest distance of a boundary vertex of ``x`` from its surface, curve or corner."""
        dev = 0.0
        corners = self.kind == CORNER
        if corners.any():
            dev = float(np.max(np.linalg.norm(x[corners] - self.corner_positions, axis=1)))
        for ci, con in enumerate(self.constraints):
            idx = np.flatnonzero(self.constraint == ci)
            if idx.size:
                dev = max(dev, float(np.max(con.distance(x[idx]))))
        return dev


def face_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals of triangles ``faces`` (right-hand rule)."""
    p = points[faces]
    return _unit(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]))


def classify_surface(points: np.ndarray, faces: np.ndarray, tags: np.ndarray,
                     feature_angle: float = 30.0, corner_angle: float = 30.0) -> SurfaceBoundaryModel:
    """Patches, feature edges and corners of the boundary ``faces`` (see the module doc).

    Parameters
    ----------
    points : (N, 3) coordinates of the whole mesh.
    faces : (B, 3) boundary faces, oriented outwards.
    tags : (B,) physical tag of each face (-1 where none); a change of tag is a feature edge.
    feature_angle : float
        Two neighbouring faces whose normals differ by more (degrees) are in different patches.
    corner_angle : float
        A feature edge that turns by more (degrees) at a vertex makes it a corner.
    """
    n = len(points)
    nb = len(faces)
    normals = face_normals(points, faces)
    # boundary edges and the faces on them
    he = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    he_face = np.tile(np.arange(nb), 3)
    key = np.minimum(he[:, 0], he[:, 1]) * n + np.maximum(he[:, 0], he[:, 1])
    order = np.argsort(key, kind="stable")
    key_s, face_s = key[order], he_face[order]
    ukey, start, count = np.unique(key_s, return_index=True, return_counts=True)
    nonmanifold = ukey[count != 2]
    pairs = start[count == 2]
    fa, fb = face_s[pairs], face_s[pairs + 1]
    cos = np.clip((normals[fa] * normals[fb]).sum(1), -1.0, 1.0)
    smooth = (np.degrees(np.arccos(cos)) < feature_angle) & (tags[fa] == tags[fb])
    # patches: connected components of faces joined across smooth edges
    parent = np.arange(nb)

    def find(i):
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for a, b in zip(fa[smooth].tolist(), fb[smooth].tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(nb)])
    _, patch_of_face = np.unique(roots, return_inverse=True)
    patch_of_face = patch_of_face.ravel()
    num_patches = int(patch_of_face.max()) + 1 if nb else 0

    # which patches each vertex touches
    vp = np.unique(np.column_stack([faces.ravel(), np.repeat(patch_of_face, 3)]), axis=0)
    npatch = np.bincount(vp[:, 0], minlength=n)
    first_patch = np.full(n, -1, dtype=np.int64)
    first_patch[vp[::-1, 0]] = vp[::-1, 1]
    kind = np.full(n, INTERIOR, dtype=np.int8)
    kind[npatch == 1] = FACE
    kind[npatch == 2] = EDGE
    kind[npatch >= 3] = CORNER
    bad = np.unique(np.concatenate([nonmanifold // n, nonmanifold % n])) if len(nonmanifold) else []
    kind[bad] = CORNER

    constraints: list = []
    constraint = np.full(n, -1, dtype=np.int64)
    for p in range(num_patches):
        fp = faces[patch_of_face == p]
        constraints.append(fit_surface(points, fp, normals[patch_of_face == p]))
    face_v = np.flatnonzero(kind == FACE)
    constraint[face_v] = first_patch[face_v]

    # feature edges: boundary edges between two patches, walked into chains
    feat = ~smooth & (patch_of_face[fa] != patch_of_face[fb])
    fe = np.column_stack([ukey[count == 2][feat] // n, ukey[count == 2][feat] % n])
    adj: dict[int, list[int]] = {}
    for i, j in fe.tolist():
        adj.setdefault(i, []).append(j)
        adj.setdefault(j, []).append(i)
    turning = np.zeros(n, dtype=bool)
    for v in np.flatnonzero(kind == EDGE).tolist():
        nbrs = adj.get(v, [])
        if len(nbrs) != 2:
            kind[v] = CORNER
            continue
        d1 = _unit(points[v] - points[nbrs[0]])
        d2 = _unit(points[nbrs[1]] - points[v])
        turning[v] = np.degrees(np.arccos(np.clip(d1 @ d2, -1.0, 1.0))) > corner_angle
    chains: list = []
    seen: set[tuple[int, int]] = set()

    def walk(a: int, b: int) -> list[int]:
        path = [a, b]
        while kind[path[-1]] == EDGE:
            nxt = [w for w in adj[path[-1]] if w != path[-2]]
            if not nxt or nxt[0] == path[0]:
                if nxt:
                    path.append(nxt[0])
                break
            path.append(nxt[0])
        return path

    def add_chain(verts: np.ndarray, closed: bool, con: Constraint) -> None:
        chains.append((verts, closed))
        inner = verts if closed else verts[1:-1]
        constraint[inner[kind[inner] == EDGE]] = len(constraints)
        constraints.append(con)

    # a feature edge between corners is first fitted whole (a circle's polygon turns at
    # every vertex); only one that is neither a line nor a circle is split where it turns
    starts = [v for v in adj if kind[v] == CORNER] + [v for v in adj if kind[v] == EDGE]
    for a in starts:
        for b in adj[a]:
            if (min(a, b), max(a, b)) in seen:
                continue
            path = walk(a, b)
            seen.update((min(x, y), max(x, y)) for x, y in zip(path[:-1], path[1:]))
            closed = bool(kind[path[0]] == EDGE and path[-1] == path[0])
            verts = np.array(path[:-1] if closed else path, dtype=np.int64)
            con = fit_curve(points[verts], closed)
            inner_turns = np.flatnonzero(turning[verts] if closed else np.r_[False, turning[verts[1:-1]], False])
            if isinstance(con, (Line, Circle)) or inner_turns.size == 0:
                add_chain(verts, closed, con)
                continue
            kind[verts[inner_turns]] = CORNER
            if closed:
                verts = np.r_[np.roll(verts, -inner_turns[0]), verts[inner_turns[0]]]
                inner_turns = np.flatnonzero(turning[verts[:-1]])
                inner_turns = np.r_[inner_turns[1:], len(verts) - 1]
                cuts = np.r_[0, inner_turns]
            else:
                cuts = np.r_[0, inner_turns, len(verts) - 1]
            for lo, hi in zip(cuts[:-1], cuts[1:]):
                piece = verts[lo:hi + 1]
                add_chain(piece, False, fit_curve(points[piece], False))
    return SurfaceBoundaryModel(kind=kind, constraint=constraint, constraints=constraints,
                                patch_of_face=patch_of_face, num_patches=num_patches, chains=chains,
                                corner_positions=points[kind == CORNER].copy())
