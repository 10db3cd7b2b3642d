r"""Thermo-mechanical loading of the blade: hot-spot temperature, centrifugal force, cycle.

**Temperature** (prescribed, no heat equation):

.. math::

    T(x, t) = T_0 + \lambda(t)\, A\, \exp\!\Big(-\frac{|x - x_h|^2}{2 s^2}\Big),

a uniform base temperature :math:`T_0` (the material's stress-free :math:`T_{ref}` by
default, so that only the hot spot strains the blade thermally) plus a Gaussian hot spot
of position :math:`x_h`, width :math:`s` and intensity :math:`A` — the uncertain parameters
of the thermal loading.

**Centrifugal force.** The 2D model is the plane of rotation: :math:`y` is radial, the
rotation axis is normal to the plane at radius :math:`r_0` below the root (:math:`y = 0`).
The body force is the radial part of the centrifugal force,

.. math::

    f = \lambda(t)\, \rho\,\omega^2\,(r_0 + y)\; e_y ,

the lateral part :math:`\rho\omega^2 x\,e_x` being dropped (:math:`|x| \ll r_0`); the
span-wise (out-of-plane) direction is the thickness of the plane-strain model. Speeds
scale the force with :math:`\omega^2`, so :math:`\lambda` multiplies :math:`\omega^2`.

**Cycle.** :math:`\lambda(t)` is piecewise linear: 0 → 1 over ``t_ramp``, 1 during
``t_hold``, 1 → 0 over ``t_down`` (start-up, cruise, shut-down), in steps of ``dt`` (the
ramps and the hold are each divided into whole steps).
"""

from __future__ import annotations

from dataclasses import dataclass

import firedrake as fd
import numpy as np
import ufl


@dataclass
class LoadCycle:
    """Ramp up, hold, ramp down; times in s."""

    t_ramp: float = 10.0
    t_hold: float = 20.0
    t_down: float = 10.0
    dt: float = 2.0

    def times(self) -> np.ndarray:
        """The step end times :math:`t_1, \\dots, t_M` (each phase cut into whole steps)."""
        out, t0 = [], 0.0
        for length in (self.t_ramp, self.t_hold, self.t_down):
            n = max(int(round(length / self.dt)), 1) if length > 0 else 0
            out += list(t0 + length * np.arange(1, n + 1) / n)
            t0 += length
        return np.array(out)

    def factor(self, t: float) -> float:
        r""":math:`\lambda(t)`."""
        t1, t2, t3 = self.t_ramp, self.t_ramp + self.t_hold, self.t_ramp + self.t_hold + self.t_down
        return float(np.interp(t, [0.0, t1, t2, t3], [0.0, 1.0, 1.0, 0.0]))


def hot_spot_temperature(mesh, T0: float, A: fd.Constant | float, x_h: tuple[fd.Constant | float, fd.Constant | float],
                         s: float,
                         lam: fd.Constant | float = 1.0) -> ufl.core.expr.Expr:
    r""":math:`T_0 + \lambda A \exp(-|x - x_h|^2/(2s^2))` as a UFL expression."""
    x = fd.SpatialCoordinate(mesh)
    d2 = (x[0] - x_h[0]) ** 2 + (x[1] - x_h[1]) ** 2
    return T0 + lam * A * fd.exp(-d2 / (2 * s ** 2))


def hot_spot_values(points: np.ndarray, T0: float, A: float, x_h: tuple[float, float], s: float,
                    lam: float = 1.0) -> np.ndarray:
    r"""The same temperature at given points, numpy: (M, 2) coordinates -> (M,) values.

    :math:`T_0 + \lambda A \exp(-|x - x_h|^2/(2s^2))`; equals the interpolation of
    :func:`hot_spot_temperature` at those points (what a reduced model needs at its points).
    """
    d2 = (points[:, 0] - x_h[0]) ** 2 + (points[:, 1] - x_h[1]) ** 2
    return T0 + lam * A * np.exp(-d2 / (2 * s ** 2))


def centrifugal_force(mesh, rho: float, omega: float, r0: float,
                      lam: fd.Constant | float = 1.0) -> ufl.core.expr.Expr:
    r""":math:`\lambda\rho\omega^2 (r_0 + y)\, e_y` as a UFL vector (force per unit volume)."""
    x = fd.SpatialCoordinate(mesh)
    return fd.as_vector([0.0, lam * rho * omega ** 2 * (r0 + x[1])])
