"""Wall time of the conservative field transfer after a mesh move, two ways, side by side.

The fields of the shallow-water cases: an elevation (P1DG) and a momentum (vector P1DG)
on a unit-square mesh of ``n x n`` squares cut in two, moved by a smooth displacement
that keeps the boundary.

* ``per_field_project``: Firedrake's ``Function.project`` of each field from the frozen
  copy of the mesh (what ``FieldTransfer`` did before 2026-11-27): one supermesh
  assembly of the mixed mass matrix per field;
* ``field_transfer``: ``um2n.fem.transfer.FieldTransfer``, one supermesh assembly per
  scalar element and move, shared by both fields and all their components.

Both see the same meshes and fields; each is timed over ``--moves`` moves after one
untimed warm-up move (form compilation). The largest difference between the two results
and the change of the integrals are reported as well.

Usage: python benchmarks/transfer.py [--sizes 32 64 128] [--moves 3] [-o FILE]
Prints JSON and writes it to benchmarks/results/transfer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(n: int, moves: int) -> dict:
    import firedrake as fd
    import numpy as np

    from um2n.fem.transfer import FieldTransfer

    mesh = fd.UnitSquareMesh(n, n)
    x, y = fd.SpatialCoordinate(mesh)
    eta = fd.Function(fd.FunctionSpace(mesh, "DG", 1), name="elevation")
    q = fd.Function(fd.VectorFunctionSpace(mesh, "DG", 1), name="momentum")
    eta0 = fd.exp(-40 * ((x - 0.4) ** 2 + (y - 0.5) ** 2))
    q0 = fd.as_vector([fd.sin(3 * x) * y, x * fd.cos(2 * y)])
    transfer = FieldTransfer(mesh, {"elevation": eta, "momentum": q})
    X0 = np.array(mesh.coordinates.dat.data_ro)

    def displaced(k: int) -> np.ndarray:
        X = X0.copy()
        bump = np.sin(np.pi * X0[:, 0]) * np.sin(np.pi * X0[:, 1])
        X[:, 0] += 0.02 * (1 + k % 3) * bump
        X[:, 1] -= 0.01 * (1 + k % 2) * bump
        return X

    times = {"per_field_project": [], "field_transfer": []}
    diff, mass_change = 0.0, 0.0
    for k in range(moves + 1):
        mesh.coordinates.dat.data[:] = displaced(k)
        eta.interpolate(eta0)
        q.interpolate(q0)
        transfer.before_move()
        mesh.coordinates.dat.data[:] = displaced(k + 1)
        # Firedrake's own projection, field by field, into copies
        t0 = time.perf_counter()
        ref = {name: fd.Function(f.function_space()).project(transfer._frozen_fields[name])
               for name, f in transfer.fields.items()}
        t1 = time.perf_counter()
        transfer.after_move()
        t2 = time.perf_counter()
        if k:                                           # the first move compiles the forms
            times["per_field_project"].append(t1 - t0)
            times["field_transfer"].append(t2 - t1)
            diff = max(diff, *(float(np.abs(ref[name].dat.data_ro - f.dat.data_ro).max())
                               for name, f in transfer.fields.items()))
            old = transfer._frozen_fields
            after = [fd.assemble(eta * fd.dx), fd.assemble(q[0] * fd.dx)]
            before = [fd.assemble(old["elevation"] * fd.dx), fd.assemble(old["momentum"][0] * fd.dx)]
            mass_change = max(mass_change, *(abs(a - b) / abs(b) for a, b in zip(after, before)))
    per_field, shared = (float(np.median(times[k])) for k in ("per_field_project", "field_transfer"))
    return {"n": n, "vertices": mesh.num_vertices(), "cells": mesh.num_cells(),
            "dofs_per_component": eta.function_space().dim(), "moves_timed": moves,
            "per_field_project_s": per_field, "field_transfer_s": shared, "speedup": per_field / shared,
            "max_abs_difference": diff, "max_relative_integral_change": mass_change}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--moves", type=int, default=3)
    ap.add_argument("-o", "--output", default=str(ROOT / "benchmarks" / "results" / "transfer.json"))
    args = ap.parse_args()
    import petsc4py

    petsc4py.init(sys.argv[:1])          # PETSc must not read this script's own arguments
    out = {"benchmark": "conservative field transfer after a move (P1DG elevation + vector P1DG momentum)",
           "machine": platform.machine(), "cpus": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
           "runs": [run(n, args.moves) for n in args.sizes]}
    text = json.dumps(out, indent=2)
    print(text)
    from um2n.io import atomic_path

    with atomic_path(args.output) as tmp:
        Path(tmp).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
