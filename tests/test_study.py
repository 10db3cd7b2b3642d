"""The study runner's parts: variants and overrides, the case registry, ``um2n simulate``."""

import subprocess
import sys

import pytest

from um2n.errors import UM2NError

CASES = ["blade-rom", "cylinder", "poisson", "runup", "swirl", "tohoku"]


def test_registry_lists_every_case_without_importing_them():
    from um2n.fem.study import case_names

    assert set(CASES) <= set(case_names())


@pytest.mark.firedrake
@pytest.mark.parametrize("name", CASES)
def test_every_case_loads_by_name(name):
    from um2n.fem.study import Case, get_case

    case = get_case(name)
    assert isinstance(case, Case) and case.name == name and case.help


def test_unknown_case_is_named():
    from um2n.fem.study import get_case

    with pytest.raises(UM2NError, match="unknown case 'swril'; known: .*swirl"):
        get_case("swril")


@pytest.mark.firedrake
def test_variant_overrides_are_checked():
    from um2n.fem.study import Variant, set_setting
    from um2n_simulations.swirl import SwirlConfig

    cfg = SwirlConfig()
    base = (cfg.lc, cfg.loop.mover, cfg.monitor.alpha, cfg.loop.output_dir)
    v = Variant("fine_um2n", {"lc": 0.02, "loop.mover": "um2n", "monitor.alpha": 5.0}).apply(cfg, "out")
    assert (v.lc, v.loop.mover, v.monitor.alpha, v.loop.output_dir) == (0.02, "um2n", 5.0, "out/fine_um2n")
    assert (cfg.lc, cfg.loop.mover, cfg.monitor.alpha, cfg.loop.output_dir) == base   # the base config is untouched
    assert base[2] != 5.0
    with pytest.raises(UM2NError, match="unknown setting 'loop.moverr'"):
        set_setting(cfg, "loop.moverr", "um2n")
    with pytest.raises(UM2NError, match="mover must be one of"):
        set_setting(cfg, "loop.mover", "magic")


@pytest.mark.firedrake
def test_simulate_help_and_errors_from_the_command_line():
    run = [sys.executable, "-m", "um2n", "simulate"]
    listing = subprocess.run(run + ["--help"], capture_output=True, text=True)
    assert listing.returncode == 0 and all(name in listing.stdout for name in CASES)
    case_help = subprocess.run(run + ["swirl", "--help"], capture_output=True, text=True)
    assert case_help.returncode == 0 and "--mover" in case_help.stdout and "--resume" in case_help.stdout
    bad = subprocess.run(run + ["swril"], capture_output=True, text=True)
    assert bad.returncode == 2 and "um2n: error: unknown case 'swril'" in bad.stderr
    bad_mover = subprocess.run(run + ["swirl", "--mover", "magic"], capture_output=True, text=True)
    assert bad_mover.returncode == 2 and "invalid choice: 'magic'" in bad_mover.stderr
