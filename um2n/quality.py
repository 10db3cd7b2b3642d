r"""Mesh-quality metrics for triangle and tetrahedral meshes.

For a triangle :math:`K` with edge lengths :math:`a, b, c`, area :math:`|K|`, inradius
:math:`\rho = 2|K| / (a + b + c)` and circumradius :math:`R = abc / (4|K|)`:

* *inverted*: signed area :math:`\le 0` (orientation flipped with respect to the reference);
* *angles*: the interior angles, reported as the minimum and maximum over the mesh;
* *aspect ratio*: :math:`R / (2 \rho)`, equal to 1 for an equilateral triangle;
* *area ratio*: :math:`\max |K| / \min |K|`;
* *equidistribution*: the coefficient of variation
  :math:`\mathrm{CV} = \mathrm{std}(m_K |K|) / \mathrm{mean}(m_K |K|)` with :math:`m_K` the
  mean of the vertex monitor values; 0 for a perfectly equidistributed mesh.

For a tetrahedron with volume :math:`V`, face areas :math:`A_k`, inradius
:math:`\rho = 3V / \sum_k A_k` and circumradius :math:`R`:

* *dihedral angles*: :math:`\pi - \arccos(n_k \cdot n_l)` between the outward normals of
  each pair of faces (70.53 degrees for the regular tetrahedron);
* *aspect ratio*: :math:`R / (3 \rho)`, equal to 1 for the regular tetrahedron;
* *volume ratio*: :math:`\max |K| / \min |K|`; *inverted* and *equidistribution* as in 2D,
  with volumes in place of areas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from um2n.mesh import signed_areas, signed_measures
from um2n.tetmesh import TET_FACES, signed_volumes


@dataclass
class MeshQuality:
    """Quality figures of one mesh (see module docstring for definitions)."""

    num_vertices: int
    num_cells: int
    inverted: int
    min_angle: float
    max_angle: float
    max_aspect_ratio: float
    mean_aspect_ratio: float
    area_ratio: float
    equidistribution_cv: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def angles(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(M, 3) interior angles in degrees."""
    p = points[triangles]
    out = np.empty((len(triangles), 3))
    for k in range(3):
        u = p[:, (k + 1) % 3] - p[:, k]
        v = p[:, (k + 2) % 3] - p[:, k]
        cos = (u * v).sum(1) / np.maximum(np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1), 1e-300)
        out[:, k] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out


def aspect_ratios(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    r"""Aspect ratio :math:`R / (2\rho)` of each triangle (1 = equilateral, inf = degenerate)."""
    p = points[triangles]
    a = np.linalg.norm(p[:, 1] - p[:, 2], axis=1)
    b = np.linalg.norm(p[:, 2] - p[:, 0], axis=1)
    c = np.linalg.norm(p[:, 0] - p[:, 1], axis=1)
    area = np.abs(signed_areas(points, triangles))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area > 0, a * b * c * (a + b + c) / (16.0 * area ** 2), np.inf)


def count_inverted(points: np.ndarray, triangles: np.ndarray, reference_sign: np.ndarray | None = None) -> int:
    """Number of triangles (or tetrahedra) whose signed area (volume) is not positive
    (relative to ``reference_sign``)."""
    area = signed_measures(points, triangles)
    if reference_sign is not None:
        area = area * reference_sign
    return int((area <= 0).sum())


def equidistribution_cv(points: np.ndarray, cells: np.ndarray, monitor: np.ndarray) -> float:
    r"""Coefficient of variation of :math:`m_K |K|` over the elements (triangles or
    tetrahedra), :math:`m_K` the mean of the vertex values ``monitor`` over :math:`K`."""
    mk = np.asarray(monitor)[cells].mean(axis=1)
    w = mk * np.abs(signed_measures(points, cells))
    return float(w.std() / w.mean())


def mesh_quality(points: np.ndarray, triangles: np.ndarray, monitor: np.ndarray | None = None) -> MeshQuality:
    """All the quality figures of a mesh (triangles oriented counter-clockwise)."""
    ang = angles(points, triangles)
    ar = aspect_ratios(points, triangles)
    area = np.abs(signed_areas(points, triangles))
    return MeshQuality(
        num_vertices=int(len(points)), num_cells=int(len(triangles)),
        inverted=count_inverted(points, triangles),
        min_angle=float(ang.min()), max_angle=float(ang.max()),
        max_aspect_ratio=float(ar.max()), mean_aspect_ratio=float(ar[np.isfinite(ar)].mean()),
        area_ratio=float(area.max() / area.min()) if area.min() > 0 else float("inf"),
        equidistribution_cv=None if monitor is None else equidistribution_cv(points, triangles, monitor),
    )


@dataclass
class TetMeshQuality:
    """Quality figures of one tetrahedral mesh (see module docstring for definitions)."""

    num_vertices: int
    num_cells: int
    inverted: int
    min_dihedral: float
    max_dihedral: float
    max_aspect_ratio: float
    mean_aspect_ratio: float
    volume_ratio: float
    equidistribution_cv: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def dihedral_angles(points: np.ndarray, tets: np.ndarray) -> np.ndarray:
    """(M, 6) dihedral angles in degrees of positively oriented tetrahedra."""
    p = points[tets[:, TET_FACES]]                               # (M, 4, 3, 3)
    n = np.cross(p[:, :, 1] - p[:, :, 0], p[:, :, 2] - p[:, :, 0])
    n /= np.maximum(np.linalg.norm(n, axis=2, keepdims=True), 1e-300)
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    cos = np.stack([(n[:, k] * n[:, m]).sum(1) for k, m in pairs], axis=1)
    return 180.0 - np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def tet_aspect_ratios(points: np.ndarray, tets: np.ndarray) -> np.ndarray:
    r"""Aspect ratio :math:`R / (3\rho)` of each tetrahedron (1 = regular, inf = degenerate)."""
    p = points[tets]
    d = p[:, 1:] - p[:, :1]                                       # (M, 3, 3)
    rhs = 0.5 * (d * d).sum(2)
    vol = np.abs(signed_volumes(points, tets))
    ok = vol > 0
    centre = np.zeros((len(tets), 3))
    if ok.any():
        centre[ok] = np.linalg.solve(d[ok], rhs[ok][..., None])[..., 0]
    R = np.linalg.norm(centre, axis=1)
    f = p[:, TET_FACES]
    area = 0.5 * np.linalg.norm(np.cross(f[:, :, 1] - f[:, :, 0], f[:, :, 2] - f[:, :, 0]), axis=2).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, R * area / (9.0 * vol), np.inf)


def tet_mesh_quality(points: np.ndarray, tets: np.ndarray, monitor: np.ndarray | None = None) -> TetMeshQuality:
    """All the quality figures of a tetrahedral mesh (tetrahedra positively oriented)."""
    vol = signed_volumes(points, tets)
    dih = dihedral_angles(points, tets)
    ar = tet_aspect_ratios(points, tets)
    av = np.abs(vol)
    cv = None if monitor is None else equidistribution_cv(points, tets, monitor)
    return TetMeshQuality(
        num_vertices=int(len(points)), num_cells=int(len(tets)), inverted=int((vol <= 0).sum()),
        min_dihedral=float(dih.min()), max_dihedral=float(dih.max()),
        max_aspect_ratio=float(ar.max()), mean_aspect_ratio=float(ar[np.isfinite(ar)].mean()),
        volume_ratio=float(av.max() / av.min()) if av.min() > 0 else float("inf"),
        equidistribution_cv=cv,
    )


_ROWS_2D = [
    ("vertices", "num_vertices", "{:d}"), ("cells", "num_cells", "{:d}"),
    ("inverted cells", "inverted", "{:d}"), ("min angle (deg)", "min_angle", "{:.2f}"),
    ("max angle (deg)", "max_angle", "{:.2f}"), ("max aspect ratio", "max_aspect_ratio", "{:.3f}"),
    ("mean aspect ratio", "mean_aspect_ratio", "{:.3f}"), ("max/min area", "area_ratio", "{:.2f}"),
    ("equidistribution CV", "equidistribution_cv", "{:.4f}"),
]
_ROWS_3D = [
    ("vertices", "num_vertices", "{:d}"), ("cells", "num_cells", "{:d}"),
    ("inverted cells", "inverted", "{:d}"), ("min dihedral (deg)", "min_dihedral", "{:.2f}"),
    ("max dihedral (deg)", "max_dihedral", "{:.2f}"), ("max aspect ratio", "max_aspect_ratio", "{:.3f}"),
    ("mean aspect ratio", "mean_aspect_ratio", "{:.3f}"), ("max/min volume", "volume_ratio", "{:.2f}"),
    ("equidistribution CV", "equidistribution_cv", "{:.4f}"),
]


def quality_table(columns: "dict[str, MeshQuality | TetMeshQuality]") -> str:
    """A plain-text table of several :class:`MeshQuality` (or :class:`TetMeshQuality`) side by side."""
    first = next(iter(columns.values()))
    rows = _ROWS_3D if isinstance(first, TetMeshQuality) else _ROWS_2D
    names = list(columns)
    width = max(12, *(len(n) for n in names))
    lines = [f"{'':<22}" + "".join(f"{n:>{width + 2}}" for n in names)]
    for label, key, fmt in rows:
        cells = []
        for n in names:
            v = getattr(columns[n], key)
            cells.append("-" if v is None else fmt.format(v))
        lines.append(f"{label:<22}" + "".join(f"{c:>{width + 2}}" for c in cells))
    return "\n".join(lines)
