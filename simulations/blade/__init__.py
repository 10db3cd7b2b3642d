r"""A turbine blade: high-fidelity model and hyper-reduced model with an error indicator.

After Casenave, Akkari et al. (MCA 2019, 24(2) 41). **HF model**: quasi-static small-strain
elasto-viscoplasticity in plane strain (Norton flow with a threshold, Prager kinematic
hardening, temperature-dependent parameters), loaded by a hot-spot temperature field and the
centrifugal force over a start-up/cruise/shut-down cycle; the law is evaluated at the
quadrature points, Newton's method on the assembled consistent tangent. **Reduced model**: a
Galerkin projection on a POD basis of HF displacement snapshots, the internal forces
integrated by an empirical cubature (a few points with positive weights, where alone the law
is evaluated), an error indicator whose cost is independent of the HF mesh, and, where the
indicator exceeds its tolerance, enrichment by one HF step.

Modules (one concept each):

* :mod:`~um2n_simulations.blade.material`: the law and its vectorised backward-Euler update
  with the consistent tangent (numpy only);
* :mod:`~um2n_simulations.blade.hf`: the Firedrake solver: quadrature-point data, Newton's
  method, and the hooks of a hyper-reduced model (weights, strain operator, per-point
  contributions, the law on a subset of points);
* :mod:`~um2n_simulations.blade.loading`: temperature field, centrifugal force, load cycle;
* :mod:`~um2n_simulations.blade.blade`: the blade case: the mesh of
  ``meshes/turbine_blade.geo`` and its outline (read from the ``.geo``), the hot spots on the
  suction side, boundary conditions, the cycle runner keeping snapshots;
* :mod:`~um2n_simulations.blade.adapt`: the one-off r-adaptation of the HF mesh by UM2N, and
  the mover study at equal degrees of freedom;
* :mod:`~um2n_simulations.blade.pod`: snapshot POD, the method of snapshots with a growing
  Gram matrix, Gram-Schmidt enrichment of a basis;
* :mod:`~um2n_simulations.blade.ecm`: the empirical cubature method: non-negative orthogonal
  matching pursuit, warm-started NNLS, the fit over a growing training set;
* :mod:`~um2n_simulations.blade.gappy`: Gappy-POD: fit, misfit and reconstruction from
  sampled entries;
* :mod:`~um2n_simulations.blade.estimator`: the hierarchical error estimate (one Newton
  correction in a richer reduced space);
* :mod:`~um2n_simulations.blade.rom`: the reduced model: offline data, reduced Newton,
  indicators, enrichment, and the calibration of the Gappy indicators' tolerance;
* :mod:`~um2n_simulations.blade.rom_case`: ``um2n simulate blade-rom``, the study of the
  reduced model against HF on unseen loads (errors, speed-ups, correlations);
* :mod:`~um2n_simulations.blade.report`: that study's outputs (CSV, JSON, plots, ParaView).
"""
