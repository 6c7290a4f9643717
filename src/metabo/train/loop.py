"""The one training loop behind pretraining, fine-tuning and NAP training.

A training task supplies its losses and its evaluation; ``train`` owns the rest: the AdamW optimiser, gradient
clipping (norm 1.0), the learning-rate schedule hook, periodic evaluation, early stopping with the best weights
restored, the progress bar, the time limit, checkpoints with bit-for-bit resume, snapshots, and writing the model
with its card (``metabo.model.io.save_model`` plus the fields every card shares).

Each step calls ``losses(step, rng)``, which yields one or more losses; each is followed by an optimiser step
(PPO's several epochs over one batch of episodes fit this). A run folder holds:

* ``checkpoint.safetensors`` / ``checkpoint.json``: model, optimiser and RNG state (the task's rng, torch's global
  generator and, for a model on a GPU, that GPU's), written atomically from CPU copies.
* ``log.jsonl``: one line per evaluation (step, wall time, running training loss, metrics); a resume drops the
  lines past its checkpoint.
* ``snapshots/stepNNNNNN.safetensors``: copies of the model along the way.

The model may live on a GPU (``resolve_device``): the loop keeps its optimiser state and best weights there, and
writes checkpoints, snapshots and the model from CPU copies, so the files are the same format wherever it trained.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm.auto import tqdm

from metabo.model.io import save_model
from metabo.train import provenance

CHECKPOINT = "checkpoint.safetensors"
CHECKPOINT_META = "checkpoint.json"
LOG = "log.jsonl"
CLIP_NORM = 1.0
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")  # what resolve_device takes by name (also "cuda:N")

Losses = Callable[[int, Any], Iterable[Tensor]]


@dataclass
class LoopConfig:
    """How the loop runs (each task maps its own settings onto these).

    Attributes:
        steps: stop after this step (one step is one call of ``losses``).
        lr, weight_decay: AdamW's settings (``lr_at`` sets the rate step by step).
        max_minutes: stop after the step that passes this time limit (``None``: no limit).
        eval_every: evaluate every this many steps (0: never in between); always after the last step too.
        eval_at_start: evaluate before the first step as well (fine-tuning's base validation NLL).
        monitor: the metric on the progress bar and, with ``patience``, the one early stopping watches (lower is
            better).
        patience: stop once ``monitor`` has not improved by ``min_improvement`` for this many evaluations, and
            restore the best weights at the end (``None``: no early stopping; the last weights are kept).
        checkpoint_every: with a run folder, checkpoint every this many steps, and after the last.
        snapshot_every: with a run folder, keep a copy of the model every this many steps (0: none).
        metrics_key: nest the evaluation's metrics under this key in history records (``None``: flat).
        loss_weight: the weight of each step's loss in the running training loss (an exponential moving average).
        threads: torch threads, for the card.
        precision: ``"fp32"``, or ``"bf16"``: forward passes under ``torch.autocast`` in bfloat16 on the model's
            device (weights, gradients, the optimiser and the loss stay in float32; faster on GPUs and on CPUs
            with bfloat16 instructions).
        desc, progress: the progress bar's label, and whether to show it.
    """

    steps: int
    lr: float
    weight_decay: float = 1e-4
    max_minutes: float | None = None
    eval_every: int = 0
    eval_at_start: bool = False
    monitor: str | None = None
    patience: int | None = None
    min_improvement: float = 1e-4
    checkpoint_every: int = 0
    snapshot_every: int = 0
    metrics_key: str | None = None
    loss_weight: float = 0.02
    threads: int = 1
    precision: str = "fp32"
    desc: str = "train"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")


@dataclass
class LoopState:
    """Where training stands; ``train`` returns it.

    Attributes:
        step: steps done (counting those before a resume).
        wall_seconds: training time (counting that before a resume).
        train_loss: running mean of the training loss (``None`` before the first step).
        metrics: the last evaluation's metrics.
        history: one record per evaluation: step, wall_seconds, train_loss and the metrics (after a resume, the
            run folder's log up to the checkpoint comes first).
        best_step, best: where ``monitor`` was best, and its value (early stopping).
        stop_reason: ``"max steps"``, ``"time limit (max_minutes)"`` or ``"early stopping"``; ``"running"``
            before the end.
    """

    step: int = 0
    wall_seconds: float = 0.0
    train_loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int | None = None
    best: float = float("inf")
    stop_reason: str = "running"

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason == "early stopping"


def setup_torch(seed: int, threads: int) -> None:
    """Thread count and global seed, set before the model is built (its initial weights draw from the seed)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """The device to train on: ``"auto"`` is the GPU where ``torch.cuda.is_available()``, else the CPU; ``"cpu"``
    and ``"cuda"`` (or ``"cuda:N"``) ask for one. A GPU asked for but missing is a ``ValueError`` that says so."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}: use auto, cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch {torch.__version__} sees no CUDA GPU "
                         f"(torch.cuda.is_available() is False); use auto or cpu to train on the CPU")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} asked for, but there are {torch.cuda.device_count()} CUDA GPU(s)")
    return device


def describe_device(device: torch.device) -> str:
    """``"cpu"``, or the GPU's name and CUDA version (``"NVIDIA H200 GPU (CUDA 13.0)"``)."""
    if device.type != "cuda":
        return str(device)
    return f"{torch.cuda.get_device_name(device)} GPU (CUDA {torch.version.cuda})"


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s weights live (the CPU for a model without any)."""
    return next(iter(model.state_dict().values()), torch.empty(0)).device


def train(model: torch.nn.Module, losses: Losses, cfg: LoopConfig, *, rng: Any = None,
          evaluate: Callable[[], dict[str, float]] | None = None, lr_at: Callable[[int], float] | None = None,
          run_dir: str | Path | None = None, resume: bool = False, checkpoint_meta: dict[str, Any] | None = None,
          out: str | Path | None = None, card: Callable[[LoopState], dict[str, Any]] | None = None) -> LoopState:
    """Train ``model`` on ``losses`` until ``cfg.steps``, the time limit or early stopping.

    Args:
        model: the model; left in eval mode at the end.
        losses: ``losses(step, rng)`` yields the step's losses, each followed by an optimiser step.
        cfg: how to run.
        rng: passed to ``losses``; checkpointed with the run (a ``torch.Generator`` or a numpy ``RandomState``
            then, stored as tensors).
        evaluate: metrics of the current model, run in eval mode without gradients.
        lr_at: the learning rate of each step (default: ``cfg.lr`` throughout).
        run_dir: the run folder for checkpoints, ``log.jsonl`` and snapshots (``None``: none of them).
        resume: continue from the run folder's checkpoint if there is one (model, optimiser, RNGs, step, wall
            time, running loss and the logged history; not the early-stopping state).
        checkpoint_meta: extra fields for ``checkpoint.json`` (the task's settings).
        out, card: write the model to ``out`` with ``card(state)`` plus the common card fields
            (``write_model``): at every checkpoint and at the end, after the best weights are restored.
    """
    run = _Run(model, cfg, rng, evaluate, Path(run_dir) if run_dir is not None else None, checkpoint_meta or {},
               out, card)
    if resume and run.run_dir is not None and (run.run_dir / CHECKPOINT).exists():
        meta = _load_checkpoint(run.run_dir, model, run.opt, rng)
        s = run.state
        s.step, s.wall_seconds, s.train_loss = int(meta["step"]), float(meta["wall_seconds"]), meta.get("train_loss")
        s.history = _truncate_log(run.run_dir / LOG, s.step)
    return run.until_done(losses, lr_at)


class _Run:
    """One call of ``train``: the optimiser, the state, the clock, the best weights and the outputs."""

    def __init__(self, model: torch.nn.Module, cfg: LoopConfig, rng: Any,
                 evaluate: Callable[[], dict[str, float]] | None, run_dir: Path | None, checkpoint_meta: dict[str, Any],
                 out: str | Path | None, card: Callable[[LoopState], dict[str, Any]] | None) -> None:
        self.model, self.cfg, self.rng, self._evaluate = model, cfg, rng, evaluate
        self.run_dir, self.checkpoint_meta, self.out, self.card = run_dir, checkpoint_meta, out, card
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
        self.opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.state = LoopState()
        self.best_weights: dict[str, Tensor] | None = None
        self.since_best = 0

    def until_done(self, losses: Losses, lr_at: Callable[[int], float] | None) -> LoopState:
        cfg, s = self.cfg, self.state
        self.t0, self.wall_before = time.time(), s.wall_seconds
        deadline = self.t0 + cfg.max_minutes * 60 if cfg.max_minutes is not None else None
        self.model.train()
        bar = tqdm(total=cfg.steps, initial=s.step, desc=cfg.desc, disable=not cfg.progress, dynamic_ncols=True)
        if cfg.eval_at_start and self.evaluate():
            s.stop_reason = "early stopping"
        while s.step < cfg.steps and s.stop_reason == "running":
            if lr_at is not None:
                for group in self.opt.param_groups:
                    group["lr"] = lr_at(s.step)
            self.step(losses(s.step, self.rng))
            bar.update(1)
            if s.step >= cfg.steps:
                s.stop_reason = "max steps"
            elif deadline is not None and time.time() >= deadline:
                s.stop_reason = "time limit (max_minutes)"
            final = s.stop_reason != "running"
            if (cfg.eval_every and s.step % cfg.eval_every == 0 or final) and self.evaluate():
                s.stop_reason, final = "early stopping", True
            bar.set_postfix(self.postfix())
            if self.run_dir is not None and (cfg.checkpoint_every and s.step % cfg.checkpoint_every == 0 or final):
                _save_checkpoint(self.run_dir, self.model, self.opt, self.rng, s, self.checkpoint_meta)
                self.save()
            if self.run_dir is not None and cfg.snapshot_every and s.step % cfg.snapshot_every == 0:
                self.snapshot()
        bar.close()
        if s.stop_reason == "running":  # no step was left to take
            s.stop_reason = "max steps"
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
        self.model.eval()
        if self.best_weights is not None or self.run_dir is None:  # otherwise the last checkpoint wrote it
            self.save()
        return s

    def step(self, losses: Iterable[Tensor]) -> None:
        detached = []
        pending = iter(losses)
        while True:
            # Only the forward pass runs under autocast; the backward pass follows the forward's dtypes.
            with torch.autocast(model_device(self.model).type, dtype=torch.bfloat16,
                                enabled=self.cfg.precision == "bf16"):
                loss = next(pending, None)
            if loss is None:
                break
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP_NORM)
            self.opt.step()
            detached.append(loss.detach())
        values = torch.stack(detached).tolist() if detached else []  # one wait for a GPU per step, not per loss
        s, value, w = self.state, sum(values) / max(len(values), 1), self.cfg.loss_weight
        s.step += 1
        s.train_loss = value if s.train_loss is None else (1 - w) * s.train_loss + w * value
        s.wall_seconds = self.wall_before + time.time() - self.t0

    def evaluate(self) -> bool:
        """Evaluate, record, and track the best ``monitor`` (and its weights, for early stopping); returns
        whether early stopping says stop."""
        if self._evaluate is None:
            return False
        s, cfg = self.state, self.cfg
        self.model.eval()
        with torch.no_grad():
            s.metrics = dict(self._evaluate())
        self.model.train()
        s.wall_seconds = self.wall_before + time.time() - self.t0
        record = {"step": s.step, "wall_seconds": round(s.wall_seconds, 1), "train_loss": s.train_loss,
                  **({cfg.metrics_key: s.metrics} if cfg.metrics_key else s.metrics)}
        s.history.append(record)
        if self.run_dir is not None:
            with (self.run_dir / LOG).open("a") as fh:
                fh.write(json.dumps(record) + "\n")
        if cfg.patience is not None and cfg.monitor not in s.metrics:
            raise KeyError(f"early stopping watches {cfg.monitor!r}, which the evaluation does not report")
        if cfg.monitor not in s.metrics:
            return False
        value = s.metrics[cfg.monitor]
        if s.best_step is None or value < s.best - cfg.min_improvement:
            s.best, s.best_step, self.since_best = value, s.step, 0
            if cfg.patience is not None:
                self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.since_best += 1
        return cfg.patience is not None and self.since_best >= cfg.patience

    def postfix(self) -> dict[str, str]:
        s, monitor = self.state, self.cfg.monitor
        out = {"loss": f"{s.train_loss:.3f}" if s.train_loss is not None else "-"}
        if monitor is not None and monitor in s.metrics:
            out[monitor] = f"{s.metrics[monitor]:.4g}"
            if self.cfg.patience is not None:
                out["best"] = f"{s.best:.4g}@{s.best_step}"
        return out

    def save(self) -> None:
        if self.out is not None and self.card is not None:
            write_model(self.model, self.out, self.card(self.state), self.state, self.cfg.threads)

    def snapshot(self) -> None:
        s = self.state
        card = {"steps": s.step, "wall_seconds": round(s.wall_seconds, 1), self.cfg.metrics_key or "metrics": s.metrics}
        save_model(on_cpu(self.model), self.run_dir / "snapshots" / f"step{s.step:06d}.safetensors", card)


def on_cpu(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` itself where it lives on the CPU, else a CPU copy of it (for files, which hold CPU tensors)."""
    if model_device(model).type == "cpu":
        return model
    return copy.deepcopy(model).cpu()


def write_model(model: torch.nn.Module, path: str | Path, card: dict[str, Any], state: LoopState, threads: int
                ) -> Path:
    """Save ``model`` (as a CPU model) with ``card`` plus the fields every card shares: steps, stop reason, wall
    time, where it was trained (``provenance``; a GPU's name where it trained on one) and the parameter count."""
    where = provenance(threads)
    device = model_device(model)
    if device.type == "cuda":
        where["hardware"] = f"{describe_device(device)}, {threads} torch CPU thread(s)"
    full = {**card, "steps": state.step, "stop_reason": state.stop_reason,
            "wall_seconds": round(state.wall_seconds, 1), **where,
            "n_parameters": sum(p.numel() for p in model.parameters())}
    return save_model(on_cpu(model), Path(path), full)


def _rng_tensors(rng: Any) -> dict[str, Tensor]:
    """A task rng's state as tensors (never a pickle): a ``torch.Generator``'s bytes, or a numpy ``RandomState``'s
    Mersenne Twister keys, position and cached Gaussian."""
    if isinstance(rng, torch.Generator):
        return {"rng": rng.get_state()}
    if isinstance(rng, np.random.RandomState):
        kind, keys, pos, has_gauss, cached = rng.get_state(legacy=True)
        if kind != "MT19937":
            raise TypeError(f"cannot checkpoint a RandomState of kind {kind}")
        return {"rng.mt19937": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                "rng.pos_has_gauss": torch.tensor([pos, has_gauss], dtype=torch.int64),
                "rng.cached_gaussian": torch.tensor([cached], dtype=torch.float64)}
    raise TypeError("checkpoints need a torch.Generator or a numpy RandomState as the rng, got "
                    f"{type(rng).__name__}")


def _set_rng(rng: Any, tensors: dict[str, Tensor]) -> None:
    if isinstance(rng, torch.Generator):
        rng.set_state(tensors["rng"])
    else:
        pos, has_gauss = tensors["rng.pos_has_gauss"].tolist()
        rng.set_state(("MT19937", tensors["rng.mt19937"].numpy().astype(np.uint32), pos, has_gauss,
                       float(tensors["rng.cached_gaussian"][0])))


def _save_checkpoint(run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, rng: Any,
                     state: LoopState, meta: dict[str, Any]) -> None:
    tensors = _rng_tensors(rng)
    tensors["torch_rng"] = torch.get_rng_state()  # what the task draws from torch's global generator
    device = model_device(model)
    if device.type == "cuda":
        tensors["cuda_rng"] = torch.cuda.get_rng_state(device)
    tensors.update({f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    for i, p in enumerate(model.parameters()):
        opt_state = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in opt_state:
                tensors[f"opt.{i}.{key}"] = opt_state[key].cpu().contiguous()
        if "step" in opt_state:
            tensors[f"opt.{i}.step"] = torch.as_tensor(opt_state["step"], dtype=torch.float32).cpu().reshape(1)
    tmp = run_dir / (CHECKPOINT + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(run_dir / CHECKPOINT)
    meta = {"step": state.step, "wall_seconds": state.wall_seconds, "train_loss": state.train_loss, **meta}
    (run_dir / CHECKPOINT_META).write_text(json.dumps(meta, indent=2))


def _load_checkpoint(run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, rng: Any
                     ) -> dict[str, Any]:
    """Restore model, optimiser (on the model's device) and RNGs; returns ``checkpoint.json``."""
    tensors = load_file(str(run_dir / CHECKPOINT))
    meta = json.loads((run_dir / CHECKPOINT_META).read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    for i, p in enumerate(model.parameters()):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[p] = {"exp_avg": tensors[f"opt.{i}.exp_avg"].to(p.device),
                            "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"].to(p.device),
                            "step": torch.tensor(float(tensors[f"opt.{i}.step"][0]))}
    _set_rng(rng, tensors)
    if "torch_rng" in tensors:
        torch.set_rng_state(tensors["torch_rng"])
    device = model_device(model)
    if "cuda_rng" in tensors and device.type == "cuda":
        torch.cuda.set_rng_state(tensors["cuda_rng"], device)
    return meta


def _truncate_log(path: Path, step: int) -> list[dict[str, Any]]:
    """The log's records up to ``step`` (the checkpoint's), rewriting the file without those past it."""
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in records if r.get("step", 0) <= step]
    if len(kept) < len(records):
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    return kept
