r"""High-fidelity quasi-static elasto-viscoplastic solver (plane strain) on a Firedrake mesh.

At each time :math:`t_{n+1}` find the displacement :math:`u \in V_h` (vector CG, degree 2 by
default), :math:`u = g` on the Dirichlet boundary, with

.. math::

    R(u; v) = \underbrace{\int_\Omega \sigma(\varepsilon(u)) : \varepsilon(v)\,dx}_{F_{int}}
            - \underbrace{\Big(\int_\Omega f\cdot v\,dx + \int_{\Gamma_N} t\cdot v\,ds\Big)}_{F_{ext}}
            = 0 \qquad \forall v \in V_{h,0},

where :math:`\sigma` is the backward-Euler update of :mod:`um2n_simulations.blade.material`
from the internal variables at :math:`t_n`. The integral :math:`F_{int}` uses a fixed
quadrature rule (``"default"`` scheme of degree :math:`2(k-1)`, at least 1, for CG\ *k*: 3
points per triangle for CG2, exact for the elastic stiffness); the law is evaluated **only at
these points**, whose data live in Quadrature-element Functions:

.. math::

    F_{int,i} = \sum_q w_q\, B_q^T \sigma_q, \qquad
    K_{ij} = \sum_q w_q\, B_{q,i}^T\, \mathbb C_q\, B_{q,j},

:math:`w_q = |J_K|\,\hat w_q` the physical quadrature weight, :math:`B_q` the strain of the
basis functions at point :math:`q`, :math:`\mathbb C_q` the consistent tangent.
Newton's method: each iterate interpolates :math:`\varepsilon(u)` into the quadrature space,
updates the law (numpy, all points at once), writes :math:`\sigma_q` and
:math:`\mathbb C_q` into quadrature Functions, assembles :math:`R` and :math:`K` from them
and solves :math:`K\,\delta u = -R` (MUMPS LU) with homogeneous Dirichlet conditions (the
values :math:`g(t_{n+1})` are set on :math:`u` before the first iterate). Converged when
:math:`\|R\|_2 \le` ``rtol`` times the larger of :math:`\|F_{ext}\|_2` and the norm of
:math:`F_{int}` including the Dirichlet rows (the reactions), or :math:`\le` ``atol``.

**Hooks for a hyper-reduced model** (serial): :meth:`quadrature_weights` (:math:`w_q`),
:meth:`quadrature_points`, :meth:`strain_operator` (sparse :math:`B`: Mandel strains of
all points from the dof vector), :meth:`constitutive_update` on any subset of points,
:meth:`assemble_internal_forces` and :meth:`point_contributions`, the matrix
:math:`G_{kq} = w_q\, (B_q \phi_k)\cdot\sigma_q` of per-point contributions projected on
modes :math:`\phi_k` (so that :math:`\Phi^T F_{int} = G\,1`, and an ECM selects points
:math:`\mathcal Q` and weights :math:`\omega` with :math:`G_{:\mathcal Q}\,\omega
\approx G\,1`). The points are numbered as the data of the quadrature Functions.

Internal variables at the points, committed at the end of each step: the plastic strain
and the back stress (Mandel vectors :math:`(xx, yy, zz, \sqrt2\,xy)`, zz included), the
cumulated plastic strain :math:`p`, and the full stress (with :math:`\sigma_{zz}`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import firedrake as fd
import numpy as np
import ufl
from firedrake.assemble import get_assembler
from firedrake.petsc import PETSc

from um2n.errors import ConvergenceError
from um2n_simulations.blade.material import (ConstitutiveResult, InternalVariables, Material, mandel_from_plane,
                                             plane_from_mandel, plane_tangent, return_mapping, tensor_from_mandel,
                                             von_mises)

#: The Newton correction: a direct solve (MUMPS LU) of the assembled tangent stiffness.
TANGENT_SOLVER_PARAMETERS = {
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}


@dataclass
class NewtonConfig:
    """Global Newton settings (see the module docstring for the test)."""

    rtol: float = 1e-9
    atol: float = 1e-10
    max_it: int = 25


@dataclass
class StepReport:
    """One converged time step: Newton's residual norms (first: before any correction)."""

    t: float
    dt: float
    residuals: list[float] = field(default_factory=list)
    reference: float = 0.0
    max_p: float = 0.0
    max_dp: float = 0.0

    @property
    def iterations(self) -> int:
        return len(self.residuals) - 1


@dataclass
class Dirichlet:
    """:math:`u_i = g` on the boundary ``marker`` (``component`` None: both components, ``g`` a vector)."""

    marker: int | str | Sequence[int]
    value: ufl.core.expr.Expr | float | Sequence[float]
    component: int | None = None


def quadrature_degree(degree: int) -> int:
    """Degree of the rule for CG ``degree``: 2(k - 1), exact for the stiffness; at least 1."""
    return max(2 * (degree - 1), 1)


class QuasiStaticViscoplasticity:
    r"""Quasi-static small-strain elasto-viscoplasticity, plane strain (module docstring).

    Parameters
    ----------
    mesh : a 2D Firedrake mesh
    material : the law's parameters
    degree : polynomial degree of the displacement (vector CG)
    temperature : UFL expression or number for :math:`T(x, t)`; re-interpolated at the points
        at the start of every step (so Constants in it may change between steps)
    body_force : UFL vector :math:`f` (force per unit volume), or None
    tractions : ``{marker: t}`` UFL vectors (force per unit area) on boundary parts
    dirichlet : the Dirichlet conditions; UFL values are re-interpolated at every step
    newton : Newton's settings
    """

    def __init__(self, mesh, material: Material, *, degree: int = 2,
                 temperature: ufl.core.expr.Expr | float | None = None,
                 body_force: ufl.core.expr.Expr | None = None,
                 tractions: dict[int, ufl.core.expr.Expr] | None = None,
                 dirichlet: Sequence[Dirichlet] = (), newton: NewtonConfig | None = None):
        self.mesh = mesh
        self.material = material
        self.degree = degree
        self.newton = newton or NewtonConfig()
        self.V = V = fd.VectorFunctionSpace(mesh, "CG", degree)
        qdeg = quadrature_degree(degree)
        self.dxq = fd.dx(domain=mesh, degree=qdeg, scheme="default")
        kw = dict(quad_scheme="default")
        self.Q = fd.FunctionSpace(mesh, "Quadrature", qdeg, **kw)
        self.Q4 = fd.VectorFunctionSpace(mesh, "Quadrature", qdeg, dim=4, **kw)
        self.QT = fd.TensorFunctionSpace(mesh, "Quadrature", qdeg, **kw)
        self.QC = fd.TensorFunctionSpace(mesh, "Quadrature", qdeg, shape=(2, 2, 2, 2), **kw)

        self.u = fd.Function(V, name="displacement")
        self.du = fd.Function(V)
        # data at the quadrature points
        self.eps_q = fd.Function(self.QT, name="strain")                 # current iterate, in plane
        self.sigma_q = fd.Function(self.QT, name="stress_plane")          # current iterate, in plane
        self.tangent_q = fd.Function(self.QC, name="tangent")             # current iterate
        self.T_q = fd.Function(self.Q, name="temperature_q")              # at t_{n+1}
        self.eps_p_q = fd.Function(self.Q4, name="plastic_strain")        # committed, Mandel
        self.X_q = fd.Function(self.Q4, name="back_stress")               # committed, Mandel
        self.p_q = fd.Function(self.Q, name="cumulated_plastic_strain")   # committed
        self.stress_q = fd.Function(self.Q4, name="stress")               # committed, Mandel, zz incl.
        self._T_expr = fd.Constant(material.T_ref) if temperature is None else temperature
        self.T_q.interpolate(self._T_expr)

        v, w = fd.TestFunction(V), fd.TrialFunction(V)
        f_ext = 0
        if body_force is not None:
            f_ext = f_ext + fd.inner(body_force, v) * fd.dx(degree=qdeg + degree)
        for marker, t in (tractions or {}).items():
            f_ext = f_ext + fd.inner(t, v) * fd.ds(marker, degree=qdeg + degree)
        self._f_ext_form = f_ext if f_ext != 0 else None
        self._f_int_form = fd.inner(self.sigma_q, fd.sym(fd.grad(v))) * self.dxq
        self._jac_form = fd.inner(self._contract(fd.sym(fd.grad(w))), fd.sym(fd.grad(v))) * self.dxq

        # Dirichlet: UFL values are re-interpolated by Firedrake whenever applied (Constants in
        # them may change between steps); homogeneous copies for the Newton correction
        self.bcs, self.bcs0 = [], []
        for d in dirichlet:
            Vs = V if d.component is None else V.sub(d.component)
            self.bcs.append(fd.DirichletBC(Vs, d.value, d.marker))
            self.bcs0.append(fd.DirichletBC(Vs, 0, d.marker))

        # assemblers and the strain interpolator built once (the symbolic work is done here)
        self.F_ext = fd.Cofunction(V.dual())
        self.F_int = fd.Cofunction(V.dual())
        self._asm_f_int = get_assembler(self._f_int_form)
        self._asm_f_ext = None if self._f_ext_form is None else get_assembler(self._f_ext_form)
        self._asm_K = get_assembler(self._jac_form, bcs=self.bcs0, mat_type="aij")
        self._strain_interpolator = fd.get_interpolator(fd.interpolate(fd.sym(fd.grad(self.u)), self.QT))
        self.K = self._asm_K.assemble()
        self.ksp = self._tangent_ksp(mesh.comm)

        self.weights = np.array(fd.assemble(fd.TestFunction(self.Q) * self.dxq).dat.data_ro)
        self.n_points = self.weights.size
        self.t = 0.0
        self._trial: ConstitutiveResult | None = None
        self._B = None
        self._M = None
        self.history: list[StepReport] = []

    def _tangent_ksp(self, comm) -> PETSc.KSP:
        """PETSc KSP on the assembled tangent (refactored by PETSc whenever K is reassembled)."""
        ksp = PETSc.KSP().create(comm=comm)
        ksp.setOperators(self.K.petscmat)
        prefix = f"blade_hf_{id(self)}_"
        opts = PETSc.Options()
        for k, v in TANGENT_SOLVER_PARAMETERS.items():
            opts[prefix + k] = v
        ksp.setOptionsPrefix(prefix)
        ksp.setFromOptions()
        for k in TANGENT_SOLVER_PARAMETERS:
            del opts[prefix + k]
        return ksp

    def _contract(self, e: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
        r""":math:`\mathbb C_q : e`."""
        i, j, k, l = ufl.indices(4)
        return ufl.as_tensor(self.tangent_q[i, j, k, l] * e[k, l], (i, j))

    # ------------------------------------------------------------------ the quadrature points
    def quadrature_weights(self) -> np.ndarray:
        r"""(N,) physical weights :math:`w_q = |J_K|\hat w_q`; :math:`\sum_q w_q = |\Omega|`."""
        return self.weights.copy()

    def quadrature_points(self) -> np.ndarray:
        """(N, 2) coordinates of the quadrature points."""
        X = fd.Function(fd.VectorFunctionSpace(self.mesh, "Quadrature", self.Q.ufl_element().degree(),
                                               quad_scheme="default"))
        X.interpolate(fd.SpatialCoordinate(self.mesh))
        return np.array(X.dat.data_ro)

    def cell_of_point(self) -> np.ndarray:
        """(N,) index of the cell (its DG0 dof) holding each quadrature point."""
        qmap = self.Q.cell_node_map().values
        cmap = fd.FunctionSpace(self.mesh, "DG", 0).cell_node_map().values[:, 0]
        out = np.empty(self.n_points, dtype=int)
        out[qmap] = cmap[:, None]
        return out

    def strain_operator(self):
        r"""Sparse :math:`B` (scipy CSR, shape (4N, n_dofs)): ``(B @ u).reshape(N, 4)`` are the
        Mandel strains (zz row empty) at the points of the dof vector ``u = u.dat.data.ravel()``.

        :math:`F_{int} = B^T (w \odot \sigma)` with :math:`\sigma` the (N, 4) Mandel stresses.
        Serial only (dof numbering of one process).
        """
        if self._B is None:
            import scipy.sparse as sp

            M = fd.assemble(fd.interpolate(fd.sym(fd.grad(fd.TrialFunction(self.V))), self.QT)).petscmat
            indptr, indices, data = M.getValuesCSR()
            Bt = sp.csr_matrix((data, indices, indptr), shape=M.getSize())   # rows: (q, i, j), 2x2
            rows = Bt.shape[0] // 4
            r = np.arange(rows) * 4
            s2 = np.sqrt(2.0)
            # Mandel: xx, yy, zz (= 0), sqrt2 * (xy + yx) / 2
            T = sp.lil_matrix((4 * rows, 4 * rows))
            T[4 * np.arange(rows), r] = 1.0
            T[4 * np.arange(rows) + 1, r + 3] = 1.0
            T[4 * np.arange(rows) + 3, r + 1] = s2 / 2
            T[4 * np.arange(rows) + 3, r + 2] = s2 / 2
            self._B = (T.tocsr() @ Bt).tocsr()
        return self._B

    def mass_matrix(self):
        r"""Sparse :math:`L^2` mass matrix :math:`M` of the displacement space (scipy CSR,
        (n_dofs, n_dofs), no boundary conditions): :math:`\|u\|_{L^2}^2 = u^TMu` for the dof
        vector ``u = u.dat.data.ravel()``. Assembled once. Serial only."""
        if self._M is None:
            import scipy.sparse as sp

            M = fd.assemble(fd.inner(fd.TrialFunction(self.V), fd.TestFunction(self.V)) * fd.dx).petscmat
            indptr, indices, data = M.getValuesCSR()
            self._M = sp.csr_matrix((data, indices, indptr), shape=M.getSize())
        return self._M

    # ------------------------------------------------------------------ state
    def internal_variables(self) -> InternalVariables:
        """The committed internal variables at all points (copies, Mandel)."""
        return InternalVariables(np.array(self.eps_p_q.dat.data_ro), np.array(self.X_q.dat.data_ro),
                                 np.array(self.p_q.dat.data_ro))

    def set_internal_variables(self, state: InternalVariables) -> None:
        self.eps_p_q.dat.data[:] = state.eps_p
        self.X_q.dat.data[:] = state.X
        self.p_q.dat.data[:] = state.p

    def temperature_at_points(self) -> np.ndarray:
        """(N,) temperature at the points at the current step's end time."""
        return np.array(self.T_q.dat.data_ro)

    def strain(self, u: fd.Function | None = None) -> np.ndarray:
        """(N, 4) Mandel strains of ``u`` (default: the current displacement) at the points."""
        if u is None:
            self._strain_interpolator.assemble(tensor=self.eps_q)
        else:
            self.eps_q.interpolate(fd.sym(fd.grad(u)))
        return mandel_from_plane(self.eps_q.dat.data_ro)

    def constitutive_update(self, eps: np.ndarray, dt: float, idx: np.ndarray | None = None,
                            tangent: bool = True, state: InternalVariables | None = None,
                            T: np.ndarray | None = None) -> ConstitutiveResult:
        r"""The law's update at the points ``idx`` (default: all): all a hyper-reduced model needs.

        Parameters
        ----------
        eps : (len(idx), 4) Mandel strains at those points
        dt : the time step
        idx : indices of the points (numbering of the quadrature Functions)
        tangent : also return the consistent tangent
        state : internal variables at the start of the step at those points (default: the
            committed ones of this solver); a reduced model passes its own
        T : temperatures at those points (default: the current step's)

        Only the selected points are read and computed (cost O(len(idx))).
        """
        sel = slice(None) if idx is None else idx
        if state is None:
            state = InternalVariables(self.eps_p_q.dat.data_ro[sel], self.X_q.dat.data_ro[sel],
                                      self.p_q.dat.data_ro[sel])
        if T is None:
            T = self.T_q.dat.data_ro[sel]
        return return_mapping(self.material, eps, T, dt, state, tangent=tangent)

    # ------------------------------------------------------------------ assembly
    def assemble_internal_forces(self, sigma: np.ndarray | None = None) -> np.ndarray:
        r"""Nodal internal forces :math:`F_{int} = \int \sigma : \varepsilon(v)\,dx` (dof vector).

        ``sigma`` (N, 4) Mandel stresses at all points; default: the current iterate's.
        Dirichlet rows are not zeroed (they hold the reactions).
        """
        if sigma is not None:
            self.sigma_q.dat.data[:] = plane_from_mandel(sigma)
        self._asm_f_int.assemble(tensor=self.F_int)
        return np.array(self.F_int.dat.data_ro).ravel()

    def assemble_external_forces(self) -> np.ndarray:
        """Nodal external forces (body force and tractions at the current load)."""
        self._assemble_f_ext()
        return np.array(self.F_ext.dat.data_ro).ravel()

    def point_contributions(self, modes: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        r"""Per-point contributions to the reduced internal forces, :math:`G` of shape (r, N).

        :math:`G_{kq} = w_q\,(B_q\phi_k)\cdot\sigma_q`, for ``modes`` :math:`\Phi` of shape
        (n_dofs, r) (columns: dof vectors) and ``sigma`` (N, 4) Mandel stresses (default:
        the committed stresses); :math:`\sum_q G_{kq} = \phi_k\cdot F_{int}`.
        """
        sigma = np.array(self.stress_q.dat.data_ro) if sigma is None else sigma
        modes = np.asarray(modes).reshape(self.V.dim(), -1)
        E = (self.strain_operator() @ modes).reshape(self.n_points, 4, -1)     # (N, 4, r)
        return np.einsum("qir,qi,q->rq", E, sigma, self.weights)

    def _assemble_f_ext(self) -> None:
        if self._asm_f_ext is None:
            self.F_ext.dat.data[:] = 0
        else:
            self._asm_f_ext.assemble(tensor=self.F_ext)

    def _update_iterate(self, dt: float) -> ConstitutiveResult:
        """Law at all points for the current ``u``: sets the stress and tangent Functions."""
        res = self.constitutive_update(self.strain(), dt)
        self.sigma_q.dat.data[:] = plane_from_mandel(res.stress)
        self.tangent_q.dat.data[:] = plane_tangent(res.tangent)
        self._trial = res
        return res

    def _residual(self) -> tuple[float, float]:
        """Assemble R = F_int - F_ext (Dirichlet rows zeroed): its norm and the reference scale."""
        self._asm_f_int.assemble(tensor=self.F_int)
        scale = max(np.linalg.norm(self.F_int.dat.data_ro), np.linalg.norm(self.F_ext.dat.data_ro))
        self.F_int.dat.data[:] -= self.F_ext.dat.data_ro
        for bc in self.bcs0:
            bc.zero(self.F_int)
        return float(np.linalg.norm(self.F_int.dat.data_ro)), float(scale)

    # ------------------------------------------------------------------ time stepping
    def step(self, dt: float) -> StepReport:
        r"""Advance from :math:`t_n` to :math:`t_n + \Delta t` (loads: the expressions' current values).

        Newton's method as in the module docstring; the state is committed on convergence,
        :class:`ConvergenceError` (state unchanged, displacement restored) otherwise.
        """
        u_old = self.u.copy(deepcopy=True)
        self.T_q.interpolate(self._T_expr)
        self._assemble_f_ext()
        for bc in self.bcs:
            bc.apply(self.u)
        report = StepReport(t=self.t + dt, dt=dt)
        for it in range(self.newton.max_it + 1):
            self._update_iterate(dt)
            r, scale = self._residual()
            report.reference = max(report.reference, scale)
            report.residuals.append(r)
            if not np.isfinite(r):
                break
            if r <= max(self.newton.rtol * report.reference, self.newton.atol):
                break
            if it == self.newton.max_it:
                break
            self._asm_K.assemble(tensor=self.K)
            with self.F_int.dat.vec_ro as b, self.du.dat.vec_wo as x:
                self.ksp.solve(b, x)
            self.u.dat.data[:] -= self.du.dat.data_ro
        r = report.residuals[-1]
        if not (np.isfinite(r) and r <= max(self.newton.rtol * report.reference, self.newton.atol)):
            self.u.assign(u_old)
            raise ConvergenceError(f"t = {self.t + dt:g}: Newton stopped at |R| = {r:.3e} "
                                   f"(reference {report.reference:.3e}) after {len(report.residuals) - 1} "
                                   f"iterations; residuals {['%.2e' % x for x in report.residuals]}")
        self._commit(self._trial)
        self.t += dt
        report.max_p = float(self.p_q.dat.data_ro.max(initial=0.0))
        report.max_dp = float(self._trial.dp.max(initial=0.0))
        self.history.append(report)
        return report

    def _commit(self, res: ConstitutiveResult) -> None:
        self.set_internal_variables(res.state)
        self.stress_q.dat.data[:] = res.stress

    # ------------------------------------------------------------------ output
    def cell_averages(self, values: np.ndarray) -> np.ndarray:
        """Weighted cell averages (n_cells, ...) of point values (N, ...), in DG0 dof order."""
        cell = self.cell_of_point()
        w = self.weights
        num = np.zeros((cell.max() + 1,) + values.shape[1:])
        np.add.at(num, cell, values * w.reshape((-1,) + (1,) * (values.ndim - 1)))
        den = np.bincount(cell, weights=w)
        return num / den.reshape((-1,) + (1,) * (values.ndim - 1))


class VTKOutput:
    """ParaView series of a solver: displacement, temperature, and DG0 cell averages of the
    cumulated plastic strain, the von Mises stress, the stress and the plastic strain (3×3)."""

    def __init__(self, solver: QuasiStaticViscoplasticity, path: str,
                 temperature: Callable[[], ufl.core.expr.Expr] | None = None):
        self.solver = s = solver
        mesh = s.mesh
        self.file = fd.VTKFile(path)
        self.DG0 = fd.FunctionSpace(mesh, "DG", 0)
        self.T = fd.Function(fd.FunctionSpace(mesh, "CG", 1), name="temperature")
        self.p = fd.Function(self.DG0, name="p")
        self.vm = fd.Function(self.DG0, name="von_mises")
        self.sigma = fd.Function(fd.TensorFunctionSpace(mesh, "DG", 0, shape=(3, 3)), name="stress")
        self.eps_p = fd.Function(fd.TensorFunctionSpace(mesh, "DG", 0, shape=(3, 3)), name="plastic_strain")

    def write(self) -> None:
        s = self.solver
        self.T.interpolate(s._T_expr)
        stress = np.array(s.stress_q.dat.data_ro)
        self.p.dat.data[:] = s.cell_averages(np.array(s.p_q.dat.data_ro))
        self.vm.dat.data[:] = s.cell_averages(von_mises(stress))
        self.sigma.dat.data[:] = s.cell_averages(tensor_from_mandel(stress))
        self.eps_p.dat.data[:] = s.cell_averages(tensor_from_mandel(np.array(s.eps_p_q.dat.data_ro)))
        self.file.write(s.u, self.T, self.p, self.vm, self.sigma, self.eps_p, time=s.t)
