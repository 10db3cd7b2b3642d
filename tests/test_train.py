"""Training loop: losses, learning on a synthetic task, checkpoint/resume determinism, CSV."""

import csv

import numpy as np
import pytest
import torch

from um2n.features import mesh_data
from um2n.model import UM2N
from um2n.train import COLLAPSE_RATIO, TrainConfig, LossWeights, chamfer_distance, collapse_term, losses, train


def synthetic_dataset(graph_of, n=8):
    """Meshes with targets pulled towards a Gaussian bump (a smooth, boundary-preserving map)."""
    data = []
    rng = np.random.default_rng(0)
    g = graph_of("unit_square", 0.1)
    for _ in range(n):
        c = rng.uniform(0.3, 0.7, 2)
        x = g.points
        bump = np.exp(-((x - c) ** 2).sum(1) / 0.05)
        d = mesh_data(g, 1 + 5 * bump)
        # targets: move towards c, vanishing on the boundary of the unit square
        damp = (x[:, 0] * (1 - x[:, 0]) * x[:, 1] * (1 - x[:, 1]) * 16)[:, None]
        y = x + 0.1 * damp * (c - x) * bump[:, None]
        d.y = torch.from_numpy(y).float()
        d.face = torch.from_numpy(g.triangles.T.copy())
        d.monitor = torch.from_numpy(1 + 5 * bump).float()
        data.append(d)
    return data


def test_chamfer_distance():
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 0.5]])
    # a->b: (0.25 + 1.25)/2 ; b->a: 0.25
    assert float(chamfer_distance(a, b)) == pytest.approx(0.75 + 0.25)
    assert float(chamfer_distance(a, a)) == 0.0


def test_losses_vanish_at_the_target(graph_of):
    from torch_geometric.data import Batch

    ds = synthetic_dataset(graph_of, 3)
    batch = Batch.from_data_list(ds)
    terms = losses(batch.y, batch)
    for k in ("area", "chamfer", "vertex"):
        assert float(terms[k]) < 1e-6          # float32 (cdist rounding)
    terms0 = losses(batch.pos, batch)
    assert float(terms0["vertex"]) > 0 and float(terms0["area"]) > 0


@pytest.mark.parametrize("monitor", [1.0, 4.0])
def test_collapse_term_acts_on_the_collapsed_cell_only(monitor):
    """Four triangles around the centre of the unit square, the centre pulled to (0.5, 0.1):
    areas 0.05 (bottom), 0.25, 0.45, 0.25; with a uniform monitor each cell's equidistributed
    area is 1/4, so only the bottom cell, at 0.05 < 0.25 * 1/4, is penalised:
    (log(0.25 * 0.25 / 0.05))^2 / 4. A uniform monitor of any value gives the same."""
    from torch_geometric.data import Data

    pos = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.1]], dtype=torch.float64,
                       requires_grad=True)
    face = torch.tensor([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]]).T
    data = Data(pos=pos, face=face, monitor=torch.full((5,), monitor, dtype=torch.float64))
    value = collapse_term(pos, data)
    assert COLLAPSE_RATIO == 0.25
    assert float(value) == pytest.approx(np.log(0.25 * 0.25 / 0.05) ** 2 / 4, rel=1e-12)
    value.backward()
    # it pulls the centre up (a larger bottom cell); the bottom cell's area does not depend on x
    assert float(pos.grad[4, 1]) < 0 and abs(float(pos.grad[4, 0])) < 1e-12
    # a mesh with no cell below a quarter of its equidistributed size: zero
    assert float(collapse_term(torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5]],
                                            dtype=torch.float64), data)) == 0.0


def test_training_learns_and_resumes_deterministically(graph_of, tmp_path):
    ds = synthetic_dataset(graph_of, 8)
    common = dict(data="(in memory)", epochs=4, batch_size=4, lr=2e-3, seed=1, val_fraction=0.25,
                  loss=LossWeights(area=1.0, chamfer=1.0, vertex=1.0, equidistribution=0.1))
    full = TrainConfig(out=str(tmp_path / "full"), **common)
    train(full, progress=False, dataset=ds)
    rows = list(csv.DictReader(open(tmp_path / "full" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    # the same training in two sessions: 2 epochs, then resume to 4
    part = TrainConfig(out=str(tmp_path / "part"), **{**common, "epochs": 2})
    train(part, progress=False, dataset=ds)
    part.epochs = 4
    train(part, progress=False, dataset=ds)
    rows2 = list(csv.DictReader(open(tmp_path / "part" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows2] == [1, 2, 3, 4]
    for a, b in zip(rows, rows2):
        assert float(a["val_total"]) == pytest.approx(float(b["val_total"]), rel=1e-6)
    m, meta = UM2N.load(tmp_path / "full" / "best.safetensors")
    assert "val_total" in meta and int(meta["epoch"]) >= 1


def test_progress_is_one_line_per_epoch_when_redirected(graph_of, tmp_path, capsys):
    """Redirected (not a terminal), training reports one line per epoch and no batch bar."""
    ds = synthetic_dataset(graph_of, 4)
    cfg = TrainConfig(data="(in memory)", out=str(tmp_path / "p"), epochs=2, batch_size=1, lr=1e-3, seed=0,
                      val_fraction=0.25)
    train(cfg, progress=True, dataset=ds)
    out, err = capsys.readouterr()
    assert "epoch" not in err and "\r" not in err, err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1: train ") and lines[1].startswith("epoch 2: train ")


def test_config_errors(tmp_path):
    from um2n.errors import UM2NError

    p = tmp_path / "c.toml"
    p.write_text('data = "d"\nout = "o"\nepochz = 3\n')
    with pytest.raises(UM2NError, match="unknown setting"):
        TrainConfig.from_toml(p)
    p.write_text('out = "o"\n')
    with pytest.raises(UM2NError, match="missing setting 'data'"):
        TrainConfig.from_toml(p)
    p.write_text('data = "d"\nout = "o"\n[loss]\nareaa = 1\n')
    with pytest.raises(UM2NError, match="areaa"):
        TrainConfig.from_toml(p)
    p.write_text('data = "d"\nout = "o"\nepochs = 3\n[model]\nattention = "full"\n')
    cfg = TrainConfig.from_toml(p)
    assert cfg.epochs == 3 and cfg.model == {"attention": "full"} and cfg.data == str(tmp_path / "d")
