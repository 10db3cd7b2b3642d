"""The shipped v2 and v3 weights against Monge-Ampère on a small held-out subset: the first three
cases of ``benchmarks/um2n_vs_ma.py``'s held-out set (a unit square, a convex and a
non-convex polygon; seed and mesh sizes training never used), Helmholtz error on the moved
meshes against the exact solution."""

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

CASES = (0, 1, 2)


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    from um2n.fem.heldout import case_mesh, held_out_config, helmholtz_error
    from um2n.fem.monge_ampere import MongeAmpereMover
    from um2n.mover import UM2NMover
    from um2n.quality import count_inverted

    cfg = held_out_config()
    work = tmp_path_factory.mktemp("heldout")
    movers = {name: UM2NMover(weights=name) for name in ("um2n-v1", "um2n-v2", "um2n-v3")}
    rows = []
    for i in CASES:
        _, mesh, graph, sources, monitor, m0 = case_mesh(cfg, i, work)
        xi = np.array(mesh.coordinates.dat.data_ro)
        e0 = helmholtz_error(mesh, sources)
        row = {"case": i, "vertices": graph.num_vertices}
        MongeAmpereMover(mesh, monitor, rtol=cfg.ma_rtol, maxiter=cfg.ma_maxiter, graph=graph).move()
        row["ma"] = 1 - helmholtz_error(mesh, sources) / e0
        row["ma_inverted"] = count_inverted(mesh.coordinates.dat.data_ro, graph.triangles)
        for name, mover in movers.items():
            out = mover.move(graph, m0)
            mesh.coordinates.dat.data[:] = out.points
            row[name] = 1 - helmholtz_error(mesh, sources) / e0
            row[f"{name}_inverted"] = count_inverted(out.points, graph.triangles)
        mesh.coordinates.dat.data[:] = xi
        rows.append(row)
    return rows


#: measured error reductions on the subset (benchmarks/results/um2n_vs_ma.json, cases 0-2):
#: Monge-Ampere, um2n-v1, um2n-v2 on each case; um2n-v3 from benchmarks/results/um2n_vs_ma_v3.json
MEASURED = {"ma": [0.256, 0.229, 0.318], "um2n-v1": [0.197, 0.221, 0.305], "um2n-v2": [0.230, 0.194, 0.351],
            "um2n-v3": [0.230, 0.228, 0.314]}
WEIGHTS = ("um2n-v1", "um2n-v2", "um2n-v3")


def _medians(subset):
    return {k: float(np.median([r[k] for r in subset])) for k in ("ma", *WEIGHTS)}


def test_error_reductions_on_the_held_out_subset(subset):
    """The measured error reductions of MA, v1, v2 and v3 on the subset, 0 tangled elements,
    v2's and v3's medians above v1's, and no case where v2 or v3 is worse than the original mesh
    by 5 %."""
    for key, values in MEASURED.items():
        assert [r[key] for r in subset] == pytest.approx(values, abs=0.01), (key, subset)
    assert all(r[f"{w}_inverted"] == 0 for w in WEIGHTS for r in subset)
    assert all(r["ma_inverted"] == 0 for r in subset)
    m = _medians(subset)
    assert m["um2n-v2"] > m["um2n-v1"] and m["um2n-v3"] > m["um2n-v1"]
    assert all(r["um2n-v2"] > -0.05 and r["um2n-v3"] > -0.05 for r in subset), subset


@pytest.mark.xfail(strict=True, reason="criterion of the issue 'Beyond Monge-Ampere' not met: on these three "
                   "cases v2's median error reduction is 0.230 against Monge-Ampere's 0.256 (on all 40 held-out "
                   "cases it is 0.283 against 0.248); v3's is also 0.230 (0.294 on all 40)")
def test_v2_beats_monge_ampere_median_on_the_held_out_subset(subset):
    """The issue's criterion: the shipped weights' median error reduction (v2's or v3's) beats
    MA's median on the subset."""
    m = _medians(subset)
    assert m["um2n-v2"] == pytest.approx(0.230, abs=0.01) and m["ma"] == pytest.approx(0.256, abs=0.01)
    assert m["um2n-v3"] == pytest.approx(0.230, abs=0.01)
    assert max(m["um2n-v2"], m["um2n-v3"]) > m["ma"], {"median ER": m, "cases": subset}
