"""Meta-learning: task slots, the multi-task prior, related studies in TNPSampler, and fine-tuning."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution

import metabo
from conftest import make_tiny_model
from metabo.acquisition import AcquisitionOptimizer
from metabo.meta import PastStudy, align_corpus
from metabo.model.io import load_model, save_model, with_task_slots
from metabo.priors.gp import GPPrior, standardise_per_study
from metabo.related import (build_context, choose_studies, concat_context, portfolio_candidates, portfolio_choice,
                            select_points, study_scores)
from metabo.train.finetune import FinetuneConfig, finetune
from metabo.train.pretrain import model_inputs

SPACE = {"a": FloatDistribution(0.0, 1.0), "b": FloatDistribution(0.0, 1.0)}


def bowl(a: float, b: float, shift: float = 0.0) -> float:
    return (a - 0.3) ** 2 + (b - 0.7) ** 2 + shift


def past_studies(n: int = 6, points: int = 30, seed: int = 0) -> list[PastStudy]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        obs = []
        for _ in range(points):
            p = {"a": float(rng.random()), "b": float(rng.random())}
            obs.append((p, bowl(p["a"], p["b"], 0.1 * k)))
        out.append(PastStudy(f"past{k}", "test", SPACE, obs))
    return out


@pytest.fixture
def multitask_model():
    return make_tiny_model(0, task_slots=8)


def test_task_slots_start_neutral_and_single_task_models_refuse_related(tiny_model):
    wide = with_task_slots(tiny_model, 8).eval()
    x, y, q = torch.rand(2, 6, 3), torch.randn(2, 6), torch.rand(2, 4, 3)
    with torch.no_grad():
        assert torch.allclose(tiny_model(x, y, q), wide(x, y, q))
        assert torch.allclose(wide(x, y, q), wide(x, y, q, ctx_task=torch.zeros(2, 6, dtype=torch.long)))
    with pytest.raises(ValueError, match="no task slots"):
        tiny_model(x, y, q, ctx_task=torch.ones(2, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="task slots must lie"):
        wide(x, y, q, ctx_task=torch.full((2, 6), 8))
    with pytest.raises(ValueError, match="shrink"):
        with_task_slots(wide, 4)


def test_task_slots_change_predictions_once_trained(multitask_model):
    with torch.no_grad():
        multitask_model.embed_task.weight.normal_()
    x, y, q = torch.rand(1, 6, 3), torch.randn(1, 6), torch.rand(1, 4, 3)
    own = multitask_model(x, y, q, ctx_task=torch.zeros(1, 6, dtype=torch.long))
    related = multitask_model(x, y, q, ctx_task=torch.ones(1, 6, dtype=torch.long))
    assert not torch.allclose(own, related)


def test_widened_model_round_trips(tiny_model, tmp_path):
    wide = with_task_slots(tiny_model, 8, max_dims=tiny_model.cfg.max_dims + 3)
    path = save_model(wide, tmp_path / "wide.safetensors", {"name": "wide"})
    loaded = load_model(path)
    assert loaded.cfg.task_slots == 8 and loaded.cfg.max_dims == tiny_model.cfg.max_dims + 3
    assert loaded.multi_task and not tiny_model.multi_task


def test_multitask_prior_related_studies_track_the_target():
    g = torch.Generator().manual_seed(0)
    prior = GPPrior()
    batch = prior.sample(64, 4, 8, g, n_related=40, n_related_studies=3)
    assert batch.x_rel.shape == (64, 40, 16) and batch.y_rel.shape == (64, 40)
    assert set(batch.rel_study.unique().tolist()) == {0, 1, 2}
    for s in range(3):  # each study is standardised on its own
        m = batch.rel_study[0] == s
        if m.sum() > 1:
            assert torch.allclose(batch.y_rel[:, m].mean(1), torch.zeros(64), atol=1e-4)
            assert torch.allclose(batch.y_rel[:, m].std(1), torch.ones(64), atol=1e-3)
    # related studies share structure: study 0 and study 1 values at nearby inputs correlate across tasks on average
    assert prior.sample(8, 4, 8, g).x_rel is None


def test_standardise_per_study():
    y = torch.tensor([[1.0, 3.0, 10.0, 20.0, 5.0]])
    study = torch.tensor([[0, 0, 1, 1, 2]])
    out = standardise_per_study(y, study)
    assert torch.allclose(out, torch.tensor([[-0.7071, 0.7071, -0.7071, 0.7071, 0.0]]), atol=1e-4)


def test_model_inputs_put_related_points_first_with_distinct_slots():
    g = torch.Generator().manual_seed(1)
    batch = GPPrior().sample(4, 5, 8, g, n_related=12, n_related_studies=3)
    x, y, task, y_q = model_inputs(batch, g, task_slots=8)
    assert x.shape == (4, 17, 16) and task.shape == (4, 17)
    assert (task[:, 12:] == 0).all() and (task[:, :12] >= 1).all()
    assert len(task[0, :12].unique()) == 3
    with pytest.raises(ValueError, match="task slots"):
        model_inputs(batch, g, task_slots=3)


def test_select_points_keeps_the_best_half_and_is_seeded():
    y = np.arange(20, dtype=float)
    pick = select_points(y, 6, np.random.RandomState(0))
    assert len(pick) == 6 and {19, 18, 17} <= set(pick.tolist())
    assert (pick == select_points(y, 6, np.random.RandomState(0))).all()
    assert len(select_points(y, 50, np.random.RandomState(0))) == 20


def test_build_context_and_choose_studies(multitask_model):
    aligned, _ = align_corpus(past_studies(10), SPACE)
    rng = np.random.RandomState(0)
    chosen = choose_studies(multitask_model, aligned, np.zeros((0, 2)), np.zeros(0), rng)
    assert len(chosen) == 7  # task slots 1..7
    x_own = rng.rand(5, 2)
    y_own = -np.array([bowl(*r) for r in x_own])
    chosen = choose_studies(multitask_model, aligned, x_own, y_own, rng)
    assert len(chosen) == 7 and len({c.name for c in chosen}) == 7
    ctx = build_context(chosen, 70, rng)
    assert len(ctx) == 70 and set(ctx.slot.tolist()) == set(range(1, 8))
    assert ctx.best_points(2).shape == (14, 2)
    x, y, slot = concat_context(ctx, x_own, y_own)
    assert x.shape == (75, 2) and (slot[70:] == 0).all()
    assert concat_context(None, x_own, y_own)[2] is None


def test_sampler_with_related_studies_starts_from_the_model(multitask_model, monkeypatch):
    seen = []
    original = AcquisitionOptimizer.encode

    def spy(self, x_ctx, y_ctx, x_pending=None, related=None):
        seen.append((len(y_ctx), None if related is None else len(related)))
        return original(self, x_ctx, y_ctx, x_pending, related)

    monkeypatch.setattr(AcquisitionOptimizer, "encode", spy)
    sampler = metabo.TNPSampler(model=multitask_model, related=past_studies(3), search_space=SPACE, seed=0,
                                n_candidates=64, max_related_points=30)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: bowl(t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=4)
    assert [s[0] for s in seen] == [0, 1, 2, 3]  # the model chose every trial, the first with no own data
    assert all(s[1] == 30 for s in seen)


def test_portfolio_choice_is_greedy_over_studies():
    # Two studies; candidate 0 is good in both, 1 only in study 0, 2 only in study 1.
    scores = np.array([[0.8, 1.0, -1.0],
                       [0.8, -1.0, 1.0]])
    assert portfolio_choice(scores, np.zeros((2, 0))) == 0  # best on average
    # Once a point good in study 0 only was evaluated, the one that covers study 1 adds most.
    assert portfolio_choice(scores, np.array([[1.0], [-1.0]])) == 2
    # No candidate adds anything: the better one on average, not the first.
    assert portfolio_choice(scores[:, 1:], np.array([[1.5], [1.5]])) in (0, 1)


def test_study_scores_share_a_scale_and_candidates_are_study_bests(multitask_model):
    aligned, _ = align_corpus(past_studies(4), SPACE)
    candidates = portfolio_candidates(aligned, per_study=2)
    assert candidates.shape[1] == 2 and len(candidates) <= 8
    best_rows = {tuple(a.x[int(np.argmax(a.y))]) for a in aligned}
    assert best_rows <= {tuple(c) for c in candidates}
    scores = study_scores(multitask_model, aligned, candidates, np.random.RandomState(0))
    assert scores.shape == (4, len(candidates))
    assert np.isfinite(scores).all() and scores.min() >= -2.0 and scores.max() <= 1.5


def test_sampler_warm_trials_come_from_the_portfolio(multitask_model):
    related = past_studies(4)
    aligned, _ = align_corpus(related, SPACE)
    candidates = {tuple(np.round(c, 9)) for c in portfolio_candidates(aligned)}
    sampler = metabo.TNPSampler(model=multitask_model, related=related, search_space=SPACE, seed=0,
                                n_candidates=64, n_warm_trials=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: bowl(t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=4)
    warm = [tuple(np.round([t.params["a"], t.params["b"]], 9)) for t in study.trials[:3]]
    assert set(warm) <= candidates and len(set(warm)) == 3  # three distinct portfolio members
    with pytest.raises(ValueError, match="n_warm_trials"):
        metabo.TNPSampler(model=multitask_model, related=related, n_warm_trials=-1)


def test_sampler_related_without_space_waits_one_trial(multitask_model):
    sampler = metabo.TNPSampler(model=multitask_model, related=past_studies(3), seed=0, n_candidates=64)
    assert sampler._n_startup_trials == 1
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: bowl(t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=3)
    assert len(study.trials) == 3


def test_sampler_related_errors(tiny_model, multitask_model):
    with pytest.raises(ValueError, match="task slots"):
        metabo.TNPSampler(model=tiny_model, related=past_studies(2))
    with pytest.raises(ValueError, match="max_related_points"):
        metabo.TNPSampler(model=multitask_model, related=past_studies(2), max_related_points=0)
    other = [PastStudy("other", "test", {"z": FloatDistribution(0, 1)}, [({"z": 0.5}, 1.0)])]
    sampler = metabo.TNPSampler(model=multitask_model, related=other, search_space=SPACE, seed=0, n_candidates=64)
    study = optuna.create_study(sampler=sampler)
    with pytest.warns(UserWarning):
        study.optimize(lambda t: bowl(t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=3)


def test_finetune_writes_a_loadable_model_with_its_corpus(tiny_model, tmp_path):
    base = save_model(tiny_model, tmp_path / "base.safetensors", {"name": "tiny"})
    cfg = FinetuneConfig(max_steps=12, eval_every=4, tasks_per_batch=4, n_query=8, max_own_context=8,
                         max_related=16, threads=1, patience=100)
    result = finetune(past_studies(6), tmp_path / "ft.safetensors", base=base, cfg=cfg, progress=False,
                      command="test", corpus_label="unit")
    model = load_model(result.path)
    card = json.loads(result.path.with_suffix(".json").read_text())
    assert model.multi_task and card["corpus"]["n_studies"] == 6 and card["command"] == "test"
    assert len(card["validation_curve"]) == 4 and card["steps"] == 12
    assert card["validation_nll"]["best"] <= card["validation_nll"]["base"]
    assert result.path.with_suffix(".curve.png").exists()
    sampler = metabo.TNPSampler(model=result.path, related=past_studies(3), search_space=SPACE, seed=0,
                                n_candidates=64)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: bowl(t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=2)


def test_finetune_stops_early_and_rejects_small_corpora(tiny_model, tmp_path):
    base = save_model(tiny_model, tmp_path / "base.safetensors", {"name": "tiny"})
    with pytest.raises(ValueError, match="at least 3"):
        finetune(past_studies(2), tmp_path / "x.safetensors", base=base, progress=False)
    with pytest.raises(ValueError, match=".safetensors"):
        finetune(past_studies(4), tmp_path / "x.pt", base=base, progress=False)
    cfg = FinetuneConfig(max_steps=400, eval_every=2, tasks_per_batch=2, n_query=4, max_own_context=4,
                         max_related=8, threads=1, patience=1, lr=1e-9)
    result = finetune(past_studies(4), tmp_path / "es.safetensors", base=base, cfg=cfg, progress=False)
    assert result.stopped_early and result.steps < 400


def _yahpo_ready() -> str | None:
    from metabo.bench.problems import yahpo

    return yahpo.unavailable_reason("lcbench")


@pytest.mark.skipif(_yahpo_ready() is not None, reason=str(_yahpo_ready()))
def test_bench_transfer_optimisers_use_train_instances_and_the_scenario_model():
    from metabo.bench.optimizers import make_sampler, model_fingerprint, scenario_model_path
    from metabo.bench.problems import get_problem
    from metabo.model.io import multitask_model_path

    problem = get_problem("yahpo/lcbench/167149")
    transfer = make_sampler("metabo-transfer", 0, budget=10, problem=problem)
    related = make_sampler("metabo-related", 0, budget=10, problem=problem)
    assert transfer.model.multi_task and related.model.multi_task
    assert transfer._n_startup_trials == 0 and transfer._related_sources == "yahpo:lcbench"
    assert model_fingerprint("metabo-transfer", problem)["path"] == str(scenario_model_path("lcbench"))
    assert model_fingerprint("metabo-related", problem)["path"] == str(multitask_model_path())
    study = optuna.create_study(sampler=transfer)
    for _ in range(2):
        trial = study.ask(problem.search_space())
        study.tell(trial, problem.evaluate(trial.params))
    # the related corpus is the scenario's train instances, never a validation or reserved one
    from metabo.bench.problems import yahpo

    names = {a.study.name for cached in transfer._related_cache.values() for a in cached}
    assert names and all(yahpo.split_of("lcbench", n.rsplit("/", 1)[1]) == "train" for n in names)


def test_acquisition_head_scores_candidates_and_needs_a_budget(tiny_model):
    nap_model = with_task_slots(tiny_model, 8, acquisition_head=True).eval()
    cache = nap_model.encode_context(torch.rand(1, 4, 2), torch.randn(1, 4))
    features = nap_model.candidate_features(cache, torch.rand(1, 6, 2))
    assert nap_model.acquisition_scores(features, 0.5).shape == (1, 6)
    assert not torch.allclose(nap_model.acquisition_scores(features, 0.0), nap_model.acquisition_scores(features, 1.0))
    with pytest.raises(ValueError, match="no learned acquisition head"):
        tiny_model.acquisition_scores(features, 0.5)
    with pytest.raises(ValueError, match="budget"):
        metabo.TNPSampler(model=nap_model, acquisition="nap")
    with pytest.raises(ValueError, match="acquisition head"):
        metabo.TNPSampler(model=tiny_model, acquisition="nap", budget=10)
    for p in nap_model.parameters():
        p.requires_grad_(False)
    sampler = metabo.TNPSampler(model=nap_model, acquisition="nap", budget=6, related=past_studies(3),
                                search_space=SPACE, seed=0, n_candidates=64)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: bowl(t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=6)
    assert len(study.trials) == 6


@pytest.mark.skipif(_yahpo_ready() is not None, reason=str(_yahpo_ready()))
def test_nap_training_runs_ppo_and_writes_a_model(tiny_model, tmp_path):
    from metabo.train.nap import NAPConfig, train_nap

    base = save_model(tiny_model, tmp_path / "base.safetensors", {"name": "tiny"})
    cfg = NAPConfig(iterations=2, episodes=3, horizon=4, pool_size=16, configs_per_instance=40, aux_queries=4,
                    max_related=8, related_studies=2)
    path = train_nap("lcbench", tmp_path / "nap.safetensors", base, cfg, progress=False, command="test")
    model = load_model(path)
    card = json.loads(path.with_suffix(".json").read_text())
    assert model.acq_head is not None and model.multi_task
    assert card["iterations"] == 2 and len(card["training_log"]) == 2 and card["kind"] == "nap"


def test_clipping_defaults_off_with_related_studies(multitask_model):
    transfer = metabo.TNPSampler(model=multitask_model, related=past_studies(2), seed=0)
    assert transfer._transform_options["clip_worse"] == 0.0  # related studies are standardised without it
    assert metabo.TNPSampler(model=multitask_model, related=past_studies(2), clip_worse=2.0
                             )._transform_options["clip_worse"] == 2.0
