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


def test_unknown_case_is_rejected():
    from um2n_simulations.cylinder import CylinderConfig, CylinderFlow

    import firedrake as fd

    with pytest.raises(ValueError, match="case must be one of"):
        CylinderFlow(fd.UnitSquareMesh(2, 2), CylinderConfig(case="2d-9"))
