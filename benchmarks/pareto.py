"""Error against wall-clock time, static and moved runs, one case per call, in one process.

Does moving the mesh pay for itself? Each case runs at several static resolutions (the
static curve) and with the mesh moved by UM2N, continuously (ALE) and, where it fits the
time, by jumps with the supermesh remap (``transfer = "conservative"``). Every moved run is
compared with the static curve interpolated at its wall time (:mod:`um2n.equal_cost`).

Timing: each configuration first runs a few steps (a warm-up that includes a move), so that
Firedrake's kernels are compiled and cached before any timed run; a run's wall time is then
the whole of :meth:`Case.run` (mesh, problem set-up, time loop, case results), one run at a
time on an otherwise idle machine.

Cases and errors:

``swirl``: the L2 error against the exact final state; static ``lc`` 0.03, 0.02, 0.015 and
0.0125, UM2N-ALE at ``lc`` 0.03 and 0.02, UM2N with the supermesh remap at ``lc`` 0.03.

``deformation``: LeVeque's 3D deformation test (tetrahedra), the L2 error against the exact
final state; static ``lc`` 0.12, 0.1, 0.09 and 0.08, UM2N-ALE at ``lc`` 0.12 (the 3D
weights).

``tohoku``: the discretisation error: the RMS difference, over all 16 gauge series and all
steps, from the static run on the mesh refined twice (16 times the cells; the reference,
run first); static on the coarse mesh and refined once (the static curve: the mesh has no
coarser version, and a finer one would be the reference), UM2N-ALE on both. The
observed-gauge figures (largest arrival error, mean correlation) are reported beside.

Writes ``benchmarks/results/pareto_<case>.json`` and ``pareto_<case>.png``::

    bash install/run.sh benchmarks/pareto.py swirl
    bash install/run.sh benchmarks/pareto.py deformation
    bash install/run.sh benchmarks/pareto.py tohoku [--data-dir DIR]

``--weights NAME ...`` runs every UM2N run once per weights (shipped names or files), labelled
``... [NAME]``, and writes ``pareto_<case>_weights.json`` and ``.png`` instead.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"loop.write_vtk": False, "loop.snapshots": 0, "loop.progress": False}

#: label -> (overrides, static: True for the static curve, False for a moved run, None for the reference)
RUNS = {
    "swirl": {
        "static lc 0.03": ({"loop.mover": "none", "lc": 0.03}, True),
        "static lc 0.02": ({"loop.mover": "none", "lc": 0.02}, True),
        "static lc 0.015": ({"loop.mover": "none", "lc": 0.015}, True),
        "static lc 0.0125": ({"loop.mover": "none", "lc": 0.0125}, True),
        "UM2N-ALE lc 0.03": ({"loop.mover": "um2n", "loop.transfer": "ale", "lc": 0.03}, False),
        "UM2N-ALE lc 0.02": ({"loop.mover": "um2n", "loop.transfer": "ale", "lc": 0.02}, False),
        "UM2N-remap lc 0.03": ({"loop.mover": "um2n", "loop.transfer": "conservative", "lc": 0.03}, False),
    },
    "deformation": {
        "static lc 0.12": ({"loop.mover": "none", "lc": 0.12}, True),
        "static lc 0.1": ({"loop.mover": "none", "lc": 0.1}, True),
        "static lc 0.09": ({"loop.mover": "none", "lc": 0.09}, True),
        "static lc 0.08": ({"loop.mover": "none", "lc": 0.08}, True),
        "UM2N-ALE lc 0.12": ({"loop.mover": "um2n", "loop.transfer": "ale", "lc": 0.12}, False),
    },
    "tohoku": {
        "reference: static refine 2": ({"loop.mover": "none", "refine": 2}, None),
        "static refine 0": ({"loop.mover": "none", "refine": 0}, True),
        "static refine 1": ({"loop.mover": "none", "refine": 1}, True),
        "UM2N-ALE refine 0": ({"loop.mover": "um2n", "loop.transfer": "ale", "refine": 0}, False),
        "UM2N-ALE refine 1": ({"loop.mover": "um2n", "loop.transfer": "ale", "refine": 1}, False),
    },
}
#: a short run per kind of configuration, before the timed runs (kernels compiled and cached)
WARM_UP = {"swirl": {"T": 0.03}, "deformation": {"T": 0.05}, "tohoku": {"T": 600.0}}


def _gauge_rms(series: dict, reference: dict) -> float:
    """RMS over every gauge and step of the difference between two runs' gauge series."""
    import numpy as np

    d = np.concatenate([series[k] - reference[k] for k in reference])
    return float(np.sqrt(np.mean(d ** 2)))


def _plot(case_name: str, runs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from um2n.io import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    static = sorted((r["wall_seconds"], r["error"], k) for k, r in runs.items() if r["static"])
    ref = [(k, r) for k, r in runs.items() if r["static"] is None]
    for k, r in ref:
        ax.axvline(r["wall_seconds"], color="0.6", ls=":", label=f"{k} ({r['wall_seconds']:.0f} s)")
    ax.loglog([s[0] for s in static], [s[1] for s in static], "o-", color="k", label="static (refined)")
    for t, e, k in static:
        ax.annotate(k.replace("static ", ""), (t, e), textcoords="offset points", xytext=(4, 4), fontsize=8)
    markers = itertools.cycle("s^Dv<>ph*")
    for k, r in runs.items():
        if r["static"] is False:
            ax.loglog([r["wall_seconds"]], [r["error"]], next(markers), ms=8, label=k)
    ax.set_xlabel("wall-clock time of the run (s)")
    ax.set_ylabel({"swirl": "L2 error at T", "deformation": "L2 error at T", "tohoku": "RMS gauge difference from the reference (m)"}[case_name])
    ax.set_title(f"{case_name}: error against cost, static and moved")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=list(RUNS))
    ap.add_argument("--runs", nargs="+", help="a subset of the runs (labels)")
    ap.add_argument("--data-dir", help="tohoku: the data folder (default: ../shared/data/tohoku)")
    ap.add_argument("--output-dir", default="output/benchmarks/pareto")
    ap.add_argument("--weights", nargs="+", metavar="NAME", help="run each UM2N run with each of these weights")
    args = ap.parse_args()
    import petsc4py

    petsc4py.init(sys.argv[:1])
    from um2n.equal_cost import compare
    from um2n.fem.study import Variant, get_case, set_setting
    from um2n.io import atomic_path
    from um2n.mover import load_model

    case = get_case(args.case)
    cfg = case.config()
    if args.data_dir:
        set_setting(cfg, "data_dir", args.data_dir)
    runs = {k: v for k, v in RUNS[args.case].items() if not args.runs or k in args.runs}
    if args.weights:
        runs = {(f"{k} [{w}]" if o["loop.mover"] == "um2n" else k): ({**o, "loop.weights": w} if o["loop.mover"] == "um2n"
                                                                  else o, static)
                for k, (o, static) in runs.items() for w in (args.weights if o["loop.mover"] == "um2n" else [None])}
    out = Path(args.output_dir) / args.case
    kinds = {(o["loop.mover"], o.get("loop.transfer")): o for o, _ in runs.values()}
    for i, o in enumerate(kinds.values()):                      # warm-up: compile and cache the kernels
        o = {k: v for k, v in o.items() if k not in ("refine", "lc")}
        wcfg = Variant(f"warm-up-{i}", {**o, **QUIET, **WARM_UP[args.case], "loop.move_every": 2}).apply(cfg, out)
        case.run(wcfg)
    records, series = {}, {}
    for label, (overrides, static) in runs.items():
        vcfg = Variant(label.replace(" ", "_").replace(":", ""), {**overrides, **QUIET}).apply(cfg, out)
        t0 = time.perf_counter()
        result = case.run(vcfg)
        wall = time.perf_counter() - t0
        d = result.as_dict()
        records[label] = {"static": static, "overrides": overrides, "wall_seconds": wall,
                          "summary": result.summary, **result.extras, **result.counters, "steps": result.steps,
                          "seconds_per_step": d["seconds_per_step"]}
        if args.case != "tohoku":
            records[label]["error"] = result.summary["l2_error"]
        else:
            from um2n_simulations.tohoku import gauge_series

            series[label] = gauge_series(result.diagnostics, case.data(vcfg)[1])[1]
            records[label].pop("gauges", None)
        print(f"{label:<26} wall {wall:7.1f} s  moves {result.moves} (rejected {result.moves_rejected}, "
              f"shortened {result.paths_shortened}, slowed {result.moves_slowed}), tangled {result.max_inverted}",
              flush=True)
    if args.case == "tohoku":
        reference = series[next(k for k, r in records.items() if r["static"] is None)]
        for label, r in records.items():
            r["error"] = _gauge_rms(series[label], reference)
    for label, r in records.items():
        print(f"{label:<26} error {r['error']:.4e}  wall {r['wall_seconds']:7.1f} s")
    static = [(r["wall_seconds"], r["error"]) for r in records.values() if r["static"]]
    moved = {k: (r["wall_seconds"], r["error"]) for k, r in records.items() if r["static"] is False}
    study = {"case": args.case, "runs": records, "equal_cost": [c.as_dict() for c in compare(static, moved)],
             "weights": ({w: load_model(w)[1] for w in args.weights} if args.weights else load_model(None)[1]),
             "machine": {"platform": platform.platform(), "python": platform.python_version()}}
    for c in study["equal_cost"]:
        against = (f"the static curve's {c['static_error_at_same_time']}" if c["basis"] == "interpolated" else
                   f"the static run {c['dominated_static']} (by dominance)" if c["basis"] == "dominance" else
                   "no static run")
        print(f"{c['label']:<22} {c['verdict']}: error {c['error']:.4e} against {against} at {c['wall_seconds']:.1f} s")
    text = json.dumps(study, indent=2, default=float)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = f"pareto_{args.case}" + ("_weights" if args.weights else "")
    with atomic_path(results / f"{name}.json") as tmp:
        Path(tmp).write_text(text)
    _plot(args.case, records, results / f"{name}.png")
    print(f"wrote {results / f'{name}.json'} and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
