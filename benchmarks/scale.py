"""Time and peak memory of one UM2N move for N = 1 k ... 1 M vertices, on this machine.

Each (N, attention mode) runs in a fresh sub-process, so that its peak resident memory
(``ru_maxrss``) is its own. The mesh is a structured triangulation of the unit square
(``n x n`` squares cut in two), built with numpy; the monitor is a Gaussian bump.
The model has the shipped weights' architecture (:class:`um2n.model.UM2NConfig`, the
default) with its attention set to the mode measured, randomly initialised (seed 0): the
shipped weights are for latent attention only, and speed and memory do not depend on the
weight values. From 100 k vertices on, latent attention also runs with glibc's default
allocator (``"heap": "default"``) beside the mover's own choice (``"heap": "retained"``,
:mod:`um2n.heap`), so that the allocator's share is measured in the same run.

With ``--dim 3`` the mesh is the Kuhn triangulation of the unit cube (``n^3`` cubes, six
tetrahedra each; ``--sizes`` then counts tetrahedra), the model the 3D design
(``UM2NConfig(dim=3)``, latent attention), the monitor a 3D Gaussian, and the record adds
the time to build the graph and classify the boundary (planes, feature edges, corners).

Usage: python benchmarks/scale.py [--dim 3] [--sizes 1000 10000 ...] [--full-max 10000] [-o FILE]
Prints JSON (one record per run, side by side) and writes it to benchmarks/results/.
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


def structured_square(n: int):
    import numpy as np

    g = np.linspace(0.0, 1.0, n + 1)
    X, Y = np.meshgrid(g, g, indexing="xy")
    pts = np.column_stack([X.ravel(), Y.ravel()])
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="xy")
    v0 = (j * (n + 1) + i).ravel()
    v1, v2, v3 = v0 + 1, v0 + n + 2, v0 + n + 1
    tris = np.concatenate([np.column_stack([v0, v1, v2]), np.column_stack([v0, v2, v3])])
    return pts, tris


def kuhn_cube(n: int):
    """The unit cube cut into ``n^3`` cubes of six tetrahedra each (Kuhn's conforming
    subdivision: the six paths from corner 000 to corner 111 along the axes)."""
    import itertools

    import numpy as np

    g = np.linspace(0.0, 1.0, n + 1)
    X, Y, Z = np.meshgrid(g, g, g, indexing="ij")
    pts = np.column_stack([X.ravel(), Y.ravel(), Z.ravel()])
    i, j, k = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"))

    def v(di, dj, dk):
        return ((i + di) * (n + 1) + (j + dj)) * (n + 1) + (k + dk)

    tets = []
    for perm in itertools.permutations(range(3)):
        step = np.zeros(3, dtype=int)
        path = [v(0, 0, 0)]
        for axis in perm:
            step[axis] = 1
            path.append(v(*step))
        tets.append(np.column_stack(path))
    return pts, np.concatenate(tets)


def one_run_3d(n_target: int, threads: int) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)

    from um2n.model import UM2N, UM2NConfig
    from um2n.mover import UM2NMover
    from um2n.tetmesh import TetMeshGraph

    n = max(1, int(round((n_target / 6) ** (1 / 3))))
    pts, tets = kuhn_cube(n)
    t0 = time.perf_counter()
    graph = TetMeshGraph.from_arrays(pts, tets)
    t_graph = time.perf_counter() - t0
    rss_graph = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch.manual_seed(0)
    mover = UM2NMover(model=UM2N(UM2NConfig(dim=3)))
    monitor = "1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2 + (z-0.6)**2)/0.01)"
    if graph.num_vertices <= 20000:
        mover.move(graph, monitor)
    t0 = time.perf_counter()
    res = mover.move(graph, monitor)
    t_move = time.perf_counter() - t0
    return {
        "dim": 3, "vertices": graph.num_vertices, "cells": graph.num_cells, "attention": "latent",
        "graph_build_s": round(t_graph, 4), "move_s": round(t_move, 4),
        "model_s": round(res.timings["model"], 4), "safeguard_s": round(res.timings["safeguard"], 4),
        "boundary_s": round(res.timings["boundary"], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_graph_mb": round(rss_graph, 1), "boundary_model": graph.boundary.constraint_types(),
        "inverted_after": res.safeguard.inverted_after, "boundary_deviation": res.boundary_deviation,
        "torch_threads": torch.get_num_threads(),
    }


def one_run(n_target: int, attention: str, threads: int, heap: str = "retained") -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)

    import um2n.mover
    from um2n.mesh import MeshGraph
    from um2n.model import UM2N, UM2NConfig
    from um2n.mover import UM2NMover

    n = max(2, int(round(np.sqrt(n_target))) - 1)
    pts, tris = structured_square(n)
    t0 = time.perf_counter()
    graph = MeshGraph.from_arrays(pts, tris)
    t_graph = time.perf_counter() - t0
    rss_graph = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if heap == "default":
        um2n.mover.RETAINED_HEAP_MIN_VERTICES = float("inf")
    torch.manual_seed(0)
    mover = UM2NMover(model=UM2N(UM2NConfig(attention=attention)))
    monitor = "1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2)/0.01)"
    if graph.num_vertices <= 20000:   # warm-up (first-call allocations) on small meshes
        mover.move(graph, monitor)
    t0 = time.perf_counter()
    res = mover.move(graph, monitor)
    t_move = time.perf_counter() - t0
    return {
        "vertices": graph.num_vertices, "cells": graph.num_cells, "attention": attention,
        "heap": "retained" if graph.num_vertices >= um2n.mover.RETAINED_HEAP_MIN_VERTICES else "default",
        "graph_build_s": round(t_graph, 4), "move_s": round(t_move, 4),
        "model_s": round(res.timings["model"], 4), "safeguard_s": round(res.timings["safeguard"], 4),
        "boundary_s": round(res.timings["boundary"], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_graph_mb": round(rss_graph, 1),
        "inverted_after": res.safeguard.inverted_after, "torch_threads": torch.get_num_threads(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dim", type=int, choices=[2, 3], default=2, help="3: tetrahedral meshes of the cube")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000],
                    help="vertices (2D) or tetrahedra (3D)")
    ap.add_argument("--full-max", type=int, default=100000, help="largest N for dense ('full') attention")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    ap.add_argument("-o", "--output", help="default: benchmarks/results/scale.json (scale_3d.json)")
    ap.add_argument("--one", nargs=4, metavar=("N", "MODE", "THREADS", "HEAP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.output = args.output or str(ROOT / "benchmarks/results" / ("scale_3d.json" if args.dim == 3 else "scale.json"))
    if args.one and args.one[1] == "tet":
        print(json.dumps(one_run_3d(int(args.one[0]), int(args.one[2]))))
        return 0
    if args.one:
        print(json.dumps(one_run(int(args.one[0]), args.one[1], int(args.one[2]), args.one[3])))
        return 0
    runs = []
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    for n in args.sizes:
        modes = (("tet", "retained"),) if args.dim == 3 else (("latent", "retained"), ("latent", "default"),
                                                              ("full", "retained"))
        for mode, heap in modes:
            if (mode == "full" and n > args.full_max) or (heap == "default" and n < 100000):
                continue
            proc = subprocess.run([sys.executable, __file__, "--one", str(n), mode, str(args.threads), heap],
                                  capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                runs.append({"vertices_target": n, "attention": mode, "heap": heap, "error": proc.stderr[-500:]})
            else:
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    lat = [r for r in runs if r.get("attention") == "latent" and r.get("heap") != "default" and "move_s" in r]
    if args.dim == 3:
        lat = [r for r in runs if "move_s" in r]
    growth = [
        {"from": a["vertices"], "to": b["vertices"],
         "time_ratio": round(b["move_s"] / a["move_s"], 2),
         "vertex_ratio": round(b["vertices"] / a["vertices"], 2)}
        for a, b in zip(lat[:-1], lat[1:])
    ]
    out = {"benchmark": "um2n move scale" + (" (tetrahedral meshes)" if args.dim == 3 else ""), "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
           "runs": runs, "latent_growth": growth}
    text = json.dumps(out, indent=2)
    print(text)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.output + ".tmp")
    tmp.write_text(text)
    tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
