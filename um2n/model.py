r"""The Universal Mesh Movement Network (UM2N): one model, in one file.

Maths
-----
Inputs per vertex :math:`i` (see :mod:`um2n.features`): :math:`f_i = (\hat x_i, b_i, \hat m_i)`,
normalised coordinates, boundary flag and normalised monitor.

**Global encoder** (graph transformer). :math:`h^0_i = W_{in} f_i`, then ``num_blocks``
pre-norm blocks

.. math::

    h \leftarrow h + \mathrm{Attn}(\mathrm{LN}(h)), \qquad
    h \leftarrow h + \mathrm{FFN}(\mathrm{LN}(h)),

and :math:`g_i = W_{out} h_i \in \mathbb{R}^{16}`. Attention runs over all vertices of
each mesh of a batch, separately per mesh, in one of two modes:

* ``"latent"`` (default): induced-set attention through :math:`M` learned latent tokens
  :math:`\ell \in \mathbb{R}^{M \times d}`. First the latents read the mesh,
  :math:`\ell' = \mathrm{MHA}(\ell, h, h)`, then every vertex reads the latents,
  :math:`\mathrm{Attn}(h) = \mathrm{MHA}(h, \ell', \ell')`. Time and memory are
  :math:`O(N M d)`: linear in the number of vertices. The trade-off: vertex-to-vertex
  interaction is routed through a rank-:math:`M` summary of the mesh. The monitor's global
  distribution (which is what equidistribution needs globally) is well captured by such a
  summary; local detail is carried by the edge encoder and the deformer.
* ``"full"``: dense attention :math:`\mathrm{MHA}(h, h, h)` over the :math:`N` vertices of
  each mesh, with :func:`torch.nn.functional.scaled_dot_product_attention` so that memory
  stays :math:`O(N)` (no :math:`N \times N` matrix is stored); time is :math:`O(N^2 d)`, too
  slow beyond about 10^5 vertices on a CPU.

Both modes run per mesh of a batch (no padding, no equal-size assumption).

**Local edge encoder** (:class:`LocalEdgeEncoder`), over the mesh edges:
:math:`e_i = \frac{1}{|N(i)|}\sum_{j \in N(i)} \phi(f_i, f_j, \hat x_j - \hat x_i, |\hat x_j - \hat x_i|)`,
:math:`\phi` a two-layer MLP, :math:`e_i \in \mathbb{R}^{16}`.

**Deformer** (:class:`ConvexDeformerLayer`, ``num_deformer_layers`` GAT layers). With
:math:`z^0_i = (g_i, e_i, f_i)` and :math:`y^0 = \hat x`, layer :math:`k` computes, for every
head :math:`h`, attention weights over the deformer neighbourhood :math:`\mathcal N(i)` (self
included; see :meth:`um2n.mesh.MeshGraph.deform_edge_index`)

.. math::

    \alpha^h_{ij} = \mathrm{softmax}_{j \in \mathcal N(i)}\,
        \mathrm{LeakyReLU}\big(a^h_{dst} \cdot W^h u_i + a^h_{src} \cdot W^h u_j + c^h \cdot r_{ij}\big),
    \quad u_i = (z^k_i, y^k_i),\; r_{ij} = (y^k_j - y^k_i, |y^k_j - y^k_i|),

and moves every vertex to a convex combination of its neighbours,

.. math::

    y^{k+1}_i = y^k_i + \gamma \Big( \frac1H \sum_h \sum_j \alpha^h_{ij} y^k_j - y^k_i \Big),
    \qquad z^{k+1}_i = \mathrm{ELU}\Big(\big\Vert_{h} \sum_j \alpha^h_{ij} W^h u_j + b\Big)

(:math:`\Vert` concatenates the heads).

Since :math:`\gamma \in [0, 1]`, :math:`y^{k+1}_i` is still a convex combination of
:math:`y^k_i` and its neighbours: a vertex cannot leave its neighbourhood's convex hull.

Design choices
--------------
* :math:`\gamma = 1 - \min m / \max m` gates every displacement by the monitor's dynamic
  range: a uniform monitor (whose Monge-Ampere solution is the identity) leaves the mesh
  exactly unchanged, whatever the weights, and a weak monitor moves it little.
* A sliding boundary vertex averages only over its two boundary neighbours and a corner
  only over itself. On a straight segment the convex combination therefore stays on the
  segment; on curves a projection (:mod:`um2n.boundary`) puts the vertex back. Unlike the
  published code, boundary vertices are not pinned.
* Attention modes as above; default ``"latent"`` with 32 tokens.
* About 71 k parameters in the default configuration (``UM2N().num_parameters()``;
  the test suite checks the figure quoted here: 70,608): far fewer than the
  published 1.8 M, nearly all of which sat in the decoder; the deformer's output is a
  convex combination whatever its width.
* 3D is a variant of the same design, not the same network: ``dim = 3`` in the config
  makes the inputs :math:`(\hat x, b, \hat m) \in \mathbb{R}^5` and the geometric terms
  :math:`r_{ij} \in \mathbb{R}^4`, with separate weights. One set of weights for both
  dimensions would have to see 2D meshes as flat 3D ones, which changes the inputs of the
  validated 2D weights; and the convex-combination argument needs no change in 3D (a
  tetrahedral mesh's deformer neighbourhoods are :meth:`um2n.tetmesh.TetMeshGraph.deform_edge_index`).
* Weights are stored as safetensors (no pickle): :meth:`UM2N.save` / :meth:`UM2N.load`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from um2n.errors import WeightsError


@dataclass
class UM2NConfig:
    """Hyper-parameters of :class:`UM2N`."""

    hidden: int = 64
    heads: int = 4
    ffn: int = 128
    num_blocks: int = 1
    attention: str = "latent"      # "latent" or "full"
    num_latents: int = 32
    global_out: int = 16
    local_out: int = 16
    num_deformer_layers: int = 4
    deformer_heads: int = 4
    deformer_hidden: int = 64
    dim: int = 2                   # 2: triangle meshes; 3: tetrahedral meshes

    def __post_init__(self):
        if self.attention not in ("latent", "full"):
            raise ValueError(f"attention must be 'latent' or 'full', not {self.attention!r}")
        if self.dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, not {self.dim!r}")


def _graph_slices(ptr: Tensor | None, n: int) -> list[tuple[int, int]]:
    if ptr is None:
        return [(0, n)]
    p = ptr.tolist()
    return list(zip(p[:-1], p[1:]))


class MultiHeadAttention(nn.Module):
    """Multi-head attention on (L, d) tensors through ``scaled_dot_product_attention``."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError("hidden size must be divisible by the number of heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        h = self.heads
        q = self.q(query).view(query.shape[0], h, -1).transpose(0, 1)          # (h, Lq, dh)
        k, v = self.kv(context).view(context.shape[0], 2, h, -1).permute(1, 2, 0, 3)
        o = F.scaled_dot_product_attention(q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0))[0]
        return self.out(o.transpose(0, 1).reshape(query.shape[0], -1))

    def partial_summary(self, query: Tensor, rows) -> tuple[Tensor, Tensor]:
        r"""The softmax sums of this attention over context rows that come in chunks (an
        iterable of (n_c, d) tensors), in one pass with a running maximum: for the scores
        :math:`s_{qj}` of query :math:`q` and row :math:`j`, returns :math:`m_q = \max_j s_{qj}`
        (heads, Lq) and :math:`(\sum_j e^{s_{qj} - m_q} v_j, \sum_j e^{s_{qj} - m_q})`
        (heads, Lq, head width + 1). Partial summaries of disjoint rows combine exactly
        (:meth:`from_summary`), so the rows may be spread over chunks or over ranks."""
        h, Lq = self.heads, query.shape[0]
        q = self.q(query).view(Lq, h, -1).transpose(0, 1)                  # (h, Lq, dh)
        # in float64: the sums then hardly depend on how the rows are split (chunks, ranks)
        q = q.double() * q.shape[-1] ** -0.5
        m = torch.full((h, Lq), -torch.inf, dtype=torch.float64)
        acc = torch.zeros(h, Lq, q.shape[-1] + 1, dtype=torch.float64)
        for c in rows:
            if c.shape[0] == 0:
                continue
            k, v = self.kv(c).double().view(c.shape[0], 2, h, -1).permute(1, 2, 0, 3)   # (h, n_c, dh)
            s = q @ k.transpose(1, 2)                                      # (h, Lq, n_c)
            m_new = torch.maximum(m, s.amax(dim=-1))
            acc *= torch.exp(m - m_new).unsqueeze(-1)
            # in place when no gradient flows through s (it is not used after)
            e = (s - m_new.unsqueeze(-1) if s.requires_grad else s.sub_(m_new.unsqueeze(-1))).exp_()
            acc[..., :-1] += e @ v
            acc[..., -1] += e.sum(dim=-1)
            m = m_new
        return m, acc

    def from_summary(self, m: Tensor, acc: Tensor, dist=None) -> Tensor:
        """The attention's output from :meth:`partial_summary`; with ``dist`` (rows spread over
        ranks), the ranks' summaries are first combined: the maximum of ``m`` (``dist.max``),
        then the sum of the rescaled ``acc`` (``dist.sum``): (heads, Lq, head width + 1)
        numbers, whatever the number of rows."""
        if dist is not None:
            m_all = dist.max(m)
            acc = dist.sum(acc * torch.exp(m - m_all).nan_to_num(0.0).unsqueeze(-1))
        o = (acc[..., :-1] / acc[..., -1:]).to(self.out.weight.dtype)
        return self.out(o.transpose(0, 1).reshape(m.shape[1], -1))


class GlobalAttention(nn.Module):
    """Attention over all vertices of each mesh of a batch ("latent" or "full", see module doc)."""

    def __init__(self, dim: int, heads: int, mode: str, num_latents: int):
        super().__init__()
        self.mode = mode
        if mode == "latent":
            self.latents = nn.Parameter(torch.randn(num_latents, dim) * dim ** -0.5)
            self.read = MultiHeadAttention(dim, heads)       # latents <- vertices
            self.norm_latent = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)           # vertices <- latents | vertices

    def forward(self, h: Tensor, ptr: Tensor | None) -> Tensor:
        out = []
        for a, b in _graph_slices(ptr, h.shape[0]):
            hg = h[a:b]
            if self.mode == "latent":
                lat = self.latents + self.read(self.latents, hg)
                out.append(self.attn(hg, self.norm_latent(lat)))
            else:
                out.append(self.attn(hg, hg))
        return torch.cat(out, dim=0)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``h + Attn(LN h)``, then ``h + FFN(LN h)``."""

    def __init__(self, cfg: UM2NConfig):
        super().__init__()
        d = cfg.hidden
        self.norm1 = nn.LayerNorm(d)
        self.attn = GlobalAttention(d, cfg.heads, cfg.attention, cfg.num_latents)
        self.norm2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn), nn.GELU(), nn.Linear(cfg.ffn, d))

    #: vertices per chunk of :meth:`forward_inference`
    chunk_rows: int = 1 << 16

    def forward(self, h: Tensor, ptr: Tensor | None) -> Tensor:
        h = h + self.attn(self.norm1(h), ptr)
        return h + self.ffn(self.norm2(h))

    def forward_inference(self, h: Tensor, ptr: Tensor | None, dist=None) -> Tensor:
        """The same block without autograd, latent attention, in place on ``h`` and chunk of
        ``chunk_rows`` vertices by chunk: the latents read each mesh in one pass
        (:meth:`MultiHeadAttention.partial_summary`), then each chunk reads the latents and
        goes through the feed-forward layer. The temporaries are a chunk's, not the mesh's.
        With ``dist`` (one mesh spread over ranks), the latents read the rank's owned rows and
        the ranks' summaries are combined (one reduction of each per block)."""
        att, C = self.attn, self.chunk_rows
        for a, b in _graph_slices(ptr, h.shape[0]):
            n_read = b - a if dist is None else dist.num_owned
            rows = (self.norm1(h[i:min(i + C, a + n_read)]) for i in range(a, a + n_read, C))
            m, acc = att.read.partial_summary(att.latents, rows)
            lat = att.norm_latent(att.latents + att.read.from_summary(m, acc, dist))
            for i in range(a, b, C):
                hc = h[i:min(i + C, b)]
                hc += att.attn(self.norm1(hc), lat)
                hc += self.ffn(self.norm2(hc))
        return h


class LocalEdgeEncoder(MessagePassing):
    r"""Mean over mesh edges of :math:`\phi(f_i, f_j, \hat x_j - \hat x_i, |\hat x_j - \hat x_i|)`.

    :math:`\phi(\cdot) = W_2\,\mathrm{GELU}(A f_i + B f_j + C r_{ij} + c) + c_2`; the products
    :math:`A f` and :math:`B f` are formed per vertex, so each edge costs one gather and one
    small (3 -> hidden) product.
    """

    #: edges per chunk in inference, which bounds the memory of the per-edge hidden layer
    chunk_edges: int = 1 << 20

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 32, dim: int = 2):
        super().__init__(aggr="add")
        self.dim = dim
        self.lin_dst = nn.Linear(in_channels, hidden)
        self.lin_src = nn.Linear(in_channels, hidden, bias=False)
        self.lin_geo = nn.Linear(dim + 1, hidden, bias=False)
        self.lin_out = nn.Linear(hidden, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for m in (self.lin_dst, self.lin_src, self.lin_geo, self.lin_out):
            m.reset_parameters()

    def phi(self, x_i: Tensor, x_j: Tensor, pos_i: Tensor, pos_j: Tensor) -> Tensor:
        """The edge MLP applied directly to edge inputs (reference form of the message)."""
        d = pos_j - pos_i
        geo = torch.cat([d, d.norm(dim=-1, keepdim=True)], dim=-1)
        return self.lin_out(F.gelu(self.lin_dst(x_i) + self.lin_src(x_j) + self.lin_geo(geo)))

    def forward(self, x: Tensor, pos: Tensor, edge_index: Tensor) -> Tensor:
        a, b = self.lin_dst(x), self.lin_src(x)
        n = x.shape[0]
        if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad or pos.requires_grad):
            total = self.propagate(edge_index, a=a, b=b, pos=pos, size=(n, n))
        else:
            total = self.sum_messages(a, b, pos, edge_index)
        deg = torch.bincount(edge_index[1], minlength=n).clamp(min=1).to(a.dtype)
        # mean over neighbours, then lin_out (affine, so it commutes with the mean)
        return self.lin_out(total / deg.unsqueeze(-1))

    def sum_messages(self, a: Tensor, b: Tensor, pos: Tensor, edge_index: Tensor) -> Tensor:
        r"""Inference path: :math:`\sum_{j \to i}` of :meth:`message`, edge chunk by edge chunk
        (``chunk_edges`` at a time, which bounds the memory of the per-edge hidden layer),
        each chunk's products and activation done in place in one buffer."""
        src, dst = edge_index[0], edge_index[1]
        Wg, D = self.lin_geo.weight, self.dim                                # (hidden, dim + 1)
        total = torch.zeros(a.shape[0], a.shape[1], dtype=a.dtype, device=a.device)
        for k in range(0, src.numel(), self.chunk_edges):
            s, t = src[k:k + self.chunk_edges], dst[k:k + self.chunk_edges]
            d = pos.index_select(0, s)
            d -= pos.index_select(0, t)                                     # x_j - x_i
            m = b.index_select(0, s)
            m.addmm_(d, Wg[:, :D].T)
            m.addcmul_(d.norm(dim=1, keepdim=True), Wg[:, D].unsqueeze(0))
            m += a.index_select(0, t)
            total.index_add_(0, t, torch.ops.aten.gelu_(m))
        return total

    def message(self, a_i: Tensor, b_j: Tensor, pos_i: Tensor, pos_j: Tensor) -> Tensor:
        d = pos_j - pos_i
        geo = torch.cat([d, d.norm(dim=-1, keepdim=True)], dim=-1)
        return F.gelu(a_i + b_j + self.lin_geo(geo))


class ConvexDeformerLayer(MessagePassing):
    r"""GAT layer whose output position is a convex combination of the neighbours' positions.

    See the module docstring for the equations. ``hidden`` is the total width of the
    features (``heads`` heads of ``hidden // heads`` channels, concatenated). The position
    uses the head-averaged weights :math:`\bar\alpha_{ij} = \frac1H \sum_h \alpha^h_{ij}`,
    which gives exactly :math:`\frac1H \sum_h \sum_j \alpha^h_{ij} y_j`.
    ``forward`` returns the new features :math:`z^{k+1}` and positions :math:`y^{k+1}`.
    """

    def __init__(self, in_channels: int, hidden: int, heads: int, negative_slope: float = 0.2, dim: int = 2):
        super().__init__(aggr="add", node_dim=0)
        if hidden % heads:
            raise ValueError("deformer width must be divisible by the number of heads")
        self.heads, self.hidden, self.negative_slope, self.dim = heads, hidden, negative_slope, dim
        C = hidden // heads
        self.lin = nn.Linear(in_channels + dim, hidden, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, C))
        self.att_dst = nn.Parameter(torch.empty(1, heads, C))
        self.att_geo = nn.Linear(dim + 1, heads, bias=False)
        self.bias = nn.Parameter(torch.empty(hidden))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        nn.init.xavier_uniform_(self.att_geo.weight)
        nn.init.zeros_(self.bias)

    def forward(self, z: Tensor, pos: Tensor, edge_index: Tensor, gate: Tensor) -> tuple[Tensor, Tensor]:
        if not (torch.is_grad_enabled() and (z.requires_grad or pos.requires_grad
                                             or any(p.requires_grad for p in self.parameters()))):
            return self.forward_inference(z, pos, edge_index, gate)
        H = self.heads
        u = self.lin(torch.cat([z, pos], dim=-1)).view(-1, H, self.hidden // H)
        a_src = (u * self.att_src).sum(-1)                                   # (N, H)
        a_dst = (u * self.att_dst).sum(-1)
        alpha = self.edge_updater(edge_index, a_src=a_src, a_dst=a_dst, pos=pos)   # (E, H)
        out = self.propagate(edge_index, u=u, pos=pos, alpha=alpha)         # (N, hidden + dim)
        feat = F.elu(out[:, : self.hidden] + self.bias)
        target = out[:, self.hidden:]                                        # convex combination
        new_pos = pos + gate.unsqueeze(-1) * (target - pos)
        return feat, new_pos

    def forward_inference(self, z: Tensor, pos: Tensor, edge_index: Tensor, gate: Tensor) -> tuple[Tensor, Tensor]:
        """The same layer without autograd, on target-sorted edges (as
        :meth:`um2n.mesh.MeshGraph.deform_edge_index` and batching give them).

        The edges of one target form a contiguous segment, so the softmax is a segment max
        and a segment sum (:func:`torch.segment_reduce`), the target's own values are
        repeated over its segment instead of gathered, and the weighted sums are sparse
        (CSR) matrix products, one per head. No per-edge feature tensor is formed, and the
        temporaries are a few (E, H) arrays.
        """
        src, dst = edge_index[0], edge_index[1]
        n, E, H, D = z.shape[0], src.numel(), self.heads, self.dim
        C = self.hidden // H
        deg = torch.bincount(dst, minlength=n)
        crow = torch.zeros(n + 1, dtype=torch.int64, device=dst.device)
        torch.cumsum(deg, 0, out=crow[1:])
        W = self.lin.weight                                   # (hidden, in + dim): z then pos
        # each head's features W^h u, contiguous, and its attention terms a^h . W^h u
        u = [torch.addmm(pos @ W[h * C:(h + 1) * C, -D:].T, z, W[h * C:(h + 1) * C, :-D].T) for h in range(H)]
        a_src = torch.stack([u[h] @ self.att_src[0, h] for h in range(H)], dim=1)        # (N, H)
        a_dst = torch.stack([u[h] @ self.att_dst[0, h] for h in range(H)], dim=1)
        d = pos.index_select(0, src)
        d -= pos.repeat_interleave(deg, dim=0, output_size=E)                # y_j - y_i
        Wg = self.att_geo.weight                                             # (H, dim + 1)
        logits = torch.addmm(a_src.index_select(0, src), d, Wg[:, :D].T)
        logits.addcmul_(d.norm(dim=1, keepdim=True), Wg[:, D].unsqueeze(0))
        del d
        logits += a_dst.repeat_interleave(deg, dim=0, output_size=E)
        F.leaky_relu(logits, self.negative_slope, inplace=True)
        logits -= torch.segment_reduce(logits, "max", offsets=crow, axis=0).repeat_interleave(
            deg, dim=0, output_size=E)
        alpha = logits.exp_()
        alpha /= torch.segment_reduce(alpha, "sum", offsets=crow, axis=0).repeat_interleave(
            deg, dim=0, output_size=E)
        feat = torch.empty(n, self.hidden, dtype=z.dtype, device=z.device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            for h in range(H):
                A = torch.sparse_csr_tensor(crow, src, alpha[:, h].contiguous(), (n, n), check_invariants=False)
                feat[:, h * C:(h + 1) * C] = A @ u[h]
            A = torch.sparse_csr_tensor(crow, src, alpha.mean(dim=1), (n, n), check_invariants=False)
            target = A @ pos                                                 # convex combination
        feat += self.bias
        F.elu(feat, inplace=True)
        target -= pos
        return feat, torch.addcmul(pos, gate.unsqueeze(-1), target)

    def edge_update(self, a_src_j: Tensor, a_dst_i: Tensor, pos_i: Tensor, pos_j: Tensor,
                    index: Tensor, ptr: Tensor | None, size_i: int | None) -> Tensor:
        d = pos_j - pos_i
        geo = torch.cat([d, d.norm(dim=-1, keepdim=True)], dim=-1)
        logits = F.leaky_relu(a_src_j + a_dst_i + self.att_geo(geo), self.negative_slope)
        return softmax(logits, index, ptr, size_i)

    def message(self, u_j: Tensor, pos_j: Tensor, alpha: Tensor) -> Tensor:
        feat = (alpha.unsqueeze(-1) * u_j).flatten(1)
        return torch.cat([feat, alpha.mean(dim=1, keepdim=True) * pos_j], dim=-1)


class UM2N(nn.Module):
    """Universal Mesh Movement Network (see the module docstring for the maths).

    ``forward(data)`` takes a :class:`torch_geometric.data.Data` or ``Batch`` from
    :func:`um2n.features.mesh_data` and returns the new normalised coordinates
    ``(N, dim)``; ``return_all=True`` returns the positions after every deformer layer.
    """

    def __init__(self, config: UM2NConfig | None = None):
        super().__init__()
        self.config = cfg = config or UM2NConfig()
        nf = cfg.dim + 2                                  # coordinates, boundary flag, monitor
        self.inp = nn.Linear(nf, cfg.hidden)
        self.blocks = nn.ModuleList([TransformerBlock(cfg) for _ in range(cfg.num_blocks)])
        self.norm = nn.LayerNorm(cfg.hidden)
        self.glob_out = nn.Linear(cfg.hidden, cfg.global_out)
        self.local = LocalEdgeEncoder(nf, cfg.local_out, dim=cfg.dim)
        z_dim = cfg.global_out + cfg.local_out + nf
        dims = [z_dim] + [cfg.deformer_hidden] * (cfg.num_deformer_layers - 1)
        self.deformer = nn.ModuleList(
            [ConvexDeformerLayer(d, cfg.deformer_hidden, cfg.deformer_heads, dim=cfg.dim) for d in dims])

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, data, return_all: bool = False):
        x, pos = data.x, data.pos
        ptr = getattr(data, "ptr", None)
        batch = getattr(data, "batch", None)
        dist = getattr(data, "dist", None)
        h = self.inp(x)
        inference = not (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()))
        if inference and self.config.attention == "latent":
            for blk in self.blocks:
                h = blk.forward_inference(h, ptr, dist)
            C = TransformerBlock.chunk_rows
            g = torch.empty(h.shape[0], self.config.global_out, dtype=h.dtype)
            for i in range(0, h.shape[0], C):
                g[i:i + C] = self.glob_out(self.norm(h[i:i + C]))
        else:
            if dist is not None:
                raise ValueError("a mesh distributed over ranks needs latent attention and no autograd")
            for blk in self.blocks:
                h = blk(h, ptr)
            g = self.glob_out(self.norm(h))
        e = self.local(x, pos, data.edge_index)
        z = torch.cat([g, e, x], dim=-1)
        if dist is not None:           # the ghosts' sums lack neighbours: their owners' values
            dist.exchange(z)
        gate = data.gate if batch is None else data.gate[batch]
        if gate.numel() == 1:
            gate = gate.expand(x.shape[0])
        y = pos
        ys = []
        for layer in self.deformer:
            z, y = layer(z, y, data.deform_edge_index, gate)
            if dist is not None:
                dist.exchange(z, y)
            ys.append(y)
        return ys if return_all else y

    # ------------------------------------------------------------------ weights
    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """Write the weights as safetensors, with the config (and ``metadata``) in its header."""
        from safetensors.torch import save_file

        meta = {"config": json.dumps(asdict(self.config)), "format": "um2n-1"}
        meta.update({k: str(v) for k, v in (metadata or {}).items()})
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        from um2n.io import atomic_path

        with atomic_path(path) as tmp:
            save_file(state, tmp, metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> tuple["UM2N", dict]:
        """Load a model from a safetensors file written by :meth:`save` (no pickle involved).

        Raises
        ------
        WeightsError
            The file is missing, not safetensors, or does not match the model.
        """
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise WeightsError(f"{p}: weights file not found")
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:
            raise WeightsError(f"{p}: not a safetensors weights file ({str(exc).splitlines()[0]})") from None
        try:
            cfg_dict = json.loads(meta.get("config", "{}"))
            known = {f.name for f in fields(UM2NConfig)}
            cfg = UM2NConfig(**{k: v for k, v in cfg_dict.items() if k in known})
        except (ValueError, TypeError) as exc:
            raise WeightsError(f"{p}: bad model config in the weights header ({exc})") from None
        model = cls(cfg)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"{p}: weights do not match the model ({str(exc).splitlines()[0]})") from None
        return model, meta
