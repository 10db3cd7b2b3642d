# um2n on the official Firedrake image of the same release that `make install` builds
# (install/versions.env: FIREDRAKE_VERSION). Not built by CI: no Docker engine runs there.
#
#   docker build -t um2n .
#   docker run --rm -v "$PWD/output:/opt/um2n/output" um2n make run
#   docker run --rm um2n make test
FROM firedrakeproject/firedrake-vanilla-default:2026.10.0

ENV OMP_NUM_THREADS=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    UM2N_USE_SYSTEM=1

# Shared libraries for the gmsh and vtk (pyvista) wheels.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libglu1-mesa libgl1 libxrender1 libxcursor1 \
        libxft2 libxinerama1 libosmesa6 make \
 && rm -rf /var/lib/apt/lists/*

# The CPU build of torch, pinned (PyPI's default Linux wheel is a CUDA build of several GB).
RUN python3 -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/um2n
COPY . /opt/um2n
# Firedrake imports here, so the install step uses this environment and only adds
# torch-geometric, meshio, pyvista, gmsh, ... and um2n itself (editable).
RUN bash install/install.sh

CMD ["make", "run"]
