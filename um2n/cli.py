"""The ``um2n`` command line.

Subcommands:

* ``um2n move IN [-o OUT] (--monitor EXPR | --monitor-field NAME) [--weights PATH]``:
  move a 2D triangle mesh or a tetrahedral mesh (``.msh``, ``.vtu``) towards a monitor,
  zero-shot;
* ``um2n mesh GEO -o OUT [--lc H]``: mesh a gmsh geometry (``meshes/*.geo`` or a path);
* ``um2n simulate CASE``: run a Firedrake simulation (needs Firedrake).

User errors are reported in one line (``um2n: error: ...``) with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from um2n.errors import UM2NError

EPILOG_MOVE = """\
monitor expressions use x and y (and z on a tetrahedral mesh) with numpy syntax, for example
  --monitor "1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2)/0.01)"
allowed: numbers, x, y, z, pi, e, + - * / ** %, exp log sqrt abs sin cos tan tanh sinh cosh
arctan arctan2 minimum maximum. --monitor-field takes a point field of the input mesh.

A mesh with tetrahedra is moved in 3D: vertices slide on their boundary planes, spheres,
cylinders or original boundary triangles and along feature edges; corners stay. It needs
3D weights (the shipped um2n-3d-v1 by default).

The output keeps every cell block and physical tag of the input; .msh is written as gmsh
2.2 (gmsh, Firedrake and ParaView read it), .vtu for ParaView. Existing files are never
overwritten unless --overwrite is given, and the input never is.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="um2n",
        description="um2n: zero-shot mesh movement (r-adaptation) with a graph neural network.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    mv = sub.add_parser("move", help="move a 2D triangle mesh or a tetrahedral mesh towards a monitor",
                        description="Move a 2D triangle mesh or a tetrahedral mesh towards a monitor with UM2N. Boundary "
                        "vertices slide along their boundary (corners stay), and the result is "
                        "never tangled.", epilog=EPILOG_MOVE,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    mv.add_argument("input", metavar="IN", help="input mesh (.msh, .vtu, or any format meshio reads)")
    mv.add_argument("-o", "--output", metavar="OUT", help="output mesh (default: IN_moved with the same suffix)")
    src = mv.add_mutually_exclusive_group(required=True)
    src.add_argument("--monitor", metavar="EXPR", help="monitor expression in x and y")
    src.add_argument("--monitor-field", metavar="NAME", help="monitor taken from a point field of IN")
    mv.add_argument("--weights", metavar="PATH", help="model weights: a .safetensors file or a shipped name (um2n-v1); default: the shipped default")
    mv.add_argument("--passes", type=int, default=1, metavar="N",
                    help="forward passes of the network, each from where the last left the mesh towards "
                    "the monitor not yet equidistributed (default 1; more reach, closer to "
                    "equidistribution, N times the cost)")
    mv.add_argument("--corner-angle", type=float, default=None, metavar="DEG",
                    help="boundary turning angle above which a vertex is a fixed corner (default 20; 30 in 3D, "
                    "where a feature edge turns)")
    mv.add_argument("--feature-angle", type=float, default=30.0, metavar="DEG",
                    help="3D: angle between neighbouring boundary faces above which they meet at a feature edge "
                    "(default 30)")
    mv.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    mv.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")

    me = sub.add_parser("mesh", help="mesh a gmsh .geo geometry",
                        description="Mesh a 2D gmsh geometry (a file, or a name from meshes/).")
    me.add_argument("geo", metavar="GEO", help="path to a .geo, or a name such as annulus")
    me.add_argument("-o", "--output", metavar="OUT", required=True, help="output .msh")
    me.add_argument("--lc", type=float, help="mesh size (the geometry's 'lc' number)")
    me.add_argument("--seed", type=int, default=0, help="gmsh random seed")

    ge = sub.add_parser("generate", help="make training data: random domains, monitors, Monge-Ampere meshes (needs Firedrake)",
                        description="Make training data for UM2N: random domains (unit square, convex, "
                        "non-convex, with a hole) meshed by gmsh, random anisotropic Gaussian solutions, "
                        "Hessian monitors and Monge-Ampere target meshes. Resumes an interrupted run in the "
                        "same folder; failed Monge-Ampere solves are recorded in the manifest and skipped.")
    ge.add_argument("--out", required=True, help="output folder (manifest.jsonl, samples/)")
    ge.add_argument("--samples", type=int, help="number of samples to attempt in total (default 100)")
    ge.add_argument("--seed", type=int, help="seed of the whole data set (default 0)")
    ge.add_argument("--dim", type=int, choices=[2, 3], default=2,
                    help="2: triangle meshes of random polygons (default); 3: tetrahedral meshes of the "
                    "solids box, l_prism, box_sphere_hole, box_cylinder_hole")
    ge.add_argument("--domains", nargs="+",
                    choices=["unit_square", "convex", "nonconvex", "hole", "box", "l_prism", "box_sphere_hole",
                             "box_cylinder_hole", "box_ellipsoid_hole"],
                    help="domain families to draw from (default: the four of --dim)")
    ge.add_argument("--lc", type=float, nargs="+",
                    help="mesh sizes to draw from (default 0.05 0.06 0.07; with --dim 3: 0.1 0.125 0.15)")
    ge.add_argument("--alpha", type=float, help="monitor 1 + alpha (|H|/max|H|)^power (default 3)")
    ge.add_argument("--power", type=float,
                    help="monitor exponent (default 0.5; the UM2N paper's monitor is --alpha 5 --power 2)")

    tr = sub.add_parser("train", help="train UM2N on a generated data set (resumes from its checkpoint)",
                        description="Train UM2N as CONFIG.toml says (see um2n.train for the settings). "
                        "Checkpoints every epoch and resumes when run again; metrics go to OUT/metrics.csv, "
                        "the best weights to OUT/best.safetensors.")
    tr.add_argument("config", metavar="CONFIG.toml")
    tr.add_argument("--max-minutes", type=float, help="stop after the epoch that crosses this budget")

    si = sub.add_parser("simulate", help="run a simulation case (needs Firedrake)",
                        description="Run a simulation case (needs Firedrake). The cases are found through "
                        "the registry of um2n.fem.study (the entry points 'um2n.cases'); "
                        "'um2n simulate CASE --help' lists a case's options.", add_help=False)
    si.add_argument("case", metavar="CASE", nargs="?", help="the case: " + ", ".join(_case_names()))
    si.add_argument("case_args", nargs=argparse.REMAINDER, help="the case's options")
    si.add_argument("-h", "--help", action="store_true", dest="simulate_help")
    si.set_defaults(simulate_parser=si)
    return p


def _case_names() -> list[str]:
    """The registered cases' names (entry-point metadata only: nothing is imported)."""
    from importlib.metadata import entry_points

    return sorted(ep.name for ep in entry_points(group="um2n.cases"))


def _cmd_move(args) -> int:
    from um2n.io import WRITE_SUFFIXES, check_mesh, read_mesh, write_mesh
    from um2n.mesh import MeshGraph
    from um2n.mover import DEFAULT_WEIGHTS_3D_NAME, UM2NMover
    from um2n.interpolation import P1Interpolant
    from um2n.monitor import check_monitor, evaluate_monitor
    from um2n.quality import mesh_quality, quality_table, tet_mesh_quality
    from um2n.tetmesh import TetMeshGraph
    from um2n.errors import MeshInputError, MonitorError

    src = Path(args.input)
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_moved{src.suffix}")
    if out.resolve() == src.resolve():
        raise MeshInputError(f"{out}: the output would replace the input; choose another name")
    if out.exists() and not args.overwrite:
        raise MeshInputError(f"{out}: output exists; choose another name or pass --overwrite")
    if out.suffix.lower() not in WRITE_SUFFIXES:
        raise MeshInputError(f"{out}: cannot write {out.suffix or 'files without a suffix'} "
                             f"(use one of {', '.join(sorted(WRITE_SUFFIXES))})")
    mesh = read_mesh(src, dim=3)
    three_d = any(c.type == "tetra" for c in mesh.cells)
    if three_d:
        graph = TetMeshGraph.from_meshio(mesh, name=str(src), feature_angle=args.feature_angle,
                                         corner_angle=30.0 if args.corner_angle is None else args.corner_angle)
    else:
        check_mesh(mesh, str(src))
        graph = MeshGraph.from_meshio(mesh, name=str(src),
                                      corner_angle=20.0 if args.corner_angle is None else args.corner_angle)
    if args.monitor_field:
        name = args.monitor_field
        if name not in mesh.point_data:
            avail = ", ".join(sorted(mesh.point_data)) or "none"
            raise MonitorError(f"{src}: unknown point field {name!r} (available: {avail})")
        field = np.asarray(mesh.point_data[name], dtype=float)
        if field.ndim > 1 and field.shape[1] != 1:
            raise MonitorError(f"{src}: field {name!r} has {field.shape[1]} components; a monitor is scalar")
        monitor = check_monitor(field.ravel()[graph.vertex_map] if len(field) == len(mesh.points) else field,
                                graph.num_vertices, f"{src}: field {name!r}")
    else:
        monitor = args.monitor
    if args.passes < 1:
        raise UM2NError(f"--passes must be at least 1, got {args.passes}")
    mover = UM2NMover(weights=args.weights if args.weights or not three_d else DEFAULT_WEIGHTS_3D_NAME,
                      passes=args.passes)
    t = time.perf_counter()
    res = mover.move(graph, monitor)
    elapsed = time.perf_counter() - t
    quality = tet_mesh_quality if three_d else mesh_quality
    before = quality(graph.points, graph.cells, res.monitor)
    # equidistribution after the move: the monitor where the vertices are now (an expression
    # evaluated there, a field of the file interpolated from the original mesh)
    at_moved = (evaluate_monitor(monitor, res.points, mesh=str(src)) if isinstance(monitor, str)
                else P1Interpolant(graph.points, graph.cells)(res.monitor, res.points))
    after = quality(res.points, graph.cells, at_moved)
    moved = graph.to_meshio(res.points, template=mesh)
    if out.suffix.lower() != ".msh":  # meshio cannot read back gmsh 2.2 NodeData it writes
        full_monitor = np.zeros(len(mesh.points))
        full_monitor[graph.vertex_map] = res.monitor
        moved.point_data = {**moved.point_data, "um2n_monitor": full_monitor}
    write_mesh(moved, out, overwrite=args.overwrite)
    sg = res.safeguard
    report = {
        "input": str(src), "output": str(out), "weights": mover.weights_info, "passes": mover.passes, "passes_kept": res.passes,
        "vertices": graph.num_vertices, "cells": graph.num_cells,
        "boundary": {"corners": int(len(graph.corners)),
                     ("constraints" if three_d else "curves"): (graph.boundary.constraint_types() if three_d
                                                                else graph.boundary.curve_types()),
                     "max_deviation": res.boundary_deviation},
        "safeguard": {"inverted_before": sg.inverted_before, "limited_vertices": sg.limited_vertices,
                      "reset_vertices": sg.reset_vertices, "min_alpha": sg.min_alpha,
                      "inverted_after": sg.inverted_after},
        "time_s": elapsed, "quality_before": before.as_dict(), "quality_after": after.as_dict(),
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str).replace("Infinity", '"inf"'))
        return 0
    print(f"um2n move: {src} -> {out}")
    print(f"  model: {mover.weights_info}")
    if three_d:
        print(f"  mesh: {graph.num_vertices} vertices, {graph.num_cells} tetrahedra, "
              f"{len(graph.corners)} fixed corners, boundary {graph.boundary.constraint_types()}")
    else:
        print(f"  mesh: {graph.num_vertices} vertices, {graph.num_cells} triangles, "
              f"{len(graph.corners)} fixed corners, boundary curves {graph.boundary.curve_types()}")
    print(f"  moved in {elapsed:.3f} s; boundary deviation {res.boundary_deviation:.2e}")
    if sg.repaired:
        print(f"  safeguard: the proposal had {sg.inverted_before} inverted and {sg.small_before} "
              f"collapsing {'tetrahedra' if three_d else 'triangle(s)'}; shortened the move of {sg.limited_vertices} vertices "
              f"({sg.reset_vertices} kept in place); now 0 inverted")
    else:
        print("  safeguard: nothing to repair (0 inverted)")
    print()
    print(quality_table({"before": before, "after": after}))
    return 0


def _cmd_mesh(args) -> int:
    from um2n.meshing import generate_mesh
    from um2n.mesh import MeshGraph

    out = generate_mesh(args.geo, args.output, lc=args.lc, seed=args.seed)
    g = MeshGraph.from_file(out)
    print(f"{out}: {g.num_vertices} vertices, {g.num_cells} triangles")
    return 0


def _import_firedrake(command: str) -> None:
    try:
        import petsc4py

        petsc4py.init(sys.argv[:1])   # um2n's own arguments are not PETSc options
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Calling petsctools.init")
            import firedrake  # noqa: F401
    except ImportError:
        raise UM2NError(f"'um2n {command}' needs Firedrake; run 'make install' (see README) "
                        "or use a Firedrake environment") from None


def _cmd_generate(args) -> int:
    _import_firedrake("generate")
    from um2n.fem.generate import DOMAINS, DOMAINS_3D, LCS_3D, GenerateConfig, generate
    from um2n.meshing import SOLIDS

    if args.domains:
        wrong = [d for d in args.domains if (d in SOLIDS) != (args.dim == 3)]
        if wrong:
            raise UM2NError(f"generate: --domains {' '.join(wrong)} are not {args.dim}D domains "
                            f"(with --dim {args.dim}: {', '.join(SOLIDS if args.dim == 3 else DOMAINS)})")
    given = {"num_samples": args.samples, "seed": args.seed, "alpha": args.alpha, "power": args.power,
             "domains": tuple(args.domains) if args.domains else (DOMAINS_3D if args.dim == 3 else None),
             "lcs": tuple(args.lc) if args.lc else (LCS_3D if args.dim == 3 else None),
             "dim": args.dim}
    cfg = GenerateConfig(out=args.out, **{k: v for k, v in given.items() if v is not None})   # else the defaults
    try:
        counts = generate(cfg)
    except ValueError as exc:
        raise UM2NError(str(exc)) from None
    print(f"um2n generate: {counts['ok']} new samples, {counts['failed']} failed Monge-Ampere solves "
          f"(recorded in {args.out}/manifest.jsonl), {counts['skipped_done']} already done")
    return 0


def _cmd_train(args) -> int:
    from um2n.train import TrainConfig, train

    cfg = TrainConfig.from_toml(args.config)
    if args.max_minutes is not None:
        cfg.max_minutes = args.max_minutes
    last = train(cfg)
    print(json.dumps({"out": cfg.out, **last}, indent=2))
    return 0


def _cmd_simulate(args) -> int:
    if args.simulate_help or not args.case:
        args.simulate_parser.print_help()
        return 0 if args.simulate_help else 2
    _import_firedrake("simulate")
    from um2n.fem.study import case_parser, get_case

    case = get_case(args.case)
    return case.main(case_parser(case).parse_args(args.case_args))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        commands = {"move": _cmd_move, "mesh": _cmd_mesh, "generate": _cmd_generate, "train": _cmd_train,
                    "simulate": _cmd_simulate}
        return commands[args.command](args)
    except UM2NError as exc:
        print(f"um2n: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("um2n: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
