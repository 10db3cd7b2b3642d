"""The Firedrake side of um2n: everything here imports Firedrake.

* :mod:`um2n.fem.adapter`: Firedrake mesh <-> :class:`um2n.mesh.MeshGraph` (or
  :class:`um2n.tetmesh.TetMeshGraph` for a tetrahedral mesh), in-place moves
  of a Firedrake mesh by :class:`um2n.mover.UM2NMover` (serial or MPI);
* :mod:`um2n.fem.monitors`: monitor functions (P1, :math:`m \\ge 1`) from a solution's
  recovered Hessian or gradient, their smoothing, and a simulation's ``[monitor]`` table;
* :mod:`um2n.fem.monge_ampere`: the classical Monge-Ampère mover (relaxation or
  quasi-Newton; tetrahedral meshes in serial), the baseline and the generator of training
  targets;
* :mod:`um2n.fem.transfer`: carrying fields from the mesh before a move to the mesh after
  it (conservative supermesh projection, or interpolation);
* :mod:`um2n.fem.movers`: the mover interface of the moving-mesh loop (``um2n``, ``ma``,
  ``none``) and the guard that undoes a failed or tangling move;
* :mod:`um2n.fem.loop`: the moving-mesh time loop shared by every simulation (solve,
  monitor, move, transfer), and the interface a problem implements;
* :mod:`um2n.fem.recorder`: what the loop writes (diagnostics, ParaView series, snapshots,
  checkpoints) and the restart it reads back;
* :mod:`um2n.fem.study`: cases, the study runner and the case registry, shared by
  ``um2n simulate`` and the benchmarks;
* :mod:`um2n.fem.generate`: training data for UM2N (random domains and monitors,
  Monge-Ampère targets), ``um2n generate``.

The rest of :mod:`um2n` never imports this package, so the mover core runs with torch,
torch-geometric and meshio alone.
"""
