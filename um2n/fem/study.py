r"""Cases, the study runner and the case registry, shared by ``um2n simulate`` and the benchmarks.

A **case** (:class:`Case`) is everything one simulation gives the rest of um2n: its config
dataclass (defaults in the dataclass, overrides from TOML), its command-line options, its
mesh and problem factories for the moving-mesh loop (:mod:`um2n.fem.loop`), a ``finish``
hook that derives the case's own results from a finished run (and writes its own files),
and a ``report`` that prints them.

A **study** (:func:`run_study`) runs one case several times, once per :class:`Variant`: a
label and a set of setting overrides, such as ``{"loop.mover": "um2n"}`` or
``{"refine": 1}``. Each variant runs in ``<output>/<label>/``; the study's record of every
run (the loop's counters and timings, the problem's summary and the case's extras) goes to
``<output>/summary.json``. With a variant labelled ``none`` (the static mesh) and a case
that names its error measure (:attr:`Case.error_key`), every run also gets its error
reduction against the static run; with two or more static runs (at different resolutions),
every moved run is also compared with them at equal wall-clock time (:func:`equal_cost`).

The **registry** maps case names to cases: the cases of um2n and any package's, declared
as entry points of the group ``um2n.cases`` (``name = "module:OBJECT"``), plus any case
registered at run time with :func:`register_case`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from um2n.errors import UM2NError

#: the entry-point group of cases
ENTRY_POINT_GROUP = "um2n.cases"


@dataclass
class Variant:
    """One run of a study: a ``label`` (its folder) and setting ``overrides`` (dotted names)."""

    label: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def apply(self, cfg, output_dir: str | Path | None = None):
        """A copy of ``cfg`` with the overrides, its ``loop.output_dir`` set to ``output_dir/label``."""
        out = copy.deepcopy(cfg)
        for key, value in self.overrides.items():
            set_setting(out, key, value)
        if output_dir is not None and hasattr(out, "loop"):
            set_setting(out, "loop.output_dir", str(Path(output_dir) / self.label))
        return out


def set_setting(cfg, key: str, value) -> None:
    """Set the dotted setting ``key`` (``"loop.mover"``) of a config dataclass, checked again
    by the dataclass's ``__post_init__``; an unknown name raises a :class:`UM2NError`."""
    *path, last = key.split(".")
    obj = cfg
    for part in path:
        if not hasattr(obj, part):
            raise UM2NError(f"unknown setting {key!r} of {type(cfg).__name__}")
        obj = getattr(obj, part)
    if not dataclasses.is_dataclass(obj) or last not in {f.name for f in dataclasses.fields(obj)}:
        raise UM2NError(f"unknown setting {key!r} of {type(cfg).__name__}")
    setattr(obj, last, value)
    if hasattr(obj, "__post_init__"):
        obj.__post_init__()


class Case:
    """A simulation of um2n (see the module docstring). Subclass and set :attr:`name`,
    :attr:`config`, and implement :meth:`make_mesh` and :meth:`make_problem`."""

    #: the name ``um2n simulate NAME`` knows the case by
    name: str = ""
    #: one line for ``um2n simulate --help``, and the longer description of the case's help
    help: str = ""
    description: str = ""
    #: the config dataclass (with a ``loop`` field, a :class:`~um2n.fem.loop.LoopConfig`)
    config: type = object
    #: the summary entry that measures the error (for the error reduction against ``none``)
    error_key: str | None = None

    # ------------------------------------------------------------------ command line
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The case's own options (the shared ones are added by :func:`case_parser`)."""

    def configure(self, cfg, args: argparse.Namespace) -> None:
        """Apply the case's own options to ``cfg``."""

    def variants(self, cfg, args: argparse.Namespace) -> list[Variant]:
        """The runs ``um2n simulate`` makes: one per ``--mover`` (default: the config's)."""
        return [Variant(m, {"loop.mover": m}) for m in (args.mover or [cfg.loop.mover])]

    # ------------------------------------------------------------------ running
    def make_mesh(self, cfg):
        """The initial mesh of a run."""
        raise NotImplementedError

    def make_problem(self, cfg, mesh):
        """The :class:`~um2n.fem.loop.MovingMeshProblem` on ``mesh``."""
        raise NotImplementedError

    def run(self, cfg, resume: bool = False, stop_after: int | None = None):
        """One run through the moving-mesh loop; returns its :class:`~um2n.fem.loop.LoopResult`
        (after :meth:`finish` when the run completed)."""
        from um2n.fem.loop import run_moving_mesh

        result = run_moving_mesh(lambda mesh: self.make_problem(cfg, mesh), lambda: self.make_mesh(cfg), cfg.loop,
                                 resume=resume, stop_after=stop_after)
        if result.completed:
            self.finish(cfg, result, Path(cfg.loop.output_dir))
        return result

    def finish(self, cfg, result, out: Path) -> None:
        """Derive the case's results from a completed run into ``result.extras`` (JSON-ready)
        and write the case's own files into ``out``; by default nothing."""

    def report(self, cfg, study: dict) -> None:
        """Print a study's results (default: one line per run)."""
        print(f"\n{self.name}: {len(study['runs'])} run(s)")
        for label, r in study["runs"].items():
            er = r.get("error_reduction_vs_none")
            error = r["summary"].get(self.error_key) if self.error_key else None
            print(f"  {label:<16} {r['summary'].get('vertices', '-'):>8} vertices"
                  + (f", {self.error_key} {error:.4e}" if error is not None else "")
                  + (f", error reduction {er:+.1%}" if er is not None else "")
                  + f", {r['moves']} moves, {r['max_inverted']} tangled, {r['wall_seconds']:.1f} s"
                  + f"  ({r['output']})")
        print(f"(summary: {study['summary_path']})")

    def main(self, args: argparse.Namespace) -> int:
        """``um2n simulate NAME``: the config, the variants, the study, the report."""
        from um2n.config import load_config

        cfg = load_config(self.config, args.config)
        self.configure(cfg, args)
        study = run_study(self, cfg, self.variants(cfg, args), output_dir=args.output_dir, resume=args.resume)
        self.report(cfg, study)
        return 0


def run_record(result, wall: float, output: Path) -> dict:
    """The JSON record of one run of a study."""
    d = result.as_dict()
    per = d["seconds_per_step"]
    step_total = sum(per.values())
    return {"summary": result.summary, **result.extras, "moves": result.moves,
            "moves_rejected": result.moves_rejected, "rejections": result.rejections,
            "max_inverted": result.max_inverted, "steps": result.steps,
            "wall_seconds": wall, "seconds_per_step": per,
            "mover_fraction_of_step": per.get("move", 0.0) / step_total if step_total else None,
            "move_seconds_per_move": d["timings"].get("move", 0.0) / result.moves if result.moves else None,
            "output": str(output)}


def equal_cost(case: Case, runs: dict) -> list[dict]:
    """Every moved run against the static runs' curve of error against wall time
    (:mod:`um2n.equal_cost`), when the case names its error and the study has at least two
    static runs (``loop.mover = "none"``) and one moved run; else an empty list."""
    from um2n.equal_cost import compare

    def point(r):
        return r["wall_seconds"], r["summary"].get(case.error_key)

    static = [point(r) for r in runs.values() if r["overrides"].get("loop.mover") == "none"]
    moved = {k: point(r) for k, r in runs.items() if r["overrides"].get("loop.mover", "none") != "none"}
    if not case.error_key or len(static) < 2 or not moved or any(e is None for _, e in static):
        return []
    return [c.as_dict() for c in compare(static, {k: v for k, v in moved.items() if v[1] is not None})]


def run_study(case: Case, cfg, variants: list[Variant], output_dir: str | Path | None = None,
              resume: bool = False, summary_path: str | Path | None = None) -> dict:
    """Run ``case`` once per variant (see the module docstring) and return the study's record.

    Parameters
    ----------
    case : the case
    cfg : its config; each variant runs on a copy with its overrides
    variants : the runs, in order
    output_dir : the study's folder (default: ``cfg.loop.output_dir``)
    resume : continue each run from its checkpoint
    summary_path : where to write the record (default: ``<output_dir>/summary.json``)
    """
    from um2n.fem.recorder import write_json

    base = Path(output_dir or cfg.loop.output_dir)
    base.mkdir(parents=True, exist_ok=True)
    runs = {}
    for variant in variants:
        vcfg = variant.apply(cfg, base)
        t0 = time.perf_counter()
        result = case.run(vcfg, resume=resume)
        runs[variant.label] = {"overrides": variant.overrides,
                               **run_record(result, time.perf_counter() - t0, base / variant.label / "solution.pvd")}
    if case.error_key and "none" in runs:
        e0 = runs["none"]["summary"].get(case.error_key)
        for r in runs.values():
            e = r["summary"].get(case.error_key)
            r["error_reduction_vs_none"] = (e0 - e) / e0 if e0 and e is not None else None
    path = Path(summary_path or base / "summary.json")
    study = {"case": case.name, "config": dataclasses.asdict(cfg), "runs": runs, "summary_path": str(path)}
    comparison = equal_cost(case, runs)
    if comparison:
        study["equal_cost"] = comparison
    write_json(path, study)
    return study


# ---------------------------------------------------------------------- the registry
_REGISTERED: dict[str, Case] = {}


def register_case(case: Case) -> Case:
    """Make ``case`` known to :func:`get_case` (and ``um2n simulate``) by its name."""
    if not case.name:
        raise UM2NError(f"{type(case).__name__}: a case needs a name")
    _REGISTERED[case.name] = case
    return case


def case_names() -> list[str]:
    """The names of every registered case (entry points are listed, not imported)."""
    return sorted({*_REGISTERED, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def get_case(name: str) -> Case:
    """The case called ``name``: registered at run time, else loaded from its entry point."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        raise UM2NError(f"unknown case {name!r}; known: {', '.join(case_names()) or 'none'} (a case of "
                        f"um2n missing here means an outdated install: run 'make install')")
    case = found[0].load()
    if not isinstance(case, Case):
        raise UM2NError(f"entry point {found[0].value!r} of case {name!r} is not a um2n Case")
    return register_case(case)


def case_parser(case: Case, prog: str = "um2n simulate") -> argparse.ArgumentParser:
    """The command line of ``um2n simulate NAME``: the shared options and the case's own."""
    from um2n.fem.movers import MOVERS

    p = argparse.ArgumentParser(prog=f"{prog} {case.name}", description=case.description or case.help)
    if dataclasses.is_dataclass(case.config):
        p.add_argument("--config", metavar="FILE.toml", help="setting overrides (see configs/ for examples)")
        p.add_argument("--output-dir", help="output folder (default: the config's loop.output_dir)")
    if dataclasses.is_dataclass(case.config) and "loop" in {f.name for f in dataclasses.fields(case.config)}:
        p.add_argument("--mover", nargs="+", choices=list(MOVERS),
                       help="mover(s) to run, one after another (default: the config's)")
        p.add_argument("--resume", action="store_true",
                       help="continue each run from its checkpoint.h5 in the output folder")
    case.add_arguments(p)
    return p
