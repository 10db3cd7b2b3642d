r"""The mover interface of the moving-mesh loop, its three implementations, and the guard.

A mover is anything with

* ``name``: a label (``"um2n"``, ``"ma"``, ``"none"``, or a user's own);
* ``moves_mesh``: ``False`` for the static baseline (the loop then computes no monitor);
* ``move(mesh, monitor) -> MoveInfo``: move ``mesh`` in place towards ``monitor``, a P1
  :class:`firedrake.Function` on a *frozen copy* of the mesh as it was before the move.

Both shipped movers are r-adaptive: they move from the *reference* coordinates
:math:`\xi` (the mesh the run started on) to :math:`x(\xi)`, not from the current mesh, so
moves never accumulate drift:

* :class:`UM2NMeshMover`: the network (:class:`um2n.mover.UM2NMover`) fed the monitor
  interpolated at the reference vertices;
* :class:`MongeAmpereMeshMover`: :class:`um2n.fem.monge_ampere.MongeAmpereMover`, which
  evaluates the monitor at every iterate by interpolation from the frozen pre-move mesh;
* :class:`StaticMover`: the mesh stays as it is.

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
from um2n.mesh import signed_areas
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

    def move(self, mesh, monitor: fd.Function) -> MoveInfo:
        return MoveInfo(accepted=False, reason="the static mover does not move the mesh")


class _ReferenceMover:
    """A mover from the reference coordinates ``xi``, with the graph built on them."""

    moves_mesh = True

    def __init__(self, mesh, xi: np.ndarray):
        self.xi = np.array(xi)
        current = np.array(mesh.coordinates.dat.data_ro)
        mesh.coordinates.dat.data[:] = self.xi
        self.graph = mesh_graph(mesh)
        self._setup(mesh)
        mesh.coordinates.dat.data[:] = current

    def _setup(self, mesh) -> None:
        """Build what needs the mesh at its reference coordinates."""


class UM2NMeshMover(_ReferenceMover):
    """The pretrained network (``weights``: a path or a shipped name; ``None``: the default)."""

    name = "um2n"

    def __init__(self, mesh, xi: np.ndarray, weights: str | None = None):
        from um2n.mover import UM2NMover

        self.network = UM2NMover(weights=weights)
        super().__init__(mesh, xi)

    def _setup(self, mesh) -> None:
        self.P1 = fd.FunctionSpace(mesh, "CG", 1)
        self.m_ref = fd.Function(self.P1, name="monitor_at_reference")

    def move(self, mesh, monitor: fd.Function) -> MoveInfo:
        mesh.coordinates.dat.data[:] = self.xi
        if hasattr(mesh, "clear_spatial_index"):
            mesh.clear_spatial_index()
        self.m_ref.interpolate(monitor)                 # the monitor at the reference vertices
        result = move_mesh(mesh, self.m_ref, self.network, graph=self.graph)
        return MoveInfo(details={"limited_vertices": int(result.safeguard.limited_vertices)})


class MongeAmpereMeshMover(_ReferenceMover):
    """The Monge-Ampère mover (``rtol``, ``maxiter``: its stopping rule)."""

    name = "ma"

    def __init__(self, mesh, xi: np.ndarray, rtol: float, maxiter: int):
        self.rtol, self.maxiter = rtol, maxiter
        self._target: fd.Function | None = None
        super().__init__(mesh, xi)

    def _setup(self, mesh) -> None:
        from um2n.fem.monge_ampere import MongeAmpereMover

        self.solver = MongeAmpereMover(mesh, self._monitor_on, rtol=self.rtol, maxiter=self.maxiter,
                                       graph=self.graph)

    def _monitor_on(self, mesh) -> fd.Function:
        """The monitor the solver evaluates at each iterate: the target of the current move."""
        return self._target

    def move(self, mesh, monitor: fd.Function) -> MoveInfo:
        self._target = monitor
        try:
            return MoveInfo(details={"iterations": self.solver.move().iterations})
        finally:
            self._target = None


def make_mover(name: str, mesh, xi: np.ndarray, *, weights: str | None = None, ma_rtol: float = 1e-3,
               ma_maxiter: int = 300) -> Mover:
    """The mover called ``name`` (one of :data:`MOVERS`) for ``mesh`` with reference ``xi``."""
    if name == "none":
        return StaticMover()
    if name == "um2n":
        return UM2NMeshMover(mesh, xi, weights)
    if name == "ma":
        return MongeAmpereMeshMover(mesh, xi, ma_rtol, ma_maxiter)
    raise UM2NError(f"mover must be one of {', '.join(MOVERS)}, not {name!r}")


class TangleGuard:
    """The orientation of every element against the reference mesh ``xi``."""

    def __init__(self, mesh, xi: np.ndarray):
        self.mesh = mesh
        self.triangles = fd.FunctionSpace(mesh, "CG", 1).cell_node_list
        self.reference_sign = np.sign(signed_areas(np.asarray(xi), self.triangles))

    def inverted(self) -> int:
        """Elements whose signed area is zero or has flipped against the reference."""
        return count_inverted(np.asarray(self.mesh.coordinates.dat.data_ro), self.triangles, self.reference_sign)


def guarded_move(mover: Mover, mesh, monitor: fd.Function, guard: TangleGuard) -> MoveInfo:
    """``mover.move(mesh, monitor)``, undone if it fails or would tangle the mesh."""
    before = np.array(mesh.coordinates.dat.data_ro)
    try:
        info = mover.move(mesh, monitor)
    except ConvergenceError as exc:
        info = MoveInfo(accepted=False, reason=str(exc))
    if info.accepted and (n := guard.inverted()):
        info = MoveInfo(accepted=False, reason=f"the moved mesh would have {n} inverted elements")
    if not info.accepted:
        mesh.coordinates.dat.data[:] = before
    if hasattr(mesh, "clear_spatial_index"):
        mesh.clear_spatial_index()
    return info
