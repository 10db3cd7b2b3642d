r"""Proper orthogonal decomposition (POD) of snapshot sets, and growing bases.

*POD.* For snapshots :math:`S = [x^1 \dots x^m] = U\Sigma V^T` (Euclidean inner product),
the first :math:`r` left singular vectors :math:`\Phi = U_{:,:r}`, :math:`r` the least with

.. math:: \sum_{i \le r}\sigma_i^2 \ge (1 - \epsilon^2) \sum_i \sigma_i^2
          \iff \|S - \Phi\Phi^T S\|_F \le \epsilon\,\|S\|_F

(:func:`pod`). *Method of snapshots* (:class:`GramPOD`): the same modes from the eigenpairs of
the Gram matrix :math:`C = S^TS = V\Lambda V^T`, :math:`\phi_j = S v_j/\sqrt{\lambda_j}`;
appending a snapshot adds one row and column to :math:`C` instead of a new SVD, and a mode
can be kept as its coefficients on the snapshots. *Growing an orthonormal basis*
(:func:`gram_schmidt_append`): classical Gram-Schmidt, twice, for orthogonality to round-off.
"""

from __future__ import annotations

import numpy as np


class GrowableRows:
    """A growable stack of equal-length rows (amortised O(n) append: capacity doubling)."""

    def __init__(self, X: np.ndarray, spare: int = 16):
        X = np.asarray(X, dtype=float)
        self._buf = np.empty((len(X) + spare,) + X.shape[1:])
        self._buf[:len(X)] = X
        self._m = len(X)

    def extend(self, X: np.ndarray) -> None:
        """Append the rows of ``X``."""
        X = np.asarray(X, dtype=float)
        if self._m + len(X) > len(self._buf):
            grown = np.empty((max(2 * self._m, self._m + len(X), 8),) + self._buf.shape[1:])
            grown[:self._m] = self._buf[:self._m]
            self._buf = grown
        self._buf[self._m:self._m + len(X)] = X
        self._m += len(X)

    def append(self, x: np.ndarray) -> None:
        """Append the row ``x``."""
        if self._m == len(self._buf):
            grown = np.empty((max(2 * self._m, 8),) + self._buf.shape[1:])
            grown[:self._m] = self._buf[:self._m]
            self._buf = grown
        self._buf[self._m] = x
        self._m += 1

    @property
    def array(self) -> np.ndarray:
        """The rows so far (a view)."""
        return self._buf[:self._m]

    def copy(self) -> "GrowableRows":
        return GrowableRows(self.array)


def _truncation(energy: np.ndarray, tol: float) -> int:
    """The least r whose cumulated energy reaches 1 - tol^2 of the total."""
    return int(np.searchsorted(energy, (1.0 - tol ** 2) * energy[-1] * (1 - 1e-14)) + 1)


def pod(snapshots: np.ndarray, tol: float, max_modes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Snapshot POD: the first :math:`r` left singular vectors of ``snapshots`` (n, m).

    :math:`r` is the least with :math:`\sum_{i\le r}\sigma_i^2 \ge (1-\epsilon^2)\sum_i\sigma_i^2`
    (``tol`` = :math:`\epsilon`), so that :math:`\|S - \Phi\Phi^TS\|_F \le \epsilon\|S\|_F`;
    at most ``max_modes``. Returns the modes (n, r) and all singular values.
    """
    U, s, _ = np.linalg.svd(snapshots, full_matrices=False)
    energy = np.cumsum(s ** 2)
    if energy.size == 0 or energy[-1] == 0:
        return np.zeros((snapshots.shape[0], 0)), s
    r = min(_truncation(energy, tol), len(s))
    if max_modes is not None:
        r = min(r, max_modes)
    return U[:, :r].copy(), s


class GramPOD:
    r"""POD by the method of snapshots with an incrementally updated Gram matrix.

    For snapshots :math:`X = [x_1 \dots x_m]` (n, m), :math:`C = X^TX = V\Lambda V^T` and the
    modes are :math:`\phi_j = X v_j/\sqrt{\lambda_j}` (the left singular vectors,
    :math:`\sigma_j = \sqrt{\lambda_j}`). Appending a snapshot costs one new row of
    :math:`C`, :math:`O(nm)` (the snapshots are kept in a growable buffer), instead of a new
    SVD. With ``scale`` :math:`d` (m,), the POD is that of the rescaled snapshots
    :math:`X\,\mathrm{diag}(d)` (Gram :math:`DCD`, no copy of :math:`X`). Accurate for the
    energy criterion of :func:`pod` down to :math:`\sigma_j/\sigma_1 \approx 10^{-7}` (the
    Gram matrix squares the condition number).
    """

    def __init__(self, X: np.ndarray):
        self._rows = GrowableRows(np.ascontiguousarray(np.asarray(X).T))     # (m, n): snapshots as rows
        self.C = self.X @ self.X.T

    @property
    def X(self) -> np.ndarray:
        """The snapshots as rows (m, n)."""
        return self._rows.array

    def append(self, x: np.ndarray) -> None:
        """Add the snapshot ``x`` (n,): one new row and column of the Gram matrix."""
        c = self.X @ x
        self._rows.append(x)
        m = len(c)
        C = np.empty((m + 1, m + 1))
        C[:m, :m] = self.C
        C[m, :m] = C[:m, m] = c
        C[m, m] = x @ x
        self.C = C

    def copy(self) -> "GramPOD":
        new = object.__new__(GramPOD)
        new._rows, new.C = self._rows.copy(), self.C.copy()
        return new

    def coefficients(self, tol: float, max_modes: int | None = None,
                     scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        r"""The modes as combinations of the snapshots: :math:`W` (m, r) with
        :math:`\Phi = X W`, :math:`W = D V_{:r}\Lambda_{:r}^{-1/2}` (:math:`D` = diag(``scale``)
        or I), and all singular values; truncated as in :func:`pod`, and to
        :math:`\sigma_j > 10^{-7}\sigma_1`. Costs one eigensolve of the m x m Gram matrix,
        independent of n: a caller that needs only some entries of the modes (a Gappy basis at
        the reduced points) takes them as :math:`X_{rows,:}W`."""
        C = self.C if scale is None else self.C * np.outer(scale, scale)
        lam, V = np.linalg.eigh(C)
        lam, V = np.maximum(lam[::-1], 0.0), V[:, ::-1]
        s = np.sqrt(lam)
        energy = np.cumsum(lam)
        if energy[-1] == 0:
            return np.zeros((len(C), 0)), s
        r = min(_truncation(energy, tol), len(s))
        if max_modes is not None:
            r = min(r, max_modes)
        r = min(r, int((s > 1e-7 * s[0]).sum()))
        W = V[:, :r] / s[:r]
        if scale is not None:
            W = W * scale[:, None]
        return W, s

    def modes(self, tol: float, max_modes: int | None = None,
              scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Modes (n, r) and singular values, truncated as in :meth:`coefficients`."""
        W, s = self.coefficients(tol, max_modes, scale)
        return self.X.T @ W, s


def projection_error(modes: np.ndarray, snapshots: np.ndarray) -> float:
    r""":math:`\|S - \Phi\Phi^TS\|_F / \|S\|_F` (orthonormal ``modes``)."""
    R = snapshots - modes @ (modes.T @ snapshots)
    return float(np.linalg.norm(R) / np.linalg.norm(snapshots))


def gram_schmidt_append(modes: np.ndarray, u: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, bool]:
    r"""Append :math:`u` orthonormalised against ``modes`` (classical Gram-Schmidt, twice).

    Returns the new basis and whether a column was added (not when
    :math:`\|(I-\Phi\Phi^T)u\| \le` ``rtol`` :math:`\|u\|`).
    """
    v = u.copy()
    for _ in range(2):
        v -= modes @ (modes.T @ v)
    nv = np.linalg.norm(v)
    if nv <= rtol * np.linalg.norm(u):
        return modes, False
    return np.column_stack([modes, v / nv]), True
