"""Fine-tuning a pretrained model on a corpus of past studies (``metabo finetune``).

This module supplies the task sampler and the loss; ``metabo.train.loop`` runs them. The model learns to predict
held-out points of each past study from a random subset of that study's other points (its context) and, most
of the time, from the points of other studies of the corpus under their own task slots, laid out by
``metabo.context`` exactly as ``TNPSampler(related=...)`` lays them out. Every task is a fresh random split
(subsampling and permutation augmentation). Values go through ``FinetuneConfig.transform`` (its past-value
steps). A share of the studies is held out for validation; training stops early once the validation NLL has
not improved for ``patience`` evaluations, and the best weights are kept.

Output: ``model.safetensors`` plus its card (the corpus, the base model, the settings, the validation curve,
the command) and ``<name>.curve.png`` (training and validation NLL against steps).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from optuna.distributions import BaseDistribution

from metabo.context import Context, collate, join, related_points
from metabo.meta.align import AlignedStudy, align_corpus
from metabo.meta.study import PastStudy
from metabo.model.io import load_model, read_card, with_task_slots
from metabo.model.transformer import TNPModel
from metabo.normalise import DEFAULT_TRANSFORM, ObjectiveTransform, ValueTransformConfig
from metabo.space import SearchSpaceEncoder
from metabo.train.loop import LoopConfig, LoopState, model_device, resolve_device, setup_torch, train
from metabo.train.pretrain import TARGET_CLAMP

DEFAULT_TASK_SLOTS = 8


@dataclass
class FinetuneConfig:
    """Fine-tuning settings (stored in the model card)."""

    max_minutes: float = 8.0  # time limit
    max_steps: int = 4000
    lr: float = 1e-4  # AdamW learning rate (constant)
    weight_decay: float = 1e-4
    tasks_per_batch: int = 16  # held-out prediction tasks per step, each from one past study
    n_query: int = 32  # held-out points predicted per task
    max_own_context: int = 48  # the target study's own context points, at most
    max_related: int = 128  # related points per task, at most
    related_prob: float = 0.8  # share of batches with other studies in the context
    val_fraction: float = 0.2  # share of the studies held out for validation
    eval_every: int = 50  # steps between validations
    patience: int = 8  # validations without improvement before stopping early
    seed: int = 0
    threads: int = 2  # torch threads
    device: str = "auto"  # "auto" (CUDA where available, else the CPU), "cpu" or "cuda"; tasks are drawn on the CPU
    transform: ValueTransformConfig = DEFAULT_TRANSFORM  # its for_past_values() normalises every study


@dataclass
class _Task:
    """One fine-tuning task: the context (``metabo.context`` layout) and the query points to predict."""

    context: Context
    x_qry: np.ndarray
    y_qry: np.ndarray


def target_space_of(corpus: Sequence[PastStudy]) -> dict[str, BaseDistribution]:
    """The search space fine-tuning aligns a corpus to: the widest study's (most parameters, then most points)."""
    if not corpus:
        raise ValueError("the corpus is empty: nothing to fine-tune on")
    return dict(max(corpus, key=lambda s: (len(s.search_space), len(s))).search_space)


def _normalise_own(values_ctx: np.ndarray, values_qry: np.ndarray, study: AlignedStudy,
                   transform: ValueTransformConfig) -> tuple[np.ndarray, np.ndarray]:
    """The study's own values, by a transform fitted on the context (two or more points; the past-value steps of
    ``transform``, which the shipped models were fine-tuned with); with fewer, the study-wide scale, as the
    prior's unit-scale tasks."""
    if len(values_ctx) >= 2:
        t = ObjectiveTransform(study.study.maximize, transform.for_past_values()).fit(values_ctx)
        return t.transform(values_ctx), t.transform(values_qry)
    y_all = study.transform.transform(np.concatenate([values_ctx, values_qry]))
    loc = y_all[0] if len(values_ctx) else 0.0
    return y_all[: len(values_ctx)] - loc, y_all[len(values_ctx):] - loc


class _TaskSampler:
    """Draws fine-tuning tasks from aligned studies (targets from ``pool``, related points from ``others``)."""

    def __init__(self, pool: Sequence[AlignedStudy], others: Sequence[AlignedStudy], cfg: FinetuneConfig,
                 n_slots: int) -> None:
        self.pool, self.others, self.cfg, self.n_slots = list(pool), list(others), cfg, n_slots

    def batch(self, rng: np.random.RandomState, n_ctx: int, n_rel: int, n_studies: int) -> list[_Task]:
        return [self.task(rng, n_ctx, n_rel, n_studies) for _ in range(self.cfg.tasks_per_batch)]

    def task(self, rng: np.random.RandomState, n_ctx: int, n_rel: int, n_studies: int) -> _Task:
        target = self.pool[rng.randint(len(self.pool))]
        n = len(target.y)
        n_ctx = min(n_ctx, n - 1)
        n_q = min(self.cfg.n_query, n - n_ctx)
        order = rng.permutation(n)
        ctx, qry = order[:n_ctx], order[n_ctx : n_ctx + n_q]
        y_ctx, y_qry = _normalise_own(target.values[ctx], target.values[qry], target, self.cfg.transform)
        related = self.related(target, rng, n_rel, n_studies)
        return _Task(join(related, target.x[ctx], y_ctx), target.x[qry], np.clip(y_qry, -TARGET_CLAMP, TARGET_CLAMP))

    def related(self, target: AlignedStudy, rng: np.random.RandomState, n_rel: int, n_studies: int
                ) -> Context | None:
        """``n_rel`` points of ``n_studies`` other studies, each under a distinct random task slot."""
        candidates = [s for s in self.others if s is not target]
        if not n_rel or not candidates:
            return None
        chosen = rng.choice(len(candidates), size=min(n_studies, len(candidates)), replace=False)
        slot_ids = rng.permutation(self.n_slots - 1)[: len(chosen)] + 1
        return related_points([candidates[i] for i in chosen], n_rel, rng, slots=slot_ids)


def _collate(tasks: Sequence[_Task]) -> tuple[torch.Tensor, ...]:
    """Tasks as one padded batch: context x, y, slots and mask, then query x, y and mask."""
    d = tasks[0].x_qry.shape[1]
    xc, yc, sc, mc = collate([t.context for t in tasks], width=d)
    # Query points pad the same way; their slots are unused.
    xq, yq, _, mq = collate([Context(t.x_qry, t.y_qry, np.zeros(len(t.y_qry), dtype=np.int64)) for t in tasks],
                            width=d)
    return xc, yc, sc, mc, xq, yq, mq


def _loss(model: TNPModel, tasks: Sequence[_Task]) -> torch.Tensor:
    device = model_device(model)
    xc, yc, sc, mc, xq, yq, mq = (t.to(device) for t in _collate(tasks))
    logits = model(xc, yc, xq, ctx_mask=mc, ctx_task=sc)
    nll = model.bar.nll(logits, yq)
    return (nll * mq).sum() / mq.sum()


def _sizes(cfg: FinetuneConfig, rng: np.random.RandomState, with_related: bool) -> tuple[int, int, int]:
    """(own context size, related points, related studies) for one batch."""
    n_ctx = int(rng.randint(0, cfg.max_own_context + 1)) if rng.rand() < 0.8 else int(rng.randint(0, 9))
    if not with_related or rng.rand() >= cfg.related_prob:
        return max(n_ctx, 2), 0, 0
    return n_ctx, int(rng.randint(min(16, cfg.max_related), cfg.max_related + 1)), int(rng.randint(1, DEFAULT_TASK_SLOTS))


@dataclass
class FinetuneResult:
    path: Path
    best_step: int
    best_val_nll: float
    base_val_nll: float
    steps: int
    wall_seconds: float
    stopped_early: bool


def finetune(corpus: Sequence[PastStudy], out: str | Path, base: str | Path | None = None,
             target_space: Mapping[str, BaseDistribution] | None = None, cfg: FinetuneConfig | None = None,
             progress: bool = True, command: str | None = None, corpus_label: str | None = None) -> FinetuneResult:
    """Fine-tune ``base`` (default: the shipped multi-task model) on ``corpus``; write ``out`` and its card.

    Args:
        corpus: past studies (``metabo.meta.load_corpus``); at least 3 with 2 or more points each.
        out: the output ``.safetensors`` path.
        base: the model to start from. Single-task models get task slots (initialised to zero).
        target_space: the space the corpus is aligned to (default: ``target_space_of(corpus)``). The model's
            input is widened if the space encodes to more coordinates than it takes.
        cfg: settings; ``FinetuneConfig()`` by default.
        progress: show a progress bar.
        command, corpus_label: recorded in the card.
    """
    from metabo.model.io import default_model_path, multitask_model_path

    cfg = cfg or FinetuneConfig()
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"the output must be a .safetensors path, got {out}")
    setup_torch(cfg.seed, cfg.threads)
    rng = np.random.RandomState(cfg.seed)
    space = dict(target_space) if target_space is not None else target_space_of(corpus)
    aligned, rejected = align_corpus(corpus, space, transform=cfg.transform)
    aligned = [a for a in aligned if len(a.y) >= 2]
    if len(aligned) < 3:
        raise ValueError(f"fine-tuning needs at least 3 usable past studies, got {len(aligned)} "
                         f"({len(rejected)} rejected: {[r.reason for r in rejected][:3]})")
    n_val = max(1, int(round(cfg.val_fraction * len(aligned))))
    order = rng.permutation(len(aligned))
    val_studies = [aligned[i] for i in order[:n_val]]
    train_studies = [aligned[i] for i in order[n_val:]]

    if base is None:
        base = multitask_model_path() if multitask_model_path().exists() else default_model_path()
    base_model = load_model(base)
    n_dims = SearchSpaceEncoder(space).n_dims
    model = with_task_slots(base_model, max(DEFAULT_TASK_SLOTS, base_model.cfg.task_slots),
                            max_dims=max(n_dims, base_model.cfg.max_dims)).to(resolve_device(cfg.device))
    n_slots = model.cfg.task_slots

    train_tasks = _TaskSampler(train_studies, train_studies, cfg, n_slots)
    # Validation targets are held-out studies; their related points come from the training studies.
    val_sampler = _TaskSampler(val_studies, train_studies, cfg, n_slots)
    val_rng = np.random.RandomState(cfg.seed + 1)
    val_batches = [val_sampler.batch(val_rng, n_ctx, n_rel, k)
                   for n_ctx, n_rel, k in ((0, 96, 4), (4, 96, 4), (16, 96, 4), (16, 0, 0), (40, 64, 2))]

    def validate() -> dict[str, float]:
        return {"val_nll": float(np.mean([float(_loss(model, b)) for b in val_batches]))}

    def losses(step: int, rng: np.random.RandomState) -> Iterator[torch.Tensor]:
        n_ctx, n_rel, k = _sizes(cfg, rng, len(train_studies) > 1)
        yield _loss(model, train_tasks.batch(rng, n_ctx, n_rel, k))

    def card(state: LoopState) -> dict[str, Any]:
        return {
            "name": out.stem,
            "command": command,
            "kind": "finetuned",
            "base_model": {"path": str(base), "name": read_card(base).get("name")},
            "corpus": {
                "label": corpus_label,
                "n_studies": len(aligned),
                "n_train_studies": len(train_studies),
                "n_validation_studies": len(val_studies),
                "n_observations": int(sum(len(a.y) for a in aligned)),
                "studies": sorted(a.name for a in aligned),
                "validation_studies": sorted(a.name for a in val_studies),
                "rejected": [r.reason for r in rejected],
                "search_space": {n: repr(d) for n, d in space.items()},
            },
            "finetune_config": asdict(cfg),
            "seed": cfg.seed,
            "best_step": state.best_step,
            "stopped_early": state.stopped_early,
            "validation_nll": {"base": state.history[0]["val_nll"], "best": state.best},
            "validation_curve": state.history,
        }

    loop = LoopConfig(steps=cfg.max_steps, lr=cfg.lr, weight_decay=cfg.weight_decay, max_minutes=cfg.max_minutes,
                      eval_every=cfg.eval_every, eval_at_start=True, monitor="val_nll", patience=cfg.patience,
                      loss_weight=0.05, threads=cfg.threads, desc="finetune", progress=progress)
    state = train(model, losses, loop, rng=rng, evaluate=validate, out=out, card=card)
    _plot_curve(state.history, out.with_suffix(".curve.png"), state.best_step or 0)
    return FinetuneResult(out, state.best_step or 0, state.best, state.history[0]["val_nll"], state.step,
                          state.wall_seconds, state.stopped_early)


def _plot_curve(curve: list[dict[str, Any]], path: Path, best_step: int) -> None:
    """Training and validation NLL against steps (skipped quietly without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    steps = [c["step"] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [c["val_nll"] for c in curve], marker="o", ms=3, label="validation NLL (held-out studies)")
    ax.plot(steps[1:], [c["train_loss"] for c in curve[1:]], alpha=0.7, label="training NLL (running mean)")
    ax.axvline(best_step, color="grey", ls="--", lw=1, label=f"best step {best_step}")
    ax.set_xlabel("step")
    ax.set_ylabel("NLL")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def describe(result: FinetuneResult) -> dict[str, Any]:
    """A JSON-friendly summary for the command line."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}


def dumps(result: FinetuneResult) -> str:
    return json.dumps(describe(result), indent=2)
