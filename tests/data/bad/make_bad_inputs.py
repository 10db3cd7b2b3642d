"""Regenerate the bad-input corpus (run from this folder with meshio installed).

Each file is wrong in one way; ``tests/test_cli_bad_input.py`` lists the message each must
produce. The files are committed; this script documents how they were made.
"""

import meshio
import numpy as np

sq = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.5, 0]], dtype=float)
tris = np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])


def w(name, points, cells, **kw):
    meshio.write(name, meshio.Mesh(points, cells, **kw))


w("quads.vtu", sq[:4], [("quad", np.array([[0, 1, 2, 3]]))])
w("tetra.vtu", np.vstack([sq[:3], [[0, 0, 1]]]), [("tetra", np.array([[0, 1, 2, 3]]))])
zv = sq.copy(); zv[4, 2] = 0.3
w("z_varies.vtu", zv, [("triangle", tris)])
w("only_lines.vtu", sq[:4], [("line", np.array([[0, 1], [1, 2], [2, 3], [3, 0]]))])
nanp = sq.copy(); nanp[4, 0] = np.nan
w("nan_coords.vtu", nanp, [("triangle", tris)])
mid = np.vstack([sq[:3], [[0.5, 0, 0], [1, 0.5, 0], [0.5, 0.5, 0]]])
w("triangle6.vtu", mid, [("triangle6", np.array([[0, 1, 2, 3, 4, 5]]))])
w("monitor_nan.vtu", sq, [("triangle", tris)], point_data={"m": np.array([1, 1, np.nan, 1, 1.0])})
w("monitor_negative.vtu", sq, [("triangle", tris)], point_data={"m": np.array([1, 1, -2, 1, 1.0])})
w("monitor_vector.vtu", sq, [("triangle", tris)], point_data={"m": np.ones((5, 2))})
w("monitor_zero.vtu", sq, [("triangle", tris)], point_data={"m": np.zeros(5)})
deg = sq.copy(); deg[4] = [0.5, 0.0, 0.0]
w("degenerate.vtu", deg, [("triangle", tris)])
w("mixed_tri_quad.vtu", np.vstack([sq, [[2, 0, 0], [2, 1, 0]]]),
  [("triangle", tris), ("quad", np.array([[1, 5, 6, 2]]))])
with open("garbage.msh", "w") as f:
    f.write("this is not a mesh\n$MeshFormat\n9 9 9\n")
open("empty.vtu", "w").close()
w("good_square.vtu", sq, [("triangle", tris)], point_data={"m": np.array([1, 2, 3, 4, 5.0])})

# 3D inputs (read by um2n.tetmesh.TetMeshGraph; tests/test_tetmesh.py lists the messages)
cube = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=float)
two_tets = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
flat = cube.copy(); flat[4] = [0.25, 0.25, 0.5]          # in the plane x + y + z = 1 of face (1, 2, 3)
w("tet_degenerate.vtu", flat, [("tetra", two_tets)])
w("tet_surface_only.vtu", cube[:4], [("triangle", np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]]))])
w("tet_mixed_dimension.vtu", np.vstack([cube, [[3, 0, 0], [4, 0, 0], [3, 1, 0]]]),
  [("tetra", two_tets), ("triangle", np.array([[5, 6, 7]]))])
w("tet_mixed_hex.vtu", np.vstack([cube, [[2, 0, 0], [3, 0, 0], [3, 1, 0], [2, 1, 0], [2, 0, 1], [3, 0, 1], [3, 1, 1], [2, 1, 1]]]),
  [("tetra", two_tets), ("hexahedron", np.arange(5, 13)[None, :])])
