r"""Surface displacement of a rectangular dislocation in an elastic half-space (Okada 1985).

Okada, Y. (1985), *Surface deformation due to shear and tensile faults in a half-space*,
Bull. Seism. Soc. Am. 75(4), 1135-1154: closed forms (eqs. 25-30) for the displacement at
the free surface :math:`z = 0`. Fault coordinates: :math:`x` along strike, :math:`y`
perpendicular to it (horizontal), :math:`z` up; the fault is the rectangle
:math:`0 \le x \le L`, :math:`0 \le \zeta \le W` measured up-dip from its lower edge at depth
:math:`d`, dipping at :math:`\delta`. With :math:`p = y\cos\delta + d\sin\delta` and
:math:`q = y\sin\delta - d\cos\delta`, every quantity is evaluated in Chinnery's notation

.. math:: f(\xi, \eta)\,\| = f(x, p) - f(x, p - W) - f(x - L, p) + f(x - L, p - W).

The slip vector is (strike-slip :math:`U_1`, dip-slip :math:`U_2`, tensile :math:`U_3`). Only
numpy is needed; :class:`RectangularFault` maps a fault given as source models list it (map
position of its top edge's centre, depth, strike, dip, rake, slip) onto these coordinates and
its displacement back onto east, north and up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _chinnery_terms(xi, eta, q, dip, mu_ratio):
    """The bracketed terms of eqs. (25)-(30) at one corner ``(xi, eta)``; mu_ratio = mu/(lambda+mu)."""
    sd, cd = np.sin(dip), np.cos(dip)
    R = np.sqrt(xi ** 2 + eta ** 2 + q ** 2)
    X = np.sqrt(xi ** 2 + q ** 2)
    yt = eta * cd + q * sd                  # \tilde y
    dt = eta * sd - q * cd                  # \tilde d
    with np.errstate(divide="ignore", invalid="ignore"):
        atan = np.where(q != 0, np.arctan(xi * eta / (q * R)), 0.0)
        ln_eta = np.log(R + eta)
        if abs(cd) > 1e-12:
            I5 = np.where(xi != 0, mu_ratio * 2.0 / cd * np.arctan(
                (eta * (X + q * cd) + X * (R + X) * sd) / (xi * (R + X) * cd)), 0.0)
            I4 = mu_ratio / cd * (np.log(R + dt) - sd * ln_eta)
            I3 = mu_ratio * (yt / (cd * (R + dt)) - ln_eta) + sd / cd * I4
            I1 = mu_ratio * (-xi / (cd * (R + dt))) - sd / cd * I5
        else:                               # vertical fault: the limits of the above
            I5 = -mu_ratio * xi * sd / (R + dt)
            I4 = -mu_ratio * q / (R + dt)
            I3 = mu_ratio / 2 * (eta / (R + dt) + yt * q / (R + dt) ** 2 - ln_eta)
            I1 = -mu_ratio / 2 * xi * q / (R + dt) ** 2
        I2 = mu_ratio * (-ln_eta) - I3
        Reta, Rxi = R * (R + eta), R * (R + xi)
        strike = (xi * q / Reta + atan + I1 * sd,
                  yt * q / Reta + q * cd / (R + eta) + I2 * sd,
                  dt * q / Reta + q * sd / (R + eta) + I4 * sd)
        dip_slip = (q / R - I3 * sd * cd,
                    yt * q / Rxi + cd * atan - I1 * sd * cd,
                    dt * q / Rxi + sd * atan - I5 * sd * cd)
        tensile = (q ** 2 / Reta - I3 * sd ** 2,
                   -dt * q / Rxi - sd * (xi * q / Reta - atan) - I1 * sd ** 2,
                   yt * q / Rxi + cd * (xi * q / Reta - atan) - I5 * sd ** 2)
    return strike, dip_slip, tensile


def okada_surface_displacement(x, y, depth: float, dip_deg: float, length: float, width: float,
                               slip=(0.0, 1.0, 0.0), poisson: float = 0.25) -> np.ndarray:
    r"""Displacement ``(ux, uy, uz)`` at surface points ``(x, y)`` in Okada's fault coordinates.

    Parameters
    ----------
    x, y : arrays of the same shape (along strike, and perpendicular to it)
    depth : depth :math:`d` of the fault's lower edge (> 0)
    dip_deg : dip angle :math:`\delta` in degrees (0 < dip <= 90)
    length, width : :math:`L` along strike, :math:`W` along dip
    slip : (:math:`U_1` strike-slip, :math:`U_2` dip-slip, :math:`U_3` tensile), same unit as the output
    poisson : Poisson's ratio :math:`\nu`; :math:`\mu/(\lambda+\mu) = 1 - 2\nu`
    """
    if depth <= 0 or width <= 0 or length <= 0:
        raise ValueError(f"Okada fault: depth, length and width must be positive, got {depth}, {length}, {width}")
    if not 0 < dip_deg <= 90:
        raise ValueError(f"Okada fault: dip must be in (0, 90] degrees, got {dip_deg}")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    dip = np.radians(dip_deg)
    mu_ratio = 1.0 - 2.0 * poisson
    p = y * np.cos(dip) + depth * np.sin(dip)
    q = y * np.sin(dip) - depth * np.cos(dip)
    u = np.zeros((3,) + x.shape)
    for xi, eta, sign in ((x, p, 1.0), (x, p - width, -1.0), (x - length, p, -1.0), (x - length, p - width, 1.0)):
        terms = _chinnery_terms(xi, eta, q, dip, mu_ratio)
        for k in range(3):
            coef = -slip[0] / (2 * np.pi), -slip[1] / (2 * np.pi), slip[2] / (2 * np.pi)
            u[k] += sign * sum(c * t[k] for c, t in zip(coef, terms))
    return u


@dataclass
class RectangularFault:
    """A planar fault with uniform slip, as source models list it.

    ``x, y``: the map position (same unit as ``length``) of the centre of the fault's *top*
    edge; ``depth``: depth of that top edge; angles in degrees (strike clockwise from north,
    dip down to the right of strike, rake anticlockwise from the strike direction).
    """

    x: float
    y: float
    depth: float
    strike: float
    dip: float
    rake: float
    length: float
    width: float
    slip: float

    def uplift(self, east, north, poisson: float = 0.25) -> np.ndarray:
        """Vertical surface displacement at map points ``(east, north)``."""
        return self.displacement(east, north, poisson)[2]

    def displacement(self, east, north, poisson: float = 0.25) -> np.ndarray:
        """Surface displacement ``(u_east, u_north, u_up)`` at map points ``(east, north)``."""
        s, d, r = np.radians(self.strike), np.radians(self.dip), np.radians(self.rake)
        # map -> fault frame: origin above the lower-edge start corner (Okada's reference point)
        de, dn = np.asarray(east, float) - self.x, np.asarray(north, float) - self.y
        along = de * np.sin(s) + dn * np.cos(s)           # along strike from the top-edge centre
        across = de * np.cos(s) - dn * np.sin(s)          # to the right of strike (the down-dip side)
        x = along + 0.5 * self.length
        # Okada's y points to the left of strike; his origin is on the lower edge, which lies
        # W cos(dip) down-dip (to the right) of the top edge
        y = self.width * np.cos(d) - across
        bottom = self.depth + self.width * np.sin(d)
        u = okada_surface_displacement(x, y, bottom, self.dip, self.length, self.width,
                                       slip=(self.slip * np.cos(r), self.slip * np.sin(r), 0.0), poisson=poisson)
        # Okada's x is along strike; his y points to the left of strike (east/north components
        # of the strike direction: (sin s, cos s); of its left normal: (-cos s, sin s))
        ue = u[0] * np.sin(s) - u[1] * np.cos(s)
        un = u[0] * np.cos(s) + u[1] * np.sin(s)
        return np.array([ue, un, u[2]])
