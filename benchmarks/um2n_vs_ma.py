"""UM2N against Monge-Ampère on a held-out set: Helmholtz error, tangling, move time.

For each held-out case (new random domains of the four families of the training data and of
a family training never saw, long thin winding channels, in turn; from a seed and mesh sizes
that training does not use: ``--seed`` and ``--lc`` default to values `um2n generate` does
not use by default):

* the Helmholtz problem -lap u + u = f with the case's manufactured solution (random
  anisotropic Gaussians, exact Dirichlet data) is solved with P1 elements on the
  uniform (original) mesh, on the Monge-Ampère (MA) mesh and on the UM2N mesh, and the L2
  error against the exact solution gives the error reduction
  ER = (e_uniform - e_moved) / e_uniform of each mover;
* the number of inverted elements of each moved mesh, and whether MA's converged mesh was
  tangled and repaired by the safeguard or needed continuation (both counted in the summary);
* the move time of MA and of UM2N on the same mesh and monitor, in the same run, both
  *warm* and in the same way, the median of three moves: MA with the faster of its two
  methods (quasi-Newton and relaxation, each timed; rtol 1e-3) among those that converge on
  the case, the first call of each (set-up and kernel compilation) timed apart; UM2N after a
  first move of the same mesh;
* a speed study: a few of the cases meshed to about 300, 2,500 and 10,000 vertices (with
  ``--dim 3``: 1,000 and 5,000), and the median ratio of the warm times at each size.

The summary gives the whole distribution of the error reductions: means, medians, the
cases where UM2N is at least as good as MA and where it is not, the worst case of each,
and the cases where a mover makes the error more than 5 % worse than the uniform mesh.

Prints JSON (one record per case and a summary) and writes it, with a plot, under
benchmarks/results/. Usage:

    bash install/run.sh benchmarks/um2n_vs_ma.py [--cases 40] [--speed-vertices 300 2500 10000]
        [--weights W.safetensors | NAME] [--compare NAME ...]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import petsc4py  # noqa: E402

petsc4py.init(sys.argv[:1])

import firedrake as fd  # noqa: E402

from um2n.fem.generate import GenerateConfig, draw_sample  # noqa: E402
from um2n.fem.heldout import HELD_OUT_SEED, case_mesh, held_out_config, helmholtz_error  # noqa: E402
from um2n.errors import ConvergenceError  # noqa: E402
from um2n.fem.monge_ampere import MongeAmpereMover  # noqa: E402
from um2n.mover import UM2NMover  # noqa: E402


def count_inverted(points: np.ndarray, graph) -> int:
    """Inverted cells (triangles or tetrahedra) of ``graph`` at ``points``."""
    return int((graph.cell_measures(points) <= 0).sum())


def cv(points: np.ndarray, graph, monitor: np.ndarray) -> float:
    """Equidistribution CV of :math:`m_K |K|` (areas or volumes), as :func:`um2n.quality.equidistribution_cv`."""
    w = np.asarray(monitor)[graph.cells].mean(axis=1) * np.abs(graph.cell_measures(points))
    return float(w.std() / w.mean())


#: warm calls timed per mover and mesh; a mover's time is their median
REPEATS = 3


def time_ma(mesh, monitor, graph, cfg: GenerateConfig, xi: np.ndarray) -> dict:
    """Monge-Ampère with the faster of its two methods (quasi-Newton and relaxation) among
    those that converge here, timed warm: each method's first call (set-up and kernel
    compilation included) is timed apart, then the mesh is reset and moved again
    :data:`REPEATS` times, and the median of those moves is its time. The mesh is left moved
    by the faster method."""
    failures, runs = {}, {}
    for method in ("quasi_newton", "relaxation"):
        mesh.coordinates.dat.data[:] = xi
        t0 = time.perf_counter()
        try:
            ma = MongeAmpereMover(mesh, monitor, method=method, rtol=cfg.ma_rtol, maxiter=cfg.ma_maxiter, graph=graph)
            ma.move()
        except ConvergenceError as exc:
            failures[method] = str(exc)
            continue
        cold = time.perf_counter() - t0
        times = []
        for _ in range(REPEATS):
            mesh.coordinates.dat.data[:] = xi
            t0 = time.perf_counter()
            res = ma.move()
            times.append(time.perf_counter() - t0)
        runs[method] = {"time_s": float(np.median(times)), "first_call_s": cold, "iterations": res.iterations,
                        "repaired_vertices": res.repaired_vertices, "continuation": res.continuation,
                        "points": np.array(mesh.coordinates.dat.data_ro)}
    if not runs:
        mesh.coordinates.dat.data[:] = xi
        return {"ma_error": "; ".join(f"{k}: {v}" for k, v in failures.items())}
    best = min(runs, key=lambda m: runs[m]["time_s"])
    mesh.coordinates.dat.data[:] = runs[best]["points"]
    out = {"ma_method": best, "ma_time_s": runs[best]["time_s"], "ma_first_call_s": runs[best]["first_call_s"],
           "ma_iterations": runs[best]["iterations"], "ma_repaired_vertices": runs[best]["repaired_vertices"],
           "ma_continuation": runs[best]["continuation"],
           "ma_times_s": {m: r["time_s"] for m, r in runs.items()}}
    return {**out, "ma_failed": failures} if failures else out


def time_um2n(mover: UM2NMover, graph, m0: np.ndarray):
    """UM2N's move, warm (the first call of a mesh pays one-off allocations, and is not
    timed): (result, the median time of :data:`REPEATS` moves)."""
    mover.move(graph, m0)
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = mover.move(graph, m0)
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def run_case(cfg: GenerateConfig, index: int, mover: UM2NMover, work: Path, others: dict | None = None) -> dict:
    """One held-out case: the errors of MA, of ``mover`` and of each mover of ``others``
    (name: UM2NMover, recorded under ``compare``) on the same mesh and monitor."""
    s, mesh, graph, sources, monitor, m0 = case_mesh(cfg, index, work)
    xi = np.array(mesh.coordinates.dat.data_ro)
    e_uniform = helmholtz_error(mesh, sources)
    rec = {"case": index, "domain": s.domain, "lc": s.lc, "vertices": graph.num_vertices,
           "sources": len(sources), "e_uniform": e_uniform, "cv_uniform": cv(xi, graph, m0)}
    P1 = fd.FunctionSpace(mesh, "CG", 1)
    rec.update(time_ma(mesh, monitor, graph, cfg, xi))
    if "ma_method" in rec:
        x_ma = np.array(mesh.coordinates.dat.data_ro)
        rec["ma_inverted"] = count_inverted(x_ma, graph)
        rec["cv_ma"] = cv(x_ma, graph, np.array(fd.Function(P1).interpolate(monitor(mesh)).dat.data_ro))
        rec["e_ma"] = helmholtz_error(mesh, sources)
        rec["er_ma"] = (e_uniform - rec["e_ma"]) / e_uniform
    mesh.coordinates.dat.data[:] = xi
    out, rec["um2n_time_s"] = time_um2n(mover, graph, m0)
    rec["um2n_inverted"] = count_inverted(out.points, graph)
    rec["um2n_safeguard_limited"] = out.safeguard.limited_vertices
    rec["um2n_passes"] = out.passes
    mesh.coordinates.dat.data[:] = out.points
    rec["cv_um2n"] = cv(out.points, graph, np.array(fd.Function(P1).interpolate(monitor(mesh)).dat.data_ro))
    rec["e_um2n"] = helmholtz_error(mesh, sources)
    rec["er_um2n"] = (e_uniform - rec["e_um2n"]) / e_uniform
    mesh.coordinates.dat.data[:] = xi
    for name, other in (others or {}).items():
        out, t = time_um2n(other, graph, m0)
        mesh.coordinates.dat.data[:] = out.points
        e = helmholtz_error(mesh, sources)
        rec.setdefault("compare", {})[name] = {"e": e, "er": (e_uniform - e) / e_uniform, "time_s": t,
                                               "inverted": count_inverted(out.points, graph), "passes": out.passes}
        mesh.coordinates.dat.data[:] = xi
    return rec


def speed_case(cfg: GenerateConfig, index: int, target: int, mover: UM2NMover, work: Path) -> dict:
    """The move times of MA (warm, faster method) and UM2N (warm) on case ``index`` meshed to
    about ``target`` vertices (the mesh size scaled from the case's own)."""
    s = draw_sample(cfg, index)
    n0 = case_mesh(cfg, index, work)[2].num_vertices
    lc = s.lc * math.sqrt(n0 / target)
    _, mesh, graph, _, monitor, m0 = case_mesh(cfg, index, work, lc)
    xi = np.array(mesh.coordinates.dat.data_ro)
    rec = {"case": index, "domain": s.domain, "target": target, "lc": lc, "vertices": graph.num_vertices}
    rec.update(time_ma(mesh, monitor, graph, cfg, xi))
    mesh.coordinates.dat.data[:] = xi
    _, rec["um2n_time_s"] = time_um2n(mover, graph, m0)
    if "ma_time_s" in rec:
        rec["speedup"] = rec["ma_time_s"] / rec["um2n_time_s"]
    return rec


def summary(records: list[dict]) -> dict:
    """Means, medians, wins and losses of the error reductions, tangles and warm times."""
    broken = [r for r in records if "error" in r]
    records = [r for r in records if "error" not in r]
    ok = [r for r in records if "er_ma" in r]
    if not ok:
        return {"cases": len(records), "broken_cases": len(broken), "cases_with_ma": 0}
    er_ma = np.array([r["er_ma"] for r in ok])
    er_um2n = np.array([r["er_um2n"] for r in ok])
    t_ma = float(np.median([r["ma_time_s"] for r in ok]))
    t_um2n = float(np.median([r["um2n_time_s"] for r in ok]))
    worst = int(np.argmin(er_um2n))
    return {
        "cases": len(records), "broken_cases": len(broken), "cases_with_ma": len(ok),
        "ma_methods": {m: sum(r["ma_method"] == m for r in ok) for m in ("quasi_newton", "relaxation")},
        # cases where MA's converged mesh was tangled and the safeguard repaired it, and where
        # only continuation in the monitor's amplitude converged
        "ma_repaired_cases": int(sum(r.get("ma_repaired_vertices", 0) > 0 for r in ok)),
        "ma_continuation_cases": int(sum(bool(r.get("ma_continuation")) for r in ok)),
        "mean_er_ma": float(er_ma.mean()), "mean_er_um2n": float(er_um2n.mean()),
        "median_er_ma": float(np.median(er_ma)), "median_er_um2n": float(np.median(er_um2n)),
        "median_er_ratio_um2n_over_ma": float(np.median(er_um2n) / np.median(er_ma)) if np.median(er_ma) > 0 else None,
        "um2n_at_least_ma": int((er_um2n >= er_ma).sum()), "um2n_below_ma": int((er_um2n < er_ma).sum()),
        "worst_er_um2n": {"case": ok[worst]["case"], "er_um2n": float(er_um2n[worst]), "er_ma": float(er_ma[worst])},
        "worst_er_ma": float(er_ma.min()),
        "um2n_worse_than_uniform_by_5pc": int((er_um2n < -0.05).sum()),
        "ma_worse_than_uniform_by_5pc": int((er_ma < -0.05).sum()),
        "um2n_inverted_total": int(sum(r["um2n_inverted"] for r in records)),
        "ma_inverted_total": int(sum(r.get("ma_inverted", 0) for r in ok)),
        "median_ma_time_s": t_ma, "median_um2n_time_s": t_um2n, "speedup_median": t_ma / t_um2n,
        # equidistribution CV of the moved mesh over the uniform mesh's (each at its own
        # vertices' monitor values)
        "median_cv_ratio_um2n": float(np.median([r["cv_um2n"] / r["cv_uniform"] for r in ok])),
        "median_cv_ratio_ma": float(np.median([r["cv_ma"] / r["cv_uniform"] for r in ok])),
        **({"compare": compare_summary(ok)} if any("compare" in r for r in ok) else {}),
    }


def compare_summary(ok: list[dict]) -> dict:
    """The error-reduction figures of each compared mover (``--compare``) on the cases with MA."""
    er_ma = np.array([r["er_ma"] for r in ok])
    out = {}
    for name in ok[0].get("compare", {}):
        er = np.array([r["compare"][name]["er"] for r in ok])
        out[name] = {"mean_er": float(er.mean()), "median_er": float(np.median(er)),
                     "median_er_ratio_over_ma": float(np.median(er) / np.median(er_ma)) if np.median(er_ma) > 0 else None,
                     "at_least_ma": int((er >= er_ma).sum()), "below_ma": int((er < er_ma).sum()),
                     "worse_than_uniform_by_5pc": int((er < -0.05).sum()), "worst_er": float(er.min()),
                     "inverted_total": int(sum(r["compare"][name]["inverted"] for r in ok)),
                     "median_time_s": float(np.median([r["compare"][name]["time_s"] for r in ok]))}
    return out


def speed_summary(records: list[dict]) -> list[dict]:
    """Per target size: the median vertices, warm times and speed ratio."""
    out = []
    for target in sorted({r["target"] for r in records}):
        rs = [r for r in records if r["target"] == target and "speedup" in r]
        if rs:
            out.append({"target_vertices": target, "cases": len(rs),
                        "median_vertices": float(np.median([r["vertices"] for r in rs])),
                        "median_ma_time_s": float(np.median([r["ma_time_s"] for r in rs])),
                        "median_um2n_time_s": float(np.median([r["um2n_time_s"] for r in rs])),
                        "median_speedup": float(np.median([r["speedup"] for r in rs]))})
    return out


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in records if "er_ma" in r and "error" not in r]
    if not ok:
        return
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].scatter([r["er_ma"] for r in ok], [r["er_um2n"] for r in ok])
    lim = [min([0] + [r["er_um2n"] for r in ok]), max([0.01] + [r["er_ma"] for r in ok])]
    ax[0].plot(lim, lim, "k--", lw=0.8)
    ax[0].set_xlabel("ER Monge-Ampere")
    ax[0].set_ylabel("ER UM2N")
    ax[0].set_title("error reduction per held-out case")
    ax[1].bar(["MA", "UM2N"], [np.median([r["ma_time_s"] for r in ok]), np.median([r["um2n_time_s"] for r in ok])])
    ax[1].set_yscale("log")
    ax[1].set_ylabel("median move time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--dim", type=int, choices=[2, 3], default=2,
                    help="3: tetrahedral meshes of the gmsh solids, with 3D weights (default um2n-3d-v1)")
    ap.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="held-out seed (training uses 0, 1 and 11)")
    ap.add_argument("--lc", type=float, nargs="+", help="held-out mesh sizes (default: the held-out ones of --dim)")
    ap.add_argument("--domains", nargs="+",
                    help="domain families, in turn (default: the four of training and the held-out ones; "
                    "with --dim 3 the five solids)")
    ap.add_argument("--speed-vertices", type=int, nargs="*", default=None,
                    help="mesh sizes (about this many vertices) of the speed study (default: 300 2500 10000; "
                    "with --dim 3, 1000 5000: Monge-Ampere takes about 20 s a move on a tetrahedral mesh "
                    "of 17,000 vertices)")
    ap.add_argument("--speed-cases", type=int, default=None,
                    help="held-out cases per size of the speed study (default 3; with --dim 3, 2)")
    ap.add_argument("--weights", help="UM2N weights, a file or a shipped name (default: the shipped default)")
    ap.add_argument("--compare", nargs="*", default=[], metavar="WEIGHTS",
                    help="more UM2N weights evaluated on the same cases (summary: compare)")
    ap.add_argument("--passes", type=int, default=1, help="forward passes per UM2N move (UM2NMover.passes), every weights")
    ap.add_argument("-o", "--output", help="default: benchmarks/results/um2n_vs_ma.json (um2n_vs_ma_3d.json)")
    args = ap.parse_args()
    if args.speed_vertices is None:
        args.speed_vertices = [1000, 5000] if args.dim == 3 else [300, 2500, 10000]
    if args.speed_cases is None:
        args.speed_cases = 2 if args.dim == 3 else 3
    cfg = held_out_config(args.seed, args.lc, args.domains, dim=args.dim)
    args.lc, args.domains = list(cfg.lcs), list(cfg.domains)
    args.output = args.output or str(ROOT / "benchmarks/results" / ("um2n_vs_ma_3d.json" if args.dim == 3
                                                                     else "um2n_vs_ma.json"))
    mover = UM2NMover(weights=args.weights or ("um2n-3d-v1" if args.dim == 3 else None), passes=args.passes)
    others = {name: UM2NMover(weights=name, passes=args.passes) for name in args.compare}
    records, speed = [], []
    partial = Path(args.output).with_suffix(".partial.jsonl")
    partial.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work, open(partial, "w") as log:
        jobs = [("er", i, None) for i in range(args.cases)]
        jobs += [("speed", i, n) for n in args.speed_vertices for i in range(args.speed_cases)]
        for kind, i, n in jobs:
            try:
                rec = run_case(cfg, i, mover, Path(work), others) if kind == "er" else speed_case(cfg, i, n, mover, Path(work))
            except Exception as exc:          # a broken case is reported, the others still run
                rec = {"case": i, "error": f"{type(exc).__name__}: {exc}", **({"target": n} if n else {})}
            (records if kind == "er" else speed).append(rec)
            log.write(json.dumps({"study": kind, **rec}) + "\n")
            log.flush()
            print(json.dumps({"study": kind, **rec}), file=sys.stderr, flush=True)
    records = [r for r in records if "error" not in r] + [r for r in records if "error" in r]
    out = {"benchmark": f"UM2N vs Monge-Ampere, held-out Helmholtz cases ({args.dim}D)", "weights": mover.weights_info,
           "compare": {name: m.weights_info for name, m in others.items()},
           "passes": args.passes, "seed": args.seed, "lcs": args.lc, "domains": args.domains, "summary": summary(records),
           "summary_by_domain": {d: summary([r for r in records if r.get("domain") == d]) for d in args.domains},
           "speed": speed_summary([r for r in speed if "error" not in r]), "cases": records, "speed_cases": speed}
    text = json.dumps(out, indent=2)
    print(text)
    from um2n.io import atomic_path

    with atomic_path(args.output) as tmp:
        Path(tmp).write_text(text)
    plot(records, Path(args.output).with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
