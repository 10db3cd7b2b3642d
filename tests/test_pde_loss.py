"""The finite-element error as a training loss: its shape derivative against finite
differences, the boundary rule, the coupling to the network, and the [pde_loss] settings."""

import math

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.firedrake

from um2n.errors import UM2NError  # noqa: E402
from um2n.train import TrainConfig  # noqa: E402


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    from um2n.fem.generate import GenerateConfig
    from um2n.fem.pde_loss import make_problem

    cfg = GenerateConfig(out="(test)", seed=11)
    work = tmp_path_factory.mktemp("pde_loss")
    # problem 0: unit square; 2: non-convex polygon; 3: polygon with a hole
    return {(i, kind): make_problem(cfg, i, kind, work)
            for i, kind in [(0, "helmholtz"), (2, "helmholtz"), (3, "poisson")]}


@pytest.mark.parametrize("key", [(0, "helmholtz"), (2, "helmholtz"), (3, "poisson")])
def test_coordinate_gradient_matches_finite_differences(problems, key):
    """dJ/dX from firedrake.adjoint against a central difference of J in a random direction
    (every vertex moves, the boundary ones too), to 1e-4 relative. Measured: 1.4e-7 to 6.1e-7
    (1.5e-9 to 6.4e-9 at h = 1e-6: the difference is the O(h^2) truncation)."""
    err = problems[key].error
    rng = np.random.default_rng(key[0])
    X = err.X0 + 2e-3 * rng.standard_normal(err.X0.shape)        # away from the original mesh
    direction = rng.standard_normal(err.X0.shape)
    J, grad = err.value_and_gradient(X)
    h = 1e-5
    fd_derivative = (err.error(X + h * direction) ** 2 - err.error(X - h * direction) ** 2) / (2 * h)
    analytic = float((grad * direction).sum())
    assert J == pytest.approx(err.error(X) ** 2, rel=1e-12)
    assert abs(analytic) > 1e-3 * np.linalg.norm(grad) * np.linalg.norm(direction)   # not a trivial direction
    assert abs(fd_derivative - analytic) <= 1e-4 * abs(analytic)


def test_loss_is_zero_on_the_original_mesh_and_keeps_the_boundary(problems):
    from um2n.fem.adapter import mesh_graph

    p = problems[(3, "poisson")]
    err = p.error
    X0 = torch.from_numpy(err.X0)
    assert abs(float(err.loss(X0))) < 1e-12
    assert err.reference_error == pytest.approx(err.error(err.X0), rel=1e-12)
    rng = np.random.default_rng(0)
    moved = err.constrain(X0 + 1e-2 * torch.from_numpy(rng.standard_normal(err.X0.shape)))
    graph = mesh_graph(err.mesh)
    corners = graph.corners
    assert torch.equal(moved[corners], X0[corners])
    # a sliding vertex stays on the line through its boundary neighbours
    nbrs = {}
    for a, b in graph.boundary_edges:
        nbrs.setdefault(int(a), []).append(int(b))
        nbrs.setdefault(int(b), []).append(int(a))
    for v in set(nbrs) - set(corners.tolist()):
        a, b = nbrs[v]
        t = err.X0[b] - err.X0[a]
        off = moved[v].numpy() - err.X0[v]
        assert abs(t[0] * off[1] - t[1] * off[0]) <= 1e-12 * np.linalg.norm(t)
    interior = ~graph.is_boundary
    assert not torch.equal(moved[interior], X0[interior])


def test_the_gradient_reaches_the_network(problems):
    """One small gradient step of the network's weights on J (nothing else in the loss)
    lowers J on that problem: the chain model -> coordinates -> FE error -> weights holds."""
    from um2n.mover import load_model
    from um2n.train import pde_terms

    p = problems[(2, "helmholtz")]
    p.data.problem = torch.tensor([0])
    model, _ = load_model("um2n-v1")
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    before = pde_terms(model(p.data), p.data, [p])["pde"]
    opt.zero_grad()
    before.backward()
    assert sum(float(q.grad.abs().sum()) for q in model.parameters() if q.grad is not None) > 0
    opt.step()
    after = pde_terms(model(p.data), p.data, [p])["pde"]
    assert float(after.detach()) < float(before.detach())
    er = 1 - math.exp(float(before.detach()))
    assert -0.5 < er < 0.9


def test_pde_loss_config_errors(tmp_path):
    p = tmp_path / "ft.toml"
    p.write_text('out = "o"\n[pde_loss]\nsamples = 4\n')
    with pytest.raises(UM2NError, match=r"ft.toml: \[pde_loss\] problems have no Monge-Ampere target; set \[loss\] "
                                        r"area = 0, chamfer = 0, vertex = 0"):
        TrainConfig.from_toml(p)
    p.write_text('out = "o"\ndata = "d"\n[loss]\narea = 0\nchamfer = 0\nvertex = 0\n[pde_loss]\n')
    with pytest.raises(UM2NError, match="draws its own problems; remove the setting 'data'"):
        TrainConfig.from_toml(p)
    p.write_text('out = "o"\n[loss]\narea = 0\nchamfer = 0\nvertex = 0\n[pde_loss]\nproblems = ["wave"]\n')
    with pytest.raises(UM2NError, match="problems must be among helmholtz, poisson"):
        TrainConfig.from_toml(p)
    p.write_text('out = "o"\ninit = "um2n-v1"\n[loss]\narea = 0\nchamfer = 0\nvertex = 0\n[pde_loss]\nsamplez = 3\n')
    with pytest.raises(UM2NError, match="samplez"):
        TrainConfig.from_toml(p)
    p.write_text('out = "o"\ninit = "um2n-v1"\n[loss]\narea = 0\nchamfer = 0\nvertex = 0\nfold = 1\n'
                 '[pde_loss]\nsamples = 4\n')
    cfg = TrainConfig.from_toml(p)
    assert cfg.data is None and cfg.init == "um2n-v1" and cfg.pde_loss.samples == 4 and cfg.loss.fold == 1.0
    for bad in ('[]', '"high"', '[3, -1]', 'true'):
        p.write_text(f'out = "o"\n[loss]\narea = 0\nchamfer = 0\nvertex = 0\n[pde_loss]\nalpha = {bad}\n')
        with pytest.raises(UM2NError, match=r"ft.toml: \[pde_loss\] alpha must be a number >= 0 or a non-empty list"):
            TrainConfig.from_toml(p)


def test_monitor_amplitude_drawn_per_problem():
    """A list of amplitudes: each problem draws one, reproducibly, and every value is used."""
    from um2n.train import PDELossConfig, problem_alpha

    cfg = PDELossConfig(alpha=[3.0, 5.0, 8.0, 12.0])
    drawn = [problem_alpha(cfg, i) for i in range(40)]
    assert drawn == [problem_alpha(cfg, i) for i in range(40)]
    assert set(drawn) == {3.0, 5.0, 8.0, 12.0}
    assert problem_alpha(PDELossConfig(alpha=8), 5) == 8.0 and problem_alpha(PDELossConfig(), 5) is None


def test_fine_tuning_runs_resumes_and_saves(tmp_path):
    """A two-epoch fine-tuning from um2n-v1 on 6 problems, stopped after one epoch and
    resumed: the metrics hold the error reduction, the weights load with their metadata."""
    import csv
    import json

    from um2n.model import UM2N
    from um2n.train import LossWeights, PDELossConfig, train

    cfg = TrainConfig(data=None, out=str(tmp_path / "ft"), epochs=1, batch_size=3, lr=1e-4, seed=0,
                      val_fraction=0.3, init="um2n-v1",
                      loss=LossWeights(area=0.0, chamfer=0.0, vertex=0.0, equidistribution=0.1, fold=1.0),
                      pde_loss=PDELossConfig(samples=6))
    train(cfg, progress=False)
    cfg.epochs = 2
    last = train(cfg, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "ft" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert last["epoch"] == 2 and -1.0 < last["val_er"] < 1.0 and last["val_inverted"] == 0
    _, meta = UM2N.load(tmp_path / "ft" / "best.safetensors")
    assert json.loads(meta["pde_loss"])["samples"] == 6 and meta["init"] == "um2n-v1"


def test_weights_by_name_and_unknown_weights():
    from um2n.mover import SHIPPED_WEIGHTS, UM2NMover

    assert "um2n-v1" in UM2NMover(weights="um2n-v1").weights_info
    assert all(path.is_file() for path in SHIPPED_WEIGHTS.values())
    with pytest.raises(UM2NError, match="um2n-v9: weights file not found"):
        UM2NMover(weights="um2n-v9")
