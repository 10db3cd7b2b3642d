"""The moving-mesh loop's parts: the mover interface and its guard, the recorder, progress."""

import io

import numpy as np
import pytest


class _ShiftVertex:
    """A mover of our own: pushes one interior vertex across its neighbours (a tangle)."""

    name = "shift"
    moves_mesh = True

    def __init__(self, shift):
        self.shift = shift

    def move(self, mesh, monitor):
        from um2n.fem.movers import MoveInfo

        X = mesh.coordinates.dat.data
        centre = np.argmin(np.linalg.norm(X - 0.5, axis=1))
        X[centre] += self.shift
        return MoveInfo(details={"vertex": int(centre)})


class _Failing:
    name = "failing"
    moves_mesh = True

    def move(self, mesh, monitor):
        from um2n.errors import ConvergenceError

        mesh.coordinates.dat.data[:] *= 2.0            # half-way through, then gives up
        raise ConvergenceError("no convergence in 3 iterations")


@pytest.mark.firedrake
@pytest.mark.parametrize("mover, accepted, reason", [
    (_ShiftVertex((0.01, 0.0)), True, ""),
    (_ShiftVertex((0.4, 0.3)), False, "inverted elements"),
    (_Failing(), False, "no convergence"),
])
def test_guarded_move_undoes_failed_and_tangling_moves(mover, accepted, reason):
    import firedrake as fd

    from um2n.fem.movers import Mover, TangleGuard, guarded_move

    assert isinstance(mover, Mover)
    mesh = fd.UnitSquareMesh(8, 8)
    before = np.array(mesh.coordinates.dat.data_ro)
    guard = TangleGuard(mesh, before)
    info = guarded_move(mover, mesh, None, guard)
    assert info.accepted is accepted and reason in info.reason
    assert guard.inverted() == 0
    changed = not np.array_equal(mesh.coordinates.dat.data_ro, before)
    assert changed is accepted


@pytest.mark.firedrake
def test_static_and_named_movers():
    import firedrake as fd

    from um2n.errors import UM2NError
    from um2n.fem.movers import MongeAmpereMeshMover, StaticMover, UM2NMeshMover, make_mover

    mesh = fd.UnitSquareMesh(4, 4)
    xi = np.array(mesh.coordinates.dat.data_ro)
    assert isinstance(make_mover("none", mesh, xi), StaticMover)
    assert isinstance(make_mover("um2n", mesh, xi), UM2NMeshMover)
    assert isinstance(make_mover("ma", mesh, xi), MongeAmpereMeshMover)
    with pytest.raises(UM2NError, match="mover must be one of um2n, ma, none, not 'magic'"):
        make_mover("magic", mesh, xi)


@pytest.mark.firedrake
def test_loop_moves_with_several_passes(tmp_path):
    """``[loop] passes = 2``: the swirl's network moves are two passes each (the second from
    where the first left the mesh), untangled; a pass count below 1 is refused by name."""
    import firedrake as fd

    from um2n.errors import UM2NError
    from um2n.fem.loop import LoopConfig, run_moving_mesh
    from um2n.fem.movers import make_mover
    from um2n_simulations.swirl import SwirlConfig, SwirlProblem

    with pytest.raises(UM2NError, match="passes must be a positive integer, got 0"):
        LoopConfig(passes=0)
    mesh = fd.UnitSquareMesh(4, 4)
    assert make_mover("um2n", mesh, np.array(mesh.coordinates.dat.data_ro), passes=2).network.passes == 2
    runs = {}
    for passes in (1, 2):
        cfg = SwirlConfig(dt=1e-3, T=0.004, loop=LoopConfig(output_dir=str(tmp_path / str(passes)), move_every=2,
                                                           progress=False, snapshots=0, write_vtk=False, passes=passes))
        res = run_moving_mesh(lambda m: SwirlProblem(m, cfg), lambda: fd.UnitSquareMesh(16, 16), cfg.loop)
        assert res.completed and res.max_inverted == 0 and res.moves_rejected == 0
        runs[passes] = np.array(res.mesh.coordinates.dat.data_ro)
    assert np.abs(runs[2] - runs[1]).max() > 1e-4          # the second pass moved the mesh on

@pytest.mark.firedrake
def test_monitor_evaluation_inside_and_outside_the_mesh():
    """A P1 field is exact at points in the mesh (a linear field: to round-off); a point
    outside every cell takes the value at the nearest vertex."""
    import firedrake as fd

    from um2n.fem.sampling import evaluate_at

    mesh = fd.UnitSquareMesh(8, 8)
    x, y = fd.SpatialCoordinate(mesh)
    f = fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(1 + x + 2 * y)
    points = np.array([[0.3, 0.7], [0.51, 0.02], [1.0, 1.0], [1.4, 0.5], [-0.3, -0.2]])
    values = evaluate_at(f, points)
    assert np.allclose(values[:3], 1 + points[:3, 0] + 2 * points[:3, 1], atol=1e-13)
    assert values[3] == pytest.approx(1 + 1.0 + 2 * 0.5) and values[4] == pytest.approx(1.0)


@pytest.mark.firedrake
def test_loop_with_a_mover_of_ones_own_rejects_its_tangles(tmp_path, capsys):
    """Any Mover plugs into the loop; a tangling move is counted as rejected, never used, and
    its reason is counted and said on stderr, and kept in the summary."""
    import json

    from um2n.fem.loop import LoopConfig, run_moving_mesh
    from um2n_simulations.swirl import SwirlConfig, SwirlProblem

    import firedrake as fd

    cfg = SwirlConfig(dt=1e-3, T=0.006, loop=LoopConfig(output_dir=str(tmp_path), move_every=2, progress=False,
                                                       snapshots=0, write_vtk=False))
    res = run_moving_mesh(lambda mesh: SwirlProblem(mesh, cfg), lambda: fd.UnitSquareMesh(10, 10), cfg.loop,
                          mover=_ShiftVertex((0.3, 0.2)))
    assert res.completed and res.steps == 6
    assert res.moves == 0 and res.moves_rejected == 2 and res.max_inverted == 0
    assert [r["moved"] for r in res.diagnostics] == [0] * 7
    assert (tmp_path / "summary.json").exists() and (tmp_path / "checkpoint.h5").exists()
    reason = "the moved mesh would have 3 inverted elements"
    assert res.rejections == {reason: 2}
    err = capsys.readouterr().err
    assert f"step 2: move rejected ({reason})" in err and f"step 4: move rejected ({reason})" in err
    assert json.loads((tmp_path / "summary.json").read_text())["rejections"] == {reason: 2}


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from um2n.io import atomic_path

    target = tmp_path / "data.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]
    with atomic_path(target) as tmp:
        open(tmp, "w").write("new")
    assert target.read_text() == "new"


def test_progress_writes_a_few_lines_when_redirected():
    from um2n.progress import progress

    out = io.StringIO()
    assert list(progress(range(1000), "run", stream=out, unit="step")) == list(range(1000))
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in out.getvalue()
    assert lines[0].startswith("run: 100/1000 step (10 %)") and lines[-1].startswith("run: 1000/1000 step (100 %)")
    silent = io.StringIO()
    assert sum(progress(range(5), "x", enabled=False, stream=silent)) == 10 and silent.getvalue() == ""
