"""A learned acquisition function trained by reinforcement learning (NAP: Maraval et al., 2023).

This module supplies the episodes and the PPO loss; ``metabo.train.loop`` runs them (one loop step is one PPO
iteration: a batch of episodes, then ``ppo_epochs`` passes over its steps, each followed by an optimiser step).

The model gets an acquisition head that scores each candidate from its final representation and the fraction
of the budget used (t/T). It is trained by PPO on episodes of meta-training tasks: a YAHPO scenario's *train*
instances, each episode a random pool of evaluated configurations. At step t the policy is a softmax of the
head's scores over the pool's unevaluated points; the chosen point's value is revealed and joins the context,
and the reward is -log10 of the normalised simple regret (against the pool's best). Related studies (the other
train instances) sit in the context under their task slots, laid out by ``metabo.context`` as
``TNPSampler(related=...)`` lays them out. Values go through ``NAPConfig.transform`` (its past-value steps). The
auxiliary loss is the bar distribution's NLL on unevaluated pool points (``aux_coef``; 0 is the ablation
trained by the reward alone), which keeps the surrogate calibrated while the whole network learns.

Advantages are the returns standardised across the batch's episodes at each step (a batch-mean baseline), so
no value network is needed.

Training runs on ``NAPConfig.device`` (a GPU where there is one, by default): the episodes are drawn with numpy
on the CPU, and each iteration moves its tensors to the device once (the pool, each step's context, the actions,
advantages and auxiliary targets), so the CPU waits for the GPU only for the sampled actions the next context
needs, for the loop's one read of an iteration's losses, and in ``TNPModel``'s check of the task slots.
On the CPU a run repeats bit for bit for a seed, also across a resume from its run folder (the checkpoint holds
the numpy RandomState as tensors); the model written is always a CPU model.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from metabo.context import collate, join, related_points
from metabo.meta import yahpo, yahpo_studies
from metabo.meta.align import AlignedStudy, align_corpus
from metabo.model.io import load_model, read_card, with_task_slots
from metabo.model.transformer import TNPModel
from metabo.normalise import DEFAULT_TRANSFORM, ObjectiveTransform, ValueTransformConfig
from metabo.space import SearchSpaceEncoder
from metabo.train.loop import CHECKPOINT, CHECKPOINT_META, LoopConfig, LoopState, resolve_device, setup_torch, train
from metabo.train.pretrain import TARGET_CLAMP

REGRET_FLOOR = 1e-3  # reward is capped at 3 (regret 1e-3 of the pool's range)


@dataclass
class NAPConfig:
    """PPO settings (stored in the model card)."""

    iterations: int = 400  # PPO iterations (each: one batch of episodes, then ppo_epochs passes over it)
    episodes: int = 16  # episodes per iteration
    horizon: int = 20  # steps per episode
    pool_size: int = 128  # pre-evaluated configurations an episode chooses among
    ppo_epochs: int = 2
    clip: float = 0.2  # PPO's ratio clip
    lr: float = 5e-5  # AdamW learning rate (constant)
    entropy_coef: float = 0.01
    aux_coef: float = 1.0  # weight of the bar distribution's NLL (the auxiliary loss); 0: reward only
    aux_queries: int = 32  # unevaluated pool points in the auxiliary loss, per episode and step
    max_related: int = 64  # related points in an episode's context
    related_studies: int = 4  # other train instances in an episode's context
    configs_per_instance: int = 1500  # random configurations evaluated per train instance
    max_minutes: float = 20.0  # time limit
    seed: int = 0
    threads: int = 1  # torch threads
    transform: ValueTransformConfig = DEFAULT_TRANSFORM  # its for_past_values() normalises every value
    device: str = "auto"  # "auto" (CUDA where available, else the CPU), "cpu" or "cuda"

    def validate(self) -> None:
        """A ``ValueError`` where the pool cannot hold an episode's steps and the auxiliary loss's points."""
        aux = self.aux_queries - 1 if self.aux_coef > 0 and self.horizon > 2 else 0
        if self.pool_size < self.horizon + aux:
            raise ValueError(f"pool_size {self.pool_size} is too small for horizon {self.horizon}"
                             + (f" and aux_queries {self.aux_queries}" if aux else "")
                             + f": it needs at least {self.horizon + aux}")
        if self.configs_per_instance < self.pool_size:
            raise ValueError(f"pool_size {self.pool_size} exceeds configs_per_instance {self.configs_per_instance}")


# What a resume may change: how long and where it runs. Everything else must match the checkpoint's run.
_RESUMABLE_CHANGES = ("iterations", "max_minutes", "threads", "device")


@dataclass
class _Tasks:
    """Pre-evaluated configurations per train instance, and the corpus for related context."""

    x: list[np.ndarray]  # per instance (n, d) encoded
    y: list[np.ndarray]  # per instance (n,) raw values, minimised
    corpus: list[AlignedStudy]  # aligned related studies, one per instance (same order)


def _load_tasks(scenario: str, cfg: NAPConfig) -> tuple[_Tasks, dict[str, Any]]:
    yahpo.check_scenario(scenario)
    instances = yahpo.instances(scenario, ("train",))
    if not instances:
        raise ValueError(f"YAHPO scenario {scenario!r} has no train instances to train on")
    space = yahpo.YahpoSurrogate(scenario, instances[0]).search_space()
    encoder = SearchSpaceEncoder(space)
    xs, ys = [], []
    for inst in instances:
        problem = yahpo.YahpoSurrogate(scenario, inst)
        rng = np.random.default_rng([cfg.seed, 7, zlib.crc32(f"{scenario}/{inst}".encode())])
        u = rng.random((cfg.configs_per_instance, encoder.n_dims))
        configs = [encoder.decode(r) for r in u]
        xs.append(encoder.encode_many(configs))
        ys.append(np.asarray(problem.evaluate_many(configs), dtype=np.float64))
    corpus, _ = align_corpus(yahpo_studies(scenario, 100), space, transform=cfg.transform)
    return _Tasks(xs, ys, corpus), space


class _Episodes:
    """A batch of episodes: pools, related contexts, and the states reached by the actions taken."""

    def __init__(self, tasks: _Tasks, cfg: NAPConfig, rng: np.random.RandomState,
                 device: torch.device = torch.device("cpu")) -> None:
        e, n = cfg.episodes, cfg.pool_size
        self.cfg, self.device = cfg, device
        self.inst = rng.randint(len(tasks.x), size=e)
        rows = [rng.choice(len(tasks.x[i]), size=n, replace=False) for i in self.inst]
        self.x = np.stack([tasks.x[i][r] for i, r in zip(self.inst, rows)])  # (E, N, d)
        self.y = np.stack([tasks.y[i][r] for i, r in zip(self.inst, rows)])  # (E, N) minimised
        self.lo, self.hi = self.y.min(1), self.y.max(1)
        self.related = []
        for i in self.inst:
            others = [s for j, s in enumerate(tasks.corpus) if j != i]
            pick = rng.choice(len(others), size=min(cfg.related_studies, len(others)), replace=False)
            self.related.append(related_points([others[j] for j in pick], cfg.max_related, rng))
        self.budget = int(rng.randint(cfg.horizon, 3 * cfg.horizon + 1))  # nominal T, so t/T covers [0, 1/3..1]
        self.actions = np.zeros((e, cfg.horizon), dtype=np.int64)
        self.pool = torch.as_tensor(self.x, dtype=torch.float32).to(device)  # (E, N, d) candidates
        # t/T per step, each rounded to float32 as acquisition_scores rounds a Python float
        self.fractions = torch.tensor([t / self.budget for t in range(cfg.horizon)], dtype=torch.float32).to(device)
        self._states: dict[int, tuple[tuple[torch.Tensor, ...], np.ndarray]] = {}

    def state(self, t: int) -> tuple[torch.Tensor, ...]:
        """Context tensors (``metabo.context``: related points, then the first t chosen points), their mask and
        the evaluated-mask at step t."""
        chosen = self.actions[:, :t]
        contexts = []
        for k, related in enumerate(self.related):
            own = self.y[k, chosen[k]]
            contexts.append(join(related, self.x[k, chosen[k]], _own_transform(own, self.cfg).transform(own)))
        x, y, slot, mask = collate(contexts, width=self.x.shape[2])
        taken = np.zeros(self.y.shape, dtype=bool)
        np.put_along_axis(taken, chosen, True, axis=1)
        return x, y, slot, mask, torch.as_tensor(taken)

    def device_state(self, t: int) -> tuple[tuple[torch.Tensor, ...], np.ndarray]:
        """``state(t)`` on the device, built once (so call it only once the first t actions are fixed), and the
        evaluated-mask as numpy."""
        if t not in self._states:
            *tensors, taken = self.state(t)
            self._states[t] = (tuple(v.to(self.device) for v in (*tensors, taken)), taken.numpy())
        return self._states[t]

    def regret(self, t: int) -> np.ndarray:
        """Normalised simple regret after the first t actions (t >= 1)."""
        best = np.take_along_axis(self.y, self.actions[:, :t], axis=1).min(1)
        return (best - self.lo) / np.maximum(self.hi - self.lo, 1e-12)


def _own_transform(values: np.ndarray, cfg: NAPConfig) -> ObjectiveTransform:
    """The transform fitted on an episode's own (minimised) values: larger is better, one value maps to 0; the
    past-value steps of ``cfg.transform``, which the shipped NAP models were trained with."""
    return ObjectiveTransform(False, cfg.transform.for_past_values()).fit(values)


def _policy(model: TNPModel, episodes: _Episodes, t: int) -> tuple[torch.distributions.Categorical, torch.Tensor]:
    """The policy at step t over the pool (the taken points masked out), and the candidates' features."""
    (x, y, slot, mask, taken), _ = episodes.device_state(t)
    cache = model.encode_context(x, y, ctx_mask=mask, ctx_task=slot)
    features = model.candidate_features(cache, episodes.pool)
    scores = model.acquisition_scores(features, episodes.fractions[t])
    scores = scores.masked_fill(taken, float("-inf"))
    # no argument validation: it only checks, and each check would wait for a GPU
    return torch.distributions.Categorical(logits=scores, validate_args=False), features


def _aux_draws(episodes: _Episodes, t: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """The auxiliary loss's unevaluated pool points at step t (indices) and their values, normalised by the own
    points' transform and clamped as in pretraining."""
    e, q = len(episodes.inst), episodes.cfg.aux_queries
    _, taken = episodes.device_state(t)
    targets = np.zeros((e, q))
    idx = np.zeros((e, q), dtype=np.int64)
    for k in range(e):
        idx[k] = rng.choice(np.flatnonzero(~taken[k]), size=q, replace=False)
        transform = _own_transform(episodes.y[k, episodes.actions[k, :t]], episodes.cfg)
        targets[k] = np.clip(transform.transform(episodes.y[k, idx[k]]), -TARGET_CLAMP, TARGET_CLAMP)
    return idx, targets


def _aux_nll(model: TNPModel, features: torch.Tensor, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Bar-distribution NLL of the pool points ``idx`` (E, Q) at their ``targets`` (E, Q)."""
    chosen = torch.gather(features, 1, idx[..., None].expand(-1, -1, features.shape[-1]))
    return model.bar.nll(model.head(chosen), targets).mean()


class _PPO:
    """The NAP training task: each step rolls out a batch of episodes, then yields one PPO loss per episode step
    and epoch (the loop takes an optimiser step after each)."""

    def __init__(self, model: TNPModel, tasks: _Tasks, cfg: NAPConfig, device: torch.device) -> None:
        self.model, self.tasks, self.cfg, self.device = model, tasks, cfg, device
        self.last: dict[str, float] = {}

    def losses(self, step: int, rng: np.random.RandomState) -> Iterator[torch.Tensor]:
        cfg, model, device = self.cfg, self.model, self.device
        episodes = _Episodes(self.tasks, cfg, rng, device)
        old_logp = torch.zeros(cfg.episodes, cfg.horizon, device=device)
        rewards = np.zeros((cfg.episodes, cfg.horizon))
        model.eval()
        with torch.no_grad():
            for t in range(cfg.horizon):
                dist, _ = _policy(model, episodes, t)
                action = dist.sample()
                episodes.actions[:, t] = action.cpu().numpy()
                old_logp[:, t] = dist.log_prob(action)
                rewards[:, t] = -np.log10(np.maximum(episodes.regret(t + 1), REGRET_FLOOR))
        returns = np.cumsum(rewards[:, ::-1], axis=1)[:, ::-1]
        self.last = {"mean_return": float(returns[:, 0].mean()),
                     "final_regret": float(episodes.regret(cfg.horizon).mean())}
        adv = (returns - returns.mean(0)) / (returns.std(0) + 1e-8)
        adv_t = torch.as_tensor(adv, dtype=torch.float32).to(device)
        actions = torch.as_tensor(episodes.actions).to(device)
        # the PPO passes' draws, in the order the passes take them: each epoch's step order, then at each step
        # (t >= 2) the auxiliary loss's pool points; moved to the device at once
        plan: list[tuple[int, int | None]] = []
        draws: list[tuple[np.ndarray, np.ndarray]] = []
        for _ in range(cfg.ppo_epochs):
            for t in map(int, rng.permutation(cfg.horizon)):
                if cfg.aux_coef > 0 and t >= 2:
                    draws.append(_aux_draws(episodes, t, rng))
                plan.append((t, len(draws) - 1 if cfg.aux_coef > 0 and t >= 2 else None))
        if draws:
            aux_idx = torch.as_tensor(np.stack([d[0] for d in draws])).to(device)
            aux_y = torch.as_tensor(np.stack([d[1] for d in draws]), dtype=torch.float32).to(device)
        model.train()
        for t, k in plan:
            dist, features = _policy(model, episodes, t)
            logp = dist.log_prob(actions[:, t])
            ratio = torch.exp(logp - old_logp[:, t])
            a = adv_t[:, t]
            loss = -torch.min(ratio * a, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a).mean()
            loss = loss - cfg.entropy_coef * dist.entropy().mean()
            if k is not None:
                loss = loss + cfg.aux_coef * _aux_nll(model, features, aux_idx[k], aux_y[k])
            yield loss

    def evaluate(self) -> dict[str, float]:
        """The mean return and final regret of the step's episodes."""
        return self.last


def train_nap(scenario: str, out: str | Path, base: str | Path, cfg: NAPConfig | None = None,
              progress: bool = True, command: str | None = None, run_dir: str | Path | None = None,
              resume: bool = False, checkpoint_every: int = 10) -> Path:
    """Train an acquisition head (and, with ``aux_coef > 0``, the surrogate) by PPO; write ``out`` + card.

    With ``run_dir``, checkpoints (every ``checkpoint_every`` iterations and at the end) and ``log.jsonl`` go
    there, and ``resume`` continues from its checkpoint (bit for bit on the same CPU); a run folder that holds a
    checkpoint is only continued, never started over.
    """
    cfg = cfg or NAPConfig()
    cfg.validate()
    device = resolve_device(cfg.device)  # first: a missing GPU fails before the tasks load
    out = Path(out)
    if run_dir is not None:
        check_run_dir(run_dir, resume, scenario, cfg)
    setup_torch(cfg.seed, cfg.threads)
    rng = np.random.RandomState(cfg.seed)
    tasks, space = _load_tasks(scenario, cfg)
    base_model = load_model(base)
    model = with_task_slots(base_model, max(8, base_model.cfg.task_slots),
                            max_dims=max(SearchSpaceEncoder(space).n_dims, base_model.cfg.max_dims),
                            acquisition_head=True).to(device)
    ppo = _PPO(model, tasks, cfg, device)

    def card(state: LoopState) -> dict[str, Any]:
        return {
            "name": out.stem,
            "command": command,
            "kind": "nap",
            "scenario": scenario,
            "base_model": {"path": str(base), "name": read_card(base).get("name")},
            "training_instances": "YAHPO train split only",
            "nap_config": asdict(cfg),
            "iterations": state.step,
            "training_log": state.history,
        }

    loop = LoopConfig(steps=cfg.iterations, lr=cfg.lr, weight_decay=1e-4, max_minutes=cfg.max_minutes,
                      eval_every=1, monitor="final_regret", loss_weight=0.05, checkpoint_every=checkpoint_every,
                      threads=cfg.threads, desc="nap (ppo)", progress=progress)
    train(model, ppo.losses, loop, rng=rng, evaluate=ppo.evaluate, run_dir=run_dir, resume=resume,
          checkpoint_meta={"scenario": scenario, "base": str(base), "nap_config": asdict(cfg)}, out=out, card=card)
    return out


def check_run_dir(run_dir: str | Path, resume: bool, scenario: str, cfg: NAPConfig) -> None:
    """A ``ValueError`` unless ``train_nap`` may use ``run_dir``: a folder that holds a checkpoint is continued
    only with ``resume``, and only for the same scenario and settings (but ``_RESUMABLE_CHANGES``)."""
    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT).exists():
        return
    if not resume:
        raise ValueError(f"{run_dir} holds a checkpoint: resume it (--resume) or give another run folder")
    saved = json.loads((run_dir / CHECKPOINT_META).read_text())
    changed = ["scenario"] if saved.get("scenario") != scenario else []
    old, new = saved.get("nap_config", {}), json.loads(json.dumps(asdict(cfg)))
    changed += [f"nap_config.{k}" for k in new if k not in _RESUMABLE_CHANGES and old.get(k) != new[k]]
    if changed:
        raise ValueError(f"cannot resume {run_dir}: its checkpoint's run differs in {', '.join(changed)}")
