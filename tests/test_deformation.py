"""LeVeque's 3D deformation test on the shared moving-mesh loop: a tetrahedral mesh moved by
the 3D mover (ALE) against the static mesh of the same size, the tracer mass, tangling, the
ParaView and PNG output; and the ALE scheme on a prescribed 3D motion."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

#: ||q_h(T) - q_0||_L2 on the static gmsh cube at lc 0.12 (884 vertices), dt 0.005, measured
#: with Firedrake 2026.10.0 (0.0228230); a change of more than 2 % means the discretisation,
#: the mesh or the exact solution changed.
STATIC_ERROR = 0.0228230
#: the error reduction UM2N (3D weights, ALE, a move every 5 steps) must reach against the
#: static mesh (measured: 0.136, L2 error 0.019713)
MIN_ERROR_REDUCTION = 0.10
#: the mass of q0 = exp(-|x - x0|^2 / (2 sigma^2)), sigma = 0.06, 5.8 sigma from every face:
#: (2 pi sigma^2)^(3/2)
BLOB_MASS = (2 * math.pi * 0.06 ** 2) ** 1.5


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The whole test (T = 1.5) on the static cube and moved by UM2N, as one study of the
    runner behind ``um2n simulate deformation``."""
    from um2n.fem.loop import LoopConfig
    from um2n.fem.study import Variant, run_study
    from um2n_simulations.deformation import CASE, DeformationConfig

    out = tmp_path_factory.mktemp("deformation")
    cfg = DeformationConfig(loop=LoopConfig(move_every=5, min_cell_ratio=0.25, output_dir=str(out), progress=False,
                                            snapshots=2, output_every=150, checkpoint_every=10 ** 6))
    return run_study(CASE, cfg, [Variant("none", {"loop.mover": "none"}), Variant("um2n", {"loop.mover": "um2n"})],
                     output_dir=out)


def _rows(run: dict) -> list[dict]:
    with open(Path(run["output"]).parent / "diagnostics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_static_error_regression(study):
    r = study["runs"]["none"]
    assert r["summary"]["vertices"] == 884
    assert r["summary"]["l2_error"] == pytest.approx(STATIC_ERROR, rel=0.02)
    assert r["moves"] == 0


@pytest.mark.slow
def test_moved_mesh_beats_the_static_mesh_of_the_same_size(study):
    """Issue 18's criterion: lower error than the static mesh of the same size, 0 tangled
    elements at every step, the tracer mass kept to 1e-12 relative."""
    r = study["runs"]["um2n"]
    assert r["summary"]["vertices"] == study["runs"]["none"]["summary"]["vertices"]
    # 59 moves during the 300 steps and 2 before them (the mesh adapted to the initial blob)
    assert r["moves"] == 61 and r["moves_rejected"] == 0 and r["max_inverted"] == 0
    assert r["error_reduction_vs_none"] >= MIN_ERROR_REDUCTION, r["summary"]
    rows = _rows(r)
    assert [int(row["step"]) for row in rows] == list(range(0, 301))
    assert all(int(row["inverted"]) == 0 for row in rows)
    assert max(abs(float(row["mass_change"])) for row in rows) < 1e-12 * BLOB_MASS


@pytest.mark.slow
def test_paraview_series_and_sections(study):
    """The moving tetrahedral mesh goes to ParaView (a .vtu per output, the mesh as it was),
    and PNG sections through the blob's centre show it."""
    import pyvista

    out = Path(study["runs"]["um2n"]["output"]).parent
    vtus = sorted(out.glob("solution/*.vtu"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    assert len(vtus) == 3                                   # t = 0, 0.75 and 1.5
    first, last = pyvista.read(vtus[0]), pyvista.read(vtus[-1])
    assert set(first.celltypes) == {pyvista.CellType.TETRA} and "q" in first.point_data
    assert first.n_cells == last.n_cells and not np.allclose(first.points, last.points)   # the mesh moved
    pngs = sorted(out.glob("q_*.png"))
    assert [p.name for p in pngs] == ["q_000000.png", "q_000150.png", "q_000300.png"]


# ---------------------------------------------------------------------- the ALE scheme in 3D
def _cube_bump(X):
    """A smooth displacement that vanishes on the unit cube's faces."""
    s = np.sin(np.pi * X)
    return (s[:, :1] * s[:, 1:2] * s[:, 2:]) * np.column_stack(
        [np.sin(2 * np.pi * X[:, 1]), np.cos(np.pi * X[:, 2]), np.sin(np.pi * X[:, 0])])


class _Prescribed3D:
    """A mover of our own: the k-th move targets xi + eps * bump(xi) * sin(2 pi k / 5)."""

    name = "prescribed"
    moves_mesh = True

    def __init__(self, xi, eps):
        self.xi, self.eps, self.calls = np.array(xi), eps, 0

    def move(self, mesh, monitor):
        from um2n.fem.movers import MoveInfo

        self.calls += 1
        mesh.coordinates.dat.data[:] = self.xi + self.eps * math.sin(2 * math.pi * self.calls / 5) * _cube_bump(self.xi)
        return MoveInfo()


def _run_prescribed(tmp_path, speed, eps):
    import firedrake as fd

    from um2n.fem.loop import LoopConfig, run_moving_mesh
    from um2n_simulations.deformation import DeformationConfig, DeformationProblem

    cfg = DeformationConfig(dt=0.01, T=0.2, loop=LoopConfig(output_dir=str(tmp_path), move_every=4, progress=False,
                                                            snapshots=0, write_vtk=False, initial_moves=0,
                                                            checkpoint_every=10 ** 6))

    class Problem(DeformationProblem):
        def velocity_scale(self, t, stage_time):
            return speed * super().velocity_scale(t, stage_time)

    def make_problem(mesh):
        p = Problem(mesh, cfg)
        if speed == 0.0:
            p.q.assign(1.0)
            p.mass0 = fd.assemble(p.q * fd.dx)
        return p

    mesh = fd.UnitCubeMesh(5, 5, 5)
    mover = _Prescribed3D(mesh.coordinates.dat.data_ro, eps)
    res = run_moving_mesh(make_problem, lambda: mesh, cfg.loop, mover=mover)
    assert res.completed and res.moves == 4 and res.moves_rejected == 0 and res.max_inverted == 0
    mass = max(abs(r["mass_change"]) for r in res.diagnostics)
    assert mass < 1e-12 * res.problem.mass0
    return res


def test_ale_keeps_the_mass_on_a_moving_tetrahedral_mesh(tmp_path):
    """The blob advected by the deformation flow while the tetrahedral mesh follows a
    prescribed smooth motion: the tracer mass is kept to 1e-12 at every step."""
    res = _run_prescribed(tmp_path, 1.0, 0.06)
    assert res.problem.mass0 == pytest.approx(BLOB_MASS, rel=0.15)        # 


def test_ale_constant_state_defect_is_cubic_in_the_motion(tmp_path):
    """With no flow, a constant state changes only by the DGCL defect of the one-point
    geometry rule, which in 3D leaves the cubic term of a tetrahedron's volume: halving the
    motion divides the defect by about 8 (measured 4.6e-5 and 5.7e-6), where a rule exact only
    to first order would give 4. (In 2D the rule is exact: 1e-12, ``tests/test_ale.py``.)"""
    defects = [np.abs(_run_prescribed(tmp_path / str(eps), 0.0, eps).problem.q.dat.data_ro - 1.0).max()
               for eps in (0.06, 0.03)]
    assert defects[0] < 1e-4
    assert defects[0] / defects[1] > 6.5, defects


def test_killed_3d_run_resumes_to_the_same_fields(tmp_path):
    """A moving tetrahedral run killed mid-window and resumed from its checkpoint (mesh,
    reference, target and mesh velocity) gives the fields of the run never interrupted."""
    from um2n.fem.loop import LoopConfig
    from um2n.fem.transfer import _dof_keys, _match
    from um2n_simulations.deformation import CASE, DeformationConfig

    def cfg(out):
        return DeformationConfig(T=0.1, loop=LoopConfig(mover="um2n", move_every=5, checkpoint_every=5,
                                                        min_cell_ratio=0.25, output_dir=str(out), progress=False,
                                                        snapshots=0, write_vtk=False))

    full = CASE.run(cfg(tmp_path / "a"))
    part = CASE.run(cfg(tmp_path / "b"), stop_after=12)                 # "killed" after step 12
    assert part.steps == 12 and not part.completed
    resumed = CASE.run(cfg(tmp_path / "b"), resume=True)
    assert resumed.resumed_from_step == 10 and resumed.steps == 10 and resumed.moves == full.moves
    qa, qb = full.problem.q, resumed.problem.q
    # the reloaded mesh numbers its vertices differently (float32 sums in the network in
    # another order): match the nodes by position and cell
    perm = _match(_dof_keys(qb.function_space()), _dof_keys(qa.function_space()), "nodes", tol=1e-6)
    assert np.abs(qb.dat.data_ro[perm] - qa.dat.data_ro).max() < 1e-5
    assert resumed.summary["l2_error"] == pytest.approx(full.summary["l2_error"], rel=1e-6)


def test_a_blow_up_stops_with_an_error_naming_the_time_step(tmp_path):
    """A time step far above the explicit scheme's stability limit: the run stops with one
    clear error instead of going on with an exploding solution."""
    from um2n.errors import UM2NError
    from um2n.fem.loop import LoopConfig
    from um2n_simulations.deformation import CASE, DeformationConfig

    cfg = DeformationConfig(dt=0.05, T=1.5, loop=LoopConfig(mover="none", output_dir=str(tmp_path), progress=False,
                                                           snapshots=0, write_vtk=False))
    with pytest.raises(UM2NError, match=r"the time step dt = 0.05 is above the explicit scheme's stability limit"):
        CASE.run(cfg)
