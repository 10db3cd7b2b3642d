"""Run by tests/test_fem_adapter.py under mpiexec: move a mesh with the gathering adapter.

Writes JSON on rank 0: the original and moved coordinates of every global vertex, the
number of ranks, and whether each rank's ghost coordinates agree with the global ones.
"""

import json
import sys

import petsc4py

petsc4py.init(sys.argv[:1])
import firedrake as fd  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_mover import random_model  # noqa: E402

from um2n.fem.adapter import _Numbering, mesh_graph, move_mesh  # noqa: E402
from um2n.mover import UM2NMover  # noqa: E402

mesh = fd.UnitSquareMesh(12, 12)
g = mesh_graph(mesh)
x, y = fd.SpatialCoordinate(mesh)
monitor = fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(1 + 20 * fd.exp(-((x - 0.3) ** 2 + (y - 0.6) ** 2) / 0.02))
res = move_mesh(mesh, monitor, mover=UM2NMover(model=random_model(1, scale=10)), graph=g)
num = _Numbering(mesh)
local_ok = bool(np.allclose(mesh.coordinates.dat.data_ro_with_halos, res.points[num.local_to_global]))
all_ok = mesh.comm.allreduce(local_ok, op=__import__("mpi4py.MPI", fromlist=["MPI"]).LAND)
area = fd.assemble(fd.Constant(1.0) * fd.dx(domain=mesh))
vol = fd.Function(fd.FunctionSpace(mesh, "DG", 0)).interpolate(fd.CellVolume(mesh))
min_vol = mesh.comm.allreduce(float(vol.dat.data_ro.min()), op=__import__("mpi4py.MPI", fromlist=["MPI"]).MIN)
if mesh.comm.rank == 0:
    print(json.dumps({"ranks": mesh.comm.size, "original": g.points.tolist(), "moved": res.points.tolist(),
                      "local_coordinates_match": all_ok, "area": area, "min_cell_volume": min_vol,
                      "corners": len(g.corners), "tags": sorted(set(g.boundary_tags.tolist()))}))
