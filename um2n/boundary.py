r"""Boundary geometry of a 2D mesh: corners, straight segments and curves.

The boundary of a triangle mesh is the set of edges that belong to one triangle. It is
split into *chains* at *corners*; a vertex of the boundary is a corner when

* it does not have exactly two boundary edges (a non-manifold point),
* its two boundary edges carry different physical tags, or
* the boundary turns there by more than ``corner_angle`` degrees.

Each chain (from corner to corner, or a closed loop with no corner) is then recognised as

* a :class:`LineSegment` when all its vertices are collinear (relative tolerance
  ``1e-9`` of the chain's length): vertices slide along the segment;
* a :class:`CircleArc` when at least four of its vertices lie on one circle (least-squares
  fit, relative residual below ``1e-7``): vertices slide along the exact circle, so a mesh
  of a disc, an annulus or a cylinder keeps its curved boundary exactly (a regular polygon
  whose turning angles are all below ``corner_angle`` is taken for its circle: lower
  ``corner_angle`` to keep its corners);
* a :class:`Polyline` otherwise: vertices slide along the original piecewise-linear
  boundary. This keeps the discrete domain exactly; a smooth curve that the original
  vertices only sample (a spline coastline, say) is represented to the accuracy of the
  input mesh, which is the best that the mesh alone tells.

Every sliding vertex owns a parameter :math:`s` on its curve (a line parameter, an
unwrapped angle or an arc length). Moves are done in parameter space, so that blending an
old and a new boundary position, :math:`s_0 + \alpha (s_1 - s_0)`, stays on the curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INTERIOR, CORNER, SLIDING = 0, 1, 2


class Curve:
    """A boundary curve parametrised by :math:`s \\in [s_{lo}, s_{hi}]` (or periodic)."""

    closed: bool = False
    period: float = np.inf

    def evaluate(self, s: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def project(self, pts: np.ndarray, s_ref: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Parameters of the points of the curve nearest to ``pts`` (near ``s_ref``)."""
        raise NotImplementedError

    def project_global(self, pts: np.ndarray, s_ref: np.ndarray) -> np.ndarray:
        """Like :meth:`project`, searching the whole curve (not just near ``s_ref``)."""
        return self.project(pts, s_ref)

    def distance(self, pts: np.ndarray, s_ref: np.ndarray) -> np.ndarray:
        """Distance of ``pts`` from the curve."""
        return np.linalg.norm(pts - self.evaluate(self.project_global(pts, s_ref)), axis=1)


@dataclass
class LineSegment(Curve):
    """Straight segment :math:`x(s) = p_0 + s (p_1 - p_0)`, :math:`s \\in [0, 1]`."""

    p0: np.ndarray
    p1: np.ndarray
    s_lo: float = 0.0
    s_hi: float = 1.0

    def evaluate(self, s):
        s = np.asarray(s, dtype=float)
        return self.p0[None, :] + s[:, None] * (self.p1 - self.p0)[None, :]

    def project(self, pts, s_ref=None):
        d = self.p1 - self.p0
        s = (np.asarray(pts) - self.p0) @ d / float(d @ d)
        return np.clip(s, self.s_lo, self.s_hi)


@dataclass
class CircleArc(Curve):
    """Circle arc :math:`x(s) = c + r (\\cos s, \\sin s)`, ``s`` an unwrapped angle."""

    center: np.ndarray
    radius: float
    s_lo: float
    s_hi: float
    closed: bool = False

    def __post_init__(self):
        self.period = 2 * np.pi if self.closed else np.inf

    def evaluate(self, s):
        s = np.asarray(s, dtype=float)
        return self.center[None, :] + self.radius * np.column_stack([np.cos(s), np.sin(s)])

    def project(self, pts, s_ref):
        v = np.asarray(pts) - self.center[None, :]
        ang = np.arctan2(v[:, 1], v[:, 0])
        s = s_ref + _wrap(ang - s_ref)
        return s if self.closed else np.clip(s, self.s_lo, self.s_hi)


@dataclass
class Polyline(Curve):
    """Piecewise-linear curve through ``nodes``, parametrised by arc length."""

    nodes: np.ndarray
    closed: bool = False
    cum: np.ndarray = field(init=False)

    def __post_init__(self):
        nodes = self.nodes
        if self.closed:
            nodes = np.vstack([nodes, nodes[:1]])
        self._pts = nodes
        seg = np.linalg.norm(np.diff(nodes, axis=0), axis=1)
        self.cum = np.concatenate([[0.0], np.cumsum(seg)])
        self.s_lo, self.s_hi = 0.0, float(self.cum[-1])
        self.period = self.s_hi if self.closed else np.inf

    def project_global(self, pts, s_ref):
        return self.project(pts, s_ref, window=None)

    def _segment_of(self, s):
        n = len(self.cum) - 1
        if self.closed:
            s = np.mod(s, self.period)
        k = np.clip(np.searchsorted(self.cum, s, side="right") - 1, 0, n - 1)
        return k, s

    def evaluate(self, s):
        s = np.asarray(s, dtype=float)
        k, sl = self._segment_of(s)
        length = self.cum[k + 1] - self.cum[k]
        t = np.clip((sl - self.cum[k]) / np.where(length > 0, length, 1.0), 0.0, 1.0)
        return self._pts[k] + t[:, None] * (self._pts[k + 1] - self._pts[k])

    def project(self, pts, s_ref, window: int | None = 12):
        """Nearest point among the ``2 window + 1`` segments around each ``s_ref``
        (``window=None``: among all segments)."""
        pts = np.asarray(pts)
        s_ref = np.asarray(s_ref, dtype=float)
        nseg = len(self.cum) - 1
        if window is None or 2 * window + 1 >= nseg:
            step = max(1, (1 << 21) // max(nseg, 1))      # bound the (points x segments) work
            if len(pts) > step:
                return np.concatenate([self.project(pts[i:i + step], s_ref[i:i + step], None)
                                       for i in range(0, len(pts), step)])
            ks = np.broadcast_to(np.arange(nseg), (len(pts), nseg))
        else:
            k0, _ = self._segment_of(s_ref)
            ks = k0[:, None] + np.arange(-window, window + 1)[None, :]
            ks = np.mod(ks, nseg) if self.closed else np.clip(ks, 0, nseg - 1)
        a, b = self._pts[ks], self._pts[ks + 1]            # (n, w, 2)
        ab = b - a
        denom = np.maximum((ab * ab).sum(-1), 1e-300)
        t = np.clip(((pts[:, None, :] - a) * ab).sum(-1) / denom, 0.0, 1.0)
        proj = a + t[..., None] * ab
        d2 = ((proj - pts[:, None, :]) ** 2).sum(-1)
        j = np.argmin(d2, axis=1)
        rows = np.arange(len(pts))
        kk = ks[rows, j]
        s = self.cum[kk] + t[rows, j] * (self.cum[kk + 1] - self.cum[kk])
        if self.closed:
            s = s_ref + _wrap_period(s - s_ref, self.period)
        return s


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def _wrap_period(a, p):
    return (a + 0.5 * p) % p - 0.5 * p


@dataclass
class BoundaryModel:
    """Classification of the vertices of a mesh and the boundary curves they slide on.

    Attributes
    ----------
    kind : (N,) int8
        ``INTERIOR`` (0), ``CORNER`` (1, fixed) or ``SLIDING`` (2).
    curve : (N,) int64
        Index into ``curves`` of the curve a sliding vertex lives on, else -1.
    param : (N,) float64
        Parameter of a sliding vertex on its curve (NaN elsewhere).
    curves : list of Curve
    chains : list of (vertex index array, closed flag)
        The boundary chains, in order along the boundary; chain ``k`` lies on ``curves[k]``.
    chain_ends : list of (float, float)
        Parameters of the two end corners of each open chain.
    min_gap : float
        On projection, a sliding vertex keeps at least this fraction of its gaps (in
        parameter) to its chain neighbours: boundary vertices never pass each other.
    """

    kind: np.ndarray
    curve: np.ndarray
    param: np.ndarray
    curves: list
    chains: list
    chain_ends: list = field(default_factory=list)
    min_gap: float = 0.1

    @property
    def corners(self) -> np.ndarray:
        return np.flatnonzero(self.kind == CORNER)

    @property
    def sliding(self) -> np.ndarray:
        return np.flatnonzero(self.kind == SLIDING)

    def curve_types(self) -> dict[str, int]:
        """How many curves of each type the boundary has."""
        out: dict[str, int] = {}
        for c in self.curves:
            out[type(c).__name__] = out.get(type(c).__name__, 0) + 1
        return out

    def project(self, x0: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Put boundary vertices of the proposed coordinates ``x`` back on the boundary.

        Corners get their original position ``x0``; sliding vertices the nearest point
        of their own curve. Returns the corrected coordinates and the new parameters.
        """
        x = np.array(x, dtype=float, copy=True)
        s = self.param.copy()
        corners = self.kind == CORNER
        x[corners] = x0[corners]
        for ci, curve in enumerate(self.curves):
            idx = np.flatnonzero(self.curve == ci)
            if idx.size == 0:
                continue
            s[idx] = curve.project(x[idx], self.param[idx])
            verts, closed = self.chains[ci]
            if not closed:
                s[verts[1:-1]] = self._keep_order(ci, s[verts[1:-1]])
            x[idx] = curve.evaluate(s[idx])
        return x, s

    def _keep_order(self, ci: int, s_new: np.ndarray) -> np.ndarray:
        """Parameters of the inner vertices of open chain ``ci``, made strictly monotone.

        Along a chain from corner to corner, vertex ``i`` keeps a gap of at least
        ``min_gap`` times its current gap to each neighbour: no vertex passes another or
        reaches a corner (a minimal change: a forward running maximum, then a backward
        running minimum, on the parameters shifted by the cumulated gaps).
        """
        verts, _ = self.chains[ci]
        lo, hi = self.chain_ends[ci]
        s0 = np.r_[lo, self.param[verts[1:-1]], hi]
        sign = 1.0 if hi >= lo else -1.0
        u0 = sign * s0
        u = sign * np.r_[lo, s_new, hi]
        offset = np.r_[0.0, np.cumsum(self.min_gap * np.diff(u0))]
        v = np.maximum.accumulate(u - offset)
        u = v + offset
        u[-1] = sign * hi
        tail = offset[-1] - offset                     # gaps still needed up to the end
        u = np.minimum.accumulate((u + tail)[::-1])[::-1] - tail
        return sign * u[1:-1]

    def rebased(self, x: np.ndarray) -> "BoundaryModel":
        """The same curves, with the parameters of the boundary vertices at positions ``x``.

        ``x`` must have its boundary vertices on their curves (a mesh this model moved);
        the curves themselves are kept, so repeated moves never drift from the original
        boundary.
        """
        param = self.param.copy()
        for ci, curve in enumerate(self.curves):
            idx = np.flatnonzero(self.curve == ci)
            if idx.size:
                param[idx] = curve.project_global(x[idx], self.param[idx])
        bm = BoundaryModel(kind=self.kind, curve=self.curve, param=param, curves=self.curves, chains=self.chains,
                           chain_ends=self.chain_ends, min_gap=self.min_gap)
        bm._corner_pos = self._corner_pos
        return bm

    def blend(self, x0: np.ndarray, x1: np.ndarray, s1: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Positions :math:`x_0 + \\alpha (x_1 - x_0)`, taken along the curve for sliding vertices."""
        a = np.asarray(alpha, dtype=float)
        x = x0 + a[:, None] * (x1 - x0)
        for ci, curve in enumerate(self.curves):
            idx = np.flatnonzero(self.curve == ci)
            if idx.size:
                s0 = self.param[idx]
                x[idx] = curve.evaluate(s0 + a[idx] * (s1[idx] - s0))
        corners = self.kind == CORNER
        x[corners] = x0[corners]
        still = a == 0.0
        x[still] = x0[still]          # exactly the start, whatever the curve's rounding
        return x

    def deviation(self, x: np.ndarray) -> float:
        """Largest distance of a boundary vertex of ``x`` from where it must lie."""
        dev = 0.0
        corners = self.kind == CORNER
        if corners.any():
            dev = float(np.max(np.linalg.norm(x[corners] - self._corner_pos, axis=1)))
        for ci, curve in enumerate(self.curves):
            idx = np.flatnonzero(self.curve == ci)
            if idx.size:
                dev = max(dev, float(np.max(curve.distance(x[idx], self.param[idx]))))
        return dev

    _corner_pos: np.ndarray = field(default=None, repr=False)


def classify_boundary(
    points: np.ndarray,
    boundary_edges: np.ndarray,
    edge_tags: np.ndarray,
    corner_angle: float = 20.0,
) -> BoundaryModel:
    """Split the boundary into chains at corners and fit a curve to each chain.

    Parameters
    ----------
    points : (N, 2) array
    boundary_edges : (B, 2) int array
        Edges of the boundary (each in one triangle), oriented with the domain on the left.
    edge_tags : (B,) int array
        Physical tag of each boundary edge (-1 where unknown).
    corner_angle : float
        Turning angle (degrees) above which a boundary vertex is a corner.
    """
    n = len(points)
    kind = np.zeros(n, dtype=np.int8)
    curve_of = np.full(n, -1, dtype=np.int64)
    param = np.full(n, np.nan)
    # incidence: for each boundary vertex, its outgoing and incoming boundary edges
    out_edges: dict[int, list[int]] = {}
    in_edges: dict[int, list[int]] = {}
    for e, (a, b) in enumerate(boundary_edges):
        out_edges.setdefault(int(a), []).append(e)
        in_edges.setdefault(int(b), []).append(e)
    bverts = np.unique(boundary_edges)
    kind[bverts] = SLIDING
    cos_lim = np.cos(np.deg2rad(corner_angle))
    for v in bverts:
        v = int(v)
        ins, outs = in_edges.get(v, []), out_edges.get(v, [])
        if len(ins) != 1 or len(outs) != 1:
            kind[v] = CORNER
            continue
        ei, eo = ins[0], outs[0]
        if edge_tags[ei] != edge_tags[eo]:
            kind[v] = CORNER
            continue
        d1 = points[v] - points[boundary_edges[ei, 0]]
        d2 = points[boundary_edges[eo, 1]] - points[v]
        c = d1 @ d2 / (np.linalg.norm(d1) * np.linalg.norm(d2))
        if c < cos_lim:
            kind[v] = CORNER

    visited = np.zeros(len(boundary_edges), dtype=bool)
    chains: list[tuple[np.ndarray, bool]] = []

    def walk(e_start: int) -> tuple[list[int], bool]:
        verts = [int(boundary_edges[e_start, 0])]
        e = e_start
        while True:
            visited[e] = True
            b = int(boundary_edges[e, 1])
            if b == verts[0]:
                if kind[b] == CORNER:          # a loop with a single corner: open, ends where it starts
                    return verts + [b], False
                return verts, True
            verts.append(b)
            if kind[b] == CORNER:
                return verts, False
            e = out_edges[b][0]

    # chains that start at a corner, then closed loops with no corner
    for from_corner in (True, False):
        for e in range(len(boundary_edges)):
            if visited[e] or (from_corner and kind[boundary_edges[e, 0]] != CORNER):
                continue
            verts, closed = walk(e)
            chains.append((np.asarray(verts, dtype=np.int64), closed))

    curves: list[Curve] = []
    ends: list[tuple[float, float]] = []
    for verts, closed in chains:
        p = points[verts]
        curve, s = _fit_curve(p, closed)
        ends.append((float(s[0]), float(s[-1])))
        ci = len(curves)
        curves.append(curve)
        inner = verts if closed else verts[1:-1]
        s_inner = s if closed else s[1:-1]
        curve_of[inner] = ci
        param[inner] = s_inner
    bm = BoundaryModel(kind=kind, curve=curve_of, param=param, curves=curves, chains=chains, chain_ends=ends)
    bm._corner_pos = points[kind == CORNER].copy()
    return bm


def _fit_curve(p: np.ndarray, closed: bool) -> tuple[Curve, np.ndarray]:
    """Recognise a chain of points as a line segment, a circle arc or a polyline."""
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    length = float(seg.sum()) + (float(np.linalg.norm(p[-1] - p[0])) if closed else 0.0)
    d = p[-1] - p[0]
    dn = np.linalg.norm(d)
    if not closed and dn > 1e-12 * length:
        normal = np.array([-d[1], d[0]]) / dn
        if np.max(np.abs((p - p[0]) @ normal)) <= 1e-9 * length:
            line = LineSegment(p0=p[0].copy(), p1=p[-1].copy())
            s = (p - p[0]) @ d / float(d @ d)
            s[0], s[-1] = 0.0, 1.0
            return line, s
    # three points always lie on a circle: ask for at least four distinct ones
    if len(p) - (0 if closed or dn > 1e-12 * length else 1) >= 4:
        A = np.column_stack([2 * p[:, 0], 2 * p[:, 1], np.ones(len(p))])
        rhs = (p ** 2).sum(1)
        sol, *_ = np.linalg.lstsq(A, rhs, rcond=None)
        c = sol[:2]
        r2 = sol[2] + c @ c
        if r2 > 0:
            r = np.sqrt(r2)
            res = np.abs(np.linalg.norm(p - c, axis=1) - r)
            if np.max(res) <= 1e-7 * r and r < 1e6 * length:
                ang = np.unwrap(np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0]))
                arc = CircleArc(center=c, radius=float(r), s_lo=float(min(ang[0], ang[-1])),
                                s_hi=float(max(ang[0], ang[-1])), closed=closed)
                return arc, ang
    poly = Polyline(nodes=p.copy(), closed=closed)
    return poly, poly.cum[: len(p)].copy()
