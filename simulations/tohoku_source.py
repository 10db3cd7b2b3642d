r"""The earthquake source of the 2011 Tohoku tsunami: Satake et al. (2013), 55 Okada subfaults.

**Subfaults.** The model of

    Satake, K., Fujii, Y., Harada, T. & Namegaya, Y. (2013). Time and space distribution of
    coseismic slip of the 2011 Tohoku earthquake as inferred from tsunami waveform data.
    Bull. Seismol. Soc. Am. 103(2B), 1473-1492, doi:10.1785/0120120122,

with the parameters as transcribed by Geoscience Australia (``GeoscienceAustralia/ptha``,
``misc/nearshore_testing_2020/sources/Tohoku2011/SatakeEtAl2013``; kept in
``simulations/data/satake2013_tohoku_subfaults.csv``): strike 193°, rake 81°, 50 km long
subfaults, 25 or 50 km wide, dips 8-16°, each with its slip in five time windows and the time
its rupture starts. Each subfault is an Okada (1985) rectangle
(:mod:`um2n_simulations.okada`, Poisson ratio 0.25) placed on UTM-54 coordinates
(:func:`satake2013_subfaults`), with its total slip (the sum of the five windows).

**Sea-surface elevation.** The elevation of unit slip on subfault :math:`i` is its vertical
seafloor displacement plus the effect of the horizontal displacement on the sloping seafloor
(Tanioka & Satake 1996; :func:`unit_slip_elevations`),

.. math:: G_i = u_{z,i} + u_{x,i}\,\partial_x b + u_{y,i}\,\partial_y b,

and the elevation of slips :math:`s` is :math:`\sum_i s_i G_i`. :func:`initial_elevation` puts
all the slip in at once (the instantaneous source). Nothing is fitted to the gauges. Left out:
the Kajiura smoothing, and the change of depth by the uplift.

**Rupture in time** (:func:`satake2013_slip_history`). Each subfault starts to slip when the
rupture front reaches it (the transcription's start times, which fit the distance from the
epicentre at 2.05 km/s to within 6 s) and slips in five consecutive windows of length
:math:`T_w`, at a constant rate within each, by the window's slip:

.. math:: s_i(t) = \sum_{k=1}^{5} s_{ik}\,\mathrm{clip}\big((t - t_i - (k-1)T_w)/T_w, 0, 1\big).

The transcription lists the five slips but not the window length; 30 s (the default) is the
paper's window as recalled here, not re-checked against its text, and the modelled arrivals
and far-field waveforms depend on it. With 30 s windows the rupture ends 4.7 min after the
origin; the slip of the northern near-trench subfaults 0A-0C comes 2-4 min after it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from um2n_simulations.okada import RectangularFault
from um2n_simulations.tohoku_data import utm_from_lonlat

SOURCE_FILE = Path(__file__).resolve().parent / "data" / "satake2013_tohoku_subfaults.csv"
EARTH_RADIUS = 6371.0e3


def _destination(lon: float, lat: float, bearing: float, distance: float) -> tuple[float, float]:
    """The point ``distance`` (m) from (lon, lat) along the initial ``bearing`` (degrees), on a sphere."""
    p1, l1, b, d = math.radians(lat), math.radians(lon), math.radians(bearing), distance / EARTH_RADIUS
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(l2), math.degrees(p2)


def _source_rows(path: str | Path = SOURCE_FILE) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def satake2013_subfaults(path: str | Path = SOURCE_FILE) -> list[RectangularFault]:
    """The 55 subfaults of Satake et al. (2013) as :class:`RectangularFault` in UTM-54 metres,
    each with its total slip.

    Each row gives the up-strike end of the subfault's top edge; its centre lies half a length
    along the strike. The strike is turned from true north to the UTM grid by the local
    meridian convergence (computed from two nearby points), about 2° here.
    """
    faults = []
    for r in _source_rows(path):
        lon, lat, strike, L = float(r["lon"]), float(r["lat"]), float(r["strike"]), float(r["length_km"]) * 1e3
        clon, clat = _destination(lon, lat, strike, 0.5 * L)
        x, y = utm_from_lonlat(np.array([clon]), np.array([clat]))
        lon2, lat2 = _destination(clon, clat, strike, 1000.0)
        x2, y2 = utm_from_lonlat(np.array([lon2]), np.array([lat2]))
        grid_strike = math.degrees(math.atan2(float(x2[0] - x[0]), float(y2[0] - y[0])))
        faults.append(RectangularFault(x=float(x[0]), y=float(y[0]), depth=float(r["top_depth_km"]) * 1e3,
                                       strike=grid_strike, dip=float(r["dip"]), rake=float(r["rake"]),
                                       length=L, width=float(r["width_km"]) * 1e3, slip=float(r["slip_m"])))
    return faults


@dataclass(frozen=True)
class SlipHistory:
    r"""The slip of each subfault in time: it starts at ``start[i]`` (s after the origin) and
    slips ``windows[i, k]`` (m) during :math:`[t_i + kT_w, t_i + (k+1)T_w]` at a constant rate:

    .. math:: s_i(t) = \sum_k s_{ik}\,\mathrm{clip}\big((t - t_i - kT_w)/T_w, 0, 1\big)
    """

    start: np.ndarray
    windows: np.ndarray
    window: float

    def slip(self, t: float) -> np.ndarray:
        """The slip (m) of every subfault at time ``t`` (s)."""
        k = np.arange(self.windows.shape[1])
        frac = np.clip((t - self.start[:, None] - k[None, :] * self.window) / self.window, 0.0, 1.0)
        return (self.windows * frac).sum(axis=1)

    @property
    def end(self) -> float:
        """The time (s) the last window with slip closes."""
        last = [np.nonzero(w > 0)[0].max() + 1 if (w > 0).any() else 0 for w in self.windows]
        return float((self.start + np.array(last) * self.window).max())


def satake2013_slip_history(window: float = 30.0, path: str | Path = SOURCE_FILE) -> SlipHistory:
    """The rupture start times and window slips of Satake et al. (2013), in the order of
    :func:`satake2013_subfaults`; ``window``: each window's length (s)."""
    rows = _source_rows(path)
    start = np.array([60.0 * float(r["rupture_start_min"]) for r in rows])
    windows = np.array([[float(r[f"slip_w{k}"]) for k in range(1, 6)] for r in rows])
    return SlipHistory(start=start, windows=windows, window=float(window))


def unit_slip_elevations(bathymetry, space, faults: list[RectangularFault]) -> np.ndarray:
    r"""The sea-surface elevation of unit slip on each fault, at the nodes of ``space`` (DG1):
    the vertical seafloor displacement plus the effect of the horizontal one on the sloping
    seafloor (Tanioka & Satake 1996), as the source's authors computed it:

    .. math:: G_i = u_{z,i} + u_{x,i}\,\partial_x b + u_{y,i}\,\partial_y b

    (:math:`b` the depth, positive down: seafloor pushed towards deeper water rises).
    Returns an array ``(len(faults), number of the process's own nodes)`` (all the nodes on one
    process): the elevation of slips :math:`s` is :math:`s^T G`.
    """
    import firedrake as fd

    mesh = space.mesh()
    Vx = fd.VectorFunctionSpace(mesh, space.ufl_element().family(), space.ufl_element().degree())
    X = fd.Function(Vx).interpolate(fd.SpatialCoordinate(mesh))
    grad_b = fd.Function(Vx).interpolate(fd.grad(bathymetry)).dat.data_ro
    east, north = X.dat.data_ro[:, 0], X.dat.data_ro[:, 1]
    G = np.zeros((len(faults), len(east)))
    for i, fault in enumerate(faults):
        u = np.nan_to_num(replace(fault, slip=1.0).displacement(east, north))   # on a surface trace: 0
        G[i] = u[2] + u[0] * grad_b[:, 0] + u[1] * grad_b[:, 1]
    return G


def initial_elevation(bathymetry, space, faults: list[RectangularFault] | None = None):
    """The elevation of all the slip at once (the instantaneous source), a Function on ``space``."""
    import firedrake as fd

    faults = satake2013_subfaults() if faults is None else faults
    active = [f for f in faults if f.slip > 0]
    eta0 = fd.Function(space, name="initial_elevation")
    eta0.dat.data[:] = np.array([f.slip for f in active]) @ unit_slip_elevations(bathymetry, space, active)
    return eta0
