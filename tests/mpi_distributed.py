"""Run by tests/test_distributed.py under mpiexec: move a mesh with the distributed UM2N.

Arguments: the mesh file, the model (``shipped``, or ``wild:SEED:SCALE`` for a random model
whose raw moves tangle), the monitor expression. Every rank reads the mesh, keeps the
triangles whose centroid lies in its slab of x (the ranks split the triangles in equal
numbers) and the vertices of its triangles, owning a vertex where its smallest-numbered
triangle lies, and moves its partition (:class:`um2n.distributed.DistributedMover`). Rank 0
also moves the whole mesh serially (:class:`um2n.mover.UM2NMover`) and prints one JSON
line: the largest difference over the vertices relative to the domain size, the safeguard's
figures of both, and the bytes each rank sent.
"""

import json
import sys

import numpy as np
from mpi4py import MPI

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_mover import random_model  # noqa: E402

from um2n.distributed import DistributedMover, Partition  # noqa: E402
from um2n.mesh import MeshGraph  # noqa: E402
from um2n.mover import load_model, UM2NMover  # noqa: E402

comm = MPI.COMM_WORLD
path, which, monitor = sys.argv[1], sys.argv[2], sys.argv[3]
g = MeshGraph.from_file(path)
model = load_model()[0] if which == "shipped" else random_model(int(which.split(":")[1]), float(which.split(":")[2]))

tri = g.triangles
cx = g.points[tri].mean(axis=1)[:, 0]
order = np.argsort(cx, kind="stable")
tri_rank = np.empty(len(tri), np.int64)
tri_rank[order] = np.arange(len(tri)) * comm.size // len(tri)
first_tri = np.full(g.num_vertices, len(tri), np.int64)
for k in range(3):
    np.minimum.at(first_tri, tri[:, k], np.arange(len(tri)))
owner = tri_rank[first_tri]
mine = np.flatnonzero(tri_rank == comm.rank)
verts = np.unique(np.r_[tri[mine].ravel(), np.flatnonzero(owner == comm.rank)])
local = {int(v): i for i, v in enumerate(verts)}
loc = np.vectorize(local.__getitem__, otypes=[np.int64])
be = g.boundary_edges[np.isin(g.boundary_edges, verts).all(axis=1)]
bt = g.boundary_tags[np.isin(g.boundary_edges, verts).all(axis=1)]
part = Partition.from_local(comm, verts, owner[verts], g.points[verts], loc(tri[mine]),
                            loc(be) if len(be) else np.zeros((0, 2), np.int64), bt, corner_angle=g.corner_angle)
res = DistributedMover(model).move(part, monitor)
rows = np.column_stack([part.global_ids[:part.num_owned], res.points[:part.num_owned]])
allrows = comm.gather(rows, root=0)
sent = comm.gather(res.bytes_exchanged, root=0)
owned = comm.allgather(part.num_owned)
if comm.rank == 0:
    allrows = np.concatenate(allrows)
    x = np.empty_like(g.points)
    x[allrows[:, 0].astype(np.int64)] = allrows[:, 1:]
    assert len(np.unique(allrows[:, 0])) == g.num_vertices
    ser = UM2NMover(model=model).move(g, monitor)
    lo, L = g.bounding_box
    print(json.dumps({
        "ranks": comm.size, "vertices": g.num_vertices,
        "max_diff": float(np.abs(x - ser.points).max() / L),
        "moved": float(np.abs(ser.points - g.points).max() / L),
        "serial_safeguard": ser.safeguard.__dict__, "distributed_safeguard": res.safeguard.__dict__,
        "owned": owned, "bytes_sent": sent,
        "corners_equal": bool(np.array_equal(x[g.corners], g.points[g.corners])),
    }))
