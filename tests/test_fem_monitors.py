"""Monitor builders from Firedrake Functions."""

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake


@pytest.mark.parametrize("n", [8, 16])
def test_hessian_of_a_quadratic_is_exact(n):
    import firedrake as fd

    from um2n.fem.monitors import recover_hessian

    mesh = fd.UnitSquareMesh(n, n)
    x, y = fd.SpatialCoordinate(mesh)
    u = fd.Function(fd.FunctionSpace(mesh, "CG", 2)).interpolate(x ** 2 + 3 * x * y - y ** 2)
    H = recover_hessian(u).dat.data_ro
    assert np.allclose(H, [[2.0, 3.0], [3.0, -2.0]], atol=1e-8)


def test_hessian_monitor_range_and_location():
    import firedrake as fd

    from um2n.fem.monitors import hessian_monitor

    mesh = fd.UnitSquareMesh(32, 32)
    x, y = fd.SpatialCoordinate(mesh)
    u = fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(fd.tanh(40 * (x - 0.5)))
    m = hessian_monitor(u, alpha=5.0)
    v = m.dat.data_ro
    assert v.min() >= 1.0 - 1e-12 and v.max() == pytest.approx(6.0)
    # the largest values sit near the front x = 0.5, small ones far from it
    X = mesh.coordinates.dat.data_ro
    assert abs(X[np.argmax(v), 0] - 0.5) < 0.1
    assert v[np.abs(X[:, 0] - 0.5) > 0.3].max() < 1.1
    # power p: 1 + alpha (|H| / max|H|)^p, the same indicator as p = 2 under another exponent
    h = (v - 1.0) / 5.0                                  # (|H| / max|H|)^2
    m_half = hessian_monitor(u, alpha=3.0, power=0.5).dat.data_ro
    sig = h > 1e-6                                       # (v - 1) loses the tiny values to rounding
    assert m_half[sig] == pytest.approx(1.0 + 3.0 * h[sig] ** 0.25, rel=1e-8)
    assert m_half.max() == pytest.approx(4.0) and m_half.min() >= 1.0


def test_gradient_combined_and_smoothing():
    import firedrake as fd

    from um2n.fem.monitors import combined_monitor, gradient_monitor, smooth_monitor

    mesh = fd.UnitSquareMesh(16, 16)
    x, y = fd.SpatialCoordinate(mesh)
    P1 = fd.FunctionSpace(mesh, "CG", 1)
    lin = fd.Function(P1).interpolate(2 * x + y)
    assert np.allclose(gradient_monitor(lin, beta=4.0).dat.data_ro, 5.0)      # |grad| constant
    # a linear field has no curvature: the combined monitor is the gradient part alone
    assert np.allclose(combined_monitor(lin, alpha=3.0, beta=4.0).dat.data_ro, 5.0, atol=1e-6)
    bump = fd.Function(P1).interpolate(1 + 9 * fd.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.005))
    smooth = smooth_monitor(bump, length=0.05)
    assert fd.assemble(smooth * fd.dx) == pytest.approx(fd.assemble(bump * fd.dx), rel=1e-10)
    assert smooth.dat.data_ro.max() < bump.dat.data_ro.max()
    assert smooth.dat.data_ro.min() >= 1.0 - 1e-6


@pytest.mark.parametrize("kind", ["hessian", "gradient"])
@pytest.mark.parametrize("dim", [2, 3])
def test_derivative_monitor_solves_componentwise_as_the_tensor_projection(kind, dim):
    """DerivativeMonitor solves each component with the scalar P1 mass matrix: the same
    derivative as the vector/tensor L2 projection (recover_hessian, recover_gradient) to the
    solver's tolerance, on the mesh it was built on and after the mesh has moved."""
    import firedrake as fd

    from um2n.fem.monitors import DerivativeMonitor, MonitorConfig, recover_gradient, recover_hessian

    mesh = fd.UnitSquareMesh(12, 12) if dim == 2 else fd.UnitCubeMesh(5, 5, 5)
    X = fd.SpatialCoordinate(mesh)
    P1 = fd.FunctionSpace(mesh, "CG", 1)
    expr = fd.exp(-sum((X[k] - 0.4) ** 2 for k in range(dim)) / 0.05) + X[0] * X[dim - 1]
    u = fd.Function(P1).interpolate(expr)
    monitor = DerivativeMonitor(u, MonitorConfig(kind, alpha=3.0, power=0.5))
    recover = recover_hessian if kind == "hessian" else recover_gradient
    C0 = np.array(mesh.coordinates.dat.data_ro)
    for shift in (0.0, 0.03):
        mesh.coordinates.dat.data[:] = C0 + shift * np.prod(np.sin(np.pi * C0), axis=1, keepdims=True)
        u.interpolate(expr)
        m = monitor().dat.data_ro
        D = recover(u).dat.data_ro
        scale = np.abs(D).max()
        assert np.abs(monitor.derivative.dat.data_ro - D).max() < 1e-9 * scale
        h = np.sum(D.reshape(len(D), -1) ** 2, axis=1)
        assert m == pytest.approx(1.0 + 3.0 * (h / h.max()) ** 0.25, abs=1e-8)
