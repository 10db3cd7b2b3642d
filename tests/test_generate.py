"""`um2n generate`: samples, manifest, resume, recorded failures; the PyG dataset reading them."""


import pytest

pytestmark = pytest.mark.firedrake


def test_generate_resume_and_dataset(tmp_path):
    from torch_geometric.loader import DataLoader

    from um2n.data import MeshMoveDataset
    from um2n.fem.generate import GenerateConfig, generate, read_manifest
    from um2n.mesh import signed_areas

    cfg = GenerateConfig(out=str(tmp_path / "d"), num_samples=4, seed=3, lcs=(0.08,))
    counts = generate(cfg, progress=False)
    assert counts["ok"] + counts["failed"] == 4
    rows = read_manifest(tmp_path / "d")
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert {r["domain"] for r in rows} == {"unit_square", "convex", "nonconvex", "hole"}
    for r in rows:
        assert r["status"] in ("ok", "failed") and "seed" in r and "sources" in r
        if r["status"] == "failed":
            assert r["reason"]
    # resume: asking for 6 makes only the 2 missing ones
    cfg6 = GenerateConfig(out=str(tmp_path / "d"), num_samples=6, seed=3, lcs=(0.08,))
    counts = generate(cfg6, progress=False)
    assert counts["skipped_done"] == 4 and counts["ok"] + counts["failed"] == 2
    assert [r["index"] for r in read_manifest(tmp_path / "d")] == list(range(6))
    # another configuration in the same folder is refused
    with pytest.raises(ValueError, match="another configuration"):
        generate(GenerateConfig(out=str(tmp_path / "d"), num_samples=6, seed=4, lcs=(0.08,)), progress=False)

    ds = MeshMoveDataset(tmp_path / "d")
    assert len(ds) == sum(r["status"] == "ok" for r in read_manifest(tmp_path / "d")) >= 4
    for data in ds:
        tri = data.face.T.numpy()
        y = data.y.double().numpy()
        assert (signed_areas(y, tri) > 0).all()              # MA targets are valid meshes
        assert data.x.shape == (data.num_nodes, 4) and y.shape == (data.num_nodes, 2)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.num_graphs == 3 and batch.face.max() < batch.num_nodes


def test_failed_solves_are_recorded_not_kept(tmp_path, capsys):
    """Failed Monge-Ampère solves are recorded with their reason; the progress report, written
    to a non-terminal, is a few plain lines (here one per sample), never a bar."""
    from um2n.fem.generate import GenerateConfig, generate, read_manifest

    cfg = GenerateConfig(out=str(tmp_path / "f"), num_samples=2, seed=0, lcs=(0.1,), ma_maxiter=1, ma_rtol=1e-12)
    counts = generate(cfg, progress=True)
    assert counts == {"ok": 0, "failed": 2, "skipped_done": 0}
    rows = read_manifest(tmp_path / "f")
    assert all(r["status"] == "failed" and "did not converge in 1 iterations" in r["reason"] for r in rows)
    assert not list((tmp_path / "f" / "samples").glob("*.npz"))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "um2n generate" in line]
    assert "\r" not in err and len(lines) == 2, err
    assert lines[0].startswith("um2n generate: 1/2 sample (50 %)") and lines[1].startswith("um2n generate: 2/2")


def test_interrupted_manifest_line_is_redone(tmp_path):
    from um2n.fem.generate import GenerateConfig, generate, read_manifest

    cfg = GenerateConfig(out=str(tmp_path / "i"), num_samples=1, seed=5, lcs=(0.1,), domains=("unit_square",))
    generate(cfg, progress=False)
    with open(tmp_path / "i" / "manifest.jsonl", "a") as f:
        f.write('{"index": 1, "status": "o')       # a line cut by a kill
    cfg2 = GenerateConfig(out=str(tmp_path / "i"), num_samples=2, seed=5, lcs=(0.1,), domains=("unit_square",))
    counts = generate(cfg2, progress=False)
    assert counts["skipped_done"] == 1 and counts["ok"] == 1
    assert [r["index"] for r in read_manifest(tmp_path / "i")] == [0, 1]
    assert generate(cfg2, progress=False)["skipped_done"] == 2


def test_generate_3d_samples_load_and_train(tmp_path):
    """`um2n generate --dim 3`: tetrahedral samples with Monge-Ampère targets (valid meshes,
    boundary vertices on their planes), read back as PyG data (tetrahedra as ``face``), and a
    3D model trains on them; a 2D model is refused with a message naming the data."""
    import csv

    import numpy as np
    import torch
    from torch_geometric.loader import DataLoader

    from um2n.data import MeshMoveDataset
    from um2n.errors import UM2NError
    from um2n.fem.generate import GenerateConfig, generate, read_manifest
    from um2n.tetmesh import signed_volumes
    from um2n.train import LossWeights, TrainConfig, losses, train

    cfg = GenerateConfig(out=str(tmp_path / "d3"), num_samples=3, seed=5, lcs=(0.2,), dim=3,
                         domains=("box", "box_sphere_hole"), max_sources=2)
    counts = generate(cfg, progress=False)
    assert counts["ok"] + counts["failed"] == 3
    rows = read_manifest(tmp_path / "d3")
    assert [r["domain"] for r in rows] == ["box", "box_sphere_hole", "box"]
    assert all(len(s["centre"]) == 3 and len(s["angle"]) == 3 for r in rows for s in r["sources"])
    ds = MeshMoveDataset(tmp_path / "d3")
    assert len(ds) >= 2
    for data in ds:
        assert data.face.shape[0] == 4 and data.x.shape == (data.num_nodes, 5) and data.y.shape == (data.num_nodes, 3)
        assert (signed_volumes(data.y.double().numpy(), data.face.T.numpy()) > 0).all()
        lo = data.pos.min(0).values
        hi = data.pos.max(0).values
        y = data.y
        # the box's faces: a vertex on a face of the bounding box stays on it (float32 data)
        for k in range(3):
            on_lo = data.pos[:, k] == lo[k]
            assert torch.allclose(y[on_lo, k], lo[k].expand(int(on_lo.sum())), atol=1e-6)
            on_hi = data.pos[:, k] == hi[k]
            assert torch.allclose(y[on_hi, k], hi[k].expand(int(on_hi.sum())), atol=1e-6)
    batch = next(iter(DataLoader(list(ds), batch_size=2)))
    terms = losses(batch.y, batch)
    assert float(terms["vertex"]) < 1e-12 and float(terms["area"]) < 1e-5 and float(terms["fold"]) == 0.0
    assert float(losses(batch.pos, batch)["vertex"]) > 1e-6
    common = dict(data=str(tmp_path / "d3"), epochs=2, batch_size=2, lr=1e-3, seed=0, val_fraction=0.34,
                  loss=LossWeights(area=1.0, chamfer=0.0, vertex=1.0, equidistribution=0.1))
    train(TrainConfig(out=str(tmp_path / "run3"), model={"dim": 3}, **common), progress=False)
    rows = list(csv.DictReader(open(tmp_path / "run3" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and np.isfinite(float(rows[-1]["train_loss"]))
    with pytest.raises(UM2NError, match="3D samples, but the model is 2D"):
        train(TrainConfig(out=str(tmp_path / "run2"), **common), progress=False)
