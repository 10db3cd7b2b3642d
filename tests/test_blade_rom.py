"""Blade ROM (POD + ECM + Gappy-POD indicator + enrichment) and the mover study.

The numbers quoted in comments were measured on this machine (2 cores, shared) with the
default ``BladeROMConfig`` (HF on the mesh adapted to the 8 training hot spots, 40 steps;
4 unseen loads: 3 half-way between training positions, y = 11, 15, 19, and one outside the
training range, y = 26; the hierarchical indicator (the estimated displacement error over the
largest ROM displacement of the cycle) decides enrichment, tolerance target_error = 1 %; the
stress indicator is still recorded; the enriched ROM kept from one load to the next)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

ROOT = Path(__file__).resolve().parent.parent
#: what benchmarks/blade_rom.py measured (the README quotes it)
BENCHMARK = ROOT / "benchmarks" / "results" / "blade_rom.json"


# ---------------------------------------------------------------------- the algebra alone
def test_pod_gram_pod_and_gram_schmidt_agree_with_the_svd():
    from um2n_simulations.blade.pod import GramPOD, gram_schmidt_append, pod, projection_error

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
    # a rescaled POD from the same Gram matrix is the POD of the rescaled snapshots
    d = rng.uniform(0.5, 2.0, size=40)
    Pd, sd = g.modes(1e-4, scale=d)
    Pr, sr = pod(X * d, 1e-4)
    assert Pd.shape == Pr.shape
    np.testing.assert_allclose(sd[:Pr.shape[1]], sr[:Pr.shape[1]], rtol=1e-6)
    np.testing.assert_allclose(np.abs(Pd.T @ Pr), np.eye(Pr.shape[1]), atol=1e-6)


def test_nnomp_integrates_to_the_tolerance_with_positive_weights():
    from um2n_simulations.blade.ecm import nnomp

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


def test_warm_started_nnls_and_batched_nnomp():
    import scipy.optimize

    from um2n_simulations.blade.ecm import nnls_active_set, nnomp

    rng = np.random.default_rng(3)
    for _ in range(5):
        M, y = rng.normal(size=(60, 25)), rng.normal(size=60)
        ref = scipy.optimize.nnls(M, y)[0]
        A, c = M.T @ M, M.T @ y
        np.testing.assert_allclose(nnls_active_set(M, y, A, c), ref, atol=1e-10)
        # from any feasible start (the previous weights, new entries at 0)
        np.testing.assert_allclose(nnls_active_set(M, y, A, c, x0=rng.uniform(0, 1, 25)), ref, atol=1e-10)
    N = 2000
    x = np.sort(rng.uniform(0, 1, N))
    G = np.stack([np.gradient(x) * np.cos(k * np.pi * x) for k in range(12)])
    b = G.sum(axis=1)
    for batch in (1, 4):
        c = nnomp(G, 1e-6, batch=batch)
        assert np.all(c.weights > 0)
        assert np.linalg.norm(G[:, c.points] @ c.weights - b) <= 1e-6 * np.linalg.norm(b)


def test_factored_gappy_equals_the_full_basis():
    from um2n_simulations.blade.gappy import Gappy
    from um2n_simulations.blade.pod import GramPOD

    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 30))
    g = GramPOD(X)
    W, _ = g.coefficients(1e-6)
    rows = rng.choice(400, 50, replace=False)
    full, fact = Gappy(g.modes(1e-6)[0], rows), Gappy.from_snapshots(g.X, W, rows)
    v = X[rows, 0]
    np.testing.assert_allclose(fact.restricted, full.restricted, atol=1e-12)
    np.testing.assert_allclose(fact.reconstruct(v), full.reconstruct(v), atol=1e-10)
    np.testing.assert_allclose(fact.basis, full.basis, atol=1e-12)


def test_gappy_recovers_a_field_in_its_span():
    from um2n_simulations.blade.gappy import Gappy

    rng = np.random.default_rng(2)
    Psi = np.linalg.qr(rng.normal(size=(500, 5)))[0]
    rows = rng.choice(500, 40, replace=False)
    g = Gappy(Psi, rows)
    f = Psi @ rng.normal(size=5)
    np.testing.assert_allclose(g.reconstruct(f[rows]), f, atol=1e-12)
    assert g.residual(f[rows]) < 1e-12
    assert g.residual(rng.normal(size=40)) > 0.5                     # a field far from the span
    assert g.residual(np.zeros(40), floor=1e-7) == 0.0


# ---------------------------------------------------------------------- the blade outline
def test_the_outline_is_read_from_the_geo_file(tmp_path):
    """The suction side (where the hot spots sit) is the one of meshes/turbine_blade.geo: the
    outermost mesh vertices along the span lie on it (to the spline's deviation); a .geo
    without one of the outline's constants is an error naming the file and the constant."""
    import meshio

    from um2n.errors import MeshInputError
    from um2n.meshing import generate_mesh, geo_path
    from um2n_simulations.blade.blade import GEOMETRY, OUTLINE_CONSTANTS, geo_constants, suction_side_x

    x = meshio.read(generate_mesh(GEOMETRY, tmp_path / "blade.msh", lc=1.0)).points[:, :2]
    for y0 in (1.0, 6.0, 12.0, 18.0, 24.0, 30.0):
        band = x[np.abs(x[:, 1] - y0) < 0.5]
        xv, yv = band[np.argmax(band[:, 0])]
        assert abs(xv - suction_side_x(yv)) < 0.02, (y0, xv, suction_side_x(yv))
    text = geo_path(GEOMETRY).read_text()
    assert all(geo_constants(GEOMETRY, OUTLINE_CONSTANTS)[k] > 0 for k in OUTLINE_CONSTANTS)
    broken = tmp_path / "no_tau.geo"
    broken.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("tau")))
    with pytest.raises(MeshInputError, match=r"no_tau\.geo: constant 'tau'"):
        geo_constants(broken, OUTLINE_CONSTANTS)


# ---------------------------------------------------------------------- the study
@pytest.fixture(scope="module")
def study(tmp_path_factory):
    import time

    from um2n_simulations.blade.report import write_outputs
    from um2n_simulations.blade.rom_case import BladeROMStudy, BladeROMConfig

    cfg = BladeROMConfig(progress=False, vtk=True)
    case = BladeROMStudy(cfg)
    t0 = time.perf_counter()
    summary = case.run()
    out = tmp_path_factory.mktemp("blade_rom")
    write_outputs(case, summary, out, vtk=True)
    return case, summary, out, time.perf_counter() - t0


@pytest.mark.slow
def test_offline_pod_and_cubature_meet_their_tolerances(study):
    from um2n_simulations.blade.ecm import ecm_matrix, nnomp
    from um2n_simulations.blade.pod import projection_error

    case, summary, _, _ = study
    rom, cfg = case.rom, case.cfg.rom
    off = summary["offline"]
    # POD reproduces the training displacements to the tolerance
    assert projection_error(rom.modes, case.training.u.T) <= cfg.pod_tol          # tol 1e-4
    assert 5 <= off["modes"] <= 30                                                # 20
    # ECM: positive weights, far fewer points than N
    assert np.all(rom.ecm.weights > 0)
    assert off["ecm_points"] < 0.1 * rom.N                                        # 256
    # the cubature integrates the uncompressed training internal forces (all 160 snapshots,
    # one block G^s / |G^s|_F each) to the tolerance
    err = rom.cubature_error()
    assert err["stacked"] <= cfg.ecm_tol, err                                     # 6.8e-4 (tol 1e-3)
    assert abs(err["stacked"] - rom.ecm.training_error) <= 1e-8 * err["stacked"]  # what the fit checked
    assert err["max_snapshot"] < 0.01, err
    # NNOMP on the uncompressed stack meets the tolerance exactly (every 4th snapshot, for time)
    E = (rom.B @ rom.modes).reshape(rom.N, 4, -1)
    G = ecm_matrix(E, case.training.stress[::4], rom.w)
    c = nnomp(G, cfg.ecm_tol)
    b = G.sum(axis=1)
    assert np.all(c.weights > 0) and len(c.points) < 0.1 * rom.N
    assert np.linalg.norm(G[:, c.points] @ c.weights - b) <= cfg.ecm_tol * np.linalg.norm(b)


def _inside(case, r) -> bool:
    ys = [L.x_h[1] for L in case.train]
    return min(ys) <= r["load"]["x_h"][1] <= max(ys)


@pytest.mark.slow
def test_indicator_tolerance(study):
    """The hierarchical indicator is a relative displacement error, so its tolerance is the
    target error itself (1 %, no calibration): it separates the interior unseen loads (their
    largest indicator without enrichment is well under 1 %) from the extrapolated one. The
    leave-one-load-out calibration of the stress indicator still works (recomputed here on
    the same training data: the smallest stress indicator among steps whose error exceeds 1 %)."""
    from dataclasses import replace

    from um2n_simulations.blade.rom import calibrate_indicator_tol

    case, summary, _, _ = study
    tol = case.cfg.rom.indicator_tol
    assert case.cfg.rom.indicator == "hierarchical"
    assert summary["calibration"]["method"] == "target_error"
    assert tol == summary["calibration"]["indicator_tol"] == case.cfg.target_error == 0.01
    for r in summary["loads"]:
        eta = max(s["indicator"] for s in r["no_enrichment"]["steps"])
        if _inside(case, r):
            assert eta < 0.5 * tol, (r["load"], eta)                              # 0.0024, 0.0028, 0.0015
        else:
            assert eta > 5 * tol, (r["load"], eta)                                # 0.064 at y = 26
    cal = calibrate_indicator_tol(case.hf, case.training, case.train, replace(case.cfg.rom, indicator="stress"),
                                  case.M, case.cfg.target_error)
    assert len(cal["loads"]) == len(case.train) and cal["steps"] == 40 * len(case.train)
    assert cal["steps_over_target"] >= 10                                         # leave-one-out errors exceed 1 %
    assert 0.01 < cal["indicator_tol"] < 0.1, cal["indicator_tol"]                # 0.0335
    over = [L for L in cal["loads"] if L["error_u_cyclemax_max"] > 0.01]
    assert over and min(L["indicator_min"] for L in over) <= cal["indicator_tol"] + 1e-15


@pytest.mark.slow
def test_indicator_follows_the_error_when_the_load_is_removed(study):
    """Unloading (t > 30 s) on the interior loads: the hierarchical indicator (estimate over
    the largest ROM displacement so far) follows the error over the largest HF displacement so
    far, their ratio staying within [0.7, 2] and within 30 % of its value at the end of the hold
    (measured: 1.12 -> 1.14-1.36, 1.04 -> 0.91-1.02, 1.31 -> 1.39-1.52), whereas the stress misfit over the current stress norm rose by a
    factor 2.5 - 3.7 although the error had not changed; no enrichment."""
    case, summary, _, _ = study
    n = 0
    for r in summary["loads"]:
        if not _inside(case, r):
            continue
        n += 1
        st = r["no_enrichment"]["steps"]
        hold = [s for s in st if s["t"] <= 30.0][-1]
        down = [s for s in st if s["t"] > 30.0]
        r_hold = hold["indicator"] / hold["error_u_cyclemax"]
        for s in down:
            ratio = s["indicator"] / s["error_u_cyclemax"]
            assert 0.7 <= ratio <= 2.0, (r["load"], s["step"], ratio)
            assert abs(ratio / r_hold - 1) <= 0.3, (r["load"], s["step"], ratio, r_hold)
        assert max(s["indicator_stress_current"] for s in down) >= 2.0 * hold["indicator_stress_current"], r["load"]
        assert not any(s["enriched"] for s in r["enrichment"]["steps"])
    assert n == 3


@pytest.mark.slow
def test_rom_with_enrichment_is_accurate_on_unseen_loads(study):
    """The enriched ROM is one adaptive online phase over the 4 unseen loads, in order.

    Interior loads (y = 11, 15, 19): 0.10 - 0.18 % without enrichment, no enrichment (largest
    indicator 0.0028 against the tolerance 0.01). The load outside the training range
    (y = 26): 7.5 % without enrichment, 0.91 % with 2 enrichments (steps 0 and 9). After the
    first one the estimator underestimates the error (the remaining error lies mostly outside
    the richer space Z too): at steps 7 and 8 the error relative to the largest displacement
    reached 1.6 % and 2.3 % while the indicator was 0.0066 and 0.0090; step 9 enriched."""
    case, summary, _, _ = study
    loads = summary["loads"]
    assert len(loads) >= 4
    modes = summary["offline"]["modes"]
    for r in loads:
        enr, plain = r["enrichment"], r["no_enrichment"]
        assert enr["error_u_cycle"] <= 0.01, enr["error_u_cycle"]                 # 0.18, 0.10, 0.10, 0.91 %
        if _inside(case, r):
            assert plain["error_u_cycle"] <= 0.005, plain["error_u_cycle"]        # 0.18 %, 0.10 %, 0.10 %
            assert enr["enrichments"] == 0
        else:
            assert plain["error_u_cycle"] > 0.02, plain["error_u_cycle"]          # 7.5 %: enrichment is needed
            assert 1 <= enr["enrichments"] <= 10                                  # 2
            assert enr["error_u_cycle"] <= 0.2 * plain["error_u_cycle"]
        modes += enr["enrichments"]                                               # enrichments are kept
        assert enr["modes_end"] == modes
    assert sum(r["enrichment"]["enrichments"] for r in loads) >= 1


# ---------------------------------------------------------------------- the speed-up, as measured
# The online speed-up (HF cycle time / ROM online time, same load, same run) is a timing: it is
# measured by benchmarks/blade_rom.py on a quiet machine and recorded in
# benchmarks/results/blade_rom.json; these tests read that record (no timing here).
def _benchmark_loads() -> tuple[dict, dict]:
    b = json.loads(BENCHMARK.read_text())
    return b, {L["y_h"]: L for L in b["loads"]}


def test_recorded_speedups_are_the_quoted_ones():
    """The recorded speed-ups with enrichment: 17.1x, 17.4x and 20.7x on the interior loads
    (no enrichment), 2.3x on y = 26 (outside the training range, 2 enrichments), 6.9x overall
    (the sum of the HF times over the sum of the ROM online times, loads in order)."""
    b, loads = _benchmark_loads()
    ov = b["overall"]
    assert ov["speedup_enrichment"] == pytest.approx(
        sum(L["hf_seconds"] for L in b["loads"]) / sum(L["online_seconds_enrichment"] for L in b["loads"]), rel=1e-9)
    assert round(ov["speedup_enrichment"], 1) == 6.9
    assert [round(loads[y]["speedup_enrichment"], 1) for y in (11.0, 15.0, 19.0)] == [17.1, 17.4, 20.7]
    assert all(loads[y]["enrichments"] == 0 for y in (11.0, 15.0, 19.0))
    y26 = loads[26.0]
    assert round(y26["speedup_enrichment"], 1) == 2.3 and y26["speedup_enrichment"] < 10
    assert y26["enrichments"] == 2 and y26["enrichment_steps"] == [0, 9]
    assert y26["speedup_enrichment"] == pytest.approx(y26["hf_seconds"] / y26["online_seconds_enrichment"],
                                                      rel=1e-9)


@pytest.mark.xfail(strict=True, reason="the >= 10x criterion is not met: 2.3x on the unseen load outside the "
                                       "training range (y = 26: its 2 enrichments cost 0.58 s of 0.66 s online), "
                                       "6.9x overall (benchmarks/results/blade_rom.json)")
def test_speedup_criterion_at_least_10x_on_every_unseen_load():
    b, loads = _benchmark_loads()
    assert all(L["speedup_enrichment"] >= 10 for L in loads.values()), \
        {y: round(L["speedup_enrichment"], 1) for y, L in loads.items()}
    assert b["overall"]["speedup_enrichment"] >= 10, b["overall"]["speedup_enrichment"]


@pytest.mark.slow
def test_indicator_tracks_the_displacement_error(study):
    """Issue 7: Spearman >= 0.8 between the indicator and the true per-step displacement error
    over the steps of the unseen loads (ROM without enrichment), for the hierarchical estimate
    over |u_rom^n| against e_u, and for the indicator (over the largest |u_rom| so far) against
    the error over the largest |u_hf| so far; over all 4 loads and over the 3 interior ones."""
    _, summary, _, _ = study
    h = summary["spearman"]["hierarchical"]
    assert summary["spearman"]["indicator"] == "hierarchical"
    assert h["estimate_over_u_rom_vs_error_u"] >= 0.8, h                        # 0.977
    assert h["indicator_vs_error_u_cyclemax"] >= 0.8, h                         # 0.972
    assert h["inside_training_range"]["estimate_over_u_rom_vs_error_u"] >= 0.8, h   # 0.966
    assert h["inside_training_range"]["indicator_vs_error_u_cyclemax"] >= 0.8, h    # 0.948


@pytest.mark.slow
def test_indicator_relations(study):
    """Spearman over all steps of the 4 unseen loads, ROM without enrichment, each step's
    error against the HF solution of the same step.

    The hierarchical estimate is an estimate of the error itself: its ratio to the true
    |u_rom - u_hf|_L2 has median 1.03 (5-95 %: 0.72 - 1.57). The stress indicator
    (Gappy residual, recorded alongside) ranks e_u with 0.74 only (0.71 against the error over
    the largest displacement so far), 0.43 over the interior loads, whose errors (0.1 %) are at
    the level of the POD truncation; the former stress indicator (over the current stress
    norm) 0.80 / 0.54. The p indicator ranks the error of p with 0.95.
    """
    _, summary, _, _ = study
    sp = summary["spearman"]
    assert sp["pairs"] >= 150 and sp["pairs_plastic"] >= 100 and sp["pairs_inside_training_range"] >= 100
    ratio = sp["hierarchical"]["estimate_over_true_error"]
    assert 0.7 <= ratio["median"] <= 1.5, ratio                                 # 1.03
    assert ratio["p05"] >= 0.3 and ratio["p95"] <= 3.0, ratio                    # 0.72, 1.57
    assert 0.6 <= sp["indicator_vs_error_u"] < 0.8, sp                            # 0.74
    assert 0.6 <= sp["indicator_vs_error_u_cyclemax"] < 0.8, sp                   # 0.71
    assert 0.2 <= sp["inside_training_range"]["indicator_vs_error_u"] < 0.6, sp   # 0.43
    assert sp["former_indicator_vs_error_u"] >= 0.7, sp                           # 0.80
    assert sp["indicator_p_vs_error_p"] >= 0.8, sp                                # 0.95


@pytest.mark.slow
def test_hierarchical_estimator_data_follow_the_enrichments(study):
    """The estimator's richer basis Z holds the ROM's modes (offline: as its first columns;
    after the enrichments of the adaptive online phase: in its span, each new mode appended by
    Gram-Schmidt), and its reduced data (strains at its points, the reduced external force,
    the mass Gram matrix) are those of the current Z; a copy is independent."""
    case, summary, _, _ = study
    est0, rom = case.rom.estimator, case.rom_online
    est = rom.estimator
    V0 = case.rom.modes
    assert est0.n_modes > V0.shape[1] and len(est0.points) > len(case.rom.ecm.points)   # 58 modes, 654 points
    np.testing.assert_allclose(est0.Z[:, :V0.shape[1]], V0, atol=1e-12)
    enrichments = sum(r["enrichment"]["enrichments"] for r in summary["loads"])
    assert est.n_modes == est0.n_modes + enrichments
    Z, V = est.Z, rom.modes
    assert np.abs(Z.T @ Z - np.eye(Z.shape[1])).max() < 1e-10
    assert np.linalg.norm(Z @ est.T - V) < 1e-8 * np.linalg.norm(V)                   # V in span Z
    np.testing.assert_allclose(est.MZ, Z.T @ (case.M @ Z), atol=1e-10 * np.abs(est.MZ).max())
    np.testing.assert_allclose(est.E, est.B_Q @ Z, atol=1e-10 * np.abs(est.E).max())
    np.testing.assert_allclose(est.Zf1, Z.T @ est.f_ext1, atol=1e-10 * np.abs(est.Zf1).max())
    c = rom.copy()
    c.estimator.sync(np.column_stack([c.modes, np.random.default_rng(0).normal(size=len(V))]))
    assert c.estimator.n_modes == est.n_modes + 1 and est.Z.shape[1] == est.n_modes == est.MZ.shape[0]


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
    assert n_enriched >= 1                                                        # 2
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
    from um2n_simulations.blade.adapt import blade_mover_study
    from um2n_simulations.blade.rom_case import BladeROMConfig

    rc = BladeROMConfig()
    r = blade_mover_study(rc.hot_spot_width, rc.depth, rc.adapt)
    assert r["adapt"]["tangled"] == 0 and r["adapt"]["min_area_ratio"] > 0.3
    assert r["static"]["dofs"] == r["adapted"]["dofs"] and r["fine"]["dofs"] > 10 * r["static"]["dofs"]
    assert r["adapt"]["equidistribution_cv_after"] < r["adapt"]["equidistribution_cv_before"]
    assert 1.05 < r["gain_err_u_end"] < 1.4, r["gain_err_u_end"]              # 1.16
    assert 1.02 < r["gain_err_max_p_end"] < 1.3, r["gain_err_max_p_end"]      # 1.08
    assert 0.6 < r["gain_err_u_hold"] < 0.95, r["gain_err_u_hold"]            # 0.78: worse at peak load
