r"""Straight paths between two meshes of one triangulation: where they stay untangled.

A vertex moving on a straight line, :math:`x_i(s) = x_i^0 + s\,(x_i^1 - x_i^0)` for
:math:`s \in [0, 1]`, gives each triangle the signed area

.. math:: 2A(s) = (e_1^0 + s\,d_1) \times (e_2^0 + s\,d_2)
          = a_0 + a_1 s + a_2 s^2,

with :math:`e_k^0` its edge vectors from vertex 0 on the start mesh and :math:`d_k` their
changes, :math:`a_0 = e_1^0 \times e_2^0`, :math:`a_1 = e_1^0 \times d_2 + d_1 \times e_2^0`,
:math:`a_2 = d_1 \times d_2`. Two untangled end meshes do not make an untangled path: a
quadratic positive at both ends can dip below zero in between. :func:`safe_fraction` finds,
from these exact quadratics, the first :math:`s` at which any triangle's area reaches zero,
so that a continuous (ALE) motion can be refused or shortened before any mesh on it is
handed to a solver.

A tetrahedron's signed volume on the path is a cubic,

.. math:: 6V(s) = \det(E^0 + s\,D) = a_0 + a_1 s + a_2 s^2 + a_3 s^3,

with :math:`E^0` the matrix of its edge vectors from vertex 0 and :math:`D` their changes:
:math:`a_0 = \det E^0`, :math:`a_3 = \det D`, and :math:`a_1` (:math:`a_2`) the sum of the
three determinants with one column (two columns) of :math:`E^0` replaced by those of
:math:`D`. Its first root in :math:`(0, 1]` is found on the intervals between the roots of
its derivative, where it is monotone, by bisection to round-off.
"""

from __future__ import annotations

import numpy as np


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]


def _det3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    r"""Row-wise :math:`a \cdot (b \times c)`."""
    return (a[:, 0] * (b[:, 1] * c[:, 2] - b[:, 2] * c[:, 1]) - a[:, 1] * (b[:, 0] * c[:, 2] - b[:, 2] * c[:, 0])
            + a[:, 2] * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]))


def area_polynomials(x0: np.ndarray, x1: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    r"""Coefficients of the signed measure on the straight path, per cell: ``(a0, a1, a2)`` of
    :math:`2A(s)` for triangles, shape ``(n, 3)``; ``(a0, a1, a2, a3)`` of :math:`6V(s)` for
    tetrahedra ``(n, 4)``, shape ``(n, 4)``."""
    x0, x1, t = np.asarray(x0, float), np.asarray(x1, float), np.asarray(triangles)
    if t.ndim == 2 and t.shape[1] == 4:
        d = x1 - x0
        e = [x0[t[:, k]] - x0[t[:, 0]] for k in (1, 2, 3)]
        f = [d[t[:, k]] - d[t[:, 0]] for k in (1, 2, 3)]
        return np.stack([_det3(*e),
                         _det3(f[0], e[1], e[2]) + _det3(e[0], f[1], e[2]) + _det3(e[0], e[1], f[2]),
                         _det3(e[0], f[1], f[2]) + _det3(f[0], e[1], f[2]) + _det3(f[0], f[1], e[2]),
                         _det3(*f)], axis=1)
    d = x1 - x0
    e1, e2 = x0[t[:, 1]] - x0[t[:, 0]], x0[t[:, 2]] - x0[t[:, 0]]
    d1, d2 = d[t[:, 1]] - d[t[:, 0]], d[t[:, 2]] - d[t[:, 0]]
    return np.stack([_cross(e1, e2), _cross(e1, d2) + _cross(d1, e2), _cross(d1, d2)], axis=1)


def safe_fraction(x0: np.ndarray, x1: np.ndarray, triangles: np.ndarray,
                  reference_sign: np.ndarray | None = None, min_ratio: float = 1e-8) -> float:
    r"""The first :math:`s \in (0, 1]` where a triangle's signed area on the straight path
    from ``x0`` to ``x1`` falls to ``min_ratio`` times its area at ``x0`` (oriented by
    ``reference_sign``, default: the orientation at ``x0``); 1.0 when no triangle does.

    The roots of :math:`a_0(1 - r) + a_1 s + a_2 s^2` are found in closed form (the stable
    form of the quadratic formula). A small positive ``min_ratio`` also catches a path on
    which an area only touches zero (a double root that round-off could hide), such as a
    rotation by :math:`\pi`. Returns 0.0 if ``x0`` itself is tangled.
    """
    a = area_polynomials(x0, x1, triangles)
    sign = np.sign(a[:, 0]) if reference_sign is None else np.asarray(reference_sign, float)
    a = a * sign[:, None]                                   # positive at s = 0 for an untangled start
    if np.any(a[:, 0] <= 0):
        return 0.0
    if a.shape[1] == 4:
        return _first_cubic_root(a[:, 0] * (1.0 - min_ratio), a[:, 1], a[:, 2], a[:, 3])
    c0, c1, c2 = a[:, 0] * (1.0 - min_ratio), a[:, 1], a[:, 2]
    first = np.full(len(c0), np.inf)
    lin = (c2 == 0) & (c1 < 0)                              # linear: one root -c0/c1
    first[lin] = -c0[lin] / c1[lin]
    disc = c1 ** 2 - 4 * c2 * c0
    real = (c2 != 0) & (disc >= 0)
    sq = np.sqrt(np.where(real, disc, 0.0))
    q = -0.5 * (c1 + np.where(c1 >= 0, sq, -sq))            # no cancellation
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = np.stack([np.where(real, q / c2, np.inf), np.where(real & (q != 0), c0 / q, np.inf)], axis=1)
    roots[(roots <= 0) | ~np.isfinite(roots)] = np.inf
    first[real] = roots[real].min(axis=1)
    s = float(first.min()) if len(first) else np.inf
    return 1.0 if s > 1.0 else s


def _first_cubic_root(c0: np.ndarray, c1: np.ndarray, c2: np.ndarray, c3: np.ndarray,
                      iterations: int = 60) -> float:
    """The smallest root in :math:`(0, 1]` over the cubics :math:`c_0 + c_1 s + c_2 s^2 + c_3 s^3`
    (each with :math:`c_0 > 0`); 1.0 if none has one."""
    # the roots of the derivative c1 + 2 c2 s + 3 c3 s^2 split [0, 1] into monotone pieces
    qa, qb, qc = 3.0 * c3, 2.0 * c2, c1
    disc = qb ** 2 - 4 * qa * qc
    real = disc >= 0
    sq = np.sqrt(np.where(real, disc, 0.0))
    q = -0.5 * (qb + np.where(qb >= 0, sq, -sq))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(real & (qa != 0), q / qa, np.nan)
        r2 = np.where(real & (q != 0), qc / q, np.nan)
    r1 = np.where(np.isnan(r1) & (qa == 0) & (qb != 0), -qc / np.where(qb != 0, qb, 1.0), r1)
    breaks = np.stack([r1, r2], axis=1)
    breaks[~((breaks > 0) & (breaks < 1))] = 1.0            # (nan compares false: no break)
    breaks = np.sort(breaks, axis=1)
    knots = np.concatenate([np.zeros((len(c0), 1)), breaks, np.ones((len(c0), 1))], axis=1)

    c = [k[:, None] for k in (c0, c1, c2, c3)]
    values = c[0] + knots * (c[1] + knots * (c[2] + knots * c[3]))     # values[:, 0] = c0 > 0
    below = values[:, 1:] <= 0
    has = below.any(axis=1)
    if not has.any():
        return 1.0
    k = np.argmax(below, axis=1)[has]                       # the first piece that ends at or below 0
    lo, hi = knots[has, k], knots[has, k + 1]
    c0, c1, c2, c3 = c0[has], c1[has], c2[has], c3[has]
    for _ in range(iterations):                             # p(lo) > 0 >= p(hi), p monotone between
        mid = 0.5 * (lo + hi)
        pos = c0 + mid * (c1 + mid * (c2 + mid * c3)) > 0
        lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
    return float(min(hi.min(), 1.0))


def mesh_courant(x0: np.ndarray, x1: np.ndarray, triangles: np.ndarray) -> float:
    r"""The largest displacement from ``x0`` to ``x1`` of any triangle's vertex, in units of
    that triangle's smallest altitude on ``x0`` (:math:`2|A|/\ell_{\max}`; for a tetrahedron
    :math:`3|V|/F_{\max}`, its largest face area :math:`F_{\max}`).

    Divided by the number of steps over which the mesh makes the displacement, it is the
    mesh's Courant number :math:`\max |w|\,\Delta t / h`: the fraction of an element a vertex
    crosses in one step, which an explicit scheme with the relative velocity
    :math:`a - w` must keep within its stability limit.
    """
    x0, x1, t = np.asarray(x0, float), np.asarray(x1, float), np.asarray(triangles)
    p = x0[t]                                                   # (n, 3, 2) or (n, 4, 3)
    a = area_polynomials(x0, x1, t)[:, 0]                       # 2|A| or 6|V|
    if t.shape[1] == 4:
        from um2n.tetmesh import TET_FACES

        f = p[:, TET_FACES]                                     # (n, 4, 3, 3)
        faces = np.linalg.norm(np.cross(f[:, :, 1] - f[:, :, 0], f[:, :, 2] - f[:, :, 0]), axis=2)   # 2F
        altitude = np.abs(a) / faces.max(axis=1)                # 6|V| / 2F = 3|V| / F
    else:
        edges = np.linalg.norm(p[:, [1, 2, 0]] - p, axis=2)
        altitude = np.abs(a) / edges.max(axis=1)
    d = np.linalg.norm(x1 - x0, axis=1)[t].max(axis=1)
    return float((d / altitude).max()) if len(t) else 0.0
