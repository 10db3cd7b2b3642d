"""Run by tests/test_parallel.py under mpiexec: a case through the moving-mesh loop.

Arguments: the case's name, a JSON object of settings (dotted names, as in
:class:`um2n.fem.study.Variant`), the output folder, then optionally ``stop_after=N`` or
``resume``. Prints, on rank 0, one JSON line: the number of ranks, the summary, the steps,
the loop's counters, the last row of the diagnostics and (``series``) all of them.
"""

import json
import sys

import petsc4py

petsc4py.init(sys.argv[:1])
import firedrake as fd  # noqa: E402

from um2n.fem.study import Variant, get_case  # noqa: E402

CASE = get_case(sys.argv[1])
settings, out = json.loads(sys.argv[2]), sys.argv[3]
options = dict(a.split("=", 1) if "=" in a else (a, "") for a in sys.argv[4:])
cfg = Variant("run", settings).apply(CASE.config(), out)
res = CASE.run(cfg, resume="resume" in options,
               stop_after=int(options["stop_after"]) if "stop_after" in options else None)
if fd.COMM_WORLD.rank == 0:
    print(json.dumps({"ranks": fd.COMM_WORLD.size, "summary": res.summary, "steps": res.steps,
                      "resumed_from_step": res.resumed_from_step, "completed": res.completed,
                      "last": res.diagnostics[-1], **res.counters,
                      **({"diagnostics": res.diagnostics} if "series" in options else {})}, default=float))
