"""The held-out evaluation of movers (``benchmarks/um2n_vs_ma.py`` and its CI subset).

Cases are drawn like the training data (:func:`um2n.fem.generate.draw_sample`) from a seed
and mesh sizes that neither ``um2n generate`` nor the PDE-loss fine-tuning use, over the four
training families and the family training never saw (long thin channels). On each case the
Helmholtz problem :math:`-\\Delta u + u = f` with the case's manufactured solution (exact
Dirichlet data, interpolated) is solved with P1 elements on the original mesh and on each
moved mesh, and the L2 error against the exact solution gives the error reduction
:math:`ER = (e_{original} - e_{moved}) / e_{original}`. In 3D (``dim = 3``) the cases are the
gmsh solids, the box with an ellipsoidal hole among them, which no 3D training sample has.
"""

from __future__ import annotations

import math
from pathlib import Path

import firedrake as fd
import numpy as np

from um2n.fem.adapter import mesh_graph
from um2n.fem.generate import (DOMAINS, HELD_OUT_DOMAINS, GenerateConfig, Source, draw_sample, exact_solution,
                               hessian_monitor_function, mesh_polygon)
from um2n.meshing import SOLIDS, generate_solid_mesh

#: seed of the held-out draws (training data: 0 and 1; fine-tuning: 11)
HELD_OUT_SEED = 1_000_003
#: mesh sizes of the held-out cases (training: 0.05, 0.06, 0.07)
HELD_OUT_LCS = (0.045, 0.055, 0.065)
#: 3D: the mesh sizes (training: 0.1, 0.125, 0.15) and the solids, one of which
#: (``box_ellipsoid_hole``) no 3D training data has
HELD_OUT_LCS_3D = (0.11, 0.14)
HELD_OUT_SOLIDS = SOLIDS

#: the direct solve of a P1 problem on these small meshes (also the PDE loss's, and its adjoint's)
P1_SOLVER_PARAMETERS = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}


def held_out_config(seed: int = HELD_OUT_SEED, lcs=None, domains=None, dim: int = 2) -> GenerateConfig:
    """The draws of the held-out set (case ``i`` has family ``domains[i % len(domains)]``);
    ``lcs`` and ``domains`` default to the held-out ones of ``dim``."""
    if lcs is None:
        lcs = HELD_OUT_LCS_3D if dim == 3 else HELD_OUT_LCS
    if domains is None:
        domains = HELD_OUT_SOLIDS if dim == 3 else DOMAINS + HELD_OUT_DOMAINS
    return GenerateConfig(out="(held-out)", seed=seed, lcs=tuple(lcs), domains=tuple(domains), dim=dim)


def helmholtz_error(mesh, sources) -> float:
    """L2 error of the P1 Helmholtz solution against the exact one, on ``mesh`` as it is now."""
    x = fd.SpatialCoordinate(mesh)
    u_exact = exact_solution(sources, x)
    f = -fd.div(fd.grad(u_exact)) + u_exact
    V = fd.FunctionSpace(mesh, "CG", 1)
    u, v = fd.TrialFunction(V), fd.TestFunction(V)
    uh = fd.Function(V)
    bc = fd.DirichletBC(V, fd.Function(V).interpolate(u_exact), "on_boundary")
    fd.solve((fd.inner(fd.grad(u), fd.grad(v)) + u * v) * fd.dx == f * v * fd.dx, uh, bcs=bc,
             solver_parameters=P1_SOLVER_PARAMETERS)
    return math.sqrt(fd.assemble((uh - u_exact) ** 2 * fd.dx(degree=8)))


def case_mesh(cfg: GenerateConfig, index: int, work: Path, lc: float | None = None):
    """Case ``index``: (sample, Firedrake mesh, graph, sources, monitor function, monitor at
    the vertices); ``lc`` overrides the drawn mesh size."""
    s = draw_sample(cfg, index)
    lc = s.lc if lc is None else lc
    path = Path(work) / f"case{index}_{lc:.5f}.msh"
    if cfg.dim == 3:
        msh = generate_solid_mesh(s.domain, path, lc=lc, seed=s.seed % (2 ** 31))
    else:
        msh = mesh_polygon(np.array(s.outer), None if s.hole is None else np.array(s.hole), lc, path,
                           seed=s.seed % (2 ** 31))
    mesh = fd.Mesh(str(msh))
    sources = [Source(**d) for d in s.sources]
    monitor = hessian_monitor_function(sources, cfg.alpha, mesh, cfg.power)
    m0 = np.array(fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(monitor(mesh)).dat.data_ro)
    return s, mesh, mesh_graph(mesh), sources, monitor, m0
