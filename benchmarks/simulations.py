"""Moving-mesh simulations side by side: accuracy and cost of each run, in one process.

Each case runs as one study of :func:`um2n.fem.study.run_study` (the runner of
``um2n simulate``), on the case's default settings (the config dataclass) with any
``--config FILE.toml`` and ``--set NAME=VALUE`` overrides, and these runs:

``swirl``: LeVeque's reversing swirl on one gmsh mesh with the movers ``none``, ``um2n``
and ``ma`` (the same vertex count for all): the L2 error against the exact final state and
the error reduction against ``none``.

``cylinder``: DFG 2D-2 (Re = 100) on the coarse static mesh, the same mesh moved by UM2N, and
a static mesh with half the mesh sizes (about 4 times the cells): c_D,max, c_L,max, St and
Δp against the reference intervals.

``runup``: the NTHMP solitary-wave run-up on the coarse channel static, moved by UM2N, and
refined once (4 times the cells) static: the maximum run-up against the analytic law.

``tohoku``: the 2011 Tohoku tsunami (2 h) on ``japan_sea.msh`` static and moved by UM2N,
refined once static and moved by UM2N, and refined twice (16 times the cells) static:
arrival, peak and correlation at the 16 gauges.

For every run: the moves made and rejected, the most tangled elements seen at any step, the
process's wall time for the run, and the time per step split into solve, monitor, move,
transfer and output. Prints the JSON and writes it to ``benchmarks/results/<case>.json``::

    bash install/run.sh benchmarks/simulations.py swirl [--movers none um2n ma um2n@um2n-v1] [--set lc=0.02]
    bash install/run.sh benchmarks/simulations.py cylinder [--runs coarse_static fine_static]
    bash install/run.sh benchmarks/simulations.py runup
    bash install/run.sh benchmarks/simulations.py tohoku [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the benchmark's runs: label -> setting overrides (on top of the case's defaults)
RUNS = {
    "cylinder": {"coarse_static": {"loop.mover": "none"}, "coarse_um2n": {"loop.mover": "um2n"},
                 "fine_static": {"loop.mover": "none", "refine": 1}},
    "runup": {"coarse_static": {"loop.mover": "none"}, "coarse_um2n": {"loop.mover": "um2n"},
              "fine_static": {"loop.mover": "none", "refine": 1}},
    "tohoku": {"coarse_static": {"loop.mover": "none"}, "coarse_um2n": {"loop.mover": "um2n"},
               "fine_static": {"loop.mover": "none", "refine": 1}, "fine_um2n": {"loop.mover": "um2n", "refine": 1},
               "finer_static": {"loop.mover": "none", "refine": 2}},
}
#: the output that a timing benchmark does not need
QUIET = {"loop.write_vtk": False, "loop.snapshots": 0, "loop.progress": False}


def _value(text: str):
    """A ``--set`` value in TOML syntax (a bare word is a string)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=["swirl", *RUNS])
    ap.add_argument("--movers", nargs="+", default=["none", "um2n", "ma"],
                    help="swirl: the movers to compare (um2n@NAME: UM2N with the weights NAME, a file or shipped name)")
    ap.add_argument("--runs", nargs="+", help="cylinder, runup, tohoku: a subset of the runs")
    ap.add_argument("--config", metavar="FILE.toml", help="setting overrides for every run")
    ap.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                    help="more overrides for every run, e.g. lc=0.02 loop.move_every=5")
    ap.add_argument("--data-dir", help="tohoku: the data folder (default: ../shared/data/tohoku)")
    ap.add_argument("--output-dir", default="output/benchmarks")
    ap.add_argument("-o", "--output", help="JSON file (default: benchmarks/results/<case>.json)")
    args = ap.parse_args()
    import petsc4py

    petsc4py.init(sys.argv[:1])          # PETSc must not read this script's own arguments
    from um2n.config import load_config
    from um2n.fem.study import Variant, get_case, run_study, set_setting
    from um2n.mover import load_model

    case = get_case(args.case)
    cfg = load_config(case.config, args.config)
    for item in args.set:
        name, _, value = item.partition("=")
        set_setting(cfg, name, _value(value))
    if args.data_dir:
        set_setting(cfg, "data_dir", args.data_dir)
    if args.case == "swirl":
        variants = []
        for m in args.movers:              # "um2n@NAME": the UM2N mover with the weights NAME
            mover, _, weights = m.partition("@")
            variants.append(Variant(m, {"loop.mover": mover, **({"loop.weights": weights} if weights else {}),
                                        **QUIET}))
    else:
        runs = RUNS[args.case]
        unknown = set(args.runs or []) - set(runs)
        if unknown:
            ap.error(f"unknown run(s) {', '.join(sorted(unknown))}; known: {', '.join(runs)}")
        variants = [Variant(name, {**runs[name], **QUIET}) for name in (args.runs or runs)]
    study = run_study(case, cfg, variants, output_dir=Path(args.output_dir) / args.case)
    study["weights"] = load_model(None)[1]
    study["machine"] = {"platform": platform.platform(), "python": platform.python_version()}
    text = json.dumps(study, indent=2, default=float)
    print(text)
    path = Path(args.output or ROOT / "benchmarks" / "results" / f"{args.case}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    from um2n.io import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
