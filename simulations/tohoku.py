r"""The 2011 Tohoku tsunami: 2 hours of propagation on the real bathymetry, against 16 gauges.

**Source.** The 55 subfaults of Satake et al. (2013), each an Okada rectangle
(:mod:`um2n_simulations.tohoku_source`). With ``rupture = "kinematic"`` (the default) every
subfault slips in its five windows of ``rupture_window`` seconds from the time the rupture
reaches it, and the sea surface follows the seafloor: the continuity equation gets the source
:math:`\sum_i \dot s_i(t)\,G_i(x)`, with :math:`G_i` the elevation of unit slip on subfault
:math:`i` (recomputed on the moved mesh while the fault slips) and :math:`\dot s_i` held at
its mean over each step. ``rupture = "instantaneous"`` puts all the slip in the initial
elevation at :math:`t = 0`.

**Equations.** The linear shallow-water equations (:mod:`um2n_simulations.shallow_water`, DG1-DG1,
Crank-Nicolson, dt = 60 s by default) on ``japan_sea.msh`` (UTM zone 54; refined uniformly
``refine`` times), with Coriolis :math:`f = 2\Omega\sin\varphi` (latitude of each point),
walls on the coasts (tags 200, 300) and :math:`\eta = 0` outside the open ocean boundary
(tag 100). The bathymetry is read from the data's ``CheckpointFile``
(:mod:`um2n_simulations.tohoku_data`) and evaluated from it (point evaluation on the
unmoved source mesh) where the vertices are: it is never transferred. The mesh moves through
the shared loop (:mod:`um2n.fem.loop`) towards the ``[monitor]`` of the elevation, by default
continuously (``transfer = "ale"``: the solver's ALE form, with the bathymetry sampled at each
window's target and interpolated in time per vertex, the Coriolis parameter re-evaluated at
each step's geometry, and the unit-slip elevations :math:`G_i` re-evaluated at each step's
geometry while the fault slips and the mesh moves); with ``transfer = "conservative"`` the
mesh jumps and the elevation and momentum :math:`q = b u` are transferred conservatively.

**Gauges.** The elevation at the 16 stations of ``stations_elev.csv`` is recorded every step
(``diagnostics.csv``; ``gauges.csv`` holds the series from t = 0) and scored against the
de-tided observations by :mod:`um2n_simulations.tohoku_gauges` (arrival time, peak,
correlation): ``gauge_scores.json`` and ``gauges.png`` in the output folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import firedrake as fd
import numpy as np
from mpi4py import MPI

from um2n_simulations.shallow_water import ShallowWaterOptions, ShallowWaterProblem, ShallowWaterSolver
from um2n_simulations.tohoku_data import Gauge, data_dir, load_bathymetry, load_gauges, lonlat_from_utm
from um2n_simulations.tohoku_gauges import plot_gauges, score_gauge, summarise
from um2n_simulations.tohoku_source import (initial_elevation, satake2013_slip_history, satake2013_subfaults,
                                            unit_slip_elevations)
from um2n.fem.adapter import vertex_count
from um2n.fem.loop import LoopConfig, MovingMeshProblem
from um2n.fem.monitors import MonitorConfig
from um2n.fem.sampling import PointSampler
from um2n.fem.study import Case, Variant
from um2n.fem.recorder import write_json
from um2n.io import atomic_path

OMEGA = 7.2921e-5
#: boundary tags of japan_sea.msh
OPEN_OCEAN = 100


@dataclass
class TohokuConfig:
    """Settings of the Tohoku case (``[monitor]``: the monitor, of the elevation; ``[loop]``:
    the moving-mesh loop). The data folder: ``data_dir``, else ``$UM2N_TOHOKU_DATA``, else
    ``../shared/data/tohoku`` beside the checkout."""

    data_dir: str | None = None
    dt: float = 60.0
    T: float = 7200.0
    refine: int = 0                  # uniform refinements of japan_sea.msh (1: 4x the cells)
    coriolis: bool = True
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    rupture: str = "kinematic"       # "kinematic": the paper's slip in time; "instantaneous": all at t = 0
    rupture_window: float = 30.0     # length (s) of each of the five slip windows
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(output_dir="output/tohoku", move_every=5,
                                                                output_every=5, checkpoint_every=20))

    def __post_init__(self):
        if self.rupture not in ("kinematic", "instantaneous"):
            raise ValueError(f"tohoku: rupture = {self.rupture!r}: expected 'kinematic' or 'instantaneous'")
        if not self.rupture_window > 0:
            raise ValueError(f"tohoku: rupture_window = {self.rupture_window!r}: expected a positive time (s)")


# ----------------------------------------------------------------------------- the problem
class BathymetrySource:
    """The data's bathymetry, evaluated at any mesh's points from its own, never-moved mesh."""

    def __init__(self, folder: str | Path | None = None):
        self.mesh, self.function = load_bathymetry(folder)

    def __call__(self, mesh):
        if mesh is self.mesh:
            return self.function
        return fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(self.function)


def tohoku_mesh(cfg: TohokuConfig, name: str = "tohoku"):
    """``japan_sea.msh`` (its own topology, so that it can move), refined ``cfg.refine`` times."""
    folder = data_dir(cfg.data_dir)
    mesh = fd.Mesh(str(folder / "japan_sea.msh"), name=name if cfg.refine == 0 else f"{name}_coarse")
    if cfg.refine:
        mesh = fd.MeshHierarchy(mesh, cfg.refine)[-1]
        # a mesh of its own (not a hierarchy member), so that the loop may move and save it
        mesh = fd.Mesh(fd.Function(mesh.coordinates), name=name)
    return mesh


class TohokuProblem(ShallowWaterProblem, MovingMeshProblem):
    """Linear shallow water from the Satake et al. (2013) source (see the module docstring)."""

    def __init__(self, mesh, cfg: TohokuConfig, bathymetry: BathymetrySource, gauges: list[Gauge]):
        super().__init__(mesh)
        self.cfg = cfg
        self.dt = cfg.dt
        self.num_steps = int(round(cfg.T / cfg.dt))
        self.gauges = gauges
        coriolis = None
        if cfg.coriolis:
            self._f, self._lonlat = None, None
            p1_coordinates = mesh.coordinates.function_space().ufl_element().degree() == 1

            def coriolis(m):
                # at the vertices (P1 coordinates: the P1 nodes), each inversion of the UTM
                # projection started from the last one's longitudes and latitudes
                if self._f is None or self._f.function_space().mesh() is not m:
                    self._f, self._lonlat = fd.Function(fd.FunctionSpace(m, "CG", 1), name="coriolis"), None
                X = (m.coordinates.dat.data_ro if p1_coordinates else
                     fd.Function(fd.VectorFunctionSpace(m, "CG", 1)).interpolate(fd.SpatialCoordinate(m)).dat.data_ro)
                self._lonlat = lonlat_from_utm(X[:, 0], X[:, 1], guess=self._lonlat)
                self._f.dat.data[:] = 2 * OMEGA * np.sin(np.radians(self._lonlat[1]))
                return self._f
        opts = ShallowWaterOptions(nonlinear=False, open_boundaries=(OPEN_OCEAN,))
        self.swe = ShallowWaterSolver(mesh, bathymetry, cfg.dt, opts, coriolis=coriolis, motion=self.motion)
        faults = satake2013_subfaults()
        self.slipping = [i for i, f in enumerate(faults) if f.slip > 0]
        self.faults = [faults[i] for i in self.slipping]
        if cfg.rupture == "kinematic":
            self.history = satake2013_slip_history(cfg.rupture_window)
            eta0 = 0.0
        else:
            self.history = None
            eta0 = initial_elevation(self.swe.b, self.swe.elevation.function_space(), self.faults)
        self._G: np.ndarray | None = None     # unit-slip elevations on the current mesh, while slipping
        self._G_coordinates: np.ndarray | None = None
        self.source_evaluations = 0           # how often G was evaluated
        self.swe.set_state(eta0, fd.as_vector([0.0, 0.0]))
        self.setup_moving_mesh(mesh, cfg.monitor, cfg.loop.transfer)
        self._points = [[g.x, g.y] for g in gauges]
        self._make_probe()

    def _make_probe(self) -> None:
        # in serial, a sampler that remembers each gauge's cell from step to step; under MPI
        # Firedrake's point evaluation, whose vertex-only mesh is rebuilt whenever the
        # coordinates have changed (every step of a moving mesh) and which gives every rank
        # every gauge
        if self.mesh.comm.size == 1:
            self.probe, self._sampler = None, PointSampler()
        else:
            self.probe = fd.PointEvaluator(self.mesh, self._points, tolerance=1e-6)

    # ------------------------------------------------------------------ loop interface
    def update_source(self, t: float) -> None:
        r"""While the fault slips, the uplift over the step from ``t`` as a source, its mean rate
        :math:`\sum_i (s_i(t + \Delta t) - s_i(t))\,G_i/\Delta t`. :math:`G_i` is evaluated on the
        geometry the step is assembled on (the midpoint geometry while the mesh moves) and again
        whenever that geometry has changed since."""
        source = self.swe.source
        if self.history is not None and t < self.history.end:
            X = self.mesh.coordinates.dat.data_ro
            changed = self._G is None or not np.array_equal(X, self._G_coordinates)
            if self.mesh.comm.allreduce(changed, op=MPI.LOR):            # (interpolation is collective)
                self._G = unit_slip_elevations(self.swe.bathymetry_mid, source.function_space(), self.faults)
                self._G_coordinates = np.array(X)
                self.source_evaluations += 1
            ds = self.history.slip(t + self.dt)[self.slipping] - self.history.slip(t)[self.slipping]
            source.dat.data[:] = ds @ self._G / self.dt
        elif self.mesh.comm.allreduce(self._G is not None or bool(source.dat.data_ro.any()), op=MPI.LOR):
            self._G = None
            source.zero()

    def mesh_moved(self) -> None:
        super().mesh_moved()
        self._G = None
        self._make_probe()

    def diagnostics(self, t: float) -> dict:
        if self.probe is None:
            values = self._sampler(self.swe.elevation, np.asarray(self._points, dtype=float))
        else:
            values = np.asarray(self.probe.evaluate(self.swe.elevation)).ravel()
        return {f"eta_{g.name}": float(v) for g, v in zip(self.gauges, values)}

    def summary(self, t: float) -> dict:
        return {"vertices": vertex_count(self.mesh), "cells": int(self.mesh.comm.allreduce(self.mesh.cell_set.size)),
                "dofs": self.swe.W.dim()}


# ----------------------------------------------------------------------------- running
def gauge_series(rows: list[dict], gauges: list[Gauge]) -> tuple[np.ndarray, dict]:
    """The modelled gauge series of a run from its diagnostics (step 0 included): ``(t, {name: eta})``."""
    t = np.array([float(r["t"]) for r in rows])
    return t, {g.name: np.array([float(r[f"eta_{g.name}"]) for r in rows]) for g in gauges}


class TohokuCase(Case):
    """``um2n simulate tohoku``: two hours against the gauges, static or moved, at any refinement."""

    name = "tohoku"
    help = "the 2011 Tohoku tsunami on real bathymetry, against 16 gauges"
    description = ("Two hours of the 2011 Tohoku tsunami: linear shallow water (DG1, Crank-Nicolson, dt 60 s) on "
                   "japan_sea.msh with the data's bathymetry, from the Okada displacement of the Satake et al. "
                   "(2013) source, released in time as the paper's rupture model does (start times, five slip "
                   "windows). Writes OUTPUT/<run>/solution.pvd, gauges.csv, gauges.png (model against "
                   "observations) and gauge_scores.json, and prints arrival time, peak and correlation at each "
                   "gauge. The data (from the Thetis project, MIT licence) is not part of um2n: see --data-dir.")
    config = TohokuConfig

    def __init__(self):
        self._data: dict = {}

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data-dir", metavar="DIR",
                            help="the Tohoku data folder (default: $UM2N_TOHOKU_DATA, else ../shared/data/tohoku)")
        parser.add_argument("--refine", type=int, help="refine the mesh uniformly this many times (1: 4x the cells)")
        parser.add_argument("--rupture", choices=["kinematic", "instantaneous"],
                            help="kinematic (default): the source's slip in time; instantaneous: all at t = 0")

    def configure(self, cfg: TohokuConfig, args) -> None:
        if args.data_dir:
            cfg.data_dir = args.data_dir
        if args.refine is not None:
            cfg.refine = args.refine
        if args.rupture:
            cfg.rupture = args.rupture
        data_dir(cfg.data_dir)               # a clear error now, not after building the mesh

    def variants(self, cfg: TohokuConfig, args) -> list[Variant]:
        suffix = f"_refine{cfg.refine}" if cfg.refine else ""
        return [Variant(m + suffix, {"loop.mover": m}) for m in (args.mover or [cfg.loop.mover])]

    def data(self, cfg: TohokuConfig) -> tuple[BathymetrySource, list[Gauge]]:
        """The bathymetry and the gauges of ``cfg.data_dir``, read once per folder."""
        folder = str(data_dir(cfg.data_dir))
        if folder not in self._data:
            self._data[folder] = (BathymetrySource(folder), load_gauges(folder))
        return self._data[folder]

    def make_mesh(self, cfg: TohokuConfig):
        return tohoku_mesh(cfg)

    def make_problem(self, cfg: TohokuConfig, mesh) -> TohokuProblem:
        return TohokuProblem(mesh, cfg, *self.data(cfg))

    def finish(self, cfg: TohokuConfig, result, out: Path) -> None:
        """The gauge series (``gauges.csv``), their scores (``gauge_scores.json``, ``result.extras``)
        and the plot against the observations (``gauges.png``)."""
        gauges = self.data(cfg)[1]
        t, series = gauge_series(result.diagnostics, gauges)
        with atomic_path(out / "gauges.csv") as tmp:
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["t"] + [g.name for g in gauges])
                w.writerows([t[k]] + [series[g.name][k] for g in gauges] for k in range(len(t)))
        scores = {g.name: s for g in gauges if (s := score_gauge(g, t, series[g.name])) is not None}
        result.extras.update({"rupture": cfg.rupture, "refine": cfg.refine, **summarise(scores),
                              "gauges": {k: s.as_dict() for k, s in scores.items()}})
        write_json(out / "gauge_scores.json", result.extras["gauges"])
        plot_gauges(gauges, t, series, scores, out / "gauges.png", title=f"Tohoku 2011, mover {cfg.loop.mover}")

    def report(self, cfg: TohokuConfig, study: dict) -> None:
        print(f"\nTohoku 2011 (Satake et al. 2013 source, {cfg.rupture} rupture), linear shallow water, "
              f"dt = {cfg.dt:g} s, T = {cfg.T / 3600:g} h")
        for label, r in study["runs"].items():
            per = r["seconds_per_step"]
            print(f"\n[{label}] {r['summary']['vertices']} vertices, {r['moves']} moves, {r['max_inverted']} tangled; "
                  f"s/step solve {per['solve']:.3f}, move {per['move']:.3f}, transfer {per['transfer']:.3f}; "
                  f"max |arrival error| {r['max_abs_arrival_error_min']:.1f} min (clear gauges); "
                  f"mean correlation {r['mean_correlation']:.2f}")
            print(f"  {'gauge':<6} {'clear':>5} {'arrival obs':>11} {'model':>7} {'error':>7} "
                  f"{'peak obs':>8} {'model':>7} {'ratio':>6} {'corr':>5}")
            for name, s in r["gauges"].items():
                fmt = lambda v, f: "-" if v is None else format(v / 60 if f == "min" else v, ".1f")  # noqa: E731
                print(f"  {name:<6} {'yes' if s['clear_signal'] else 'no':>5} {fmt(s['arrival_observed'], 'min'):>11} "
                      f"{fmt(s['arrival_model'], 'min'):>7} {fmt(s['arrival_error_min'], ''):>7} "
                      f"{s['peak_observed']:>8.2f} {s['peak_model']:>7.2f} {s['peak_ratio']:>6.2f} "
                      f"{s['correlation']:>5.2f}")
            print(f"  ParaView: {r['output']}; gauges: {Path(r['output']).parent / 'gauges.csv'}, gauges.png")
        print(f"(summary: {study['summary_path']})")


CASE = TohokuCase()
