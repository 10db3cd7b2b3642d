r"""Continuous mesh motion for arbitrary Lagrangian-Eulerian (ALE) time stepping.

Between two targets the mesh moves linearly in time. A window of :math:`k` steps that
starts at :math:`t_0` on coordinates :math:`x^0` and ends on the target :math:`x^*` places
the vertices at

.. math:: x(t) = x^0 + \frac{t - t_0}{k\,\Delta t}\,(x^* - x^0), \qquad
          w = \frac{x^* - x^0}{k\,\Delta t},

so the mesh velocity :math:`w` (continuous, P1 on the coordinate space, tangential on
straight boundaries since the movers slide vertices along them) is constant over the
window. A solver in ALE form asks for the geometry at any fraction :math:`\theta` of its
current step (:meth:`MeshMotion.place`), evaluates its mass terms and its fluxes
(:math:`(a - w)\cdot n` for a transport velocity :math:`a`) there, and leaves the mesh at
:math:`\theta = 1`.

With linear motion of affine triangles the Jacobian :math:`\det J(t)` of every cell is a
quadratic in :math:`t`, so :math:`\int_{K(t)} \phi_i\,dx` is a quadratic and its rate
:math:`\int_{K(t)} \phi_i\,\nabla\cdot w\,dx` is linear in :math:`t`. The discrete geometric
conservation law (DGCL) asks that a time step integrate that rate exactly, which a
one-point rule does at the midpoint of each sub-interval; the solvers choose their
geometry times accordingly (see :mod:`um2n_simulations.advection` and
:mod:`um2n_simulations.shallow_water`).

The loop (:mod:`um2n.fem.loop`) starts a window after each accepted move, and refuses or
shortens a window whose straight path would tangle part-way (:func:`um2n.path.safe_fraction`).
"""

from __future__ import annotations

import firedrake as fd
import numpy as np


class MeshMotion:
    """The linear-in-time motion of ``mesh`` over the current window (module docstring).

    Outside a window the mesh stands still: :attr:`velocity` is zero and :meth:`place`
    does nothing.
    """

    def __init__(self, mesh):
        self.mesh = mesh
        #: the mesh velocity w (P1 on the coordinate space), zero outside a window
        self.velocity = fd.Function(mesh.coordinates.function_space(), name="mesh_velocity")
        self.start_coordinates: np.ndarray | None = None
        self.target: np.ndarray | None = None
        self.steps = 0           # steps in the window (0: no window)
        self.done = 0            # steps of the window already taken

    @property
    def active(self) -> bool:
        """Whether the mesh is moving during the current step."""
        return self.steps > 0

    def start(self, target: np.ndarray, steps: int, dt: float) -> None:
        """Move from the current coordinates to ``target`` over the next ``steps`` steps."""
        self.start_coordinates = np.array(self.mesh.coordinates.dat.data_ro_with_halos)
        self.target = np.array(target, dtype=float)
        self.steps, self.done = int(steps), 0
        self.velocity.dat.data_with_halos[:] = (self.target - self.start_coordinates) / (self.steps * dt)

    def place(self, theta: float) -> None:
        """Put the vertices where they are at fraction ``theta`` of the current step."""
        if not self.active:
            return
        s = (self.done + theta) / self.steps
        self.mesh.coordinates.dat.data_with_halos[:] = self.start_coordinates + s * (self.target - self.start_coordinates)

    def step_done(self) -> None:
        """The current step is over: the mesh at its end, the window closed after its last step."""
        if not self.active:
            return
        self.place(1.0)
        self.done += 1
        if self.done == self.steps:
            self.mesh.coordinates.dat.data_with_halos[:] = self.target
            self.stop()

    def stop(self) -> None:
        """End the window where the mesh is: no velocity."""
        self.steps = self.done = 0
        self.start_coordinates = self.target = None
        self.velocity.dat.data_with_halos[:] = 0.0

    # ------------------------------------------------------------------ restart
    def state(self) -> dict:
        """The window's counters (JSON); the coordinates go in the checkpoint as functions."""
        return {"steps": self.steps, "done": self.done}

    def functions(self) -> dict[str, fd.Function]:
        """The window's start and target coordinates as functions, for a checkpoint."""
        V = self.mesh.coordinates.function_space()
        out = {}
        for name, values in (("ale_start", self.start_coordinates), ("ale_target", self.target)):
            f = fd.Function(V, name=name)
            f.dat.data_with_halos[:] = self.mesh.coordinates.dat.data_ro_with_halos if values is None else values
            out[name] = f
        return out

    def restore(self, state: dict, functions: dict[str, fd.Function], dt: float) -> None:
        """Resume the window saved by :meth:`state` and :meth:`functions`."""
        if not state.get("steps"):
            self.stop()
            return
        self.start_coordinates = np.array(functions["ale_start"].dat.data_ro_with_halos)
        self.target = np.array(functions["ale_target"].dat.data_ro_with_halos)
        self.steps, self.done = int(state["steps"]), int(state["done"])
        self.velocity.dat.data_with_halos[:] = (self.target - self.start_coordinates) / (self.steps * dt)
