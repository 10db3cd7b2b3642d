"""UM2NMover end to end: boundary preservation, never tangled, batching, uniform monitor."""

import numpy as np
import pytest
import torch

from um2n.boundary import CORNER, CircleArc, LineSegment
from um2n.mesh import MeshGraph
from um2n.model import UM2N
from um2n.mover import UM2NMover
from um2n.quality import count_inverted
from um2n.safeguard import untangle

DOMAINS = ["unit_square", "annulus", "polygon_with_hole"]


def random_monitor(rng, graph):
    """1 + a sum of 1-4 random anisotropic Gaussians (amplitude up to 50) or a ring."""
    lo, L = graph.bounding_box
    x = (graph.points - lo) / L
    m = np.ones(graph.num_vertices)
    if rng.random() < 0.25:
        c = rng.random(2)
        r = rng.uniform(0.1, 0.4)
        return m + rng.uniform(2, 50) * np.exp(-((np.linalg.norm(x - c, axis=1) - r) / rng.uniform(0.01, 0.08)) ** 2)
    for _ in range(rng.integers(1, 5)):
        c = rng.random(2)
        s = rng.uniform(0.01, 0.25, size=2)
        th = rng.uniform(0, np.pi)
        R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        d = (x - c) @ R
        m += rng.uniform(1, 50) * np.exp(-0.5 * ((d[:, 0] / s[0]) ** 2 + (d[:, 1] / s[1]) ** 2))
    return m


def random_model(seed: int, scale: float | None = None) -> UM2N:
    """A randomly initialised model; with ``scale``, every weight is drawn from
    N(0, scale^2 / fan_in), which makes wild moves that tangle the raw proposals."""
    torch.manual_seed(seed)
    model = UM2N()
    if scale is not None:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, scale / np.sqrt(p.shape[-1]))
    return model.eval()


def _check_boundary(graph: MeshGraph, x: np.ndarray, tol: float):
    bm = graph.boundary
    corners = bm.kind == CORNER
    assert np.array_equal(x[corners], graph.points[corners]), "corners moved"
    for ci, curve in enumerate(bm.curves):
        idx = np.flatnonzero(bm.curve == ci)
        if isinstance(curve, LineSegment):
            d = curve.p1 - curve.p0
            n = np.array([-d[1], d[0]]) / np.linalg.norm(d)
            assert np.max(np.abs((x[idx] - curve.p0) @ n)) <= tol
            t = (x[idx] - curve.p0) @ d / (d @ d)
            assert t.min() >= -tol and t.max() <= 1 + tol, "vertex left its segment"
        elif isinstance(curve, CircleArc):
            assert np.max(np.abs(np.linalg.norm(x[idx] - curve.center, axis=1) - curve.radius)) <= tol
        else:
            raise AssertionError(type(curve))


@pytest.mark.parametrize("name", DOMAINS)
def test_boundary_preserved_and_sliding(graph_of, name):
    """Every boundary vertex stays on its boundary to 1e-10 L; corners do not move; vertices slide."""
    g = graph_of(name)
    L = g.bounding_box[1]
    rng = np.random.default_rng(11)
    mover = UM2NMover(model=random_model(2, scale=10))
    slid = 0.0
    for _ in range(10):
        res = mover.move(g, random_monitor(rng, g))
        _check_boundary(g, res.points, 1e-10 * L)
        assert res.boundary_deviation <= 1e-10 * L
        b = g.boundary.kind == 2
        slid = max(slid, float(np.max(np.linalg.norm(res.points[b] - g.points[b], axis=1))))
    assert slid > 1e-3 * L, "boundary vertices did not slide at all"


@pytest.mark.parametrize("name", DOMAINS)
def test_projection_of_wild_proposals(graph_of, name):
    """Boundary projection + safeguard hold even for displacements far larger than any model's."""
    g = graph_of(name)
    L = g.bounding_box[1]
    rng = np.random.default_rng(5)
    for _ in range(5):
        prop = g.points + rng.normal(scale=0.05 * L, size=g.points.shape)
        x1, s1 = g.boundary.project(g.points, prop)
        x, rep = untangle(g, g.points, x1, s1)
        assert rep.inverted_before > 0 and rep.inverted_after == 0
        assert count_inverted(x, g.triangles) == 0
        _check_boundary(g, x, 1e-10 * L)


def test_never_tangled_200_monitors_x_3_meshes(graph_of):
    """200 random monitors on each of 3 meshes with random weights: 0 inverted after."""
    rng = np.random.default_rng(2024)
    total_repaired = 0
    for k, name in enumerate(DOMAINS):
        g = graph_of(name)
        for chunk in range(8):
            mover = UM2NMover(model=random_model(100 * k + chunk, scale=None if chunk % 2 else 10.0))
            monitors = [random_monitor(rng, g) for _ in range(25)]
            for res in mover.move_batch([g] * 25, monitors):
                assert count_inverted(res.points, g.triangles) == 0
                assert res.safeguard.inverted_after == 0
                total_repaired += res.safeguard.inverted_before > 0
    # the wild models do tangle proposals, so the safeguard really was exercised
    assert total_repaired > 0


def test_uniform_monitor_leaves_mesh_unchanged(graph_of):
    for name in DOMAINS:
        g = graph_of(name)
        res = UM2NMover(model=random_model(0, scale=10)).move(g, np.full(g.num_vertices, 2.5))
        assert np.max(np.abs(res.points - g.points)) < 1e-12 * g.bounding_box[1]


def test_mover_batch_matches_single(graph_of):
    graphs = [graph_of(n) for n in DOMAINS]
    rng = np.random.default_rng(9)
    monitors = [random_monitor(rng, g) for g in graphs]
    mover = UM2NMover(model=random_model(4, scale=3.0))
    batched = mover.move_batch(graphs, monitors)
    for g, m, rb in zip(graphs, monitors, batched):
        rs = mover.move(g, m)
        assert np.allclose(rb.points, rs.points, atol=1e-6 * g.bounding_box[1])


def test_default_mover_uses_the_shipped_weights():
    from um2n.mover import DEFAULT_WEIGHTS

    assert DEFAULT_WEIGHTS.is_file() and DEFAULT_WEIGHTS.stat().st_size <= 20 * 2 ** 20
    assert (DEFAULT_WEIGHTS.parent / "MODEL_CARD.md").is_file()
    mover = UM2NMover()
    assert "shipped pretrained weights" in mover.weights_info


#: (geometry, lc, monitor, largest CV after / CV before). Measured with um2n-v1:
#: 0.594 -> 0.215, 0.322 -> 0.217, 0.371 -> 0.266, 0.636 -> 0.561.
EQUIDISTRIBUTION_CASES = [
    ("unit_square", 0.04, "1 + 3*exp(-((sqrt((x-0.5)**2+(y-0.5)**2)-0.25)/0.06)**2)", 0.5),
    ("annulus", 0.08, "1 + 3*exp(-((x-0.7)**2 + y**2)/0.02)", 0.8),
    ("polygon_with_hole", 0.06, "1 + 3*exp(-((x-0.3)**2+(y-0.3)**2)/0.02)", 0.8),
    ("dfg_cylinder", 0.04, "1 + 3*exp(-((x-0.5)**2+(y-0.2)**2)/0.01)", 0.95),
]


@pytest.mark.parametrize("name, lc, monitor, max_ratio", EQUIDISTRIBUTION_CASES)
def test_shipped_weights_equidistribute(mesh_file, name, lc, monitor, max_ratio):
    """The trained mover makes m * area more uniform (what MA meshes do), on meshes and
    domains it was not trained on, without inverting an element."""
    from um2n.monitor import evaluate_monitor
    from um2n.quality import equidistribution_cv

    g = MeshGraph.from_file(mesh_file(name, lc=lc))
    r = UM2NMover().move(g, monitor)
    before = equidistribution_cv(g.points, g.triangles, evaluate_monitor(monitor, g.points))
    after = equidistribution_cv(r.points, g.triangles, evaluate_monitor(monitor, r.points))
    assert after < max_ratio * before, (before, after)
    assert count_inverted(r.points, g.triangles) == 0


def test_repeated_moves_keep_the_original_boundary(graph_of):
    g = graph_of("annulus")
    mover = UM2NMover(model=random_model(8, scale=10))
    rng = np.random.default_rng(3)
    current = g
    for _ in range(4):
        res = mover.move(current, random_monitor(rng, current))
        current = g.with_points(res.points)
        _check_boundary(g, current.points, 1e-10 * g.bounding_box[1])
        assert count_inverted(current.points, g.triangles) == 0
