r"""The finite-element error on a moved mesh, differentiable in the vertex coordinates.

For a mesh with vertex coordinates :math:`X = X_0 + d` and a manufactured solution :math:`u`
(:func:`um2n.fem.generate.exact_solution`), the P1 solution :math:`u_h(X)` of

* ``"helmholtz"``: :math:`-\Delta u + u = f`, or
* ``"poisson"``: :math:`-\Delta u = f`,

with :math:`f` computed from :math:`u` by UFL and Dirichlet data :math:`g_h` on the whole
boundary, gives the functional

.. math::

    J(d) = \int_{\Omega(X)} (u_h(X) - u)^2 \, dx,

the squared :math:`L^2` error. Every integral of :math:`u` uses one fixed quadrature
(degree 8), so that the derivative forms use the same rule as the forward ones. Its derivative with
respect to the vertex displacement :math:`d` is the shape derivative, computed by
``firedrake.adjoint``: the coordinates are set as ``mesh.coordinates.assign(X0 + d)`` on
the tape, the displacement is the control, and one adjoint solve gives
:math:`\partial J / \partial d` as a cofunction, i.e. the exact partial derivatives with
respect to the coordinate dofs (no Riesz map). :class:`FEError` couples it to torch with
``firedrake.ml.pytorch.fem_operator``: no adjoint is written by hand.

The Dirichlet data :math:`g_h` is the :math:`L^2` projection of :math:`u` onto P1
(restricted to the boundary nodes), not its interpolant: the interpolation block of
Firedrake's adjoint gives a wrong shape derivative in this release (the directional
derivative of :math:`\int I_h(u)^2` disagreed with central differences by a factor of about
2), while a projection is a solve, whose shape derivative is right. The two differ by
:math:`O(h^2)` on the boundary.

The coordinates of vertex ``i`` are dofs ``2i, 2i+1`` of ``mesh.coordinates``; on a serial
mesh these are vertex ``i`` of :func:`um2n.fem.adapter.mesh_graph`. A model predicts a
point for every vertex, and the boundary vertices may leave their boundary line a little
before the mover projects them back; :meth:`FEError.loss` applies the same rule
differentiably (corners fixed, a vertex of a straight boundary run keeps only its
tangential displacement), so that the error is measured on the domain itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import firedrake as fd
import numpy as np
import torch
from firedrake.adjoint import (Control, ReducedFunctional, Tape, continue_annotation, pause_annotation,
                               set_working_tape)
from firedrake.ml.pytorch import fem_operator

from um2n.errors import UM2NError
from um2n.features import mesh_data
from um2n.fem.adapter import mesh_graph
from um2n.fem.generate import Source, draw_sample, exact_solution, hessian_monitor_function, mesh_polygon
from um2n.fem.heldout import P1_SOLVER_PARAMETERS
from um2n.mesh import MeshGraph

PROBLEMS = ("helmholtz", "poisson")

#: the L2 projection of the Dirichlet data
PROJECTION_SOLVER_PARAMETERS = {"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-14, "ksp_atol": 0.0}
#: quadrature degree of every integral of the exact solution: fixed, so that the shape
#: derivative forms integrate with the same rule as the forward forms
QUADRATURE_DEGREE = 8


def boundary_tangents(graph: MeshGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The boundary rule of :meth:`FEError.loss`: (corner vertices, sliding vertices, unit
    tangent of each sliding vertex), from the graph's boundary model."""
    corners = np.asarray(graph.corners, dtype=np.int64)
    nbrs: dict[int, list[int]] = {}
    for a, b in graph.boundary_edges:
        nbrs.setdefault(int(a), []).append(int(b))
        nbrs.setdefault(int(b), []).append(int(a))
    sliding = np.array(sorted(set(nbrs) - set(corners.tolist())), dtype=np.int64)
    t = np.zeros((len(sliding), 2))
    x = graph.points
    for k, v in enumerate(sliding):
        a, b = nbrs[v][0], nbrs[v][-1]
        d = x[b] - x[a]
        t[k] = d / np.linalg.norm(d)
    return corners, sliding, t


class FEError:
    """:math:`J(d)`, the squared L2 error of the P1 solve on one mesh moved by ``d``, as a
    torch operator with its shape derivative (see the module docstring).

    Parameters
    ----------
    mesh : Firedrake mesh (serial), left at its original coordinates after construction
    sources : the Gaussians of the manufactured solution
    problem : ``"helmholtz"`` or ``"poisson"``
    graph : the mesh's :class:`MeshGraph` (for the boundary rule of :meth:`loss`); default
        :func:`um2n.fem.adapter.mesh_graph`
    """

    def __init__(self, mesh, sources: list[Source], problem: str = "helmholtz", graph: MeshGraph | None = None):
        if problem not in PROBLEMS:
            raise UM2NError(f"unknown problem {problem!r} (known: {', '.join(PROBLEMS)})")
        if mesh.comm.size > 1:
            raise UM2NError("FEError works on a serial mesh")
        if graph is None:
            graph = mesh_graph(mesh)
        self.mesh, self.problem = mesh, problem
        self.X0 = np.array(mesh.coordinates.dat.data_ro, dtype=np.float64)
        if graph.points.shape != self.X0.shape or not np.array_equal(graph.points, self.X0):
            raise UM2NError("FEError: the graph's vertices are not the mesh's coordinate dofs in order")
        corners, sliding, tangents = boundary_tangents(graph)
        self._corners = torch.from_numpy(corners)
        self._sliding = torch.from_numpy(sliding)
        self._tangents = torch.from_numpy(tangents)
        self._x0 = torch.from_numpy(self.X0)
        W = mesh.coordinates.function_space()
        X0 = fd.Function(mesh.coordinates)
        self.tape = Tape()
        with set_working_tape(self.tape):
            continue_annotation()
            try:
                d = fd.Function(W, name="displacement")
                mesh.coordinates.assign(X0 + d)
                x = fd.SpatialCoordinate(mesh)
                u_exact = exact_solution(sources, x, constants=True)
                V = fd.FunctionSpace(mesh, "CG", 1)
                u, v = fd.TrialFunction(V), fd.TestFunction(V)
                dq = fd.dx(degree=QUADRATURE_DEGREE)
                a = fd.inner(fd.grad(u), fd.grad(v)) * fd.dx
                f = -fd.div(fd.grad(u_exact))
                if problem == "helmholtz":
                    a += u * v * fd.dx
                    f += u_exact
                g = fd.Function(V, name="dirichlet_data")
                fd.solve(u * v * fd.dx == u_exact * v * dq, g, solver_parameters=PROJECTION_SOLVER_PARAMETERS)
                uh = fd.Function(V, name="u_h")
                fd.solve(a == f * v * dq, uh, bcs=fd.DirichletBC(V, g, "on_boundary"),
                         solver_parameters=P1_SOLVER_PARAMETERS)
                J = fd.assemble((uh - u_exact) ** 2 * dq)
            finally:
                pause_annotation()
            self.functional = ReducedFunctional(J, Control(d))
        #: :math:`\sqrt{J(0)}`, the L2 error on the original mesh
        self.reference_error = math.sqrt(float(J))
        self._operator = fem_operator(self.functional)

    def __call__(self, displacement: torch.Tensor) -> torch.Tensor:
        """:math:`J` for a displacement (N, 2) of every coordinate dof (float64 scalar tensor,
        differentiable)."""
        d = displacement.to(torch.float64).reshape(-1)
        return self._operator(d).reshape(())

    def constrain(self, points: torch.Tensor) -> torch.Tensor:
        """The points with the boundary rule applied (differentiably): corners at their
        original place, sliding vertices moved along their boundary line only."""
        x = points.to(torch.float64)
        d = x - self._x0
        s = self._sliding
        along = (d[s] * self._tangents).sum(-1, keepdim=True) * self._tangents
        d = d.index_put((s,), along)
        d = d.index_put((self._corners,), torch.zeros(len(self._corners), 2, dtype=d.dtype))
        return self._x0 + d

    def loss(self, points: torch.Tensor) -> torch.Tensor:
        r""":math:`\log(\sqrt{J} / e_0)` for moved vertex ``points`` (N, 2), physical
        coordinates, boundary rule applied: 0 on the original mesh, negative when the move
        reduces the error (the error reduction is :math:`1 - e^{\text{loss}}`)."""
        J = self(self.constrain(points) - self._x0)
        return 0.5 * torch.log(J) - math.log(self.reference_error)

    def error(self, points: np.ndarray) -> float:
        """The L2 error on the mesh moved to ``points`` (no boundary rule, no gradient)."""
        with torch.no_grad():
            return math.sqrt(float(self(torch.from_numpy(np.asarray(points, dtype=np.float64) - self.X0))))

    def value_and_gradient(self, points: np.ndarray) -> tuple[float, np.ndarray]:
        """:math:`J` and :math:`\\partial J / \\partial X` (N, 2) at vertex ``points``."""
        d = torch.from_numpy(np.asarray(points, dtype=np.float64) - self.X0).requires_grad_(True)
        J = self(d)
        J.backward()
        return float(J.detach()), d.grad.numpy().copy()


@dataclass
class ErrorProblem:
    """One training problem of the PDE-loss stage: a mesh, its model input and its error."""

    data: object           # torch_geometric.data.Data, the model input (mesh_data)
    error: FEError
    domain: str
    index: int


def make_problem(config, index: int, problem: str, workdir, alpha: float | None = None) -> ErrorProblem:
    """Problem ``index`` of the random family of ``config`` (a
    :class:`um2n.fem.generate.GenerateConfig`: domains, mesh sizes, sources, monitor): the
    gmsh mesh, the Hessian monitor at its vertices, the model input and the error functional.
    ``alpha``: the monitor's amplitude, if not ``config.alpha``."""
    s = draw_sample(config, index)
    msh = mesh_polygon(np.array(s.outer), None if s.hole is None else np.array(s.hole), s.lc,
                       Path(workdir) / f"problem{index}.msh", seed=s.seed % (2 ** 31))
    mesh = fd.Mesh(str(msh))
    graph = mesh_graph(mesh)
    sources = [Source(**d) for d in s.sources]
    monitor = hessian_monitor_function(sources, config.alpha if alpha is None else alpha, mesh, config.power,
                                       constants=True)
    m0 = np.array(fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(monitor(mesh)).dat.data_ro)
    data = mesh_data(graph, m0)
    data.face = torch.from_numpy(graph.triangles.T.copy())
    data.monitor = torch.from_numpy(m0).float()
    return ErrorProblem(data=data, error=FEError(mesh, sources, problem, graph), domain=s.domain, index=index)
