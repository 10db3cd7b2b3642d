"""ALE mesh motion: the exact path check, and the swirl's DG advection on a moving mesh
(free-stream preservation, tracer mass, convergence order, tangle-free paths in the loop)."""

import math

import numpy as np
import pytest


# ---------------------------------------------------------------------- the path check
def test_area_polynomials_are_exact():
    from um2n.mesh import signed_areas
    from um2n.path import area_polynomials

    rng = np.random.default_rng(0)
    x0, x1 = rng.random((6, 2)), rng.random((6, 2))
    tri = np.array([[0, 1, 2], [3, 4, 5], [0, 2, 4]])
    a = area_polynomials(x0, x1, tri)
    for s in (0.0, 0.3, 0.77, 1.0):
        exact = 2 * signed_areas(x0 + s * (x1 - x0), tri)
        assert np.allclose(a[:, 0] + a[:, 1] * s + a[:, 2] * s ** 2, exact, rtol=0, atol=1e-14)


def test_safe_fraction_finds_where_an_untangled_pair_tangles_between():
    """Both ends have area 1/2; 2A(s) = 1 - 8s + 8s^2 is negative in between, first zero at
    s = (2 - sqrt 2)/4."""
    from um2n.mesh import signed_areas
    from um2n.path import safe_fraction

    tri = np.array([[0, 1, 2]])
    x0 = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    x1 = np.array([[0.0, 0.0], [-3.0, 2.0], [4.0, -3.0]])
    assert signed_areas(x0, tri)[0] == pytest.approx(0.5) and signed_areas(x1, tri)[0] == pytest.approx(0.5)
    assert signed_areas(0.5 * (x0 + x1), tri)[0] < 0
    assert safe_fraction(x0, x1, tri, min_ratio=0.0) == pytest.approx((2 - math.sqrt(2)) / 4, rel=1e-14)
    s = safe_fraction(x0, x1, tri)
    assert 0 < s < (2 - math.sqrt(2)) / 4


def test_volume_polynomials_and_the_first_tangle_of_tetrahedra():
    """Tetrahedra: the cubic 6V(s) is exact, and the first s where a volume falls to
    min_ratio of its start agrees with a dense scan of the path (200 random paths, many of
    which tangle part-way or at their end)."""
    from um2n.path import area_polynomials, safe_fraction
    from um2n.tetmesh import signed_volumes

    rng = np.random.default_rng(1)
    x0 = rng.random((5, 3))
    tets = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    sign = np.sign(signed_volumes(x0, tets))
    x1 = x0 + rng.normal(scale=0.3, size=x0.shape)
    a = area_polynomials(x0, x1, tets)
    for s in (0.0, 0.3, 0.77, 1.0):
        cubic = a[:, 0] + a[:, 1] * s + a[:, 2] * s ** 2 + a[:, 3] * s ** 3
        assert np.allclose(cubic, 6 * signed_volumes(x0 + s * (x1 - x0), tets), rtol=0, atol=1e-14)
    grid = np.linspace(0.0, 1.0, 4001)
    interior = 0
    for _ in range(200):
        x1 = x0 + rng.normal(scale=0.5, size=x0.shape)
        v = np.array([sign * signed_volumes(x0 + t * (x1 - x0), tets) for t in grid])
        low = np.flatnonzero((v <= 1e-8 * v[0]).any(axis=1))
        scanned = grid[low[0]] if len(low) else 1.0
        found = safe_fraction(x0, x1, tets, reference_sign=sign)
        assert found <= scanned + 1e-12 and found > scanned - 1.0 / 4000, (found, scanned)
        interior += 0.0 < scanned < 1.0
    assert interior > 50


def test_mesh_courant_of_a_tetrahedron():
    """The corner tetrahedron's smallest altitude is 3V/F_max = (1/2)/(sqrt(3)/2) = 1/sqrt(3)."""
    from um2n.path import mesh_courant

    x0 = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    x1 = x0 + [0.1, 0.0, 0.0]
    assert mesh_courant(x0, x1, np.array([[0, 1, 2, 3]])) == pytest.approx(0.1 * math.sqrt(3), rel=1e-14)


@pytest.mark.parametrize("case, expected", [
    ("rotation by pi (areas touch zero at s = 1/2)", 0.5),
    ("translation", 1.0),
    ("small smooth displacement", 1.0),
    ("tangled start", 0.0),
])
def test_safe_fraction_cases(case, expected):
    from um2n.path import safe_fraction

    n = 9
    g = np.linspace(0, 1, n)
    X, Y = np.meshgrid(g, g)
    x0 = np.column_stack([X.ravel(), Y.ravel()])
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    tri = np.concatenate([np.column_stack([a, b, d]), np.column_stack([a, d, c])])
    if case.startswith("rotation"):
        x1 = 1.0 - x0
    elif case == "translation":
        x1 = x0 + [3.0, -1.0]
    elif case.startswith("small"):
        x1 = x0 + 0.02 * np.sin(np.pi * x0[:, :1]) * np.sin(np.pi * x0[:, 1:]) * [1.0, -0.5]
    else:
        x0 = x0.copy()
        x0[40] += [0.3, 0.3]
        x1 = x0
    assert safe_fraction(x0, x1, tri, reference_sign=np.ones(len(tri))) == pytest.approx(expected, abs=1e-4)


# ---------------------------------------------------------------------- the swirl in ALE form
def _bump(X):
    """A smooth displacement field that vanishes on the unit square's boundary."""
    return np.sin(np.pi * X[:, :1]) * np.sin(np.pi * X[:, 1:]) * np.column_stack(
        [np.sin(2 * np.pi * X[:, 1]), np.cos(np.pi * X[:, 0])])


class _Prescribed:
    """A mover of our own: the k-th move targets xi + eps * bump(xi) * sin(2 pi t_k / T), with
    t_k the end of the window that move starts."""

    name = "prescribed"
    moves_mesh = True

    def __init__(self, xi, eps, window_time, T):
        self.xi, self.eps, self.window_time, self.T, self.calls = np.array(xi), eps, window_time, T, 0

    def move(self, mesh, monitor):
        from um2n.fem.movers import MoveInfo

        self.calls += 1
        t = (self.calls + 1) * self.window_time
        mesh.coordinates.dat.data[:] = self.xi + self.eps * math.sin(2 * math.pi * t / self.T) * _bump(self.xi)
        return MoveInfo()


def _run_prescribed(tmp_path, n, dt, T, eps, speed=1.5, initial=None, move_every=4):
    import firedrake as fd

    from um2n.fem.loop import LoopConfig, run_moving_mesh
    from um2n_simulations.swirl import SwirlConfig, SwirlProblem

    cfg = SwirlConfig(dt=dt, T=T, speed=speed, loop=LoopConfig(
        output_dir=str(tmp_path), move_every=move_every, checkpoint_every=10 ** 6, progress=False,
        snapshots=0, write_vtk=False, initial_moves=0))

    def make_problem(mesh):
        p = SwirlProblem(mesh, cfg)
        if initial is not None:
            p.q.interpolate(initial(fd.SpatialCoordinate(mesh)))
            p.mass0 = fd.assemble(p.q * fd.dx)
        return p

    mesh = fd.UnitSquareMesh(n, n, diagonal="crossed")
    mover = _Prescribed(mesh.coordinates.dat.data_ro, eps, move_every * dt, T)
    res = run_moving_mesh(make_problem, lambda: mesh, cfg.loop, mover=mover)
    assert res.completed and res.moves_rejected == 0 and res.max_inverted == 0
    return res


@pytest.mark.firedrake
def test_swirl_ale_keeps_a_constant_state_and_the_mass(tmp_path):
    """Free-stream preservation (the DGCL): q = 1 and no flow stays q = 1 to round-off while
    the mesh moves; and the ring's tracer mass is kept while it is advected on the moving mesh."""
    import firedrake as fd

    still = _run_prescribed(tmp_path / "one", 8, 0.01, 0.4, 0.08, speed=0.0, initial=lambda x: fd.Constant(1.0))
    q = still.problem.q
    assert still.moves == 9
    assert np.abs(q.dat.data_ro - 1.0).max() < 1e-12
    moved = _run_prescribed(tmp_path / "ring", 12, 0.005, 0.2, 0.08)
    mass = [r["mass_change"] for r in moved.diagnostics]
    assert max(abs(m) for m in mass) < 1e-12 * moved.problem.mass0
    assert moved.moves == 9


@pytest.mark.firedrake
def test_swirl_ale_converges_at_second_order(tmp_path):
    """A smooth blob through a short reversing swirl (exact final state = initial), the mesh
    moving all the time: the L2 error falls at the order of DG1 with dt ~ h (measured: rates
    2.05 and 2.17)."""
    import firedrake as fd

    def blob(x):
        return fd.exp(-((x[0] - 0.5) ** 2 + (x[1] - 0.7) ** 2) / (2 * 0.1 ** 2))

    errors = []
    for n in (8, 16, 32):
        res = _run_prescribed(tmp_path / str(n), n, 0.05 / n, 0.3, 0.05, initial=blob, move_every=3)
        x = fd.SpatialCoordinate(res.mesh)
        errors.append(math.sqrt(fd.assemble((res.problem.q - blob(x)) ** 2 * fd.dx(degree=8))))
        assert res.moves == res.problem.num_steps // 3 - 1
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert rates[-1] > 1.8, (errors, rates)


class _Twist:
    """A mover of our own whose straight path from the single triangle's start tangles it
    part-way (2A(s) = 1 - 8s + 8s^2), though the target is untangled."""

    name = "twist"
    moves_mesh = True
    ENDS = {(1.0, 0.0): (-3.0, 2.0), (0.0, 1.0): (4.0, -3.0), (0.0, 0.0): (0.0, 0.0)}

    def __init__(self, xi):
        self.target = np.array([self.ENDS[tuple(np.round(p, 12))] for p in xi])

    def move(self, mesh, monitor):
        from um2n.fem.movers import MoveInfo

        mesh.coordinates.dat.data[:] = self.target
        return MoveInfo()


@pytest.mark.firedrake
def test_loop_shortens_a_path_that_would_tangle_part_way(tmp_path):
    """The loop checks the whole straight path, not only its ends: it shortens the window's
    target, and every geometry a solver stage sees is untangled."""
    import firedrake as fd
    from firedrake.mesh import plex_from_cell_list

    from um2n.fem.loop import LoopConfig, run_moving_mesh
    from um2n.mesh import signed_areas
    from um2n_simulations.swirl import SwirlConfig, SwirlProblem

    cells = np.array([[0, 1, 2]])
    start = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    cfg = SwirlConfig(dt=1e-3, T=0.012, loop=LoopConfig(output_dir=str(tmp_path), move_every=4, progress=False,
                                                       snapshots=0, write_vtk=False, initial_moves=0))
    seen = []

    def make_problem(mesh):
        p = SwirlProblem(mesh, cfg)
        place, tri = p.motion.place, fd.FunctionSpace(mesh, "CG", 1).cell_node_list
        sign = np.sign(signed_areas(np.asarray(mesh.coordinates.dat.data_ro), tri))

        def watched(theta):
            place(theta)
            seen.append((sign * signed_areas(np.asarray(mesh.coordinates.dat.data_ro), tri)).min())
        p.motion.place = watched
        return p

    mesh = fd.Mesh(plex_from_cell_list(2, cells, start, fd.COMM_WORLD))
    res = run_moving_mesh(make_problem, lambda: mesh, cfg.loop, mover=_Twist(mesh.coordinates.dat.data_ro))
    assert res.completed and res.moves == 2 and res.paths_shortened == 2
    assert res.max_inverted == 0 and all(r["inverted"] == 0 for r in res.diagnostics)
    assert len(seen) > 20 and min(seen) > 0.1 * 0.5


# ---------------------------------------------------------------------- Navier-Stokes in ALE form
def _navier_stokes_box(mesh, nu, dt, T, exact, outflow):
    """Navier-Stokes on the unit square with the velocity ``exact(x, t)`` on the boundary
    (``outflow``: do-nothing on x = 1 instead), as a problem of the moving-mesh loop."""
    import firedrake as fd

    from um2n.fem.loop import MovingMeshProblem
    from um2n_simulations.navier_stokes import NavierStokesSolver

    class Problem(MovingMeshProblem):
        supports_ale = True

        def __init__(self, mesh):
            super().__init__(mesh)
            self.dt, self.num_steps = dt, int(round(T / dt))
            self.t = fd.Constant(0.0)
            x = fd.SpatialCoordinate(mesh)
            walls = (1, 3, 4) if outflow else "on_boundary"
            self.ns = NavierStokesSolver(
                mesh, nu, dt, lambda W: [fd.DirichletBC(W.sub(0), exact(x, self.t), walls)],
                mesh_velocity=self.motion.velocity, pressure_nullspace=not outflow)
            self.ns.velocity.interpolate(exact(x, self.t))

        def fields(self):
            return {"velocity": self.ns.velocity, "pressure": self.ns.pressure}

        def step(self, t):
            self.motion.place(1.0)
            self.t.assign(t + self.dt)
            self.ns.step()

        def monitor(self):
            return fd.Function(fd.FunctionSpace(self.mesh, "CG", 1)).assign(1.0)

    return Problem(mesh)


def _run_navier_stokes(tmp_path, n, dt, T, exact, outflow=False, eps=0.05, move_every=2):
    import firedrake as fd

    from um2n.fem.loop import LoopConfig, run_moving_mesh

    cfg = LoopConfig(output_dir=str(tmp_path), move_every=move_every, checkpoint_every=10 ** 6, progress=False,
                     snapshots=0, write_vtk=False)
    mesh = fd.UnitSquareMesh(n, n, diagonal="crossed")
    mover = _Prescribed(mesh.coordinates.dat.data_ro, eps, move_every * dt, T)
    res = run_moving_mesh(lambda m: _navier_stokes_box(m, 0.01, dt, T, exact, outflow), lambda: mesh, cfg,
                          mover=mover)
    assert res.completed and res.moves_rejected == 0 and res.max_inverted == 0 and res.moves > 2
    return res


@pytest.mark.firedrake
def test_navier_stokes_ale_keeps_a_uniform_flow(tmp_path):
    import firedrake as fd

    res = _run_navier_stokes(tmp_path, 6, 0.05, 0.5, lambda x, t: fd.as_vector([1.0, 0.0]), outflow=True, eps=0.1)
    u = res.problem.ns.velocity.dat.data_ro
    assert np.abs(u - [1.0, 0.0]).max() < 1e-12
    assert np.abs(res.problem.ns.pressure.dat.data_ro).max() < 1e-12


@pytest.mark.firedrake
def test_navier_stokes_ale_converges_on_the_taylor_green_vortex(tmp_path):
    """The decaying Taylor-Green vortex (an exact solution) on a moving mesh: the velocity's
    L2 error falls at second order or better with dt ~ h (measured: rates 2.99 and 2.09)."""
    import firedrake as fd

    nu = 0.01

    def exact(x, t):
        decay = fd.exp(-2 * math.pi ** 2 * nu * t)
        return decay * fd.as_vector([-fd.cos(math.pi * x[0]) * fd.sin(math.pi * x[1]),
                                     fd.sin(math.pi * x[0]) * fd.cos(math.pi * x[1])])

    errors = []
    T = 0.4
    for n in (4, 8, 16):
        res = _run_navier_stokes(tmp_path / str(n), n, 0.2 / n, T, exact)
        x = fd.SpatialCoordinate(res.mesh)
        u = res.problem.ns.velocity
        errors.append(math.sqrt(fd.assemble(fd.inner(u - exact(x, T), u - exact(x, T)) * fd.dx(degree=8))))
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert rates[-1] > 1.8, (errors, rates)


def test_mesh_courant_is_the_displacement_over_the_smallest_altitude():
    from um2n.path import mesh_courant

    tri = np.array([[0, 1, 2]])
    x0 = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])       # longest edge sqrt 5, area 1
    x1 = x0 + [[0.0, 0.0], [0.0, 0.0], [0.1, 0.0]]
    assert mesh_courant(x0, x1, tri) == pytest.approx(0.1 / (2.0 / math.sqrt(5.0)))
    assert mesh_courant(x0, x0, tri) == 0.0


@pytest.mark.firedrake
def test_loop_slows_a_window_faster_than_the_mesh_courant_limit(tmp_path, monkeypatch):
    """A mover that asks for a large motion over a short window: the loop brings its target
    closer so that no vertex crosses more than max_mesh_courant of an element per step."""
    import firedrake as fd

    from um2n.fem.ale import MeshMotion
    from um2n.fem.loop import LoopConfig, run_moving_mesh
    from um2n.path import mesh_courant
    from um2n_simulations.swirl import SwirlConfig, SwirlProblem

    per_step = []
    start = MeshMotion.start

    def recorded(self, target, steps, dt):
        tri = self.mesh.coordinates.function_space().cell_node_list
        per_step.append(mesh_courant(np.array(self.mesh.coordinates.dat.data_ro), target, tri) / steps)
        start(self, target, steps, dt)

    monkeypatch.setattr(MeshMotion, "start", recorded)
    cfg = SwirlConfig(dt=1e-3, T=0.02, speed=0.0, loop=LoopConfig(
        output_dir=str(tmp_path), move_every=2, max_mesh_courant=0.05, progress=False, snapshots=0,
        write_vtk=False, initial_moves=0))
    mesh = fd.UnitSquareMesh(8, 8)
    mover = _Prescribed(mesh.coordinates.dat.data_ro, 0.1, 2e-3, 0.08)
    res = run_moving_mesh(lambda m: SwirlProblem(m, cfg), lambda: mesh, cfg.loop, mover=mover)
    assert res.completed and res.moves == 9 and res.moves_slowed > 0 and res.max_inverted == 0
    assert max(per_step) <= 0.05 * (1 + 1e-12) and len(per_step) == 9
