"""MeshGraph: connectivity, boundary loops and the corner / straight / curved classification."""

import meshio
import numpy as np
import pytest

from um2n.boundary import CORNER, INTERIOR, SLIDING, CircleArc, LineSegment, Polyline
from um2n.errors import MeshInputError
from um2n.mesh import MeshGraph

# domain -> (corners, {curve type: count}, holes, area)
EXPECTED = {
    "unit_square": (4, {"LineSegment": 4}, 0, 1.0),
    "annulus": (0, {"CircleArc": 2}, 1, np.pi * (1 - 0.25)),
    "polygon_with_hole": (10, {"LineSegment": 10}, 1, None),
    "dfg_cylinder": (4, {"LineSegment": 4, "CircleArc": 1}, 1, 2.2 * 0.41 - np.pi * 0.05 ** 2),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_boundary_classification(graph_of, name):
    g = graph_of(name)
    corners, curves, holes, area = EXPECTED[name]
    assert len(g.corners) == corners
    assert g.boundary.curve_types() == curves
    # Euler characteristic of a planar domain with `holes` holes: V - E + F = 1 - holes
    assert g.num_vertices - len(g.edges) + g.num_cells == 1 - holes
    assert np.all(g.areas() > 0)
    if area is not None:
        # polygonal area (circles are inscribed polygons): close to the exact area
        assert g.areas().sum() == pytest.approx(area, rel=5e-3)
    # boundary edges have the domain on their left: the boundary integral of x dy is the area
    p0, p1 = g.points[g.boundary_edges[:, 0]], g.points[g.boundary_edges[:, 1]]
    assert np.sum(0.5 * (p0[:, 0] + p1[:, 0]) * (p1[:, 1] - p0[:, 1])) == pytest.approx(g.areas().sum())
    assert g.boundary.deviation(g.points) < 1e-12


def test_tags_carried_through(graph_of):
    g = graph_of("unit_square")
    assert set(np.unique(g.boundary_tags)) == {1, 2, 3, 4}
    on_left = np.all(np.isclose(g.points[g.boundary_edges][:, :, 0], 0.0), axis=1)
    assert np.all(g.boundary_tags[on_left] == 1)
    assert g.cell_tags is not None and np.all(g.cell_tags == 1)


def test_circle_parameters_exact(graph_of):
    g = graph_of("annulus")
    for c in g.boundary.curves:
        assert isinstance(c, CircleArc) and c.closed
        assert c.radius in (pytest.approx(1.0, abs=1e-12), pytest.approx(0.5, abs=1e-12))
        assert np.allclose(c.center, 0.0, atol=1e-12)


def test_corners_are_where_tags_or_direction_change(graph_of):
    g = graph_of("unit_square")
    assert sorted(map(tuple, np.round(g.points[g.corners], 12))) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    kinds = g.boundary.kind
    assert set(np.unique(kinds)) == {INTERIOR, CORNER, SLIDING}


def test_polyline_fallback_for_general_curves():
    # a wavy closed boundary that is neither straight nor a circle
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    r = 1 + 0.1 * np.sin(3 * t)
    outer = np.column_stack([r * np.cos(t), r * np.sin(t)])
    pts = np.vstack([outer, [[0.0, 0.0]]])
    tris = np.array([[i, (i + 1) % 40, 40] for i in range(40)])
    g = MeshGraph.from_arrays(pts, tris)
    assert g.boundary.curve_types() == {"Polyline": 1}
    assert isinstance(g.boundary.curves[0], Polyline)
    # a point pushed off the boundary projects back onto the original polyline
    x, s = g.boundary.project(g.points, g.points + 0.02)
    assert g.boundary.deviation(x) < 1e-12


def test_unused_vertices_are_left_out_and_kept_on_output():
    pts = np.array([[0, 0], [1, 0], [0, 1], [5, 5]], dtype=float)   # point 3 is unused
    g = MeshGraph.from_arrays(pts, np.array([[0, 1, 2]]))
    assert g.num_vertices == 3 and list(g.vertex_map) == [0, 1, 2]
    template = meshio.Mesh(np.column_stack([pts, np.zeros(4)]), [("triangle", np.array([[0, 1, 2]]))])
    out = g.to_meshio(g.points + 0.0, template=template)
    assert np.allclose(out.points[3], [5, 5, 0])


def test_clockwise_triangles_are_reoriented():
    pts = np.array([[0, 0], [1, 0], [0, 1]], dtype=float)
    g = MeshGraph.from_arrays(pts, np.array([[0, 2, 1]]))
    assert g.areas()[0] == pytest.approx(0.5)


@pytest.mark.parametrize("pts,tris,msg", [
    (np.zeros((3, 2)), np.array([[0, 1, 2]]), "degenerate"),
    (np.eye(3)[:, :2], np.array([[0, 1, 5]]), "do not exist"),
    (np.eye(3)[:, :2], np.array([[0, 1]]), "shape (M, 3)"),
    (np.full((3, 2), np.nan), np.array([[0, 1, 2]]), "NaN"),
])
def test_bad_arrays(pts, tris, msg):
    with pytest.raises(MeshInputError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        MeshGraph.from_arrays(pts, tris)


def test_line_segment_projection_clamps_to_segment():
    seg = LineSegment(p0=np.array([0.0, 0.0]), p1=np.array([2.0, 0.0]))
    s = seg.project(np.array([[-1.0, 1.0], [1.0, -3.0], [5.0, 0.0]]))
    assert np.allclose(s, [0.0, 0.5, 1.0])


def test_three_point_bend_is_not_a_circle():
    # corner - bend (< corner angle) - corner: three points always fit a circle; must not bulge
    pts = np.array([[0, 0], [1, 0.1], [2, 0], [1, -1.0]])
    g = MeshGraph.from_arrays(pts, np.array([[0, 3, 1], [1, 3, 2]]), corner_angle=20.0)
    assert "CircleArc" not in g.boundary.curve_types()


def test_loop_with_a_single_corner():
    # a teardrop: one sharp corner, the rest a smooth bend; the corner stays a fixed corner
    t = np.linspace(0.15 * np.pi, 1.85 * np.pi, 30)
    outer = np.column_stack([1 - np.cos(t), np.sin(t)])
    pts = np.vstack([[0.0, 0.0], outer[1:-1], [1.0, 0.0]])
    n = len(pts) - 1
    tris = np.array([[i, i + 1, n] for i in range(n - 1)] + [[n - 1, 0, n]])
    g = MeshGraph.from_arrays(pts, tris)
    assert 0 in g.corners
    assert g.boundary.curve[0] == -1


def test_rebase_after_long_slide_on_polyline():
    t = np.linspace(0, 2 * np.pi, 80, endpoint=False)
    r = 1 + 0.1 * np.sin(3 * t)
    pts = np.vstack([np.column_stack([r * np.cos(t), r * np.sin(t)]), [[0.0, 0.0]]])
    tris = np.array([[i, (i + 1) % 80, 80] for i in range(80)])
    g = MeshGraph.from_arrays(pts, tris)
    bm = g.boundary
    curve = bm.curves[0]
    # slide every boundary vertex by 30 segments (far beyond the local search window)
    x = g.points.copy()
    idx = np.flatnonzero(bm.curve == 0)
    x[idx] = curve.evaluate(bm.param[idx] + 30 * curve.period / 80)
    assert bm.deviation(x) < 1e-12
    rebased = g.with_points(x).boundary
    assert np.allclose(curve.evaluate(rebased.param[idx]), x[idx], atol=1e-12)


def test_projection_keeps_boundary_order(graph_of):
    """Sliding vertices never pass each other or reach a corner, whatever the proposal."""
    g = graph_of("polygon_with_hole")
    bm = g.boundary
    rng = np.random.default_rng(0)
    for _ in range(20):
        prop = g.points + rng.normal(scale=0.2, size=g.points.shape)
        _, s = bm.project(g.points, prop)
        for ci, (verts, closed) in enumerate(bm.chains):
            lo, hi = bm.chain_ends[ci]
            u = np.r_[lo, s[verts[1:-1]], hi] * (1 if hi > lo else -1)
            u0 = np.r_[lo, bm.param[verts[1:-1]], hi] * (1 if hi > lo else -1)
            assert np.all(np.diff(u) >= bm.min_gap * np.diff(u0) - 1e-12)
