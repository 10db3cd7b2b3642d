"""The Firedrake side of um2n: everything here imports Firedrake.

* :mod:`um2n.fem.adapter`: Firedrake mesh <-> :class:`um2n.mesh.MeshGraph`, in-place moves.

The rest of :mod:`um2n` never imports this package, so the mover core runs with torch,
torch-geometric and meshio alone.
"""
