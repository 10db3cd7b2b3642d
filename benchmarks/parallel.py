"""The distributed network (``um2n.distributed``) on 1 and 2 MPI ranks: time, memory, communication.

For each N (about 100 k and 1 M vertices) the unit square cut into ``n x n`` squares (two
triangles each) is split into horizontal slabs, one per rank; each rank builds only its own
slab (its vertices, triangles and boundary edges) and its :class:`~um2n.distributed.Partition`,
then moves it once towards a Gaussian bump (the shipped weights; a warm-up move first on
meshes up to 200 k vertices). Measured per rank: the partition's construction, the move
(network, boundary, safeguard), the peak resident memory of the process (``ru_maxrss``)
and the bytes it sent during the move (halo exchanges and reductions). The serial mover
(:class:`um2n.mover.UM2NMover`, one process, whole mesh) runs beside it at the same N.
Every configuration runs in a process of its own (``mpiexec -n R``), one after the other.

With ``--tohoku-T``, the strong scaling of the loop itself: one moving-mesh Tohoku run
(UM2N, ALE, the twice-refined mesh, steps of 30 s: see :data:`TOHOKU`) on each number of ranks, its wall time and the loop's
parts (solve, monitor, move, mesh velocity, output) on the slowest rank.

Usage::

    bash install/run.sh benchmarks/parallel.py [--sizes 100000 1000000] [--ranks 1 2] [--tohoku-T 1200]

Prints JSON and writes ``benchmarks/results/parallel.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MONITOR = "1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2)/0.01)"


def slab(n: int, rank: int, size: int):
    """Rank ``rank``'s rows of squares of the ``n x n`` unit square: global ids, owners,
    points, owned triangles and boundary edges (local indices) with tags 1-4."""
    import numpy as np

    rows = np.linspace(0, n, size + 1).round().astype(int)
    j0, j1 = rows[rank], rows[rank + 1]
    vr = np.arange(j0, j1 + 1)                                 # vertex rows held here
    c = np.arange(n + 1)
    R, C = np.meshgrid(vr, c, indexing="ij")
    gid = (R * (n + 1) + C).ravel()
    owner_row = np.searchsorted(rows[1:-1], R.ravel(), side="right")   # row r belongs to the slab below it
    owner = np.minimum(owner_row, size - 1)
    pts = np.column_stack([C.ravel() / n, R.ravel() / n])
    i, j = np.meshgrid(np.arange(n), np.arange(j1 - j0), indexing="xy")
    v0 = (j * (n + 1) + i).ravel()
    v1, v2, v3 = v0 + 1, v0 + n + 2, v0 + n + 1
    tris = np.concatenate([np.column_stack([v0, v1, v2]), np.column_stack([v0, v2, v3])])
    loc = lambda r, col: (r - j0) * (n + 1) + col  # noqa: E731
    edges, tags = [], []
    if j0 == 0:
        edges.append(np.column_stack([loc(0, c[:-1]), loc(0, c[1:])]))
        tags.append(np.full(n, 1))
    if j1 == n:
        edges.append(np.column_stack([loc(n, c[1:]), loc(n, c[:-1])]))
        tags.append(np.full(n, 3))
    r = np.arange(j0, j1)
    edges.append(np.column_stack([loc(r, n), loc(r + 1, n)]))
    tags.append(np.full(len(r), 2))
    edges.append(np.column_stack([loc(r + 1, 0), loc(r, 0)]))
    tags.append(np.full(len(r), 4))
    return gid, owner, pts, tris, np.concatenate(edges), np.concatenate(tags)


def worker(n_target: int, mode: str) -> None:
    import numpy as np
    import torch
    from mpi4py import MPI

    from um2n.mover import load_model

    comm = MPI.COMM_WORLD
    torch.set_num_threads(1)
    n = max(2, int(round(np.sqrt(n_target))) - 1)
    model = load_model()[0]
    out: dict = {"vertices": (n + 1) ** 2, "ranks": comm.size, "mode": mode, "torch_threads": 1}
    if mode == "serial":
        from um2n.mesh import MeshGraph
        from um2n.mover import UM2NMover

        gid, owner, pts, tris, be, bt = slab(n, 0, 1)
        t0 = time.perf_counter()
        g = MeshGraph.from_arrays(pts, tris, boundary_segments=be, boundary_segment_tags=bt)
        out["setup_s"] = time.perf_counter() - t0
        mover = UM2NMover(model=model)
        if g.num_vertices <= 200_000:
            mover.move(g, MONITOR)
        t0 = time.perf_counter()
        res = mover.move(g, MONITOR)
        out.update(move_s=time.perf_counter() - t0, inverted_after=res.safeguard.inverted_after,
                   peak_rss_mb=[resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024])
        print(json.dumps(out))
        return
    from um2n.distributed import DistributedMover, Partition

    gid, owner, pts, tris, be, bt = slab(n, comm.rank, comm.size)
    comm.Barrier()
    t0 = time.perf_counter()
    part = Partition.from_local(comm, gid, owner, pts, tris, be, bt)
    setup = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    mover = DistributedMover(model)
    if out["vertices"] <= 200_000:
        mover.move(part, MONITOR)
    comm.Barrier()
    t0 = time.perf_counter()
    res = mover.move(part, MONITOR)
    move = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    rss = comm.gather(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, root=0)
    sent = comm.gather(res.bytes_exchanged, root=0)
    owned = comm.gather(part.num_owned, root=0)
    ghosts = comm.gather(part.num_vertices - part.num_owned, root=0)
    timings = comm.gather({k: round(v, 4) for k, v in res.timings.items()}, root=0)
    if comm.rank == 0:
        out.update(setup_s=setup, move_s=move, timings_per_rank=timings, peak_rss_mb=rss, bytes_sent=sent,
                   owned=owned, ghosts=ghosts, inverted_after=res.safeguard.inverted_after,
                   exchanges=res.exchanges, reductions=res.reductions,
                   boundary_vertices=int(len(part.boundary_ids)))
        print(json.dumps(out))


#: the moving-mesh Tohoku run of the strong-scaling study: the twice-refined mesh, UM2N
#: moving it continuously (ALE), a move every 5 steps; ``T`` is set by ``--tohoku-T``. The
#: step is 30 s, not the case's 60 s: on this mesh the ALE step's GMRES with ILU(0) of each
#: step's operator (``ale_linear_solver = "ilu"``, the default when this was measured) does
#: not converge in 500 iterations at 60 s, and a lagged
#: LU beside the static one does not fit in this machine's memory on one rank. At 30 s the
#: Courant numbers are those of the once-refined mesh at 60 s, where GMRES converges.
TOHOKU = {"refine": 2, "dt": 30.0, "loop.mover": "um2n", "loop.move_every": 5, "loop.checkpoint_every": 10_000,
          "loop.progress": False, "loop.snapshots": 0, "loop.write_vtk": False}


def tohoku_worker(T: float, out: str) -> None:
    """One moving-mesh Tohoku run on this communicator: wall time of the run and of each
    part of the loop (the slowest rank), peak memory per rank."""
    import petsc4py

    petsc4py.init(sys.argv[:1])                  # PETSc is not to read this script's options
    from mpi4py import MPI

    from um2n.fem.study import Variant, get_case

    comm = MPI.COMM_WORLD
    case = get_case("tohoku")
    cfg = Variant("scaling", {**TOHOKU, "T": T}).apply(case.config(), out)
    comm.Barrier()
    t0 = time.perf_counter()
    res = case.run(cfg)
    wall = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    timings = {k: comm.allreduce(float(v), op=MPI.MAX) for k, v in sorted(res.timings.items())}
    rss = comm.gather(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, root=0)
    if comm.rank == 0:
        print(json.dumps({"case": "tohoku", "ranks": comm.size, "vertices": res.summary.get("vertices"),
                          "T": T, "steps": res.steps, "moves": res.moves, "max_inverted": res.max_inverted,
                          "wall_s": wall, "timings_s": timings, "peak_rss_mb": rss}))


#: Assumptions of :func:`cost_model` for a cluster (not measured here): point-to-point and
#: per-stage collective latency, inverse bandwidth, neighbour ranks of a 2D partition.
CLUSTER = {"latency_s": 2e-6, "seconds_per_byte": 1 / 10e9, "neighbours": 6}


def cost_model(runs: list[dict]) -> dict:
    r"""Time per move on P ranks, fitted to the measured runs (largest N, 1 and 2 ranks):

    .. math::

        T(P) = t_v \Big(\frac{N}{P} + g\Big) + E\,(k\,\alpha + \beta\, b\, g)
               + R\,\alpha \log_2 P + B\,(t_B + 40\,\beta),
        \qquad g = 4\sqrt{N/P},\quad B = B_0 \sqrt{N/N_0},

    with :math:`t_v` the measured time per vertex on one rank, :math:`g` the ghosts of a
    near-square part (one layer on four sides), :math:`E`, :math:`R` the measured halo
    exchanges and reductions per move, :math:`b` the measured bytes per ghost and exchange
    (2 ranks), :math:`B` the boundary vertices (gathered on every rank, 40 bytes each, and
    projected there in :math:`t_B` each, measured) and :data:`CLUSTER`'s
    :math:`\alpha, \beta, k`. Communication is taken as not overlapping computation."""
    import math

    dist = [r for r in runs if r.get("mode") == "distributed" and "move_s" in r]
    if not any(r["ranks"] == 1 for r in dist) or not any(r["ranks"] == 2 for r in dist):
        return {"error": "needs distributed runs on 1 and 2 ranks"}
    N0 = max(r["vertices"] for r in dist)
    one = next(r for r in dist if r["ranks"] == 1 and r["vertices"] == N0)
    two = next(r for r in dist if r["ranks"] == 2 and r["vertices"] == N0)
    t_v = one["move_s"] / N0
    E, R, B0 = two["exchanges"], two["reductions"], two["boundary_vertices"]
    b = max(two["bytes_sent"]) / max(two["ghosts"]) / E
    t_B = max(t["boundary"] for t in two["timings_per_rank"]) / B0
    a, beta, k = CLUSTER["latency_s"], CLUSTER["seconds_per_byte"], CLUSTER["neighbours"]
    out = {"assumptions": CLUSTER, "fitted": {"seconds_per_vertex": t_v, "exchanges_per_move": E,
                                              "reductions_per_move": R, "bytes_per_ghost_per_exchange": b,
                                              "boundary_seconds_per_vertex": t_B, "fitted_on_vertices": N0},
           "predicted": []}
    for N in (N0, 4 * N0, 100 * N0):
        for P in (1, 2, 64, 1024):
            g = 4 * math.sqrt(N / P) if P > 1 else 0.0
            B = B0 * math.sqrt(N / N0)
            parts = {"compute_s": t_v * (N / P + g), "halo_s": E * (k * a + beta * b * g) if P > 1 else 0.0,
                     "reductions_s": R * a * math.log2(P) if P > 1 else 0.0, "boundary_s": B * (t_B + 40 * beta)}
            out["predicted"].append({"vertices": int(N), "ranks": P, "move_s": sum(parts.values()),
                                     "bytes_per_rank": b * g * E, **parts})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("-o", "--output", default=str(ROOT / "benchmarks" / "results" / "parallel.json"))
    ap.add_argument("--tohoku-T", type=float, default=0.0, metavar="SECONDS",
                    help="also the strong scaling of a moving-mesh Tohoku run on the twice-refined mesh, "
                         "this long (simulated seconds; steps of 30 s), on each of --ranks (default: not run)")
    ap.add_argument("--worker", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--tohoku-worker", nargs=2, metavar=("T", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(int(args.worker[0]), args.worker[1])
        return 0
    if args.tohoku_worker:
        tohoku_worker(float(args.tohoku_worker[0]), args.tohoku_worker[1])
        return 0
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1",
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    runs = []
    for n in args.sizes:
        configs = [(1, "serial")] + [(r, "distributed") for r in args.ranks]
        for ranks, mode in configs:
            cmd = ["mpiexec", "-n", str(ranks), sys.executable, __file__, "--worker", str(n), mode]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode:
                runs.append({"vertices_target": n, "ranks": ranks, "mode": mode, "error": proc.stderr[-800:]})
            else:
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    record = {"benchmark": "distributed network", "monitor": MONITOR,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "runs": runs,
              "cost_model": cost_model(runs)}
    if args.tohoku_T > 0:
        import tempfile

        scaling = []
        for ranks in args.ranks:
            with tempfile.TemporaryDirectory() as out:
                cmd = ["mpiexec", "-n", str(ranks), sys.executable, __file__, "--tohoku-worker",
                       str(args.tohoku_T), out]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            scaling.append({"ranks": ranks, "error": proc.stderr[-800:]} if proc.returncode
                           else json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(scaling[-1]), file=sys.stderr, flush=True)
        base = next((r["wall_s"] for r in scaling if r.get("ranks") == 1 and "wall_s" in r), None)
        for r in scaling:
            if base and "wall_s" in r:
                r["speedup"] = base / r["wall_s"]
        record["tohoku_strong_scaling"] = {"settings": TOHOKU, "T": args.tohoku_T, "runs": scaling}
    text = json.dumps(record, indent=2)
    print(text)
    from um2n.io import atomic_path

    with atomic_path(args.output) as tmp:
        Path(tmp).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
