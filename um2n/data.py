"""Training data on disk as a PyG dataset (no Firedrake needed to read it).

A data set folder made by ``um2n generate`` (see :mod:`um2n.fem.generate`) holds
``manifest.jsonl`` and ``samples/*.npz``. :class:`MeshMoveDataset` turns every successful
sample into a :class:`torch_geometric.data.Data` with the model inputs of
:func:`um2n.features.mesh_data` plus

* ``y`` (N, d): the Monge-Ampère coordinates, normalised like ``pos``;
* ``face`` (3, M): the triangles, or (4, M): the tetrahedra of a 3D sample (PyG offsets
  them when batching);
* ``monitor`` (N,): the raw monitor values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data, Dataset

from um2n.errors import UM2NError
from um2n.features import mesh_data
from um2n.mesh import MeshGraph
from um2n.tetmesh import TetMeshGraph


def load_sample(path: str | Path) -> Data:
    """One ``.npz`` sample as a PyG ``Data``."""
    with np.load(path) as z:
        if "tets" in z:
            graph = TetMeshGraph.from_arrays(z["points"], z["tets"], boundary_triangles=z["boundary_faces"],
                                             boundary_triangle_tags=z["boundary_tags"], name=str(path))
        else:
            graph = MeshGraph.from_arrays(z["points"], z["triangles"], boundary_segments=z["boundary_segments"],
                                          boundary_segment_tags=z["boundary_tags"], name=str(path))
        monitor = z["monitor"][graph.vertex_map]
        target = z["target"][graph.vertex_map]
    data = mesh_data(graph, monitor)
    lo, L = graph.bounding_box
    data.y = torch.from_numpy((target - lo) / L).float()
    data.face = torch.from_numpy(graph.cells.T.copy())
    data.monitor = torch.from_numpy(monitor).float()
    return data


class MeshMoveDataset(Dataset):
    """The successful samples of a ``um2n generate`` folder, in manifest order.

    Parameters
    ----------
    root : folder with ``manifest.jsonl`` and ``samples/``
    indices : optional subset of sample indices (as in the manifest) to keep
    """

    def __init__(self, root: str | Path, indices=None, transform=None):
        self.folder = Path(root)
        manifest = self.folder / "manifest.jsonl"
        if not manifest.exists():
            raise UM2NError(f"{self.folder}: no manifest.jsonl (not a um2n generate folder)")
        rows = []
        for line in manifest.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("status") == "ok" and (indices is None or row["index"] in indices):
                rows.append(row)
        self.rows = sorted(rows, key=lambda r: r["index"])
        super().__init__(None, transform)

    def len(self) -> int:
        return len(self.rows)

    def get(self, idx: int) -> Data:
        data = load_sample(self.folder / self.rows[idx]["file"])
        data.sample_index = torch.tensor([self.rows[idx]["index"]])
        return data
