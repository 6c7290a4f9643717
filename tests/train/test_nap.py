"""NAP training: episode contexts follow ``metabo.context`` (related studies under slots 1..k, then the chosen
points under slot 0), and a tiny PPO run writes a model with its training log."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import make_tiny_model
from metabo.context import collate, join, related_points
from metabo.meta import align_corpus
from metabo.model.io import load_model, save_model
from metabo.normalise import ObjectiveTransform
from metabo.train.nap import NAPConfig, _Episodes, _Tasks
from studies import SPACE, past_studies


def test_episode_states_are_the_serving_layout():
    corpus, _ = align_corpus(past_studies(4), SPACE)
    gen = np.random.default_rng(0)
    tasks = _Tasks([gen.random((30, 2)) for _ in corpus], [gen.random(30) for _ in corpus], corpus)
    cfg = NAPConfig(episodes=3, horizon=4, pool_size=10, max_related=12, related_studies=2)
    episodes = _Episodes(tasks, cfg, np.random.RandomState(3))
    episodes.actions[:] = np.arange(4)[None] + np.arange(3)[:, None]

    rng = np.random.RandomState(3)  # the episodes' draws: instances, pools, then each one's related studies
    inst = rng.randint(len(corpus), size=3)
    for i in inst:
        rng.choice(30, size=10, replace=False)
    t = 3
    x, y, slot, mask, taken = episodes.state(t)
    contexts = []
    for k, i in enumerate(inst):
        others = [s for j, s in enumerate(corpus) if j != i]
        pick = rng.choice(len(others), size=2, replace=False)
        related = related_points([others[j] for j in pick], 12, rng)  # serving's default slots 1, 2
        own = episodes.y[k, episodes.actions[k, :t]]
        y_own = ObjectiveTransform(False, cfg.transform.for_past_values()).fit(own).transform(own)
        contexts.append(join(related, episodes.x[k, episodes.actions[k, :t]], y_own))
    for got, want in zip((x, y, slot, mask), collate(contexts)):
        assert torch.equal(got, want)
    assert (slot[:, -t:] == 0).all() and set(slot[:, :-t].unique().tolist()) == {1, 2}
    assert taken.sum(1).tolist() == [t] * 3


def _yahpo_ready() -> str | None:
    from metabo.meta import yahpo

    return yahpo.unavailable_reason("lcbench")


@pytest.mark.skipif(_yahpo_ready() is not None, reason=str(_yahpo_ready()))
def test_a_tiny_ppo_run_writes_a_model_and_its_log(tmp_path):
    from metabo.train.nap import train_nap

    base = save_model(make_tiny_model(0), tmp_path / "base.safetensors", {"name": "tiny"})
    cfg = NAPConfig(iterations=2, episodes=2, horizon=3, pool_size=12, configs_per_instance=20, aux_queries=2,
                    max_related=8, related_studies=2)
    path = train_nap("lcbench", tmp_path / "nap.safetensors", base, cfg, progress=False, command="test")
    card = json.loads(path.with_suffix(".json").read_text())
    assert load_model(path).acq_head is not None
    assert card["iterations"] == card["steps"] == 2 and card["stop_reason"] == "max steps"
    assert [r["step"] for r in card["training_log"]] == [1, 2]
    assert all({"mean_return", "final_regret", "train_loss"} <= r.keys() for r in card["training_log"])
