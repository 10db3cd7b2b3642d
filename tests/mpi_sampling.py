"""Run by tests/test_sampling.py under mpiexec: PointSampler against evaluate_at on a distributed mesh.

Each rank samples its own random points over the whole square (so that many lie in the
other rank's cells) and two outside it, twice, the mesh moved a little in between; prints
one JSON line with the largest difference from evaluate_at and the sampler's counts summed
over the ranks."""

import json

import numpy as np
from mpi4py import MPI

import firedrake as fd
from um2n.fem.sampling import PointSampler, evaluate_at

comm = MPI.COMM_WORLD
mesh = fd.UnitSquareMesh(16, 16)
x, y = fd.SpatialCoordinate(mesh)
f = fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(fd.sin(3 * x) * fd.cos(2 * y) + x * y)
rng = np.random.default_rng(comm.rank)
points = np.vstack([rng.uniform(0.0, 1.0, size=(200, 2)), [[1.3, 0.5], [-0.2, -0.1]]])
sample = PointSampler()
diffs = []
for k in range(2):
    if k:
        X = mesh.coordinates.dat.data_with_halos
        X[:] += 0.01 * np.sin(np.pi * X[:, ::-1]) * np.sin(np.pi * X)   # zero on the boundary
        if hasattr(mesh, "clear_spatial_index"):      # the point evaluation's index is stale
            mesh.clear_spatial_index()
        f.interpolate(fd.sin(3 * x) * fd.cos(2 * y) + x * y)
    diffs.append(float(np.abs(sample(f, points) - evaluate_at(f, points)).max()))
counts = {k: comm.allreduce(v) for k, v in sample.counts.items()}
if comm.rank == 0:
    print(json.dumps({"ranks": comm.size, "max_diff": comm.allreduce(max(diffs), op=MPI.MAX), "counts": counts}))
else:
    comm.allreduce(max(diffs), op=MPI.MAX)
