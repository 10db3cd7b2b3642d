"""Tetrahedral meshes: the graph, the boundary model (planes, spheres, cylinders, triangulated
surfaces, feature edges, corners), the volume safeguard, 3D quality metrics and bad input."""

from pathlib import Path

import meshio
import numpy as np
import pytest
import torch

from um2n.errors import MeshInputError
from um2n.meshing import generate_solid_mesh
from um2n.quality import dihedral_angles, tet_aspect_ratios, tet_mesh_quality
from um2n.safeguard import untangle
from um2n.surface import CORNER, EDGE, FACE, Circle, Cylinder, Line, Plane, Sphere, closest_on_triangles
from um2n.tetmesh import TetMeshGraph, signed_volumes

pytest.importorskip("gmsh")

BAD = Path(__file__).parent / "data" / "bad"

# solid -> (constraint types, corners)
EXPECTED = {
    "box": ({"Plane": 6, "Line": 12}, 8),
    "l_prism": ({"Plane": 8, "Line": 18}, 12),
    "box_sphere_hole": ({"Plane": 6, "Sphere": 1, "Line": 12}, 8),
    "box_cylinder_hole": ({"Plane": 6, "Cylinder": 1, "Line": 12, "Circle": 2}, 8),
    "box_ellipsoid_hole": ({"Plane": 6, "TriangulatedSurface": 1, "Line": 12}, 8),
}


@pytest.fixture(scope="module")
def solids(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solids")
    return {s: TetMeshGraph.from_file(generate_solid_mesh(s, folder / f"{s}.msh", lc=0.12)) for s in EXPECTED}


@pytest.mark.parametrize("solid", list(EXPECTED))
def test_boundary_is_classified_into_its_surfaces_edges_and_corners(solids, solid):
    g = solids[solid]
    types, corners = EXPECTED[solid]
    assert g.boundary.constraint_types() == types
    assert len(g.corners) == corners
    assert (g.cell_measures() > 0).all()
    kinds = set(np.unique(g.boundary.kind[g.boundary_faces.ravel()]).tolist())
    assert kinds == {CORNER, EDGE, FACE}


def test_fitted_geometry_is_the_cad_geometry(solids):
    sphere = next(c for c in solids["box_sphere_hole"].boundary.constraints if isinstance(c, Sphere))
    np.testing.assert_allclose(sphere.centre, [0.5, 0.5, 0.5], atol=1e-9)
    assert sphere.radius == pytest.approx(0.25, abs=1e-9)
    b = solids["box_cylinder_hole"].boundary
    cyl = next(c for c in b.constraints if isinstance(c, Cylinder))
    assert abs(abs(cyl.axis[2]) - 1.0) < 1e-9
    d = cyl.point - np.array([0.5, 0.5, 0.0])
    assert np.linalg.norm(d - (d @ cyl.axis) * cyl.axis) < 1e-9
    assert cyl.radius == pytest.approx(0.2, abs=1e-9)
    circles = [c for c in b.constraints if isinstance(c, Circle)]
    assert sorted(round(float(c.centre[2]), 9) for c in circles) == [0.0, 1.0]
    assert all(c.radius == pytest.approx(0.2, abs=1e-9) for c in circles)


def _wild_move(x0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth random displacement, large enough to tangle the mesh most of the time."""
    k = rng.normal(size=(3, 3)) * rng.uniform(2.0, 8.0)
    return rng.uniform(0.05, 0.4) * np.sin(x0 @ k.T + rng.uniform(0.0, 2 * np.pi, 3))


def test_safeguard_leaves_no_inverted_tetrahedron_and_keeps_the_boundary(solids):
    """100 wild moves over the five solids: 0 inverted tetrahedra, corners bit-identical,
    every other boundary vertex on its plane, sphere, cylinder, line, circle or original
    triangulation to 1e-10 of the domain's size; the safeguard had to act on most moves."""
    rng = np.random.default_rng(2026)
    repaired = 0
    for trial in range(100):
        g = solids[list(EXPECTED)[trial % len(EXPECTED)]]
        x0 = g.points
        x1, s1 = g.boundary.project(x0, x0 + _wild_move(x0, rng))
        x, report = untangle(g, x0, x1, s1)
        repaired += report.inverted_before > 0
        assert report.inverted_after == 0
        assert (signed_volumes(x, g.tets) > 0).all()
        assert np.array_equal(x[g.corners], x0[g.corners])
        assert g.boundary.deviation(x) <= 1e-10
        assert np.abs(x - x0).max() > 1e-3                      # it did move
    assert repaired >= 80


def test_triangulated_surface_keeps_vertices_on_the_original_faces(solids):
    g = solids["box_ellipsoid_hole"]
    x0, f = g.points, g.boundary_faces
    rng = np.random.default_rng(5)
    x1, _ = g.boundary.project(x0, x0 + _wild_move(x0, rng))
    x, _ = untangle(g, x0, x1, None)
    curved = np.flatnonzero((g.boundary.kind == FACE)
                            & ~np.isin(g.boundary.constraint, [i for i, c in enumerate(g.boundary.constraints)
                                                               if isinstance(c, Plane)]))
    assert curved.size > 50 and np.abs(x[curved] - x0[curved]).max() > 1e-3
    for v in curved[::7]:                                      # brute force over every boundary face
        y = closest_on_triangles(np.repeat(x[v][None], len(f), 0), x0[f[:, 0]], x0[f[:, 1]], x0[f[:, 2]])
        assert np.linalg.norm(y - x[v], axis=1).min() <= 1e-12


def test_closest_point_on_triangles_against_dense_sampling():
    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(size=(40, 3)) for _ in range(3))
    x = 2 * rng.normal(size=(40, 3))
    y = closest_on_triangles(x, a, b, c)
    u, v = np.meshgrid(np.linspace(0, 1, 201), np.linspace(0, 1, 201))
    keep = u + v <= 1
    u, v = u[keep], v[keep]
    for k in range(40):
        samples = a[k] + u[:, None] * (b[k] - a[k]) + v[:, None] * (c[k] - a[k])
        best = np.linalg.norm(samples - x[k], axis=1).min()
        got = np.linalg.norm(y[k] - x[k])
        assert got <= best + 1e-12 and got >= best - 0.02 * np.linalg.norm(b[k] - a[k])


@pytest.mark.parametrize("solid", ["box", "l_prism", "box_cylinder_hole"])
def test_deformer_neighbourhoods_keep_planes_and_lines(solids, solid):
    """Any convex combination over :meth:`TetMeshGraph.deform_edge_index` keeps the vertices
    of planar patches in their plane, those of straight feature edges on their line and
    the corners in place."""
    g = solids[solid]
    e = g.deform_edge_index()
    assert (e[1][1:] >= e[1][:-1]).all()
    w = torch.rand(e.shape[1], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x0 = torch.from_numpy(g.points)
    num = torch.zeros_like(x0).index_add_(0, e[1], w[:, None] * x0[e[0]])
    den = torch.zeros(g.num_vertices, dtype=torch.float64).index_add_(0, e[1], w)
    y = (num / den[:, None]).numpy()
    b = g.boundary
    assert np.array_equal(y[g.corners], g.points[g.corners])
    checked = 0
    for ci, con in enumerate(b.constraints):
        idx = np.flatnonzero(b.constraint == ci)
        if idx.size and isinstance(con, (Plane, Line)):
            assert con.distance(y[idx]).max() <= 1e-12
            checked += idx.size
    assert checked == int((b.kind != 0).sum() - len(g.corners)) - sum(
        int((b.constraint == ci).sum()) for ci, c in enumerate(b.constraints) if not isinstance(c, (Plane, Line)))


def test_write_and_read_back_keeps_coordinates_and_tags(solids, tmp_path):
    g = solids["box_sphere_hole"]
    m = g.to_meshio()
    meshio.write(tmp_path / "m.vtu", m)
    h = TetMeshGraph.from_file(tmp_path / "m.vtu")
    np.testing.assert_array_equal(h.points, g.points)
    np.testing.assert_array_equal(h.tets, g.tets)
    assert h.boundary.constraint_types() == g.boundary.constraint_types()


def test_quality_of_the_regular_and_a_sliver_tetrahedron():
    reg = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float)
    t = np.array([[0, 1, 2, 3]])
    if signed_volumes(reg, t)[0] < 0:
        t = t[:, [0, 2, 1, 3]]
    np.testing.assert_allclose(dihedral_angles(reg, t), np.degrees(np.arccos(1 / 3)), rtol=1e-12)
    assert tet_aspect_ratios(reg, t)[0] == pytest.approx(1.0, rel=1e-12)
    sliver = np.array([[0, 0, 0], [1, 0, 0], [0.5, 0.5, 0.01], [0.5, -0.5, 0.0]])
    ts = np.array([[0, 1, 2, 3]])
    if signed_volumes(sliver, ts)[0] < 0:
        ts = ts[:, [0, 2, 1, 3]]
    assert tet_aspect_ratios(sliver, ts)[0] > 20
    assert dihedral_angles(sliver, ts).max() > 170
    q = tet_mesh_quality(reg, t, monitor=np.ones(4))
    assert q.inverted == 0 and q.volume_ratio == 1.0 and q.equidistribution_cv == 0.0


BAD_3D = [
    ("tet_degenerate.vtu", "1 degenerate (zero-volume) tetrahedra (the first is cell 1, vertices [1, 2, 3, 4])"),
    ("tet_surface_only.vtu", "a surface-only mesh (no tetrahedra, only triangle); um2n moves 2D meshes in a plane "
                             "or tetrahedral volume meshes"),
    ("tet_mixed_dimension.vtu", "a mixed-dimension mesh: 1 triangle cell(s) are not boundary faces of the tetrahedra"),
    ("tet_mixed_hex.vtu", "a mixed mesh (tetrahedra and hexahedron cells); um2n moves linear tetrahedral meshes only"),
]


@pytest.mark.parametrize("fname,msg", BAD_3D, ids=[c[0] for c in BAD_3D])
def test_bad_3d_input_gets_one_line_naming_the_file(fname, msg):
    with pytest.raises(MeshInputError) as exc:
        TetMeshGraph.from_file(BAD / fname)
    assert str(exc.value) == f"{BAD / fname}: {msg}"
