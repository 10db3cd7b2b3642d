"""DFG flow past a cylinder (Schäfer & Turek 1996) with Taylor-Hood P2-P1."""

import pytest

pytestmark = pytest.mark.firedrake


@pytest.mark.parametrize("lc, lc_cyl", [(0.02, 0.004)])
def test_dfg_2d1_fine_static_mesh_within_reference_intervals(tmp_path, lc, lc_cyl):
    from um2n.fem.loop import LoopConfig
    from um2n_simulations.cylinder import CASE, CylinderConfig

    cfg = CylinderConfig(case="2d-1", lc=lc, lc_cyl=lc_cyl,
                         loop=LoopConfig(mover="none", output_dir=str(tmp_path), progress=False, snapshots=0))
    res = CASE.run(cfg)
    ref = res.extras["reference"]
    assert ref["c_D"]["inside"], ref          # [5.57, 5.59]
    assert ref["c_L"]["inside"], ref          # [0.0104, 0.0110]
    assert ref["dp"]["inside"], ref           # [0.1172, 0.1176]
    assert (tmp_path / "solution.pvd").exists() and (tmp_path / "summary.json").exists()


#: the cheapest static configuration inside all four DFG 2D-2 intervals in
#: ``benchmarks/results/dfg_convergence.json`` (README: the convergence table in dt and h)
#: about 3.5 minutes: a `make acceptance` run, which keeps `make test` under 20 minutes
@pytest.mark.slow
@pytest.mark.acceptance
@pytest.mark.parametrize("refine, dt, curved", [(0, 0.005, True)])
def test_dfg_2d2_inside_all_four_reference_intervals(tmp_path, refine, dt, curved):
    """From rest to T = 8, statistics over [6, 8]: c_D,max, c_L,max, St and Δp (at the lift
    maximum) inside the intervals of Schäfer & Turek (1996), and a saturated shedding (six
    lift maxima in the window, the largest lift over [7, 8] within 0.2 % of c_L,max)."""
    from um2n.fem.loop import LoopConfig
    from um2n_simulations.cylinder import CASE, CylinderConfig

    cfg = CylinderConfig(case="2d-2", refine=refine, dt=dt, curved=curved,
                         loop=LoopConfig(mover="none", output_dir=str(tmp_path), progress=False, snapshots=0,
                                         write_vtk=False, checkpoint_every=10 ** 6))
    res = CASE.run(cfg)
    ref, s = res.extras["reference"], res.summary
    for key in ("c_D_max", "c_L_max", "St", "dp"):
        assert ref[key]["inside"], (key, ref[key])
    assert s["lift_maxima"] == 6, s
    late = [r["c_L"] for r in res.diagnostics if r.get("t", 0) >= 7.0 and "c_L" in r]
    assert max(late) == pytest.approx(s["c_L_max"], rel=2e-3)       # the second second's lift as high


def test_curved_mesh_needs_a_static_run(tmp_path):
    from um2n.errors import UM2NError
    from um2n.fem.loop import LoopConfig
    from um2n_simulations.cylinder import CASE, CylinderConfig

    cfg = CylinderConfig(case="2d-2", curved=True, T=0.01, loop=LoopConfig(mover="um2n", output_dir=str(tmp_path)))
    with pytest.raises(UM2NError, match="curved = true needs mover 'none', not 'um2n'"):
        CASE.run(cfg)


@pytest.mark.parametrize("refine", [0, 1])
def test_curved_mesh_puts_the_cylinder_nodes_on_the_circle(refine):
    """Every P2 coordinate node on the cylinder lies on the circle; the straight mesh's edge
    midpoints lie inside it by r(1 - cos(pi/N)); the other nodes are unchanged."""
    import firedrake as fd
    import numpy as np

    from um2n_simulations.cylinder import CYLINDER, CylinderConfig, cylinder_mesh

    straight = cylinder_mesh(CylinderConfig(refine=refine))
    curved = cylinder_mesh(CylinderConfig(refine=refine, curved=True))
    V = curved.coordinates.function_space()
    # the straight mesh's P2 nodes, numbered as the curved mesh's (one topology)
    X0 = fd.Function(fd.VectorFunctionSpace(straight, "CG", 2)).interpolate(fd.SpatialCoordinate(straight))
    nodes = fd.DirichletBC(V, fd.Constant((0.0, 0.0)), CYLINDER).nodes
    radius = np.linalg.norm(curved.coordinates.dat.data_ro[nodes] - 0.2, axis=1)
    assert np.abs(radius - 0.05).max() < 1e-15
    before = np.linalg.norm(X0.dat.data_ro[nodes] - 0.2, axis=1)
    assert before.min() < 0.05 * (1 - 1e-4)               # the polygon's edge midpoints
    others = np.setdiff1d(np.arange(len(X0.dat.data_ro)), nodes)
    assert np.array_equal(curved.coordinates.dat.data_ro[others], X0.dat.data_ro[others])
    area = fd.assemble(fd.Constant(1.0) * fd.dx(domain=curved))
    exact = 2.2 * 0.41 - np.pi * 0.05 ** 2
    assert abs(area - exact) < 0.1 * abs(fd.assemble(fd.Constant(1.0) * fd.dx(domain=straight)) - exact)


def test_unknown_case_is_rejected():
    from um2n_simulations.cylinder import CylinderConfig, CylinderFlow

    import firedrake as fd

    with pytest.raises(ValueError, match="case must be one of"):
        CylinderFlow(fd.UnitSquareMesh(2, 2), CylinderConfig(case="2d-9"))
