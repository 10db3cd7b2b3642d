"""TOML configurations: every shipped config loads; bad ones are named clearly."""

from pathlib import Path

import pytest

from um2n.errors import UM2NError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.firedrake
@pytest.mark.parametrize("name, module, cls", [("swirl.toml", "um2n_simulations.swirl", "SwirlConfig"),
                                               ("cylinder-2d2.toml", "um2n_simulations.cylinder", "CylinderConfig")])
def test_shipped_simulation_configs_load(name, module, cls):
    import importlib

    from um2n.config import load_config

    C = getattr(importlib.import_module(module), cls)
    cfg = load_config(C, ROOT / "configs" / name)
    assert cfg.loop.mover == "um2n" and cfg.loop.move_every == 10


@pytest.mark.firedrake
def test_bad_simulation_config_is_named(tmp_path):
    from um2n_simulations.swirl import SwirlConfig
    from um2n.config import load_config

    p = tmp_path / "bad.toml"
    p.write_text("lc = 0.03\nmesh_size = 2\n")
    with pytest.raises(UM2NError, match=r"bad.toml: unknown setting\(s\) mesh_size"):
        load_config(SwirlConfig, p)
    p.write_text("[loop]\nmover = 'magic'\n")
    with pytest.raises(UM2NError, match="mover must be one of"):
        load_config(SwirlConfig, p)
    p.write_text("[loop]\nmove_evry = 3\n")
    with pytest.raises(UM2NError, match=r"\[loop\]: unknown setting\(s\) move_evry"):
        load_config(SwirlConfig, p)
    with pytest.raises(UM2NError, match="config file not found"):
        load_config(SwirlConfig, tmp_path / "missing.toml")
