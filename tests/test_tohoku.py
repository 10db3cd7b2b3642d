"""The 2011 Tohoku case: the published source, and 2 hours of propagation against 16 gauges.

The figures asserted here are the issue's acceptance criteria where the model meets them, and
the measured values (with a margin) where it does not yet; the latter are listed in
``PEAK_SHORTFALL`` and checked to still fall short by no more than what was measured, so
that a change for the worse fails, and a change for the better is noticed (xfail strict).
"""

import math
import os
from pathlib import Path

import numpy as np
import pytest

from um2n_simulations.tohoku_data import have_data

pytestmark = pytest.mark.firedrake


needs_data = pytest.mark.skipif(not have_data() and os.environ.get("CI") != "true",
                                reason="Tohoku data not found (../shared/data/tohoku or UM2N_TOHOKU_DATA)")


def test_satake2013_source_has_the_published_size():
    """55 subfaults; moment with a rigidity of 40 GPa: Mw 9.0 (the paper's magnitude)."""
    from um2n_simulations.tohoku_source import satake2013_subfaults

    faults = satake2013_subfaults()
    assert len(faults) == 55
    M0 = sum(4e10 * f.length * f.width * f.slip for f in faults)
    Mw = 2 / 3 * (math.log10(M0) - 9.1)
    assert Mw == pytest.approx(9.0, abs=0.05)
    assert max(f.slip for f in faults) == pytest.approx(69.14)
    # strike 193 deg true (-167): on the UTM-54 grid less the meridian convergence, which grows
    # from 0 on the central meridian (141 E) to about 2 deg at 144.3 E
    assert all(-2.5 < f.strike + 167 < 0.3 for f in faults)


@pytest.mark.parametrize("strike", [0.0, 35.0, 193.0])
def test_fault_displacement_turns_with_the_strike(strike):
    """A fault turned by its strike gives the same displacement field, turned."""
    from um2n_simulations.okada import RectangularFault

    base = RectangularFault(x=0, y=0, depth=5e3, strike=0.0, dip=15, rake=81, length=50e3, width=30e3, slip=10)
    turned = RectangularFault(**{**base.__dict__, "strike": strike})
    rng = np.random.default_rng(0)
    e, n = rng.uniform(-80e3, 80e3, (2, 50))
    u0 = base.displacement(e, n)
    s = math.radians(strike)     # clockwise from north: (e, n) -> turned frame
    e2, n2 = e * math.cos(s) + n * math.sin(s), -e * math.sin(s) + n * math.cos(s)
    u1 = turned.displacement(e2, n2)
    assert np.allclose(u1[2], u0[2], atol=1e-9)
    assert np.allclose(u1[0], u0[0] * math.cos(s) + u0[1] * math.sin(s), atol=1e-9)
    assert np.allclose(u1[1], -u0[0] * math.sin(s) + u0[1] * math.cos(s), atol=1e-9)
    # a thrust fault dipping to the east (strike north): the hanging wall moves up and west
    if strike == 0.0:
        above = base.displacement(np.array([10e3]), np.array([0.0]))
        assert above[2, 0] > 0 and above[0, 0] < 0


def test_slip_history_releases_the_total_slip_in_time():
    """The five windows of each subfault add up to its total slip; nothing slips at the origin;
    the slip only grows; the last window closes 4.7 min after the origin (4K: starts at
    2.242 min, slips in window 5); the northern near-trench subfault 0B slips 14.83 m late."""
    from um2n_simulations.tohoku_source import satake2013_slip_history, satake2013_subfaults

    h = satake2013_slip_history(window=30.0)
    total = np.array([f.slip for f in satake2013_subfaults()])
    assert np.allclose(h.slip(h.end), total, atol=0.011)       # the transcription rounds to 0.01 m
    assert np.allclose(h.slip(1e9), h.slip(h.end))
    assert not h.slip(0.0).any()
    s = np.array([h.slip(t) for t in np.linspace(0.0, h.end, 60)])
    assert (np.diff(s, axis=0) >= -1e-12).all()
    assert h.end == pytest.approx(60 * 2.242 + 5 * 30)
    b = 1                                                      # 0B
    assert h.slip(60 * 1.4 + 120)[b] == pytest.approx(3.4 + 1.17 + 1.09)
    assert h.slip(60 * 1.4 + 150)[b] == pytest.approx(20.49)


@needs_data
def test_kinematic_rupture_puts_the_instantaneous_volume_in_the_sea(tmp_path):
    """Five 60 s steps of the kinematic source (the rupture ends at 284.5 s), and one more: the
    water volume raised is that of the instantaneous source's initial elevation. The walls and
    the fluxes conserve it; the open boundary does not quite: the source's far field there is
    about -1 mm, and that lets water in at 0.04 % of the volume per minute (measured with the
    instantaneous source: +0.15 % after 4 min, +0.22 % after 6)."""
    import firedrake as fd

    from um2n_simulations.tohoku import BathymetrySource, TohokuConfig, TohokuProblem, tohoku_mesh
    from um2n_simulations.tohoku_source import initial_elevation
    from um2n_simulations.tohoku_data import load_gauges

    cfg = TohokuConfig()
    mesh = tohoku_mesh(cfg)
    problem = TohokuProblem(mesh, cfg, BathymetrySource(), load_gauges())
    eta = problem.swe.elevation
    assert fd.assemble(abs(eta) * fd.dx) == 0.0
    volumes = []
    for n in range(6):
        problem.step(n * cfg.dt)
        volumes.append(fd.assemble(eta * fd.dx))
    assert problem._G is None and not problem.swe.source.dat.data_ro.any()    # off after the rupture
    instantaneous = fd.assemble(initial_elevation(problem.swe.b, eta.function_space()) * fd.dx)
    assert instantaneous > 1e10                                   # m^3: tens of km^3 of water raised
    assert volumes[4] == pytest.approx(instantaneous, rel=2e-3)      # measured: +0.10 %
    assert volumes[5] == pytest.approx(instantaneous, rel=2e-3)      # +0.14 %
    assert volumes[0] < 0.5 * instantaneous                      # in the first minute, less than half of it


@needs_data
def test_kinematic_rupture_on_a_moving_mesh():
    """The same rupture with the mesh moving (ALE) during it, over steps 2-4: the unit-slip
    elevations are re-evaluated on each step's geometry (the midpoint geometry while moving, the
    new position at step 5), and the water volume raised is the source integrated over the
    geometries the steps were assembled on, to the open boundary's inflow (measured: +0.14 %,
    as on the static mesh).
    (The source's volume itself depends on the mesh it is evaluated on: the instantaneous
    source's is 0.65 % less on the moved mesh than on the original one, measured.)"""
    import firedrake as fd

    from um2n.path import safe_fraction
    from um2n_simulations.tohoku import BathymetrySource, TohokuConfig, TohokuProblem, tohoku_mesh
    from um2n_simulations.tohoku_data import load_gauges

    cfg = TohokuConfig()
    mesh = tohoku_mesh(cfg)
    problem = TohokuProblem(mesh, cfg, BathymetrySource(), load_gauges())
    eta, motion = problem.swe.elevation, problem.motion
    X = np.array(mesh.coordinates.dat.data_ro)
    lo, size = X.min(axis=0), np.ptp(X, axis=0)
    s = (X - lo) / size
    move = 2e-3 * size * np.column_stack([np.sin(2 * np.pi * s[:, 0]) * np.sin(np.pi * s[:, 1]),
                                          np.sin(np.pi * s[:, 0]) * np.sin(2 * np.pi * s[:, 1])])
    P1 = fd.FunctionSpace(mesh, "CG", 1)
    move[fd.DirichletBC(P1, 0.0, "on_boundary").nodes] = 0.0          # the coasts stay put
    move *= min(1.0, 0.5 * safe_fraction(X, X + move, P1.cell_node_list))   # half way to tangling at most
    assert safe_fraction(X, X + move, P1.cell_node_list) == 1.0
    added = 0.0
    for n in range(6):
        if n == 1:
            motion.start(X + move, 3, cfg.dt)
        moving = motion.active
        problem.step(n * cfg.dt)
        motion.place(0.5)                  # (no-op on a still mesh) the geometry the step was assembled on
        added += cfg.dt * fd.assemble(problem.swe.source * fd.dx)
        motion.step_done()
        assert moving == (1 <= n <= 3)
    assert np.abs(mesh.coordinates.dat.data_ro - X).max() > 1e3                   # moved by km
    assert problem.source_evaluations == 5 and problem._G is None
    assert added > 1e10
    assert fd.assemble(eta * fd.dx) == pytest.approx(added, rel=2e-3)


def test_lonlat_from_utm_inverts_utm():
    from um2n_simulations.tohoku_data import lonlat_from_utm, utm_from_lonlat

    lon, lat = np.array([141.6856, 155.717, 134.47]), np.array([38.2325, 44.435, 32.39])
    x, y = utm_from_lonlat(lon, lat)
    lon2, lat2 = lonlat_from_utm(x, y)
    assert np.abs(lon2 - lon).max() < 1e-8 and np.abs(lat2 - lat).max() < 1e-8


def test_gauge_score_of_a_late_half_size_pulse():
    """A modelled crest 2 minutes late at half the observed height, on a coarser time grid:
    arrival error +2 min, peak ratio 0.5; a run that ends before the window is not scored; a
    gauge whose record stays under 0.1 m has no clear signal."""
    from um2n_simulations.tohoku_data import Gauge
    from um2n_simulations.tohoku_gauges import score_gauge, summarise

    t_obs = np.arange(0.0, 3601.0, 15.0)
    pulse = lambda t, t0: np.exp(-((t - t0) / 300.0) ** 2)      # noqa: E731
    g = Gauge("801", 38.2, 141.7, 600.0, 3000.0, 0.0, 0.0, t_obs, 0.4 * pulse(t_obs, 1800.0))
    t_mod = np.arange(0.0, 3601.0, 60.0)
    s = score_gauge(g, t_mod, 0.2 * pulse(t_mod, 1920.0))
    assert s.clear_signal and s.name == "801"
    assert s.arrival_error_min == pytest.approx(2.0, abs=0.25)
    assert s.peak_observed == pytest.approx(0.4) and s.peak_ratio == pytest.approx(0.5, abs=0.01)
    assert 0.5 < s.correlation < 1.0
    assert score_gauge(g, t_mod[:10], np.zeros(10)) is None              # the run stops at 9 min
    quiet = Gauge("KPG1", 41.7, 144.4, 600.0, 3000.0, 0.0, 0.0, t_obs, 0.05 * pulse(t_obs, 1800.0))
    q = score_gauge(quiet, t_mod, 0.05 * pulse(t_mod, 1800.0))
    assert not q.clear_signal and q.correlation == pytest.approx(1.0, abs=1e-3)
    summary = summarise({"801": s, "KPG1": q})
    assert summary["clear_gauges"] == ["801"] and summary["max_abs_arrival_error_min"] == s.arrival_error_min
    assert summary["gps_peak_ratios"] == {"801": s.peak_ratio} and summary["gps_peaks_within_factor_2"]


# ----------------------------------------------------------------------------- the 2-hour runs
#: Where the coarse runs fall short of the acceptance (measured: see the closing note of issue 6
#: and benchmarks/results/tohoku.json): the smallest near-field GPS peak ratio seen, with a
#: margin. Every arrival is within the acceptance's 5 minutes; so are the other peaks.
PEAK_SHORTFALL = {"804": 0.38, "807": 0.32}


def _run(tmp_path, mover, refine=0):
    from um2n.fem.loop import LoopConfig
    from um2n_simulations.tohoku import CASE, TohokuConfig

    return CASE.run(TohokuConfig(refine=refine, loop=LoopConfig(
        mover=mover, output_dir=str(tmp_path / f"{mover}{refine}"), move_every=5, output_every=30,
        checkpoint_every=40, progress=False, snapshots=0)))


@pytest.fixture(scope="module")
def two_hour_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tohoku")
    return {mover: _run(tmp, mover) for mover in ("none", "um2n")}


@needs_data
@pytest.mark.slow
@pytest.mark.parametrize("mover", ["none", "um2n"])
def test_two_hours_against_the_gauges(two_hour_runs, mover):
    res = two_hour_runs[mover]
    scores = res.extras["gauges"]
    assert len(scores) == 16 and res.max_inverted == 0
    if mover == "um2n":
        assert res.moves >= 20 and res.moves_rejected == 0
    for name, s in scores.items():
        if not s["clear_signal"]:
            continue
        assert abs(s["arrival_error_min"]) <= 5.0, (name, s["arrival_error_min"])
    for name in ("801", "802", "803", "804", "806", "807"):
        lo = PEAK_SHORTFALL.get(name, 0.5)
        assert lo <= scores[name]["peak_ratio"] <= 2.0, (name, scores[name]["peak_ratio"])
    # the far field (DART and the pressure gauges off Hokkaido): the waveform is right
    for name in ("KPG1", "KPG2", "21401", "21413"):
        assert scores[name]["correlation"] >= 0.9, (name, scores[name]["correlation"])
    out = Path(res.problem.cfg.loop.output_dir)
    assert (out / "gauges.csv").exists() and (out / "gauges.png").exists() and (out / "solution.pvd").exists()


@needs_data
@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the peaks at 804 and 807 (0.42 and 0.36 of the observed, static) "
                   "miss the acceptance's factor 2 on the coarse mesh")
@pytest.mark.parametrize("mover", ["none", "um2n"])
def test_acceptance_of_issue_6(two_hour_runs, mover):
    s = two_hour_runs[mover].extras
    assert s["max_abs_arrival_error_min"] <= 5.0 and s["gps_peaks_within_factor_2"]


@needs_data
@pytest.mark.slow
def test_killed_run_resumes_to_the_same_gauge_series(tmp_path):
    """20 minutes, the mesh moving continuously (ALE) towards a new target every 5 steps,
    checkpoints every 7: killed after step 12, resumed from step 7, in the middle of a window
    (2 of its 5 steps taken), which the checkpoint holds."""
    import json

    import firedrake as fd

    from um2n.fem.loop import LoopConfig
    from um2n.fem.recorder import read_diagnostics
    from um2n_simulations.tohoku import CASE, TohokuConfig, gauge_series
    from um2n_simulations.tohoku_data import load_gauges

    def cfg(folder):
        return TohokuConfig(T=1200.0, loop=LoopConfig(mover="um2n", output_dir=str(tmp_path / folder), move_every=5,
                                                      output_every=10, checkpoint_every=7, progress=False,
                                                      snapshots=0))

    assert cfg("a").loop.transfer == "ale"
    full = CASE.run(cfg("a"))
    part = CASE.run(cfg("b"), stop_after=12)
    assert part.steps == 12 and not part.completed
    with fd.CheckpointFile(str(tmp_path / "b" / "checkpoint.h5"), "r") as cf:
        state = json.loads(cf.get_attr("/", "um2n_state"))
    assert state["step"] == 7 and state["motion"] == {"steps": 5, "done": 2}
    resumed = CASE.run(cfg("b"), resume=True)
    assert resumed.resumed_from_step == 7 and resumed.steps == 13 and resumed.moves == full.moves
    assert full.moves == 3 and full.max_inverted == 0
    gauges = load_gauges()
    ta, a = gauge_series(read_diagnostics(tmp_path / "a" / "diagnostics.csv"), gauges)
    tb, b = gauge_series(read_diagnostics(tmp_path / "b" / "diagnostics.csv"), gauges)
    assert np.array_equal(ta, tb) and len(ta) == 21
    assert np.array_equal(tb, [r["t"] for r in resumed.diagnostics])
    # moved positions agree to ~1e-7 relative, not bit for bit (reloaded vertex order, float32)
    worst = max(np.nanmax(np.abs(a[g.name] - b[g.name])) for g in gauges)
    assert worst < 1e-4
    assert max(np.nanmax(np.abs(a[g.name])) for g in gauges) > 1.0      # the series are not trivial


@pytest.fixture(scope="module")
def twice_refined_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("tohoku_refine2"), "none", refine=2)


@needs_data
@pytest.mark.slow
@pytest.mark.acceptance
def test_acceptance_of_issue_6_on_the_twice_refined_mesh(twice_refined_run):
    """The issue's acceptance, on japan_sea.msh refined twice (16 times the cells: 126 k
    vertices, 2.2 M dofs; about 5 minutes here). Measured: the largest arrival error
    is 4.9 min (804, early), the near-field GPS peaks are 0.53 (804) to 0.77 (801) of the
    observed; the waveforms of the far field correlate at 0.93 or better."""
    s = twice_refined_run.extras
    scores = s["gauges"]
    assert len(scores) == 16 and all(v["clear_signal"] for v in scores.values())
    assert s["max_abs_arrival_error_min"] <= 5.0, {k: v["arrival_error_min"] for k, v in scores.items()}
    assert s["gps_peaks_within_factor_2"], s["gps_peak_ratios"]
    for name in ("KPG1", "KPG2", "21401", "21413"):
        assert scores[name]["correlation"] >= 0.9, (name, scores[name]["correlation"])
