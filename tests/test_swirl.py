"""Swirl advection through the shared moving-mesh loop: accuracy, tangling, restart."""

import csv

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

#: ||q_h(T) - q_0||_L2 of DG1/SSPRK3 on the static lc = 0.05 gmsh mesh (513 vertices) with
#: dt = 2e-3, measured with Firedrake 2026.10.0 (0.098752); a change of more than 2 % means
#: the discretisation, the mesh or the exact solution changed.
STATIC_COARSE_ERROR = 0.098752


def _cfg(tmp_path, mover, **kw):
    from um2n_simulations.swirl import SwirlConfig
    from um2n.fem.loop import LoopConfig

    loop = dict(mover=mover, output_dir=str(tmp_path / mover), progress=False, snapshots=0, write_vtk=False)
    loop.update(kw.pop("loop", {}))
    return SwirlConfig(lc=0.05, dt=2e-3, **kw, loop=LoopConfig(**loop))


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_static_coarse_error_regression(tmp_path):
    from um2n_simulations.swirl import run_swirl

    res = run_swirl(_cfg(tmp_path, "none"))
    assert res.summary["vertices"] == 513
    assert res.summary["l2_error"] == pytest.approx(STATIC_COARSE_ERROR, rel=0.02)
    assert abs(res.summary["mass_change"]) < 1e-12
    assert res.moves == 0


@pytest.mark.parametrize("mover", ["um2n", "ma"])
def test_moving_mesh_run_never_tangles_and_keeps_mass(tmp_path, mover):
    """Half the swirl (the ring at its most stretched) with a move every 10 steps."""
    from um2n_simulations.swirl import run_swirl

    res = run_swirl(_cfg(tmp_path, mover, T=0.5 if mover == "um2n" else 0.2))
    rows = _rows(tmp_path / mover / "diagnostics.csv")
    assert len(rows) == res.steps
    assert res.moves >= res.steps // 10 - 1 - res.moves_rejected and res.moves > 0
    assert all(int(r["inverted"]) == 0 for r in rows) and res.max_inverted == 0
    # the conservative transfer keeps the tracer mass across every move
    assert max(abs(float(r["mass_change"])) for r in rows) < 1e-12
    assert np.isfinite(res.summary["l2_error"])


def test_killed_run_resumes_to_the_same_fields(tmp_path):
    from um2n_simulations.swirl import run_swirl
    from um2n.fem.transfer import _dof_keys, _match

    common = dict(T=0.04, loop={"move_every": 5, "checkpoint_every": 5})
    full = run_swirl(_cfg(tmp_path / "a", "um2n", **common))
    part = run_swirl(_cfg(tmp_path / "b", "um2n", **common), stop_after=12)   # "killed" after step 12
    assert part.steps == 12
    resumed = run_swirl(_cfg(tmp_path / "b", "um2n", **common), resume=True)
    assert resumed.resumed_from_step == 10 and resumed.steps == 10         # from the step-10 checkpoint
    qa, qb = full.problem.q, resumed.problem.q
    # The reloaded mesh numbers its vertices differently, and the network sums its float32
    # messages in vertex order: moved positions agree to ~1e-7, not bit for bit. Match
    # nodes by position and cell, then compare.
    perm = _match(_dof_keys(qb.function_space()), _dof_keys(qa.function_space()), "nodes", tol=1e-6)
    assert np.abs(qb.dat.data_ro[perm] - qa.dat.data_ro).max() < 1e-5
    assert resumed.moves == full.moves
    assert resumed.summary["l2_error"] == pytest.approx(full.summary["l2_error"], rel=1e-6)
    rows = _rows(tmp_path / "b" / "um2n" / "diagnostics.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
