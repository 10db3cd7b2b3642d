r"""The mover interface of the moving-mesh loop, its three implementations, and the guard.

A mover is anything with

* ``name``: a label (``"um2n"``, ``"ma"``, ``"none"``, or a user's own);
* ``moves_mesh``: ``False`` for the static baseline (the loop then computes no monitor);
* ``move(mesh, monitor) -> MoveInfo``: move ``mesh`` in place towards ``monitor``, a P1
  :class:`firedrake.Function` on a *frozen copy* of the mesh as it was before the move;
* optionally ``frozen_monitor``: ``False`` for a mover that evaluates the monitor once,
  before it moves any vertex, and so can take it on the mesh itself (no frozen copy, which
  the loop can then do without, also under MPI, when the mesh moves continuously). A mover
  without the attribute gets the frozen copy.

Both shipped movers are r-adaptive: they move from the *reference* coordinates
:math:`\xi` (the mesh the run started on) to :math:`x(\xi)`, not from the current mesh, so
moves never accumulate drift:

* :class:`UM2NMeshMover`: the network (:class:`um2n.mover.UM2NMover`) fed the monitor
  evaluated at the reference vertices (on the monitor's own mesh, before the move);
* :class:`MongeAmpereMeshMover`: :class:`um2n.fem.monge_ampere.MongeAmpereMover`, which
  evaluates the monitor at every iterate on the frozen pre-move mesh;
* :class:`StaticMover`: the mesh stays as it is.

Both moving ones sample the monitor with :class:`um2n.fem.sampling.PointSampler`, which
keeps the cell each point was found in from one call to the next (and leaves the points it
does not find to the point evaluation of :func:`um2n.fem.sampling.evaluate_at`).

:func:`guarded_move` wraps any mover: it counts the elements whose orientation differs from
the reference (:func:`um2n.quality.count_inverted`), and undoes a move that failed (a
:class:`~um2n.errors.ConvergenceError`) or that would tangle the mesh. So the loop never
hands a tangled mesh to a solver, whatever the mover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import firedrake as fd
import numpy as np

from um2n.errors import ConvergenceError, UM2NError
from um2n.fem.adapter import mesh_graph, move_mesh
from um2n.fem.sampling import PointSampler
from um2n.mesh import signed_measures
from um2n.quality import count_inverted

#: the movers :func:`make_mover` builds by name
MOVERS = ("um2n", "ma", "none")
@dataclass
class MoveInfo:
    """What one move did.

    ``accepted`` is ``False`` when the move failed or would have tangled the mesh (the mesh
    is then as it was before); ``reason`` says why. ``details`` holds mover-specific counts
    (``limited_vertices`` of the UM2N safeguard, ``iterations`` of Monge-Ampère).
    """

    accepted: bool = True
    reason: str = ""
    details: dict = field(default_factory=dict)


@runtime_checkable
class Mover(Protocol):
    """The interface of a mover (see the module docstring)."""

    name: str
    moves_mesh: bool

    def move(self, mesh, monitor: fd.Function) -> MoveInfo:
        """Move ``mesh`` in place towards ``monitor`` (P1, on the frozen pre-move mesh)."""
        ...


class StaticMover:
    """The static baseline: never moves the mesh."""

    name = "none"
    moves_mesh = False
    frozen_monitor = False

    def move(self, mesh, monitor: fd.Function) -> MoveInfo:
        return MoveInfo(accepted=False, reason="the static mover does not move the mesh")


class _ReferenceMover:
    """A mover from the reference coordinates ``xi``, with the graph built on them."""

    moves_mesh = True
    #: whether the mover needs the global graph (:func:`um2n.fem.adapter.mesh_graph`, gathered)
    needs_graph = True

    def __init__(self, mesh, xi: np.ndarray):
        self.xi = np.array(xi)                      # every local vertex, the halo included
        current = np.array(mesh.coordinates.dat.data_ro_with_halos)
        mesh.coordinates.dat.data_with_halos[:] = self.xi
        self.graph = mesh_graph(mesh) if self.needs_graph else None
        self._setup(mesh)
        mesh.coordinates.dat.data_with_halos[:] = current

    def _setup(self, mesh) -> None:
        """Build what needs the mesh at its reference coordinates."""


class UM2NMeshMover(_ReferenceMover):
    """The pretrained network (``weights``: a path or a shipped name; ``None``: the default
    weights of the mesh's dimension, ``um2n-v1`` or ``um2n-3d-v1``); ``min_cell_ratio``: the
    safeguard's least ratio of a cell's area (volume) to its reference one
    (:func:`um2n.safeguard.untangle`); ``passes``: the network's forward passes per move
    (:class:`um2n.mover.UM2NMover`; in serial or gathered, the distributed network makes one).

    Under MPI it runs distributed (``distributed=None`` or ``True``; in serial it has no
    effect): each rank moves the vertices it owns (:func:`um2n.fem.adapter.move_mesh_distributed`), and no rank holds the
    whole mesh. ``distributed=False`` gathers the mesh and moves it on rank 0 instead
    (:func:`um2n.fem.adapter.move_mesh`).
    """

    name = "um2n"

    def __init__(self, mesh, xi: np.ndarray, weights: str | None = None, distributed: bool | None = None,
                 min_cell_ratio: float = 1e-3, passes: int = 1):
        from um2n.mover import DEFAULT_WEIGHTS_3D_NAME, UM2NMover

        tetrahedral = mesh.coordinates.dat.data_ro.shape[1] == 3
        if weights is None and tetrahedral:
            weights = DEFAULT_WEIGHTS_3D_NAME
        self.network = UM2NMover(weights=weights, min_area_ratio=min_cell_ratio, passes=passes)
        self.distributed = mesh.comm.size > 1 and (distributed is None or bool(distributed))
        if self.distributed and passes > 1:
            raise UM2NError(f"the distributed network makes one pass per move, not {passes}: under MPI set "
                            "passes = 1, or parallel_network = 'gathered', in the [loop] table")
        if self.distributed and tetrahedral:
            raise UM2NError("the distributed network moves triangle meshes only: for a tetrahedral mesh under "
                            "MPI set parallel_network = 'gathered' in the [loop] table")
        self.needs_graph = not self.distributed
        super().__init__(mesh, xi)

    frozen_monitor = False

    def _setup(self, mesh) -> None:
        self.P1 = fd.FunctionSpace(mesh, "CG", 1)
        self.m_ref = fd.Function(self.P1, name="monitor_at_reference")
        self._owned = self.m_ref.dat.data_ro.shape[0]   # the owned vertices come first
        self.sample = PointSampler()                     # the reference vertices' cells, kept
        if self.distributed:
            from um2n.distributed import DistributedMover
            from um2n.fem.adapter import PartitionRows, mesh_partition

            self.partition = mesh_partition(mesh)
            self.partition_rows = PartitionRows(mesh, self.partition)
            self.distributed_mover = DistributedMover(self.network.model, self.network.min_area_ratio)

    def move(self, mesh, monitor: fd.Function) -> MoveInfo:
        # the monitor at the rank's own reference vertices, on the mesh it lives on (which
        # may be ``mesh`` itself, still where it was)
        source = monitor.function_space().mesh()
        if hasattr(source, "clear_spatial_index"):     # its vertices may have moved since it was built
            source.clear_spatial_index()
        self.m_ref.dat.data[:] = self.sample(monitor, self.xi[:self._owned])
        mesh.coordinates.dat.data_with_halos[:] = self.xi
        if hasattr(mesh, "clear_spatial_index"):
            mesh.clear_spatial_index()
        if self.distributed:
            from um2n.fem.adapter import move_mesh_distributed

            result = move_mesh_distributed(mesh, self.m_ref, self.partition, self.distributed_mover,
                                           rows=self.partition_rows)
            return MoveInfo(details={"limited_vertices": int(result.safeguard.limited_vertices),
                                     "bytes_exchanged": int(result.bytes_exchanged)})
        result = move_mesh(mesh, self.m_ref, self.network, graph=self.graph)
        return MoveInfo(details={"limited_vertices": int(result.safeguard.limited_vertices)})


class MongeAmpereMeshMover(_ReferenceMover):
    """The Monge-Ampère mover (``rtol``, ``maxiter``: its stopping rule).

    At every iterate the solver takes the monitor at the current vertices on the frozen
    pre-move mesh (:class:`um2n.fem.sampling.PointSampler`, each rank at its own vertices),
    so the frozen copy may be any mesh: under MPI it shares the moving mesh's distribution.
    """

    name = "ma"

    def __init__(self, mesh, xi: np.ndarray, rtol: float, maxiter: int):
        self.rtol, self.maxiter = rtol, maxiter
        self._target: fd.Function | None = None
        # under MPI the solver builds its own partition of the boundary (no gathered graph)
        self.needs_graph = mesh.comm.size == 1
        super().__init__(mesh, xi)

    def _setup(self, mesh) -> None:
        from um2n.fem.monge_ampere import MongeAmpereMover

        self.solver = MongeAmpereMover(mesh, self._monitor_on, rtol=self.rtol, maxiter=self.maxiter,
                                       graph=self.graph)
        self._at_vertices = fd.Function(fd.FunctionSpace(mesh, "CG", 1), name="monitor_at_iterate")
        self._owned = self._at_vertices.dat.data_ro.shape[0]     # the owned vertices come first
        self.sample = PointSampler()                             # the iterates' vertices' cells, kept

    def _monitor_on(self, mesh) -> fd.Function:
        """The monitor the solver evaluates at each iterate: the target of the current move,
        at the vertices of ``mesh`` where they are now."""
        points = np.array(mesh.coordinates.dat.data_ro[:self._owned])
        self._at_vertices.dat.data[:] = self.sample(self._target, points)
        return self._at_vertices

    def move(self, mesh, monitor: fd.Function) -> MoveInfo:
        self._target = monitor
        try:
            return MoveInfo(details={"iterations": self.solver.move().iterations})
        finally:
            self._target = None


def make_mover(name: str, mesh, xi: np.ndarray, *, weights: str | None = None, ma_rtol: float = 1e-3,
               ma_maxiter: int = 300, parallel_network: str = "distributed", min_cell_ratio: float = 1e-3,
               passes: int = 1) -> Mover:
    """The mover called ``name`` (one of :data:`MOVERS`) for ``mesh`` with reference ``xi``
    (``parallel_network``: how ``um2n`` runs under MPI, ``"distributed"`` or ``"gathered"``;
    ``passes``: the ``um2n`` network's forward passes per move)."""
    if name == "none":
        return StaticMover()
    if name == "um2n":
        return UM2NMeshMover(mesh, xi, weights, distributed=parallel_network == "distributed",
                             min_cell_ratio=min_cell_ratio, passes=passes)
    if name == "ma":
        return MongeAmpereMeshMover(mesh, xi, ma_rtol, ma_maxiter)
    raise UM2NError(f"mover must be one of {', '.join(MOVERS)}, not {name!r}")


class TangleGuard:
    """The orientation of every element against the reference mesh ``xi``."""

    def __init__(self, mesh, xi: np.ndarray):
        self.mesh = mesh
        #: the vertices of every local element (the halo's included), into the local vertices
        self.triangles = fd.FunctionSpace(mesh, "CG", 1).cell_node_list
        self.reference_sign = np.sign(signed_measures(np.asarray(xi), self.triangles))
        self._owned = mesh.cell_set.size             # the owned elements come first

    def inverted(self) -> int:
        """Elements whose signed area (volume) is zero or has flipped against the reference (all ranks)."""
        n = self._owned
        local = count_inverted(np.asarray(self.mesh.coordinates.dat.data_ro_with_halos), self.triangles[:n],
                               self.reference_sign[:n])
        return int(self.mesh.comm.allreduce(local))


def guarded_move(mover: Mover, mesh, monitor: fd.Function, guard: TangleGuard) -> MoveInfo:
    """``mover.move(mesh, monitor)``, undone if it fails or would tangle the mesh."""
    before = np.array(mesh.coordinates.dat.data_ro_with_halos)
    try:
        info = mover.move(mesh, monitor)
    except ConvergenceError as exc:
        info = MoveInfo(accepted=False, reason=str(exc))
    if info.accepted and (n := guard.inverted()):
        info = MoveInfo(accepted=False, reason=f"the moved mesh would have {n} inverted elements")
    if not info.accepted:
        mesh.coordinates.dat.data_with_halos[:] = before
    if hasattr(mesh, "clear_spatial_index"):
        mesh.clear_spatial_index()
    return info
