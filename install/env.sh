# Sourced by install.sh and by the Makefile's run/test targets (bash).
# Decides which Python um2n uses and sets the runtime environment of the stack.
#
#   UM2N_VENV   where the built environment lives (default: under the user's cache dir);
#               kept OUTSIDE the checkout so that every clone reuses it.
#   UM2N_USE_SYSTEM=0|1  force (1) or forbid (0) using the caller's own Python when
#               `import firedrake` already works there (default: auto-detect).

UM2N_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
set -a; . "$UM2N_SRC/install/versions.env"; set +a
UM2N_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/um2n"
UM2N_VENV="${UM2N_VENV:-$UM2N_CACHE/venv-firedrake-$FIREDRAKE_VERSION}"
UM2N_VENV="$(realpath -m "$UM2N_VENV")"          # absolute, no trailing slash
UM2N_STAMP="$UM2N_VENV/.um2n-stamp"
UM2N_LOGDIR="$UM2N_VENV.logs"

# Open MPI refuses to run as root without these; Firedrake wants one OpenMP thread.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# Open MPI inside containers/VMs without a high-speed fabric: keep shared-memory + tcp quiet.
export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-none}"
export OMPI_MCA_rmaps_base_oversubscribe="${OMPI_MCA_rmaps_base_oversubscribe:-1}"

um2n_prefix() {
    # sys.prefix of a Python (a venv's python is a symlink to its base interpreter)
    "$1" -c 'import sys; print(sys.prefix)' 2>/dev/null
}

um2n_system_python() {
    # The caller's python3, if `import firedrake` works there (and it is not our venv).
    local py
    py="$(command -v python3 || true)"
    [ -n "$py" ] || return 1
    [ "$(um2n_prefix "$py")" != "$UM2N_VENV" ] || return 1
    "$py" -c "import firedrake" >/dev/null 2>&1 || return 1
    printf '%s\n' "$py"
}

um2n_python() {
    # Print the Python interpreter um2n runs with.
    if [ "${UM2N_USE_SYSTEM:-auto}" = 1 ] || { [ "${UM2N_USE_SYSTEM:-auto}" = auto ] && [ ! -f "$UM2N_STAMP" ]; }; then
        if um2n_system_python; then return 0; fi
    fi
    if [ "${UM2N_USE_SYSTEM:-auto}" = 1 ]; then
        echo "um2n: UM2N_USE_SYSTEM=1 but 'import firedrake' fails with $(command -v python3)" >&2
        return 1
    fi
    printf '%s\n' "$UM2N_VENV/bin/python"
}

um2n_petsc_env() {
    # PETSC_DIR of the PyPI-built PETSc inside the venv (no-op for a system environment).
    local py="$1" dir
    if dir="$("$py" -c 'import petsc; print(petsc.get_petsc_dir())' 2>/dev/null)"; then
        export PETSC_DIR="$dir" PETSC_ARCH=""
    fi
}
