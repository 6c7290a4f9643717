"""Pretraining on synthetic tasks drawn on the fly from the GP prior (``metabo pretrain``).

This module supplies the task sampler (context sizes, related studies for the multi-task prior), the loss (the
bar distribution's NLL of the query targets), the held-out NLL per context size and the learning-rate schedule
(linear warm-up, then cosine to a tenth); ``metabo.train.loop`` runs them, with checkpoints and resume. Training
runs on ``TrainConfig.device`` (a GPU where torch sees one, by default); tasks are drawn on the CPU and each batch
is moved to the device once. A run lives in one folder:

* ``checkpoint.safetensors`` / ``checkpoint.json``: model, optimiser and RNG state, written atomically every
  ``checkpoint_every`` steps; ``--resume`` continues from it bit-for-bit on the same machine.
* ``log.jsonl``: one line per evaluation (step, wall time, train loss, held-out NLL per context size).
* ``snapshots/``: the model every ``snapshot_every`` steps.
* ``model.safetensors`` + ``model.json``: the model and its card, rewritten at every checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from metabo.context import join_batch
from metabo.model.transformer import ModelConfig, TNPModel
from metabo.normalise import context_loc_scale
from metabo.priors.gp import GPPrior, PriorConfig, TaskBatch
from metabo.train.loop import LoopConfig, LoopState, model_device, resolve_device, setup_torch, train


TARGET_CLAMP = 30.0


@dataclass
class TrainConfig:
    steps: int = 20000
    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup: int = 300
    tokens_per_batch: int = 4096
    n_query: int = 32
    max_train_context: int = 200
    small_context_max: int = 64
    small_context_prob: float = 0.7
    seed: int = 0
    checkpoint_every: int = 250
    eval_every: int = 250
    snapshot_every: int = 2500
    threads: int = 1
    max_minutes: float | None = None
    stop_after: int | None = None  # stop at this step without changing the LR schedule (which follows `steps`)
    related_prob: float = 0.0  # share of batches with related studies in context (multi-task prior)
    max_related: int = 128  # related points per task, at most
    task_slots: int = 8  # slot 0: the target; 1..7: related studies (used when related_prob > 0)
    init: str | None = None  # start from this model's weights (its borders and architecture)
    device: str = "auto"  # "auto" (CUDA where available, else the CPU), "cpu" or "cuda"; tasks are drawn on the CPU
    precision: str = "fp32"  # "bf16": forward passes in bfloat16 under autocast (metabo.train.loop.LoopConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)


def normalise_batch(batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardise context and query targets by the context's statistics (what serving does)."""
    loc, scale = context_loc_scale(batch.y_ctx)
    # Two nearly equal context values give a tiny scale; clamp so such degenerate tasks cannot dominate the loss.
    return (batch.y_ctx - loc) / scale, ((batch.y_qry - loc) / scale).clamp(-TARGET_CLAMP, TARGET_CLAMP)


def model_inputs(batch: TaskBatch, g: torch.Generator | None = None,
                 task_slots: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Context inputs, values and task slots, and query targets, as the model takes them.

    The layout is ``metabo.context``'s: related points (if any) first, under task slots drawn at random among
    1..task_slots-1 (a distinct slot per study, so no slot means anything by itself), then the target's own
    context under slot 0.
    """
    y_ctx, y_q = normalise_batch(batch)
    if batch.x_rel is None:
        return batch.x_ctx, y_ctx, None, y_q
    n_studies = int(batch.rel_study.max()) + 1
    if n_studies > task_slots - 1:
        raise ValueError(f"{n_studies} related studies do not fit in {task_slots - 1} task slots")
    slots = torch.randperm(task_slots - 1, generator=g)[:n_studies] + 1
    x, y, task = join_batch(batch.x_rel, batch.y_rel, slots[batch.rel_study], batch.x_ctx, y_ctx)
    return x, y, task, y_q


def compute_borders(prior: GPPrior, cfg: TrainConfig, n_buckets: int, seed: int) -> torch.Tensor:
    """Bucket borders at equal-mass quantiles of normalised query targets drawn from the prior."""
    g = torch.Generator().manual_seed(seed + 7919)
    targets = []
    for i in range(240):
        n_ctx = _sample_context_size(cfg, g)
        batch = prior.sample(16, n_ctx, 64, g)
        targets.append(normalise_batch(batch)[1].flatten())
    y = torch.cat(targets).double()
    qs = torch.linspace(0.0005, 0.9995, n_buckets + 1, dtype=torch.float64)
    borders = torch.quantile(y, qs)
    # Strictly increasing, whatever ties the sample had.
    for i in range(1, borders.numel()):
        if borders[i] <= borders[i - 1]:
            borders[i] = borders[i - 1] + 1e-4
    return borders.float()


def _sample_context_size(cfg: TrainConfig, g: torch.Generator) -> int:
    if float(torch.rand(1, generator=g)) < cfg.small_context_prob:
        return int(torch.randint(0, cfg.small_context_max + 1, (1,), generator=g))
    return int(torch.randint(0, cfg.max_train_context + 1, (1,), generator=g))


def _batch_size(cfg: TrainConfig, n_ctx: int, n_related: int = 0) -> int:
    return max(4, cfg.tokens_per_batch // (n_ctx + n_related + cfg.n_query + 1))


def _sample_related(cfg: TrainConfig, g: torch.Generator) -> tuple[int, int]:
    """(related points, related studies) for the next batch; (0, 0) for a single-task batch."""
    if cfg.related_prob <= 0 or float(torch.rand(1, generator=g)) >= cfg.related_prob:
        return 0, 0
    n_rel = int(torch.randint(8, cfg.max_related + 1, (1,), generator=g))
    n_studies = int(torch.randint(1, min(cfg.task_slots - 1, n_rel) + 1, (1,), generator=g))
    return n_rel, n_studies


def _sample_batch(prior: GPPrior, cfg: TrainConfig, g: torch.Generator) -> TaskBatch:
    n_rel, n_studies = _sample_related(cfg, g)
    n_ctx = _sample_context_size(cfg, g)
    if n_rel:  # transfer matters most early in a study: mostly short target contexts
        n_ctx = min(n_ctx, int(torch.randint(0, 33, (1,), generator=g)))
    return prior.sample(_batch_size(cfg, n_ctx, n_rel), n_ctx, cfg.n_query, g, n_rel, n_studies)


def task_loss(model: TNPModel, batch: TaskBatch, g: torch.Generator) -> torch.Tensor:
    """(B, Q) NLL of a batch's query targets, its tensors moved to the model's device."""
    device = model_device(model)
    x, y, task, y_q = (None if t is None else t.to(device) for t in model_inputs(batch, g, model.cfg.task_slots))
    return model.bar.nll(model(x, y, batch.x_qry.to(device), ctx_task=task), y_q)


def heldout_nll(model: TNPModel, batches: list[tuple[str, TaskBatch]]) -> dict[str, float]:
    """Mean NLL of each held-out batch's query targets (and their mean), the model left in training mode."""
    model.eval()
    out: dict[str, float] = {}
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, batch in batches:
            out[key] = float(task_loss(model, batch, g).mean())
    model.train()
    out["mean"] = sum(out.values()) / len(out)
    return out


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)


def pretrain(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, command: str | None = None,
             progress: bool = True) -> Path:
    """Train a model on the GP prior; returns the path of the final ``model.safetensors``."""
    run_dir = Path(run_dir)
    setup_torch(cfg.seed, cfg.threads)
    prior = GPPrior(cfg.prior)
    model = _initial_model(cfg, prior).to(resolve_device(cfg.device))
    g = torch.Generator().manual_seed(cfg.seed)
    g_val = torch.Generator().manual_seed(cfg.seed + 104729)
    val_batches = [(str(n), prior.sample(64, n, 64, g_val)) for n in (0, 2, 8, 32, 100, 200)]
    if cfg.related_prob > 0:
        val_batches += [(f"{n}+rel{r}", prior.sample(64, n, 64, g_val, r, 3)) for n, r in ((0, 64), (2, 64), (8, 64))]

    def losses(step: int, rng: torch.Generator) -> Iterator[torch.Tensor]:
        yield task_loss(model, _sample_batch(prior, cfg, rng), rng).mean()

    def card(state: LoopState) -> dict[str, Any]:
        return {
            "name": run_dir.name,
            "command": command,
            "seed": cfg.seed,
            "prior": {"name": "gp-multitask" if cfg.related_prob > 0 else "gp", **asdict(cfg.prior)},
            "train_config": {k: v for k, v in _config_dict(cfg).items() if k not in ("model", "prior")},
            "heldout_nll": state.metrics,
        }

    # The schedule follows `steps`; `stop_after` only ends the run earlier.
    loop = LoopConfig(steps=min(cfg.steps, cfg.stop_after or cfg.steps), lr=cfg.lr, weight_decay=cfg.weight_decay,
                      max_minutes=cfg.max_minutes, eval_every=cfg.eval_every, monitor="mean",
                      checkpoint_every=cfg.checkpoint_every, snapshot_every=cfg.snapshot_every,
                      metrics_key="heldout_nll", loss_weight=0.02, threads=cfg.threads, precision=cfg.precision,
                      desc="pretrain", progress=progress)
    train(model, losses, loop, rng=g, evaluate=lambda: heldout_nll(model, val_batches),
          lr_at=lambda step: _lr_at(step, cfg), run_dir=run_dir, resume=resume,
          checkpoint_meta={"train_config": _config_dict(cfg)}, out=run_dir / "model.safetensors", card=card)
    return run_dir / "model.safetensors"


def _initial_model(cfg: TrainConfig, prior: GPPrior) -> TNPModel:
    """A fresh model, or (``cfg.init``) a copy of an existing one, widened with task slots and to the prior's
    input width if asked for."""
    task_slots = cfg.task_slots if cfg.related_prob > 0 else 0
    if cfg.init is None:
        cfg.model.task_slots = task_slots
        return TNPModel(cfg.model, compute_borders(prior, cfg, cfg.model.n_buckets, cfg.seed))
    from metabo.model.io import load_model, with_task_slots

    base = load_model(cfg.init)
    model = with_task_slots(base, max(task_slots, base.cfg.task_slots),
                            max_dims=max(base.cfg.max_dims, cfg.prior.max_dims))
    cfg.model = model.cfg
    return model
