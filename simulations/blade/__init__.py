r"""High-fidelity model of a turbine blade for a hyper-reduced ROM (Casenave et al., MCA 2019).

Quasi-static small-strain elasto-viscoplasticity in plane strain (Norton flow with a
threshold, Prager kinematic hardening, temperature-dependent parameters), loaded by a
hot-spot temperature field and the centrifugal force over a start-up/cruise/shut-down cycle.

Modules (one concept each):

* :mod:`~um2n_simulations.blade.material` — the law and its vectorised backward-Euler update with
  the consistent tangent (numpy only);
* :mod:`~um2n_simulations.blade.hf` — the Firedrake solver: quadrature-point data, Newton's
  method, and the hooks of a hyper-reduced model (weights, strain operator, per-point
  contributions, the law on a subset of points);
* :mod:`~um2n_simulations.blade.loading` — temperature field, centrifugal force, load cycle;
* :mod:`~um2n_simulations.blade.blade` — the blade case (``meshes/turbine_blade.geo``), its
  configuration and the cycle runner keeping snapshots.
"""
