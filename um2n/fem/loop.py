r"""The one moving-mesh time loop, shared by every simulation of um2n.

Each cycle of :func:`run_moving_mesh`:

1. **solve** one time step (:meth:`MovingMeshProblem.step`);
2. every ``move_every`` steps, **monitor**: the problem builds a P1 monitor from its
   current solution (:meth:`MovingMeshProblem.monitor`), frozen on a copy of the pre-move
   mesh (under ALE, only for a mover that asks for one: ``Mover.frozen_monitor``);
3. **move** the mesh with the chosen :class:`~um2n.fem.movers.Mover` (``um2n``, ``ma`` or
   ``none``, or any object with that interface), always from the *reference* mesh
   :math:`\xi` (the mesh the run started on), through :func:`~um2n.fem.movers.guarded_move`:
   a move that fails or would tangle the mesh is undone, counted in ``moves_rejected`` and
   by its reason in ``rejections`` (and said on stderr), and the run goes on on the previous
   mesh, so the loop never hands a tangled mesh to the solver;
4. carry the fields to the new mesh, by the ``transfer`` setting:

   * ``"ale"`` (default): the mesh does not jump. It moves *continuously*, linearly in
     time, from where it is to the target over the next ``move_every`` steps
     (:class:`um2n.fem.ale.MeshMotion`), and the solver carries the mesh velocity in its
     equations (arbitrary Lagrangian-Eulerian form, DGCL-consistent; problems that can do
     so set :attr:`MovingMeshProblem.supports_ale`). A straight path between two untangled
     meshes can tangle part-way: the path is checked exactly (:func:`um2n.path.safe_fraction`)
     and, where it would tangle, shortened to half the safe fraction (counted in
     ``paths_shortened``), so no mesh the solver sees is tangled. A window that would move
     a vertex by more than ``max_mesh_courant`` of its elements' size per step is slowed
     down: its target is brought closer along the same path (counted in ``moves_slowed``),
     and the next windows, aimed at new targets, catch up;
   * ``"conservative"``: the mesh jumps to the target and the fields follow by the
     :math:`L^2` projection on the supermesh (:class:`um2n.fem.transfer.FieldTransfer`); then
     the problem refreshes what it derives from the geometry (:meth:`MovingMeshProblem.mesh_moved`);
   * ``"interpolate"``: the jump, with the fields interpolated;
5. **output** through the :class:`~um2n.fem.recorder.Recorder`: a row of diagnostics every
   step, a ParaView series every ``output_every`` steps, PNG snapshots, and a Firedrake
   ``CheckpointFile`` every ``checkpoint_every`` steps, each written atomically.

Before the first step, a problem that can evaluate its initial condition on any mesh
(:meth:`MovingMeshProblem.initial_state`) starts on a mesh adapted to it: ``initial_moves``
moves, each followed by the initial condition on the moved mesh (no transfer).

Run again with the same output folder and ``resume=True``: the run continues from the last
checkpoint (the diagnostics written after it are dropped and redone), and gives the same
fields as a run that was never interrupted.

Under MPI (``mpiexec -n N``) the loop runs with ALE and any of the three movers: every
rank holds its vertices and their halo, the path and Courant checks and the tangle count
are reduced over the ranks, the network runs distributed (:mod:`um2n.distributed`;
``parallel_network = "gathered"``: on the gathered mesh), and Monge-Ampère runs on the
distributed mesh with its monitor on a :class:`FrozenMonitor` of the same distribution.
The supermesh remap (``transfer = "conservative"``) is serial only, and says so.
"""

from __future__ import annotations

import copy
import sys
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Callable

import firedrake as fd
import numpy as np

from um2n.errors import UM2NError
from um2n.fem.ale import MeshMotion
from um2n.fem.movers import MOVERS, MoveInfo, Mover, TangleGuard, guarded_move, make_mover
from um2n.fem.recorder import Recorder, mesh_fingerprint
from um2n.fem.transfer import TRANSFER_METHODS, FieldTransfer
from mpi4py import MPI

from um2n.path import mesh_courant, safe_fraction
from um2n.progress import progress


@dataclass
class LoopConfig:
    """Settings of :func:`run_moving_mesh` (every simulation's ``[loop]`` table)."""

    mover: str = "um2n"
    move_every: int = 10
    output_every: int = 50
    checkpoint_every: int = 100
    transfer: str = "ale"
    #: ALE: the most a vertex may move in one step, in units of its elements' smallest
    #: altitude (the mesh Courant number, :func:`um2n.path.mesh_courant`); a faster window is
    #: slowed down to it (its target brought closer), and the next windows catch up
    max_mesh_courant: float = 0.2
    #: moves before the first step, each followed by the initial condition evaluated on the
    #: moved mesh (for problems whose :meth:`MovingMeshProblem.initial_state` can), so that
    #: the run starts on a mesh adapted to its initial state
    initial_moves: int = 2
    weights: str | None = None
    #: the ``um2n`` mover's safeguard: the least ratio of a cell's area (volume) to its area
    #: on the reference mesh (:func:`um2n.safeguard.untangle`). Raise it where an explicit
    #: solver's stable time step must not shrink with a few collapsed cells
    min_cell_ratio: float = 1e-3
    #: the ``um2n`` mover's forward passes per move (:class:`um2n.mover.UM2NMover`'s ``passes``:
    #: each pass moves on from where the last left the mesh, towards what of the monitor is
    #: not yet equidistributed)
    passes: int = 1
    #: under MPI, how the ``um2n`` mover runs the network: ``"distributed"`` (each rank its own
    #: vertices, :mod:`um2n.distributed`) or ``"gathered"`` (the whole mesh on rank 0)
    parallel_network: str = "distributed"
    ma_rtol: float = 1e-3
    ma_maxiter: int = 300
    output_dir: str = "output/run"
    write_vtk: bool = True
    snapshots: int = 4
    progress: bool = True

    def __post_init__(self):
        if self.mover not in MOVERS:
            raise UM2NError(f"mover must be one of {', '.join(MOVERS)}, not {self.mover!r}")
        if int(self.passes) != self.passes or self.passes < 1:
            raise UM2NError(f"passes must be a positive integer, got {self.passes!r}")
        if not 0.0 <= self.min_cell_ratio < 1.0:
            raise UM2NError(f"min_cell_ratio must be in [0, 1), got {self.min_cell_ratio!r}")
        if not self.max_mesh_courant > 0:
            raise UM2NError(f"max_mesh_courant must be > 0, got {self.max_mesh_courant!r}")
        if self.transfer not in TRANSFERS:
            raise UM2NError(f"transfer must be one of {', '.join(TRANSFERS)}, not {self.transfer!r}")
        if self.parallel_network not in ("distributed", "gathered"):
            raise UM2NError(f"parallel_network must be 'distributed' or 'gathered', not {self.parallel_network!r}")
        if int(self.initial_moves) < 0:
            raise UM2NError(f"initial_moves must be >= 0, got {self.initial_moves}")
        for name in ("move_every", "output_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise UM2NError(f"{name} must be a positive number of steps, got {getattr(self, name)}")


class MovingMeshProblem(ABC):
    """What a simulation gives the loop. Build solvers once in ``__init__`` on ``mesh``."""

    #: time step and number of steps
    dt: float
    num_steps: int
    #: whether :meth:`step` is written in ALE form: it reads the geometry of each of its
    #: stages from :attr:`motion` (``motion.place(theta)``) and the mesh velocity
    #: ``motion.velocity``, and leaves the mesh at ``theta = 1``
    supports_ale: bool = False
    #: whether :meth:`initial_state` can evaluate the initial condition on any mesh
    has_initial_state: bool = False

    def __init__(self, mesh):
        self.mesh = mesh
        #: the continuous motion of the mesh (ALE); still unless the loop starts a window
        self.motion = MeshMotion(mesh)

    @abstractmethod
    def fields(self) -> dict[str, fd.Function]:
        """The prognostic fields: transferred after each move, saved in checkpoints."""

    @abstractmethod
    def step(self, t: float) -> None:
        """Advance the fields from ``t`` to ``t + dt`` on the current mesh."""

    @abstractmethod
    def monitor(self) -> fd.Function:
        """A P1 monitor function (values >= 1 after normalisation) from the current solution."""

    def sync_fields(self) -> None:
        """Bring :meth:`fields` up to date with the solver's state just before the loop reads
        them (a transfer, a checkpoint), for fields derived from it, such as a momentum
        :math:`q = Hu` kept beside a velocity; by default nothing (they are the state)."""

    def mesh_moved(self) -> None:
        """Refresh what depends on the geometry (re-evaluate data, reset solvers)."""

    def initial_state(self) -> None:
        """Set the fields to the initial condition, evaluated on the mesh as it is now (for a
        problem with :attr:`has_initial_state`: the loop then adapts the mesh to the initial
        state before the first step, ``LoopConfig.initial_moves``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot re-evaluate its initial state")

    def output_functions(self) -> list[fd.Function]:
        """Functions written to the ParaView series (default: the prognostic fields)."""
        return list(self.fields().values())

    def diagnostics(self, t: float) -> dict[str, float]:
        """Scalars written to ``diagnostics.csv`` for the initial state (step 0) and after every step."""
        return {}

    def summary(self, t: float) -> dict:
        """End-of-run figures (errors against references, ...)."""
        return {}


@dataclass
class LoopResult:
    """What :func:`run_moving_mesh` measured.

    ``timings`` are wall seconds by part of the cycle; ``rejections`` counts the rejected
    moves by reason (:attr:`MoveInfo.reason <um2n.fem.movers.MoveInfo>`); ``summary`` is the problem's
    :meth:`~MovingMeshProblem.summary`; ``diagnostics`` the rows of ``diagnostics.csv``
    (numbers); ``extras`` what a case's ``finish`` hook derives from the run (JSON-ready).
    ``mesh`` and ``problem`` are the live objects at the end of the run.
    """

    steps: int
    t: float
    moves: int = 0
    moves_rejected: int = 0
    paths_shortened: int = 0
    moves_slowed: int = 0
    max_inverted: int = 0
    rejections: dict = field(default_factory=dict)
    timings: dict = field(default_factory=lambda: dict.fromkeys(TIMED_PARTS, 0.0))
    summary: dict = field(default_factory=dict)
    resumed_from_step: int | None = None
    completed: bool = False
    extras: dict = field(default_factory=dict)
    diagnostics: list = field(default_factory=list, repr=False)
    mesh: object = field(default=None, repr=False)
    problem: object = field(default=None, repr=False)

    @property
    def counters(self) -> dict:
        return {"moves": self.moves, "moves_rejected": self.moves_rejected,
                "paths_shortened": self.paths_shortened, "moves_slowed": self.moves_slowed,
                "max_inverted": self.max_inverted}

    def as_dict(self) -> dict:
        """The JSON-ready record (the live objects and the diagnostics rows left out)."""
        d = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
             if f.name not in ("diagnostics", "mesh", "problem")}
        d["seconds_per_step"] = {k: v / max(self.steps, 1) for k, v in self.timings.items()}
        d["wall_seconds"] = sum(self.timings.values())
        return d


#: the cost split of a run: the solver's steps; the monitor; the mover (the network for
#: ``um2n``); the mesh velocity and path check (ALE) or the remap (``transfer``); the output
TIMED_PARTS = ("solve", "monitor", "move", "mesh_velocity", "transfer", "output")
#: the ``transfer`` settings: continuous motion, or a jump with a remap of the fields
TRANSFERS = ("ale",) + TRANSFER_METHODS


@contextmanager
def _timed(timings: dict, part: str):
    t0 = time.perf_counter()
    yield
    timings[part] += time.perf_counter() - t0


class FrozenMonitor:
    """The monitor on a copy of the mesh as it was before a move.

    The copy shares the mesh's topology, and so its numbering and, under MPI, its
    distribution, with coordinates of its own (``firedrake.Mesh(Function(coordinates))``):
    freezing is two copies of local arrays, halos included. It serves a mover that
    evaluates the monitor at the moving vertices, by point evaluation (Monge-Ampère), when
    the loop has no supermesh copy (ALE).
    """

    def __init__(self, mesh):
        self.mesh = mesh
        self.frozen = fd.Mesh(fd.Function(mesh.coordinates), name=f"{mesh.name}_before_move")
        self.monitor = fd.Function(fd.FunctionSpace(self.frozen, "CG", 1), name="monitor")

    def freeze(self, m: fd.Function) -> fd.Function:
        """``m`` (P1 on the mesh), on the copy frozen where the mesh is now."""
        self.frozen.coordinates.dat.data_with_halos[:] = self.mesh.coordinates.dat.data_ro_with_halos
        self.monitor.dat.data_with_halos[:] = m.dat.data_ro_with_halos
        return self.monitor


class _Motion:
    """Steps 2-4 of the cycle: monitor, guarded move, then an ALE window or a remap."""

    def __init__(self, mesh, problem: MovingMeshProblem, mover: Mover, xi: np.ndarray, transfer: str,
                 max_mesh_courant: float):
        self.mesh, self.problem, self.mover = mesh, problem, mover
        self.ale = transfer == "ale"
        self.max_mesh_courant = max_mesh_courant
        self.guard = TangleGuard(mesh, xi)
        self.transfer = None
        self.frozen_monitor: FrozenMonitor | None = None
        if mover.moves_mesh:
            if self.ale and not problem.supports_ale:
                raise UM2NError(f"{type(problem).__name__} has no ALE form: set transfer to "
                                f"'conservative' or 'interpolate' in its [loop] table")
            if not self.ale:
                self.transfer = FieldTransfer(mesh, problem.fields(), transfer)
                self.monitor = fd.Function(fd.FunctionSpace(self.transfer.frozen, "CG", 1), name="monitor")
            elif getattr(mover, "frozen_monitor", True):
                # under ALE a frozen copy only carries the monitor, to a mover that asks for it
                self.frozen_monitor = FrozenMonitor(mesh)

    def _monitor(self) -> fd.Function:
        """The problem's monitor, for the mover (on the frozen copy if there is one)."""
        m = self.problem.monitor()
        if self.frozen_monitor is not None:
            return self.frozen_monitor.freeze(m)
        if self.transfer is None:
            return m
        self.transfer.before_move()
        self.monitor.dat.data[self.transfer.vertex_perm] = m.dat.data_ro
        return self.monitor

    def adapt_to_initial_state(self, moves: int, timings: dict) -> int:
        """Up to ``moves`` jumps of the mesh, each followed by the problem's initial state on
        the moved mesh; the number of accepted moves (none if the problem cannot re-evaluate it)."""
        done = 0
        for _ in range(moves):
            with _timed(timings, "monitor"):
                monitor = self._monitor()
            with _timed(timings, "move"):
                info = guarded_move(self.mover, self.mesh, monitor, self.guard)
            if not info.accepted:
                break
            self.problem.mesh_moved()
            self.problem.initial_state()
            done += 1
        return done

    def move(self, timings: dict, window: int) -> MoveInfo:
        """Move towards the monitor of the current solution; under ALE, over ``window`` steps."""
        with _timed(timings, "monitor"):
            self.problem.sync_fields()
            monitor = self._monitor()
        before = np.array(self.mesh.coordinates.dat.data_ro_with_halos)
        with _timed(timings, "move"):
            info = guarded_move(self.mover, self.mesh, monitor, self.guard)
        if not info.accepted:
            return info
        if self.ale:
            with _timed(timings, "mesh_velocity"):
                target = np.array(self.mesh.coordinates.dat.data_ro_with_halos)
                self.mesh.coordinates.dat.data_with_halos[:] = before
                comm = self.mesh.comm
                s = comm.allreduce(safe_fraction(before, target, self.guard.triangles, self.guard.reference_sign),
                                   op=MPI.MIN)
                if s < 1.0:                  # the straight path would tangle at s: stop well short
                    target = before + 0.5 * s * (target - before)
                    info.details["path_fraction"] = 0.5 * s
                if s == 0.0:
                    return MoveInfo(accepted=False, reason="no untangled straight path to the target")
                courant = comm.allreduce(mesh_courant(before, target, self.guard.triangles), op=MPI.MAX) / window
                if courant > self.max_mesh_courant:          # too fast for one window: go part of the way
                    target = before + (self.max_mesh_courant / courant) * (target - before)
                    info.details["courant_fraction"] = self.max_mesh_courant / courant
                self.problem.motion.start(target, window, self.problem.dt)
        else:
            with _timed(timings, "transfer"):
                self.transfer.after_move()
                self.problem.mesh_moved()
        return info


def _report_rejection(result: LoopResult, step: int, reason: str, comm) -> None:
    """Count a rejected move by its reason and say so on stderr (rank 0): the run goes on on
    the mesh it had."""
    reason = reason or "no reason given"
    result.rejections[reason] = result.rejections.get(reason, 0) + 1
    if comm.rank == 0:
        print(f"um2n loop: step {step}: move rejected ({reason}); the run goes on on the mesh it had",
              file=sys.stderr, flush=True)


def _start(make_problem, make_mesh, recorder: Recorder, resume: bool):
    """``(mesh, problem, reference coordinates, result)``, from the checkpoint when resuming."""
    if resume and recorder.checkpoint_path.exists():
        built = make_mesh()                      # to check that the checkpoint is of this mesh
        mesh, problem, xi, state = recorder.restore(make_problem, mesh_fingerprint(built, built.coordinates))
        result = LoopResult(steps=0, t=state["t"], resumed_from_step=state["step"],
                            rejections=dict(state.get("rejections", {})),
                            **{k: state.get(k, 0) for k in LoopResult(0, 0.0).counters})
        recorder.mesh_id = state.get("mesh_fingerprint") or mesh_fingerprint(mesh, xi)
        return mesh, problem, xi, result
    mesh = make_mesh()
    problem = make_problem(mesh)
    xi = fd.Function(mesh.coordinates.function_space(), name="reference_coordinates").assign(mesh.coordinates)
    recorder.mesh_id = mesh_fingerprint(mesh, xi)
    return mesh, problem, xi, LoopResult(steps=0, t=0.0)


def run_moving_mesh(make_problem: Callable[[object], MovingMeshProblem], make_mesh: Callable[[], object],
                    cfg: LoopConfig, resume: bool = False, stop_after: int | None = None,
                    mover: Mover | None = None) -> LoopResult:
    """Run a simulation through the moving-mesh loop (see the module docstring).

    Parameters
    ----------
    make_problem : ``make_problem(mesh)`` builds the problem (its solvers) on a mesh
    make_mesh : builds the initial mesh (not called when resuming)
    cfg : loop settings; ``cfg.output_dir`` holds every output and the checkpoint
    resume : continue from ``output_dir/checkpoint.h5`` if there is one
    stop_after : for tests of restart: behave as a process killed after this many steps of
        this call (no final checkpoint, no flush of the diagnostics written since the last one)
    mover : a :class:`~um2n.fem.movers.Mover` of your own (default: ``cfg.mover`` by name)
    """
    recorder = Recorder(cfg.output_dir, output_every=cfg.output_every, checkpoint_every=cfg.checkpoint_every,
                        write_vtk=cfg.write_vtk, snapshots=cfg.snapshots, label=f"(mover {cfg.mover})")
    mesh, problem, xi, result = _start(make_problem, make_mesh, recorder, resume)
    xi_values = np.array(xi.dat.data_ro_with_halos)
    mover = mover or make_mover(cfg.mover, mesh, xi_values, weights=cfg.weights, ma_rtol=cfg.ma_rtol,
                                parallel_network=cfg.parallel_network,
                                ma_maxiter=cfg.ma_maxiter, min_cell_ratio=cfg.min_cell_ratio, passes=cfg.passes)
    motion = _Motion(mesh, problem, mover, xi_values, cfg.transfer, cfg.max_mesh_courant)
    start = result.resumed_from_step or 0
    end = problem.num_steps if stop_after is None else min(problem.num_steps, start + stop_after)
    if result.resumed_from_step is None and mover.moves_mesh and problem.has_initial_state:
        result.moves += motion.adapt_to_initial_state(cfg.initial_moves, result.timings)   # step 0 adapted
    inverted = motion.guard.inverted()
    if result.resumed_from_step is None:                              # the initial state: step 0
        recorder.record({"step": 0, "t": 0.0, "moved": 0, "inverted": inverted, **problem.diagnostics(0.0)})
    recorder.open(problem, problem.num_steps, fresh=result.resumed_from_step is None)
    steps = progress(range(start, end), f"{type(problem).__name__} ({mover.name})", enabled=cfg.progress, unit="step")
    for n in steps:
        with _timed(result.timings, "solve"):                                        # 1. solve
            problem.step(n * problem.dt)
        step, t = n + 1, (n + 1) * problem.dt
        if problem.motion.active:
            problem.motion.step_done()
            inverted = motion.guard.inverted()
        moved = False
        if mover.moves_mesh and step % cfg.move_every == 0 and step < problem.num_steps:
            info = motion.move(result.timings, min(cfg.move_every, problem.num_steps - step))   # 2.-4.
            moved = info.accepted
            result.moves += moved
            result.moves_rejected += not moved
            if not moved:
                _report_rejection(result, step, info.reason, mesh.comm)
            result.paths_shortened += "path_fraction" in info.details
            result.moves_slowed += "courant_fraction" in info.details
            inverted = motion.guard.inverted() if moved else inverted
        with _timed(result.timings, "output"):                                       # 5. output
            result.max_inverted = max(result.max_inverted, inverted)
            recorder.record({"step": step, "t": t, "moved": int(moved), "inverted": inverted,
                             **problem.diagnostics(t)})
            recorder.output(step, t, force=step == problem.num_steps)
            if step % cfg.checkpoint_every == 0 or (step == end and stop_after is None):
                problem.sync_fields()
                recorder.checkpoint(mesh, xi, problem.fields(), {"step": step, "t": t, **result.counters,
                                                                 "rejections": result.rejections},
                                    motion=problem.motion)
        result.steps, result.t = result.steps + 1, t
    result.completed = end == problem.num_steps      # (its last step's checkpoint wrote the diagnostics)
    if result.completed:
        result.summary = problem.summary(result.t)
        recorder.write_json("summary.json", {"mover": mover.name, **result.as_dict()})
    result.diagnostics, result.mesh, result.problem = recorder.rows, mesh, problem
    return result
