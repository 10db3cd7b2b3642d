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
\omega_q G_{kq}`, :math:`\omega > 0`, :math:`|\mathcal Q| \ll N`. The rows of :math:`G`
(``r`` per training snapshot, each block scaled to unit Frobenius norm so that unloaded
snapshots with residual stresses count as much as loaded ones, plus the row :math:`w/\|w\|`
so that the volume is integrated) are fitted by **non-negative orthogonal matching
pursuit**: with :math:`b = G\,1` and residual :math:`\rho = b - G_{:\mathcal Q}\omega`,
repeat { add :math:`\arg\max_{q\notin\mathcal Q} G_{:q}^T\rho/\|G_{:q}\|` (positive
correlations only); :math:`\omega = \arg\min_{\omega\ge0}\|G_{:\mathcal Q}\omega - b\|`
(NNLS); drop points with :math:`\omega_q = 0` } until :math:`\|\rho\| \le \tau\|b\|`.
The weights multiply the per-point contributions, so the physical weight of a reduced
point is :math:`\omega_q w_q`.

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

*Error indicator* (cost :math:`O(|\mathcal Q|\,r_p^2)`): with :math:`p_{\mathcal Q}` the
plastic strain computed at the reduced points,

.. math::

    c = \arg\min_c \|\Psi_{p,\mathcal Q}\, c - p_{\mathcal Q}\|_2, \qquad
    \eta = \frac{\|\Psi_{p,\mathcal Q}\,c - p_{\mathcal Q}\|_2}{\|p_{\mathcal Q}\|_2}

(:math:`\eta = 0` while :math:`\|p_{\mathcal Q}\|_\infty \le` ``p_floor``, i.e. before any
plastic flow): the law at the reduced points produced a plastic field the Gappy basis
cannot represent, a sign that the displacement basis is leaving its training range.

*Enrichment* when :math:`\eta >` ``indicator_tol``: the reduced step is discarded and one
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
Gappy bases are rebuilt; the reduced state restarts from the HF step,
:math:`a = \Phi^T u^{HF}_{n+1}` and the HF internal variables at the new reduced points.
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


class GramPOD:
    r"""POD by the method of snapshots with an incrementally updated Gram matrix.

    For snapshots :math:`X = [x_1 \dots x_m]` (n, m), :math:`C = X^TX = V\Lambda V^T` and the
    modes are :math:`\phi_j = X v_j/\sqrt{\lambda_j}` (the left singular vectors,
    :math:`\sigma_j = \sqrt{\lambda_j}`). Appending a snapshot costs one new row of
    :math:`C`, :math:`O(nm)`, instead of a new SVD. Accurate for the energy criterion of
    :func:`pod` down to :math:`\sigma_j/\sigma_1 \approx 10^{-7}` (the Gram matrix squares
    the condition number), ample for the tolerances used here.
    """

    def __init__(self, X: np.ndarray):
        self.X = np.ascontiguousarray(X.T)          # (m, n): snapshots as rows
        self.C = self.X @ self.X.T

    def append(self, x: np.ndarray) -> None:
        c = self.X @ x
        self.X = np.vstack([self.X, x[None]])
        self.C = np.block([[self.C, c[:, None]], [c[None, :], np.array([[x @ x]])]])

    def modes(self, tol: float, max_modes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Modes (n, r) and singular values, truncated as in :func:`pod`."""
        lam, V = np.linalg.eigh(self.C)
        lam, V = np.maximum(lam[::-1], 0.0), V[:, ::-1]
        s = np.sqrt(lam)
        energy = np.cumsum(lam)
        if energy[-1] == 0:
            return np.zeros((self.X.shape[1], 0)), s
        r = min(int(np.searchsorted(energy, (1.0 - tol ** 2) * energy[-1] * (1 - 1e-14)) + 1), len(s))
        if max_modes is not None:
            r = min(r, max_modes)
        r = min(r, int((s > 1e-7 * s[0]).sum()))
        return (self.X.T @ (V[:, :r] / s[:r])), s


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
    selected columns, whose zero-weight points leave the set, and the QR is recomputed.
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

    sel: list[int] = [] if initial is None else [int(q) for q in initial if usable[q]]
    w = np.zeros(0)
    if sel:
        sel, w = nnls(sel)
    Qf, Rf = np.linalg.qr(G[:, sel]) if sel else (np.zeros((rows, 0)), np.zeros((0, 0)))
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
        else:
            w = -np.ones(len(sel))            # dependent column: let NNLS decide
        if w.min() <= 0:
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
    gappy_tol: float = 1e-3           # energy tolerance of the p and eps_p Gappy bases
    indicator_tol: float = 0.05       # enrichment when the indicator exceeds this
    p_floor: float = 1e-7             # indicator 0 while max p at the reduced points <= this
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


@dataclass
class TrainingSet:
    """HF snapshots: u (m, n_dofs), p (m, N), stress and eps_p (m, N, 4)."""

    u: np.ndarray
    p: np.ndarray
    stress: np.ndarray
    eps_p: np.ndarray

    @classmethod
    def from_runs(cls, snapshot_dicts: list[dict]) -> "TrainingSet":
        cat = {k: np.concatenate([np.asarray(d[k]) for d in snapshot_dicts]) for k in ("u", "p", "stress", "eps_p")}
        return cls(**cat)

    def append(self, u: np.ndarray, p: np.ndarray, stress: np.ndarray, eps_p: np.ndarray) -> None:
        self.u = np.vstack([self.u, u[None]])
        self.p = np.vstack([self.p, p[None]])
        self.stress = np.concatenate([self.stress, stress[None]])
        self.eps_p = np.concatenate([self.eps_p, eps_p[None]])

    def __len__(self) -> int:
        return len(self.u)


@dataclass
class StepRecord:
    """One online step: the indicator, whether it enriched, what the reduced state was."""

    step: int
    t: float
    indicator: float
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
        E, G = self._update_ecm_matrix()
        previous = getattr(self, "ecm", None)
        self.ecm = nnomp(G, self.cfg.ecm_tol, initial=None if previous is None else previous.points)
        t1 = time.perf_counter()
        Q = self.ecm.points
        self.E_Q = E[Q]                                   # (|Q|, 4, r)
        self.omega = self.ecm.weights * self.w[Q]         # physical weights of the reduced points
        self.x_Q = self.xq[Q]
        self.f1 = self.modes.T @ self.f_ext1
        self._sync_pods()
        Psi_p, _ = self._pod_p.modes(self.cfg.gappy_tol, max_modes=len(Q) - 1)
        self.gappy_p = Gappy(Psi_p, Q)
        Psi_e, _ = self._pod_e.modes(self.cfg.gappy_tol, max_modes=4 * len(Q) - 1)
        rows = (4 * Q[:, None] + np.arange(4)).ravel()
        self.gappy_e = Gappy(Psi_e, rows)
        self.offline_seconds["ecm"] = self.offline_seconds.get("ecm", 0.0) + t1 - t0
        self.offline_seconds["gappy"] = self.offline_seconds.get("gappy", 0.0) + time.perf_counter() - t1

    def _sync_pods(self) -> None:
        """Bring the snapshot PODs of the normalised stresses, p and eps_p up to the training set."""
        sw = np.sqrt(self.w)[:, None]

        def stress(s):
            v = (self.training.stress[s] * sw).ravel()
            n = np.linalg.norm(v)
            return v / n if n > 0 else v

        m = len(self.training)
        if not hasattr(self, "_pod_s"):
            self._pod_s = GramPOD(np.stack([stress(s) for s in range(m)], axis=1))
            self._pod_p = GramPOD(self.training.p.T)
            self._pod_e = GramPOD(self.training.eps_p.reshape(m, -1).T)
        for s in range(len(self._pod_p.X), m):
            self._pod_s.append(stress(s))
            self._pod_p.append(self.training.p[s])
            self._pod_e.append(self.training.eps_p[s].ravel())

    def _update_ecm_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        r"""The strains of the modes :math:`E` (N, 4, r) and the compressed :math:`G`.

        :math:`G` is linear in the stress, so the stack of the normalised snapshot blocks
        (:func:`ecm_matrix`) is compressed through a POD of the training stresses, each
        normalised to unit :math:`L^2` norm (:math:`\hat\sigma^s = \sigma^s/\|\sigma^s\|_w`,
        :math:`\|\sigma\|_w^2 = \sum_q w_q |\sigma_q|^2`): with
        :math:`\sqrt w\,\hat\sigma^s \approx \sum_j s_j \psi_j v_{js}` (``ecm_stress_tol``),
        the rows are the blocks :math:`s_j\, G(\psi_j/\sqrt w)` (r rows each, :math:`k \ll m`
        blocks) and the volume row; so the fit costs :math:`O(rk)` rows instead of :math:`O(rm)`.
        Only the new mode's strains are computed after an enrichment.
        """
        r = self.modes.shape[1]
        if not hasattr(self, "_E"):
            self._E = np.zeros((self.N, 4, 0))
        r0 = self._E.shape[2]
        if r > r0:
            E_new = (self.B @ self.modes[:, r0:]).reshape(self.N, 4, r - r0)
            self._E = np.concatenate([self._E, E_new], axis=2)
        sw = np.sqrt(self.w)[:, None]
        self._sync_pods()
        psi, sv = self._pod_s.modes(self.cfg.ecm_stress_tol)
        k = psi.shape[1]
        sig = psi.T.reshape(k, self.N, 4) / sw                      # stress modes (unweighted)
        G = np.einsum("qir,kqi,q,k->krq", self._E, sig, self.w, sv[:k]).reshape(k * r, self.N)
        vol = self.w / np.linalg.norm(self.w) * np.linalg.norm(G) / np.sqrt(len(self._pod_s.X))
        return self._E, np.vstack([G, vol[None, :]])

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
                     dt: float) -> tuple[np.ndarray, InternalVariables, int]:
        """Reduced Newton for one step from ``a`` (module docstring); returns a, the state, iterations."""
        a = a.copy()
        fext = lam * self.f1
        E, om = self.E_Q, self.omega
        scale = np.linalg.norm(fext)
        for it in range(self.cfg.newton_max_it + 1):
            eps = np.einsum("qir,r->qi", E, a)
            res = return_mapping(self.material, eps, T, dt, state)
            fint = np.einsum("qir,qi,q->r", E, res.stress, om)
            R = fint - fext
            scale = max(scale, np.linalg.norm(fint), 1e-300)      # the largest seen in this step
            if np.linalg.norm(R) <= self.cfg.newton_rtol * scale:
                return a, res.state, it
            if it == self.cfg.newton_max_it:
                break
            CE = np.einsum("qij,qjr->qir", res.tangent, E)
            K = np.einsum("qis,qir,q->sr", E, CE, om)
            a -= np.linalg.solve(K, R)
        raise RuntimeError(f"reduced Newton: no convergence in {self.cfg.newton_max_it} iterations "
                           f"(|R| = {np.linalg.norm(R):.3e}, scale {scale:.3e})")

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
        enrichments with their rebuilds); ``enrichment_seconds`` the part spent in enrichments.
        """
        from tqdm import tqdm

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
            a_new, state_new, its = self.reduced_step(a, state, T, lam, dt)
            eta = self.gappy_p.residual(state_new.p, self.cfg.p_floor)
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
            records.append(StepRecord(n, float(t), eta, enriched, its, self.modes.shape[1], len(self.ecm.points),
                                      a.copy(), self.gappy_p.fit(state.p), len(p_bases) - 1))
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
        new.training = replace(self.training)
        new.offline_seconds = dict(self.offline_seconds)
        for name in ("_pod_s", "_pod_p", "_pod_e"):
            old = getattr(self, name)
            cp = object.__new__(GramPOD)
            cp.X, cp.C = old.X, old.C
            setattr(new, name, cp)
        return new
