r"""Outputs of the blade ROM study (:mod:`~um2n_simulations.blade.rom_case`).

Written into the output folder, each file atomically (:func:`um2n.io.atomic_path`):

* ``steps.csv``: one row per unseen load, variant (``no_enrichment``, ``enrichment``) and
  step: the indicators, whether the deciding one exceeds the tolerance, whether the step
  enriched, the true errors, the reduced sizes;
* ``summary.json``: the study's summary (:meth:`~um2n_simulations.blade.rom_case.BladeROMStudy.summarise`);
* ``indicator_vs_error.png``: the indicator against the true displacement and plastic-strain
  errors, every step of every unseen load; ``indicator_history.png``: the indicator and the
  error over the cycle, per load, with the enrichments;
* per unseen load ``i``, ``load<i>/blade_rom.pvd``: a ParaView series of the HF and ROM
  (with enrichment) displacements and cumulated plastic strains (cell averages) and their
  differences (written by Firedrake's ``VTKFile``, one ``.vtu`` per step, not atomically).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from um2n.io import atomic_path

#: the columns of steps.csv after (load, y_h, A, variant), with their formats (None: as is)
STEP_COLUMNS = {"step": None, "t": "g", "indicator": ".6e", "indicator_stress": ".6e", "indicator_p": ".6e",
                "indicator_hierarchical": ".6e", "estimate_hierarchical": ".6e", "indicator_exceeds_tol": "int",
                "enriched": "int", "error_u": ".6e", "error_u_cyclemax": ".6e", "error_u_abs": ".6e",
                "error_p": ".6e", "modes": None, "ecm_points": None, "newton_iterations": None}


def _cell(value, fmt: str | None):
    if fmt is None:
        return value
    return int(value) if fmt == "int" else format(value, fmt)


def write_outputs(case, summary: dict, out: Path, vtk: bool = True) -> None:
    """CSV, JSON, PNG and (``vtk``) ParaView series of the study ``case`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "steps.csv") as tmp, open(tmp, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["load", "y_h", "A", "variant", *STEP_COLUMNS])
        for i, r in enumerate(summary["loads"]):
            for variant in ("no_enrichment", "enrichment"):
                for s in r[variant]["steps"]:
                    wr.writerow([i, r["load"]["x_h"][1], r["load"]["A"], variant,
                                 *(_cell(s[k], fmt) for k, fmt in STEP_COLUMNS.items())])
    if vtk:
        for i, r in enumerate(summary["loads"]):
            write_vtk(case, r, out / f"load{i}" / "blade_rom.pvd")
    clean = {**summary, "loads": [{k: v for k, v in r.items() if k != "_fields"} for r in summary["loads"]]}
    with atomic_path(out / "summary.json") as tmp:
        Path(tmp).write_text(json.dumps(clean, indent=2, default=float))
    plot_indicators(summary, case.cfg.rom.indicator_tol, out)


def write_vtk(case, r: dict, path: Path) -> None:
    """The ParaView series of one unseen load's result ``r`` (its ``_fields``: HF and ROM)."""
    import firedrake as fd

    U, P, Ur, Pr = r["_fields"]
    s = case.hf.solver
    DG0 = fd.FunctionSpace(case.mesh, "DG", 0)
    f = {name: fd.Function(s.V, name=name) for name in ("u_hf", "u_rom", "u_diff")}
    g = {name: fd.Function(DG0, name=name) for name in ("p_hf", "p_rom", "p_diff")}
    vtk = fd.VTKFile(str(path))
    shape = f["u_hf"].dat.data_ro.shape
    for n, t in enumerate(case.base.cycle.times()):
        f["u_hf"].dat.data[:] = U[n].reshape(shape)
        f["u_rom"].dat.data[:] = Ur[n].reshape(shape)
        f["u_diff"].dat.data[:] = (Ur[n] - U[n]).reshape(shape)
        g["p_hf"].dat.data[:] = s.cell_averages(P[n])
        g["p_rom"].dat.data[:] = s.cell_averages(Pr[n])
        g["p_diff"].dat.data[:] = s.cell_averages(Pr[n] - P[n])
        vtk.write(*f.values(), *g.values(), time=float(t))


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def plot_indicators(summary: dict, tol: float, out: Path) -> None:
    """``indicator_vs_error.png`` and ``indicator_history.png`` (module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key, label in ((axes[0], "error_u", "displacement error $e_u$"), (axes[1], "error_p", "p error $e_p$")):
        for i, r in enumerate(summary["loads"]):
            for variant, mk in (("no_enrichment", "o"), ("enrichment", "x")):
                st = [s for s in r[variant]["steps"] if s["indicator"] > 0 and np.isfinite(s[key]) and s[key] > 0]
                ax.loglog([s["indicator"] for s in st], [s[key] for s in st], mk, ms=4, color=f"C{i}",
                          label=f"load {i}, {variant.replace('_', ' ')}")
        ax.axvline(tol, color="k", ls="--", lw=0.8, label="indicator tolerance")
        ax.set_xlabel("indicator $\\eta$")
        ax.set_ylabel(label)
    sp = summary["spearman"]
    h = sp.get("hierarchical")
    configured = h if sp.get("indicator") == "hierarchical" and h else sp
    axes[0].set_title(f"{sp.get('indicator', 'stress')} indicator: Spearman (no enrichment) "
                      f"{configured['indicator_vs_error_u']:.2f}", fontsize=9)
    axes[1].set_title(f"Spearman (no enrichment, plastic steps) {configured['indicator_vs_error_p']:.2f}", fontsize=9)
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    _save(fig, out / "indicator_vs_error.png")

    n = len(summary["loads"])
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.6 * n), squeeze=False)
    for i, r in enumerate(summary["loads"]):
        ax = axes[i, 0]
        for variant, ls in (("no_enrichment", "-"), ("enrichment", "--")):
            st = r[variant]["steps"]
            t = [s["t"] for s in st]
            ax.semilogy(t, [max(s["indicator"], 1e-6) for s in st], ls, color="C0", label=f"indicator, {variant}")
            ax.semilogy(t, [max(s["error_u"], 1e-8) for s in st], ls, color="C1", label=f"error u, {variant}")
            ev = [s["t"] for s in st if s["enriched"]]
            if ev:
                ax.plot(ev, [tol] * len(ev), "rv", label="enrichment")
        ax.axhline(tol, color="k", lw=0.6)
        ax.set_title(f"load {i}: y = {r['load']['x_h'][1]:g} mm, A = {r['load']['A']:g}", fontsize=9)
        ax.set_xlabel("t (s)")
    axes[0, 0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    _save(fig, out / "indicator_history.png")


def print_summary(summary: dict, out: Path) -> None:
    """The study in a few lines on stdout: sizes, errors and speed-ups per load, correlations."""
    off, sp = summary["offline"], summary["spearman"]
    print(f"\nBlade ROM: HF {summary['hf']['dofs']} dofs, {summary['hf']['steps']} steps; "
          f"{off['modes']} modes (POD error {off['pod_projection_error']:.1e}), {off['ecm_points']} ECM points "
          f"of {summary['hf']['quadrature_points']}, Gappy p {off['gappy_p_modes']} modes")
    print(f"{'load':<22} {'E_u no enr.':>11} {'E_u enr.':>9} {'enrich.':>7} {'speed-up':>8} {'(no enr.)':>9}")
    for r in summary["loads"]:
        a, b = r["no_enrichment"], r["enrichment"]
        lab = f"y={r['load']['x_h'][1]:g} A={r['load']['A']:g}"
        print(f"{lab:<22} {a['error_u_cycle']:>11.3e} {b['error_u_cycle']:>9.3e} {b['enrichments']:>7d} "
              f"{b['speedup']:>8.1f} {a['speedup']:>9.1f}")
    print(f"Spearman ({sp['pairs']} steps): stress indicator vs e_u {sp['indicator_vs_error_u']:.3f}; "
          f"p indicator vs e_p {sp['indicator_p_vs_error_p']:.3f} ({sp['pairs_plastic']} plastic steps)")
    if sp["hierarchical"]:
        h = sp["hierarchical"]
        print(f"hierarchical estimate / |u_rom| vs e_u {h['estimate_over_u_rom_vs_error_u']:.3f} "
              f"({h['inside_training_range']['estimate_over_u_rom_vs_error_u']:.3f} inside the training range); "
              f"indicator vs e_u over max |u_hf| {h['indicator_vs_error_u_cyclemax']:.3f}")
    ov = summary["overall"]
    print(f"overall speed-up with enrichment (loads in order, enrichments kept): {ov['speedup_enrichment']:.1f}")
    print(f"(outputs in {out}: steps.csv, summary.json, indicator_vs_error.png, load*/blade_rom.pvd)")
