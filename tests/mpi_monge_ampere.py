"""Run by tests/test_monge_ampere.py under mpiexec: the Monge-Ampère mover on a distributed mesh.

Arguments: the mesh file (``square``: a 24 x 24 unit square) and the method. Moves the mesh towards a ring monitor and prints,
on rank 0, one JSON line: the iterations, the final residual, and every vertex's reference
and moved coordinates (gathered, sorted by the reference coordinates).
"""

import json
import sys

import petsc4py

petsc4py.init(sys.argv[:1])
import firedrake as fd  # noqa: E402
import numpy as np  # noqa: E402

from um2n.fem.monge_ampere import MongeAmpereMover  # noqa: E402

mesh = fd.UnitSquareMesh(24, 24) if sys.argv[1] == "square" else fd.Mesh(sys.argv[1])


def monitor(m):
    x, y = fd.SpatialCoordinate(m)
    r = fd.sqrt((x - 0.45) ** 2 + (y - 0.5) ** 2)
    return 1 + 3 * fd.exp(-((r - 0.25) ** 2) / 0.01)


xi = np.array(mesh.coordinates.dat.data_ro)
res = MongeAmpereMover(mesh, monitor, method=sys.argv[2], rtol=1e-6, maxiter=500).move()
x = np.array(mesh.coordinates.dat.data_ro)
pairs = mesh.comm.gather(np.column_stack([xi, x]), root=0)
if mesh.comm.rank == 0:
    a = np.concatenate(pairs)
    a = a[np.lexsort((a[:, 1], a[:, 0]))]
    print(json.dumps({"ranks": mesh.comm.size, "iterations": res.iterations, "residual": res.residual,
                      "points": a.tolist()}))
