"""Fine-tuning: its tasks lay out the context exactly as serving does, its values go through the configured
transform, and a tiny run writes the model, the card and the curve."""

from __future__ import annotations

import json

import numpy as np
import torch

from conftest import make_tiny_model
from metabo.context import join, related_points
from metabo.meta import align_corpus
from metabo.model.io import load_model, save_model
from metabo.normalise import ValueTransformConfig
from metabo.train.finetune import FinetuneConfig, _collate, _normalise_own, _TaskSampler, finetune
from studies import SPACE, past_studies


def test_a_training_batch_holds_the_contexts_serving_builds_from_the_same_draws():
    aligned, _ = align_corpus(past_studies(), SPACE)
    cfg = FinetuneConfig(tasks_per_batch=3, n_query=4)
    n_ctx, n_rel, n_studies = 5, 24, 3
    tasks = _TaskSampler(aligned, aligned, cfg, n_slots=8).batch(np.random.RandomState(7), n_ctx, n_rel, n_studies)
    xc, yc, sc, mc, xq, yq, mq = _collate(tasks)

    rng = np.random.RandomState(7)  # the sampler's draws, in its order: target, split, related studies, slots
    for i in range(cfg.tasks_per_batch):
        target = aligned[rng.randint(len(aligned))]
        order = rng.permutation(len(target.y))
        ctx, qry = order[:n_ctx], order[n_ctx:n_ctx + cfg.n_query]
        y_own, y_qry = _normalise_own(target.values[ctx], target.values[qry], target, cfg.transform)
        others = [s for s in aligned if s is not target]
        chosen = rng.choice(len(others), size=n_studies, replace=False)
        slots = rng.permutation(7)[:n_studies] + 1
        served = join(related_points([others[j] for j in chosen], n_rel, rng, slots=slots), target.x[ctx], y_own)
        n = len(served)
        assert int(mc[i].sum()) == n and not mc[i, n:].any()
        assert torch.equal(xc[i, :n], torch.as_tensor(served.x, dtype=torch.float32))
        assert torch.equal(yc[i, :n], torch.as_tensor(served.y, dtype=torch.float32))
        assert torch.equal(sc[i, :n], torch.as_tensor(served.task))
        assert (sc[i, -n_ctx:] == 0).all() and set(sc[i, :n - n_ctx].tolist()) == set(slots.tolist())
        assert torch.equal(yq[i, :len(qry)], torch.as_tensor(y_qry, dtype=torch.float32))
        assert torch.equal(xq[i, :len(qry)], torch.as_tensor(target.x[qry], dtype=torch.float32))


def test_own_values_go_through_the_configured_transform():
    aligned, _ = align_corpus(past_studies(3), SPACE)
    study = aligned[0]
    v = study.values[:8]
    plain, _ = _normalise_own(v, study.values[8:10], study, ValueTransformConfig(power=False))
    expected = -(v - v.mean()) / v.std(ddof=1)  # minimised: larger is better
    assert np.allclose(plain, expected)
    powered, _ = _normalise_own(v, study.values[8:10], study, ValueTransformConfig())
    assert not np.allclose(powered, expected)
    # the past-value steps only: compressing and clipping are for the study's own values at serving
    assert np.allclose(powered, _normalise_own(v, v[:1], study, ValueTransformConfig(compress_worse=False,
                                                                                      clip_worse=0.0))[0])


def test_a_tiny_run_writes_model_card_and_curve(tmp_path):
    base = save_model(make_tiny_model(0), tmp_path / "base.safetensors", {"name": "tiny"})
    cfg = FinetuneConfig(max_steps=6, eval_every=3, tasks_per_batch=2, n_query=4, max_own_context=4,
                         max_related=8, threads=1, patience=100)
    result = finetune(past_studies(4), tmp_path / "ft.safetensors", base=base, cfg=cfg, progress=False,
                      command="test", corpus_label="unit")
    card = json.loads(result.path.with_suffix(".json").read_text())
    assert load_model(result.path).multi_task and result.steps == 6 and not result.stopped_early
    assert card["stop_reason"] == "max steps" and card["steps"] == 6 and card["command"] == "test"
    assert [c["step"] for c in card["validation_curve"]] == [0, 3, 6]
    assert card["validation_nll"]["base"] == result.base_val_nll == card["validation_curve"][0]["val_nll"]
    assert card["validation_nll"]["best"] == result.best_val_nll <= result.base_val_nll
    assert card["best_step"] == result.best_step and card["finetune_config"]["transform"]["power"] is True
    assert card["corpus"]["n_studies"] == 4 and card["corpus"]["label"] == "unit"
    assert result.path.with_suffix(".curve.png").exists()


def test_fine_tuning_runs_on_the_device_asked_for(tmp_path, monkeypatch):
    import pytest

    import metabo.train.loop as loop

    base = save_model(make_tiny_model(0), tmp_path / "base.safetensors", {"name": "tiny"})
    small = dict(max_steps=2, eval_every=2, tasks_per_batch=2, n_query=4, max_own_context=4, max_related=8,
                 threads=1, patience=100)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            finetune(past_studies(4), tmp_path / "gpu.safetensors", base=base,
                     cfg=FinetuneConfig(**small, device="cuda"), progress=False)
    # "auto" without a GPU is the CPU, and the CPU run is the same run whichever way it was asked for
    monkeypatch.setattr(loop.torch.cuda, "is_available", lambda: False)
    runs = [finetune(past_studies(4), tmp_path / f"{device}.safetensors", base=base,
                     cfg=FinetuneConfig(**small, device=device), progress=False) for device in ("auto", "cpu")]
    auto, cpu = (load_model(r.path).state_dict() for r in runs)
    assert all(torch.equal(auto[k], cpu[k]) for k in auto)
