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


#: The solids :func:`generate_solid_mesh` knows.
SOLIDS = ("box", "l_prism", "box_sphere_hole", "box_cylinder_hole", "box_ellipsoid_hole")


def generate_solid_mesh(shape: str, out: str | os.PathLike, lc: float = 0.2, seed: int = 0) -> Path:
    """Mesh a solid with gmsh (OpenCASCADE) into tetrahedra; write gmsh 2.2 ASCII.

    Every boundary surface is its own physical group (tags 1, 2, ...), the volume is
    physical group 1.

    Parameters
    ----------
    shape : one of :data:`SOLIDS`
        ``box``: the unit cube; ``l_prism``: an L-shaped section (the unit square less
        ``[0.5, 1]^2``) extruded by 0.5; ``box_sphere_hole``: the unit cube less the ball of
        radius 0.25 about its centre; ``box_cylinder_hole``: the unit cube less the cylinder
        of radius 0.2 about the line ``x = 0.5, y = 0.5`` (a hole through it);
        ``box_ellipsoid_hole``: the unit cube less an ellipsoid with semi-axes 0.3, 0.2, 0.15
        about its centre (a curved face that is neither a sphere nor a cylinder).
    out : output ``.msh`` path (written atomically)
    lc : mesh size
    seed : gmsh's random seed
    """
    import gmsh

    if shape not in SOLIDS:
        raise MeshInputError(f"{shape}: no such solid (known: {', '.join(SOLIDS)})")
    out = Path(out)
    with atomic_path(out) as tmp:
        gmsh.initialize(readConfigFiles=False)
        try:
            gmsh.option.setNumber("General.Terminal", 0)
            gmsh.option.setNumber("General.Verbosity", 1)
            occ = gmsh.model.occ
            if shape == "box":
                occ.addBox(0, 0, 0, 1, 1, 1)
            elif shape == "l_prism":
                occ.cut([(3, occ.addBox(0, 0, 0, 1, 1, 0.5))], [(3, occ.addBox(0.5, 0.5, -0.1, 0.6, 0.6, 0.7))])
            elif shape == "box_sphere_hole":
                occ.cut([(3, occ.addBox(0, 0, 0, 1, 1, 1))], [(3, occ.addSphere(0.5, 0.5, 0.5, 0.25))])
            elif shape == "box_ellipsoid_hole":
                ball = occ.addSphere(0.5, 0.5, 0.5, 1.0)
                occ.dilate([(3, ball)], 0.5, 0.5, 0.5, 0.3, 0.2, 0.15)
                occ.cut([(3, occ.addBox(0, 0, 0, 1, 1, 1))], [(3, ball)])
            else:
                occ.cut([(3, occ.addBox(0, 0, 0, 1, 1, 1))], [(3, occ.addCylinder(0.5, 0.5, -0.1, 0, 0, 1.2, 0.2))])
            occ.synchronize()
            vols = [t for _, t in gmsh.model.getEntities(3)]
            gmsh.model.addPhysicalGroup(3, vols, 1)
            for k, (_, s) in enumerate(gmsh.model.getEntities(2), start=1):
                gmsh.model.addPhysicalGroup(2, [s], k)
            gmsh.option.setNumber("Mesh.MeshSizeMin", lc)
            gmsh.option.setNumber("Mesh.MeshSizeMax", lc)
            gmsh.option.setNumber("Mesh.RandomSeed", seed)
            gmsh.model.mesh.generate(3)
            gmsh.option.setNumber("Mesh.MshFileVersion", 2.2)
            gmsh.write(tmp)
        finally:
            gmsh.finalize()
    return out
