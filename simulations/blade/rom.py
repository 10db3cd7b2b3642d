r"""Hyper-reduced model of the blade with an error indicator and enrichment by HF steps.

After Casenave, Akkari et al. (MCA 2019, 24(2) 41).

**Offline.** HF snapshots :math:`u^s` (dof vectors) and :math:`\sigma^s, \varepsilon_p^s,
p^s` (at all :math:`N` quadrature points) from a few training thermal loads, every step of
the cycle. The reduced basis :math:`\Phi` (n_dofs, r) is the POD of the :math:`u^s` at
``pod_tol`` (:mod:`~um2n_simulations.blade.pod`). The reduced internal forces are integrated
by an ECM rule, points :math:`\mathcal Q` and weights :math:`\omega`, fitted to the training
stresses to ``ecm_tol`` (:mod:`~um2n_simulations.blade.ecm`). Gappy-POD bases
(:mod:`~um2n_simulations.blade.gappy`) at ``gappy_tol`` of :math:`p` (:math:`\Psi_p`,
:math:`N\times r_p`), of :math:`\varepsilon_p` (:math:`\Psi_e`, :math:`4N\times r_e`) and of
the weighted stresses :math:`s = \sqrt w\,\sigma` (:math:`\Psi_\sigma`), capped at
:math:`|\mathcal Q| - 1` (resp. :math:`4|\mathcal Q| - 1`) modes so that their restrictions
to the reduced points are overdetermined.

**Online** (one thermal load, the cycle's steps). Unknown :math:`u = \Phi a`; the law is
evaluated at the reduced points only, whose internal variables (the only ones kept) are
committed at each step. Reduced Newton, with :math:`E_q = B_q\Phi` (4×r, precomputed):

.. math::

    R(a) = \sum_{q\in\mathcal Q}\omega_q w_q\,E_q^T\sigma_q(E_q a) - \lambda(t)\,\Phi^T F_{ext}^{(1)},
    \qquad K(a) = \sum_{q\in\mathcal Q}\omega_q w_q\,E_q^T\,\mathbb C_q\,E_q,

:math:`F_{ext}^{(1)}` the centrifugal force at :math:`\lambda = 1` (linear in :math:`\lambda`,
independent of the thermal load), the temperatures from the analytic hot spot at the reduced
points. Converged when :math:`\|R\| \le` ``newton_rtol`` times
:math:`\max(\|\lambda\Phi^TF^{(1)}_{ext}\|, \|\Phi^TF_{int}\|)`, the largest over the step's
iterates (an unloaded step has both near zero at convergence). Cost per iteration
:math:`O(|\mathcal Q|\,r^2 + r^3)`, independent of the HF mesh.

**Error indicators**, each of cost independent of :math:`N`; ``indicator`` chooses the one
that decides enrichment.

* ``"hierarchical"``: the estimate :math:`\zeta^n` of :math:`\|u^n_{ROM} - u^n_{HF}\|_{L^2}`
  by one Newton correction in a richer POD space (POD at ``estimator_pod_tol``, its own ECM
  rule; :mod:`~um2n_simulations.blade.estimator`), relative to the largest reduced
  displacement so far, :math:`\eta_Z^n = \zeta^n/\max_{k\le n}\|u^k_{ROM}\|_{L^2}`: a relative
  displacement error, so its tolerance is the target error itself.
* ``"stress"``: the Gappy misfit of the weighted stress at the reduced points relative to the
  largest one so far,

  .. math::

      \rho^n = \min_c \|\Psi_{\sigma,\mathcal Q}\, c - s^n_{\mathcal Q}\|_2, \qquad
      \eta_\sigma^n = \rho^n / \max_{k \le n}\|s^k_{\mathcal Q}\|_2 .

  A stress pattern the training set does not contain stays at the reduced points (locked in
  with the plastic strain) while the load comes off, so :math:`\rho^n` does not fall with
  the load; the scale, the largest stress so far, does not fall either, so the indicator
  does not rise merely because the load is removed. :math:`\rho^n/\|s^n_{\mathcal Q}\|_2`
  (over the current norm) is recorded too (``indicator_stress_current``).
* ``"p"``: the same for the cumulated plastic strain, relative to the current
  :math:`\|p_{\mathcal Q}\|` (0 while :math:`\|p_{\mathcal Q}\|_\infty \le` ``p_floor``).

The tolerance of the Gappy indicators can be calibrated from the training data alone by
leave-one-load-out reduced models (:func:`calibrate_indicator_tol`).

**Enrichment** when the indicator exceeds ``indicator_tol`` (and ``enrich``): the reduced step
is discarded and one HF step is solved from :math:`t_n`, from the displacement
:math:`\Phi a_n` and internal variables reconstructed by Gappy-POD from the reduced points'
values, :math:`\varepsilon_p \approx \Psi_e \arg\min_c\|\Psi_{e,\mathcal Q} c -
\varepsilon_{p,\mathcal Q}\|`, :math:`p` likewise, and :math:`X = \tfrac23 C\,\varepsilon_p`
(exact for Prager hardening from a virgin state). The HF displacement
:math:`u^{HF}_{n+1}` enriches :math:`\Phi` by Gram-Schmidt (skipped when already in its
span); its stress, :math:`p` and :math:`\varepsilon_p` join the training sets; the ECM and
the Gappy bases are rebuilt, extending the offline data by the new mode's and snapshot's
contributions (the ECM fit warm-started from the previous rule, the Gappy bases kept as
combinations of the snapshots with only their rows at the reduced points formed). The
reduced state restarts from the HF step, :math:`a = \Phi^T u^{HF}_{n+1}` and the HF internal
variables at the new reduced points. The enriched data are kept: a later online run
(another load) starts from them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from um2n.errors import ConvergenceError
from um2n.progress import progress as progress_lines
from um2n_simulations.blade.ecm import Cubature, ECMFit
from um2n_simulations.blade.estimator import HierarchicalEstimator
from um2n_simulations.blade.gappy import Gappy
from um2n_simulations.blade.material import InternalVariables, Material, return_mapping
from um2n_simulations.blade.pod import GramPOD, GrowableRows, gram_schmidt_append, pod

INDICATORS = ("hierarchical", "stress", "p")


@dataclass
class ROMConfig:
    """Settings of the reduced model (module docstring); the defaults are the blade study's."""

    pod_tol: float = 1e-4             # epsilon: modes up to relative energy 1 - eps^2
    ecm_tol: float = 1e-3             # relative error of the cubature on the training internal forces
    ecm_stress_tol: float = 1e-4      # POD tolerance compressing the training stresses for the ECM fit
    ecm_batch: int = 8                # points added per NNOMP iteration (nnomp's batch)
    gappy_tol: float = 1e-3           # energy tolerance of the p, eps_p and stress Gappy bases
    indicator: str = "hierarchical"   # one of INDICATORS (module docstring)
    indicator_tol: float = 0.07       # enrichment when the indicator exceeds this (the blade study replaces
    #                                   it: by its target error for "hierarchical", by a calibration if asked)
    p_floor: float = 1e-7             # p indicator 0 while max p at the reduced points <= this
    estimator_pod_tol: float = 1e-6   # POD tolerance of the hierarchical estimator's richer basis
    enrich: bool = True
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
        self._rows = {k: GrowableRows(v) for k, v in zip(self.FIELDS, (u, p, stress, eps_p))}

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
    indicator_stress_current: float = float("nan")   # the stress misfit over the current stress norm
    estimate_hierarchical: float = float("nan")      # zeta: estimated |u_rom - u_hf|_L2 (nan: no estimator)
    indicator_hierarchical: float = float("nan")     # zeta over the largest |u_rom|_L2 so far in the cycle


@dataclass
class ROMRun:
    """What one online run returns (the reconstruction data are kept out of the timed loop)."""

    load: ThermalLoad
    records: list[StepRecord]
    online_seconds: float
    enrichment_seconds: float
    modes: np.ndarray                         # the final displacement basis (earlier ones are its first columns)
    p_bases: list[Gappy]                      # the Gappy bases of p in use at each step (by StepRecord.p_basis)
    enrichment_parts: dict = field(default_factory=dict)   # enrichment_seconds by part (s): hf_step, sync
    #: (training set, PODs, ECM matrix), ecm (the NNOMP fit and its check), gappy, other

    def displacements(self) -> np.ndarray:
        """(steps, n_dofs) the ROM displacements :math:`\\Phi a` of every step."""
        return np.stack([self.modes[:, :len(r.a)] @ r.a for r in self.records])

    def plastic_strains(self) -> np.ndarray:
        """(steps, N) the Gappy reconstruction :math:`\\Psi_p c` of p at every step."""
        return np.stack([self.p_bases[r.p_basis].basis @ r.p_coeff for r in self.records])

    @property
    def enrichments(self) -> int:
        return sum(r.enriched for r in self.records)


class BladeROM:
    r"""The hyper-reduced blade model (module docstring): offline data and the online solver.

    Parameters
    ----------
    hf : a :class:`~um2n_simulations.blade.blade.BladeHF` on the HF mesh (its solver provides the
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
        self.ecm_fit = ECMFit(self.B, self.w)
        self.rebuild()
        self.estimator: HierarchicalEstimator | None = None
        if cfg.indicator == "hierarchical":
            t0 = time.perf_counter()
            fine = BladeROM(hf, training, replace(cfg, pod_tol=cfg.estimator_pod_tol, enrich=False,
                                                  indicator="stress"))
            self.estimator = HierarchicalEstimator(fine, s.mass_matrix(), self.modes)
            self.offline_seconds["estimator"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ offline
    def rebuild(self) -> None:
        """ECM and Gappy data for the current modes and training set."""
        t0 = time.perf_counter()
        self._sync_pods()
        self.ecm_fit.sync(self.modes, self.training.stress, self._pod_s, self.cfg.ecm_stress_tol)
        ts = time.perf_counter()
        self.ecm: Cubature = self.ecm_fit.fit(self.training.stress, self.cfg.ecm_tol, self.cfg.ecm_batch)
        t1 = time.perf_counter()
        Q = self.ecm.points
        self.E_Q = self.ecm_fit.E[Q]                      # (|Q|, 4, r)
        self.omega = self.ecm.weights * self.w[Q]         # physical weights of the reduced points
        self.x_Q = self.xq[Q]
        self.sw_Q = self.sw[Q]
        self.f1 = self.modes.T @ self.f_ext1
        rows = (4 * Q[:, None] + np.arange(4)).ravel()
        # Gappy bases kept factored (Psi = X^T W): only their rows at the reduced points are formed
        tol = self.cfg.gappy_tol
        self.gappy_p = Gappy.from_snapshots(self._pod_p.X, self._pod_p.coefficients(tol, len(Q) - 1)[0], Q)
        self.gappy_e = Gappy.from_snapshots(self._pod_e.X, self._pod_e.coefficients(tol, 4 * len(Q) - 1)[0], rows)
        self.gappy_s = Gappy.from_snapshots(self._pod_s.X, self._pod_s.coefficients(tol, 4 * len(Q) - 1)[0],
                                            rows)            # of sqrt(w) sigma
        t2 = time.perf_counter()
        self.last_rebuild = {"sync": ts - t0, "ecm": t1 - ts, "gappy": t2 - t1}
        for k, v in self.last_rebuild.items():
            self.offline_seconds[k] = self.offline_seconds.get(k, 0.0) + v

    def _sync_pods(self) -> None:
        r"""Bring the snapshot PODs (of :math:`\sqrt w\,\sigma`, :math:`p`, :math:`\varepsilon_p`)
        up to the training set: only the new snapshots are added."""
        tr = self.training
        m = len(tr)
        if not hasattr(self, "_pod_s"):
            self._pod_s = GramPOD((tr.stress * self.sw[None, :, None]).reshape(m, -1).T)
            self._pod_p = GramPOD(tr.p.T)
            self._pod_e = GramPOD(tr.eps_p.reshape(m, -1).T)
        for s in range(len(self._pod_p.X), m):
            self._pod_s.append((tr.stress[s] * self.sw[:, None]).ravel())
            self._pod_p.append(tr.p[s])
            self._pod_e.append(tr.eps_p[s].ravel())

    def cubature_error(self, stresses: np.ndarray | None = None) -> dict[str, float]:
        """Errors of the reduced internal forces over stress snapshots (default: the training
        set), :meth:`~um2n_simulations.blade.ecm.ECMFit.errors`."""
        return self.ecm_fit.errors(self.modes, self.training.stress if stresses is None else stresses)

    # ------------------------------------------------------------------ online
    def _temperature(self, load: ThermalLoad, lam: float, x: np.ndarray | None = None) -> np.ndarray:
        """Temperatures at the reduced points (or at the points ``x``)."""
        from um2n_simulations.blade.loading import hot_spot_values

        c = self.hf_cfg
        return hot_spot_values(self.x_Q if x is None else x, c.T0, load.A, load.x_h, c.hot_spot_width, lam)

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
        raise ConvergenceError(f"reduced Newton: no convergence in {self.cfg.newton_max_it} iterations "
                               f"(|R| = {np.linalg.norm(R):.3e}, scale {scale:.3e})")

    def indicators(self, stress_Q: np.ndarray, p_Q: np.ndarray,
                   stress_scale: float = 0.0) -> tuple[float, float, float, float]:
        r"""(:math:`\eta_\sigma`, :math:`\eta_p`, :math:`\|s_{\mathcal Q}\|`,
        :math:`\rho/\|s_{\mathcal Q}\|`): Gappy residuals of :math:`\sqrt w\,\sigma` and :math:`p`
        at the reduced points (module docstring); ``stress_scale`` is the largest
        :math:`\|s_{\mathcal Q}\|` of the earlier steps of the cycle."""
        rho, ns = self.gappy_s.residual_norms((stress_Q * self.sw_Q[:, None]).ravel())
        current = rho / ns if ns > 0 else 0.0
        scale = max(ns, stress_scale)
        eta_s = rho / scale if scale > 0 else 0.0
        return eta_s, self.gappy_p.residual(p_Q, self.cfg.p_floor), ns, current

    def _full_state(self, state_Q: InternalVariables) -> InternalVariables:
        """HF internal variables for an enrichment step: Gappy reconstruction (module docstring)."""
        eps_p = self.gappy_e.reconstruct(state_Q.eps_p.ravel()).reshape(self.N, 4)
        p = np.maximum(self.gappy_p.reconstruct(state_Q.p), 0.0)
        return InternalVariables(eps_p, (2.0 / 3.0) * self.material.C * eps_p, p)

    def _enrich(self, hf, a: np.ndarray, state: InternalVariables, t_prev: float, lam: float,
                dt: float) -> tuple[InternalVariables, np.ndarray, float]:
        """One HF step from the reduced state at ``t_prev`` into the training set and the basis,
        and the rebuild; returns the HF step's internal variables, its displacement and its wall
        time."""
        s = hf.solver
        s.u.dat.data[:] = (self.modes @ a).reshape(s.u.dat.data_ro.shape)
        s.set_internal_variables(self._full_state(state))
        s.t = t_prev
        hf.lam.assign(lam)
        t1 = time.perf_counter()
        s.step(dt)
        t_step = time.perf_counter() - t1
        u_hf = np.array(s.u.dat.data_ro).ravel()
        full = s.internal_variables()
        self.training.append(u_hf, full.p, np.array(s.stress_q.dat.data_ro), full.eps_p)
        self.modes, _ = gram_schmidt_append(self.modes, u_hf)
        self.rebuild()
        return full, u_hf, t_step

    def run(self, load: ThermalLoad, steps: int | None = None, progress: bool = False) -> ROMRun:
        """The online phase over the cycle for ``load`` (with enrichment if ``cfg.enrich``).

        ``online_seconds`` is the wall time of the whole loop (reduced steps, indicators and
        enrichments with their HF steps and rebuilds); ``enrichment_seconds`` the part spent
        in enrichments. Enrichment changes this object (modes, ECM, Gappy data, training
        set): a later ``run`` starts from the enriched model (an adaptive online phase);
        use :meth:`copy` for independent runs.
        """
        if self.cfg.indicator not in INDICATORS:
            raise ValueError(f"indicator must be one of {', '.join(map(repr, INDICATORS))}, not {self.cfg.indicator!r}")
        est = self.estimator
        if self.cfg.indicator == "hierarchical" and est is None:
            raise ValueError("indicator 'hierarchical' needs the estimator, built when the ROM is constructed "
                             "with that indicator")
        cycle = self.hf_cfg.cycle
        times = cycle.times()[:steps]
        hf = None
        a = np.zeros(self.modes.shape[1])
        state = InternalVariables.zeros(len(self.ecm.points))
        p_bases = [self.gappy_p]
        parts = {"hf_step": 0.0, "sync": 0.0, "ecm": 0.0, "gappy": 0.0, "other": 0.0}
        records: list[StepRecord] = []
        t_prev = 0.0
        t_enrich = 0.0
        s_max = 0.0                          # largest weighted stress norm at the reduced points so far
        u_max = 0.0                          # largest |u_rom|_L2 so far (hierarchical indicator)
        state2 = InternalVariables.zeros(len(est.points)) if est is not None else None
        t_start = time.perf_counter()
        for n, t in enumerate(progress_lines(times, f"ROM {load.label()}", enabled=progress, unit="step")):
            dt, lam = t - t_prev, cycle.factor(t)
            T = self._temperature(load, lam)
            a_new, state_new, its, stress_Q = self.reduced_step(a, state, T, lam, dt)
            eta_s, eta_p, ns, eta_cur = self.indicators(stress_Q, state_new.p, s_max)
            s_max = max(s_max, ns)
            zeta = eta_z = float("nan")
            if est is not None:
                zeta, nu, state2_new = est.estimate(a_new, self._temperature(load, lam, est.x), lam, dt, state2)
                scale = max(u_max, nu)
                eta_z = zeta / scale if scale > 0 else (0.0 if zeta == 0 else float("inf"))
            eta = {"stress": eta_s, "p": eta_p, "hierarchical": eta_z}[self.cfg.indicator]
            enriched = bool(self.cfg.enrich and eta > self.cfg.indicator_tol)
            if enriched:
                t0 = time.perf_counter()
                if hf is None:
                    hf = self.make_hf(load)
                full, u_hf, t_step = self._enrich(hf, a, state, t_prev, lam, dt)
                parts["hf_step"] += t_step
                a_new = self.modes.T @ u_hf
                state_new = full.take(self.ecm.points)
                if est is not None:
                    est.sync(self.modes)
                    state2_new = full.take(est.points)
                p_bases.append(self.gappy_p)
                t_enrich += time.perf_counter() - t0
                for k, v in self.last_rebuild.items():
                    parts[k] += v
            a, state, t_prev = a_new, state_new, t
            if est is not None:
                state2 = state2_new
                u_max = max(u_max, nu if not enriched else est.norm(a))
            records.append(StepRecord(n, float(t), eta, eta_s, eta_p, enriched, its, self.modes.shape[1],
                                      len(self.ecm.points), a.copy(), self.gappy_p.fit(state.p), len(p_bases) - 1,
                                      eta_cur, zeta, eta_z))
        online = time.perf_counter() - t_start
        parts["other"] = t_enrich - sum(parts.values())
        return ROMRun(load, records, online, t_enrich, self.modes, p_bases, parts)

    def copy(self) -> "BladeROM":
        """An independent copy (enrichment changes the modes, the ECM, the training set and the
        hierarchical estimator's data)."""
        new = object.__new__(BladeROM)
        new.__dict__.update(self.__dict__)
        new.cfg = replace(self.cfg)
        new.training = self.training.copy()
        new.offline_seconds = dict(self.offline_seconds)
        for name in ("_pod_s", "_pod_p", "_pod_e", "ecm_fit"):
            setattr(new, name, getattr(self, name).copy())
        if self.estimator is not None:
            new.estimator = self.estimator.copy()
        return new


def calibrate_indicator_tol(hf, training: TrainingSet, loads: list[ThermalLoad], cfg: ROMConfig, M,
                            target_error: float) -> dict:
    r"""The tolerance of a Gappy indicator (``cfg.indicator``) from leave-one-load-out ROMs.

    ``training`` holds the cycles of ``loads``, in order, one snapshot per step of
    ``hf.cfg.cycle``. For each training load :math:`k`: a ROM (``cfg``, no enrichment) built
    on the snapshots of the other loads is run over the cycle of load :math:`k`, and its
    per-step error :math:`\hat e_u^n = \|u^n_{ROM} - u^n_{HF}\|_M / \max_{j\le n}\|u^j_{HF}\|_M`
    (``M`` the HF mass matrix) is measured against load :math:`k`'s own snapshots. The
    tolerance is

    .. math:: \tau = \min\{\eta^n : \hat e_u^n > e_{target}\}

    over all those steps: the largest value that would have flagged every step whose error
    exceeded ``target_error``; ``cfg.indicator_tol`` if no step exceeds it. Returns the
    tolerance and the per-load data.
    """
    n = len(hf.cfg.cycle.times())
    etas, errs, per_load = [], [], []
    for k, L in enumerate(loads):
        keep = np.array([i for i in range(len(training)) if i // n != k])
        sub = TrainingSet(training.u[keep], training.p[keep], training.stress[keep], training.eps_p[keep])
        run = BladeROM(hf, sub, replace(cfg, enrich=False)).run(L)
        U, Ur = training.u[k * n:(k + 1) * n], run.displacements()
        D = Ur - U
        du = np.sqrt(np.einsum("si,si->s", D, (M @ D.T).T))
        nu = np.sqrt(np.einsum("si,si->s", U, (M @ U.T).T))
        e = du / np.maximum.accumulate(nu)
        eta = np.array([r.indicator for r in run.records])
        etas.append(eta)
        errs.append(e)
        per_load.append({"y_h": L.x_h[1], "A": L.A, "error_u_cycle": float(np.sqrt((du ** 2).sum() / (nu ** 2).sum())),
                         "error_u_cyclemax_max": float(e.max()), "indicator_min": float(eta.min()),
                         "indicator_max": float(eta.max())})
    eta, e = np.concatenate(etas), np.concatenate(errs)
    over = e > target_error
    tol = float(eta[over].min()) if over.any() else float(cfg.indicator_tol)
    from scipy.stats import spearmanr

    return {"indicator_tol": tol, "target_error": target_error, "steps": int(len(e)),
            "steps_over_target": int(over.sum()),
            "steps_over_tol_under_target": int(((eta > tol) & ~over).sum()),
            "spearman_indicator_vs_error_u_cyclemax":
                float(spearmanr(eta, e).statistic) if len(e) > 2 else float("nan"),
            "loads": per_load}
