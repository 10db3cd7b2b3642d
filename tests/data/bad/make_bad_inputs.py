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
