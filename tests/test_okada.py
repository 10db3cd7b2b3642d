"""Okada (1985) surface displacements against the paper's own check values."""

import numpy as np
import pytest

from um2n_simulations.okada import RectangularFault, okada_surface_displacement

#: Okada (1985), Table 2, case 2: x = 2, y = 3, d = 4, dip 70 deg, L = 3, W = 2,
#: lambda = mu (Poisson 0.25), unit slip; (ux, uy, uz) for each slip component.
TABLE2_CASE2 = {
    (1, 0, 0): (-8.689e-3, -4.298e-3, -2.747e-3),
    (0, 1, 0): (-4.682e-3, -3.527e-2, -3.564e-2),
    (0, 0, 1): (-2.660e-4, 1.056e-2, 3.214e-3),
}


@pytest.mark.parametrize("slip", list(TABLE2_CASE2))
def test_okada_1985_check_values(slip):
    u = okada_surface_displacement(np.array(2.0), np.array(3.0), 4.0, 70.0, 3.0, 2.0, slip=slip)
    assert u == pytest.approx(np.array(TABLE2_CASE2[slip]), rel=2e-3)


@pytest.mark.parametrize("slip", list(TABLE2_CASE2))
def test_vertical_fault_is_the_limit_of_steep_ones(slip):
    u90 = okada_surface_displacement(np.array(2.0), np.array(3.0), 4.0, 90.0, 3.0, 2.0, slip=slip)
    u89 = okada_surface_displacement(np.array(2.0), np.array(3.0), 4.0, 89.999, 3.0, 2.0, slip=slip)
    assert u89 == pytest.approx(u90, rel=1e-3, abs=1e-7)


def test_map_fault_thrust_uplift_pattern():
    """A thrust (rake 90) striking north and dipping east: uplift over the fault, symmetric
    along strike, subsidence only beyond it; the top edge at the map point given."""
    f = RectangularFault(x=0.0, y=0.0, depth=1.0, strike=0.0, dip=20.0, rake=90.0, length=100.0,
                         width=40.0, slip=10.0)
    east = np.linspace(-60, 100, 321)
    uz = f.uplift(east, np.zeros_like(east))
    assert uz.max() > 1.0
    peak = east[np.argmax(uz)]
    assert 0.0 < peak < 40.0 * np.cos(np.radians(20.0))        # above the fault, on the hanging wall
    assert uz[east < -20].max() < 0.1 * uz.max()                # little on the footwall
    north = np.linspace(-30, 30, 7)
    u_n = f.uplift(np.full_like(north, peak), north)
    assert u_n == pytest.approx(u_n[::-1], rel=1e-9)            # symmetric along strike
    # the same fault struck south (180 deg) dips west: the mirror image
    g = RectangularFault(**{**f.__dict__, "strike": 180.0})
    assert g.uplift(-east, np.zeros_like(east)) == pytest.approx(uz, rel=1e-9, abs=1e-12)


def test_bad_fault_is_named():
    with pytest.raises(ValueError, match="dip must be in"):
        okada_surface_displacement(np.zeros(1), np.zeros(1), 4.0, 0.0, 3.0, 2.0)
    with pytest.raises(ValueError, match="must be positive"):
        okada_surface_displacement(np.zeros(1), np.zeros(1), -4.0, 30.0, 3.0, 2.0)
