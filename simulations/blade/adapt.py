r"""The mover's role in the blade ROM: one r-adaptation of the HF mesh before the offline phase.

The HF mesh is moved **once**, with the shipped UM2N mover
(:func:`um2n.fem.adapter.move_mesh`), towards the thermal gradients of the training loads:
with :math:`\Theta = \sum_k A_k \exp(-|x - x_k|^2/(2s^2))` (the hot spots of the training
loads at full load, interpolated in P1), the monitor is

.. math:: m = 1 + \alpha\,\big(|D\Theta| / \max|D\Theta|\big)^{p},

:math:`D\Theta` the recovered Hessian (``kind = "hessian"``, Frobenius norm) or gradient
(``"gradient"``) of :math:`\Theta`: the shared monitor :class:`um2n.fem.monitors.MonitorConfig`
(the ``[adapt]`` table of ``um2n simulate blade-rom``). The vertex count and the
connectivity are unchanged, so the adapted and the static mesh have the same degrees of
freedom; the mover's safeguard never returns a tangled mesh, and the signed areas are checked
again here.

:func:`mover_study` measures what the move buys the HF model at equal degrees of freedom:
the same thermal load on the static coarse mesh, the adapted coarse mesh and a fine
reference mesh; errors against the reference of (a) the maximum cumulated plastic strain
at the end of the cycle, (b) the displacement at the end of the cycle and at the end of
the hold (relative :math:`\ell^2` over the vertices of the reference mesh found inside
the coarse mesh, by point evaluation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import firedrake as fd
import numpy as np

from um2n.fem.monitors import MonitorConfig
from um2n_simulations.blade.blade import BladeConfig, BladeHF, blade_mesh, suction_side_load
from um2n_simulations.blade.loading import LoadCycle, hot_spot_temperature


@dataclass
class MoverStudyConfig:
    """Settings of :func:`blade_mover_study`: coarse and reference meshes, cycle, hot spots."""

    lc: float = 2.0               # the coarse meshes (static and adapted; lc_hole = lc / 2)
    lc_fine: float = 0.5          # the reference mesh (lc_hole = lc_fine / 2)
    dt: float = 2.0               # time step of the cycle
    #: (y, A) of the training hot spots the coarse mesh is adapted to
    train: list = field(default_factory=lambda: [[9.0, 220.0], [13.0, 300.0], [17.0, 240.0], [21.0, 280.0]])
    test: tuple[float, float] = (15.0, 230.0)    # (y, A) of the load simulated on the three meshes


def training_temperature(mesh, cfg: BladeConfig, loads) -> fd.Function:
    r""":math:`\Theta` of the module docstring in P1 (the sum of the training hot spots, :math:`T_0` dropped)."""
    P1 = fd.FunctionSpace(mesh, "CG", 1)
    expr = sum(hot_spot_temperature(mesh, 0.0, L.A, L.x_h, cfg.hot_spot_width) for L in loads)
    return fd.Function(P1, name="training_temperature").interpolate(expr)


def thermal_monitor(mesh, cfg: BladeConfig, loads, acfg: MonitorConfig) -> fd.Function:
    """The monitor of the module docstring (P1)."""
    return acfg.build(training_temperature(mesh, cfg, loads))


def adapt_mesh(mesh, cfg: BladeConfig, loads, acfg: MonitorConfig | None = None) -> dict:
    """Move ``mesh`` in place towards the training loads' thermal gradients (UM2N, shipped weights).

    Returns a report: seconds, tangled cells after the move (always 0, else ``RuntimeError``),
    the mover's safeguard figures, the smallest cell area ratio moved/static, and the
    monitor's equidistribution (coefficient of variation of :math:`m_K|K|`) before and after.
    """
    from um2n.fem.adapter import mesh_graph, move_mesh
    from um2n.mesh import signed_areas
    from um2n.mover import UM2NMover
    from um2n.quality import equidistribution_cv

    acfg = acfg or MonitorConfig()
    graph = mesh_graph(mesh)
    x0 = np.array(mesh.coordinates.dat.data_ro)
    tri = graph.triangles
    a0 = signed_areas(x0, tri)
    m = thermal_monitor(mesh, cfg, loads, acfg)
    mv = np.array(m.dat.data_ro)          # P1 nodes = coordinate nodes (serial)
    t0 = time.perf_counter()
    result = move_mesh(mesh, m, UM2NMover(), graph=graph)
    seconds = time.perf_counter() - t0
    x1 = np.array(mesh.coordinates.dat.data_ro)
    a1 = signed_areas(x1, tri)
    tangled = int((np.sign(a1) != np.sign(a0)).sum() + (a1 == 0).sum())
    if tangled:
        mesh.coordinates.dat.data[:] = x0
        raise RuntimeError(f"the moved blade mesh is tangled ({tangled} cells); move undone")
    return {"seconds": seconds, "tangled": tangled,
            "limited_vertices": int(result.safeguard.limited_vertices),
            "boundary_deviation": float(result.boundary_deviation),
            "min_area_ratio": float((a1 / a0).min()), "max_area_ratio": float((a1 / a0).max()),
            "max_displacement": float(np.linalg.norm(x1 - x0, axis=1).max()),
            "equidistribution_cv_before": equidistribution_cv(x0, tri, mv),
            "equidistribution_cv_after": equidistribution_cv(x1, tri, mv)}


def _end_state(model: BladeHF, hold_step: int) -> dict:
    return {"u_end": model.solver.u.copy(deepcopy=True), "max_p": float(np.max(model.snapshots["p"][-1])),
            "u_hold": np.array(model.snapshots["u"][hold_step])}


def mover_study(cfg: BladeConfig, loads, test_load, lc_fine: float, acfg: MonitorConfig | None = None) -> dict:
    """Static coarse vs adapted coarse vs fine reference, one thermal load (module docstring).

    ``cfg.lc``/``cfg.lc_hole`` set the coarse mesh, ``lc_fine`` (and half of it on the holes)
    the reference; ``loads`` are the training loads the mesh is adapted to, ``test_load``
    the load simulated on the three meshes.
    """
    cfg_t = replace(cfg, hot_spot=tuple(test_load.x_h), hot_spot_intensity=test_load.A, output_dir=None)
    times = cfg.cycle.times()
    hold = int(np.searchsorted(times, cfg.cycle.t_ramp + cfg.cycle.t_hold - 1e-9))
    out: dict = {"test_load": {"x_h": list(test_load.x_h), "A": test_load.A}, "lc_coarse": cfg.lc,
                 "lc_fine": lc_fine}
    runs = {}
    for name in ("fine", "static", "adapted"):
        c = replace(cfg_t, lc=lc_fine, lc_hole=lc_fine / 2) if name == "fine" else cfg_t
        mesh = blade_mesh(c)
        if name == "adapted":
            out["adapt"] = adapt_mesh(mesh, cfg, loads, acfg)
        model = BladeHF(c, mesh)
        t0 = time.perf_counter()
        model.run()
        runs[name] = {**_end_state(model, hold), "mesh": mesh, "model": model}
        out[name] = {"dofs": model.solver.V.dim(), "seconds": time.perf_counter() - t0,
                     "max_p_end": runs[name]["max_p"]}
    ref = runs["fine"]
    pts = np.array(ref["mesh"].coordinates.dat.data_ro)
    ev_f = fd.PointEvaluator(ref["mesh"], pts)

    def hold_function(run) -> fd.Function:
        u = fd.Function(run["model"].solver.V)
        u.dat.data[:] = run["u_hold"].reshape(u.dat.data_ro.shape)
        return u

    ref_vals = {"u_end": np.asarray(ev_f.evaluate(ref["u_end"]), dtype=float).reshape(-1, 2),
                "u_hold": np.asarray(ev_f.evaluate(hold_function(ref)), dtype=float).reshape(-1, 2)}
    for name in ("static", "adapted"):
        run = runs[name]
        ev = fd.PointEvaluator(run["mesh"], pts, tolerance=1e-10, missing_points_behaviour="ignore")
        errs = {}
        for key, u_c in (("u_end", run["u_end"]), ("u_hold", hold_function(run))):
            vc = np.asarray(ev.evaluate(u_c), dtype=float).reshape(-1, 2)
            ok = np.isfinite(vc).all(axis=1)
            errs[key] = float(np.linalg.norm(vc[ok] - ref_vals[key][ok]) / np.linalg.norm(ref_vals[key][ok]))
        out[name].update({"err_u_end": errs["u_end"], "err_u_hold": errs["u_hold"],
                          "err_max_p_end": abs(run["max_p"] - ref["max_p"]) / ref["max_p"],
                          "points_compared": int(ok.sum()), "points_total": len(pts)})
    for key in ("err_u_end", "err_u_hold", "err_max_p_end"):
        out[f"gain_{key}"] = out["static"][key] / out["adapted"][key]
    return out


def blade_mover_study(hot_spot_width: float, depth: float, acfg: MonitorConfig | None = None,
                      ms: MoverStudyConfig | None = None) -> dict:
    """:func:`mover_study` with hot spots of width ``hot_spot_width``, ``depth`` under the
    suction side, at the positions and intensities of ``ms`` (default :class:`MoverStudyConfig`)."""
    ms = ms or MoverStudyConfig()
    cfg = BladeConfig(lc=ms.lc, lc_hole=ms.lc / 2, hot_spot_width=hot_spot_width, cycle=LoadCycle(dt=ms.dt))
    train = [suction_side_load(y, A, depth) for y, A in ms.train]
    return mover_study(cfg, train, suction_side_load(*ms.test, depth), lc_fine=ms.lc_fine, acfg=acfg)
