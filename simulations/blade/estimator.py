r"""Hierarchical a posteriori estimate of a reduced model's displacement error.

**Offline.** :math:`Z` (n_dofs, :math:`r_Z`): the POD of the same training displacement
snapshots as the reduced model's basis :math:`V`, at a tighter tolerance; :math:`V`'s modes
are the first columns of the same SVD, so :math:`V \subset \mathrm{span}\,Z` and
:math:`V a = Z T a` with :math:`T = Z^TV`. :math:`Z` has its **own** ECM rule
:math:`(\mathcal Q_2, \omega_2)` (fitted like the reduced model's,
:mod:`um2n_simulations.blade.ecm`), with the strains of :math:`Z` at its points :math:`E_Z`
(:math:`4|\mathcal Q_2| \times r_Z`), :math:`Z^TF^{(1)}_{ext}` (the external force at load
factor 1) and :math:`M_Z = Z^TMZ` (:math:`M` the HF mass matrix).

**Online**, each step :math:`n`, once the reduced Newton has given :math:`a^n`: the internal
variables at :math:`\mathcal Q_2` are advanced by the law (:func:`return_mapping`, with its
tangent) on the reduced strains :math:`E_Z T a^n` from their values at step :math:`n-1` (the
evaluation that gives the residual also gives the committed state), and

.. math::

    R = E_Z^T(\omega_2\,\sigma) - \lambda(t_n)\,Z^TF^{(1)}_{ext}, \qquad
    K = E_Z^T(\omega_2\,\mathbb C)\,E_Z, \qquad c = K^{-1}R, \qquad
    \zeta^n = (c^TM_Zc)^{1/2}:

one Newton correction of the reduced solution in :math:`\mathrm{span}\,Z`, integrated with
:math:`Z`'s rule; its :math:`L^2` norm :math:`\zeta^n` estimates
:math:`\|u^n_{ROM} - u^n_{HF}\|_{L^2}`. :math:`\|u^n_{ROM}\|_{L^2} = ((Ta^n)^TM_Z\,Ta^n)^{1/2}`
comes at the same cost. Cost :math:`O(|\mathcal Q_2|\,r_Z^2 + r_Z^3)` per step, independent
of the HF mesh.

**Enrichment.** When :math:`V` gains a mode :math:`v` (an HF step), it is appended to
:math:`Z` by Gram-Schmidt (:func:`~um2n_simulations.blade.pod.gram_schmidt_append`; skipped
when already in :math:`\mathrm{span}\,Z`), and :math:`E_Z` (from the rows of the strain
operator at :math:`\mathcal Q_2`, taken once), :math:`Z^TF^{(1)}_{ext}` and :math:`M_Z` grow
by one column / entry / row and column; :math:`T` is recomputed. The rule
:math:`(\mathcal Q_2, \omega_2)` is kept, not refitted: the new directions are integrated by
a rule fitted for the offline :math:`Z`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from um2n_simulations.blade.material import InternalVariables, Material, return_mapping
from um2n_simulations.blade.pod import gram_schmidt_append

if TYPE_CHECKING:
    from um2n_simulations.blade.rom import BladeROM


class HierarchicalEstimator:
    r"""The estimate :math:`\zeta^n` of the module docstring and its data.

    Parameters
    ----------
    fine : a reduced model built on the same training snapshots at the estimator's POD
        tolerance (:class:`~um2n_simulations.blade.rom.BladeROM`): its modes are :math:`Z`,
        its ECM rule :math:`(\mathcal Q_2, \omega_2)`
    M : the HF mass matrix (sparse, n_dofs x n_dofs)
    modes : the reduced model's basis :math:`V` (n_dofs, r)
    """

    def __init__(self, fine: "BladeROM", M, modes: np.ndarray):
        Q = fine.ecm.points
        self.material: Material = fine.material
        self.points = Q
        self.omega = fine.omega                         # physical weights of the rule's points
        self.x = fine.x_Q
        self.B_Q = fine.B[(4 * Q[:, None] + np.arange(4)).ravel()]     # sparse (4|Q2|, n_dofs)
        self.f_ext1 = fine.f_ext1
        self.M = M
        self.Z = fine.modes.copy()
        self.E = fine.E_Q.reshape(4 * len(Q), -1).copy()     # (4|Q2|, r_Z)
        self.Zf1 = fine.f1.copy()
        self.MZ = self.Z.T @ (self.M @ self.Z)
        self.offline_modes = self.Z.shape[1]
        self.T = np.zeros((self.Z.shape[1], 0))
        self.sync(modes)

    def sync(self, modes: np.ndarray) -> int:
        """Bring :math:`Z` and :math:`T = Z^TV` up to the reduced model's modes ``modes`` (V):
        the columns of V beyond the last sync are appended to Z (Gram-Schmidt, skipped when in
        its span); returns the number of columns added to Z."""
        added = 0
        for j in range(self.T.shape[1], modes.shape[1]):
            Z, new = gram_schmidt_append(self.Z, modes[:, j])
            if not new:
                continue
            z = Z[:, -1]
            Mz = self.M @ z
            zMZ = self.Z.T @ Mz
            k = len(self.MZ)
            MZ = np.empty((k + 1, k + 1))
            MZ[:k, :k], MZ[:k, k], MZ[k, :k], MZ[k, k] = self.MZ, zMZ, zMZ, z @ Mz
            self.Z, self.MZ = Z, MZ
            self.E = np.column_stack([self.E, self.B_Q @ z])
            self.Zf1 = np.append(self.Zf1, z @ self.f_ext1)
            added += 1
        self.T = self.Z.T @ modes
        return added

    @property
    def n_modes(self) -> int:
        return self.Z.shape[1]

    def estimate(self, a: np.ndarray, T: np.ndarray, lam: float, dt: float,
                 state: InternalVariables) -> tuple[float, float, InternalVariables]:
        r"""(:math:`\zeta^n`, :math:`\|u^n_{ROM}\|_{L^2}`, the internal variables at
        :math:`\mathcal Q_2` after the step) for the reduced coefficients ``a`` (on V),
        temperatures ``T`` at the rule's points, load factor ``lam``, step ``dt``, from
        ``state`` (the variables at :math:`\mathcal Q_2` at the start of the step)."""
        b = self.T @ a
        E, om = self.E, self.omega
        res = return_mapping(self.material, (E @ b).reshape(-1, 4), T, dt, state)
        R = E.T @ (res.stress * om[:, None]).ravel() - lam * self.Zf1
        E3 = E.reshape(-1, 4, E.shape[1])
        K = E.T @ np.matmul(res.tangent * om[:, None, None], E3).reshape(E.shape)
        c = np.linalg.solve(K, R)
        return (float(np.sqrt(max(c @ self.MZ @ c, 0.0))), float(np.sqrt(max(b @ self.MZ @ b, 0.0))), res.state)

    def norm(self, a: np.ndarray) -> float:
        r""":math:`\|Va\|_{L^2}` from the reduced data."""
        b = self.T @ a
        return float(np.sqrt(max(b @ self.MZ @ b, 0.0)))

    def copy(self) -> "HierarchicalEstimator":
        """An independent copy (the arrays an enrichment changes are copied; the rule, the
        strain operator's rows and M are shared, never changed)."""
        new = object.__new__(HierarchicalEstimator)
        new.__dict__.update(self.__dict__)
        for name in ("Z", "E", "Zf1", "MZ", "T"):
            setattr(new, name, getattr(self, name).copy())
        return new
