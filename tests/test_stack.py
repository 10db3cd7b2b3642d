"""The installed stack: Firedrake (serial and MPI), gmsh + meshio, the Dockerfile's release."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import meshio
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.firedrake
def test_poisson_p1_converges_at_order_two_serial():
    from um2n_simulations.poisson import convergence_study

    res = convergence_study([8, 16, 32])
    assert res["l2_errors"][-1] < 2e-3
    for r in res["rates"]:
        assert 1.9 <= r <= 2.1, res


@pytest.mark.firedrake
@pytest.mark.mpi
def test_poisson_p1_converges_at_order_two_mpi(tmp_path):
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    cmd = ["mpiexec", "-n", "2", sys.executable, "-m", "um2n", "simulate", "poisson",
           "--sizes", "8", "16", "32", "--json", "--output-dir", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["ranks"] == 2
    for r in res["rates"]:
        assert 1.9 <= r <= 2.1, res
    # a parallel ParaView file set: .pvd -> .pvtu -> one .vtu per rank
    assert (tmp_path / "out" / "poisson.pvd").exists()
    assert len(list((tmp_path / "out").rglob("*.vtu"))) == 2


@pytest.mark.parametrize("name", ["unit_square", "annulus", "polygon_with_hole", "dfg_cylinder"])
def test_gmsh_mesh_meshio_vtu_roundtrip(mesh_file, tmp_path, name):
    """A mesh made by gmsh from meshes/*.geo is read by meshio and survives a .vtu round trip."""
    mesh = meshio.read(mesh_file(name))
    tri = mesh.get_cells_type("triangle")
    assert len(tri) > 100
    vtu = tmp_path / f"{name}.vtu"
    meshio.write(vtu, mesh)
    back = meshio.read(vtu)
    assert np.array_equal(back.points, mesh.points)
    assert [c.type for c in back.cells] == [c.type for c in mesh.cells]
    for a, b in zip(back.cells, mesh.cells):
        assert np.array_equal(a.data, b.data)
    for key in mesh.cell_data:
        for a, b in zip(back.cell_data[key], mesh.cell_data[key]):
            assert np.array_equal(a, b)


def test_dockerfile_uses_the_installer_firedrake_release():
    versions = dict(line.split("=", 1) for line in (ROOT / "install/versions.env").read_text().splitlines()
                    if line and not line.startswith("#"))
    docker = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", docker, flags=re.M)
    assert froms, "Dockerfile has no FROM"
    assert froms[0] == f"firedrakeproject/firedrake-vanilla-default:{versions['FIREDRAKE_VERSION']}"
    assert f"torch=={versions['TORCH_VERSION']}" in docker


@pytest.mark.parametrize("name", ["unit_square", "annulus", "polygon_with_hole", "dfg_cylinder"])
def test_gmsh_size_parameter_is_applied(mesh_file, name):
    """Halving ``lc`` gives about 4 times the vertices (the .geo default does not win)."""
    coarse = len(meshio.read(mesh_file(name, lc=0.08)).points)
    fine = len(meshio.read(mesh_file(name, lc=0.04)).points)
    assert 2.5 < fine / coarse < 5.0, (coarse, fine)
