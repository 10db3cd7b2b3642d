"""The moving-mesh loop under ``mpiexec -n 2``: the swirl, the DFG cylinder and the run-up
moved continuously (ALE) by UM2N, and the swirl moved by Monge-Ampère, give the serial
results, and so does the 3D deformation test; swirl and Tohoku runs killed on 2 ranks
resume on 1; and what cannot run in
parallel, or a checkpoint of another mesh, says so on every rank instead of hanging."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.firedrake, pytest.mark.mpi]

ROOT = Path(__file__).resolve().parent.parent
#: a short swirl (25 steps, 3 moves after the 2 initial ones) on the coarse test mesh
SETTINGS = {"lc": 0.05, "dt": 2e-3, "T": 0.05, "loop.mover": "um2n", "loop.move_every": 10,
            "loop.checkpoint_every": 10, "loop.progress": False, "loop.snapshots": 0, "loop.write_vtk": False}


def _run(ranks: int, out: Path, *args: str, settings: dict | None = None, case: str = "swirl"
         ) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1",
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = ["mpiexec", "-n", str(ranks), sys.executable, str(ROOT / "tests" / "mpi_case.py"), case,
           json.dumps(settings or SETTINGS), str(out), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=out.parent)


def _result(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("serial")
    return _result(_run(1, out))


@pytest.mark.parametrize("network, rel", [
    # each rank runs the network on its own vertices: float32 products of other shapes (measured: 1.9e-7)
    ("distributed", 1e-6),
    # the gathered mesh, in a partition-independent numbering, on rank 0 (measured: 3e-15)
    ("gathered", 1e-9),
])
def test_ale_swirl_on_two_ranks_matches_serial(serial, tmp_path, network, rel):
    par = _result(_run(2, tmp_path, settings={**SETTINGS, "loop.parallel_network": network}))
    assert par["ranks"] == 2 and serial["ranks"] == 1
    assert par["summary"]["vertices"] == serial["summary"]["vertices"] == 513
    assert par["moves"] == serial["moves"] == 4
    assert par["max_inverted"] == serial["max_inverted"] == 0 and par["moves_rejected"] == 0
    assert par["summary"]["l2_error"] == pytest.approx(serial["summary"]["l2_error"], rel=rel)
    assert abs(par["last"]["mass_change"]) < 1e-12


def test_ale_cylinder_on_two_ranks_matches_serial(tmp_path):
    """DFG 2D-2 from rest, 10 steps of Navier-Stokes with a UM2N move (slowed by the Courant limit)."""
    settings = {"case": "2d-2", "T": 0.1, "loop.mover": "um2n", "loop.move_every": 5, "loop.progress": False,
                "loop.snapshots": 0, "loop.write_vtk": False}
    ser, par = (_result(_run(n, tmp_path / f"n{n}", settings=settings, case="cylinder")) for n in (1, 2))
    assert par["ranks"] == 2 and par["summary"]["vertices"] == ser["summary"]["vertices"] == 1060
    assert par["moves"] == ser["moves"] == 1 and par["max_inverted"] == ser["max_inverted"] == 0
    # the distributed network rounds its float32 sums in another order; c_L is still near 0 at
    # t = 0.1, so it is compared to the coefficients' scale, 1 (measured: 9e-8 on c_D, 4e-8 on c_L)
    for key in ("c_D", "c_L", "dp"):
        assert abs(par["last"][key] - ser["last"][key]) < 1e-6 * max(1.0, abs(ser["last"][key])), key


def test_run_killed_on_two_ranks_resumes_on_one(serial, tmp_path):
    part = _result(_run(2, tmp_path, "stop_after=15"))
    assert part["steps"] == 15 and not part["completed"]
    resumed = _result(_run(1, tmp_path, "resume"))
    assert resumed["resumed_from_step"] == 10 and resumed["completed"]
    assert resumed["moves"] == serial["moves"] and resumed["max_inverted"] == 0
    # the reloaded mesh numbers its nodes differently: the monitor's solves round differently,
    # and a float32 network input can round the other way (measured: 1.3e-7, as in serial)
    assert resumed["summary"]["l2_error"] == pytest.approx(serial["summary"]["l2_error"], rel=1e-6)


def test_ale_swirl_moved_by_monge_ampere_on_two_ranks_matches_serial(tmp_path):
    """Monge-Ampère in the loop: the solver on the distributed mesh, its monitor on a frozen
    copy of the same distribution (measured: 1.1e-15 relative)."""
    settings = {**SETTINGS, "loop.mover": "ma"}
    ser, par = (_result(_run(n, tmp_path / f"n{n}", settings=settings)) for n in (1, 2))
    assert par["ranks"] == 2 and par["moves"] == ser["moves"] == 4 and par["moves_rejected"] == 0
    assert par["max_inverted"] == ser["max_inverted"] == 0
    assert par["summary"]["l2_error"] == pytest.approx(ser["summary"]["l2_error"], rel=1e-6)


def test_what_is_serial_only_refuses_on_every_rank(tmp_path):
    import re

    for mover in ("um2n", "ma"):
        proc = _run(2, tmp_path / mover, settings={**SETTINGS, "loop.mover": mover, "loop.transfer": "conservative"})
        assert proc.returncode != 0
        # one error per rank, and no hang (the run's timeout)
        assert len(re.findall("supermesh transfer .* one MPI rank only", proc.stderr)) >= 2, proc.stderr[-2000:]


def test_checkpoint_of_another_mesh_is_refused_on_every_rank(tmp_path):
    """A run resumed with settings that build another mesh (here a finer one) stops with one
    error naming the checkpoint on every rank, instead of going on with the old mesh."""
    import re

    assert not _result(_run(2, tmp_path, "stop_after=10"))["completed"]
    proc = _run(2, tmp_path, "resume", settings={**SETTINGS, "lc": 0.04})
    assert proc.returncode != 0
    message = r"checkpoint\.h5: the checkpoint is of another mesh \(513 vertices, .*\) than the one these settings build"
    assert len(re.findall(message, proc.stderr)) >= 2, proc.stderr[-2000:]


def test_ale_runup_on_two_ranks_matches_serial(tmp_path):
    """The NTHMP run-up (wetting and drying, Newton) moved by UM2N with ALE, 0.5 s: the
    shoreline and the water volume on 2 ranks are the serial ones."""
    settings = {"T": 0.5, "loop.mover": "um2n", "loop.move_every": 10, "loop.progress": False,
                "loop.snapshots": 0, "loop.write_vtk": False}
    ser, par = (_result(_run(n, tmp_path / f"n{n}", settings=settings, case="runup")) for n in (1, 2))
    assert par["ranks"] == 2 and par["summary"]["vertices"] == ser["summary"]["vertices"] == 1262
    assert par["moves"] == ser["moves"] == 4 and par["max_inverted"] == ser["max_inverted"] == 0
    # measured: shoreline 6e-8 relative (the distributed network), volume 2e-16
    assert par["last"]["shore_x"] == pytest.approx(ser["last"]["shore_x"], rel=1e-6)
    assert par["last"]["volume"] == pytest.approx(ser["last"]["volume"], rel=1e-12)


def test_ale_3d_deformation_on_two_ranks_matches_serial(tmp_path):
    """The 3D deformation test, 20 steps on the tetrahedral cube moved by UM2N (the network on
    the gathered mesh) with ALE: the 2-rank run gives the serial error and keeps the mass;
    the distributed network, 2D only, refuses a tetrahedral mesh on every rank."""
    import re

    settings = {"T": 0.1, "loop.mover": "um2n", "loop.move_every": 5, "loop.progress": False,
                "loop.snapshots": 0, "loop.write_vtk": False}
    ser, par = (_result(_run(n, tmp_path / f"n{n}", settings=settings, case="deformation")) for n in (1, 2))
    assert par["ranks"] == 2 and par["summary"]["vertices"] == ser["summary"]["vertices"] == 884
    assert par["moves"] == ser["moves"] == 5 and par["max_inverted"] == ser["max_inverted"] == 0
    # a tetrahedron's quadrature points depend on the order of its vertices, which the
    # distributed mesh changes: the velocity and the exact solution are sampled at other
    # points (measured: 9e-5 relative; the mass, a polynomial, is exact)
    assert par["summary"]["l2_error"] == pytest.approx(ser["summary"]["l2_error"], rel=1e-3)
    assert abs(par["last"]["mass_change"]) < 1e-15
    proc = _run(2, tmp_path / "distributed", settings={**settings, "loop.parallel_network": "distributed"},
                case="deformation")
    assert proc.returncode != 0
    assert len(re.findall("the distributed network moves triangle meshes only", proc.stderr)) >= 2, proc.stderr[-2000:]


@pytest.mark.skipif(not __import__("um2n_simulations.tohoku_data", fromlist=["have_data"]).have_data(),
                    reason="Tohoku data not found (../shared/data/tohoku or UM2N_TOHOKU_DATA)")
def test_tohoku_moving_run_killed_on_two_ranks_resumes_on_one(tmp_path):
    """20 minutes of Tohoku (the rupture's 5 minutes included) moved by UM2N with ALE: killed
    after 15 steps on 2 ranks, resumed on 1 from the checkpoint of step 10, the 16 gauge
    series are the serial ones to 1e-4 m."""
    settings = {"T": 1200.0, "loop.mover": "um2n", "loop.move_every": 5, "loop.checkpoint_every": 10,
                "loop.progress": False, "loop.snapshots": 0, "loop.write_vtk": False}
    ser = _result(_run(1, tmp_path / "serial", "series", settings=settings, case="tohoku"))
    part = _result(_run(2, tmp_path / "killed", "stop_after=15", settings=settings, case="tohoku"))
    assert part["ranks"] == 2 and part["steps"] == 15 and not part["completed"]
    resumed = _result(_run(1, tmp_path / "killed", "resume", "series", settings=settings, case="tohoku"))
    assert resumed["resumed_from_step"] == 10 and resumed["completed"]
    assert resumed["moves"] == ser["moves"] >= 3 and resumed["max_inverted"] == ser["max_inverted"] == 0
    a, b = ser["diagnostics"], resumed["diagnostics"]
    assert [r["t"] for r in a] == [r["t"] for r in b] and len(a) == 21        # t = 0 and 20 steps
    gauges = [k for k in a[0] if k.startswith("eta_")]
    assert len(gauges) == 16
    worst = max(abs(ra[k] - rb[k]) for ra, rb in zip(a, b) for k in gauges)
    print("largest gauge difference (m):", worst)
    assert worst < 1e-4, worst
    assert max(abs(r[k]) for r in a for k in gauges) > 0.01      # the wave has reached some gauges
