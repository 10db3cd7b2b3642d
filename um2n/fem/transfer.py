r"""Field transfer between the mesh before and after a move (same cells, new vertex positions).

A moved mesh keeps its topology, so a Firedrake ``Function`` on it keeps its degrees of
freedom, but those now sit at new places: leaving them as they are drags the field along
with the vertices. :class:`FieldTransfer` instead keeps a *frozen copy* of the mesh as it
was before the move (a mesh with its own topology, so that Firedrake treats the two as
different meshes), copies each field onto it, and after the move brings it back by

* ``"conservative"`` (default): the Galerkin :math:`L^2` projection
  :math:`(u_{new}, v)_{\Omega_{new}} = (u_{old}, v)_{\Omega_{new}}` for all :math:`v`,
  assembled on the supermesh of the two meshes (libsupermesh, through Firedrake). It keeps
  :math:`\int_\Omega u` exactly (to round-off) for any element, and is the right transfer for
  DG tracers, elevations and momenta. In matrix form :math:`M_{new}\,u_{new} = M_{mix}\,u_{old}`
  with :math:`(M_{mix})_{ij} = \int \phi^{new}_i \phi^{old}_j`: both matrices belong to the
  *scalar* element, so they are assembled once per move for all the fields (and all the
  components of vector fields) on that element, and each component costs one
  matrix-vector product and one mass solve (the same solver settings as Firedrake's
  projector). The supermesh assembly dominates a transfer: an elevation and a momentum on
  P1DG cost one assembly instead of two (``benchmarks/transfer.py``);
* ``"interpolate"``: point evaluation of the old field at the new nodes (cross-mesh
  interpolation). Cheaper, not conservative, exact for the polynomials of the space.

Both need a domain whose boundary does not change (vertices slide along it), which the
movers of um2n guarantee. Serial only, as the Monge-Ampère mover.
"""

from __future__ import annotations

import firedrake as fd
import numpy as np
from firedrake.mesh import plex_from_cell_list

from um2n.errors import UM2NError

TRANSFER_METHODS = ("conservative", "interpolate")


def _match(a: np.ndarray, b: np.ndarray, what: str, tol: float = 1e-9) -> np.ndarray:
    """``perm`` with ``a[perm] == b`` row by row (to ``tol``, one-to-one), or raise."""
    from scipy.spatial import cKDTree

    if a.shape != b.shape:
        raise RuntimeError(f"FieldTransfer: the {what} differ in number ({a.shape} vs {b.shape})")
    dist, perm = cKDTree(a).query(b)
    if len(perm) and (dist.max() > tol or len(np.unique(perm)) != len(perm)):
        raise RuntimeError(f"FieldTransfer: could not match the {what} of two copies of the mesh")
    return perm


def _dof_keys(V) -> np.ndarray:
    """One row per node of ``V``: its coordinates, and for discontinuous spaces also the
    centroid of its cell (nodes of different cells at one place are different nodes)."""
    mesh = V.mesh()
    el = V.ufl_element()
    family = el.family()
    W = fd.VectorFunctionSpace(mesh, family, el.embedded_superdegree)
    X = np.array(fd.Function(W).interpolate(fd.SpatialCoordinate(mesh)).dat.data_ro)
    if "Discontinuous" not in family and family not in ("DG", "DQ"):
        return X
    centroid = np.zeros_like(X)
    cell_nodes = W.cell_node_list
    centroid[cell_nodes] = X[cell_nodes].mean(axis=1, keepdims=True)
    return np.hstack([X, centroid])


class FieldTransfer:
    """Carry fields across one mesh move: ``before_move()``, move the mesh, ``after_move()``.

    Parameters
    ----------
    mesh : firedrake.MeshGeometry
        The mesh that moves (its coordinates are changed in place by the mover).
    fields : dict name -> Function
        The fields to transfer (scalar or vector Lagrange/DG spaces on ``mesh``).
    method : ``"conservative"`` or ``"interpolate"``, or a dict name -> method
    """

    def __init__(self, mesh, fields: dict[str, fd.Function], method: str | dict = "conservative"):
        if mesh.comm.size > 1:
            raise UM2NError(f"the supermesh transfer and the frozen pre-move copy of the mesh run on one MPI rank "
                            f"only ({mesh.comm.size} ranks here): under MPI, move the mesh continuously "
                            f"(transfer = 'ale')")
        self.mesh = mesh
        self.fields = dict(fields)
        methods = method if isinstance(method, dict) else {name: method for name in self.fields}
        for name, m in methods.items():
            if m not in TRANSFER_METHODS:
                raise ValueError(f"transfer method of {name!r} must be one of {TRANSFER_METHODS}, not {m!r}")
        self.methods = {name: methods.get(name, "conservative") for name in self.fields}
        P1 = fd.FunctionSpace(mesh, "CG", 1)
        cells = P1.cell_node_list
        coords = np.array(mesh.coordinates.dat.data_ro)
        plex = plex_from_cell_list(mesh.topological_dimension, cells, coords, mesh.comm)
        self.frozen = fd.Mesh(plex, reorder=False, name=f"{mesh.name}_before_move")
        #: vertex numbering of the copy against the original: copy[vertex_perm] = original
        self.vertex_perm = _match(np.array(self.frozen.coordinates.dat.data_ro), coords, "vertices")
        self._frozen_fields: dict[str, fd.Function] = {}
        self._dof_perm: dict[str, np.ndarray] = {}
        #: conservative fields grouped by scalar element: one supermesh assembly per group and move
        self._groups: dict[object, _ScalarProjection] = {}
        for name, f in self.fields.items():
            V = f.function_space()
            Vf = fd.FunctionSpace(self.frozen, V.ufl_element())
            self._frozen_fields[name] = fd.Function(Vf, name=name)
            self._dof_perm[name] = _match(_dof_keys(Vf), _dof_keys(V), f"nodes of {name!r}")
            if self.methods[name] == "conservative":
                scalar = _scalar_element(V)
                if scalar not in self._groups:
                    self._groups[scalar] = _ScalarProjection(self.frozen, mesh, scalar)
                self._groups[scalar].names.append(name)

    def before_move(self) -> None:
        """Freeze the current mesh and fields (call just before moving the mesh)."""
        self.frozen.coordinates.dat.data[self.vertex_perm] = self.mesh.coordinates.dat.data_ro
        if hasattr(self.frozen, "clear_spatial_index"):
            self.frozen.clear_spatial_index()
        for name, f in self.fields.items():
            self._frozen_fields[name].dat.data[self._dof_perm[name]] = f.dat.data_ro

    def after_move(self) -> None:
        """Bring every field onto the moved mesh by its transfer method."""
        if hasattr(self.mesh, "clear_spatial_index"):
            self.mesh.clear_spatial_index()
        for group in self._groups.values():
            group.project({name: (self._frozen_fields[name], self.fields[name]) for name in group.names})
        for name, f in self.fields.items():
            if self.methods[name] != "conservative":
                f.interpolate(self._frozen_fields[name])


def _scalar_element(V):
    """The scalar element of ``V`` (``V``'s own for a scalar space; the sub-element of a
    vector or tensor Lagrange/DG space)."""
    el = V.ufl_element()
    if V.block_size == 1:
        return el
    sub = getattr(el, "sub_elements", None)
    if not sub or any(e != sub[0] for e in sub):
        raise ValueError(f"FieldTransfer: cannot split the element {el} into identical scalar components")
    return sub[0]


class _ScalarProjection:
    r"""The conservative projection of every field on one scalar element (module docstring):
    the mixed mass matrix :math:`M_{mix}` on the supermesh and the mass matrix
    :math:`M_{new}` of the moved mesh, assembled once per move and applied to every
    component of every field of the group."""

    #: Firedrake's projector defaults (firedrake.projection.ProjectorBase)
    SOLVER_PARAMETERS = {"ksp_type": "cg", "ksp_rtol": 1e-8, "pc_type": "bjacobi", "sub_pc_type": "icc"}

    def __init__(self, frozen, mesh, element):
        self.names: list[str] = []
        self.V_old = fd.FunctionSpace(frozen, element)
        self.V_new = fd.FunctionSpace(mesh, element)
        self.old = fd.Function(self.V_old)
        self.new = fd.Function(self.V_new)
        self.rhs = fd.Cofunction(self.V_new.dual())
        u, v = fd.TrialFunction(self.V_new), fd.TestFunction(self.V_new)
        self.mass_form = fd.inner(u, v) * fd.dx
        self.mass = fd.assemble(self.mass_form)
        self.solver = fd.LinearSolver(self.mass, solver_parameters=dict(self.SOLVER_PARAMETERS))

    def project(self, fields: dict[str, tuple[fd.Function, fd.Function]]) -> None:
        """``fields``: name -> (the frozen copy, the field on the moved mesh, overwritten)."""
        from firedrake.supermeshing import assemble_mixed_mass_matrix

        mixed = assemble_mixed_mass_matrix(self.V_old, self.V_new)
        fd.assemble(self.mass_form, tensor=self.mass)
        for old, f in fields.values():
            src, dst = old.dat.data_ro, f.dat.data
            components = 1 if src.ndim == 1 else int(np.prod(src.shape[1:]))
            src2, dst2 = src.reshape(len(src), components), dst.reshape(len(dst), components)
            for c in range(components):
                self.old.dat.data[:] = src2[:, c]
                with self.old.dat.vec_ro as x, self.rhs.dat.vec_wo as b:
                    mixed.mult(x, b)
                self.solver.solve(self.new, self.rhs)
                dst2[:, c] = self.new.dat.data_ro
