r"""Training UM2N on Monge-Ampère meshes: ``um2n train CONFIG.toml``.

Losses, for a predicted mesh :math:`y` and its Monge-Ampère target :math:`y^*` (both in
the normalised coordinates of :mod:`um2n.features`):

* element area: :math:`\frac{1}{M}\sum_K |A_K(y) - A_K(y^*)| / \bar A^*`, with signed areas
  (signed volumes for tetrahedra), so that inverted elements are penalised;
* Chamfer distance (plain torch, per mesh, no pytorch3d):
  :math:`\frac1N\sum_i \min_j |y_i - y^*_j|^2 + \frac1N\sum_j \min_i |y_i - y^*_j|^2`;
* vertex distance: :math:`\frac1N \sum_i |y_i - y^*_i|^2` (the vertices correspond);
* optional equidistribution: the squared coefficient of variation of :math:`m_K A_K(y)`;
* optional collapse (:func:`collapse_term`): cells far smaller than their equidistributed size.

The total is the weighted sum (weights in the config). Training is seeded and
deterministic (shuffling by a generator seeded from ``seed`` and the epoch), the validation
split is decided per sample index (stable while the data set grows), it validates every epoch
(metrics appended to ``metrics.csv``), checkpoints every epoch (``checkpoint.pt``: model,
optimiser, epoch, best value; loaded with ``weights_only=True``) and resumes from the
checkpoint when run again. ``max_minutes`` stops cleanly after the epoch that crosses the
budget, so that long trainings progress over several sessions. The best weights (lowest
validation loss) are written as ``best.safetensors`` with their metrics in the header.
Progress: one line per epoch with its losses (standard output), and on a terminal a bar over
the epoch's batches (:func:`um2n.progress.progress`; none when standard error is redirected,
so that a log keeps one line per epoch).

Config (TOML)::

    data = "path/to/generated"      # a `um2n generate` folder, or a list of them
    out = "runs/um2n-v1"
    epochs = 200
    batch_size = 8
    lr = 5e-4
    seed = 0
    val_fraction = 0.1
    max_minutes = 150
    device = "auto"                # "cpu", "cuda" or "auto"
    [loss]
    area = 1.0
    chamfer = 1.0
    vertex = 1.0
    equidistribution = 0.0
    collapse = 0.0
    [model]                          # UM2NConfig fields (optional)
    attention = "latent"

Fine-tuning on the finite-element error (:mod:`um2n.fem.pde_loss`, Firedrake needed):
a ``[pde_loss]`` table (:class:`PDELossConfig`) replaces ``data`` by random problems drawn
like the training data, and the loss becomes ``weight`` times the mean over the meshes of
:math:`\log(e_{moved} / e_{original})`, the ratio of the L2 errors of the P1 solve on the
moved and the original mesh, plus the label-free terms of ``[loss]`` (``equidistribution``,
and ``fold``: :math:`\frac{1}{M}\sum_K \max(0, -A_K) / \overline{|A|}`, inverted elements);
the terms that need a Monge-Ampère target must be 0. ``init`` names the weights to start
from (a file or a shipped name such as ``"um2n-v1"``); a checkpoint, when there is one, wins.
The validation metrics add ``val_er``, the mean error reduction :math:`1 - e_{moved}/e_{original}`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from um2n.errors import UM2NError
from um2n.io import atomic_path
from um2n.model import UM2N, UM2NConfig
from um2n.progress import progress as report_progress


@dataclass
class LossWeights:
    area: float = 1.0
    chamfer: float = 1.0
    vertex: float = 1.0
    equidistribution: float = 0.0
    fold: float = 0.0
    collapse: float = 0.0

    #: the terms that compare with a Monge-Ampère target (the others need no label)
    LABELLED = ("area", "chamfer", "vertex")


@dataclass
class PDELossConfig:
    """The ``[pde_loss]`` table: fine-tuning on the finite-element error
    (:mod:`um2n.fem.pde_loss`) over random problems drawn like the training data
    (:func:`um2n.fem.generate.draw_sample`: domains, mesh sizes, Gaussian solutions and the
    Hessian monitor), without Monge-Ampère labels."""

    weight: float = 1.0                     # of the mean log error ratio
    samples: int = 240                      # problems drawn (validation split as for data)
    seed: int = 11                          # of the draws: neither `um2n generate`'s nor the benchmark's
    problems: list = field(default_factory=lambda: ["helmholtz", "poisson"])   # by index, in turn
    lcs: list = field(default_factory=lambda: [0.05, 0.06, 0.07])
    domains: list | None = None             # default: the training families
    alpha: float | list | None = None       # monitor 1 + alpha (|H|/max)^power; default: generate's;
    #                                         a list: each problem draws one of its values
    power: float | None = None


@dataclass
class TrainConfig:
    """See the module docstring."""

    data: str | list[str] | None
    out: str
    epochs: int = 200
    batch_size: int = 8
    lr: float = 5e-4
    seed: int = 0
    val_fraction: float = 0.1
    max_minutes: float | None = None
    device: str = "auto"
    loss: LossWeights = field(default_factory=LossWeights)
    model: dict = field(default_factory=dict)
    init: str | None = None                  # weights to start from (a path or a shipped name)
    pde_loss: PDELossConfig | None = None

    @classmethod
    def from_toml(cls, path: str | Path) -> "TrainConfig":
        from um2n.config import read_toml

        p = Path(path)
        raw = read_toml(p)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise UM2NError(f"{p}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        for key in ("data", "out"):
            if key not in raw and not (key == "data" and "pde_loss" in raw):
                raise UM2NError(f"{p}: missing setting {key!r}")
        if "pde_loss" in raw and "data" in raw:
            raise UM2NError(f"{p}: [pde_loss] draws its own problems; remove the setting 'data'")
        raw.setdefault("data", None)
        base = p.parent

        def resolve(value: str) -> str:  # "~" expands; relative paths are relative to the config file
            value = os.path.expandvars(os.path.expanduser(value))
            return value if os.path.isabs(value) else str((base / value).resolve())

        raw["out"] = resolve(raw["out"])
        if raw["data"] is None:
            pass
        elif isinstance(raw["data"], list):
            if not raw["data"] or not all(isinstance(d, str) for d in raw["data"]):
                raise UM2NError(f"{p}: 'data' must be a folder or a non-empty list of folders")
            raw["data"] = [resolve(d) for d in raw["data"]]
        else:
            raw["data"] = resolve(raw["data"])
        if "init" in raw and (os.sep in raw["init"] or raw["init"].endswith(".safetensors")):
            raw["init"] = resolve(raw["init"])
        try:
            raw["loss"] = LossWeights(**raw.get("loss", {}))
            UM2NConfig(**raw.get("model", {}))
            if "pde_loss" in raw:
                raw["pde_loss"] = PDELossConfig(**raw["pde_loss"])
        except TypeError as exc:
            raise UM2NError(f"{p}: {exc}") from None
        config = cls(**raw)
        config.check(p)
        return config

    def check(self, where: object = "config") -> None:
        """Consistency of the settings (raises :class:`UM2NError` naming ``where``)."""
        if self.pde_loss is not None:
            labelled = [k for k in LossWeights.LABELLED if getattr(self.loss, k) != 0.0]
            if labelled:
                raise UM2NError(f"{where}: [pde_loss] problems have no Monge-Ampere target; set [loss] "
                                f"{', '.join(f'{k} = 0' for k in labelled)} (label-free terms: equidistribution, fold, collapse)")
            unknown = sorted(set(self.pde_loss.problems) - {"helmholtz", "poisson"})
            if unknown or not self.pde_loss.problems:
                raise UM2NError(f"{where}: [pde_loss] problems must be among helmholtz, poisson, got "
                                f"{self.pde_loss.problems}")
            alphas = self.pde_loss.alpha if isinstance(self.pde_loss.alpha, list) else [self.pde_loss.alpha]
            if self.pde_loss.alpha is not None and (not alphas or not all(
                    isinstance(a, (int, float)) and not isinstance(a, bool) and a >= 0 for a in alphas)):
                raise UM2NError(f"{where}: [pde_loss] alpha must be a number >= 0 or a non-empty list of them, "
                                f"got {self.pde_loss.alpha!r}")
            if self.pde_loss.samples < 2:
                raise UM2NError(f"{where}: [pde_loss] samples must be at least 2, got {self.pde_loss.samples}")
        elif self.data is None:
            raise UM2NError(f"{where}: missing setting 'data'")


# ------------------------------------------------------------------------------ losses
def signed_areas_t(pos: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """Signed areas of triangles ``face`` (3, M), or signed volumes of tetrahedra ``face`` (4, M)."""
    if face.shape[0] == 4:
        p0 = pos[face[0]]
        a, b, c = pos[face[1]] - p0, pos[face[2]] - p0, pos[face[3]] - p0
        return (a * torch.linalg.cross(b, c)).sum(-1) / 6.0
    p0, p1, p2 = pos[face[0]], pos[face[1]], pos[face[2]]
    return 0.5 * ((p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (p2[:, 0] - p0[:, 0]))


def chamfer_distance(a: torch.Tensor, b: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Symmetric Chamfer distance between point sets ``a`` (N, 2) and ``b`` (M, 2)."""
    def one_way(x, y):
        mins = [torch.cdist(x[i:i + chunk], y).pow(2).min(dim=1).values for i in range(0, len(x), chunk)]
        return torch.cat(mins).mean()
    return one_way(a, b) + one_way(b, a)


def losses(pred: torch.Tensor, batch) -> dict[str, torch.Tensor]:
    """The loss terms of a batch, each averaged over its meshes: those against the
    Monge-Ampère target ``batch.y`` when the batch has one, and the label-free ones."""
    face = batch.face
    y = getattr(batch, "y", None)
    a_pred = signed_areas_t(pred, face)
    a_true = signed_areas_t(y, face) if y is not None else None
    face_graph = batch.batch[face[0]] if hasattr(batch, "batch") and batch.batch is not None else \
        torch.zeros(face.shape[1], dtype=torch.long)
    ptr = batch.ptr if hasattr(batch, "ptr") and batch.ptr is not None else torch.tensor([0, len(pred)])
    n_graphs = len(ptr) - 1
    area, cham, vert, equi, fold = [], [], [], [], []
    for g in range(n_graphs):
        a, b = int(ptr[g]), int(ptr[g + 1])
        fm = face_graph == g
        ap = a_pred[fm]
        fold.append(torch.relu(-ap).mean() / ap.abs().mean())
        if y is not None:
            at = a_true[fm]
            area.append((ap - at).abs().mean() / at.abs().mean())
            cham.append(chamfer_distance(pred[a:b], y[a:b]))
            vert.append((pred[a:b] - y[a:b]).pow(2).sum(-1).mean())
        if hasattr(batch, "monitor"):
            mk = batch.monitor[face[:, fm]].mean(dim=0)
            w = mk * ap
            equi.append((w.std() / w.mean()).pow(2))
    out = {}
    if y is not None:
        out.update(area=torch.stack(area).mean(), chamfer=torch.stack(cham).mean(), vertex=torch.stack(vert).mean())
    out["equidistribution"] = torch.stack(equi).mean() if equi else torch.zeros(())
    out["fold"] = torch.stack(fold).mean()
    return out


#: :func:`collapse_term` penalises a cell smaller than this fraction of its equidistributed size
COLLAPSE_RATIO = 0.25


def collapse_term(pred: torch.Tensor, batch) -> torch.Tensor:
    r"""The cells of the predicted mesh much smaller than equidistribution asks, averaged over
    the meshes of a batch:

    .. math::

        \frac1M \sum_K \max\big(0, \log(\rho A^*_K / A_K)\big)^2, \qquad
        A^*_K = \frac{m_K^{-1}}{\sum_L m_L^{-1}} \sum_L A_L,

    with :math:`A_K` the predicted signed area (volume, floored at :math:`10^{-6} A^*_K`),
    :math:`m_K` the cell's mean monitor value, :math:`A^*_K` its size on a mesh that
    equidistributes :math:`m` exactly, and :math:`\rho` = :data:`COLLAPSE_RATIO`. Unlike the
    equidistribution CV, which a single collapsed cell hardly changes, it acts on each
    collapsed cell, where the monitor does not ask for it too (a collapsed cell far from every
    feature sets an explicit solver's stable time step). Needs ``batch.monitor``."""
    face = batch.face
    a_pred = signed_areas_t(pred, face)
    face_graph = batch.batch[face[0]] if getattr(batch, "batch", None) is not None else \
        torch.zeros(face.shape[1], dtype=torch.long)
    ptr = batch.ptr if getattr(batch, "ptr", None) is not None else torch.tensor([0, len(pred)])
    terms = []
    for g in range(len(ptr) - 1):
        fm = face_graph == g
        ap = a_pred[fm]
        inv_m = 1.0 / batch.monitor[face[:, fm]].mean(dim=0)
        target = ap.sum().detach() * inv_m / inv_m.sum()
        ratio = COLLAPSE_RATIO * target / torch.maximum(ap, 1e-6 * target)
        terms.append(torch.relu(torch.log(ratio)).pow(2).mean())
    return torch.stack(terms).mean()


def pde_terms(pred: torch.Tensor, batch, problems: list) -> dict[str, torch.Tensor]:
    r"""The finite-element error term of a batch: the mean over its meshes of
    :math:`\log(e_{moved} / e_{original})` (:meth:`um2n.fem.pde_loss.FEError.loss`), and, for
    the record, the mean error reduction ``er`` :math:`= 1 - e_{moved} / e_{original}`."""
    ptr = batch.ptr if getattr(batch, "ptr", None) is not None else torch.tensor([0, len(pred)])
    ids = batch.problem.reshape(-1)
    logs = []
    for g in range(len(ptr) - 1):
        a, b = int(ptr[g]), int(ptr[g + 1])
        points = batch.origin[g] + batch.scale[g] * pred[a:b].to(torch.float64)
        logs.append(problems[int(ids[g])].error.loss(points))
    logs = torch.stack(logs)
    return {"pde": logs.mean(), "er": (1.0 - torch.exp(logs.detach())).mean()}


def total_loss(terms: dict, w: LossWeights, pde: PDELossConfig | None = None) -> torch.Tensor:
    total = sum(getattr(w, k) * v for k, v in terms.items() if hasattr(w, k) and getattr(w, k) != 0.0)
    if pde is not None:
        total = total + pde.weight * terms["pde"]
    return total


def objective(model: UM2N, batch, config: "TrainConfig", problems: list | None) -> dict[str, torch.Tensor]:
    """Every loss term of ``batch`` and their weighted sum ``total``."""
    pred = model(batch)
    terms = losses(pred, batch)
    if config.loss.collapse:
        terms["collapse"] = collapse_term(pred, batch)
    if config.pde_loss is not None:
        terms.update(pde_terms(pred, batch, problems))
    terms["total"] = total_loss(terms, config.loss, config.pde_loss)
    terms["inverted"] = (signed_areas_t(pred.detach(), batch.face) <= 0).sum()
    return terms


# ------------------------------------------------------------------------------ loop
def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


FOLDER_KEY_STRIDE = 10_000_000


def is_validation(sample_index: int, val_fraction: float, seed: int) -> bool:
    """Whether a sample belongs to the validation set: decided by the sample's own index, so
    the split does not change when the data set grows between sessions."""
    import numpy as np

    return bool(np.random.default_rng([seed, 7919, int(sample_index)]).random() < val_fraction)


def split_indices(keys: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Positions of the training and validation samples, given each sample's index ``keys``."""
    val = [i for i, k in enumerate(keys) if is_validation(k, val_fraction, seed)]
    if not val:                                  # tiny data sets: keep one sample for validation
        val = [len(keys) - 1]
    tr = [i for i in range(len(keys)) if i not in set(val)]
    return tr, val


@torch.no_grad()
def evaluate(model: UM2N, loader, config: "TrainConfig", device, problems: list | None = None) -> dict:
    """Mean loss terms over the validation meshes (``val_*``), and the number of inverted
    elements in the raw predictions (``val_inverted``)."""
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    inverted = 0
    for batch in loader:
        batch = batch.to(device)
        terms = objective(model, batch, config, problems)
        inverted += int(terms.pop("inverted"))
        k = batch.num_graphs
        for name, v in terms.items():
            sums[name] = sums.get(name, 0.0) + float(v) * k
        count += k
    out = {f"val_{k}": v / max(count, 1) for k, v in sums.items()}
    if "val_vertex" in out:
        out["val_vertex_rmse"] = math.sqrt(out["val_vertex"])
    out["val_inverted"] = inverted
    return out


def pde_problems(cfg: PDELossConfig, progress: bool = True) -> list:
    """The problems of the PDE-loss stage (meshed and taped with Firedrake, which is imported
    here only)."""
    import tempfile

    from um2n.fem.generate import DOMAINS, GenerateConfig
    from um2n.fem.pde_loss import make_problem

    gen = GenerateConfig(out="(pde_loss)", seed=cfg.seed, lcs=tuple(cfg.lcs),
                         domains=tuple(cfg.domains) if cfg.domains else DOMAINS)
    if cfg.power is not None:
        gen.power = cfg.power
    with tempfile.TemporaryDirectory() as work:
        return [make_problem(gen, i, cfg.problems[i % len(cfg.problems)], work, alpha=problem_alpha(cfg, i))
                for i in report_progress(range(cfg.samples), "pde_loss problems", enabled=progress, unit="problem")]


def problem_alpha(cfg: PDELossConfig, index: int) -> float | None:
    """The monitor amplitude of problem ``index``: ``alpha``, or one value of the list ``alpha``
    drawn from the stream ``(seed, index, 1)`` (independent of the problem's other draws);
    ``None``: generate's default."""
    if not isinstance(cfg.alpha, list):
        return None if cfg.alpha is None else float(cfg.alpha)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, index, 1]))
    return float(cfg.alpha[int(rng.integers(len(cfg.alpha)))])


def train(config: TrainConfig, progress: bool = True, dataset=None) -> dict:
    """Train (or resume) as ``config`` says; returns the last epoch's metrics."""
    from torch_geometric.loader import DataLoader

    from um2n.data import MeshMoveDataset

    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = _device(config.device)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if not 0.0 < config.val_fraction < 1.0:
        raise UM2NError(f"val_fraction must be between 0 and 1, got {config.val_fraction}")
    problems = None
    if config.pde_loss is not None:
        config.check()
        problems = pde_problems(config.pde_loss, progress)
        ds = []
        for i, prob in enumerate(problems):
            prob.data.problem = torch.tensor([i])
            ds.append(prob.data)
        keys = [prob.index for prob in problems]
    else:
        if dataset is not None:
            parts = [dataset]
        else:
            parts = [MeshMoveDataset(d) for d in ([config.data] if isinstance(config.data, str) else config.data)]
        # validation membership by (folder position, sample index): stable as folders grow
        keys = [k * FOLDER_KEY_STRIDE + (int(r["index"]) if hasattr(part, "rows") else i)
                for k, part in enumerate(parts)
                for i, r in enumerate(part.rows if hasattr(part, "rows") else [None] * len(part))]
        ds = [part[i] for part in parts for i in range(len(part))] if len(parts) > 1 else parts[0]
    if len(ds) < 2:
        raise UM2NError(f"{config.data}: needs at least 2 samples, found {len(ds)}")
    tr_idx, va_idx = split_indices(keys, config.val_fraction, config.seed)
    if not tr_idx:
        raise UM2NError(f"{config.data}: no training samples left after the validation split")
    # samples are small: load them once (graph building is not repeated every epoch)
    train_ds, val_ds = [ds[i] for i in tr_idx], [ds[i] for i in va_idx]
    val_loader = DataLoader(val_ds, batch_size=config.batch_size, shuffle=False)

    if config.init is not None:
        from um2n.mover import resolve_weights

        model, _ = UM2N.load(resolve_weights(config.init))
        model = model.to(device)
    else:
        model = UM2N(UM2NConfig(**config.model)).to(device)
    data_dim = int(train_ds[0].pos.shape[1])
    if model.config.dim != data_dim:
        raise UM2NError(f"{config.data}: {data_dim}D samples, but the model is {model.config.dim}D "
                        f"(set [model] dim = {data_dim}, or init from {data_dim}D weights)")
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    ckpt_path = out / "checkpoint.pt"
    start_epoch, best = 0, float("inf")
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        for group in opt.param_groups:       # the config's learning rate wins over the saved one
            group["lr"] = config.lr
        start_epoch, best = int(ckpt["epoch"]), float(ckpt["best"])
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2, default=str))
    metrics_path = out / "metrics.csv"
    t_start = time.perf_counter()
    last: dict = {}
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        model.train()
        gen = torch.Generator().manual_seed(config.seed * 100003 + epoch)
        loader = DataLoader(train_ds, batch_size=config.batch_size, shuffle=True, generator=gen)
        run, count = 0.0, 0
        batches = report_progress(loader, f"epoch {epoch + 1}/{config.epochs}", total=len(loader), unit="batch",
                                  enabled=progress and sys.stderr.isatty())
        for batch in batches:
            batch = batch.to(device)
            opt.zero_grad()
            loss = objective(model, batch, config, problems)["total"]
            loss.backward()
            opt.step()
            run += float(loss.detach()) * batch.num_graphs
            count += batch.num_graphs
        row = {"epoch": epoch + 1, "train_loss": run / count, **evaluate(model, val_loader, config, device, problems),
               "seconds": round(time.perf_counter() - t0, 3)}
        if row["val_total"] < best:
            best = row["val_total"]
            meta = {"epoch": epoch + 1, "val_total": best, "loss_weights": json.dumps(asdict(config.loss)),
                    "train_samples": len(tr_idx), "val_samples": len(va_idx), "data": config.data}
            for key in ("val_vertex_rmse", "val_er"):
                if key in row:
                    meta[key] = row[key]
            if config.pde_loss is not None:
                meta.update(pde_loss=json.dumps(asdict(config.pde_loss)), init=config.init)
            model.save(out / "best.safetensors", metadata=meta)
        # checkpoint first: a kill between the two loses a metrics row, never duplicates one
        with atomic_path(ckpt_path) as tmp:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                        "best": best}, tmp)
        new = not metrics_path.exists()
        with open(metrics_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
        last = row
        if progress:
            extra = (f"vertex rmse {row['val_vertex_rmse']:.3e}" if "val_vertex_rmse" in row else
                     f"error reduction {100 * row['val_er']:.2f} %")
            print(f"epoch {epoch + 1}: train {row['train_loss']:.4e}  val {row['val_total']:.4e}  "
                  f"{extra}  inverted {row['val_inverted']}  ({row['seconds']:.1f} s)", flush=True)
        if config.max_minutes is not None and (time.perf_counter() - t_start) / 60 >= config.max_minutes:
            if progress:
                print(f"time budget of {config.max_minutes} min reached after epoch {epoch + 1}; "
                      f"run again to resume from {ckpt_path}")
            break
    return last
