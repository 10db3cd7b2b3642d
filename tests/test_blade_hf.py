"""High-fidelity turbine-blade model: the law, the Firedrake solver against analytic and ODE
references, Newton's convergence, the blade cycle and the hooks a hyper-reduced model uses."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake

SQRT3 = np.sqrt(3.0)


# ---------------------------------------------------------------------- the law alone
def _random_plastic_states(mat, n, seed=0):
    from um2n_simulations.blade.material import InternalVariables

    rng = np.random.default_rng(seed)
    eps = np.zeros((n, 4))
    eps[:, [0, 1, 3]] = rng.normal(scale=4e-3, size=(n, 3))
    T = rng.uniform(450.0, 900.0, n)
    st = InternalVariables.zeros(n)
    st.eps_p[:, [0, 1, 3]] = rng.normal(scale=1e-3, size=(n, 3))
    st.eps_p[:, 2] = -st.eps_p[:, 0] - st.eps_p[:, 1]     # plastic incompressibility
    st.X = 2.0 / 3.0 * mat.C * st.eps_p
    st.p = rng.uniform(0.0, 1e-2, n)
    return eps, T, st


@pytest.mark.parametrize("dt, n_T", [(1.0, 0.0), (1e-3, 0.0), (50.0, 0.01)])
def test_consistent_tangent_matches_finite_differences(dt, n_T):
    from um2n_simulations.blade.material import Material, return_mapping, von_mises

    mat = Material(n_T=n_T)
    eps, T, st = _random_plastic_states(mat, 400)
    res = return_mapping(mat, eps, T, dt, st)
    plastic = res.dp > 0
    assert plastic.sum() > 300 and (~plastic).sum() > 0      # both branches are exercised
    # the implicit Norton law holds at the end of the step
    J = von_mises(res.stress - res.state.X)
    rate = ((J[plastic] - mat.sigma_y) / mat.drag(T[plastic])) ** mat.exponent(T[plastic])
    np.testing.assert_allclose(res.dp[plastic], dt * rate, rtol=1e-10)
    # central differences of the stress update, every in-plane strain component
    h = 1e-7
    err = 0.0
    for j in (0, 1, 3):
        ep, em = eps.copy(), eps.copy()
        ep[:, j] += h
        em[:, j] -= h
        fd_col = (return_mapping(mat, ep, T, dt, st, tangent=False).stress
                  - return_mapping(mat, em, T, dt, st, tangent=False).stress) / (2 * h)
        scale = np.abs(res.tangent).max(axis=(1, 2))
        err = max(err, float((np.abs(fd_col - res.tangent[:, :, j]).max(axis=1) / scale).max()))
    assert err < 1e-5, err


# ---------------------------------------------------------------------- Lamé
def _quarter_annulus(n: int, a: float, b: float):
    """Quarter annulus a <= r <= b, 0 <= theta <= pi/2, with curved (P2) cells.

    Tags of RectangleMesh in (r, theta): 1 r = a, 2 r = b, 3 theta = 0 (y = 0), 4 theta = pi/2 (x = 0).
    """
    import firedrake as fd

    m = fd.RectangleMesh(n, 2 * n, 1.0, 1.0)
    X = fd.SpatialCoordinate(m)
    r, th = a + (b - a) * X[0], np.pi / 2 * X[1]
    coords = fd.Function(fd.VectorFunctionSpace(m, "CG", 2))
    coords.interpolate(fd.as_vector([r * fd.cos(th), r * fd.sin(th)]))
    return fd.Mesh(coords)


def _lame_errors(n: int, P: float, mat):
    """Relative L2 errors of the displacement and of the stresses (at the quadrature points)."""
    import firedrake as fd

    from um2n_simulations.blade.hf import Dirichlet, QuasiStaticViscoplasticity

    a, b = 1.0, 2.0
    mesh = _quarter_annulus(n, a, b)
    x = fd.SpatialCoordinate(mesh)
    rr = fd.sqrt(x[0] ** 2 + x[1] ** 2)
    solver = QuasiStaticViscoplasticity(mesh, mat, degree=2, tractions={1: P * x / rr},   # -P n, n = -e_r
                                        dirichlet=[Dirichlet(3, 0.0, component=1), Dirichlet(4, 0.0, component=0)])
    report = solver.step(1.0)
    E, nu = float(mat.young(mat.T_ref)), mat.nu
    A, B = P * a ** 2 / (b ** 2 - a ** 2), P * a ** 2 * b ** 2 / (b ** 2 - a ** 2)
    # plane strain: u_r = (1 + nu)/E ((1 - 2 nu) A r + B / r), sigma_rr,tt = A -+ B/r^2, sigma_zz = nu (rr + tt)
    u_ex = (1 + nu) / E * ((1 - 2 * nu) * A * rr + B / rr) * x / rr
    dxe = fd.dx(degree=8)
    err_u = np.sqrt(fd.assemble(fd.inner(solver.u - u_ex, solver.u - u_ex) * dxe)
                    / fd.assemble(fd.inner(u_ex, u_ex) * dxe))
    xq, w = solver.quadrature_points(), solver.quadrature_weights()
    r = np.hypot(xq[:, 0], xq[:, 1])
    c, s = xq[:, 0] / r, xq[:, 1] / r
    srr, stt = A - B / r ** 2, A + B / r ** 2
    exact = np.stack([srr * c ** 2 + stt * s ** 2, srr * s ** 2 + stt * c ** 2, nu * (srr + stt),
                      np.sqrt(2.0) * (srr - stt) * c * s], axis=1)
    sigma = np.array(solver.stress_q.dat.data_ro)
    err_s = np.sqrt((w[:, None] * (sigma - exact) ** 2).sum() / (w[:, None] * exact ** 2).sum())
    return float(err_u), float(err_s), report


def test_lame_thick_cylinder_matches_analytic_solution_and_converges():
    from um2n_simulations.blade.material import Material

    mat = Material(alpha_th=0.0).elastic()
    errs = {n: _lame_errors(n, 100.0, mat)[:2] for n in (4, 8, 16)}
    (u4, s4), (u8, s8), (u16, s16) = errs[4], errs[8], errs[16]
    assert u8 < 1e-4 and s8 < 5e-3, errs           # measured 3.6e-5 and 2.3e-3
    assert u16 < u8 < u4 and s16 < s8 < s4, errs
    assert np.log2(u8 / u16) > 2.5, errs            # CG2 displacement: order 3 in L2
    assert np.log2(s8 / s16) > 1.7, errs            # stresses at the points: order 2


def test_newton_converges_quadratically_on_a_viscoplastic_step():
    from um2n_simulations.blade.material import Material

    mat = Material(alpha_th=0.0)           # sigma_y = 200: the inner part of the cylinder flows
    _, _, report = _lame_errors(8, 250.0, mat)
    res = np.array(report.residuals)
    assert report.iterations >= 3, res
    assert res[-1] <= 1e-9 * report.reference, res
    # convergence order estimates log(r_{k+1}/r_k) / log(r_k/r_{k-1}) on the last iterations
    r = res[res > 1e-13 * res[0]]
    orders = np.log(r[2:] / r[1:-1]) / np.log(r[1:-1] / r[:-2])
    assert orders[-1] > 1.7, (res, orders)


# ---------------------------------------------------------------------- 1D Norton creep
def test_homogeneous_creep_matches_the_norton_ode():
    """Pure shear creep on a square through the Firedrake solver against the 1D ODE.

    Tractions sigma_xx = S on x = 1, sigma_yy = -S on y = 1, symmetry on x = 0 and y = 0:
    the homogeneous state is eps = diag(e, -e, 0), eps_p = diag(q, -q, 0), sigma = diag(S, -S, 0)
    (sigma_zz = 0 since tr eps_e = 0), X = 2/3 C eps_p, J(sigma - X) = sqrt3 (S - 2/3 C q), so

        dq/dt = sqrt3/2 <(sqrt3 (S - 2/3 C q) - sigma_y) / K(T)>^n(T),    e = S/(2 mu(T)) + q.
    """
    import firedrake as fd
    from scipy.integrate import solve_ivp
    from scipy.optimize import brentq

    from um2n_simulations.blade.hf import Dirichlet, QuasiStaticViscoplasticity
    from um2n_simulations.blade.material import Material

    mat = Material(alpha_th=0.0, sigma_y=100.0)
    T, S, t_end, steps, dt0 = 700.0, 300.0, 60.0, 100, 0.02
    mesh = fd.UnitSquareMesh(2, 2)
    solver = QuasiStaticViscoplasticity(mesh, mat, degree=2, temperature=T,
                                        tractions={2: fd.Constant((S, 0.0)), 4: fd.Constant((0.0, -S))},
                                        dirichlet=[Dirichlet(1, 0.0, component=0), Dirichlet(3, 0.0, component=1)])
    # geometric steps (backward Euler is first order; the transient is fast at first)
    g = brentq(lambda g: dt0 * (g ** steps - 1) / (g - 1) - t_end, 1.0001, 2.0)
    dts = dt0 * g ** np.arange(steps)
    e_fe, q_fe = [], []
    probe = fd.PointEvaluator(mesh, [[1.0, 1.0]])
    for dt in dts:
        solver.step(float(dt))
        ux, uy = np.ravel(probe.evaluate(solver.u))
        e_fe.append(ux)
        eps_p = solver.eps_p_q.dat.data_ro
        assert np.ptp(eps_p[:, 0]) < 1e-10 * abs(eps_p[0, 0]) + 1e-14    # homogeneous
        assert abs(uy + ux) < 1e-10 * abs(ux)
        q_fe.append(eps_p[0, 0])
    t = np.cumsum(dts)
    K, n = float(mat.drag(T)), float(mat.exponent(T))
    mu = float(mat.lame(T)[1])

    def rhs(_t, q):
        return [SQRT3 / 2 * (max(SQRT3 * (S - 2.0 / 3.0 * mat.C * q[0]) - mat.sigma_y, 0.0) / K) ** n]

    q_ref = solve_ivp(rhs, (0.0, t[-1]), [0.0], t_eval=t, method="LSODA", rtol=1e-12, atol=1e-15).y[0]
    e_ref = S / (2 * mu) + q_ref
    e_fe, q_fe = np.array(e_fe), np.array(q_fe)
    assert q_ref[-1] > 0.5 * (S - mat.sigma_y / SQRT3) * 1.5 / mat.C    # well into the hardening
    assert np.abs(e_fe - e_ref).max() / e_ref[-1] < 0.01, np.abs(e_fe - e_ref).max() / e_ref[-1]
    assert np.abs(q_fe - q_ref).max() / q_ref[-1] < 0.01, np.abs(q_fe - q_ref).max() / q_ref[-1]
    assert abs(q_fe[-1] - q_ref[-1]) / q_ref[-1] < 0.0075          # measured 0.59 %


# ---------------------------------------------------------------------- the blade
@pytest.fixture(scope="module")
def blade_run(tmp_path_factory):
    from um2n_simulations.blade.blade import BladeConfig, BladeHF
    from um2n_simulations.blade.loading import LoadCycle

    out = tmp_path_factory.mktemp("blade")
    cfg = BladeConfig(lc=2.0, lc_hole=1.0, cycle=LoadCycle(t_ramp=10.0, t_hold=10.0, t_down=10.0, dt=5.0),
                      output_dir=str(out))
    model = BladeHF(cfg)
    reports = model.run()
    return model, reports, out


def test_blade_meshes_with_its_tags(mesh_file):
    import meshio

    m = meshio.read(mesh_file("turbine_blade", 2.0))
    tags = {k: set(np.unique(v)) for k, v in m.cell_data_dict["gmsh:physical"].items()}
    assert tags["line"] == {1, 2, 3} and tags["triangle"] == {1}
    root = m.get_cells_type("line")[m.cell_data_dict["gmsh:physical"]["line"] == 1]
    assert np.allclose(m.points[np.unique(root), 1], 0.0)     # the root is the straight edge y = 0


def test_blade_cycle_localises_plasticity_at_the_hot_spot(blade_run):
    from um2n_simulations.blade.material import von_mises

    model, reports, out = blade_run
    cfg, s = model.cfg, model.solver
    assert len(reports) == 6 and all(r.iterations <= 6 for r in reports)
    assert s.weights.sum() == pytest.approx(243.18, rel=1e-3)       # blade area (mm^2) on this mesh
    xq = s.quadrature_points()
    p = np.array(s.p_q.dat.data_ro)
    d = np.hypot(xq[:, 0] - cfg.hot_spot[0], xq[:, 1] - cfg.hot_spot[1])
    assert p.max() > 1e-3                                            # measured 2.2e-3
    assert d[p.argmax()] < cfg.hot_spot_width                         # the maximum is at the hot spot
    assert p[d > 3 * cfg.hot_spot_width].max(initial=0.0) < 1e-2 * p.max()
    # p never decreases; unloading leaves residual stresses
    P = np.array(model.snapshots["p"])
    assert np.all(np.diff(P, axis=0) >= -1e-15)
    assert von_mises(np.array(s.stress_q.dat.data_ro)).max() > 50.0
    assert (out / "blade.pvd").exists() and len(list(out.glob("blade/*.vtu"))) == 6


def test_hyper_reduction_hooks_are_consistent(blade_run):
    model, _, _ = blade_run
    s = model.solver
    N = s.n_points
    # a stress field out of equilibrium (the committed one is in equilibrium with zero load)
    rng = np.random.default_rng(0)
    sigma = np.array(s.stress_q.dat.data_ro) * rng.uniform(0.5, 1.5, (N, 1)) + rng.normal(scale=10.0, size=(N, 4))
    F = s.assemble_internal_forces(sigma)
    assert np.abs(F).max() > 1.0
    B = s.strain_operator()
    # F_int = B^T (w sigma), and B u gives the strains at the points
    np.testing.assert_allclose(B.T @ (s.weights[:, None] * sigma).ravel(), F, atol=1e-9 * np.abs(F).max())
    u = np.array(s.u.dat.data_ro).ravel()
    np.testing.assert_allclose((B @ u).reshape(N, 4), s.strain(), atol=1e-12)
    # per-point contributions on modes: sum over points = projected internal forces
    modes = np.stack(model.snapshots["u"], axis=1)
    G = s.point_contributions(modes, sigma)
    assert G.shape == (modes.shape[1], N)
    np.testing.assert_allclose(G.sum(axis=1), modes.T @ F, rtol=1e-10, atol=1e-10 * np.abs(modes.T @ F).max())
    # the law on a subset of points equals the law on all points, restricted
    idx = np.sort(np.random.default_rng(1).choice(N, 50, replace=False))
    eps = s.strain()
    full = s.constitutive_update(eps, 5.0)
    sub = s.constitutive_update(eps[idx], 5.0, idx=idx)
    np.testing.assert_array_equal(sub.stress, full.stress[idx])
    np.testing.assert_array_equal(sub.tangent, full.tangent[idx])
