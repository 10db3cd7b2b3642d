"""The Tohoku data (../shared/data/tohoku): gauges, records, bathymetry, and clear errors."""

import os
import shutil

import numpy as np
import pytest

from um2n_simulations.tohoku_data import data_dir, have_data, load_gauges, utm_from_lonlat
from um2n.errors import UM2NError

NEAR_FIELD_GPS = ["801", "802", "803", "804", "806", "807"]


# CI has ../shared beside its clone: there a missing data folder is a failure, not a skip
pytestmark = pytest.mark.skipif(not have_data() and os.environ.get("CI") != "true",
                                reason="Tohoku data not found (../shared/data/tohoku or UM2N_TOHOKU_DATA)")


def test_gauges_and_records():
    gauges = {g.name: g for g in load_gauges()}
    assert len(gauges) == 16
    assert set(NEAR_FIELD_GPS) <= set(gauges)
    g = gauges["801"]
    assert g.time[0] == 0 and g.time[-1] == 3600 and np.max(g.elev) == pytest.approx(5.85, abs=0.01)


def test_utm_matches_the_gauge_positions_of_the_data():
    """The records carry their UTM-54 position: our lon/lat conversion must agree."""
    for g in load_gauges():
        x, y = utm_from_lonlat(g.longitude, g.latitude)
        tol = 0.05 if abs(g.longitude - 141.0) < 4 else 5.0     # far from the central meridian the
        assert abs(x - g.x) < tol and abs(y - g.y) < tol, g.name  # data's own series drifts by ~2 m


@pytest.mark.firedrake
def test_bathymetry_checkpoint_loads():
    from um2n_simulations.tohoku_data import load_bathymetry

    mesh, b = load_bathymetry()
    assert mesh.num_vertices() == 8117
    assert b.dat.data_ro.min() == pytest.approx(30.0, abs=1e-6) and 9000 < b.dat.data_ro.max() < 10000


def test_bad_data_is_named(tmp_path):
    src = data_dir()
    dst = tmp_path / "tohoku"
    shutil.copytree(src / "observations", dst / "observations")
    (dst / "stations_elev.csv").write_text("name,latitude,longitude,start\n801,38.2,141.6,0\n")
    with pytest.raises(UM2NError, match=r"stations_elev.csv: missing column\(s\) end"):
        load_gauges(dst)
    (dst / "stations_elev.csv").write_text("name,latitude,longitude,start,end\n999,38.2,141.6,0,3600\n")
    with pytest.raises(UM2NError, match="diagnostic_timeseries_999_elev.hdf5: observation record of gauge 999"):
        load_gauges(dst)
    (dst / "observations" / "diagnostic_timeseries_999_elev.hdf5").write_text("not hdf5")
    with pytest.raises(UM2NError, match="not a readable HDF5 file"):
        load_gauges(dst)
    with pytest.raises(UM2NError, match="Tohoku data not found"):
        data_dir(tmp_path / "nowhere")
