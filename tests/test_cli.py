"""The `um2n move` command: good input, the bad-input corpus, no overwriting, core isolation."""

import os
import subprocess
import sys
from pathlib import Path

import meshio
import numpy as np
import pytest

from um2n.cli import main

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "data" / "bad"
MONITOR = "1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2)/0.01)"


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.run([sys.executable, "-m", "um2n", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


# file, monitor arguments, expected message
BAD_CASES = [
    ("garbage.msh", ["--monitor", "1"], "garbage.msh: cannot read the mesh"),
    ("empty.vtu", ["--monitor", "1"], "empty.vtu: file is empty"),
    ("does_not_exist.msh", ["--monitor", "1"], "does_not_exist.msh: file not found"),
    ("quads.vtu", ["--monitor", "1"], "quads.vtu: has quad cells; um2n moves linear triangle meshes only"),
    ("mixed_tri_quad.vtu", ["--monitor", "1"], "mixed_tri_quad.vtu: has quad cells"),
    ("triangle6.vtu", ["--monitor", "1"], "triangle6.vtu: has triangle6 cells"),
    ("z_varies.vtu", ["--monitor", "1"], "z_varies.vtu: a surface mesh in 3D space (z varies by 0.3, no tetrahedra)"),
    ("tet_surface_only.vtu", ["--monitor", "1"], "tet_surface_only.vtu: a surface mesh in 3D space (z varies by 1"),
    ("tet_degenerate.vtu", ["--monitor", "1"], "tet_degenerate.vtu: 1 degenerate (zero-volume) tetrahedra"),
    ("tet_mixed_dimension.vtu", ["--monitor", "1"],
     "tet_mixed_dimension.vtu: a mixed-dimension mesh: 1 triangle cell(s) are not boundary faces"),
    ("tet_mixed_hex.vtu", ["--monitor", "1"], "tet_mixed_hex.vtu: a mixed mesh (tetrahedra and hexahedron cells)"),
    ("only_lines.vtu", ["--monitor", "1"], "only_lines.vtu: the mesh has no triangle cells"),
    ("nan_coords.vtu", ["--monitor", "1"], "nan_coords.vtu: 1 point(s) have NaN or infinite coordinates"),
    ("degenerate.vtu", ["--monitor", "1"], "degenerate.vtu: 1 degenerate (zero-area) triangle(s)"),
    ("monitor_nan.vtu", ["--monitor-field", "m"], "field 'm': 1 of 5 vertices have a NaN or infinite value"),
    ("monitor_negative.vtu", ["--monitor-field", "m"],
     "field 'm': 1 of 5 vertices have a value <= 0 (min -2); a monitor must be positive everywhere"),
    ("monitor_zero.vtu", ["--monitor-field", "m"], "field 'm': 5 of 5 vertices have a value <= 0 (min 0)"),
    ("monitor_vector.vtu", ["--monitor-field", "m"], "field 'm' has 2 components; a monitor is scalar"),
    ("good_square.vtu", ["--monitor-field", "rho"], "unknown point field 'rho' (available: m)"),
    ("good_square.vtu", ["--monitor", "x - 2"],
     "monitor expression 'x - 2' on good_square.vtu: 5 of 5 vertices have a value <= 0 (min -2); "
     "a monitor must be positive everywhere (e.g. add 3: '3 + x - 2')"),
    ("good_square.vtu", ["--monitor", "x"],
     "monitor expression 'x' on good_square.vtu: 2 of 5 vertices have a value <= 0 (min 0); "
     "a monitor must be positive everywhere (e.g. add 1: '1 + x')"),
    ("good_square.vtu", ["--monitor", "__import__('os')"], "function '__import__' is not allowed"),
    ("good_square.vtu", ["--monitor", "1 + z"], "uses z, but the mesh is 2D"),
    ("good_square.vtu", ["--monitor", "1", "--weights", "nope.safetensors"], "nope.safetensors: weights file not found"),
    ("good_square.vtu", ["--monitor", "1", "--weights", "garbage.msh"], "not a safetensors weights file"),
    ("good_square.vtu", ["--monitor", "1", "-o", "out.txt"], "out.txt: cannot write .txt"),
]


@pytest.mark.parametrize("fname,margs,msg", BAD_CASES, ids=[f"{c[0]}:{c[2][:25]}" for c in BAD_CASES])
def test_bad_input_gets_one_line_message(tmp_path, capsys, monkeypatch, fname, margs, msg):
    monkeypatch.chdir(BAD)
    out_args = [] if "-o" in margs else ["-o", str(tmp_path / "out.vtu")]
    rc = main(["move", fname, *out_args, *margs])
    out, err = capsys.readouterr()
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("um2n: error: ")
    assert msg in lines[0]
    assert not (tmp_path / "out.vtu").exists()


def test_bad_input_in_a_real_process(tmp_path):
    """The same, through the installed entry point: exit status 2, one line, no traceback."""
    proc = run_cli("move", BAD / "quads.vtu", "-o", tmp_path / "o.vtu", "--monitor", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"um2n: error: {BAD / 'quads.vtu'}: has quad cells; um2n moves linear triangle meshes only"


def test_monitor_reaching_zero_is_refused(mesh_file, tmp_path):
    """``um2n move MESH --monitor=x`` (x = 0 on the left edge): exit status 2, one line naming
    the monitor, the vertices at fault and a fix; no output written."""
    out = tmp_path / "o.msh"
    proc = run_cli("move", mesh_file("unit_square"), "-o", out, "--monitor=x")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("um2n: error: monitor expression 'x' on ")
    assert "vertices have a value <= 0 (min " in lines[0]
    assert lines[0].endswith("a monitor must be positive everywhere (e.g. add 1: '1 + x')")
    assert not out.exists()


def test_corpus_has_at_least_ten_bad_files():
    bad_files = {c[0] for c in BAD_CASES if c[0] != "good_square.vtu"}
    assert len(bad_files) >= 10
    assert all((BAD / f).exists() for f in bad_files if f != "does_not_exist.msh")


@pytest.mark.parametrize("suffix", [".msh", ".vtu"])
def test_move_writes_mesh_with_tags_and_prints_quality(mesh_file, tmp_path, suffix):
    src = tmp_path / f"sq{suffix}"
    m = meshio.read(mesh_file("polygon_with_hole"))
    meshio.write(src, m) if suffix == ".vtu" else src.write_bytes(Path(mesh_file("polygon_with_hole")).read_bytes())
    rc = main(["move", str(src), "--monitor", MONITOR])
    assert rc == 0
    out = tmp_path / f"sq_moved{suffix}"
    moved = meshio.read(out)
    orig = meshio.read(src)
    assert moved.points.shape == orig.points.shape
    assert [c.type for c in moved.cells] == [c.type for c in orig.cells]
    for key in ("gmsh:physical",):
        for a, b in zip(moved.cell_data[key], orig.cell_data[key]):
            assert np.array_equal(np.asarray(a).ravel(), np.asarray(b).ravel())
    # refuses to overwrite an existing output; replaces it with --overwrite
    assert main(["move", str(src), "--monitor", MONITOR]) == 2
    assert main(["move", str(src), "--monitor", MONITOR, "--overwrite"]) == 0


def test_move_with_several_passes(mesh_file, tmp_path):
    """``--passes 3``: the report says how many passes were tried and kept (a pass is kept
    only if it lowers the equidistribution CV; on this ring all three are); a pass count
    below 1 is refused in one line, and nothing is written."""
    import json

    ring = "1 + 5*exp(-((sqrt((x-0.5)**2+(y-0.5)**2)-0.25)**2)/0.002)"
    out = tmp_path / "p3.msh"
    proc = run_cli("move", mesh_file("unit_square", lc=0.02), "-o", out, "--monitor", ring, "--passes", 3, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["passes"] == 3 and report["passes_kept"] == 3
    assert report["safeguard"]["inverted_after"] == 0 and out.exists()
    out = tmp_path / "p0.msh"
    proc = run_cli("move", mesh_file("unit_square"), "-o", out, "--monitor", MONITOR, "--passes", 0)
    assert proc.returncode == 2 and proc.stderr.strip() == "um2n: error: --passes must be at least 1, got 0"
    assert not out.exists()


def test_move_output_text(mesh_file, tmp_path):
    proc = run_cli("move", mesh_file("unit_square"), "-o", tmp_path / "o.msh", "--monitor", MONITOR)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "shipped pretrained weights" in out
    for row in ("inverted cells", "min angle", "max aspect ratio", "max/min area", "equidistribution CV"):
        assert row in out
    assert "before" in out and "after" in out


def test_never_replaces_input(mesh_file, tmp_path, capsys):
    src = tmp_path / "a.msh"
    src.write_bytes(Path(mesh_file("unit_square")).read_bytes())
    before = src.read_bytes()
    assert main(["move", str(src), "-o", str(src), "--monitor", "1", "--overwrite"]) == 2
    assert "would replace the input" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_help_explains():
    proc = run_cli("move", "--help")
    assert proc.returncode == 0
    assert "--monitor-field" in proc.stdout and "exp" in proc.stdout


CORE_ONLY = r"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'firedrake', 'petsc4py', 'pyop2', 'ufl', 'finat', 'FIAT', 'tsfc', 'mpi4py'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import um2n.mesh, um2n.model, um2n.mover, um2n.quality, um2n.io, um2n.monitor, um2n.safeguard, um2n.cli
from um2n.cli import main
raise SystemExit(main(['move', sys.argv[1], '-o', sys.argv[2], '--monitor', '1 + 5*x*x']))
"""


def test_core_runs_without_firedrake(mesh_file, tmp_path):
    """The mover core and `um2n move` import and run with Firedrake (and MPI) unimportable."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run([sys.executable, "-c", CORE_ONLY, str(mesh_file("annulus")), str(tmp_path / "o.vtu")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "o.vtu").exists()


@pytest.mark.parametrize("suffix", [".msh", ".vtu"])
def test_move_tetrahedral_mesh(tmp_path, suffix):
    """`um2n move` on a tetrahedral mesh (a box with a spherical hole, gmsh): the shipped 3D
    weights by default, every cell block and tag kept, 0 inverted tetrahedra, boundary
    vertices on their planes and sphere, and the 3D quality table."""
    pytest.importorskip("gmsh")
    from um2n.meshing import generate_solid_mesh
    from um2n.tetmesh import TetMeshGraph, signed_volumes

    msh = generate_solid_mesh("box_sphere_hole", tmp_path / "solid.msh", lc=0.15)
    src = tmp_path / f"solid_in{suffix}"
    if suffix == ".vtu":
        meshio.write(src, meshio.read(msh))
    else:
        src.write_bytes(msh.read_bytes())
    out = tmp_path / f"solid_out{suffix}"
    proc = run_cli("move", src, "-o", out, "--monitor", "1 + 10*exp(-((x-0.5)**2 + (y-0.5)**2 + (z-0.85)**2)/0.01)")
    assert proc.returncode == 0, proc.stderr
    assert "um2n-3d-v1" in proc.stdout and "tetrahedra" in proc.stdout
    for row in ("min dihedral", "max/min volume", "equidistribution CV"):
        assert row in proc.stdout
    orig, moved = meshio.read(src), meshio.read(out)
    assert [c.type for c in moved.cells] == [c.type for c in orig.cells]
    g = TetMeshGraph.from_meshio(orig)
    x = moved.points[g.vertex_map]
    assert (signed_volumes(x, g.tets) > 0).all()
    assert g.boundary.deviation(x) <= 1e-10
    assert np.abs(x - g.points).max() > 1e-3
