"""The DG1-DG1 shallow-water solver: a lake at rest over a slope stays at rest (linear and
nonlinear), and a linear wave travels at sqrt(g d) and keeps the mass."""

import numpy as np
import pytest

pytestmark = pytest.mark.firedrake


@pytest.mark.parametrize("nonlinear", [True, False])
def test_lake_at_rest_over_a_slope_stays_at_rest(nonlinear):
    import firedrake as fd

    from um2n_simulations.shallow_water import ShallowWaterOptions, ShallowWaterSolver

    mesh = fd.RectangleMesh(20, 4, 10.0, 2.0)

    def bathymetry(m):
        x, y = fd.SpatialCoordinate(m)
        return 1.0 + 0.1 * x + 0.05 * fd.sin(y)

    s = ShallowWaterSolver(mesh, bathymetry, 0.1, ShallowWaterOptions(nonlinear=nonlinear))
    s.set_state(fd.Constant(0.0), fd.as_vector([0.0, 0.0]))
    for _ in range(5):
        s.step()
    assert np.abs(s.elevation.dat.data_ro).max() < 1e-12
    assert np.abs(s.velocity.dat.data_ro).max() < 1e-12


def test_linear_wave_travels_at_sqrt_gd_and_keeps_mass():
    """A Gaussian hump on still water of depth 1 splits into two waves moving at sqrt(g d)."""
    import firedrake as fd

    from um2n_simulations.shallow_water import ShallowWaterOptions, ShallowWaterSolver

    mesh = fd.RectangleMesh(200, 1, 100.0, 0.5, originX=-50.0)
    s = ShallowWaterSolver(mesh, lambda m: fd.Constant(1.0), 0.05, ShallowWaterOptions(nonlinear=False))
    x = fd.SpatialCoordinate(mesh)[0]
    s.set_state(0.01 * fd.exp(-x ** 2 / 4.0), fd.as_vector([0.0, 0.0]))
    m0 = fd.assemble(s.elevation * fd.dx)
    for _ in range(100):                                  # t = 5 s
        s.step()
    xs = fd.Function(s.elevation.function_space()).interpolate(x).dat.data_ro
    e = s.elevation.dat.data_ro
    right = xs[np.argmax(np.where(xs > 0, e, -1))]
    assert right == pytest.approx(5.0 * np.sqrt(9.81), abs=0.6)     # 15.7 m after 5 s
    assert fd.assemble(s.elevation * fd.dx) == pytest.approx(m0, rel=1e-10)
