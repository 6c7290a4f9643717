"""Transfer end to end, on the training side: training batches need enough task slots, fine-tuning refuses bad
input, and a fine-tuned model file serves related studies in TNPSampler.

(What a fine-tuning or NAP run writes, and early stopping, are tested in tests/train/; the batch layout in
test_pretrain.py; related studies at serving in test_related.py and sampler/test_with_related.py.)"""

from __future__ import annotations

import optuna
import pytest
import torch

import metabo
from conftest import BOWL_SPACE, bowl
from metabo.acquisition import CandidateSearchConfig
from metabo.model.io import load_model, save_model
from metabo.priors.gp import GPPrior
from metabo.sampler import PRED_MEAN_ATTR
from metabo.train.finetune import FinetuneConfig, finetune
from metabo.train.pretrain import model_inputs


def test_model_inputs_need_a_slot_per_related_study():
    g = torch.Generator().manual_seed(1)
    batch = GPPrior().sample(4, 5, 8, g, n_related=12, n_related_studies=3)
    assert model_inputs(batch, g, task_slots=4)[2].shape == (4, 17)  # 3 related slots + the own slot
    with pytest.raises(ValueError, match="task slots"):
        model_inputs(batch, g, task_slots=3)


def test_finetune_rejects_small_corpora_and_other_suffixes(tiny_model, tmp_path, make_past_studies):
    base = save_model(tiny_model, tmp_path / "base.safetensors", {"name": "tiny"})
    with pytest.raises(ValueError, match="at least 3"):
        finetune(make_past_studies(2), tmp_path / "x.safetensors", base=base, progress=False)
    with pytest.raises(ValueError, match=".safetensors"):
        finetune(make_past_studies(4), tmp_path / "x.pt", base=base, progress=False)


def test_a_fine_tuned_model_serves_related_studies(tiny_model, tmp_path, make_past_studies):
    base = save_model(tiny_model, tmp_path / "base.safetensors", {"name": "tiny"})
    cfg = FinetuneConfig(max_steps=2, eval_every=2, tasks_per_batch=2, n_query=4, max_own_context=4,
                         max_related=8, threads=1, patience=100)
    result = finetune(make_past_studies(4), tmp_path / "ft.safetensors", base=base, cfg=cfg, progress=False)
    assert load_model(result.path).multi_task
    sampler = metabo.TNPSampler(model=result.path, related=make_past_studies(3), search_space=BOWL_SPACE, seed=0,
                                search=CandidateSearchConfig(n_candidates=64))
    assert sampler.model.multi_task and sampler.n_startup_trials == 0
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: bowl(t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=3)
    assert len(study.trials) == 3 and PRED_MEAN_ATTR in study.trials[-1].user_attrs
