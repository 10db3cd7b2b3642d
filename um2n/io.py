"""Mesh files in and out (meshio), with checks that name the file and the problem.

Reads any format meshio reads (the CLI documents ``.msh`` and ``.vtu``), keeps the
physical tags (``gmsh:physical`` / ``gmsh:geometrical`` cell data, boundary ``line``
cells) and writes atomically: the output is written to a temporary file in the target
folder and renamed over the target only once complete.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import meshio
import numpy as np

from um2n.errors import MeshInputError

#: Cell types that describe boundary/interior facets of a 2D triangle mesh and are kept.
_FACET_TYPES = {"line", "vertex"}
#: Output formats (single-file formats that keep cell data): gmsh, VTK XML/legacy, medit.
WRITE_SUFFIXES = {".msh", ".vtu", ".vtk", ".mesh"}


def read_mesh(path: str | os.PathLike, dim: int = 2) -> meshio.Mesh:
    """Read a mesh with meshio; for ``dim = 2`` check that it is a 2D triangle mesh um2n
    can move (a 3D mesh is checked by :func:`um2n.tetmesh.tetrahedra_of`).

    Raises
    ------
    MeshInputError
        The file is missing or unreadable, the mesh is 3D, it has cells other than
        triangles (boundary ``line`` and ``vertex`` cells are allowed), it has no
        triangles, or its coordinates are not finite.
    """
    p = Path(path)
    if not p.exists():
        raise MeshInputError(f"{p}: file not found")
    if p.is_dir():
        raise MeshInputError(f"{p}: is a folder, not a mesh file")
    if p.stat().st_size == 0:
        raise MeshInputError(f"{p}: file is empty")
    messages = io.StringIO()
    try:
        # meshio prints its parse errors and calls sys.exit when no reader succeeds
        with contextlib.redirect_stdout(messages), contextlib.redirect_stderr(messages):
            mesh = meshio.read(p)
    except (Exception, SystemExit) as exc:
        text = str(exc).strip() if not isinstance(exc, SystemExit) else ""
        text = text or messages.getvalue().strip() or type(exc).__name__
        reason = [ln for ln in text.splitlines() if ln.strip()][-1].removeprefix("Error: ")
        raise MeshInputError(f"{p}: cannot read the mesh ({reason})") from None
    if dim == 2:
        check_mesh(mesh, str(p))
    return mesh


def check_mesh(mesh: meshio.Mesh, name: str = "mesh") -> None:
    """Check that ``mesh`` is a finite, planar, triangle-only mesh (see :func:`read_mesh`)."""
    pts = np.asarray(mesh.points)
    if pts.ndim != 2 or pts.shape[0] == 0:
        raise MeshInputError(f"{name}: the mesh has no points")
    if not np.all(np.isfinite(pts)):
        raise MeshInputError(f"{name}: {int((~np.isfinite(pts)).any(axis=1).sum())} point(s) have NaN or infinite coordinates")
    types = [c.type for c in mesh.cells]
    volume = [t for t in types if t in ("tetra", "hexahedron", "wedge", "pyramid", "tetra10", "hexahedron20")]
    if volume:
        raise MeshInputError(f"{name}: 3D mesh ({volume[0]} cells); um2n moves 2D triangle meshes")
    if pts.shape[1] == 3:
        zspan = float(np.ptp(pts[:, 2]))
        xyspan = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 1e-300))
        if zspan > 1e-12 * xyspan:
            raise MeshInputError(f"{name}: a surface mesh in 3D space (z varies by {zspan:g}, no tetrahedra); "
                                 "um2n moves planar 2D meshes and tetrahedral volume meshes")
    elif pts.shape[1] != 2:
        raise MeshInputError(f"{name}: points have {pts.shape[1]} coordinates; expected 2 (or 3 with z = 0)")
    other = sorted({t for t in types if t != "triangle" and t not in _FACET_TYPES})
    if other:
        raise MeshInputError(
            f"{name}: has {', '.join(other)} cells; um2n moves linear triangle meshes only"
        )
    if "triangle" not in types:
        raise MeshInputError(f"{name}: the mesh has no triangle cells")
    tri = np.concatenate([c.data for c in mesh.cells if c.type == "triangle"])
    if len(tri) == 0:
        raise MeshInputError(f"{name}: the mesh has no triangle cells")
    if tri.min() < 0 or tri.max() >= pts.shape[0]:
        raise MeshInputError(f"{name}: triangle cells refer to points that do not exist")


def triangles_of(mesh: meshio.Mesh) -> np.ndarray:
    """All triangle cells of ``mesh`` as one ``(M, 3)`` int64 array."""
    return np.concatenate([c.data for c in mesh.cells if c.type == "triangle"]).astype(np.int64)


def cell_tags(mesh: meshio.Mesh, cell_type: str) -> np.ndarray | None:
    """Physical tags of the cells of ``cell_type`` (gmsh:physical, or medit/vtk equivalents)."""
    for key in ("gmsh:physical", "medit:ref", "cell_tags", "CellEntityIds"):
        if key in mesh.cell_data:
            vals = [np.asarray(d) for c, d in zip(mesh.cells, mesh.cell_data[key]) if c.type == cell_type]
            if vals:
                return np.concatenate(vals).astype(np.int64).ravel()
    return None


def tagged_cells_of(mesh: meshio.Mesh, cell_type: str) -> tuple[np.ndarray, np.ndarray] | None:
    """All cells of ``cell_type`` with their physical tags (-1 where there are none):
    ``(cells (K, k), tags (K,))``, or ``None`` if the mesh has no such cells."""
    if not any(c.type == cell_type for c in mesh.cells):
        return None
    cells = np.concatenate([c.data for c in mesh.cells if c.type == cell_type]).astype(np.int64)
    tags = cell_tags(mesh, cell_type)
    if tags is None or len(tags) != len(cells):
        tags = np.full(len(cells), -1, dtype=np.int64)
    return cells, tags


def boundary_segments_of(mesh: meshio.Mesh) -> tuple[np.ndarray, np.ndarray] | None:
    """Tagged boundary ``line`` cells: ``(edges (K, 2), tags (K,))``, or ``None`` if absent."""
    return tagged_cells_of(mesh, "line")


def save_figure(fig, path: str | os.PathLike, dpi: int = 100, **kwargs) -> None:
    """Save a matplotlib figure atomically (:func:`atomic_path`); ``kwargs`` go to ``savefig``."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, **kwargs)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, comm=None):
    """Context manager: yields a temporary path beside ``path``; on success the file written
    there replaces ``path`` (with the usual permissions), on failure it is removed.

    So a reader never sees a half-written file, and a killed run leaves the old file intact.
    The temporary name keeps ``path``'s suffix, so writers that choose the format by suffix
    (matplotlib, meshio) work unchanged.

    With an MPI communicator ``comm`` (a file written collectively, such as a Firedrake
    ``CheckpointFile``), every rank gets the same temporary name, and rank 0 renames it once
    all ranks have left the block.
    """
    p = Path(path)
    rank = 0 if comm is None else comm.rank
    tmp = None
    if rank == 0:
        handle, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=p.parent)
        os.close(handle)
    if comm is not None:
        tmp = comm.bcast(tmp, root=0)
    ok = False
    try:
        yield tmp
        ok = True
    finally:
        if comm is not None:
            ok = comm.allreduce(ok, op=_mpi_land())
        if rank == 0:
            if ok:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)      # mkstemp makes files private
                os.replace(tmp, p)
            elif os.path.exists(tmp):
                os.unlink(tmp)


def write_mesh(mesh: meshio.Mesh, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``mesh`` atomically; ``.msh`` is written as gmsh 2.2 ASCII (Firedrake, gmsh, ParaView).

    Raises
    ------
    MeshInputError
        ``path`` exists and ``overwrite`` is false, or its folder does not exist.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise MeshInputError(f"{p}: output exists; choose another name or pass --overwrite")
    if not p.parent.exists():
        raise MeshInputError(f"{p}: output folder {p.parent} does not exist")
    suffix = p.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise MeshInputError(f"{p}: cannot write {suffix or 'files without a suffix'} "
                             f"(use one of {', '.join(sorted(WRITE_SUFFIXES))})")
    try:
        with atomic_path(p) as tmp:
            if suffix == ".msh":
                _write_gmsh22(mesh, tmp)
            else:
                meshio.write(tmp, mesh)
    except (OSError, ValueError, KeyError, meshio.WriteError) as exc:
        raise MeshInputError(f"{p}: cannot write the mesh ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return p


def _write_gmsh22(mesh: meshio.Mesh, path: str) -> None:
    """gmsh 2.2 needs both gmsh:physical and gmsh:geometrical for every cell block."""
    cell_data = {k: v for k, v in mesh.cell_data.items() if k.startswith("gmsh:")}
    if "gmsh:physical" not in cell_data:   # tags from another format (vtu CellEntityIds, medit:ref)
        for key in ("medit:ref", "cell_tags", "CellEntityIds"):
            if key in mesh.cell_data:
                cell_data["gmsh:physical"] = [np.asarray(d).ravel().astype(np.int32) for d in mesh.cell_data[key]]
                break
    for key in ("gmsh:physical", "gmsh:geometrical"):
        if key not in cell_data:
            other = cell_data.get("gmsh:physical") or cell_data.get("gmsh:geometrical")
            cell_data[key] = [np.asarray(d) for d in other] if other else [
                np.ones(len(c.data), dtype=np.int32) for c in mesh.cells
            ]
    pts = np.asarray(mesh.points)
    if pts.shape[1] == 2:
        pts = np.column_stack([pts, np.zeros(len(pts))])
    out = meshio.Mesh(pts, mesh.cells, point_data=mesh.point_data, cell_data=cell_data,
                      field_data=mesh.field_data)
    meshio.write(path, out, file_format="gmsh22", binary=False)


def _mpi_land():
    from mpi4py import MPI

    return MPI.LAND
