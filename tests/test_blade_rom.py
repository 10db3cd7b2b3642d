"""Blade ROM (POD + ECM + Gappy-POD indicator + enrichment) and the mover study.

The numbers quoted in comments were measured on this machine (2 cores, shared) with the
default ``BladeROMConfig`` (HF: 5280 dofs, 3732 points, 40 steps; 4 training loads,
3 unseen loads)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake


# ---------------------------------------------------------------------- the algebra alone
def test_pod_gram_pod_and_gram_schmidt_agree_with_the_svd():
    from simulations.blade.rom import GramPOD, gram_schmidt_append, pod, projection_error

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)) @ np.diag(10.0 ** -np.arange(8)) @ rng.normal(size=(8, 40))
    for tol in (1e-2, 1e-4):
        Phi, s = pod(X, tol)
        assert projection_error(Phi, X) <= tol
        assert projection_error(Phi[:, :-1], X) > tol            # the least such r
        g = GramPOD(X[:, :30])
        for j in range(30, 40):
            g.append(X[:, j])
        Pg, sg = g.modes(tol)
        assert Pg.shape == Phi.shape
        np.testing.assert_allclose(np.abs(Pg.T @ Phi), np.eye(Phi.shape[1]), atol=1e-6)
    Phi2, added = gram_schmidt_append(Phi, X[:, 0] + rng.normal(size=300))
    assert added and np.abs(Phi2.T @ Phi2 - np.eye(Phi2.shape[1])).max() < 1e-12
    assert not gram_schmidt_append(Phi2, Phi2 @ rng.normal(size=Phi2.shape[1]))[1]


def test_nnomp_integrates_to_the_tolerance_with_positive_weights():
    from simulations.blade.rom import nnomp

    rng = np.random.default_rng(1)
    N = 2000
    x = np.sort(rng.uniform(0, 1, N))
    w = np.gradient(x)
    G = np.stack([w * np.cos(k * np.pi * x) for k in range(12)])     # smooth integrands
    for tol in (1e-3, 1e-6):
        c = nnomp(G, tol)
        assert np.all(c.weights > 0) and len(c.points) <= 13
        b = G.sum(axis=1)
        assert np.linalg.norm(G[:, c.points] @ c.weights - b) <= tol * np.linalg.norm(b)
    warm = nnomp(G, 1e-6, initial=c.points)
    assert warm.iterations == 0 and np.array_equal(warm.points, c.points)


def test_gappy_recovers_a_field_in_its_span():
    from simulations.blade.rom import Gappy

    rng = np.random.default_rng(2)
    Psi = np.linalg.qr(rng.normal(size=(500, 5)))[0]
    rows = rng.choice(500, 40, replace=False)
    g = Gappy(Psi, rows)
    f = Psi @ rng.normal(size=5)
    np.testing.assert_allclose(g.reconstruct(f[rows]), f, atol=1e-12)
    assert g.residual(f[rows]) < 1e-12
    assert g.residual(rng.normal(size=40)) > 0.5                     # a field far from the span
    assert g.residual(np.zeros(40), floor=1e-7) == 0.0


# ---------------------------------------------------------------------- the study
@pytest.fixture(scope="module")
def study(tmp_path_factory):
    import time

    from simulations.blade.rom_case import BladeROMCase, BladeROMConfig, write_outputs

    cfg = BladeROMConfig(progress=False, vtk=True)
    case = BladeROMCase(cfg)
    t0 = time.perf_counter()
    summary = case.run()
    out = tmp_path_factory.mktemp("blade_rom")
    write_outputs(case, summary, out, vtk=True)
    return case, summary, out, time.perf_counter() - t0


@pytest.mark.slow
def test_offline_pod_and_cubature_meet_their_tolerances(study):
    from simulations.blade.rom import ecm_matrix, nnomp, projection_error

    case, summary, _, _ = study
    rom, cfg = case.rom, case.cfg.rom
    off = summary["offline"]
    # POD reproduces the training displacements to the tolerance
    assert projection_error(rom.modes, case.training.u.T) <= cfg.pod_tol          # measured 9.2e-5 (tol 1e-4)
    assert 5 <= off["modes"] <= 30                                                # 12
    # ECM: positive weights, far fewer points than N, the fitted matrix to the tolerance
    assert np.all(rom.ecm.weights > 0)
    assert off["ecm_points"] < 0.05 * rom.N                                       # 89 of 3732
    assert rom.ecm.residual <= cfg.ecm_tol
    # on the uncompressed training internal forces (all 160 snapshots, blocks normalised):
    # the stress compression and the block weighting cost a factor of about 3.5
    err = rom.cubature_error()
    assert err["stacked"] <= 5 * cfg.ecm_tol, err                                 # 3.5e-3
    assert err["max_snapshot"] < 0.05, err                                        # 1.4e-2 .. 2.0e-2
    # NNOMP on the uncompressed stack meets the tolerance exactly (every 4th snapshot, for time)
    E = (rom.B @ rom.modes).reshape(rom.N, 4, -1)
    G = ecm_matrix(E, case.training.stress[::4], rom.w)
    c = nnomp(G, cfg.ecm_tol)
    b = G.sum(axis=1)
    assert np.all(c.weights > 0) and len(c.points) < 0.1 * rom.N
    assert np.linalg.norm(G[:, c.points] @ c.weights - b) <= cfg.ecm_tol * np.linalg.norm(b)


@pytest.mark.slow
def test_rom_with_enrichment_is_accurate_on_unseen_loads(study):
    _, summary, _, _ = study
    loads = summary["loads"]
    assert len(loads) >= 3
    for r in loads:
        enr, plain = r["enrichment"], r["no_enrichment"]
        assert enr["error_u_cycle"] <= 0.01, enr["error_u_cycle"]                 # 0.31 %, 0.31 %, 0.70 %
        assert plain["error_u_cycle"] > 2 * enr["error_u_cycle"]                   # 2.5 - 3.6 % without
        assert 1 <= enr["enrichments"] <= 6                                       # 3 each
        assert enr["modes_end"] == summary["offline"]["modes"] + enr["enrichments"]


@pytest.mark.slow
def test_online_speedup(study):
    """The hyper-reduced online phase is >= 10x faster than HF; with enrichment it is not.

    Measured (HF cycle / ROM online, same load, same run): 26 - 37x without enrichment,
    2.0 - 3.0x with enrichment (3 enrichments of 40 steps, each an HF step plus a rebuild of
    the ECM and the Gappy bases, ~0.9 s, about 6 HF steps each). The acceptance criterion
    of 10x *with enrichment* is not met; see benchmarks/results/blade_rom.json.
    """
    _, summary, _, _ = study
    for r in summary["loads"]:
        assert r["hf_dofs"] >= 5000
        assert r["no_enrichment"]["speedup"] >= 10, r["no_enrichment"]["speedup"]
        enr = r["enrichment"]
        assert enr["speedup"] > 1.2, enr["speedup"]
        # the enrichments are what costs: without them the online time is a small part
        assert enr["online_seconds"] - enr["enrichment_seconds"] < 0.3 * enr["online_seconds"]


@pytest.mark.slow
def test_indicator_tracks_the_plastic_strain_error(study):
    """Spearman over all steps of the 3 unseen loads, ROM without enrichment, indicator > 0.

    Against the Gappy-POD p error it is 0.96 (110 pairs). Against the displacement error it
    is negative (-0.72): within a cycle the indicator falls as the plastic zone settles
    while the displacement error grows towards the unloaded end.
    """
    _, summary, _, _ = study
    sp = summary["spearman"]
    assert sp["pairs"] >= 60
    assert sp["indicator_vs_error_p"] >= 0.8, sp
    assert sp["indicator_vs_error_u"] < 0.8, sp        # honest: the displacement error is not tracked


@pytest.mark.slow
def test_enrichment_happens_exactly_when_the_indicator_exceeds_the_tolerance(study):
    case, summary, out, _ = study
    tol = case.cfg.rom.indicator_tol
    rows = list(csv.DictReader(open(out / "steps.csv")))
    assert len(rows) == 2 * sum(len(r["enrichment"]["steps"]) for r in summary["loads"])
    n_enriched = 0
    for row in rows:
        exceeds = float(row["indicator"]) > tol
        assert int(row["indicator_exceeds_tol"]) == int(exceeds)
        if row["variant"] == "enrichment":
            assert int(row["enriched"]) == int(exceeds)
            n_enriched += int(row["enriched"])
        else:
            assert int(row["enriched"]) == 0
    assert n_enriched >= 3
    for name in ("summary.json", "indicator_vs_error.png", "indicator_history.png", "load0/blade_rom.pvd"):
        assert (out / name).exists(), name


# ---------------------------------------------------------------------- the mover
@pytest.mark.slow
def test_mover_study_at_equal_dofs():
    """Static coarse vs UM2N-adapted coarse (same dofs) vs a fine reference.

    The shipped weights barely equidistribute this monitor on the blade (coefficient of
    variation 0.50 -> 0.49) and the gain is small and mixed: measured at lc = 2 (1536 dofs)
    against lc = 0.5 (18926 dofs), end-of-cycle displacement error 3.6e-3 -> 3.1e-3 and
    max-p error 5.7 % -> 5.3 %, but the displacement error at the end of the hold is worse,
    2.7e-3 -> 3.5e-3.
    """
    from simulations.blade.adapt import AdaptConfig, mover_study
    from simulations.blade.blade import BladeConfig
    from simulations.blade.loading import LoadCycle
    from simulations.blade.rom_case import BladeROMConfig, suction_side_load

    rc = BladeROMConfig()
    cfg = BladeConfig(lc=2.0, lc_hole=1.0, hot_spot_width=rc.hot_spot_width, cycle=LoadCycle(dt=2.0))
    train = [suction_side_load(y, A, rc.depth) for y, A in rc.train]
    r = mover_study(cfg, train, suction_side_load(15.0, 230.0, rc.depth), lc_fine=0.5,
                    acfg=AdaptConfig(kind="hessian", strength=3.0, power=0.5))
    assert r["adapt"]["tangled"] == 0 and r["adapt"]["min_area_ratio"] > 0.3
    assert r["static"]["dofs"] == r["adapted"]["dofs"] and r["fine"]["dofs"] > 10 * r["static"]["dofs"]
    assert r["adapt"]["equidistribution_cv_after"] < r["adapt"]["equidistribution_cv_before"]
    assert 1.05 < r["gain_err_u_end"] < 1.4, r["gain_err_u_end"]              # 1.16
    assert 1.02 < r["gain_err_max_p_end"] < 1.3, r["gain_err_max_p_end"]      # 1.08
    assert 0.6 < r["gain_err_u_hold"] < 0.95, r["gain_err_u_hold"]            # 0.78: worse at peak load
