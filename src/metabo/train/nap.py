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
"""

from __future__ import annotations

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
from metabo.train.loop import LoopConfig, LoopState, setup_torch, train
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


@dataclass
class _Tasks:
    """Pre-evaluated configurations per train instance, and the corpus for related context."""

    x: list[np.ndarray]  # per instance (n, d) encoded
    y: list[np.ndarray]  # per instance (n,) raw values, minimised
    corpus: list[AlignedStudy]  # aligned related studies, one per instance (same order)


def _load_tasks(scenario: str, cfg: NAPConfig) -> tuple[_Tasks, dict[str, Any]]:
    instances = yahpo.instances(scenario, ("train",))
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

    def __init__(self, tasks: _Tasks, cfg: NAPConfig, rng: np.random.RandomState) -> None:
        e, n = cfg.episodes, cfg.pool_size
        self.cfg = cfg
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

    def regret(self, t: int) -> np.ndarray:
        """Normalised simple regret after the first t actions (t >= 1)."""
        best = np.take_along_axis(self.y, self.actions[:, :t], axis=1).min(1)
        return (best - self.lo) / np.maximum(self.hi - self.lo, 1e-12)


def _own_transform(values: np.ndarray, cfg: NAPConfig) -> ObjectiveTransform:
    """The transform fitted on an episode's own (minimised) values: larger is better, one value maps to 0; the
    past-value steps of ``cfg.transform``, which the shipped NAP models were trained with."""
    return ObjectiveTransform(False, cfg.transform.for_past_values()).fit(values)


def _policy(model: TNPModel, episodes: _Episodes, t: int) -> tuple[torch.distributions.Categorical, Any]:
    x, y, slot, mask, taken = episodes.state(t)
    cache = model.encode_context(x, y, ctx_mask=mask, ctx_task=slot)
    features = model.candidate_features(cache, torch.as_tensor(episodes.x, dtype=torch.float32))
    scores = model.acquisition_scores(features, t / episodes.budget)
    scores = scores.masked_fill(taken, float("-inf"))
    return torch.distributions.Categorical(logits=scores), (features, taken)


def _aux_nll(model: TNPModel, episodes: _Episodes, t: int, features: torch.Tensor, taken: torch.Tensor,
             rng: np.random.RandomState) -> torch.Tensor | None:
    """Bar-distribution NLL of unevaluated pool points, normalised by the own points' transform (t >= 2)."""
    if t < 2:
        return None
    e = len(episodes.inst)
    targets = np.zeros((e, episodes.cfg.aux_queries))
    idx = np.zeros((e, episodes.cfg.aux_queries), dtype=np.int64)
    for k in range(e):
        free = np.flatnonzero(~taken[k].numpy())
        idx[k] = rng.choice(free, size=episodes.cfg.aux_queries, replace=False)
        transform = _own_transform(episodes.y[k, episodes.actions[k, :t]], episodes.cfg)
        targets[k] = np.clip(transform.transform(episodes.y[k, idx[k]]), -TARGET_CLAMP, TARGET_CLAMP)
    chosen = torch.gather(features, 1, torch.as_tensor(idx)[..., None].expand(-1, -1, features.shape[-1]))
    logits = model.head(chosen)
    return model.bar.nll(logits, torch.as_tensor(targets, dtype=torch.float32)).mean()


class _PPO:
    """The NAP training task: each step rolls out a batch of episodes, then yields one PPO loss per episode step
    and epoch (the loop takes an optimiser step after each)."""

    def __init__(self, model: TNPModel, tasks: _Tasks, cfg: NAPConfig) -> None:
        self.model, self.tasks, self.cfg = model, tasks, cfg
        self.last: dict[str, float] = {}

    def losses(self, step: int, rng: np.random.RandomState) -> Iterator[torch.Tensor]:
        cfg, model = self.cfg, self.model
        episodes = _Episodes(self.tasks, cfg, rng)
        old_logp = torch.zeros(cfg.episodes, cfg.horizon)
        rewards = np.zeros((cfg.episodes, cfg.horizon))
        model.eval()
        with torch.no_grad():
            for t in range(cfg.horizon):
                dist, _ = _policy(model, episodes, t)
                action = dist.sample()
                episodes.actions[:, t] = action.numpy()
                old_logp[:, t] = dist.log_prob(action)
                rewards[:, t] = -np.log10(np.maximum(episodes.regret(t + 1), REGRET_FLOOR))
        returns = np.cumsum(rewards[:, ::-1], axis=1)[:, ::-1]
        self.last = {"mean_return": float(returns[:, 0].mean()),
                     "final_regret": float(episodes.regret(cfg.horizon).mean())}
        adv = (returns - returns.mean(0)) / (returns.std(0) + 1e-8)
        adv_t = torch.as_tensor(adv, dtype=torch.float32)
        actions = torch.as_tensor(episodes.actions)
        model.train()
        for _ in range(cfg.ppo_epochs):
            for t in rng.permutation(cfg.horizon):
                dist, (features, taken) = _policy(model, episodes, int(t))
                logp = dist.log_prob(actions[:, t])
                ratio = torch.exp(logp - old_logp[:, t])
                a = adv_t[:, t]
                loss = -torch.min(ratio * a, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a).mean()
                loss = loss - cfg.entropy_coef * dist.entropy().mean()
                aux = _aux_nll(model, episodes, int(t), features, taken, rng) if cfg.aux_coef > 0 else None
                if aux is not None:
                    loss = loss + cfg.aux_coef * aux
                yield loss

    def evaluate(self) -> dict[str, float]:
        """The mean return and final regret of the step's episodes."""
        return self.last


def train_nap(scenario: str, out: str | Path, base: str | Path, cfg: NAPConfig | None = None,
              progress: bool = True, command: str | None = None) -> Path:
    """Train an acquisition head (and, with ``aux_coef > 0``, the surrogate) by PPO; write ``out`` + card."""
    cfg = cfg or NAPConfig()
    out = Path(out)
    setup_torch(cfg.seed, cfg.threads)
    rng = np.random.RandomState(cfg.seed)
    tasks, space = _load_tasks(scenario, cfg)
    base_model = load_model(base)
    model = with_task_slots(base_model, max(8, base_model.cfg.task_slots),
                            max_dims=max(SearchSpaceEncoder(space).n_dims, base_model.cfg.max_dims),
                            acquisition_head=True)
    ppo = _PPO(model, tasks, cfg)

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
                      eval_every=1, monitor="final_regret", loss_weight=0.05, threads=cfg.threads,
                      desc="nap (ppo)", progress=progress)
    train(model, ppo.losses, loop, rng=rng, evaluate=ppo.evaluate, out=out, card=card)
    return out
