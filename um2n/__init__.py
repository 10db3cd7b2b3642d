"""um2n: Universal Mesh Movement Network.

Zero-shot r-adaptation of 2D triangle meshes and of tetrahedral meshes with a graph neural
network.

The mover core (``um2n.mesh``, ``um2n.tetmesh``, ``um2n.surface``, ``um2n.model``,
``um2n.quality``, ``um2n.io`` and the ``um2n move`` command) needs only numpy, scipy, torch,
torch-geometric and meshio.
Everything that imports Firedrake lives in :mod:`um2n.fem`.
"""

__version__ = "0.1.0"
