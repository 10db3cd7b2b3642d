"""Moving-mesh simulations side by side: accuracy and cost of each mover, in one run.

``swirl``: LeVeque's reversing swirl on one coarse gmsh mesh with the movers ``none``,
``um2n`` and ``ma`` (the same vertex count for all); for each, the L2 error against the
exact final state, the error reduction against ``none``, the moves made and rejected, the
most tangled elements seen at any step, and the wall time per step split into solve,
monitor, move and transfer, with the mover's share of a step.

``cylinder``: DFG 2D-2 (Re = 100) on a coarse static mesh, the same coarse mesh moved by
UM2N, and a static mesh about 4 times finer; c_D,max, c_L,max, St and Δp against the
reference intervals, with the same timing split.

``runup``: the NTHMP solitary-wave run-up on the coarse channel static, moved by UM2N, and
refined once (4 times the cells); the maximum run-up against the analytic law.

``tohoku``: the 2011 Tohoku tsunami (2 h) on ``japan_sea.msh`` static and moved by UM2N,
refined once (4 times the cells) static and moved by UM2N, and refined twice (16 times the
cells) static; arrival, peak and correlation at the 16 gauges.

Each with the same timing split. Prints JSON and writes it to
``benchmarks/results/<case>.json``. Usage::

    bash install/run.sh benchmarks/simulations.py swirl [--lc 0.03] [--movers none um2n ma]
    bash install/run.sh benchmarks/simulations.py cylinder [--T 8]
    bash install/run.sh benchmarks/simulations.py runup
    bash install/run.sh benchmarks/simulations.py tohoku [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _record(res, wall: float) -> dict:
    d = res.as_dict()
    per = d["seconds_per_step"]
    step_total = sum(per.values())
    return {"summary": res.summary, "moves": res.moves, "moves_rejected": res.moves_rejected,
            "max_inverted": res.max_inverted, "steps": res.steps, "wall_s": wall,
            "seconds_per_step": per,
            "mover_fraction_of_step": per["move"] / step_total if step_total else None,
            "move_seconds_per_move": d["timings"]["move"] / res.moves if res.moves else None}


def swirl(args) -> dict:
    from um2n_simulations.swirl import SwirlConfig, run_swirl
    from um2n.fem.loop import LoopConfig

    out = {}
    for mover in args.movers:
        cfg = SwirlConfig(lc=args.lc, dt=args.dt, loop=LoopConfig(
            mover=mover, move_every=args.move_every, output_dir=str(Path(args.output_dir) / "swirl" / mover),
            write_vtk=False, snapshots=2, progress=False))
        t0 = time.perf_counter()
        res = run_swirl(cfg)
        out[mover] = _record(res, time.perf_counter() - t0)
        print(json.dumps({mover: out[mover]}), file=sys.stderr, flush=True)
    if "none" in out:
        e0 = out["none"]["summary"]["l2_error"]
        for r in out.values():
            r["error_reduction_vs_none"] = (e0 - r["summary"]["l2_error"]) / e0
    return {"case": "swirl", "lc": args.lc, "dt": args.dt, "move_every": args.move_every, "results": out}


def cylinder(args) -> dict:
    from um2n_simulations.cylinder import CylinderConfig, check_reference, run_cylinder
    from um2n.fem.loop import LoopConfig

    runs = {"coarse_static": (args.lc, args.lc_cyl, "none"), "coarse_um2n": (args.lc, args.lc_cyl, "um2n"),
            "fine_static": (args.lc / 2, args.lc_cyl / 2, "none")}
    out = {}
    for name in args.runs:
        lc, lc_cyl, mover = runs[name]
        cfg = CylinderConfig(case="2d-2", lc=lc, lc_cyl=lc_cyl, dt=args.dt, T=args.T,
                             statistics_from=args.T - args.window,
                             loop=LoopConfig(mover=mover, move_every=args.move_every, write_vtk=False, snapshots=1,
                                             output_dir=str(Path(args.output_dir) / "cylinder" / name), progress=False))
        t0 = time.perf_counter()
        res = run_cylinder(cfg)
        rec = _record(res, time.perf_counter() - t0)
        rec["reference"] = check_reference("2d-2", res.summary)
        out[name] = rec
        print(json.dumps({name: rec}, default=float), file=sys.stderr, flush=True)
    return {"case": "cylinder 2d-2", "dt": args.dt, "T": args.T, "results": out}


RUNS = {"coarse_static": ("none", 0), "coarse_um2n": ("um2n", 0), "fine_static": ("none", 1)}
#: Tohoku adds the refined mesh moved by UM2N and a mesh refined twice (16 times the cells)
TOHOKU_RUNS = {**RUNS, "fine_um2n": ("um2n", 1), "finer_static": ("none", 2)}


def runup(args) -> dict:
    from um2n_simulations.runup import RunupConfig, run_runup
    from um2n.fem.loop import LoopConfig

    out = {}
    for name in args.runs:
        mover, refine = RUNS[name]
        base = RunupConfig()
        cfg = RunupConfig(dx=base.dx / 2 ** refine, ny=base.ny * 2 ** refine,
                          loop=LoopConfig(mover=mover, move_every=args.move_every, write_vtk=False, snapshots=0,
                                          output_dir=str(Path(args.output_dir) / "runup" / name), progress=False))
        t0 = time.perf_counter()
        res = run_runup(cfg)
        out[name] = {**_record(res, time.perf_counter() - t0), **res.runup}
        print(json.dumps({name: out[name]}, default=float), file=sys.stderr, flush=True)
    return {"case": "runup", "results": out}


def tohoku(args) -> dict:
    from um2n_simulations.tohoku import TohokuConfig, run_tohoku, summarise
    from um2n.fem.loop import LoopConfig

    out = {}
    for name in args.runs:
        mover, refine = TOHOKU_RUNS[name]
        cfg = TohokuConfig(data_dir=args.data_dir, refine=refine, rupture=args.rupture,
                           loop=LoopConfig(mover=mover, move_every=args.move_every, write_vtk=False, snapshots=0,
                                           output_dir=str(Path(args.output_dir) / "tohoku" / name), progress=False))
        t0 = time.perf_counter()
        res = run_tohoku(cfg)
        out[name] = {**_record(res, time.perf_counter() - t0), **summarise(res.gauges),
                     "gauges": {k: v.as_dict() for k, v in res.gauges.items()}}
        print(json.dumps({name: {k: v for k, v in out[name].items() if k != "gauges"}}, default=float),
              file=sys.stderr, flush=True)
    return {"case": "tohoku", "rupture": args.rupture, "results": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="case", required=True)
    sw = sub.add_parser("swirl")
    sw.add_argument("--lc", type=float, default=0.03)
    sw.add_argument("--dt", type=float, default=1e-3)
    sw.add_argument("--move-every", type=int, default=10)
    sw.add_argument("--movers", nargs="+", default=["none", "um2n", "ma"])
    cy = sub.add_parser("cylinder")
    cy.add_argument("--lc", type=float, default=0.04)
    cy.add_argument("--lc-cyl", type=float, default=0.008)
    cy.add_argument("--dt", type=float, default=0.01)
    cy.add_argument("--T", type=float, default=8.0)
    cy.add_argument("--window", type=float, default=2.0, help="statistics over the last WINDOW time units")
    cy.add_argument("--move-every", type=int, default=10)
    cy.add_argument("--runs", nargs="+", default=["coarse_static", "coarse_um2n", "fine_static"])
    ru = sub.add_parser("runup")
    to = sub.add_parser("tohoku")
    to.add_argument("--data-dir", help="the Tohoku data folder (default: ../shared/data/tohoku)")
    to.add_argument("--rupture", default="kinematic", choices=["kinematic", "instantaneous"])
    for p, runs in ((ru, RUNS), (to, TOHOKU_RUNS)):
        p.add_argument("--move-every", type=int, default=10 if p is ru else 5)
        p.add_argument("--runs", nargs="+", default=list(runs), choices=list(runs))
    for p in (sw, cy, ru, to):
        p.add_argument("--output-dir", default="output/benchmarks")
        p.add_argument("-o", "--output", help="JSON file (default: benchmarks/results/<case>.json)")
    args = ap.parse_args()
    import petsc4py

    petsc4py.init(sys.argv[:1])          # PETSc must not read this script's own arguments
    from um2n.mover import load_model

    result = {"swirl": swirl, "cylinder": cylinder, "runup": runup, "tohoku": tohoku}[args.case](args)
    result["weights"] = load_model(None)[1]
    result["machine"] = {"platform": platform.platform(), "python": platform.python_version()}
    text = json.dumps(result, indent=2, default=float)
    print(text)
    path = Path(args.output or ROOT / "benchmarks" / "results" / f"{args.case}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
