"""UM2N against Monge-Ampère on a held-out set: Helmholtz error, tangling, move time.

For each held-out case (new random domains of the same four families as the training data,
from a seed and mesh sizes that training does not use: ``--seed`` and ``--lc`` default to
values `um2n generate` does not use by default):

* the Helmholtz problem -lap u + u = f with the case's manufactured solution (random
  anisotropic Gaussians, exact Dirichlet data) is solved with P1 elements on the
  uniform (original) mesh, on the Monge-Ampère (MA) mesh and on the UM2N mesh, and the L2
  error against the exact solution gives the error reduction
  ER = (e_uniform - e_moved) / e_uniform of each mover;
* the number of inverted elements of each moved mesh;
* the move time of MA (relaxation, rtol 1e-3) and of UM2N (warm model), on the same mesh
  and monitor, in the same run.

Prints JSON (one record per case and a summary) and writes it, with a plot, under
benchmarks/results/. Usage:

    bash install/run.sh benchmarks/um2n_vs_ma.py [--cases 20] [--weights W.safetensors]
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

from um2n.fem.adapter import mesh_graph  # noqa: E402
from um2n.fem.generate import (GenerateConfig, Source, draw_sample, exact_solution,  # noqa: E402
                               hessian_monitor_function, mesh_polygon)
from um2n.errors import ConvergenceError  # noqa: E402
from um2n.fem.monge_ampere import MongeAmpereMover  # noqa: E402
from um2n.mover import UM2NMover  # noqa: E402
from um2n.quality import count_inverted  # noqa: E402

HELMHOLTZ_SOLVER_PARAMETERS = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}


def helmholtz_error(mesh, sources) -> float:
    """L2 error of the P1 Helmholtz solution against the exact one, on ``mesh`` as it is now."""
    x = fd.SpatialCoordinate(mesh)
    u_exact = exact_solution(sources, x)
    f = -fd.div(fd.grad(u_exact)) + u_exact
    V = fd.FunctionSpace(mesh, "CG", 1)
    u, v = fd.TrialFunction(V), fd.TestFunction(V)
    uh = fd.Function(V)
    bc = fd.DirichletBC(V, fd.Function(V).interpolate(u_exact), "on_boundary")
    fd.solve((fd.inner(fd.grad(u), fd.grad(v)) + u * v) * fd.dx == f * v * fd.dx, uh, bcs=bc,
             solver_parameters=HELMHOLTZ_SOLVER_PARAMETERS)
    return math.sqrt(fd.assemble((uh - u_exact) ** 2 * fd.dx(degree=8)))


def run_case(cfg: GenerateConfig, index: int, mover: UM2NMover, work: Path) -> dict:
    s = draw_sample(cfg, index)
    msh = mesh_polygon(np.array(s.outer), None if s.hole is None else np.array(s.hole), s.lc,
                       work / f"case{index}.msh", seed=s.seed % (2 ** 31))
    mesh = fd.Mesh(str(msh))
    graph = mesh_graph(mesh)
    sources = [Source(**d) for d in s.sources]
    monitor = hessian_monitor_function(sources, cfg.alpha, mesh, cfg.power)
    xi = np.array(mesh.coordinates.dat.data_ro)
    m0 = np.array(fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(monitor(mesh)).dat.data_ro)
    e_uniform = helmholtz_error(mesh, sources)
    rec = {"case": index, "domain": s.domain, "lc": s.lc, "vertices": graph.num_vertices,
           "sources": len(sources), "e_uniform": e_uniform}
    # Monge-Ampère
    ma = MongeAmpereMover(mesh, monitor, rtol=cfg.ma_rtol, maxiter=cfg.ma_maxiter, graph=graph)
    t0 = time.perf_counter()
    try:
        res = ma.move()
        rec["ma_time_s"] = time.perf_counter() - t0
        rec["ma_iterations"] = res.iterations
        rec["ma_inverted"] = count_inverted(mesh.coordinates.dat.data_ro, graph.triangles)
        rec["e_ma"] = helmholtz_error(mesh, sources)
        rec["er_ma"] = (e_uniform - rec["e_ma"]) / e_uniform
    except ConvergenceError as exc:
        rec["ma_time_s"] = time.perf_counter() - t0
        rec["ma_error"] = str(exc)
    mesh.coordinates.dat.data[:] = xi
    # UM2N (warm: the first call of a session pays one-off allocations)
    mover.move(graph, m0)
    t0 = time.perf_counter()
    out = mover.move(graph, m0)
    rec["um2n_time_s"] = time.perf_counter() - t0
    rec["um2n_inverted"] = count_inverted(out.points, graph.triangles)
    rec["um2n_safeguard_limited"] = out.safeguard.limited_vertices
    mesh.coordinates.dat.data[:] = out.points
    rec["e_um2n"] = helmholtz_error(mesh, sources)
    rec["er_um2n"] = (e_uniform - rec["e_um2n"]) / e_uniform
    mesh.coordinates.dat.data[:] = xi
    return rec


def summary(records: list[dict]) -> dict:
    broken = [r for r in records if "error" in r]
    records = [r for r in records if "error" not in r]
    ok = [r for r in records if "er_ma" in r]
    er_ma = float(np.mean([r["er_ma"] for r in ok])) if ok else float("nan")
    er_um2n = float(np.mean([r["er_um2n"] for r in ok])) if ok else float("nan")
    t_ma = float(np.median([r["ma_time_s"] for r in ok])) if ok else float("nan")
    t_um2n = float(np.median([r["um2n_time_s"] for r in ok])) if ok else float("nan")
    return {
        "cases": len(records), "broken_cases": len(broken), "cases_with_ma": len(ok),
        "mean_er_ma": er_ma, "mean_er_um2n": er_um2n, "er_ratio_um2n_over_ma": er_um2n / er_ma if ok and er_ma > 0 else None,
        "um2n_inverted_total": int(sum(r["um2n_inverted"] for r in records)),
        "ma_inverted_total": int(sum(r.get("ma_inverted", 0) for r in ok)),
        "median_ma_time_s": t_ma, "median_um2n_time_s": t_um2n, "speedup_median": t_ma / t_um2n if ok else None,
    }


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
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1_000_003, help="held-out seed (training uses 0 by default)")
    ap.add_argument("--lc", type=float, nargs="+", default=[0.055, 0.065], help="held-out mesh sizes")
    ap.add_argument("--weights", help="UM2N weights (default: the shipped ones)")
    ap.add_argument("-o", "--output", default=str(ROOT / "benchmarks/results/um2n_vs_ma.json"))
    args = ap.parse_args()
    cfg = GenerateConfig(out="(held-out)", seed=args.seed, lcs=tuple(args.lc))
    mover = UM2NMover(weights=args.weights)
    records = []
    partial = Path(args.output).with_suffix(".partial.jsonl")
    partial.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work, open(partial, "w") as log:
        for i in range(args.cases):
            try:
                rec = run_case(cfg, i, mover, Path(work))
            except Exception as exc:          # a broken case is reported, the others still run
                rec = {"case": i, "error": f"{type(exc).__name__}: {exc}"}
            records.append(rec)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps(rec), file=sys.stderr, flush=True)
    records = [r for r in records if "error" not in r] + [r for r in records if "error" in r]
    out = {"benchmark": "UM2N vs Monge-Ampere, held-out Helmholtz cases", "weights": mover.weights_info,
           "seed": args.seed, "lcs": args.lc, "summary": summary(records), "cases": records}
    text = json.dumps(out, indent=2)
    print(text)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    plot(records, Path(args.output).with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
