r"""``um2n simulate blade-rom``: the blade ROM and its error indicator against HF, end to end.

1. The HF mesh (``meshes/turbine_blade.geo`` at ``lc``) is r-adapted once by the shipped
   UM2N mover towards the training loads' thermal gradients (:mod:`~um2n_simulations.blade.adapt`).
2. Offline: HF cycles for the training loads (hot spots ``depth`` under the suction side, at
   span positions :math:`y` and intensities :math:`A`), then the reduced model's POD, ECM,
   Gappy and estimator data (:mod:`~um2n_simulations.blade.rom`).
3. Online, for every unseen load in order: the HF cycle (the reference, timed), the ROM
   without enrichment (a fresh copy of the offline ROM) and the ROM with enrichment (one
   adaptive online phase over the unseen loads: enrichments are kept from load to load).

**True errors**, per step :math:`n`, with the mass matrix :math:`M` of the HF space: the
displacement :math:`e_u^n = \|u^n_{ROM} - u^n_{HF}\|_{L^2}/\|u^n_{HF}\|_{L^2}`, the same
relative to the largest displacement so far,
:math:`\hat e_u^n = \|u^n_{ROM} - u^n_{HF}\|_{L^2}/\max_{k\le n}\|u^k_{HF}\|_{L^2}` (at the
end of the cycle :math:`\|u_{HF}\|` falls to the residual displacement and :math:`e_u^n`
grows although :math:`\|u_{ROM} - u_{HF}\|` does not), and the plastic strain
:math:`e_p^n = \|\Psi_p c^n - p^n_{HF}\|_w/\|p^n_{HF}\|_w` (:math:`\|p\|_w^2 = \sum_q w_q p_q^2`,
steps with :math:`p_{HF} = 0` left out); over the cycle
:math:`E_u = (\sum_n \|u^n_{ROM} - u^n_{HF}\|^2 / \sum_n \|u^n_{HF}\|^2)^{1/2}`.

**Speed-up**: the HF wall time of the cycle (Newton steps only) over the ROM's online wall
time (all reduced steps, indicators, and the enrichments with their HF steps and rebuilds).

**Indicator tolerance.** The hierarchical indicator (``rom.indicator = "hierarchical"``)
estimates :math:`\hat e_u^n`, the quantity ``target_error`` bounds, so its tolerance is
``target_error`` itself. For the Gappy indicators (``"stress"``, ``"p"``) with
``calibrate_tol``, it is calibrated on the training data alone by leave-one-load-out ROMs
(:func:`~um2n_simulations.blade.rom.calibrate_indicator_tol`); otherwise
``rom.indicator_tol`` is used as given.

**Correlations.** Spearman's rank correlation of the indicators with the true errors over the
(indicator, error) pairs of all steps of all unseen loads of the runs without enrichment,
and of the loads inside the training range only: for the stress indicator (the unprefixed
keys of ``spearman``; ``former_indicator``: the stress misfit over the current stress norm)
against :math:`e_u^n` and :math:`\hat e_u^n`; for the hierarchical estimate :math:`\zeta^n`
(``spearman.hierarchical``) as :math:`\zeta^n/\|u^n_{ROM}\|` against :math:`e_u^n` and as the
indicator :math:`\zeta^n/\max_{k\le n}\|u^k_{ROM}\|` against :math:`\hat e_u^n`; for the p
indicator against :math:`e_p^n`.

Outputs: :mod:`~um2n_simulations.blade.report`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from um2n.fem.monitors import MonitorConfig
from um2n.fem.study import Case
from um2n.progress import progress
from um2n_simulations.blade.adapt import adapt_mesh
from um2n_simulations.blade.blade import BladeConfig, BladeHF, blade_mesh, suction_side_load
from um2n_simulations.blade.loading import LoadCycle
from um2n_simulations.blade.pod import projection_error
from um2n_simulations.blade.rom import BladeROM, ROMConfig, ThermalLoad, TrainingSet, calibrate_indicator_tol


@dataclass
class BladeROMConfig:
    """Settings of ``um2n simulate blade-rom`` (TOML: top level; tables ``[rom]``, ``[adapt]``)."""

    lc: float = BladeConfig.lc            # HF mesh size (lc_hole = lc / 2); CG2
    hot_spot_width: float = 4.0           # s, mm
    depth: float = 1.0                    # hot spots this far under the suction side, mm
    dt: float = 1.0                       # time step of the cycle (10 s up, 20 s hold, 10 s down)
    #: (y, A) of the training hot spots: every 2 mm (half the width s) over y in [8, 22]
    train: list = field(default_factory=lambda: [[8.0, 220.0], [10.0, 300.0], [12.0, 240.0], [14.0, 280.0],
                                                 [16.0, 220.0], [18.0, 300.0], [20.0, 240.0], [22.0, 280.0]])
    #: (y, A) of the unseen loads: three half-way between training positions, one outside the
    #: training range (one width s beyond its end)
    test: list = field(default_factory=lambda: [[11.0, 260.0], [15.0, 230.0], [19.0, 290.0], [26.0, 260.0]])
    calibrate_tol: bool = True            # "stress"/"p" indicators: rom.indicator_tol from leave-one-load-out ROMs
    target_error: float = 0.01            # the per-step displacement error the indicator tolerance stands for
    adapt_mesh: bool = True               # r-adapt the HF mesh once (UM2N) before the offline phase
    rom: ROMConfig = field(default_factory=ROMConfig)
    adapt: MonitorConfig = field(default_factory=MonitorConfig)   # the monitor of the one-off r-adaptation
    output_dir: str = "output/blade-rom"
    vtk: bool = True
    progress: bool = True


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN for fewer than 3 pairs."""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic) if len(x) > 2 else float("nan")


class BladeROMStudy:
    """The whole study (module docstring); :meth:`offline` then :meth:`online` per load."""

    def __init__(self, cfg: BladeROMConfig):
        self.cfg = cfg
        self.base = BladeConfig(lc=cfg.lc, lc_hole=cfg.lc / 2, hot_spot_width=cfg.hot_spot_width,
                                cycle=LoadCycle(dt=cfg.dt))
        self.train = [suction_side_load(y, A, cfg.depth) for y, A in cfg.train]
        self.test = [suction_side_load(y, A, cfg.depth) for y, A in cfg.test]
        self.timings: dict[str, float] = {}
        #: the study's results (:meth:`summarise`), once :meth:`run` has been called
        self.summary: dict = {}

    def offline(self) -> None:
        """Mesh (adapted once), training HF runs, POD/ECM/Gappy."""
        cfg = self.cfg
        self.mesh = blade_mesh(self.base)
        self.adapt_report = adapt_mesh(self.mesh, self.base, self.train, cfg.adapt) if cfg.adapt_mesh else None
        self.hf = BladeHF(self.base, self.mesh, full_snapshots=True)
        self.hf_enrich = BladeHF(self.base, self.mesh, full_snapshots=False)
        self.hf_ref = BladeHF(self.base, self.mesh)
        t0 = time.perf_counter()
        runs = []
        for L in self.train:
            self.hf.set_load(L.x_h, L.A)
            self.hf.run()
            runs.append({k: list(v) for k, v in self.hf.snapshots.items()})
        self.timings["training_hf"] = time.perf_counter() - t0
        self.training = TrainingSet.from_runs(runs)
        t0 = time.perf_counter()
        self.rom = BladeROM(self.hf, self.training, cfg.rom, make_hf=self._make_hf)
        self.timings["offline_reduction"] = time.perf_counter() - t0
        self.M = self.hf.solver.mass_matrix()
        self.w = self.hf.solver.quadrature_weights()
        self.calibration = None
        if cfg.rom.indicator == "hierarchical":
            self.calibration = {"method": "target_error", "indicator_tol": float(cfg.target_error),
                                "target_error": float(cfg.target_error)}
            cfg.rom = replace(cfg.rom, indicator_tol=float(cfg.target_error))
            self.rom.cfg = cfg.rom
        elif cfg.calibrate_tol:
            t0 = time.perf_counter()
            self.calibration = calibrate_indicator_tol(self.hf, self.training, self.train, cfg.rom, self.M,
                                                       cfg.target_error)
            self.timings["calibration"] = time.perf_counter() - t0
            cfg.rom = replace(cfg.rom, indicator_tol=self.calibration["indicator_tol"])
            self.rom.cfg = cfg.rom

    def _make_hf(self, load: ThermalLoad):
        self.hf_enrich.set_load(load.x_h, load.A)
        return self.hf_enrich

    def online(self, load: ThermalLoad) -> dict:
        """HF reference, ROM without and with enrichment for ``load``; errors and timings."""
        self.hf_ref.set_load(load.x_h, load.A)
        t0 = time.perf_counter()
        self.hf_ref.run()
        t_hf = time.perf_counter() - t0
        U = np.array(self.hf_ref.snapshots["u"])
        P = np.array(self.hf_ref.snapshots["p"])
        out = {"load": {"x_h": list(load.x_h), "A": load.A}, "hf_seconds": t_hf, "hf_dofs": self.hf.solver.V.dim()}
        for variant, enrich in (("no_enrichment", False), ("enrichment", True)):
            if enrich:                       # the adaptive online phase: enrichments kept from load to load
                if getattr(self, "rom_online", None) is None:
                    self.rom_online = self.rom.copy()
                    self.rom_online.cfg = replace(self.cfg.rom, enrich=True)
                rom = self.rom_online
            else:
                rom = self.rom.copy()
                rom.cfg = replace(self.cfg.rom, enrich=False)
            run = rom.run(load, progress=self.cfg.progress)
            Ur, Pr = run.displacements(), run.plastic_strains()
            D = Ur - U
            du = np.sqrt(np.einsum("si,si->s", D, (self.M @ D.T).T))
            nu = np.sqrt(np.einsum("si,si->s", U, (self.M @ U.T).T))
            nu_max = np.maximum.accumulate(nu)
            nr = np.sqrt(np.einsum("si,si->s", Ur, (self.M @ Ur.T).T))        # |u_rom^n|_L2
            dp = np.sqrt(((Pr - P) ** 2 * self.w).sum(axis=1))
            np_ = np.sqrt((P ** 2 * self.w).sum(axis=1))
            with np.errstate(invalid="ignore", divide="ignore"):
                ep = np.where(np_ > 0, dp / np_, np.nan)
            out[variant] = {
                "error_u_cycle": float(np.sqrt((du ** 2).sum() / (nu ** 2).sum())),
                "error_u_max_step": float((du / nu).max()),
                "error_p_end": float(ep[-1]),
                "online_seconds": run.online_seconds, "enrichment_seconds": run.enrichment_seconds,
                "speedup": t_hf / run.online_seconds, "enrichments": run.enrichments,
                "enrichment_parts": run.enrichment_parts,
                "modes_end": int(run.modes.shape[1]), "ecm_points_end": int(run.records[-1].n_points),
                "steps": [{"step": r.step, "t": r.t, "indicator": r.indicator, "enriched": r.enriched,
                           "indicator_stress": r.indicator_stress, "indicator_p": r.indicator_p,
                           "indicator_stress_current": r.indicator_stress_current,
                           "indicator_hierarchical": r.indicator_hierarchical,
                           "estimate_hierarchical": r.estimate_hierarchical,
                           "error_u_abs": float(du[i]), "u_rom_norm": float(nr[i]),
                           "error_u_cyclemax": float(du[i] / nu_max[i]),
                           "indicator_exceeds_tol": bool(r.indicator > self.cfg.rom.indicator_tol),
                           "error_u": float(du[i] / nu[i]), "error_p": float(ep[i]),
                           "modes": r.n_modes, "ecm_points": r.n_points, "newton_iterations": r.newton_iterations}
                          for i, r in enumerate(run.records)]}
            if enrich:
                out["_fields"] = (U, P, Ur, Pr)
        return out

    def run(self) -> dict:
        """:meth:`offline`, then :meth:`online` for every unseen load in order; :meth:`summarise`."""
        self.offline()
        loads = progress(self.test, "blade-rom unseen loads", enabled=self.cfg.progress, unit="load")
        return self.summarise([self.online(L) for L in loads])

    def summarise(self, results: list[dict]) -> dict:
        """The study's summary (``summary.json``) from the results of :meth:`online`."""
        steps = [s for r in results for s in r["no_enrichment"]["steps"]]
        def column(key: str) -> np.ndarray:
            return np.array([s[key] for s in steps])

        eta_s, eta_p, eu, ep = (column(k) for k in ("indicator_stress", "indicator_p", "error_u", "error_p"))
        eta_cur, eu_max = column("indicator_stress_current"), column("error_u_cyclemax")
        zeta, eta_z = column("estimate_hierarchical"), column("indicator_hierarchical")
        du, nr = column("error_u_abs"), column("u_rom_norm")
        ys = [L.x_h[1] for L in self.train]
        inside = np.array([min(ys) <= r["load"]["x_h"][1] <= max(ys)
                           for r in results for _ in r["no_enrichment"]["steps"]])
        plastic = (eta_p > 0) & np.isfinite(ep)
        hf_s = sum(r["hf_seconds"] for r in results)
        rom_s = sum(r["enrichment"]["online_seconds"] for r in results)
        rom = self.rom
        hier = None
        if np.isfinite(zeta).all():
            ratio = zeta / np.maximum(du, 1e-300)

            def hs(sel):
                return {"estimate_over_u_rom_vs_error_u": spearman(zeta[sel] / nr[sel], eu[sel]),
                        "indicator_vs_error_u_cyclemax": spearman(eta_z[sel], eu_max[sel]),
                        "indicator_vs_error_u": spearman(eta_z[sel], eu[sel])}

            hier = {**hs(np.ones(len(eu), dtype=bool)), "inside_training_range": hs(inside),
                    "estimate_over_true_error": {"median": float(np.median(ratio)),
                                                 "p05": float(np.percentile(ratio, 5)),
                                                 "p95": float(np.percentile(ratio, 95))},
                    "indicator_vs_error_p": spearman(eta_z[plastic], ep[plastic])}
        est = rom.estimator
        return {
            "hf": {"dofs": self.hf.solver.V.dim(), "quadrature_points": rom.N, "steps": len(self.base.cycle.times())},
            "adapt": self.adapt_report,
            "offline": {"training_loads": [{"x_h": list(L.x_h), "A": L.A} for L in self.train],
                        "snapshots": len(self.training), "modes": int(rom.modes.shape[1]),
                        "pod_projection_error": projection_error(rom.modes, self.training.u.T),
                        "ecm_points": int(len(rom.ecm.points)), "ecm_fit_residual": rom.ecm.residual,
                        "ecm_min_weight": float(rom.ecm.weights.min()),
                        **{f"cubature_error_{k}": v for k, v in rom.cubature_error().items()},
                        "gappy_p_modes": rom.gappy_p.n_modes,
                        "gappy_eps_p_modes": rom.gappy_e.n_modes,
                        "estimator_modes": None if est is None else int(est.offline_modes),
                        "estimator_points": None if est is None else int(len(est.points)),
                        "estimator_seconds": rom.offline_seconds.get("estimator"), **self.timings},
            "calibration": self.calibration,
            "spearman": {
                "over": "all steps of all unseen loads, ROM without enrichment (errors per step against the HF "
                        "solution of the same step); unprefixed keys: the stress indicator",
                "indicator": self.cfg.rom.indicator,
                "hierarchical": hier,
                "pairs": int(len(eu)), "pairs_plastic": int(plastic.sum()),
                "indicator_vs_error_u": spearman(eta_s, eu),
                "indicator_vs_error_u_cyclemax": spearman(eta_s, eu_max),
                "former_indicator_vs_error_u": spearman(eta_cur, eu),
                "pairs_inside_training_range": int(inside.sum()),
                "inside_training_range": {"indicator_vs_error_u": spearman(eta_s[inside], eu[inside]),
                                          "indicator_vs_error_u_cyclemax": spearman(eta_s[inside], eu_max[inside]),
                                          "former_indicator_vs_error_u": spearman(eta_cur[inside], eu[inside])},
                "indicator_vs_error_p": spearman(eta_s[plastic], ep[plastic]),
                "indicator_p_vs_error_u": spearman(eta_p[plastic], eu[plastic]),
                "indicator_p_vs_error_p": spearman(eta_p[plastic], ep[plastic])},
            "overall": {"hf_seconds": hf_s, "online_seconds_enrichment": rom_s, "speedup_enrichment": hf_s / rom_s,
                        "speedup_no_enrichment": hf_s / sum(r["no_enrichment"]["online_seconds"] for r in results),
                        "enrichments": [r["enrichment"]["enrichments"] for r in results],
                        "order": [r["load"] for r in results]},
            "loads": results,
        }


class BladeROMCase(Case):
    """``um2n simulate blade-rom``: the offline phase, then every unseen load (one study)."""

    name = "blade-rom"
    help = "turbine-blade reduced-order model with an error indicator that triggers HF enrichment"
    description = ("Elasto-viscoplastic turbine-blade section (plane strain, Norton flow with kinematic "
                   "hardening) under hot-spot thermal loads: the HF mesh is r-adapted once by UM2N, then POD + "
                   "empirical cubature + Gappy-POD give a reduced model whose error indicator (a hierarchical "
                   "estimate of the displacement error) triggers HF enrichment on unseen loads. Writes "
                   "OUTPUT/steps.csv (indicator, true error, enrichments), summary.json, indicator_vs_error.png "
                   "and ParaView series of the HF and ROM fields and their difference.")
    config = BladeROMConfig

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-vtk", action="store_true", help="skip the ParaView output")

    def configure(self, cfg: BladeROMConfig, args) -> None:
        if args.output_dir:
            cfg.output_dir = args.output_dir
        if args.no_vtk:
            cfg.vtk = False

    def run(self, cfg: BladeROMConfig, resume: bool = False, stop_after: int | None = None) -> BladeROMStudy:
        """The whole study (offline, then online for every unseen load); its ``summary`` set."""
        study = BladeROMStudy(cfg)
        study.summary = study.run()
        self.finish(cfg, study, Path(cfg.output_dir))
        return study

    def finish(self, cfg: BladeROMConfig, study: BladeROMStudy, out: Path) -> None:
        from um2n_simulations.blade.report import write_outputs

        write_outputs(study, study.summary, out, vtk=cfg.vtk)

    def main(self, args) -> int:
        from um2n.config import load_config
        from um2n_simulations.blade.report import print_summary

        cfg = load_config(BladeROMConfig, args.config)
        self.configure(cfg, args)
        study = self.run(cfg)
        print_summary(study.summary, Path(cfg.output_dir))
        return 0


CASE = BladeROMCase()
