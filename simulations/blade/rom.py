r"""Hyper-reduced model of the blade with a Gappy-POD error indicator and enrichment.

After Casenave, Akkari et al. (MCA 2019, 24(2) 41): snapshot POD of the displacements,
the Empirical Cubature Method (ECM) for the internal forces, Gappy-POD of the cumulated
plastic strain :math:`p` as an error indicator, and enrichment by high-fidelity (HF) steps.

**Offline.** HF snapshots :math:`u^s` (dof vectors), :math:`\sigma^s, \varepsilon_p^s, p^s`
(all :math:`N` quadrature points) from a few training thermal loads, every step of the cycle.

*POD.* With :math:`S = [u^1 \dots u^m] = U\Sigma V^T` (Euclidean dof inner product),
keep the first :math:`r` left singular vectors, :math:`r` the least with

.. math:: \sum_{i \le r}\sigma_i^2 \ge (1 - \epsilon^2) \sum_i \sigma_i^2
          \iff \|S - \Phi\Phi^T S\|_F \le \epsilon\,\|S\|_F .

*ECM.* The reduced internal forces :math:`\Phi^T F_{int} = \sum_q G_{kq}` with
:math:`G_{kq} = w_q (B_q\phi_k)\cdot\sigma_q` are replaced by :math:`\sum_{q\in\mathcal Q}
\omega_q G_{kq}`, :math:`\omega > 0`, :math:`|\mathcal Q| \ll N`. The criterion is on the
uncompressed training stack: one block :math:`G^s/\|G^s\|_F` per training snapshot (so that
unloaded snapshots with residual stresses count as much as loaded ones),
:math:`\big(\sum_s\|G^s(\omega_{\mathcal Q} - 1)\|^2/\|G^s\|_F^2\big)^{1/2} \le \tau
\big(\sum_s\|G^s 1\|^2/\|G^s\|_F^2\big)^{1/2}`. It is fitted on an isometric compression
of that stack (:meth:`BladeROM._ecm_matrix`: the POD of the stresses rescaled by
:math:`1/\|G^s\|_F`, plus the row :math:`w/\|w\|` so that the volume is integrated) by
**non-negative orthogonal matching pursuit**: with :math:`b = G\,1` and residual
:math:`\rho = b - G_{:\mathcal Q}\omega`, repeat { add :math:`\arg\max_{q\notin\mathcal Q}
G_{:q}^T\rho/\|G_{:q}\|` (positive correlations only); :math:`\omega = \arg\min_{\omega\ge0}
\|G_{:\mathcal Q}\omega - b\|`; drop points with :math:`\omega_q = 0` } until
:math:`\|\rho\| \le \tau\|b\|`; the uncompressed criterion is then evaluated exactly and
the fit tightened until it holds. The weights multiply the per-point contributions, so
the physical weight of a reduced point is :math:`\omega_q w_q`.

*Gappy-POD.* POD bases :math:`\Psi_p` (:math:`N\times r_p`) of the :math:`p` snapshots
and :math:`\Psi_e` (:math:`4N\times r_e`) of the plastic-strain snapshots, truncated with
the same energy criterion, capped at :math:`|\mathcal Q| - 1` (resp. :math:`4|\mathcal Q|-1`)
modes so that the restricted least-squares problems below are overdetermined.

**Online** (one thermal load, the cycle's steps). Unknown :math:`u = \Phi a`; the law is
evaluated at the reduced points only, whose internal variables (the only ones kept) are
committed at each step. Reduced Newton: with :math:`E_q = B_q\Phi` (4×r, precomputed),

.. math::

    R(a) = \sum_{q\in\mathcal Q}\omega_q w_q\,E_q^T\sigma_q(E_q a) - \lambda(t)\,\Phi^T F_{ext}^{(1)},
    \qquad K(a) = \sum_{q\in\mathcal Q}\omega_q w_q\,E_q^T\,\mathbb C_q\,E_q,

:math:`F_{ext}^{(1)}` the centrifugal force at :math:`\lambda = 1` (the force is linear in
:math:`\lambda` and does not depend on the thermal load), temperatures from the analytic
hot spot at the reduced points. Converged when :math:`\|R\| \le` ``rtol`` times
:math:`\max(\|\lambda\Phi^TF^{(1)}_{ext}\|, \|\Phi^TF_{int}\|)`, the largest over the
step's iterates (an unloaded step has both near zero at convergence). Cost per iteration
:math:`O(|\mathcal Q|\,r^2 + r^3)`, independent of the HF mesh.

*Error indicators* (cost independent of :math:`N`): relative Gappy-POD residuals of a
dual quantity at the reduced points,

.. math::

    \eta_\sigma = \frac{\|\Psi_{\sigma,\mathcal Q}\, c - s_{\mathcal Q}\|_2}{\|s_{\mathcal Q}\|_2},
    \quad c = \arg\min_c \|\Psi_{\sigma,\mathcal Q}\, c - s_{\mathcal Q}\|_2, \qquad
    s_q = \sqrt{w_q}\,\sigma_q ,

with :math:`\Psi_\sigma` the POD basis (``gappy_tol``) of the weighted training stresses,
and :math:`\eta_p` the same for the cumulated plastic strain :math:`p` (0 while
:math:`\|p_{\mathcal Q}\|_\infty \le` ``p_floor``). ``indicator`` chooses the one that
decides enrichment. On the blade the displacement error of an unseen thermal load is
mostly thermo-elastic: it is there from the first (elastic) step, where :math:`p = 0`
and :math:`\eta_p` cannot see it, while the stress at the reduced points already carries
the new load's thermal stress pattern, which :math:`\eta_\sigma` measures; so the
default is ``"stress"`` (:math:`\eta_p` tracks the error of :math:`p` instead).

*Enrichment* when the indicator exceeds ``indicator_tol``: the reduced step is discarded and one
HF step is solved from :math:`t_n`. The HF model needs a full state at :math:`t_n`: the
displacement is :math:`\Phi a_n`; the internal variables are (``enrichment_state``)

* ``"gappy"`` (default): reconstructed by Gappy-POD from the reduced points' values,
  :math:`\varepsilon_p \approx \Psi_e \arg\min\|\Psi_{e,\mathcal Q} c - \varepsilon_{p,\mathcal Q}\|`,
  :math:`p` likewise, and :math:`X = \tfrac23 C\,\varepsilon_p` (exact for Prager hardening
  from a virgin state). Online cost stays independent of :math:`N` between enrichments; the
  HF step starts from an approximate state;
* ``"shadow"``: the full internal variables are kept up to date at every reduced step by
  one evaluation of the law at all :math:`N` points on the strains of :math:`\Phi a` (no
  Newton, no assembly). Exact restart, but an :math:`O(N)` cost at every step.

The HF displacement :math:`u^{HF}_{n+1}` enriches :math:`\Phi` by Gram-Schmidt (twice, for
orthogonality to round-off; skipped when :math:`\|(I - \Phi\Phi^T)u\| \le 10^{-10}\|u\|`);
its stress, :math:`p` and :math:`\varepsilon_p` join the training sets; the ECM and the
Gappy bases are rebuilt (only the new mode's and the new snapshot's contributions are
computed: strains of the mode, block norms, one row and column of the Gram matrices; the
NNOMP is warm-started from the previous rule); the reduced state restarts from the HF
step, :math:`a = \Phi^T u^{HF}_{n+1}` and the HF internal variables at the new reduced
points. The enriched data are kept: a later online run (another load) starts from them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import scipy.linalg
import scipy.optimize

from simulations.blade.material import InternalVariables, Material, return_mapping


# ---------------------------------------------------------------------- POD
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
    r = int(np.searchsorted(energy, (1.0 - tol ** 2) * energy[-1] * (1 - 1e-14)) + 1)
    r = min(r, len(s))
    if max_modes is not None:
        r = min(r, max_modes)
    return U[:, :r].copy(), s


class _Rows:
    """A growable stack of equal-length rows (amortised O(n) append: capacity doubling)."""

    def __init__(self, X: np.ndarray, spare: int = 16):
        X = np.asarray(X, dtype=float)
        self._buf = np.empty((len(X) + spare,) + X.shape[1:])
        self._buf[:len(X)] = X
        self._m = len(X)

    def append(self, x: np.ndarray) -> None:
        if self._m == len(self._buf):
            grown = np.empty((max(2 * self._m, 8),) + self._buf.shape[1:])
            grown[:self._m] = self._buf[:self._m]
            self._buf = grown
        self._buf[self._m] = x
        self._m += 1

    @property
    def array(self) -> np.ndarray:
        return self._buf[:self._m]

    def copy(self) -> "_Rows":
        return _Rows(self.array)


class GramPOD:
    r"""POD by the method of snapshots with an incrementally updated Gram matrix.

    For snapshots :math:`X = [x_1 \dots x_m]` (n, m), :math:`C = X^TX = V\Lambda V^T` and the
    modes are :math:`\phi_j = X v_j/\sqrt{\lambda_j}` (the left singular vectors,
    :math:`\sigma_j = \sqrt{\lambda_j}`). Appending a snapshot costs one new row of
    :math:`C`, :math:`O(nm)` (the snapshots are kept in a growable buffer), instead of a new
    SVD. With ``scale`` :math:`d` (m,), the POD is that of the rescaled snapshots
    :math:`X\,\mathrm{diag}(d)` (Gram :math:`DCD`, no copy of :math:`X`). Accurate for the
    energy criterion of :func:`pod` down to :math:`\sigma_j/\sigma_1 \approx 10^{-7}` (the
    Gram matrix squares the condition number), ample for the tolerances used here.
    """

    def __init__(self, X: np.ndarray):
        self._rows = _Rows(np.ascontiguousarray(np.asarray(X).T))     # (m, n): snapshots as rows
        self.C = self.X @ self.X.T

    @property
    def X(self) -> np.ndarray:
        return self._rows.array

    def append(self, x: np.ndarray) -> None:
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

    def modes(self, tol: float, max_modes: int | None = None,
              scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Modes (n, r) and singular values, truncated as in :func:`pod`."""
        C = self.C if scale is None else self.C * np.outer(scale, scale)
        lam, V = np.linalg.eigh(C)
        lam, V = np.maximum(lam[::-1], 0.0), V[:, ::-1]
        s = np.sqrt(lam)
        energy = np.cumsum(lam)
        if energy[-1] == 0:
            return np.zeros((self.X.shape[1], 0)), s
        r = min(int(np.searchsorted(energy, (1.0 - tol ** 2) * energy[-1] * (1 - 1e-14)) + 1), len(s))
        if max_modes is not None:
            r = min(r, max_modes)
        r = min(r, int((s > 1e-7 * s[0]).sum()))
        W = V[:, :r] / s[:r]
        if scale is not None:
            W = W * scale[:, None]
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


# ---------------------------------------------------------------------- ECM
@dataclass
class Cubature:
    """Reduced integration rule: point indices and the weights multiplying G's columns."""

    points: np.ndarray            # (|Q|,) indices into the N quadrature points
    weights: np.ndarray           # (|Q|,) > 0, multipliers of the per-point contributions
    residual: float               # ||G_Q w - G 1|| / ||G 1|| reached on the fitted matrix
    iterations: int
    training_error: float = float("nan")   # the uncompressed criterion (BladeROM.cubature_error "stacked")


def nnomp(G: np.ndarray, tol: float, max_points: int | None = None,
          initial: np.ndarray | None = None) -> Cubature:
    r"""Non-negative orthogonal matching pursuit: :math:`G_{:\mathcal Q}\,\omega \approx G\,1`.

    Parameters
    ----------
    G : (rows, N) per-point contributions (the module docstring)
    tol : stop when :math:`\|G_{:\mathcal Q}\omega - G1\|_2 \le` ``tol`` :math:`\|G1\|_2`
    max_points : most points (default: the number of rows, the size of a basic NNLS solution)
    initial : points to start from (warm start after an enrichment: the previous rule);
        NNLS on them first, those with zero weight are dropped

    Greedy selection by the largest positive normalised correlation with the residual.
    Weights: the unconstrained least-squares solution on the selected columns (a QR
    factorisation updated by one Gram-Schmidt column per new point, :math:`O(\text{rows}\,
    |\mathcal Q|)`); only if it has a non-positive entry, NNLS (Lawson-Hanson) on the
    selected columns, solved on the triangular factor (:math:`\min\|R\omega - Q^Tb\|`, the
    same minimiser, :math:`|\mathcal Q|` rows instead of ``rows``); zero-weight points leave
    the set and the QR of the rest comes from that of :math:`R`'s kept columns.
    Both give the NNLS solution whenever the least-squares one is positive. Raises
    ``RuntimeError`` if the tolerance is not reached.
    """
    rows, N = G.shape
    b = G.sum(axis=1)
    nb = np.linalg.norm(b)
    norms = np.linalg.norm(G, axis=0)
    usable = norms > 1e-14 * norms.max()
    inv = np.where(usable, 1.0 / np.where(usable, norms, 1.0), 0.0)
    max_points = max_points or min(rows, N)

    def nnls(sel):
        w, _ = scipy.optimize.nnls(G[:, sel], b, maxiter=50 * max(len(sel), 1))
        keep = w > 0
        return [q for q, k in zip(sel, keep) if k], w[keep]

    def nnls_qr(sel, Qf, Rf):
        """NNLS through the QR of G[:, sel]: min ||R w - Q^T b|| (|sel| rows instead of ``rows``),
        then the QR of the kept columns from that of R's kept columns (no refactorisation of G)."""
        w, _ = scipy.optimize.nnls(Rf, Qf.T @ b, maxiter=50 * max(len(sel), 1))
        keep = w > 0
        if keep.all():
            return sel, w, Qf, Rf
        Q2, R2 = np.linalg.qr(Rf[:, keep])
        return [q for q, k in zip(sel, keep) if k], w[keep], Qf @ Q2, R2

    sel: list[int] = [] if initial is None else [int(q) for q in initial if usable[q]]
    w = np.zeros(0)
    Qf, Rf = np.linalg.qr(G[:, sel]) if sel else (np.zeros((rows, 0)), np.zeros((0, 0)))
    if sel:
        sel, w, Qf, Rf = nnls_qr(sel, Qf, Rf)
    rho = b - G[:, sel] @ w
    it = 0
    while np.linalg.norm(rho) > tol * nb:
        it += 1
        if len(sel) >= max_points or it > 4 * max_points:
            raise RuntimeError(f"ECM: tolerance {tol:g} not reached with {len(sel)} points "
                               f"(residual {np.linalg.norm(rho) / nb:.3e})")
        c = (G.T @ rho) * inv
        c[sel] = -np.inf
        i = int(np.argmax(c))
        if not c[i] > 0:
            raise RuntimeError(f"ECM: no positively correlated point left (residual {np.linalg.norm(rho) / nb:.3e})")
        g = G[:, i]
        r1 = Qf.T @ g
        v = g - Qf @ r1
        r2 = Qf.T @ v
        v -= Qf @ r2
        nv = np.linalg.norm(v)
        sel.append(i)
        if nv > 1e-12 * np.linalg.norm(g):
            Rf = np.block([[Rf, (r1 + r2)[:, None]], [np.zeros((1, Rf.shape[1])), np.array([[nv]])]])
            Qf = np.column_stack([Qf, v / nv])
            w = scipy.linalg.solve_triangular(Rf, Qf.T @ b)
            if w.min() <= 0:
                sel, w, Qf, Rf = nnls_qr(sel, Qf, Rf)
        else:                                 # dependent column: NNLS on G itself decides
            sel, w = nnls(sel)
            Qf, Rf = np.linalg.qr(G[:, sel])
        rho = b - G[:, sel] @ w
    order = np.argsort(sel)
    return Cubature(np.asarray(sel, dtype=int)[order], np.asarray(w)[order], float(np.linalg.norm(rho) / nb), it)


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


# ---------------------------------------------------------------------- Gappy-POD
@dataclass
class Gappy:
    r"""A Gappy-POD basis restricted to sampled entries: fit, residual, reconstruction."""

    basis: np.ndarray             # (n, k) full basis
    rows: np.ndarray              # sampled entries
    _pinv: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.restricted = self.basis[self.rows]
        self._pinv = np.linalg.pinv(self.restricted) if self.basis.shape[1] else np.zeros((0, len(self.rows)))

    def fit(self, values: np.ndarray) -> np.ndarray:
        r"""Coefficients :math:`c = \arg\min\|\Psi_{\mathcal Q}c - v\|_2` (pseudo-inverse, precomputed)."""
        return self._pinv @ values

    def residual(self, values: np.ndarray, floor: float = 0.0) -> float:
        r"""Relative residual :math:`\|\Psi_{\mathcal Q}c - v\| / \|v\|` (0 if :math:`\|v\|_\infty \le` ``floor``)."""
        if not np.abs(values).max(initial=0.0) > floor:
            return 0.0
        r = self.restricted @ self.fit(values) - values
        return float(np.linalg.norm(r) / np.linalg.norm(values))

    def reconstruct(self, values: np.ndarray) -> np.ndarray:
        """The full field :math:`\\Psi c` from the sampled values."""
        return self.basis @ self.fit(values)


# ---------------------------------------------------------------------- the reduced model
@dataclass
class ROMConfig:
    """Settings of the reduced model (module docstring)."""

    pod_tol: float = 1e-4             # epsilon: modes up to relative energy 1 - eps^2
    ecm_tol: float = 1e-4             # relative residual of the cubature fit
    ecm_stress_tol: float = 1e-5      # POD tolerance compressing the training stresses for the ECM
    gappy_tol: float = 1e-3           # energy tolerance of the p, eps_p and stress Gappy bases
    indicator: str = "stress"         # dual quantity of the indicator: "stress" or "p" (module docstring)
    indicator_tol: float = 0.05       # enrichment when the indicator exceeds this
    p_floor: float = 1e-7             # p indicator 0 while max p at the reduced points <= this
    enrich: bool = True
    enrichment_state: str = "gappy"   # "gappy" or "shadow" (module docstring)
    newton_rtol: float = 1e-8
    newton_max_it: int = 30


@dataclass
class ThermalLoad:
    """A thermal load of the cycle: hot-spot position (mm) and intensity (°C)."""

    x_h: tuple[float, float]
    A: float

    def label(self) -> str:
        return f"x=({self.x_h[0]:.2f},{self.x_h[1]:.2f}) A={self.A:g}"


class TrainingSet:
    """HF snapshots: u (m, n_dofs), p (m, N), stress and eps_p (m, N, 4); appends are amortised O(size)."""

    FIELDS = ("u", "p", "stress", "eps_p")

    def __init__(self, u: np.ndarray, p: np.ndarray, stress: np.ndarray, eps_p: np.ndarray):
        self._rows = {k: _Rows(v) for k, v in zip(self.FIELDS, (u, p, stress, eps_p))}

    u = property(lambda self: self._rows["u"].array)
    p = property(lambda self: self._rows["p"].array)
    stress = property(lambda self: self._rows["stress"].array)
    eps_p = property(lambda self: self._rows["eps_p"].array)

    @classmethod
    def from_runs(cls, snapshot_dicts: list[dict]) -> "TrainingSet":
        cat = {k: np.concatenate([np.asarray(d[k]) for d in snapshot_dicts]) for k in cls.FIELDS}
        return cls(**cat)

    def append(self, u: np.ndarray, p: np.ndarray, stress: np.ndarray, eps_p: np.ndarray) -> None:
        for k, v in zip(self.FIELDS, (u, p, stress, eps_p)):
            self._rows[k].append(v)

    def copy(self) -> "TrainingSet":
        new = object.__new__(TrainingSet)
        new._rows = {k: v.copy() for k, v in self._rows.items()}
        return new

    def __len__(self) -> int:
        return len(self.u)


@dataclass
class StepRecord:
    """One online step: the indicator, whether it enriched, what the reduced state was."""

    step: int
    t: float
    indicator: float              # the one deciding enrichment (cfg.indicator)
    indicator_stress: float       # Gappy residual of the stress at the reduced points
    indicator_p: float            # Gappy residual of p at the reduced points
    enriched: bool
    newton_iterations: int
    n_modes: int
    n_points: int
    a: np.ndarray                 # coefficients (after the step; on the basis of that moment)
    p_coeff: np.ndarray           # Gappy coefficients of p (on the p-basis of that moment)
    p_basis: int                  # index into ROMRun.p_bases


@dataclass
class ROMRun:
    """What one online run returns (the reconstruction data are kept out of the timed loop)."""

    load: ThermalLoad
    records: list[StepRecord]
    online_seconds: float
    enrichment_seconds: float
    modes: np.ndarray                         # the final displacement basis (earlier ones are its first columns)
    p_bases: list[np.ndarray]

    def displacements(self) -> np.ndarray:
        """(steps, n_dofs) the ROM displacements :math:`\\Phi a` of every step."""
        return np.stack([self.modes[:, :len(r.a)] @ r.a for r in self.records])

    def plastic_strains(self) -> np.ndarray:
        """(steps, N) the Gappy reconstruction :math:`\\Psi_p c` of p at every step."""
        return np.stack([self.p_bases[r.p_basis] @ r.p_coeff for r in self.records])

    @property
    def enrichments(self) -> int:
        return sum(r.enriched for r in self.records)


class BladeROM:
    r"""The hyper-reduced blade model (module docstring): offline data and the online solver.

    Parameters
    ----------
    hf : a :class:`~simulations.blade.blade.BladeHF` on the HF mesh (its solver provides the
        strain operator, the weights, the points and the external force)
    training : the HF snapshots
    cfg : the reduced model's settings
    make_hf : ``make_hf(load) -> BladeHF`` on the same mesh, for enrichment steps
    """

    def __init__(self, hf, training: TrainingSet, cfg: ROMConfig, make_hf: Callable | None = None):
        self.hf_cfg = hf.cfg
        self.cfg = cfg
        s = hf.solver
        self.material: Material = s.material
        self.B = s.strain_operator()
        self.w = s.quadrature_weights()
        self.sw = np.sqrt(self.w)
        self.N = s.n_points
        self.xq = s.quadrature_points()
        hf.lam.assign(1.0)
        self.f_ext1 = s.assemble_external_forces()
        hf.lam.assign(0.0)
        self.training = training
        self.make_hf = make_hf
        self.modes, self.singular_values = pod(training.u.T, cfg.pod_tol)
        self.offline_seconds: dict[str, float] = {}
        self.rebuild()

    # ------------------------------------------------------------------ offline
    def rebuild(self) -> None:
        """ECM and Gappy data for the current modes and training set."""
        t0 = time.perf_counter()
        self._sync_pods()
        self.ecm = self._fit_ecm()
        t1 = time.perf_counter()
        Q = self.ecm.points
        self.E_Q = self._E[Q]                             # (|Q|, 4, r)
        self.omega = self.ecm.weights * self.w[Q]         # physical weights of the reduced points
        self.x_Q = self.xq[Q]
        self.sw_Q = self.sw[Q]
        self.f1 = self.modes.T @ self.f_ext1
        rows = (4 * Q[:, None] + np.arange(4)).ravel()
        Psi_p, _ = self._pod_p.modes(self.cfg.gappy_tol, max_modes=len(Q) - 1)
        self.gappy_p = Gappy(Psi_p, Q)
        Psi_e, _ = self._pod_e.modes(self.cfg.gappy_tol, max_modes=4 * len(Q) - 1)
        self.gappy_e = Gappy(Psi_e, rows)
        Psi_s, _ = self._pod_s.modes(self.cfg.gappy_tol, max_modes=4 * len(Q) - 1)
        self.gappy_s = Gappy(Psi_s, rows)                 # of sqrt(w) sigma
        self.offline_seconds["ecm"] = self.offline_seconds.get("ecm", 0.0) + t1 - t0
        self.offline_seconds["gappy"] = self.offline_seconds.get("gappy", 0.0) + time.perf_counter() - t1

    def _sync_pods(self) -> None:
        r"""Bring the snapshot PODs (weighted stresses :math:`\sqrt w\,\sigma`, p, eps_p), the
        strains of the modes :math:`E` and the block norms :math:`\|G^s\|_F^2` up to the
        current modes and training set; only new modes and new snapshots are computed."""
        tr = self.training
        m = len(tr)
        if not hasattr(self, "_pod_s"):
            self._pod_s = GramPOD((tr.stress * self.sw[None, :, None]).reshape(m, -1).T)
            self._pod_p = GramPOD(tr.p.T)
            self._pod_e = GramPOD(tr.eps_p.reshape(m, -1).T)
            self._E = np.zeros((self.N, 4, 0))
            self._gn2 = np.zeros(m)
        m0 = len(self._pod_p.X)
        for s in range(m0, m):
            self._pod_s.append((tr.stress[s] * self.sw[:, None]).ravel())
            self._pod_p.append(tr.p[s])
            self._pod_e.append(tr.eps_p[s].ravel())
        r, r0 = self.modes.shape[1], self._E.shape[2]
        # ||G^s||_F^2 = sum_k sum_q (w_q (E_q phi_k) . sigma_q)^2: new modes for the old snapshots ...
        if r > r0:
            E_new = (self.B @ self.modes[:, r0:]).reshape(self.N, 4, r - r0)
            self._E = np.concatenate([self._E, E_new], axis=2)
            if m0:
                g = np.einsum("sqi,qik->skq", tr.stress[:m0], E_new * self.w[:, None, None], optimize=True)
                self._gn2[:m0] += (g ** 2).sum(axis=(1, 2))
        # ... and all modes for the new snapshots
        if m > m0:
            g = np.einsum("sqi,qik->skq", tr.stress[m0:], self._E * self.w[:, None, None], optimize=True)
            self._gn2 = np.concatenate([self._gn2[:m0], (g ** 2).sum(axis=(1, 2))])

    def _ecm_matrix(self) -> np.ndarray:
        r"""The compressed :math:`G` fitted by the ECM (rows: stress modes times displacement modes).

        The stacked matrix of the criterion has one block :math:`G^s/\|G^s\|_F` per
        training snapshot (:meth:`cubature_error`). :math:`G` is linear in the stress, so with
        the POD of the rescaled stresses :math:`\sqrt w\,\sigma^s/\|G^s\|_F = \sum_j s_j\psi_j
        v_{js}` (:math:`V` orthonormal) one has, for any weights :math:`x`,
        :math:`\sum_s\|G^s x\|^2/\|G^s\|_F^2 = \sum_j s_j^2\,\|G(\psi_j/\sqrt w)\,x\|^2`
        exactly when all modes are kept: the blocks :math:`s_j G(\psi_j/\sqrt w)` (r rows
        each) are an isometric compression of the stack, truncated at ``ecm_stress_tol``
        (relative energy :math:`1-\epsilon^2`); then the volume row :math:`w/\|w\|`.
        """
        psi, sv = self._pod_s.modes(self.cfg.ecm_stress_tol, scale=1.0 / np.sqrt(np.maximum(self._gn2, 1e-300)))
        k, r = psi.shape[1], self._E.shape[2]
        sig = (psi.T.reshape(k, self.N, 4) / self.sw[None, :, None]) * sv[:k, None, None]
        # G[j, l, q] = w_q (E_q phi_l) . sigma_j,q: a batched (r x 4) @ (4 x k) product per point
        Ew = self._E * self.w[:, None, None]
        G = np.matmul(Ew.transpose(0, 2, 1), sig.transpose(1, 2, 0))            # (N, r, k)
        G = G.transpose(2, 1, 0).reshape(k * r, self.N)
        vol = self.w / np.linalg.norm(self.w) * np.linalg.norm(G) / np.sqrt(len(self._gn2))
        return np.vstack([G, vol[None, :]])

    def _fit_ecm(self) -> Cubature:
        """NNOMP on the compressed matrix (warm-started from the current rule), its tolerance
        tightened until the uncompressed training criterion (:meth:`cubature_error`) holds."""
        G = self._ecm_matrix()
        previous = getattr(self, "ecm", None)
        tol = self.cfg.ecm_tol
        for _ in range(8):
            c = nnomp(G, tol, initial=None if previous is None else previous.points)
            err = self._stacked_error(c)
            if err <= self.cfg.ecm_tol:
                break
            tol *= 0.7 * self.cfg.ecm_tol / err
            previous = c
        c.training_error = err
        return c

    def _stacked_error(self, c: Cubature) -> float:
        r"""The ``stacked`` error of :meth:`cubature_error` for the rule ``c``, all training snapshots.

        :math:`G^s x = \sum_q x_q w_q E_q^T\sigma^s_q`: one (m, 4N) @ (4N, r) product per
        weight vector :math:`x` (the exact integral, :math:`x = 1`, and the rule).
        """
        S = self.training.stress.reshape(len(self.training), -1)
        Ew = self._E * self.w[:, None, None]
        exact = S @ Ew.reshape(4 * self.N, -1)
        approx = S.reshape(len(S), self.N, 4)[:, c.points].reshape(len(S), -1) @ \
            (Ew[c.points] * c.weights[:, None, None]).reshape(4 * len(c.points), -1)
        n2 = np.maximum(self._gn2, 1e-300)
        return float(np.sqrt((((approx - exact) ** 2).sum(axis=1) / n2).sum() / ((exact ** 2).sum(axis=1) / n2).sum()))

    def cubature_error(self, stresses: np.ndarray | None = None) -> dict[str, float]:
        r"""Errors of the reduced internal forces over stress snapshots (default: the training set).

        With :math:`g^s = G^s 1` (exact) and :math:`\tilde g^s = G^s_{:\mathcal Q}\omega`,
        ``stacked`` is :math:`\big(\sum_s \|\tilde g^s - g^s\|^2/\|G^s\|_F^2\big)^{1/2} /
        \big(\sum_s \|g^s\|^2/\|G^s\|_F^2\big)^{1/2}` (the criterion the ECM is fitted to, on
        the uncompressed blocks) and ``max_snapshot`` is :math:`\max_s \|\tilde g^s - g^s\| /
        \|G^s\|_F`, the worst single snapshot.
        """
        stresses = self.training.stress if stresses is None else stresses
        E = (self.B @ self.modes).reshape(self.N, 4, -1)
        Q = self.ecm.points
        num = den = worst = 0.0
        for sigma in stresses:
            Gs = np.einsum("qir,qi,q->rq", E, sigma, self.w)
            n = np.linalg.norm(Gs)
            if n > 0:
                e = np.linalg.norm(Gs[:, Q] @ self.ecm.weights - Gs.sum(axis=1)) / n
                num += e ** 2
                den += (np.linalg.norm(Gs.sum(axis=1)) / n) ** 2
                worst = max(worst, float(e))
        return {"stacked": float(np.sqrt(num / den)), "max_snapshot": worst}

    # ------------------------------------------------------------------ online
    def _temperature(self, load: ThermalLoad, lam: float) -> np.ndarray:
        from simulations.blade.loading import hot_spot_values

        c = self.hf_cfg
        return hot_spot_values(self.x_Q, c.T0, load.A, load.x_h, c.hot_spot_width, lam)

    def reduced_step(self, a: np.ndarray, state: InternalVariables, T: np.ndarray, lam: float,
                     dt: float) -> tuple[np.ndarray, InternalVariables, int, np.ndarray]:
        """Reduced Newton for one step from ``a`` (module docstring); returns a, the state,
        the iterations and the stress (|Q|, 4) at the reduced points."""
        a = a.copy()
        fext = lam * self.f1
        E, om = self.E_Q, self.omega
        Ef = E.reshape(-1, E.shape[2])                     # (4|Q|, r)
        scale = np.linalg.norm(fext)
        for it in range(self.cfg.newton_max_it + 1):
            eps = (Ef @ a).reshape(-1, 4)
            res = return_mapping(self.material, eps, T, dt, state)
            fint = Ef.T @ (res.stress * om[:, None]).ravel()
            R = fint - fext
            scale = max(scale, np.linalg.norm(fint), 1e-300)      # the largest seen in this step
            if np.linalg.norm(R) <= self.cfg.newton_rtol * scale:
                return a, res.state, it, res.stress
            if it == self.cfg.newton_max_it:
                break
            CE = np.matmul(res.tangent * om[:, None, None], E).reshape(-1, E.shape[2])
            a -= np.linalg.solve(Ef.T @ CE, R)
        raise RuntimeError(f"reduced Newton: no convergence in {self.cfg.newton_max_it} iterations "
                           f"(|R| = {np.linalg.norm(R):.3e}, scale {scale:.3e})")

    def indicators(self, stress_Q: np.ndarray, p_Q: np.ndarray) -> tuple[float, float]:
        r"""(:math:`\eta_\sigma`, :math:`\eta_p`): Gappy residuals of :math:`\sqrt w\,\sigma` and
        :math:`p` at the reduced points (module docstring); cost independent of N."""
        eta_s = self.gappy_s.residual((stress_Q * self.sw_Q[:, None]).ravel())
        return eta_s, self.gappy_p.residual(p_Q, self.cfg.p_floor)

    def _full_state(self, state_Q: InternalVariables, shadow: InternalVariables | None) -> InternalVariables:
        """HF internal variables for an enrichment step (``shadow`` or Gappy reconstruction)."""
        if shadow is not None:
            return shadow.copy()
        eps_p = self.gappy_e.reconstruct(state_Q.eps_p.ravel()).reshape(self.N, 4)
        p = np.maximum(self.gappy_p.reconstruct(state_Q.p), 0.0)
        return InternalVariables(eps_p, (2.0 / 3.0) * self.material.C * eps_p, p)

    def run(self, load: ThermalLoad, steps: int | None = None, progress: bool = False) -> ROMRun:
        """The online phase over the cycle for ``load`` (with enrichment if ``cfg.enrich``).

        ``online_seconds`` is the wall time of the whole loop (reduced steps, indicators and
        enrichments with their HF steps and rebuilds); ``enrichment_seconds`` the part spent
        in enrichments. Enrichment changes this object (modes, ECM, Gappy data, training
        set): a later ``run`` starts from the enriched model (an adaptive online phase);
        use :meth:`copy` for independent runs.
        """
        from tqdm import tqdm

        if self.cfg.indicator not in ("stress", "p"):
            raise ValueError(f"indicator must be 'stress' or 'p', not {self.cfg.indicator!r}")
        cycle = self.hf_cfg.cycle
        times = cycle.times()[:steps]
        shadow_mode = self.cfg.enrichment_state == "shadow"
        if self.cfg.enrichment_state not in ("gappy", "shadow"):
            raise ValueError(f"enrichment_state must be 'gappy' or 'shadow', not {self.cfg.enrichment_state!r}")
        hf = None
        a = np.zeros(self.modes.shape[1])
        state = InternalVariables.zeros(len(self.ecm.points))
        shadow = InternalVariables.zeros(self.N) if shadow_mode else None
        p_bases = [self.gappy_p.basis]
        records: list[StepRecord] = []
        t_prev = 0.0
        t_enrich = 0.0
        t_start = time.perf_counter()
        for n, t in enumerate(tqdm(times, desc=f"ROM {load.label()}", disable=not progress, unit="step")):
            dt, lam = t - t_prev, cycle.factor(t)
            T = self._temperature(load, lam)
            a_new, state_new, its, stress_Q = self.reduced_step(a, state, T, lam, dt)
            eta_s, eta_p = self.indicators(stress_Q, state_new.p)
            eta = eta_s if self.cfg.indicator == "stress" else eta_p
            enriched = bool(self.cfg.enrich and eta > self.cfg.indicator_tol)
            if enriched:
                t0 = time.perf_counter()
                if hf is None:
                    hf = self.make_hf(load)
                s = hf.solver
                s.u.dat.data[:] = (self.modes @ a).reshape(s.u.dat.data_ro.shape)
                s.set_internal_variables(self._full_state(state, shadow))
                s.t = t_prev
                hf.lam.assign(lam)
                s.step(dt)
                u_hf = np.array(s.u.dat.data_ro).ravel()
                full = s.internal_variables()
                self.training.append(u_hf, full.p, np.array(s.stress_q.dat.data_ro), full.eps_p)
                self.modes, _ = gram_schmidt_append(self.modes, u_hf)
                self.rebuild()
                a_new = self.modes.T @ u_hf
                state_new = full.take(self.ecm.points)
                if shadow_mode:
                    shadow = full
                p_bases.append(self.gappy_p.basis)
                t_enrich += time.perf_counter() - t0
            elif shadow_mode:
                eps = (self.B @ (self.modes @ a_new)).reshape(self.N, 4)
                T_all = self._temperature_all(load, lam)
                shadow = return_mapping(self.material, eps, T_all, dt, shadow, tangent=False).state
            a, state, t_prev = a_new, state_new, t
            records.append(StepRecord(n, float(t), eta, eta_s, eta_p, enriched, its, self.modes.shape[1],
                                      len(self.ecm.points), a.copy(), self.gappy_p.fit(state.p), len(p_bases) - 1))
        online = time.perf_counter() - t_start
        return ROMRun(load, records, online, t_enrich, self.modes, p_bases)

    def _temperature_all(self, load: ThermalLoad, lam: float) -> np.ndarray:
        from simulations.blade.loading import hot_spot_values

        c = self.hf_cfg
        return hot_spot_values(self.xq, c.T0, load.A, load.x_h, c.hot_spot_width, lam)

    def copy(self) -> "BladeROM":
        """An independent copy (enrichment changes the modes, the ECM and the training set)."""
        new = object.__new__(BladeROM)
        new.__dict__.update(self.__dict__)
        new.cfg = replace(self.cfg)
        new.training = self.training.copy()
        new.offline_seconds = dict(self.offline_seconds)
        for name in ("_pod_s", "_pod_p", "_pod_e"):
            setattr(new, name, getattr(self, name).copy())
        return new
