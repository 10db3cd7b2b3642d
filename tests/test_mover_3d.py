"""UM2N on tetrahedral meshes (``UM2NConfig(dim=3)``): the mover's guarantees in 3D with
untrained and deliberately wild weights; the 2D weights refuse 3D meshes."""

import numpy as np
import pytest
import torch

from um2n.errors import MonitorError, UM2NError
from um2n.features import mesh_data
from um2n.meshing import generate_solid_mesh
from um2n.model import UM2N, UM2NConfig
from um2n.monitor import evaluate_monitor
from um2n.mover import UM2NMover
from um2n.tetmesh import TetMeshGraph, signed_volumes

pytest.importorskip("gmsh")

SOLIDS = ["box", "l_prism", "box_sphere_hole", "box_cylinder_hole", "box_ellipsoid_hole"]


@pytest.fixture(scope="module")
def solids(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solids3d")
    return {s: TetMeshGraph.from_file(generate_solid_mesh(s, folder / f"{s}.msh", lc=0.15)) for s in SOLIDS}


def wild_model(seed: int, scale: float) -> UM2N:
    torch.manual_seed(seed)
    model = UM2N(UM2NConfig(dim=3))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model.eval()


def random_monitor(rng: np.random.Generator) -> str:
    c = rng.uniform(0.1, 0.9, 3)
    w = rng.uniform(0.003, 0.05)
    return f"1 + {rng.uniform(2, 50):.3f}*exp(-((x-{c[0]:.3f})**2 + (y-{c[1]:.3f})**2 + (z-{c[2]:.3f})**2)/{w:.4f})"


@pytest.mark.parametrize("scale", [1.0, 6.0])
def test_uniform_monitor_leaves_the_mesh_unchanged(solids, scale):
    mover = UM2NMover(model=wild_model(3, scale))
    for g in solids.values():
        r = mover.move(g, "3.5")
        assert np.array_equal(r.points, g.points)


def test_hundred_random_monitors_with_wild_weights_never_tangle(solids):
    """100 moves (5 solids, 20 random Gaussian monitors each, weights scaled by 2 to 8):
    0 inverted tetrahedra, corners bit-identical, boundary vertices on their surfaces and
    feature edges to 1e-10; the safeguard had work to do."""
    rng = np.random.default_rng(18)
    exercised = moved = 0
    for k in range(100):
        g = solids[SOLIDS[k % 5]]
        mover = UM2NMover(model=wild_model(k, float(rng.uniform(2.0, 8.0))))
        r = mover.move(g, random_monitor(rng))
        assert r.safeguard.inverted_after == 0
        assert (signed_volumes(r.points, g.tets) > 0).all()
        assert np.array_equal(r.points[g.corners], g.points[g.corners])
        assert r.boundary_deviation <= 1e-10
        exercised += r.safeguard.inverted_before > 0
        moved += np.abs(r.points - g.points).max() > 1e-3
    assert exercised >= 20 and moved == 100


def test_inference_path_matches_autograd_path_in_3d(solids):
    g = solids["box_cylinder_hole"]
    torch.manual_seed(1)
    model = UM2N(UM2NConfig(dim=3)).eval()
    data = mesh_data(g, np.random.default_rng(1).uniform(1.0, 5.0, g.num_vertices))
    with torch.no_grad():
        fast = model(data)
    slow = model(data)
    assert slow.requires_grad
    assert (fast - slow.detach()).abs().max().item() < 1e-5


def test_a_batch_of_different_meshes_moves_like_each_alone(solids):
    mover = UM2NMover(model=wild_model(7, 3.0))
    gs = [solids["box"], solids["box_sphere_hole"]]
    mons = ["1 + 10*exp(-((x-0.3)**2 + (z-0.6)**2)/0.02)", "1 + 5*exp(-(y-0.2)**2/0.01)"]
    both = mover.move_batch(gs, mons)
    for g, m, r in zip(gs, mons, both):
        np.testing.assert_allclose(r.points, mover.move(g, m).points, atol=1e-6)


def test_weights_and_mesh_must_have_the_same_dimension(solids, tmp_path):
    g3 = solids["box"]
    with pytest.raises(UM2NError, match=r"a 3D mesh, but the weights .* are for 2D meshes"):
        UM2NMover(weights="um2n-v1").move(g3, "1 + x")
    model = wild_model(0, 1.0)
    model.save(tmp_path / "w3.safetensors")
    loaded, _ = UM2N.load(tmp_path / "w3.safetensors")
    assert loaded.config.dim == 3
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]], dtype=float)
    from um2n.mesh import MeshGraph

    g2 = MeshGraph.from_arrays(sq, np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]]), name="square")
    with pytest.raises(UM2NError, match=r"square: a 2D mesh, but the weights .* are for 3D meshes"):
        UM2NMover(weights=tmp_path / "w3.safetensors").move(g2, "1 + x")


def test_monitor_expressions_in_z():
    pts = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(evaluate_monitor("1 + z**2", pts), [1.0, 2.0])
    with pytest.raises(MonitorError, match="uses z, but the mesh is 2D"):
        evaluate_monitor("1 + z", pts[:, :2])


@pytest.mark.parametrize("solid,ratio", [("box", 0.80), ("l_prism", 0.76), ("box_ellipsoid_hole", 0.90),
                                         ("box_cylinder_hole", 0.86)])
def test_shipped_3d_weights_equidistribute_better(tmp_path, solid, ratio):
    """The shipped um2n-3d-v1 on a Gaussian monitor: the equidistribution CV of m_K |K| falls
    (measured CV ratios 0.773, 0.726, 0.869, 0.828; the L-shaped prism and the ellipsoidal
    hole are domains no training sample has), 0 inverted, the boundary kept."""
    from um2n.quality import tet_mesh_quality

    g = TetMeshGraph.from_file(generate_solid_mesh(solid, tmp_path / f"{solid}.msh", lc=0.12))
    mon = "1 + 10*exp(-((x-0.3)**2 + (y-0.25)**2 + (z-0.4)**2)/0.02)"
    r = UM2NMover(weights="um2n-3d-v1").move(g, mon)
    cv0 = tet_mesh_quality(g.points, g.tets, evaluate_monitor(mon, g.points)).equidistribution_cv
    q = tet_mesh_quality(r.points, g.tets, evaluate_monitor(mon, r.points))
    assert q.inverted == 0 and r.boundary_deviation <= 1e-10
    assert q.equidistribution_cv < ratio * cv0
