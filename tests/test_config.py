"""TOML configurations: every shipped config loads, holds only overrides of the dataclass
defaults (one source of truth), and bad ones are named clearly."""

import dataclasses
import typing
import importlib
from pathlib import Path

import pytest

from um2n.config import read_toml
from um2n.errors import UM2NError

ROOT = Path(__file__).resolve().parent.parent
#: every file of configs/ and the dataclass it configures
CONFIGS = {
    "swirl.toml": ("um2n_simulations.swirl", "SwirlConfig"),
    "cylinder-2d2.toml": ("um2n_simulations.cylinder", "CylinderConfig"),
    "runup.toml": ("um2n_simulations.runup", "RunupConfig"),
    "tohoku.toml": ("um2n_simulations.tohoku", "TohokuConfig"),
    "blade-rom.toml": ("um2n_simulations.blade.rom_case", "BladeROMConfig"),
    "train-um2n-v1.toml": ("um2n.train", "TrainConfig"),
    "train-um2n-v2.toml": ("um2n.train", "TrainConfig"),
    "train-um2n-v2-amplitude-trial.toml": ("um2n.train", "TrainConfig"),
    "train-um2n-v3-mesh.toml": ("um2n.train", "TrainConfig"),
    "train-um2n-v3.toml": ("um2n.train", "TrainConfig"),
    "train-um2n-deep-trial.toml": ("um2n.train", "TrainConfig"),
    "train-um2n-3d-v1.toml": ("um2n.train", "TrainConfig"),
}


def test_every_config_file_is_covered():
    assert sorted(p.name for p in (ROOT / "configs").glob("*.toml")) == sorted(CONFIGS)


def _defaults_repeated(cls, raw: dict, where: str) -> list[str]:
    """The keys of ``raw`` whose value equals the dataclass default (recursively into tables)."""
    out = []
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in raw.items():
        f = fields[key]
        optional = [t for t in typing.get_args(hints[key]) if dataclasses.is_dataclass(t)]
        if isinstance(value, dict) and f.default is None and optional:      # an optional table
            default = optional[0]()
            out += [f"[{key}] {k}" for k, v in value.items() if getattr(default, k) == v]
            continue
        if isinstance(value, dict) and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
            if dataclasses.is_dataclass(default):
                out += [f"[{key}] {k}" for k, v in value.items() if getattr(default, k) == v]
                continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            continue                                  # a required setting: no default to repeat
        if isinstance(default, (list, tuple)) and isinstance(value, list):
            value = type(default)(value)
        if default == value:
            out.append(f"{where}: {key}")
    return out


@pytest.mark.firedrake
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shipped_config_loads_and_holds_only_overrides(name):
    from um2n.config import load_config

    module, cls_name = CONFIGS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    path = ROOT / "configs" / name
    if cls_name == "TrainConfig":
        cfg = cls.from_toml(path)
        assert cfg.epochs > 0
    else:
        cfg = load_config(cls, path)
        assert dataclasses.is_dataclass(cfg)
    repeated = _defaults_repeated(cls, read_toml(path), name)
    assert not repeated, f"settings equal to their dataclass default (keep defaults in one place): {repeated}"


@pytest.mark.firedrake
def test_bad_simulation_config_is_named(tmp_path):
    from um2n.config import load_config
    from um2n_simulations.swirl import SwirlConfig

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
    p.write_text("[monitor]\nkind = 'laplacian'\n")
    with pytest.raises(UM2NError, match=r"bad.toml \[monitor\]: kind must be one of hessian, gradient"):
        load_config(SwirlConfig, p)
    with pytest.raises(UM2NError, match="config file not found"):
        load_config(SwirlConfig, tmp_path / "missing.toml")


@pytest.mark.firedrake
def test_config_repeating_a_default_is_detected(tmp_path):
    """The check above can fail: a file that restates a default is caught."""
    from um2n_simulations.swirl import SwirlConfig

    default = SwirlConfig()
    assert _defaults_repeated(SwirlConfig, {"dt": default.dt, "lc": 0.02,
                                            "monitor": {"alpha": default.monitor.alpha, "power": 1.0}}, "x") == [
        "x: dt", "[monitor] alpha"]


@pytest.mark.firedrake
@pytest.mark.parametrize("module, cls_name, table, key, value, kept", [
    # the deformation case's loop: move every 5 steps, the safeguard's least volume ratio 0.25
    ("um2n_simulations.deformation", "DeformationConfig", "loop", "weights", "my.safetensors",
     {"move_every": 5, "min_cell_ratio": 0.25, "parallel_network": "gathered", "output_dir": "output/deformation"}),
    # the swirl's monitor amplitude 8
    ("um2n_simulations.swirl", "SwirlConfig", "monitor", "power", 1.0, {"alpha": 8.0}),
    ("um2n_simulations.tohoku", "TohokuConfig", "loop", "mover", "none", {"move_every": 5}),
])
def test_a_table_keeps_the_case_defaults_it_does_not_set(tmp_path, module, cls_name, table, key, value, kept):
    """A ``[loop]`` or ``[monitor]`` table sets its keys over the case's own defaults, not
    over the bare ``LoopConfig()`` / ``MonitorConfig()``."""
    from um2n.config import load_config

    cls = getattr(importlib.import_module(module), cls_name)
    path = tmp_path / "case.toml"
    path.write_text(f"[{table}]\n{key} = {value!r}\n".replace("'", '"'))
    cfg = load_config(cls, path)
    section = getattr(cfg, table)
    assert getattr(section, key) == value
    for k, v in kept.items():
        assert getattr(section, k) == v, k
        assert getattr(getattr(cls(), table), k) == v            # the case's default indeed
