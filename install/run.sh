#!/usr/bin/env bash
# Run the environment's Python with the stack's runtime settings: bash install/run.sh ARGS...
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
PY=$(um2n_python)
if [ ! -x "$PY" ]; then
    echo "um2n: no environment at $PY; run 'make install' first" >&2
    exit 1
fi
um2n_petsc_env "$PY"
# The checkout being run always wins over whatever clone the editable install points at.
export PYTHONPATH="$UM2N_SRC${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$(dirname "$PY"):$PATH"
exec "$PY" "$@"
