"""DFG 2D-2 (Re = 100): the benchmark quantities on the static mesh, in dt and in h.

Runs the cylinder case (``simulations/cylinder.py``) statically for each mesh and dt of the
grid, from rest to T = 8 s, statistics over [6, 8] s, and reports c_D,max, c_L,max, St and
Δp against the reference intervals (Schäfer & Turek 1996), the wall time of each run, and
which runs fall inside all four intervals. The JSON is rewritten after every run and a run
already in it is not repeated, so a killed benchmark resumes where it stopped::

    bash install/run.sh benchmarks/dfg_convergence.py [--grid 0:0.01 0:0.005:curved 1:0.005:curved,wake=0.02 ...]

A grid item is ``REFINE:DT[:OPTIONS]``, the options a comma-separated list of ``curved``
(the cylinder's edges on the circle: ``CylinderConfig.curved``) and ``wake=LC`` (the size in
the wake box, ``CylinderConfig.lc_wake``).

Writes ``benchmarks/results/dfg_convergence.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRID = ["0:0.01", "0:0.005", "0:0.0025", "1:0.005", "0:0.01:curved", "0:0.005:curved", "0:0.0025:curved",
        "1:0.005:curved"]


def parse_item(item: str) -> tuple[str, dict]:
    """``REFINE:DT[:OPTIONS]`` -> (label, CylinderConfig overrides)."""
    parts = item.split(":")
    if len(parts) not in (2, 3):
        raise SystemExit(f"--grid item {item!r}: expected REFINE:DT[:OPTIONS]")
    refine, dt = int(parts[0]), float(parts[1])
    label, overrides = f"refine {refine}, dt {dt:g}", {"refine": refine, "dt": dt}
    for opt in (parts[2].split(",") if len(parts) == 3 else []):
        if opt == "curved":
            overrides["curved"] = True
            label += ", curved"
        elif opt.startswith("wake="):
            overrides["lc_wake"] = float(opt[5:])
            label += f", wake {overrides['lc_wake']:g}"
        else:
            raise SystemExit(f"--grid item {item!r}: unknown option {opt!r} (curved, wake=LC)")
    return label, overrides


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", nargs="+", default=GRID, metavar="REFINE:DT")
    ap.add_argument("-o", "--output", default=str(ROOT / "benchmarks" / "results" / "dfg_convergence.json"))
    ap.add_argument("--output-dir", default="output/benchmarks/dfg_convergence")
    args = ap.parse_args()
    import petsc4py

    petsc4py.init(sys.argv[:1])
    from um2n.fem.study import Variant
    from um2n.io import atomic_path
    from um2n_simulations.cylinder import CASE, REFERENCE, CylinderConfig

    path = Path(args.output)
    record = json.loads(path.read_text()) if path.exists() else {}
    record.setdefault("runs", {})
    record.update({"case": "2d-2", "reference": REFERENCE["2d-2"],
                   "machine": {"platform": platform.platform(), "python": platform.python_version()}})
    for item in args.grid:
        label, overrides = parse_item(item)
        if label in record["runs"]:
            print(f"{label}: done before, kept", flush=True)
            continue
        cfg = Variant(label.replace(" ", "").replace(",", "_"), {
            "case": "2d-2", **overrides, "loop.mover": "none", "loop.write_vtk": False,
            "loop.snapshots": 0, "loop.progress": False, "loop.checkpoint_every": 10 ** 6}).apply(
            CylinderConfig(), args.output_dir)
        t0 = time.perf_counter()
        result = CASE.run(cfg)
        wall = time.perf_counter() - t0
        s = result.summary
        keys = ("c_D_max", "c_L_max", "St", "dp_at_lift_max")
        inside = {k: (lo <= s[k2] <= hi) for k, k2, (lo, hi) in
                  ((k, k2, REFERENCE["2d-2"][k]) for k, k2 in zip(("c_D_max", "c_L_max", "St", "dp"), keys))}
        record["runs"][label] = {"refine": cfg.refine, "dt": cfg.dt, "curved": cfg.curved, "lc_wake": cfg.lc_wake,
                                 "vertices": s["vertices"], "dofs": s["dofs"],
                                 **{k: s[k] for k in keys}, "inside": inside, "all_inside": all(inside.values()),
                                 "wall_seconds": wall}
        print(f"{label}: " + ", ".join(f"{k} {s[k]:.4f}" for k in keys) + f"; inside {inside}; {wall:.0f} s",
              flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=2, default=float))
    passing = [k for k, r in record["runs"].items() if r["all_inside"]]
    print("inside all four intervals:", ", ".join(passing) or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
