r"""Empirical cubature (ECM) of reduced internal forces: a few points with positive weights.

The reduced internal forces :math:`\Phi^T F_{int} = \sum_q G_{kq}`, with the per-point
contributions :math:`G_{kq} = w_q (B_q\phi_k)\cdot\sigma_q` (quadrature weight :math:`w_q`,
strain :math:`B_q\phi_k` of mode :math:`k` at point :math:`q`, stress :math:`\sigma_q`), are
replaced by :math:`\sum_{q\in\mathcal Q} \omega_q G_{kq}`, :math:`\omega > 0`,
:math:`|\mathcal Q| \ll N`. The weights multiply the contributions, so the physical weight of
a reduced point is :math:`\omega_q w_q`.

*Criterion* (:class:`ECMFit`), on the uncompressed training stack, one block
:math:`G^s/\|G^s\|_F` per training snapshot :math:`s` (so that unloaded snapshots with
residual stresses count as much as loaded ones):

.. math:: \Big(\sum_s\|G^s(\omega_{\mathcal Q} - 1)\|^2/\|G^s\|_F^2\Big)^{1/2} \le \tau
          \Big(\sum_s\|G^s 1\|^2/\|G^s\|_F^2\Big)^{1/2}.

*Compression.* :math:`G` is linear in the stress: with the POD of the rescaled stresses
:math:`\sqrt w\,\sigma^s/\|G^s\|_F = \sum_j s_j\psi_j v_{js}` (:math:`V` orthonormal),
:math:`\sum_s\|G^s x\|^2/\|G^s\|_F^2 = \sum_j s_j^2\|G(\psi_j/\sqrt w)\,x\|^2` for all
weights :math:`x` when all modes are kept, so the blocks :math:`G(\tau_j)`,
:math:`\tau_j = s_j\psi_j/\sqrt w`, truncated at ``stress_tol``, plus the volume row
:math:`w/\|w\|`, are fitted instead of the stack.

*Fit* (:func:`nnomp`): **non-negative orthogonal matching pursuit**. With :math:`b = G\,1`
and the residual :math:`\rho = b - G_{:\mathcal Q}\omega`, repeat { add
:math:`\arg\max_{q\notin\mathcal Q} G_{:q}^T\rho/\|G_{:q}\|` (positive correlations only;
``batch`` > 1: that many of the largest at once); :math:`\omega = \arg\min_{\omega\ge0}
\|G_{:\mathcal Q}\omega - b\|` (Lawson-Hanson, :func:`nnls_active_set`, warm-started from the
previous weights, on an updated Cholesky factor of :math:`G_{:\mathcal Q}^TG_{:\mathcal Q}`);
drop the points with :math:`\omega_q = 0` } until :math:`\|\rho\| \le \tau_c\|b\|`. The
uncompressed criterion is then evaluated exactly and :math:`\tau_c` tightened until it
holds; the :math:`\tau_c` that made it hold is where the next fit starts.

*Growth.* A new mode or a new snapshot (an enrichment) adds only its rows to the fitted
matrix and its entries to the exact forces and block norms (:meth:`ECMFit.sync`); the fit is
warm-started from the previous rule, its points and weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from um2n_simulations.blade.pod import GramPOD, GrowableRows


@dataclass
class Cubature:
    """Reduced integration rule: point indices and the weights multiplying G's columns."""

    points: np.ndarray            # (|Q|,) indices into the N quadrature points
    weights: np.ndarray           # (|Q|,) > 0, multipliers of the per-point contributions
    residual: float               # ||G_Q w - G 1|| / ||G 1|| reached on the fitted matrix
    iterations: int
    training_error: float = float("nan")   # the uncompressed criterion (ECMFit.stacked_error)


class _GramCholesky:
    r"""Cholesky factor :math:`R^TR = A_{PP}` of a principal sub-matrix of a Gram matrix
    :math:`A = G^TG`, updated as the index set :math:`P` changes: a new index appends the
    column :math:`(R^{-T}A_{P,j},\ (A_{jj} - \|R^{-T}A_{P,j}\|^2)^{1/2})` (refused if the
    column is numerically dependent), a removed one deletes its column of :math:`R` and
    re-triangularises by Givens rotations (:func:`scipy.linalg.qr_delete`): :math:`O(|P|^2)`
    each instead of :math:`O(|P|^3)` for a new factorisation."""

    def __init__(self, A: np.ndarray, order: np.ndarray):
        self.A = A
        self.order = [int(i) for i in order]
        self.R = np.zeros((0, 0))
        if self.order:
            try:
                self.R = scipy.linalg.cholesky(A[np.ix_(self.order, self.order)], lower=False, check_finite=False)
            except np.linalg.LinAlgError:           # dependent columns: insert one by one
                idx, self.order = self.order, []
                for j in idx:
                    self.insert(j)

    def insert(self, j: int) -> bool:
        a = self.A[self.order, j]
        r = scipy.linalg.solve_triangular(self.R, a, trans="T", check_finite=False) if self.order else a[:0]
        rho2 = self.A[j, j] - r @ r
        if not rho2 > 1e-12 * self.A[j, j]:
            return False
        n = len(self.order)
        R = np.zeros((n + 1, n + 1))
        R[:n, :n], R[:n, n], R[n, n] = self.R, r, np.sqrt(rho2)
        self.R = R
        self.order.append(j)
        return True

    def remove(self, j: int) -> None:
        k = self.order.index(j)
        n = len(self.order)
        if k == n - 1:
            self.R = self.R[:n - 1, :n - 1]
        else:
            _, R1 = scipy.linalg.qr_delete(np.eye(n), self.R, k, 1, which="col", check_finite=False)
            self.R = R1[:n - 1]
        del self.order[k]

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """:math:`A_{PP}^{-1}` ``rhs`` (two triangular solves, LAPACK trtrs called directly)."""
        y, _ = scipy.linalg.lapack.dtrtrs(self.R, rhs, lower=0, trans=1)
        z, _ = scipy.linalg.lapack.dtrtrs(self.R, y, lower=0, trans=0)
        return z


def nnls_active_set(Gs: np.ndarray, b: np.ndarray, A: np.ndarray, c: np.ndarray,
                    x0: np.ndarray | None = None, max_iter: int | None = None) -> np.ndarray:
    r"""Lawson-Hanson NNLS :math:`\min_{x\ge0}\|G_s x - b\|`, warm-started.

    ``A`` :math:`= G_s^TG_s` and ``c`` :math:`= G_s^Tb` (the caller keeps them up to date).
    Starting from the feasible ``x0`` (default 0) with every variable passive: the inner
    loop solves the least-squares problem on the passive set :math:`P` (normal equations
    :math:`A_{PP}z = c_P` on an updated Cholesky factor, :class:`_GramCholesky`, plus one
    step of iterative refinement on the explicit residual
    :math:`z \leftarrow z + A_{PP}^{-1}G_P^T(b - G_Pz)`); if some entry is not positive it
    moves from :math:`x` towards :math:`z` as far as feasibility allows,
    :math:`x \leftarrow x + \alpha(z - x)`, :math:`\alpha = \min_{z_i\le0} x_i/(x_i - z_i)`,
    and the entries that reach 0 leave :math:`P`; the outer loop lets back in the variable
    of largest positive gradient :math:`(c - Ax)_j` until none is left (the KKT
    conditions). From a warm start close to the solution (the previous weights, new points
    at 0) it takes a few :math:`O(|P|^2)` factor updates.
    """
    n = len(c)
    x = np.zeros(n) if x0 is None else np.maximum(np.asarray(x0, dtype=float), 0.0)
    if not n:
        return x
    F = _GramCholesky(A, np.arange(n))
    P = np.zeros(n, dtype=bool)
    P[F.order] = True
    gtol = 1e-12 * max(np.abs(c).max(initial=0.0), 1e-300)
    max_iter = max_iter or 3 * n + 30
    for _ in range(max_iter):
        for _ in range(max_iter):                       # inner loop: feasibility on P
            idx = np.array(F.order, dtype=int)
            if not len(idx):
                x[:] = 0.0
                break
            z = F.solve(c[idx])
            xz = np.zeros(n)
            xz[idx] = z
            z += F.solve((Gs.T @ (b - Gs @ xz))[idx])      # refinement (no gather of G_P)
            if z.min() > 0:
                x[:] = 0.0
                x[idx] = z
                break
            xi = x[idx]
            neg = z <= 0
            ratio = xi[neg] / np.maximum(xi[neg] - z[neg], 1e-300)
            j = int(np.argmin(ratio))
            x[idx] = xi + ratio[j] * (z - xi)
            x[idx[np.flatnonzero(neg)[j]]] = 0.0
            for q in idx[x[idx] <= 0]:
                F.remove(int(q))
                P[q] = False
                x[q] = 0.0
        grad = c - A @ x                                 # outer loop: KKT on the active set
        grad[P] = -np.inf
        added = False
        for j in np.argsort(grad)[::-1]:
            if not grad[j] > gtol:
                break
            P[j] = True                                  # tried once per outer iteration
            if F.insert(int(j)):
                added = True
                break
        if not added:
            break
    return x


def nnomp(G: np.ndarray, tol: float, max_points: int | None = None,
          initial: np.ndarray | None = None, initial_weights: np.ndarray | None = None,
          batch: int = 1) -> Cubature:
    r"""Non-negative orthogonal matching pursuit: :math:`G_{:\mathcal Q}\,\omega \approx G\,1`.

    Parameters
    ----------
    G : (rows, N) per-point contributions (the module docstring)
    tol : stop when :math:`\|G_{:\mathcal Q}\omega - G1\|_2 \le` ``tol`` :math:`\|G1\|_2`
    max_points : most points (default: the number of rows, the size of a basic NNLS solution)
    initial : points to start from (warm start after an enrichment: the previous rule);
        NNLS on them first, those with zero weight are dropped
    initial_weights : their weights (the warm start of that first NNLS)
    batch : points added per iteration (the ``batch`` largest positive correlations; 1 is
        plain NNOMP, more is the generalised OMP of Wang, Kwon & Shim 2012: fewer
        iterations, the NNLS then drops the points it does not need)

    Greedy selection by the largest positive normalised correlation
    :math:`G_{:q}^T\rho/\|G_{:q}\|` with the residual :math:`\rho = G1 - G_{:\mathcal Q}\omega`;
    after each new point the weights are the NNLS solution on the selected columns
    (:func:`nnls_active_set`, warm-started from the previous weights with the new point at
    0; the Gram matrix :math:`G_{:\mathcal Q}^TG_{:\mathcal Q}` is extended by one row and
    column per point, :math:`O(\text{rows}\,|\mathcal Q|)`); zero-weight points leave the
    set. Raises ``RuntimeError`` if the tolerance is not reached.
    """
    rows, N = G.shape
    b = G.sum(axis=1)
    nb = np.linalg.norm(b)
    norms = np.linalg.norm(G, axis=0)
    usable = norms > 1e-14 * norms.max()
    inv = np.where(usable, 1.0 / np.where(usable, norms, 1.0), 0.0)
    max_points = max_points or min(rows, N)

    sel = np.zeros(0, dtype=int)
    w = np.zeros(0)
    if initial is not None:
        initial = np.asarray(initial, dtype=int)
        keep = usable[initial]
        sel = initial[keep]
        x0 = None if initial_weights is None else np.asarray(initial_weights, dtype=float)[keep]
        Gs = G[:, sel]
        A, c = Gs.T @ Gs, Gs.T @ b
        w = nnls_active_set(Gs, b, A, c, x0)
        pos = w > 0
        sel, w, A, c, Gs = sel[pos], w[pos], A[np.ix_(pos, pos)], c[pos], Gs[:, pos]
    else:
        A, c, Gs = np.zeros((0, 0)), np.zeros(0), np.zeros((rows, 0))
    rho = b - Gs @ w
    it = 0
    while np.linalg.norm(rho) > tol * nb:
        it += 1
        if len(sel) >= max_points or it > 4 * max_points:
            raise RuntimeError(f"ECM: tolerance {tol:g} not reached with {len(sel)} points "
                               f"(residual {np.linalg.norm(rho) / nb:.3e})")
        corr = (G.T @ rho) * inv
        corr[sel] = -np.inf
        new = np.argsort(corr)[::-1][:batch] if batch > 1 else np.array([int(np.argmax(corr))])
        new = new[corr[new] > 0]
        if not len(new):
            raise RuntimeError(f"ECM: no positively correlated point left (residual {np.linalg.norm(rho) / nb:.3e})")
        g = G[:, new]
        cross = Gs.T @ g
        A = np.block([[A, cross], [cross.T, g.T @ g]])
        c = np.append(c, g.T @ b)
        sel = np.append(sel, new)
        Gs = np.column_stack([Gs, g])
        w = nnls_active_set(Gs, b, A, c, np.append(w, np.zeros(len(new))))
        pos = w > 0
        if not pos.all():
            sel, w, A, c, Gs = sel[pos], w[pos], A[np.ix_(pos, pos)], c[pos], Gs[:, pos]
        rho = b - Gs @ w
    order = np.argsort(sel)
    return Cubature(sel[order], np.asarray(w)[order], float(np.linalg.norm(rho) / nb), it)


def ecm_matrix(E: np.ndarray, stresses: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""The stacked, block-normalised :math:`G` of the module docstring.

    ``E`` (N, 4, r) strains of the modes at the points, ``stresses`` (m, N, 4) the training
    stresses, ``weights`` (N,) the quadrature weights; returns (m r + 1, N): per snapshot
    :math:`G^s_{kq} = w_q (E_q\phi_k)\cdot\sigma^s_q / \|G^s\|_F`, then :math:`w/\|w\|`.
    """
    blocks = []
    for sigma in stresses:
        Gs = np.einsum("qir,qi,q->rq", E, sigma, weights)
        n = np.linalg.norm(Gs)
        if n > 0:
            blocks.append(Gs / n)
    blocks.append((weights / np.linalg.norm(weights))[None, :])
    return np.vstack(blocks)




class ECMFit:
    r"""The ECM rule of the reduced internal forces over a growing basis and training set.

    Keeps what the criterion and the fitted matrix need, and extends it (never recomputes
    it) as modes and snapshots are added: the strains of the modes at all points :math:`E`
    (N, 4, r), the squared block norms :math:`\|G^s\|_F^2` (m,), the exact reduced forces
    :math:`g^s = G^s 1` (m, r), and the fitted matrix (module docstring: the compressed
    stack, then the uncompressed rows of the modes and snapshots added since).

    Parameters
    ----------
    B : sparse (4N, n_dofs) strain operator (Mandel strains of all points)
    w : (N,) quadrature weights
    """

    def __init__(self, B, w: np.ndarray):
        self.B, self.w = B, w
        self.sw = np.sqrt(w)
        self.N = len(w)
        self.E = np.zeros((self.N, 4, 0))
        self.gn2: np.ndarray | None = None
        self.exact: np.ndarray | None = None
        self.m = 0                        # snapshots in gn2 and exact
        self.rows: GrowableRows | None = None
        self.rule: Cubature | None = None
        self.fit_tol: float | None = None

    def sync(self, modes: np.ndarray, stresses: np.ndarray, pod_s: GramPOD, stress_tol: float) -> None:
        r"""Bring :math:`E`, the block norms, the exact forces and the fitted matrix up to
        ``modes`` (n_dofs, r) and the training ``stresses`` (m, N, 4); ``pod_s`` is the POD of
        the weighted stresses :math:`\sqrt w\,\sigma^s` (the compression, built on the first
        call, truncated at ``stress_tol``). Only new modes and new snapshots are computed."""
        m = len(stresses)
        if self.gn2 is None:
            self.gn2, self.exact, self.m = np.zeros(m), np.zeros((m, 0)), m
        m0 = self.m
        r, r0 = modes.shape[1], self.E.shape[2]
        # G^s_kq = w_q (E_q phi_k) . sigma^s_q: new modes for the old snapshots ...
        if r > r0:
            E_new = (self.B @ modes[:, r0:]).reshape(self.N, 4, r - r0)
            self.E = np.concatenate([self.E, E_new], axis=2)
            if m0:
                g = np.einsum("sqi,qik->skq", stresses[:m0], E_new * self.w[:, None, None], optimize=True)
                self.gn2[:m0] += (g ** 2).sum(axis=(1, 2))
                self.exact = np.concatenate([self.exact[:m0], g.sum(axis=2)], axis=1)
        # ... and all modes for the new snapshots
        if m > m0:
            g = np.einsum("sqi,qik->skq", stresses[m0:], self.E * self.w[:, None, None], optimize=True)
            self.gn2 = np.concatenate([self.gn2[:m0], (g ** 2).sum(axis=(1, 2))])
            self.exact = np.concatenate([self.exact[:m0], g.sum(axis=2)])
        self.m = m
        self._sync_rows(stresses, pod_s, stress_tol)

    def _compressed_matrix(self, pod_s: GramPOD, stress_tol: float) -> tuple[np.ndarray, np.ndarray]:
        r"""The compressed :math:`G` (module docstring; rows: the volume row, then stress
        directions times displacement modes) and the stress directions :math:`\tau_j` (k, N, 4);
        the volume row is scaled to the mean block."""
        psi, sv = pod_s.modes(stress_tol, scale=1.0 / np.sqrt(np.maximum(self.gn2, 1e-300)))
        k, r = psi.shape[1], self.E.shape[2]
        sig = (psi.T.reshape(k, self.N, 4) / self.sw[None, :, None]) * sv[:k, None, None]
        # G[j, l, q] = w_q (E_q phi_l) . sigma_j,q: a batched (r x 4) @ (4 x k) product per point
        Ew = self.E * self.w[:, None, None]
        G = np.matmul(Ew.transpose(0, 2, 1), sig.transpose(1, 2, 0))            # (N, r, k)
        G = G.transpose(2, 1, 0).reshape(k * r, self.N)
        vol = self.w / np.linalg.norm(self.w) * np.linalg.norm(G) / np.sqrt(len(self.gn2))
        return np.vstack([vol[None, :], G]), sig

    def _sync_rows(self, stresses: np.ndarray, pod_s: GramPOD, stress_tol: float) -> None:
        r"""The fitted matrix, extended (not recomputed) after the first call.

        A new mode :math:`\phi_l` adds its rows :math:`G(\tau_j)_{l,:}` for every stress
        direction :math:`\tau_j` and :math:`G^s_{l,:}/\|G^s\|_F` for every snapshot added
        since; a new snapshot adds its block :math:`G^s/\|G^s\|_F` (all modes, uncompressed,
        its norm with the modes of that moment). The directions are not recomputed, so the
        compression is no longer exactly isometric after additions; the uncompressed
        criterion is still evaluated exactly (:meth:`stacked_error`) and the fit tightened
        until it holds. Cost per addition :math:`O((k + m_{new})N + rN)`.
        """
        r, m = self.E.shape[2], self.m
        if self.rows is None:
            G, self._sig = self._compressed_matrix(pod_s, stress_tol)
            self.rows = GrowableRows(G, spare=4 * len(self._sig))
            self._rows_r, self._rows_m, self._extra = r, m, []
            return
        Ew = self.E * self.w[:, None, None]
        for l in range(self._rows_r, r):
            self.rows.extend(np.einsum("jqi,qi->jq", self._sig, Ew[:, :, l], optimize=True))
            for s, d in self._extra:
                self.rows.append((stresses[s] * Ew[:, :, l]).sum(axis=1) * d)
        for s in range(self._rows_m, m):
            d = 1.0 / np.sqrt(max(self.gn2[s], 1e-300))
            self.rows.extend(np.einsum("qi,qil->lq", stresses[s], Ew, optimize=True) * d)
            self._extra.append((s, d))
        self._rows_r, self._rows_m = r, m

    def fit(self, stresses: np.ndarray, tol: float, batch: int) -> Cubature:
        """NNOMP on the fitted matrix, warm-started from the current rule (its points and
        weights), its tolerance tightened until the uncompressed criterion (:meth:`stacked_error`
        over ``stresses``) is at most ``tol``. The compressed tolerance that made it hold is
        remembered: the next fit starts from it. Returns (and keeps) the new rule."""
        G = self.rows.array
        fit_tol = tol if self.fit_tol is None else min(tol, self.fit_tol)
        pts, wts = (None, None) if self.rule is None else (self.rule.points, self.rule.weights)
        for _ in range(8):
            c = nnomp(G, fit_tol, initial=pts, initial_weights=wts, batch=batch)
            err = self.stacked_error(c, stresses)
            if err <= tol:
                break
            fit_tol *= 0.7 * tol / err
            pts, wts = c.points, c.weights
        self.fit_tol = fit_tol
        c.training_error = err
        self.rule = c
        return c

    def stacked_error(self, c: Cubature, stresses: np.ndarray) -> float:
        r"""The criterion's relative error (module docstring) of the rule ``c`` over the
        training ``stresses``: the rule's :math:`G^s_{:\mathcal Q}\omega = \sigma^s_{\mathcal Q}
        \cdot (\omega w E)_{\mathcal Q}` is one (m, 4|Q|) @ (4|Q|, r) product; the exact
        :math:`g^s` are kept."""
        Q = c.points
        S_Q = stresses[:, Q].reshape(len(self.exact), -1)
        approx = S_Q @ (self.E[Q] * (c.weights * self.w[Q])[:, None, None]).reshape(4 * len(Q), -1)
        exact = self.exact
        n2 = np.maximum(self.gn2, 1e-300)
        return float(np.sqrt((((approx - exact) ** 2).sum(axis=1) / n2).sum() / ((exact ** 2).sum(axis=1) / n2).sum()))

    def errors(self, modes: np.ndarray, stresses: np.ndarray) -> dict[str, float]:
        r"""Errors of the current rule's reduced internal forces over the stress snapshots
        ``stresses``, recomputed from scratch for ``modes``: with :math:`g^s = G^s 1` and
        :math:`\tilde g^s = G^s_{:\mathcal Q}\omega`, ``stacked`` is the criterion's
        :math:`\big(\sum_s \|\tilde g^s - g^s\|^2/\|G^s\|_F^2\big)^{1/2} /
        \big(\sum_s \|g^s\|^2/\|G^s\|_F^2\big)^{1/2}` and ``max_snapshot`` is
        :math:`\max_s \|\tilde g^s - g^s\| / \|G^s\|_F`, the worst single snapshot."""
        E = (self.B @ modes).reshape(self.N, 4, -1)
        Q = self.rule.points
        num = den = worst = 0.0
        for sigma in stresses:
            Gs = np.einsum("qir,qi,q->rq", E, sigma, self.w)
            n = np.linalg.norm(Gs)
            if n > 0:
                e = np.linalg.norm(Gs[:, Q] @ self.rule.weights - Gs.sum(axis=1)) / n
                num += e ** 2
                den += (np.linalg.norm(Gs.sum(axis=1)) / n) ** 2
                worst = max(worst, float(e))
        return {"stacked": float(np.sqrt(num / den)), "max_snapshot": worst}

    def copy(self) -> "ECMFit":
        """An independent copy (the arrays a sync changes in place are copied; the strains of
        the modes and the stress directions are replaced, never changed, so shared)."""
        new = object.__new__(ECMFit)
        new.__dict__.update(self.__dict__)
        new.gn2, new.exact = self.gn2.copy(), self.exact.copy()
        new.rows, new._extra = self.rows.copy(), list(self._extra)
        return new
