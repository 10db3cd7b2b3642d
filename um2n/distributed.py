r"""UM2N on a mesh distributed over MPI ranks: each rank moves the vertices it owns.

A rank holds a :class:`Partition` of the mesh: the vertices it *owns*, every triangle that
has an owned vertex (the *stars* of the owned vertices, completed across the partition at
construction), and the other vertices of those triangles, the *ghosts*. The network runs on
the rank's vertices (:meth:`DistributedMover.move`), and every quantity it needs from
beyond the rank comes through MPI (mpi4py):

* **halo exchange** (:meth:`Partition.exchange`): the owner of each ghost sends its value,
  point to point between neighbouring ranks only.
  The edge encoder and each deformer layer sum over the neighbours of a vertex, which the
  star holds; the ghosts' rows are refreshed after the encoders and after each deformer
  layer (:math:`O(\text{halo})` numbers per exchange);
* **reductions** (:meth:`Partition.sum`, :meth:`Partition.max`): the latent tokens read
  the whole mesh, :math:`\mathrm{softmax}_j(q\cdot k_j)\,v_j`, as partial sums over the
  owned rows and one all-reduce of the :math:`M \times d` summaries per block
  (:meth:`um2n.model.MultiHeadAttention.forward_distributed`); the bounding box, the
  monitor's range and the gate are reductions too;
* **the boundary**: its vertices (:math:`O(\sqrt N)` of them) are gathered on every rank
  once, classified there as in serial (:func:`um2n.boundary.classify_boundary`), and the
  boundary vertices' proposals are gathered at each move and projected on every rank
  alike, which keeps the chains' order rule (vertices never pass each other) exact;
* **the safeguard**: :func:`untangle_distributed` runs the serial line search on the
  rank's triangles, with the step lengths of the ghosts exchanged and the stopping test
  reduced at each halving.

The moved coordinates equal the serial ones (:class:`um2n.mover.UM2NMover`) up to the
rounding of float32 sums taken in another order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from mpi4py import MPI
from torch_geometric.data import Data

from um2n.boundary import CORNER, INTERIOR, SLIDING, BoundaryModel, classify_boundary
from um2n.errors import MeshInputError
from um2n.monitor import MonitorLike, evaluate_monitor
from um2n.safeguard import SafeguardReport


def _alltoall_arrays(comm, send: list[np.ndarray]) -> list[np.ndarray]:
    """``send[r]`` to rank ``r``; returns what each rank sent here (one Alltoallv)."""
    dtype = send[0].dtype
    width = int(np.prod(send[0].shape[1:])) if send[0].ndim > 1 else 1
    counts = np.array([len(a) * width for a in send], dtype=np.int64)
    rcounts = np.empty_like(counts)
    comm.Alltoall(counts, rcounts)
    sbuf = np.ascontiguousarray(np.concatenate([a.reshape(-1) for a in send]).astype(dtype))
    rbuf = np.empty(int(rcounts.sum()), dtype=dtype)
    comm.Alltoallv([sbuf, (counts, np.r_[0, np.cumsum(counts)[:-1]])],
                   [rbuf, (rcounts, np.r_[0, np.cumsum(rcounts)[:-1]])])
    parts = np.split(rbuf, np.cumsum(rcounts)[:-1])
    return [p.reshape((-1,) + send[0].shape[1:]) for p in parts]


def _allgather_rows(comm, a: np.ndarray) -> np.ndarray:
    parts = comm.allgather(np.ascontiguousarray(a))
    return np.concatenate(parts) if parts else a


@dataclass
class Partition:
    """One rank's part of a 2D triangle mesh distributed over ``comm`` (module docstring).

    Build it with :meth:`from_local`. Local vertices are numbered owned first, then ghosts.

    Attributes
    ----------
    comm : mpi4py communicator
    global_ids : (n,) int64
        Global number of each local vertex.
    num_owned : int
    points : (n, 2) float64
        Coordinates of the local vertices (the reference at construction).
    triangles : (T, 3) int64
        Local triangles (those with an owned vertex), counter-clockwise.
    boundary : BoundaryModel
        The classification of the local vertices (``chains`` empty: projection is global).
    global_boundary : BoundaryModel
        The model of the whole boundary, on the gathered boundary vertices ``boundary_ids``.
    boundary_ids : (B,) int64
        Global numbers of the boundary vertices (sorted), the numbering of ``global_boundary``.
    """

    comm: object
    global_ids: np.ndarray
    num_owned: int
    points: np.ndarray
    triangles: np.ndarray
    boundary: BoundaryModel
    global_boundary: BoundaryModel
    boundary_ids: np.ndarray
    edge_index: torch.Tensor = field(repr=False)
    deform_edge_index: torch.Tensor = field(repr=False)
    _send: list = field(repr=False, default_factory=list)       # per rank: local rows to send
    _recv: list = field(repr=False, default_factory=list)       # per rank: local rows to fill
    #: since the last move began: bytes this rank sent, halo exchanges and collective reductions
    bytes_exchanged: int = 0
    exchanges: int = 0
    reductions: int = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_local(cls, comm, global_ids: np.ndarray, owner: np.ndarray, points: np.ndarray,
                   triangles: np.ndarray, boundary_edges: np.ndarray, boundary_tags: np.ndarray | None = None,
                   corner_angle: float = 20.0) -> "Partition":
        """Build the rank's partition from what it holds.

        Parameters
        ----------
        comm : the communicator of the ranks that share the mesh
        global_ids, owner, points : (n,), (n,), (n, 2)
            The rank's vertices: global number, owning rank, coordinates.
        triangles : (T, 3) local indices
            The triangles this rank owns: over all ranks, every triangle exactly once.
        boundary_edges : (B, 2) local indices, with ``boundary_tags`` (B,)
            Boundary edges this rank knows (an edge may be given by several ranks).
        """
        rank, size = comm.rank, comm.size
        gid = np.asarray(global_ids, dtype=np.int64)
        owner = np.asarray(owner, dtype=np.int64)
        pts = np.asarray(points, dtype=np.float64)
        tri = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
        if not (len(gid) == len(owner) == len(pts)):
            raise MeshInputError("partition: global_ids, owner and points differ in length")
        # 1. complete the stars: each triangle goes to the owners of its vertices
        send = []
        for r in range(size):
            sel = (owner[tri] == r).any(axis=1) if r != rank else np.zeros(len(tri), bool)
            t = tri[sel]
            send.append(np.column_stack([gid[t], owner[t], pts[t].reshape(len(t), 6)]).astype(np.float64)
                        if len(t) else np.zeros((0, 12)))
        got = np.concatenate(_alltoall_arrays(comm, send))
        all_gid = np.r_[gid, got[:, :3].astype(np.int64).ravel()]
        all_owner = np.r_[owner, got[:, 3:6].astype(np.int64).ravel()]
        all_pts = np.r_[pts, got[:, 6:].reshape(-1, 2)]
        all_tri_g = np.r_[gid[tri], got[:, :3].astype(np.int64)] if len(tri) or len(got) else np.zeros((0, 3), np.int64)
        mine = np.sort(gid[owner == rank])
        at = np.minimum(np.searchsorted(mine, all_tri_g), max(len(mine) - 1, 0))
        keep = (mine[at] == all_tri_g).any(axis=1) if len(mine) else np.zeros(len(all_tri_g), bool)
        tri_g = all_tri_g[keep]
        # local numbering: owned first (by global number), then ghosts (by global number)
        ug, first = np.unique(all_gid, return_index=True)
        uowner, upts = all_owner[first], all_pts[first]
        sel = np.zeros(len(ug), bool)
        sel[np.searchsorted(ug, tri_g.ravel())] = True
        sel[np.searchsorted(ug, gid[owner == rank])] = True
        ug, uowner, upts = ug[sel], uowner[sel], upts[sel]
        order = np.lexsort((ug, uowner != rank))
        ug, uowner, upts = ug[order], uowner[order], upts[order]
        n_owned = int((uowner == rank).sum())
        by_gid = np.argsort(ug)
        ltri = by_gid[np.searchsorted(ug[by_gid], tri_g)] if len(tri_g) else np.zeros((0, 3), np.int64)
        p0, p1, p2 = upts[ltri[:, 0]], upts[ltri[:, 1]], upts[ltri[:, 2]]
        cw = ((p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (p2[:, 0] - p0[:, 0])) < 0
        ltri[cw] = ltri[cw][:, [0, 2, 1]]
        # 2. the boundary, gathered and classified on every rank alike
        be = np.asarray(boundary_edges, dtype=np.int64).reshape(-1, 2)
        tags = (np.full(len(be), -1, np.int64) if boundary_tags is None
                else np.asarray(boundary_tags, dtype=np.int64).ravel())
        rows = np.column_stack([gid[be], tags, pts[be].reshape(len(be), 4)]) if len(be) else np.zeros((0, 7))
        allb = _allgather_rows(comm, rows.astype(np.float64))
        bkey = np.sort(allb[:, :2].astype(np.int64), axis=1)
        _, first = np.unique(bkey[:, 0] * (int(bkey.max(initial=0)) + 1) + bkey[:, 1], return_index=True)
        allb = allb[np.sort(first)]
        bge = allb[:, :2].astype(np.int64)
        bids, inv = np.unique(bge.ravel(), return_inverse=True)
        bpts = np.empty((len(bids), 2))
        bpts[inv] = allb[:, 3:7].reshape(-1, 2)
        bedges = inv.reshape(-1, 2)
        # orient each boundary edge with the domain on its left (as MeshGraph does)
        bedges = _orient_boundary_edges(bedges, bids, bpts, ug, upts, ltri, comm)
        gbm = classify_boundary(bpts, bedges, allb[:, 2].astype(np.int64), corner_angle=corner_angle)
        gbm._corner_pos = bpts[gbm.kind == CORNER]
        # the local view: the classification of the local vertices
        pos_in_b = np.searchsorted(bids, ug)
        on_b = (pos_in_b < len(bids)) & (bids[np.minimum(pos_in_b, len(bids) - 1)] == ug)
        kind = np.zeros(len(ug), np.int8)
        curve = np.full(len(ug), -1, np.int64)
        param = np.full(len(ug), np.nan)
        kind[on_b], curve[on_b], param[on_b] = (gbm.kind[pos_in_b[on_b]], gbm.curve[pos_in_b[on_b]],
                                                gbm.param[pos_in_b[on_b]])
        lbm = BoundaryModel(kind=kind, curve=curve, param=param, curves=gbm.curves, chains=[],
                            chain_ends=gbm.chain_ends, min_gap=gbm.min_gap)
        lbm._corner_pos = upts[kind == CORNER]
        # 3. the model's edges, into the owned vertices
        e_half = np.concatenate([ltri[:, [0, 1]], ltri[:, [1, 2]], ltri[:, [2, 0]]])
        n_all = len(ug)
        key = np.unique(np.minimum(e_half[:, 0], e_half[:, 1]) * n_all + np.maximum(e_half[:, 0], e_half[:, 1]))
        e = np.column_stack([key // n_all, key % n_all])
        both = np.concatenate([e, e[:, ::-1]])                         # rows (src, dst)
        both = both[both[:, 1] < n_owned]
        n = len(ug)
        # each target's sources in the order of their reference coordinates (x, then y): the
        # order in which the serial mover, whose numbering sorts vertices so, sums them
        crank = np.empty(n, np.int64)
        crank[np.lexsort((upts[:, 1], upts[:, 0]))] = np.arange(n)
        ei = both[np.lexsort((crank[both[:, 0]], both[:, 1]))]
        kd = kind[both[:, 1]]
        keep = kd == INTERIOR
        sliding = np.flatnonzero(kd == SLIDING)
        gkey = lambda e: e.min(axis=1) * (int(ug.max(initial=0)) + 1) + e.max(axis=1)  # noqa: E731
        keep[sliding[np.isin(gkey(ug[both[sliding]]), gkey(bids[bedges]))]] = True
        loops = np.repeat(np.arange(n_owned), 2).reshape(n_owned, 2)
        de = np.concatenate([both[keep], loops])
        de = de[np.lexsort((crank[de[:, 0]], de[:, 1]))]
        part = cls(comm=comm, global_ids=ug, num_owned=n_owned, points=upts, triangles=ltri, boundary=lbm,
                   global_boundary=gbm, boundary_ids=bids,
                   edge_index=torch.from_numpy(ei.T.copy()), deform_edge_index=torch.from_numpy(de.T.copy()))
        # 4. the halo: each ghost's owner learns which of its rows to send here
        ghosts = np.arange(n_owned, n)
        want = [ug[ghosts[uowner[ghosts] == r]] for r in range(size)]
        part._recv = [ghosts[uowner[ghosts] == r] for r in range(size)]
        asked = _alltoall_arrays(comm, [w.astype(np.int64) for w in want])
        part._send = [np.searchsorted(ug[:n_owned], a) for a in asked]
        for r, a in enumerate(asked):
            if len(a) and not np.array_equal(ug[part._send[r]], a):
                raise MeshInputError(f"partition: rank {r} asks rank {rank} for vertices it does not own")
        return part

    # ------------------------------------------------------------------ the boundary
    def project_boundary(self, x0: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, BoundaryModel]:
        """:meth:`um2n.boundary.BoundaryModel.project` of the proposal ``x`` from ``x0`` (local
        vertices, boundary vertices of ``x0`` on their curves), done on the whole boundary:
        the owned boundary vertices are gathered on every rank and projected there alike
        (collective). Returns the projected coordinates (ghosts refreshed), the curve
        parameters, and the local boundary model rebased at ``x0`` (for
        :meth:`~um2n.boundary.BoundaryModel.blend`)."""
        bm, no = self.boundary, self.num_owned
        on_b = np.flatnonzero(bm.kind[:no] != INTERIOR)
        rows = np.column_stack([self.global_ids[on_b], x0[on_b], x[on_b]])
        allb = _allgather_rows(self.comm, rows)
        self.bytes_exchanged += rows.nbytes
        self.reductions += 1
        idx = np.searchsorted(self.boundary_ids, allb[:, 0].astype(np.int64))
        gb0 = np.empty((len(self.boundary_ids), 2))
        gb1 = np.empty_like(gb0)
        gb0[idx], gb1[idx] = allb[:, 1:3], allb[:, 3:5]
        gbm = self.global_boundary.rebased(gb0)
        xb, sb = gbm.project(gb0, gb1)
        x1, s1 = np.array(x, dtype=np.float64, copy=True), np.full(len(x0), np.nan)
        lb = np.flatnonzero(bm.kind != INTERIOR)
        where = np.searchsorted(self.boundary_ids, self.global_ids[lb])
        x1[lb], s1[lb] = xb[where], sb[where]
        self.exchange(x1)
        param = np.full(len(x0), np.nan)
        param[lb] = gbm.param[where]
        local_bm = BoundaryModel(kind=bm.kind, curve=bm.curve, param=param, curves=bm.curves, chains=[],
                                 chain_ends=bm.chain_ends, min_gap=bm.min_gap)
        local_bm._corner_pos = bm._corner_pos
        return x1, s1, local_bm

    # ------------------------------------------------------------------ communication
    @property
    def num_vertices(self) -> int:
        return len(self.global_ids)

    def exchange(self, *tensors):
        """Overwrite the ghosts' rows of each of ``tensors`` (tensors or arrays, rows = local
        vertices) with their owners' rows, in place, in one message per neighbouring rank;
        returns the first."""
        arrays = [t.detach().numpy() if isinstance(t, torch.Tensor) else t for t in tensors]
        dtype = np.result_type(*arrays)
        widths = [int(np.prod(a.shape[1:], dtype=np.int64)) for a in arrays]
        cuts = np.cumsum([0] + widths)

        def pack(idx):
            buf = np.empty((len(idx), int(cuts[-1])), dtype=dtype)
            for a, lo, hi in zip(arrays, cuts[:-1], cuts[1:]):
                buf[:, lo:hi] = a[idx].reshape(len(idx), hi - lo)
            return buf

        # point to point with the neighbouring ranks only (their lists are fixed at construction)
        recv = {r: np.empty((len(idx), int(cuts[-1])), dtype=dtype) for r, idx in enumerate(self._recv) if len(idx)}
        send = {r: pack(idx) for r, idx in enumerate(self._send) if len(idx)}
        reqs = [self.comm.Irecv(buf, source=r, tag=71) for r, buf in recv.items()]
        reqs += [self.comm.Isend(buf, dest=r, tag=71) for r, buf in send.items()]
        MPI.Request.Waitall(reqs)
        for r, buf in recv.items():
            idx = self._recv[r]
            for a, lo, hi in zip(arrays, cuts[:-1], cuts[1:]):
                a[idx] = buf[:, lo:hi].reshape((len(idx),) + a.shape[1:])
        self.bytes_exchanged += sum(x.nbytes for x in send.values())
        self.exchanges += 1
        return tensors[0]

    def _reduce(self, t, op):
        a = np.ascontiguousarray(t.detach().numpy() if isinstance(t, torch.Tensor) else t)
        out = np.empty_like(a)
        self.comm.Allreduce(a, out, op=op)
        self.bytes_exchanged += a.nbytes
        self.reductions += 1
        return torch.from_numpy(out) if isinstance(t, torch.Tensor) else out

    def sum(self, t):
        """The sum of ``t`` over the ranks (same shape on every rank)."""
        return self._reduce(t, MPI.SUM)

    def max(self, t):
        """The elementwise maximum of ``t`` over the ranks."""
        return self._reduce(t, MPI.MAX)

    def min(self, t):
        return self._reduce(t, MPI.MIN)


def _orient_boundary_edges(bedges, bids, bpts, ug, upts, ltri, comm) -> np.ndarray:
    """Boundary edges (in the gathered boundary numbering) oriented with the domain on their
    left: each edge's triangle lies on some rank, which votes; the votes are added up."""
    key_of = {}
    for i, (a, b) in enumerate(bedges.tolist()):
        key_of[(int(bids[a]), int(bids[b]))] = (i, 1)
        key_of[(int(bids[b]), int(bids[a]))] = (i, -1)
    vote = np.zeros(len(bedges))
    g = ug[ltri]
    g = g[np.isin(g, bids).sum(axis=1) >= 2]         # only triangles with a boundary edge can vote
    for k in range(3):
        a, b = g[:, k], g[:, (k + 1) % 3]          # counter-clockwise half-edges of the triangles
        for x, y in zip(a.tolist(), b.tolist()):
            hit = key_of.get((x, y))
            if hit is not None:
                vote[hit[0]] += hit[1]
    vote = comm.allreduce(vote, op=MPI.SUM)
    out = bedges.copy()
    out[vote < 0] = out[vote < 0][:, ::-1]
    return out


def untangle_distributed(part: Partition, x0: np.ndarray, x1: np.ndarray, s1: np.ndarray,
                         min_area_ratio: float = 1e-3, max_halvings: int = 12,
                         boundary: BoundaryModel | None = None) -> tuple[np.ndarray, SafeguardReport]:
    """:func:`um2n.safeguard.untangle` on a :class:`Partition`: the same line search, the
    bad triangles found on each rank's triangles (which hold every triangle of an owned
    vertex), the ghosts' step lengths exchanged and the stopping test reduced. ``boundary``:
    the local boundary model the sliding vertices move along (default ``part.boundary``;
    :meth:`Partition.project_boundary` returns the one rebased at ``x0``)."""
    bm = part.boundary if boundary is None else boundary
    from um2n.mesh import signed_areas

    tri, comm = part.triangles, part.comm
    a0 = signed_areas(x0, tri)
    if comm.allreduce(bool((a0 <= 0).any()), op=MPI.LOR):
        raise ValueError("the original coordinates are tangled; the safeguard needs a valid start")
    floor = min_area_ratio * a0
    n, no = len(x0), part.num_owned
    # a triangle counts on the rank that owns its smallest global vertex number among owned ones
    counted = _counted_triangles(part)
    alpha = np.ones(n)
    x = bm.blend(x0, x1, s1, alpha)
    area = signed_areas(x, tri)
    inverted_before = int(comm.allreduce(int((area[counted] <= 0).sum())))
    small_before = int(comm.allreduce(int((area[counted] <= floor[counted]).sum())))
    it = 0
    while True:
        bad = area <= floor
        if not comm.allreduce(bool(bad.any()), op=MPI.LOR):
            break
        verts = np.unique(tri[bad])
        verts = verts[verts < no]
        if it < max_halvings:
            alpha[verts] *= 0.5
        else:
            alpha[verts] = 0.0
        part.exchange(alpha)
        it += 1
        x = bm.blend(x0, x1, s1, alpha)
        area = signed_areas(x, tri)
        if it > max_halvings + n + 1:
            raise RuntimeError("safeguard did not terminate")
    moved = np.linalg.norm(x1 - x0, axis=1) > 0
    own = slice(0, no)
    report = SafeguardReport(
        inverted_before=inverted_before, small_before=small_before,
        limited_vertices=int(comm.allreduce(int((alpha[own] < 1).sum()))),
        reset_vertices=int(comm.allreduce(int(((alpha[own] == 0) & moved[own]).sum()))),
        min_alpha=float(comm.allreduce(float(alpha[own].min()) if no else 1.0, op=MPI.MIN)), iterations=it,
        inverted_after=int(comm.allreduce(int((signed_areas(x, tri)[counted] <= 0).sum()))),
    )
    assert report.inverted_after == 0
    part.reductions += 8 + it       # the scalar reductions above (one per halving, one to stop)
    return x, report


def _counted_triangles(part: Partition) -> np.ndarray:
    """Mask of the local triangles this rank counts: those whose smallest global vertex number
    is owned here (each triangle is counted on exactly one rank)."""
    g = part.global_ids[part.triangles]
    first = np.argmin(g, axis=1)
    return part.triangles[np.arange(len(g)), first] < part.num_owned


@dataclass
class DistributedMoveResult:
    """The rank's moved coordinates (local vertices, owned first) and the move's figures
    (the same on every rank)."""

    points: np.ndarray
    safeguard: SafeguardReport
    bytes_exchanged: int
    timings: dict
    exchanges: int = 0
    reductions: int = 0


class DistributedMover:
    """Move a :class:`Partition` with UM2N (see the module docstring).

    Parameters
    ----------
    model : the network (:class:`um2n.model.UM2N`, latent attention), the same on every rank
    min_area_ratio : the safeguard's threshold (as in :class:`um2n.mover.UM2NMover`)
    """

    def __init__(self, model, min_area_ratio: float = 1e-3):
        self.model = model.eval()
        self.min_area_ratio = min_area_ratio

    @torch.no_grad()
    def move(self, part: Partition, monitor: MonitorLike, current: np.ndarray | None = None) -> DistributedMoveResult:
        """Move the mesh of ``part`` from ``current`` (default: its reference coordinates)
        towards ``monitor`` (values at the local vertices, a callable or an expression).
        Collective: every rank of ``part.comm`` calls it."""
        import time

        from um2n.heap import retained_heap
        from um2n.mover import RETAINED_HEAP_MIN_VERTICES

        t0 = time.perf_counter()
        part.bytes_exchanged = part.exchanges = part.reductions = 0
        x0 = part.points if current is None else np.asarray(current, dtype=np.float64)
        values = evaluate_monitor(monitor, x0, mesh=f"partition of rank {part.comm.rank}")
        no = part.num_owned
        own = x0[:no]
        lo = part.min(own.min(axis=0) if no else np.full(2, np.inf))
        hi = part.max(own.max(axis=0) if no else np.full(2, -np.inf))
        L = float(np.max(hi - lo))
        vmax = float(part.max(np.array([values[:no].max() if no else -np.inf]))[0])
        vmin = float(part.min(np.array([values[:no].min() if no else np.inf]))[0])
        pos = (x0 - lo) / L
        m = values / vmax
        feats = np.column_stack([pos, part.boundary.kind != INTERIOR, m])
        gate = 1.0 - vmin / vmax          # as monitor_range(values) over the whole mesh
        data = Data(x=torch.from_numpy(feats).float(), pos=torch.from_numpy(pos).float(),
                    edge_index=part.edge_index, deform_edge_index=part.deform_edge_index,
                    gate=torch.tensor([gate], dtype=torch.float32), num_nodes=part.num_vertices)
        data.dist = _Hooks(part)
        with retained_heap(part.num_vertices >= RETAINED_HEAP_MIN_VERTICES):
            y = self.model(data).double().numpy()
            t1 = time.perf_counter()
            proposal = x0 + (y - data.pos.double().numpy()) * L
            x1, s1, local_bm = part.project_boundary(x0, proposal)
            t2 = time.perf_counter()
            x, report = untangle_distributed(part, x0, x1, s1, min_area_ratio=self.min_area_ratio,
                                             boundary=local_bm)
            t3 = time.perf_counter()
        return DistributedMoveResult(points=x, safeguard=report, bytes_exchanged=part.bytes_exchanged,
                                     timings={"model": t1 - t0, "boundary": t2 - t1, "safeguard": t3 - t2},
                                     exchanges=part.exchanges, reductions=part.reductions)


class _Hooks:
    """What :meth:`um2n.model.UM2N.forward` calls on a distributed mesh."""

    def __init__(self, part: Partition):
        self.part, self.num_owned = part, part.num_owned

    def exchange(self, *tensors):
        return self.part.exchange(*tensors)

    def sum(self, t):
        return self.part.sum(t)

    def max(self, t):
        return self.part.max(t)
