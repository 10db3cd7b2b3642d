r"""Gappy-POD: a field known only at sampled entries, fitted in a POD basis.

With a POD basis :math:`\Psi` (n, k) and the values :math:`v` of a field at the sampled
entries :math:`\mathcal Q` (the rows of :math:`\Psi_{\mathcal Q}`, :math:`|\mathcal Q| \ge k`),

.. math::

    c = \arg\min_c \|\Psi_{\mathcal Q}\,c - v\|_2 = \Psi_{\mathcal Q}^+ v, \qquad
    \rho = \|\Psi_{\mathcal Q}\,c - v\|_2, \qquad \tilde f = \Psi c :

the coefficients (the pseudo-inverse is formed once), the misfit :math:`\rho` (how far the
sampled values are from the span of the basis: an error indicator whose cost depends only
on :math:`|\mathcal Q|`), and the reconstruction of the whole field. A basis of the
method of snapshots (:meth:`~um2n_simulations.blade.pod.GramPOD.coefficients`,
:math:`\Psi = X^TW`) is kept factored: only its sampled rows are formed.
"""

from __future__ import annotations

import numpy as np


class Gappy:
    r"""A Gappy-POD basis restricted to sampled entries: fit, residual, reconstruction.

    Either the full basis :math:`\Psi` (n, k), or (:meth:`from_snapshots`) the snapshots
    :math:`X` (m, n, one per row) and the coefficients :math:`W` (m, k) with
    :math:`\Psi = X^TW` (:meth:`~um2n_simulations.blade.pod.GramPOD.coefficients`): then only the sampled rows
    :math:`\Psi_{\mathcal Q} = X_{:,\mathcal Q}^TW` are formed (cost :math:`O(m|\mathcal Q|k)`,
    independent of n), a reconstruction is :math:`X^T(Wc)` (:math:`O(mn)`) and the full basis
    is formed only when asked for (:attr:`basis`, post-processing).
    """

    def __init__(self, basis: np.ndarray | None, rows: np.ndarray, *, snapshots: np.ndarray | None = None,
                 coefficients: np.ndarray | None = None):
        self.rows = np.asarray(rows)
        self._basis, self._X, self._W = basis, snapshots, coefficients
        if basis is not None:
            self.restricted = basis[self.rows]
        else:
            self.restricted = snapshots[:, self.rows].T @ coefficients
        self._pinv = np.linalg.pinv(self.restricted) if self.restricted.shape[1] else \
            np.zeros((0, len(self.rows)))

    @classmethod
    def from_snapshots(cls, snapshots: np.ndarray, coefficients: np.ndarray, rows: np.ndarray) -> "Gappy":
        """The basis :math:`X^TW` of ``snapshots`` X (m, n) and ``coefficients`` W (m, k), kept factored."""
        return cls(None, rows, snapshots=snapshots, coefficients=coefficients)

    @property
    def n_modes(self) -> int:
        return self.restricted.shape[1]

    @property
    def basis(self) -> np.ndarray:
        """The full basis (n, k) (formed on first use when factored)."""
        if self._basis is None:
            self._basis = self._X.T @ self._W
        return self._basis

    def fit(self, values: np.ndarray) -> np.ndarray:
        r"""Coefficients :math:`c = \arg\min\|\Psi_{\mathcal Q}c - v\|_2` (pseudo-inverse, precomputed)."""
        return self._pinv @ values

    def residual(self, values: np.ndarray, floor: float = 0.0) -> float:
        r"""Relative residual :math:`\|\Psi_{\mathcal Q}c - v\| / \|v\|` (0 if :math:`\|v\|_\infty \le` ``floor``)."""
        if not np.abs(values).max(initial=0.0) > floor:
            return 0.0
        r = self.restricted @ self.fit(values) - values
        return float(np.linalg.norm(r) / np.linalg.norm(values))

    def residual_norms(self, values: np.ndarray) -> tuple[float, float]:
        r""":math:`(\|\Psi_{\mathcal Q}c - v\|, \|v\|)`, the absolute misfit and the norm of the values."""
        r = self.restricted @ self.fit(values) - values
        return float(np.linalg.norm(r)), float(np.linalg.norm(values))

    def reconstruct(self, values: np.ndarray) -> np.ndarray:
        r"""The full field :math:`\Psi c` from the sampled values."""
        c = self.fit(values)
        return self._basis @ c if self._basis is not None else self._X.T @ (self._W @ c)
