"""The Firedrake adapter: Firedrake mesh -> MeshGraph with tags, in-place moves."""

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake


def test_unit_square_mesh_graph_and_move():
    import firedrake as fd

    from um2n.fem.adapter import mesh_graph, move_mesh
    from um2n.mover import UM2NMover
    from um2n.quality import count_inverted
    from test_mover import random_model

    mesh = fd.UnitSquareMesh(16, 16)
    g = mesh_graph(mesh)
    assert g.num_vertices == 17 * 17 and g.num_cells == 2 * 16 * 16
    assert len(g.corners) == 4 and g.boundary.curve_types() == {"LineSegment": 4}
    assert set(np.unique(g.boundary_tags)) == {1, 2, 3, 4}
    # tags agree with Firedrake's convention: 1 is x = 0
    left = g.points[g.boundary_edges[g.boundary_tags == 1]]
    assert np.allclose(left[..., 0], 0.0)

    x, y = fd.SpatialCoordinate(mesh)
    P1 = fd.FunctionSpace(mesh, "CG", 1)
    u = fd.Function(P1).interpolate(x * y)          # a field that must follow the mesh
    monitor = fd.Function(P1).interpolate(1 + 20 * fd.exp(-((x - 0.3) ** 2 + (y - 0.6) ** 2) / 0.02))
    before = mesh.coordinates.dat.data_ro.copy()
    mover = UM2NMover(model=random_model(1, scale=10))
    res = move_mesh(mesh, monitor, mover=mover, graph=g)
    after = mesh.coordinates.dat.data_ro
    assert np.allclose(after, res.points)
    assert np.max(np.abs(after - before)) > 1e-3
    assert count_inverted(after, g.triangles) == 0
    # the domain is unchanged: total area 1, every cell positive (Firedrake's own measure)
    assert fd.assemble(fd.Constant(1.0) * fd.dx(domain=mesh)) == pytest.approx(1.0, abs=1e-12)
    vol = fd.Function(fd.FunctionSpace(mesh, "DG", 0)).interpolate(fd.CellVolume(mesh))
    assert vol.dat.data_ro.min() > 0
    # the field lives on the moved mesh: its values stay, its positions moved
    assert u.function_space().mesh() is mesh
    # a second move, from the moved mesh, keeps the reference boundary and validity
    res2 = move_mesh(mesh, monitor, mover=mover, graph=g)
    assert res2.boundary_deviation < 1e-12
    assert count_inverted(mesh.coordinates.dat.data_ro, g.triangles) == 0
    assert fd.assemble(fd.Constant(1.0) * fd.dx(domain=mesh)) == pytest.approx(1.0, abs=1e-12)


def test_gmsh_annulus_in_firedrake(mesh_file):
    import firedrake as fd

    from um2n.fem.adapter import mesh_graph

    mesh = fd.Mesh(str(mesh_file("annulus")))
    g = mesh_graph(mesh)
    assert g.boundary.curve_types() == {"CircleArc": 2}
    assert set(np.unique(g.boundary_tags)) == {1, 2}


@pytest.mark.mpi
def test_parallel_move_matches_serial(tmp_path):
    """Under mpiexec -n 2 the gathering adapter gives the serial result, on every rank."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import firedrake as fd

    from um2n.fem.adapter import mesh_graph, move_mesh
    from um2n.mover import UM2NMover
    from test_mover import random_model

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, str(root / "tests" / "mpi_move.py")],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    par = json.loads(proc.stdout.strip().splitlines()[-1])
    assert par["ranks"] == 2 and par["local_coordinates_match"]
    assert par["corners"] == 4 and par["tags"] == [1, 2, 3, 4]
    assert par["area"] == pytest.approx(1.0, abs=1e-12) and par["min_cell_volume"] > 0
    # serial run of the same move
    mesh = fd.UnitSquareMesh(12, 12)
    g = mesh_graph(mesh)
    x, y = fd.SpatialCoordinate(mesh)
    monitor = fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(1 + 20 * fd.exp(-((x - 0.3) ** 2 + (y - 0.6) ** 2) / 0.02))
    ser = move_mesh(mesh, monitor, mover=UM2NMover(model=random_model(1, scale=10)), graph=g)
    # match vertices by their original position (the global numberings differ)
    po, pm = np.array(par["original"]), np.array(par["moved"])
    a, b = np.lexsort(po.T[::-1]), np.lexsort(g.points.T[::-1])
    assert np.allclose(po[a], g.points[b], atol=1e-14)
    # float32 model, another vertex order: rounding differs (wild weights amplify it); mesh size is 1/12
    assert np.max(np.abs(pm[a] - ser.points[b])) < 1e-4
    assert np.max(np.abs(ser.points - g.points)) > 1e-3
