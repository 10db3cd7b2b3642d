r"""Per-vertex inputs of the model, packed as a :class:`torch_geometric.data.Data`.

For a mesh with vertices :math:`x_i`, bounding box lower corner :math:`x_{lo}` and
larger side :math:`L`, the inputs of vertex :math:`i` are

.. math::

    f_i = \big( (x_i - x_{lo}) / L,\; b_i,\; m_i / \max_j m_j \big) \in \mathbb{R}^{d + 2},

with :math:`b_i = 1` on the boundary and :math:`d` the dimension (2 for a
:class:`~um2n.mesh.MeshGraph`, 3 for a :class:`~um2n.tetmesh.TetMeshGraph`). The scaling is isotropic (one :math:`L` for both
axes), so angles, and therefore element validity, are the same in normalised space.
The graph also carries the monitor's dynamic range :math:`\gamma = 1 - \min m / \max m`
(the deformer's gate; see :mod:`um2n.model`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Data

from um2n.mesh import MeshGraph
from um2n.monitor import monitor_range, normalise_monitor


def mesh_data(graph: MeshGraph, monitor: np.ndarray) -> Data:
    """Model input for ``graph`` with (checked) monitor values ``monitor`` at its vertices.

    ``graph`` is a :class:`~um2n.mesh.MeshGraph` or a :class:`~um2n.tetmesh.TetMeshGraph`.
    Fields: ``x`` (N, d + 2) features, ``pos`` (N, d) normalised coordinates, ``edge_index``
    (both directions of every mesh edge), ``deform_edge_index`` (the deformer's
    neighbourhoods, see :meth:`MeshGraph.deform_edge_index`), ``gate`` (1,), ``scale`` (1,)
    and ``origin`` (1, d) to map back to physical coordinates.
    """
    lo, L = graph.bounding_box
    pos = (graph.points - lo) / L
    m = normalise_monitor(monitor)
    feats = np.column_stack([pos, graph.is_boundary.astype(np.float64), m])
    return Data(
        x=torch.from_numpy(feats).float(),
        pos=torch.from_numpy(pos).float(),
        edge_index=graph.edge_index(),
        deform_edge_index=graph.deform_edge_index(),
        gate=torch.tensor([monitor_range(monitor)], dtype=torch.float32),
        scale=torch.tensor([L], dtype=torch.float64),
        origin=torch.from_numpy(lo[None, :].copy()),
        num_nodes=graph.num_vertices,
    )
