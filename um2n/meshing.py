"""Mesh generation from the gmsh geometries in ``meshes/`` (needs the ``gmsh`` package)."""

from __future__ import annotations

import os
from pathlib import Path

from um2n.errors import MeshInputError
from um2n.io import atomic_path

#: Folder of the project's ``.geo`` files.
GEO_DIR = Path(__file__).resolve().parent.parent / "meshes"


def geo_path(name: str) -> Path:
    """Path of ``meshes/<name>.geo`` (``name`` may also be a path to a ``.geo``)."""
    p = Path(name)
    if p.suffix == ".geo" and p.exists():
        return p
    q = GEO_DIR / f"{name}.geo"
    if not q.exists():
        known = ", ".join(sorted(x.stem for x in GEO_DIR.glob("*.geo")))
        raise MeshInputError(f"{name}: no such geometry (known: {known})")
    return q


def generate_mesh(geo: str | os.PathLike, out: str | os.PathLike, lc: float | None = None,
                  numbers: dict[str, float] | None = None, seed: int = 0) -> Path:
    """Mesh a 2D ``.geo`` with gmsh and write gmsh 2.2 ASCII (read by Firedrake and meshio).

    Parameters
    ----------
    geo : path or name of a geometry in ``meshes/``
    out : output ``.msh`` path (written atomically)
    lc : mesh size, passed to the geometry as the gmsh number ``lc``
    numbers : other gmsh numbers (``DefineConstant``) of the geometry
    seed : gmsh's random seed (``Mesh.RandomSeed``), for reproducible meshes
    """
    import gmsh

    src = geo_path(str(geo))
    out = Path(out)
    values = dict(numbers or {})
    if lc is not None:
        values["lc"] = float(lc)
    with atomic_path(out) as tmp:
        gmsh.initialize(readConfigFiles=False)
        try:
            gmsh.option.setNumber("General.Terminal", 0)
            gmsh.option.setNumber("General.Verbosity", 1)
            for k, v in values.items():
                # DefineConstant[ k = {.., Name "k"} ] takes its value from ONELAB: a parser
                # variable alone is overridden by the geometry's default
                gmsh.parser.setNumber(k, [v])
                gmsh.onelab.setNumber(k, [v])
            gmsh.open(str(src))
            gmsh.option.setNumber("Mesh.RandomSeed", seed)
            gmsh.model.mesh.generate(2)
            gmsh.option.setNumber("Mesh.MshFileVersion", 2.2)
            gmsh.write(tmp)
        finally:
            gmsh.finalize()
    return out
