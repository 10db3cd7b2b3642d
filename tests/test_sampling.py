"""``um2n.fem.sampling``: the PointSampler gives evaluate_at's values (a linear field exactly,
any P1 field to round-off) in 2D and 3D, remembers the points' cells while the mesh moves a
little, leaves the points outside the mesh to evaluate_at's nearest-vertex rule, and does the
same on a mesh distributed over 2 ranks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

ROOT = Path(__file__).resolve().parent.parent


def _field(mesh):
    import firedrake as fd

    X = fd.SpatialCoordinate(mesh)
    expr = fd.sin(3 * X[0]) * fd.cos(2 * X[1]) + X[0] * X[1] + (X[2] ** 2 if len(X) == 3 else 0)
    return fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(expr), expr


@pytest.mark.parametrize("dim, chunk", [(2, 8192), (3, 8192), (2, 7)])
def test_sampler_gives_point_evaluation_values_while_the_mesh_moves(dim, chunk, monkeypatch):
    """(chunk 7: the search among the nearest cells in many small pieces)"""
    import firedrake as fd

    import um2n.interpolation
    from um2n.fem.sampling import PointSampler, evaluate_at

    monkeypatch.setattr(um2n.interpolation, "SEARCH_CHUNK", chunk)

    mesh = fd.UnitSquareMesh(12, 12) if dim == 2 else fd.UnitCubeMesh(5, 5, 5)
    rng = np.random.default_rng(dim)
    points = rng.uniform(0.0, 1.0, size=(300, dim))
    f, _ = _field(mesh)
    sample = PointSampler()
    first = sample(f, points)
    assert np.abs(first - evaluate_at(f, points)).max() < 1e-12
    assert sample.counts == {"remembered": 0, "nearest": 300, "point_evaluation": 0}
    # a linear field is exact
    X = fd.SpatialCoordinate(mesh)
    g = fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(1 + sum((k + 1) * X[k] for k in range(dim)))
    assert np.abs(PointSampler()(g, points) - (1 + points @ np.arange(1, dim + 1))).max() < 1e-12
    for step in range(3):                      # a smooth motion, zero on the boundary
        C = mesh.coordinates.dat.data_with_halos
        C[:] += 0.02 * np.prod(np.sin(np.pi * C), axis=1, keepdims=True) * np.cos(np.arange(dim) + step)
        if hasattr(mesh, "clear_spatial_index"):      # the point evaluation's index is stale
            mesh.clear_spatial_index()
        f, _ = _field(mesh)
        assert np.abs(sample(f, points) - evaluate_at(f, points)).max() < 1e-12
    # most points stay in the cell they were in (each step moves vertices by up to a quarter
    # of a cell; measured in 2D: 716 of 900); the others are found near it
    assert sample.counts["remembered"] > 0.7 * 3 * 300
    assert sample.counts["remembered"] + sample.counts["nearest"] == 4 * 300


@pytest.mark.parametrize("dim", [2, 3])
def test_sampler_evaluates_a_dg1_function_as_point_evaluation_does(dim):
    """A discontinuous P1 (DG1) function, such as the Tohoku case's elevation at its gauges:
    the sampler gives Firedrake's point evaluation, also after the mesh has moved."""
    import firedrake as fd

    from um2n.fem.sampling import PointSampler

    mesh = fd.UnitSquareMesh(9, 7) if dim == 2 else fd.UnitCubeMesh(4, 4, 3)
    points = np.random.default_rng(7).uniform(0.05, 0.95, size=(40, dim))
    _, expr = _field(mesh)
    V = fd.FunctionSpace(mesh, "DG", 1)
    f = fd.Function(V).interpolate(expr)
    f.dat.data[:] += np.random.default_rng(8).normal(size=f.dat.data.shape)   # a jump at every face
    sample = PointSampler()
    for step in range(3):
        expected = np.asarray(fd.PointEvaluator(mesh, points).evaluate(f)).ravel()
        assert np.abs(sample(f, points) - expected).max() < 1e-11
        C = mesh.coordinates.dat.data_with_halos
        C[:] += 0.01 * np.prod(np.sin(np.pi * C), axis=1, keepdims=True)
        if hasattr(mesh, "clear_spatial_index"):
            mesh.clear_spatial_index()
    assert sample.counts["remembered"] > 0
    with pytest.raises(ValueError, match="scalar P1 or DG1"):
        sample(fd.Function(fd.FunctionSpace(mesh, "CG", 2)), points)

def test_points_outside_the_mesh_take_the_nearest_vertex_value():
    import firedrake as fd

    from um2n.fem.sampling import PointSampler

    mesh = fd.UnitSquareMesh(8, 8)
    x, y = fd.SpatialCoordinate(mesh)
    f = fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(1 + x + 2 * y)
    points = np.array([[0.3, 0.7], [1.4, 0.5], [-0.3, -0.2]])
    sample = PointSampler()
    values = sample(f, points)
    assert values[0] == pytest.approx(1 + 0.3 + 1.4, abs=1e-13)
    assert values[1] == pytest.approx(1 + 1.0 + 2 * 0.5) and values[2] == pytest.approx(1.0)
    assert sample.counts == {"remembered": 0, "nearest": 1, "point_evaluation": 2}


@pytest.mark.mpi
def test_sampler_on_two_ranks_gives_point_evaluation_values():
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1",
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, str(ROOT / "tests" / "mpi_sampling.py")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["ranks"] == 2 and r["max_diff"] < 1e-12
    c = r["counts"]
    # each rank finds the points in its own cells (its part and halo); the rest, those in the
    # other rank's part and the 2 x 2 outside the square, go to the collective point evaluation
    assert c["remembered"] > 0 and c["nearest"] > 0 and c["point_evaluation"] >= 2 * 2 * 2
    assert sum(c.values()) == 2 * 2 * 202


def test_sampler_keeps_the_cells_of_the_few_meshes_it_sampled_last():
    import firedrake as fd

    from um2n.fem.sampling import MESHES_KEPT, PointSampler

    sample = PointSampler()
    points = np.array([[0.3, 0.4], [0.8, 0.1]])
    meshes = [fd.UnitSquareMesh(4 + k, 4 + k) for k in range(MESHES_KEPT + 2)]
    for mesh in meshes:
        x, y = fd.SpatialCoordinate(mesh)
        f = fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(x + y)
        assert sample(f, points) == pytest.approx([0.7, 0.9], abs=1e-13)
        assert sample(f, points) == pytest.approx([0.7, 0.9], abs=1e-13)      # from the kept cells
    assert len(sample._cells) == MESHES_KEPT
    assert sample.counts == {"remembered": 2 * len(meshes), "nearest": 2 * len(meshes), "point_evaluation": 0}
