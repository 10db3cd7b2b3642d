r"""The smallest real Firedrake simulation of the project: P1 Poisson, manufactured solution.

.. math::

    -\Delta u = f \text{ in } \Omega = (0, 1)^2, \qquad u = 0 \text{ on } \partial\Omega,
    \qquad u = \sin(\pi x)\sin(\pi y), \quad f = 2\pi^2 u.

Solved with continuous P1 elements on ``n x n`` Firedrake ``UnitSquareMesh`` meshes; the
:math:`L^2` error must fall as :math:`h^2`. It checks the whole stack (PETSc + MUMPS
from Debian, petsc4py, Firedrake's code generation, MPI) and writes ParaView output.
Run it with ``um2n simulate poisson`` (also under ``mpiexec -n 2``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import firedrake as fd

from um2n.fem.study import Case

#: Direct solve with MUMPS (PETSc configured against Debian's MUMPS).
POISSON_SOLVER_PARAMETERS = {
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}


def solve_poisson(n: int, degree: int = 1, comm=fd.COMM_WORLD) -> tuple[fd.Function, float]:
    """Solve on an ``n x n`` unit-square mesh; return the solution and its L2 error."""
    mesh = fd.UnitSquareMesh(n, n, comm=comm)
    V = fd.FunctionSpace(mesh, "CG", degree)
    x, y = fd.SpatialCoordinate(mesh)
    u_exact = fd.sin(fd.pi * x) * fd.sin(fd.pi * y)
    f = 2 * fd.pi ** 2 * u_exact
    u, v = fd.TrialFunction(V), fd.TestFunction(V)
    uh = fd.Function(V, name="u")
    problem = fd.LinearVariationalProblem(
        fd.inner(fd.grad(u), fd.grad(v)) * fd.dx, f * v * fd.dx, uh,
        bcs=fd.DirichletBC(V, 0.0, "on_boundary"))
    fd.LinearVariationalSolver(problem, solver_parameters=POISSON_SOLVER_PARAMETERS).solve()
    error = math.sqrt(fd.assemble((uh - u_exact) ** 2 * fd.dx))
    return uh, error


def convergence_study(sizes: list[int], degree: int = 1, output_dir: str | Path | None = None) -> dict:
    """Errors and observed rates :math:`\\log_2(e_{n}/e_{2n})` over ``sizes``."""
    errors, times = [], []
    uh = None
    for n in sizes:
        t = time.perf_counter()
        uh, err = solve_poisson(n, degree)
        times.append(time.perf_counter() - t)
        errors.append(err)
    rates = [math.log(errors[i] / errors[i + 1]) / math.log(sizes[i + 1] / sizes[i])
             for i in range(len(sizes) - 1)]
    result = {"sizes": sizes, "degree": degree, "l2_errors": errors, "rates": rates,
              "seconds": times, "ranks": fd.COMM_WORLD.size}
    if output_dir is not None and uh is not None:
        out = Path(output_dir)
        if fd.COMM_WORLD.rank == 0:
            out.mkdir(parents=True, exist_ok=True)
        fd.COMM_WORLD.barrier()
        fd.VTKFile(str(out / "poisson.pvd")).write(uh)
        result["paraview"] = str(out / "poisson.pvd")
    return result


class PoissonCase(Case):
    """``um2n simulate poisson``: the convergence study (a check of the Firedrake stack)."""

    name = "poisson"
    help = "P1 Poisson with a manufactured solution: convergence study"
    description = ("Solve -lap u = f on the unit square with u = sin(pi x) sin(pi y) on a sequence of meshes; "
                   "print the L2 errors and rates; write ParaView output.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64], help="cells per side")
        parser.add_argument("--output-dir", default="output/poisson", help="folder for the .pvd output")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def main(self, args) -> int:
        res = convergence_study(list(args.sizes), output_dir=args.output_dir)
        if fd.COMM_WORLD.rank != 0:
            return 0
        if args.json:
            print(json.dumps(res))
            return 0
        print(f"P1 Poisson, manufactured solution sin(pi x) sin(pi y), {res['ranks']} MPI rank(s)")
        print(f"{'n':>6} {'L2 error':>12} {'rate':>6} {'time (s)':>9}")
        for i, n in enumerate(res["sizes"]):
            rate = f"{res['rates'][i - 1]:.2f}" if i else "-"
            print(f"{n:>6} {res['l2_errors'][i]:>12.4e} {rate:>6} {res['seconds'][i]:>9.2f}")
        print(f"ParaView: {res.get('paraview')}")
        return 0


CASE = PoissonCase()
