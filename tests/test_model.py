"""The UM2N network: PyG layers on mesh graphs, convexity, batching, attention modes."""

import re

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing

import um2n.model as model_mod
from um2n.features import mesh_data
from um2n.model import UM2N, ConvexDeformerLayer, LocalEdgeEncoder, UM2NConfig
from um2n.monitor import evaluate_monitor

MONITOR = "1 + 10*exp(-((x-0.3)**2 + (y-0.2)**2)/0.01)"


def _data(graph, monitor=MONITOR):
    return mesh_data(graph, evaluate_monitor(monitor, graph.points))


def test_parameter_count_matches_docstring():
    quoted = int(re.search(r"figure quoted here: ([\d,]+)", model_mod.__doc__).group(1).replace(",", ""))
    assert UM2N().num_parameters() == quoted


def test_message_passing_layer_on_mesh_graph(graph_of):
    """A PyG MessagePassing layer on a gmsh mesh graph computes the mean over mesh neighbours."""
    g = graph_of("unit_square")
    d = _data(g)
    layer = LocalEdgeEncoder(4, 16)
    assert isinstance(layer, MessagePassing)
    with torch.no_grad():
        out = layer(d.x, d.pos, d.edge_index)
        # reference: the same MLP applied edge by edge and averaged with numpy
        src, dst = d.edge_index.numpy()
        msgs = layer.phi(d.x[dst], d.x[src], d.pos[dst], d.pos[src]).numpy()
    ref = np.zeros((g.num_vertices, 16))
    np.add.at(ref, dst, msgs)
    ref /= np.bincount(dst, minlength=g.num_vertices)[:, None]
    assert out.shape == (g.num_vertices, 16)
    assert np.allclose(out.numpy(), ref, atol=1e-5)


@pytest.mark.parametrize("name", ["unit_square", "annulus", "polygon_with_hole"])
def test_deformer_outputs_convex_combinations(graph_of, name):
    g = graph_of(name)
    d = _data(g)
    torch.manual_seed(3)
    model = UM2N().eval()
    with torch.no_grad():
        ys = [d.pos] + model(d, return_all=True)
    src, dst = d.deform_edge_index.numpy()
    for prev, new in zip(ys[:-1], ys[1:]):
        p, n = prev.numpy().astype(np.float64), new.numpy().astype(np.float64)
        lo = np.full((g.num_vertices, 2), np.inf)
        hi = np.full((g.num_vertices, 2), -np.inf)
        np.minimum.at(lo, dst, p[src])
        np.maximum.at(hi, dst, p[src])
        assert np.all(n >= lo - 1e-6) and np.all(n <= hi + 1e-6)
    # corners only see themselves: they cannot move
    assert np.allclose(ys[-1].numpy()[g.corners], d.pos.numpy()[g.corners])


@pytest.mark.parametrize("attention", ["latent", "full"])
def test_batch_of_different_sizes_equals_one_by_one(graph_of, attention):
    graphs = [graph_of("unit_square"), graph_of("annulus"), graph_of("polygon_with_hole", 0.1)]
    assert len({g.num_vertices for g in graphs}) == 3
    datas = [_data(g, m) for g, m in zip(graphs, [MONITOR, "1 + 5*x*x*y*y", "2 + sin(5*x)"])]
    torch.manual_seed(1)
    model = UM2N(UM2NConfig(attention=attention)).eval()
    with torch.no_grad():
        batched = model(Batch.from_data_list(datas))
        single = torch.cat([model(d) for d in datas])
    assert torch.allclose(batched, single, atol=2e-6)


def test_uniform_monitor_gives_identity(graph_of):
    g = graph_of("annulus")
    d = _data(g, "3.0")
    assert float(d.gate) == 0.0
    with torch.no_grad():
        y = UM2N().eval()(d)
    assert torch.equal(y, d.pos)


def test_convex_deformer_layer_reset_and_gate():
    layer = ConvexDeformerLayer(5, 8, 2)
    layer.reset_parameters()
    pos = torch.rand(4, 2)
    z = torch.rand(4, 5)
    ei = torch.tensor([[0, 1, 2, 3, 1], [0, 1, 2, 3, 0]])
    _, y = layer(z, pos, ei, torch.full((4,), 0.5))
    # vertex 0 averages itself and vertex 1 with weight; half way because gate = 0.5
    assert torch.allclose(y[1:], pos[1:])
    t = y[0]
    seg = pos[1] - pos[0]
    cross = seg[0] * (t - pos[0])[1] - seg[1] * (t - pos[0])[0]
    assert abs(float(cross.detach())) < 1e-6


def test_save_and_load_roundtrip(tmp_path):
    from um2n.errors import WeightsError

    torch.manual_seed(5)
    m = UM2N(UM2NConfig(num_latents=8))
    path = tmp_path / "w.safetensors"
    m.save(path, metadata={"description": "test"})
    m2, meta = UM2N.load(path)
    assert meta["description"] == "test" and m2.config.num_latents == 8
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(WeightsError, match="not a safetensors"):
        UM2N.load(tmp_path / "bad.safetensors")
    with pytest.raises(WeightsError, match="not found"):
        UM2N.load(tmp_path / "missing.safetensors")


def test_sparse_inference_path_equals_message_passing(graph_of):
    """The CSR inference path and the MessagePassing (training) path give the same result."""
    g = graph_of("polygon_with_hole")
    d = _data(g)
    torch.manual_seed(7)
    model = UM2N().eval()
    with torch.no_grad():
        fast = model(d)
    for p in model.parameters():
        p.requires_grad_(True)
    slow = model(d)
    assert slow.requires_grad
    assert torch.allclose(fast, slow.detach(), atol=1e-6)
    slow.sum().backward()
    for layer in model.deformer:   # (the last layer's feature bias feeds nothing: no grad)
        assert all(p.grad is not None for p in (layer.lin.weight, layer.att_src, layer.att_dst, layer.att_geo.weight))


def test_local_encoder_chunked_equals_whole(graph_of):
    g = graph_of("annulus")
    d = _data(g)
    layer = LocalEdgeEncoder(4, 16)
    with torch.no_grad():
        whole = layer(d.x, d.pos, d.edge_index)
        layer.chunk_edges = 777
        chunked = layer(d.x, d.pos, d.edge_index)
    assert torch.allclose(whole, chunked, atol=1e-6)
