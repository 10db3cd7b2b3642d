r"""The 2011 Tohoku data (from the Thetis project, MIT licence): mesh, bathymetry, 16 gauges.

The files are *not* part of this repository. They are looked for in, in this order: the
``data_dir`` argument (``um2n simulate tohoku --data-dir DIR``), the environment variable
``UM2N_TOHOKU_DATA``, and ``../shared/data/tohoku`` beside the checkout. The folder holds

* ``japan_sea.msh``: gmsh 2.2 mesh in UTM zone 54 coordinates (metres); boundary tags 100
  (open ocean), 200 and 300 (coasts);
* ``japan_sea_bathymetry.h5``: a Firedrake ``CheckpointFile`` with the mesh
  ``firedrake_default`` and the CG1 function ``Bathymetry`` (metres, positive down);
* ``stations_elev.csv``: ``name, latitude, longitude, start, end`` (the comparison window,
  seconds after the earthquake);
* ``observations/diagnostic_timeseries_<name>_elev.hdf5``: datasets ``time`` (s) and
  ``elev`` (m, de-tided), with the gauge position as attributes ``x``, ``y`` (UTM 54).

Bad or missing files raise :class:`~um2n.errors.UM2NError` naming the file and the problem.
:func:`utm_from_lonlat` (WGS84 transverse Mercator, Krüger's series to sixth order) puts
geographic positions, such as a fault's, on the mesh's coordinates.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from um2n.errors import UM2NError

ROOT = Path(__file__).resolve().parent.parent
UTM_ZONE = 54
STATION_COLUMNS = ("name", "latitude", "longitude", "start", "end")


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The Tohoku data folder (see the module docstring for where it is looked for)."""
    candidates = [Path(path)] if path else []
    if not path and os.environ.get("UM2N_TOHOKU_DATA"):
        candidates.append(Path(os.environ["UM2N_TOHOKU_DATA"]))
    if not path:
        candidates.append(ROOT.parent / "shared" / "data" / "tohoku")
    for c in candidates:
        if (c / "stations_elev.csv").is_file():
            return c
    where = ", ".join(str(c) for c in candidates)
    raise UM2NError(f"Tohoku data not found (looked in {where}): need stations_elev.csv, japan_sea.msh, "
                    "japan_sea_bathymetry.h5 and observations/ from the Thetis project; pass --data-dir "
                    "or set UM2N_TOHOKU_DATA")



def have_data(path: str | os.PathLike | None = None) -> bool:
    """Whether the Tohoku data folder is found (see :func:`data_dir`)."""
    try:
        data_dir(path)
        return True
    except UM2NError:
        return False

def utm_from_lonlat(lon, lat, zone: int = UTM_ZONE) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude/latitude (degrees) to UTM easting/northing (m), northern hemisphere.

    Krüger's series in the third flattening :math:`n` (Karney 2011), to :math:`n^6`: accurate
    to well under a millimetre within several thousand kilometres of the central meridian.
    """
    a, f = 6378137.0, 1 / 298.257223563
    k0, e0 = 0.9996, 500000.0
    n = f / (2 - f)
    A = a / (1 + n) * (1 + n ** 2 / 4 + n ** 4 / 64 + n ** 6 / 256)
    alpha = [n / 2 - 2 * n ** 2 / 3 + 5 * n ** 3 / 16 + 41 * n ** 4 / 180 - 127 * n ** 5 / 288 + 7891 * n ** 6 / 37800,
             13 * n ** 2 / 48 - 3 * n ** 3 / 5 + 557 * n ** 4 / 1440 + 281 * n ** 5 / 630 - 1983433 * n ** 6 / 1935360,
             61 * n ** 3 / 240 - 103 * n ** 4 / 140 + 15061 * n ** 5 / 26880 + 167603 * n ** 6 / 181440,
             49561 * n ** 4 / 161280 - 179 * n ** 5 / 168 + 6601661 * n ** 6 / 7257600,
             34729 * n ** 5 / 80640 - 3418889 * n ** 6 / 1995840,
             212378941 * n ** 6 / 319334400]
    lam0 = np.radians(6 * zone - 183)
    phi, lam = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float)) - lam0
    e = np.sqrt(f * (2 - f))
    t = np.sinh(np.arctanh(np.sin(phi)) - e * np.arctanh(e * np.sin(phi)))
    xi_p = np.arctan2(t, np.cos(lam))
    eta_p = np.arctanh(np.sin(lam) / np.sqrt(1 + t ** 2))
    xi, eta = xi_p.copy(), eta_p.copy()
    for j, aj in enumerate(alpha, start=1):
        xi = xi + aj * np.sin(2 * j * xi_p) * np.cosh(2 * j * eta_p)
        eta = eta + aj * np.cos(2 * j * xi_p) * np.sinh(2 * j * eta_p)
    return e0 + k0 * A * eta, k0 * A * xi



def lonlat_from_utm(x, y, zone: int = UTM_ZONE, tol: float = 1e-4,
                    guess: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """UTM easting/northing (m) to longitude/latitude (degrees): Newton's method on
    :func:`utm_from_lonlat` (finite-difference Jacobian), to ``tol`` metres. ``guess``: the
    first iterate ``(lon, lat)`` (for points that moved a little since their last inversion;
    default: a spherical estimate)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if guess is not None and np.shape(guess[0]) == x.shape and np.shape(guess[1]) == y.shape:
        lon, lat = np.array(guess[0], dtype=float), np.array(guess[1], dtype=float)
    else:
        lat = y / 110.9e3
        lon = (6 * zone - 183) + (x - 500000.0) / (111.3e3 * np.cos(np.radians(lat)))
    h = 1e-6
    for _ in range(20):
        ex, ny = utm_from_lonlat(lon, lat, zone)
        rx, ry = ex - x, ny - y
        if max(np.abs(rx).max(initial=0), np.abs(ry).max(initial=0)) < tol:
            break
        a, c = [(v - w) / h for v, w in zip(utm_from_lonlat(lon + h, lat, zone), (ex, ny))]
        b, d = [(v - w) / h for v, w in zip(utm_from_lonlat(lon, lat + h, zone), (ex, ny))]
        det = a * d - b * c
        lon = lon - (d * rx - b * ry) / det
        lat = lat - (-c * rx + a * ry) / det
    return lon, lat

@dataclass
class Gauge:
    """One tide gauge: its position, its comparison window and its record."""

    name: str
    latitude: float
    longitude: float
    start: float
    end: float
    x: float
    y: float
    time: np.ndarray = field(repr=False)
    elev: np.ndarray = field(repr=False)


def load_gauges(path: str | os.PathLike | None = None) -> list[Gauge]:
    """The gauges of ``stations_elev.csv`` with their observation records."""
    import h5py

    folder = data_dir(path)
    csv_path = folder / "stations_elev.csv"
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in STATION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UM2NError(f"{csv_path}: missing column(s) {', '.join(missing)} (need {', '.join(STATION_COLUMNS)})")
        rows = list(reader)
    gauges = []
    for line, row in enumerate(rows, start=2):
        try:
            lat, lon, start, end = (float(row[k]) for k in ("latitude", "longitude", "start", "end"))
        except ValueError:
            raise UM2NError(f"{csv_path}, line {line}: latitude, longitude, start and end must be numbers") from None
        obs = folder / "observations" / f"diagnostic_timeseries_{row['name']}_elev.hdf5"
        if not obs.is_file():
            raise UM2NError(f"{obs}: observation record of gauge {row['name']} not found")
        try:
            with h5py.File(obs, "r") as h:
                for key in ("time", "elev"):
                    if key not in h:
                        raise UM2NError(f"{obs}: no dataset {key!r} (need 'time' and 'elev')")
                time, elev = np.array(h["time"], float), np.array(h["elev"], float)
                if "x" not in h.attrs or "y" not in h.attrs:
                    raise UM2NError(f"{obs}: no attributes 'x' and 'y' (the gauge's UTM position)")
                x, y = float(h.attrs["x"]), float(h.attrs["y"])
        except OSError as exc:
            raise UM2NError(f"{obs}: not a readable HDF5 file ({exc})") from None
        if time.shape != elev.shape or time.ndim != 1 or len(time) < 2 or not np.all(np.diff(time) > 0):
            raise UM2NError(f"{obs}: 'time' must increase and match 'elev' in length")
        gauges.append(Gauge(row["name"], lat, lon, start, end, x, y, time, elev))
    return gauges


def load_bathymetry(path: str | os.PathLike | None = None):
    """``(mesh, bathymetry)`` from ``japan_sea_bathymetry.h5`` (a Firedrake CheckpointFile)."""
    import firedrake as fd

    h5 = data_dir(path) / "japan_sea_bathymetry.h5"
    if not h5.is_file():
        raise UM2NError(f"{h5}: bathymetry checkpoint not found")
    with fd.CheckpointFile(str(h5), "r") as cf:
        mesh = cf.load_mesh("firedrake_default")
        bathymetry = cf.load_function(mesh, "Bathymetry")
    return mesh, bathymetry
