#!/usr/bin/env bash
# um2n install step: Debian packages + PETSc/petsc4py/Firedrake built against Debian's
# MPI/HDF5/MUMPS + CPU torch, torch-geometric, meshio, pyvista, gmsh + um2n (editable).
#
# Idempotent: every step leaves a stamp (a hash of what it depends on) in the
# environment; a second run checks the stamps and finishes in seconds.
# Usage: bash install/install.sh [--force STEP]
set -euo pipefail

# shellcheck disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

FORCE_STEP=""
ADOPT=""
if [ "${1:-}" = "--force" ]; then FORCE_STEP="${2:?--force needs a step name}"; fi
# --adopt: record the current inputs of the build steps as built, without building, for an
# environment that an earlier version of this script built from the same versions and options
if [ "${1:-}" = "--adopt" ]; then ADOPT=1; fi

T0=$(date +%s)
STEP_NO=0
N_STEPS=11
case "$UM2N_VENV$HOME" in
    *[[:space:]]*) echo "[um2n install] the environment path must not contain spaces (PETSc's build fails): $UM2N_VENV" >&2; exit 1 ;;
esac
mkdir -p "$UM2N_CACHE"
# one install at a time per cache folder (two clones or CI jobs may share the environment)
exec 9>"$UM2N_CACHE/.install.lock"
flock 9

say() { printf '[um2n install] %s\n' "$*"; }
elapsed() { echo $(( $(date +%s) - $1 )); }

# run_step NAME KEY COMMAND...: run COMMAND unless the stamp of NAME holds KEY.
# Output goes to $UM2N_LOGDIR/NAME.log; on failure the step and the log are named.
run_step() {
    local name="$1" key="$2"; shift 2
    STEP_NO=$((STEP_NO + 1))
    local stampf="$STAMPDIR/$name"
    if [ "$FORCE_STEP" != "$name" ] && [ -f "$stampf" ] && [ "$(cat "$stampf")" = "$key" ]; then
        say "[$STEP_NO/$N_STEPS] $name: up to date"
        return 0
    fi
    if [ -n "$ADOPT" ] && [ "$name" != torch ] && [ "$name" != python-deps ] && [ "$name" != um2n ]; then
        mkdir -p "$(dirname "$stampf")"
        printf '%s' "$key" >"$stampf"
        say "[$STEP_NO/$N_STEPS] $name: adopted as built"
        return 0
    fi
    mkdir -p "$UM2N_LOGDIR"
    local log="$UM2N_LOGDIR/$name.log" t
    t=$(date +%s)
    say "[$STEP_NO/$N_STEPS] $name: running (log: $log)"
    if ! "$@" >"$log" 2>&1; then
        say "FAILED at step '$name' after $(elapsed "$t") s. Last lines of the log:"
        tail -n 25 "$log" | sed 's/^/    /'
        say "Full log: $log"
        exit 1
    fi
    mkdir -p "$(dirname "$stampf")"
    printf '%s' "$key" >"$stampf"
    say "[$STEP_NO/$N_STEPS] $name: done in $(elapsed "$t") s (total $(elapsed "$T0") s)"
}

hash_of() { printf '%s' "$*" | sha256sum | cut -c1-16; }
hash_files() { cat "$@" | sha256sum | cut -c1-16; }

PKGS=$(sed -e 's/#.*//' "$UM2N_SRC/install/debian-packages.txt" | xargs)

# ---------------------------------------------------------------------------
# Step 1: Debian packages (skipped when all are installed already).
apt_step() {
    local missing="" p
    for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
    if [ -z "$missing" ]; then echo "all Debian packages present"; return 0; fi
    echo "installing: $missing"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update
    # shellcheck disable=SC2086
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
}

apt_missing_quick() {
    for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || return 0; done
    return 1
}

# ---------------------------------------------------------------------------
# Mode: the user's own environment where `import firedrake` works, else our venv.
PY=$(um2n_python)
if [ "$PY" != "$UM2N_VENV/bin/python" ]; then
    say "using your own environment ($PY): 'import firedrake' works there"
    USER_ENV=1
    N_STEPS=3
    STAMPDIR="$UM2N_CACHE/user-env-$(hash_of "$(um2n_prefix "$PY")")"
    UM2N_LOGDIR="$STAMPDIR/logs"
else
    USER_ENV=0
    STAMPDIR="$UM2N_VENV/.um2n-steps"
    say "environment: $UM2N_VENV (override with UM2N_VENV=...)"
fi

if [ "$USER_ENV" = 0 ]; then
    if apt_missing_quick; then
        run_step debian-packages "$(hash_of "$PKGS" "$(date +%s)")" apt_step
    else
        STEP_NO=$((STEP_NO + 1)); say "[$STEP_NO/$N_STEPS] debian-packages: up to date"
    fi

    MULTIARCH=$(gcc -print-multiarch)
    PETSC_OPTS=$(sed -e "s#@MULTIARCH@#$MULTIARCH#g" "$UM2N_SRC/install/petsc-configure-options.txt" | xargs)
    HOST_PY=$(command -v python3 || true)
    if [ -z "$HOST_PY" ]; then
        say "FAILED: no python3 on PATH (install Debian's python3, python3-dev and python3-venv)"
        exit 1
    fi

    make_venv() {
        "$HOST_PY" -m venv "$UM2N_VENV" && "$UM2N_VENV/bin/python" -m pip install -U 'pip>=24' 'setuptools>=70' wheel
    }
    # Every key includes the key before it: changing a step rebuilds every step after it.
    KEY=$(hash_of "$HOST_PY" "$("$HOST_PY" -V 2>&1)")
    run_step venv "$KEY" make_venv

    PIP=("$UM2N_VENV/bin/python" -m pip install --no-input)
    # source builds are forced: a changed key must really rebuild (pip would say "already satisfied")
    BUILD=("${PIP[@]}" --force-reinstall --no-deps --no-build-isolation)
    KEY=$(hash_of "$KEY" cython numpy pkgconfig v2)
    run_step build-tools "$KEY" "${PIP[@]}" 'cython>=3' 'numpy>=1.26,<3' pkgconfig

    # mpi4py must match Debian's Open MPI; -O1 -g0 keeps its one huge C file affordable.
    KEY=$(hash_of "$KEY" "$MPI4PY_VERSION")
    run_step mpi4py "$KEY" env CC=mpicc CFLAGS="-O1 -g0" "${BUILD[@]}" --no-binary mpi4py "mpi4py==$MPI4PY_VERSION"

    KEY=$(hash_of "$KEY" "$PETSC_VERSION" "$PETSC_OPTS")
    run_step petsc "$KEY" env PETSC_CONFIGURE_OPTIONS="$PETSC_OPTS" CC=mpicc CXX=mpicxx FC=mpif90 \
        "${BUILD[@]}" --no-cache-dir "petsc==$PETSC_VERSION"

    PETSC_DIR_V=$("$UM2N_VENV/bin/python" -c 'import petsc; print(petsc.get_petsc_dir())')
    # pip's cache of locally built wheels could hand back a petsc4py/h5py built against
    # another PETSc/HDF5: drop those before building (Firedrake's build reuses the new ones)
    build_petsc4py() {
        "$UM2N_VENV/bin/python" -m pip cache remove petsc4py || true
        env PETSC_DIR="$PETSC_DIR_V" PETSC_ARCH="" CC=mpicc CXX=mpicxx "${BUILD[@]}" "petsc4py==$PETSC4PY_VERSION"
    }
    KEY=$(hash_of "$KEY" "$PETSC4PY_VERSION")
    run_step petsc4py "$KEY" build_petsc4py

    build_h5py() {
        "$UM2N_VENV/bin/python" -m pip cache remove h5py || true
        env HDF5_MPI=ON CC=mpicc HDF5_INCLUDEDIR=/usr/include/hdf5/openmpi \
            HDF5_LIBDIR="/usr/lib/$MULTIARCH/hdf5/openmpi" "${BUILD[@]}" --no-binary h5py "h5py==$H5PY_VERSION"
    }
    KEY=$(hash_of "$KEY" "$H5PY_VERSION" mpi)
    run_step h5py "$KEY" build_h5py

    KEY=$(hash_of "$KEY" "$FIREDRAKE_VERSION")
    run_step firedrake "$KEY" env PETSC_DIR="$PETSC_DIR_V" PETSC_ARCH="" CC=mpicc CXX=mpicxx \
        "${PIP[@]}" "firedrake==$FIREDRAKE_VERSION" "petsc4py==$PETSC4PY_VERSION" "h5py==$H5PY_VERSION" "mpi4py==$MPI4PY_VERSION"
else
    PIP=("$PY" -m pip install --no-input)
fi

# torch, CPU build. PyPI's Linux wheel of torch is a CUDA build of several GB; the CPU wheel
# comes from a local wheel folder when pip has one (PIP_FIND_LINKS, as on our machines),
# else from PyTorch's CPU index (override with UM2N_TORCH_INDEX).
install_torch() {
    local found="" links
    links="${PIP_FIND_LINKS:-} $("${PIP[0]}" -m pip config get global.find-links 2>/dev/null || true)"
    for d in $links; do
        compgen -G "$d/torch-$TORCH_VERSION+cpu-*.whl" >/dev/null && found=1
    done
    if [ -n "$found" ] && [ -z "${UM2N_TORCH_INDEX:-}" ]; then
        "${PIP[@]}" "torch==$TORCH_VERSION+cpu"
    else
        "${PIP[@]}" "torch==$TORCH_VERSION" --index-url "${UM2N_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
    fi
}
run_step torch "$(hash_of "$TORCH_VERSION" cpu "${KEY:-user}")" install_torch

PYDEPS=("torch==$TORCH_VERSION" "torch-geometric==$TORCH_GEOMETRIC_VERSION" meshio pyvista gmsh tqdm
        pytest matplotlib scipy safetensors)
run_step python-deps "$(hash_of "${PYDEPS[*]}" "$(hash_files "$UM2N_SRC/pyproject.toml")")" \
    "${PIP[@]}" "${PYDEPS[@]}"

# The project itself, editable. A clone in another folder re-points it (a few seconds).
SRC_KEY=$(hash_of "$UM2N_SRC" "$(hash_files "$UM2N_SRC/pyproject.toml")")
run_step um2n "$SRC_KEY" "${PIP[@]}" --no-deps --no-build-isolation -e "$UM2N_SRC"

if [ "$USER_ENV" = 0 ]; then
    printf 'firedrake=%s petsc=%s torch=%s src=%s\n' "$FIREDRAKE_VERSION" "$PETSC_VERSION" \
        "$TORCH_VERSION" "$UM2N_SRC" >"$UM2N_STAMP"
fi
say "ready in $(elapsed "$T0") s: $PY"
