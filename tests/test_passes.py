"""Several forward passes per move (``UM2NMover(passes=k)``), the P1 interpolation of an
array monitor at the moved vertices, and the safeguard's floor relative to the original mesh."""

import numpy as np
import pytest

from um2n.interpolation import P1Interpolant
from um2n.mesh import MeshGraph
from um2n.monitor import evaluate_monitor
from um2n.mover import UM2NMover
from um2n.quality import count_inverted, equidistribution_cv
from um2n.safeguard import untangle
from test_mover import DOMAINS, _check_boundary, random_model, random_monitor

RING = "1 + 5*exp(-((sqrt((x-0.5)**2+(y-0.5)**2)-0.25)**2)/0.002)"


def _tet_graph(tmp_path_factory, shape: str, lc: float):
    from um2n.meshing import generate_solid_mesh
    from um2n.tetmesh import TetMeshGraph

    return TetMeshGraph.from_file(generate_solid_mesh(shape, tmp_path_factory.mktemp("solid") / f"{shape}.msh", lc=lc))


def _inside_points(rng, points, cells, n):
    """``n`` random points inside random cells (random barycentric weights)."""
    k = rng.integers(0, len(cells), n)
    w = rng.dirichlet(np.ones(cells.shape[1]), n)
    return np.einsum("ij,ijk->ik", w, points[cells[k]])


@pytest.mark.parametrize("dim, chunk", [(2, 8192), (3, 8192), (2, 7)])
def test_p1_interpolant_is_exact_for_linear_functions(graph_of, tmp_path_factory, monkeypatch, dim, chunk):
    """(chunk 7: the points searched in many small pieces)"""
    import um2n.interpolation

    monkeypatch.setattr(um2n.interpolation, "SEARCH_CHUNK", chunk)
    g = graph_of("polygon_with_hole") if dim == 2 else _tet_graph(tmp_path_factory, "box_sphere_hole", 0.25)
    rng = np.random.default_rng(dim)
    a = rng.normal(size=dim)
    values = 1.0 + g.points @ a
    f = P1Interpolant(g.points, g.cells)
    targets = _inside_points(rng, g.points, g.cells, 500)
    assert np.abs(f(values, targets) - (1.0 + targets @ a)).max() < 1e-12
    _, _, inside = f.locate(targets)
    assert inside.all()
    # points off the mesh take a value of the cell nearest to containing them: no extrapolation
    lo, hi = g.points.min(axis=0), g.points.max(axis=0)
    outside = hi + rng.uniform(0.01, 0.05, size=(20, dim)) * (hi - lo)
    v = f(values, outside)
    _, _, inside = f.locate(outside)
    assert not inside.any() and np.isfinite(v).all()
    assert v.min() >= values.min() - 1e-12 and v.max() <= values.max() + 1e-12


def test_passes_equidistribute_further_in_2d(mesh_file):
    """um2n-v1 on a ring: the equidistribution CV falls with every pass (measured 0.835 on
    the original mesh, then 0.466, 0.395, 0.370), the mesh stays untangled, corners fixed,
    boundary vertices on their curves, every cell at least min_area_ratio of its original."""
    g = MeshGraph.from_file(mesh_file("unit_square", lc=0.02))
    cv = [equidistribution_cv(g.points, g.triangles, evaluate_monitor(RING, g.points))]
    for passes in (1, 2, 3):
        r = UM2NMover(weights="um2n-v1", passes=passes, min_area_ratio=0.1).move(g, RING)
        cv.append(equidistribution_cv(r.points, g.triangles, evaluate_monitor(RING, r.points)))
        assert count_inverted(r.points, g.triangles) == 0
        assert (g.areas(r.points) >= 0.1 * g.areas()).all()
        _check_boundary(g, r.points, 1e-10 * g.bounding_box[1])
        assert np.array_equal(r.monitor, evaluate_monitor(RING, g.points))     # the original vertices'
    assert cv[1] < 0.6 * cv[0] and cv[2] < 0.9 * cv[1] and cv[3] < cv[2], cv


def _three_blobs(seed: int):
    """1 + three isotropic Gaussians of random centres, widths and amplitudes 2 to 10."""
    rng = np.random.default_rng(seed)
    c, s, a = rng.uniform(0.2, 0.8, (3, 3)), rng.uniform(0.005, 0.03, 3), rng.uniform(2, 10, 3)
    return lambda x, y, z: 1 + sum(a[i] * np.exp(-((x - c[i, 0]) ** 2 + (y - c[i, 1]) ** 2 + (z - c[i, 2]) ** 2) / s[i])
                                   for i in range(3))


def test_passes_equidistribute_further_in_3d(tmp_path_factory):
    """um2n-3d-v1 on the cube, three blobs, the safeguard at a quarter of each original
    volume (as the 3D deformation test runs): the CV ratio falls with each pass (measured
    0.825, 0.712, 0.656), every tetrahedron keeps a quarter of its original volume."""
    from um2n.mesh import signed_measures

    from um2n.quality import tet_mesh_quality

    g = _tet_graph(tmp_path_factory, "box", 0.12)
    f = _three_blobs(1)

    def cv(x):
        return tet_mesh_quality(x, g.cells, evaluate_monitor(f, x)).equidistribution_cv

    ratios = []
    for passes in (1, 2, 3):
        r = UM2NMover(weights="um2n-3d-v1", passes=passes, min_area_ratio=0.25).move(g, f)
        ratios.append(cv(r.points) / cv(g.points))
        v0, v = signed_measures(g.points, g.cells), signed_measures(r.points, g.cells)
        assert (v >= 0.25 * v0).all()
        assert r.boundary_deviation < 1e-10
    assert ratios[1] < 0.9 * ratios[0] and ratios[2] < ratios[1], ratios


def test_an_array_monitor_is_interpolated_at_the_moved_vertices(mesh_file):
    """The same monitor as an array (values at the original vertices) and as an expression:
    the passes see it through P1 interpolation and through evaluation, nearly the same moves."""
    g = MeshGraph.from_file(mesh_file("unit_square", lc=0.02))
    mover = UM2NMover(weights="um2n-v1", passes=2)
    by_expression = mover.move(g, RING)
    by_array = mover.move(g, evaluate_monitor(RING, g.points))
    cv = [equidistribution_cv(r.points, g.triangles, evaluate_monitor(RING, r.points)) for r in (by_expression, by_array)]
    assert abs(cv[0] - cv[1]) < 0.03, cv
    assert np.abs(by_array.points - by_expression.points).max() < 0.05 * g.bounding_box[1]


def test_passes_leave_a_uniform_monitor_alone(graph_of):
    for name in DOMAINS:
        g = graph_of(name)
        res = UM2NMover(model=random_model(0, scale=10), passes=3).move(g, np.full(g.num_vertices, 2.5))
        assert np.max(np.abs(res.points - g.points)) < 1e-12 * g.bounding_box[1]


def test_passes_of_wild_models_never_tangle(graph_of):
    """Random weights that make wild proposals, three passes, 20 random monitors per mesh:
    0 inverted, boundary kept, no cell below the floor of its original area."""
    rng = np.random.default_rng(11)
    for k, name in enumerate(DOMAINS):
        g = graph_of(name)
        mover = UM2NMover(model=random_model(50 + k, scale=10.0), passes=3, min_area_ratio=0.05)
        for res in mover.move_batch([g] * 20, [random_monitor(rng, g) for _ in range(20)]):
            assert count_inverted(res.points, g.triangles) == 0
            assert (g.areas(res.points) >= 0.05 * g.areas()).all()
            _check_boundary(g, res.points, 1e-10 * g.bounding_box[1])


@pytest.mark.parametrize("passes", [0, -1, 1.5])
def test_passes_must_be_a_positive_integer(passes):
    with pytest.raises(ValueError, match="passes must be a positive integer"):
        UM2NMover(model=random_model(0), passes=passes)


def test_safeguard_floor_relative_to_reference_measures(graph_of):
    """With ``reference_measures`` the floor is min_area_ratio times those, not the start's:
    a cell may shrink to 0.4 of its start when that is its original, to 0.8 when it started
    at half its original, and not at all when it already lies below the floor."""
    g = graph_of("annulus")
    rng = np.random.default_rng(5)
    raw = UM2NMover(model=random_model(3, scale=10.0)).move(g, random_monitor(rng, g)).raw_points
    x1, s1 = g.boundary.project(g.points, raw)
    a0 = g.areas()
    x_default, _ = untangle(g, g.points, x1, s1, min_area_ratio=0.4)
    x_same, _ = untangle(g, g.points, x1, s1, min_area_ratio=0.4, reference_measures=a0)
    assert np.array_equal(x_default, x_same)
    x_half, _ = untangle(g, g.points, x1, s1, min_area_ratio=0.4, reference_measures=2 * a0)
    assert (g.areas(x_half) > 0.8 * a0).all() and g.areas(x_default).min() / a0[np.argmin(g.areas(x_default))] < 0.8
    x_below, _ = untangle(g, g.points, x1, s1, min_area_ratio=0.4, reference_measures=10 * a0)
    assert (g.areas(x_below) >= a0 * (1 - 1e-9)).all()


def test_a_pass_that_does_not_lower_the_cv_is_undone(graph_of):
    """Random weights move the mesh anywhere, and their later passes often raise the CV of
    m |K| (the monitor at the moved vertices): each such pass is undone and the passes stop
    there. A move of one kept pass is the one-pass move exactly; the CV never rises."""
    g = graph_of("annulus")
    rng = np.random.default_rng(21)
    undone = 0
    for seed in range(6):
        m = random_monitor(rng, g)
        model = random_model(seed, scale=3.0)
        one = UM2NMover(model=model).move(g, m)
        three = UM2NMover(model=model, passes=3).move(g, m)
        assert 1 <= three.passes <= 3
        undone += three.passes < 3
        cv = [equidistribution_cv(r.points, g.triangles, P1Interpolant(g.points, g.cells)(m, r.points))
              for r in (one, three)]
        assert cv[1] <= cv[0] + 1e-12, cv
        if three.passes == 1:
            assert np.array_equal(three.points, one.points)
    assert undone > 0
