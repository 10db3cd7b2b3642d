"""Blade ROM benchmark: errors, speed-ups, indicator correlations, enrichments, mover study.

Per unseen load: the ROM's errors and speed-ups with and without enrichment, the
enrichments; the indicator's correlation with the error, the ECM size; and the mover study;
as JSON (printed and written to ``benchmarks/results/blade_rom.json``).

The ROM study is the default ``um2n simulate blade-rom`` configuration (``BladeROMConfig``),
or ``--lc`` for another HF mesh size, ``--indicator`` for another indicator. The mover study
(``blade_mover_study``, ``MoverStudyConfig``): coarse meshes (static and UM2N-adapted, equal
dofs) against a fine reference. Usage::

    bash install/run.sh benchmarks/blade_rom.py [--lc LC] [--indicator INDICATOR] [--no-mover]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from um2n.io import atomic_path
    from um2n_simulations.blade.adapt import blade_mover_study
    from um2n_simulations.blade.rom import INDICATORS
    from um2n_simulations.blade.rom_case import BladeROMStudy, BladeROMConfig

    default = BladeROMConfig()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lc", type=float, default=default.lc, help="HF mesh size (default: %(default)s, the case's)")
    ap.add_argument("--indicator", choices=INDICATORS, default=default.rom.indicator,
                    help="the indicator deciding enrichment (default: %(default)s, the case's)")
    ap.add_argument("--no-mover", action="store_true", help="skip the mover study")
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "blade_rom.json"))
    a = ap.parse_args()
    cfg = replace(default, lc=a.lc, rom=replace(default.rom, indicator=a.indicator), progress=False, vtk=False)
    t0 = time.perf_counter()
    case = BladeROMStudy(cfg)
    s = case.run()
    wall = time.perf_counter() - t0
    loads = []
    for r in s["loads"]:
        e, n = r["enrichment"], r["no_enrichment"]
        loads.append({"y_h": r["load"]["x_h"][1], "x_h": r["load"]["x_h"][0], "A": r["load"]["A"],
                      "hf_seconds": r["hf_seconds"],
                      "error_u_cycle_enrichment": e["error_u_cycle"], "error_u_cycle_no_enrichment": n["error_u_cycle"],
                      "error_p_end_enrichment": e["error_p_end"], "error_p_end_no_enrichment": n["error_p_end"],
                      "enrichments": e["enrichments"], "error_u_max_step_enrichment": e["error_u_max_step"],
                      "error_u_max_step_no_enrichment": n["error_u_max_step"],
                      "indicator_max_no_enrichment": max(x["indicator"] for x in n["steps"]),
                      "indicator_stress_max_no_enrichment": max(x["indicator_stress"] for x in n["steps"]),
                      "indicator_hierarchical_max_no_enrichment": max(x["indicator_hierarchical"] for x in n["steps"]),
                      "error_u_cyclemax_max_no_enrichment": max(x["error_u_cyclemax"] for x in n["steps"]),
                      "enrichment_steps": [x["step"] for x in e["steps"] if x["enriched"]],
                      "online_seconds_enrichment": e["online_seconds"], "of_which_enrichment_seconds": e["enrichment_seconds"],
                      "enrichment_seconds_by_part": e["enrichment_parts"],
                      "online_seconds_no_enrichment": n["online_seconds"],
                      "speedup_enrichment": e["speedup"], "speedup_no_enrichment": n["speedup"],
                      "modes_end": e["modes_end"], "ecm_points_end": e["ecm_points_end"]})
    out = {"case": "blade-rom", "machine": platform.processor() or platform.machine(),
           "hf": s["hf"], "offline": {k: v for k, v in s["offline"].items() if k != "training_loads"},
           "training_loads": s["offline"]["training_loads"], "rom_config": vars(cfg.rom),
           "adapt": s["adapt"], "calibration": s["calibration"], "loads": loads, "overall": s["overall"], "spearman": s["spearman"],
           "rom_study_wall_s": wall,
           "definitions": {"error_u_cycle": "sqrt(sum_n |u_rom^n - u_hf^n|_L2^2 / sum_n |u_hf^n|_L2^2) over the 40 steps",
                           "error_u (per step)": "|u_rom^n - u_hf^n|_L2 / |u_hf^n|_L2, ROM and HF each run over the cycle",
                           "speedup": "HF cycle wall time (Newton steps, same solver settings as the training runs) / "
                                      "ROM online wall time (all steps, indicators, enrichments with their HF steps "
                                      "and rebuilds), same load, same run; the enriched ROM is one adaptive online "
                                      "phase over the unseen loads in the listed order (enrichments kept)",
                           "overall speedup": "sum of the HF times / sum of the ROM online times over the unseen loads",
                           "error_u_cyclemax (per step)": "|u_rom^n - u_hf^n|_L2 / max_{k<=n} |u_hf^k|_L2",
                           "indicator": "the one deciding enrichment (rom_config.indicator)",
                           "indicator_hierarchical": "hierarchical estimate zeta (one Newton correction of the ROM "
                                                     "solution in the richer POD space Z, integrated by Z's own ECM "
                                                     "rule, its L2 norm) over max_{k<=n} |u_rom^k|_L2; tolerance "
                                                     "target_error (no calibration)",
                           "indicator_stress": "Gappy-POD residual of sqrt(w) sigma at the reduced points over the "
                                               "largest |sqrt(w) sigma| at the reduced points so far in the cycle "
                                               "(tolerance from leave-one-load-out ROMs when it decides); "
                                               "indicator_stress_current: over the current norm; indicator_p: the "
                                               "same for p",
                           "spearman.hierarchical": "estimate_over_u_rom_vs_error_u: zeta/|u_rom^n| vs error_u; "
                                                    "indicator_vs_error_u_cyclemax: zeta/max_k|u_rom^k| vs "
                                                    "error_u_cyclemax; estimate_over_true_error: zeta / "
                                                    "|u_rom - u_hf|_L2 over the steps",
                           "spearman": "over all steps of all unseen loads (and of those inside the training range), "
                                       "ROM without enrichment",
                           "error_p_end": "weighted l2 error of the Gappy-POD p at the end of the cycle, relative"}}
    if not a.no_mover:
        out["mover_study"] = blade_mover_study(default.hot_spot_width, default.depth, default.adapt)
    text = json.dumps(out, indent=2, default=float)
    print(text)
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(a.output) as tmp:
        Path(tmp).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
