"""Shared fixtures: meshes generated from the project's .geo files, once per session."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ["unit_square", "annulus", "polygon_with_hole"]
#: mesh sizes giving about 500 vertices on each domain
DEFAULT_LC = {"unit_square": 0.05, "annulus": 0.08, "polygon_with_hole": 0.06, "dfg_cylinder": 0.04}
HAVE_FIREDRAKE = importlib.util.find_spec("firedrake") is not None

if importlib.util.find_spec("petsc4py") is not None:
    # PETSc would otherwise read pytest's command line as PETSc options (and warn about them)
    import petsc4py

    petsc4py.init(sys.argv[:1])
    warnings.filterwarnings("ignore", message="Calling petsctools.init")


def pytest_collection_modifyitems(config, items):
    # Firedrake tests must not pass silently without Firedrake: they fail, unless the user
    # says explicitly that this is a core-only environment (UM2N_CORE_ONLY=1).
    if HAVE_FIREDRAKE or os.environ.get("UM2N_CORE_ONLY") != "1":
        return
    skip = pytest.mark.skip(reason="UM2N_CORE_ONLY=1: Firedrake not installed")
    for item in items:
        if "firedrake" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mesh_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("meshes")


@pytest.fixture(scope="session")
def mesh_file(mesh_dir):
    """``mesh_file(name, lc=None)``: path of a gmsh mesh of ``meshes/<name>.geo``, cached."""
    from um2n.meshing import generate_mesh

    cache: dict = {}

    def make(name: str, lc: float | None = None) -> Path:
        lc = DEFAULT_LC.get(name) if lc is None else lc
        key = (name, lc)
        if key not in cache:
            cache[key] = generate_mesh(name, mesh_dir / f"{name}_{lc}.msh", lc=lc)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def graph_of(mesh_file):
    """``graph_of(name)``: the :class:`MeshGraph` of a project mesh, cached."""
    from um2n.mesh import MeshGraph

    cache: dict = {}

    def make(name: str, lc: float | None = None):
        key = (name, lc)
        if key not in cache:
            cache[key] = MeshGraph.from_file(mesh_file(name, lc))
        return cache[key]

    return make
