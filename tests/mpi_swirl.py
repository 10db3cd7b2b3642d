"""Run by tests/test_parallel.py under mpiexec: the swirl through the moving-mesh loop.

Arguments: a JSON object of settings (dotted names, as in :class:`um2n.fem.study.Variant`),
the output folder, then optionally ``stop_after=N`` or ``resume``. Prints, on rank 0, one
JSON line: the number of ranks, the summary, the steps and the loop's counters.
"""

import json
import sys

import petsc4py

petsc4py.init(sys.argv[:1])
import firedrake as fd  # noqa: E402

from um2n.fem.study import Variant  # noqa: E402
from um2n_simulations.swirl import CASE  # noqa: E402

settings, out = json.loads(sys.argv[1]), sys.argv[2]
options = dict(a.split("=", 1) if "=" in a else (a, "") for a in sys.argv[3:])
cfg = Variant("run", settings).apply(CASE.config(), out)
res = CASE.run(cfg, resume="resume" in options,
               stop_after=int(options["stop_after"]) if "stop_after" in options else None)
if fd.COMM_WORLD.rank == 0:
    print(json.dumps({"ranks": fd.COMM_WORLD.size, "summary": res.summary, "steps": res.steps,
                      "resumed_from_step": res.resumed_from_step, "completed": res.completed,
                      "max_mass_change": max(abs(r["mass_change"]) for r in res.diagnostics),
                      **res.counters}))
