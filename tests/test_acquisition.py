"""AcquisitionOptimizer: candidates near evaluated or pending points are skipped (``min_distance``), and EI's
threshold sits a margin of predictive standard deviations above the incumbent (``improvement_margin``)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch

import metabo
from metabo.acquisition import AcquisitionConfig, AcquisitionOptimizer
from metabo.sampler import _seen_in_subspace


def _optimizer(model, min_distance: float, improvement_margin: float = 0.0,
               bound_candidates: bool = False) -> AcquisitionOptimizer:
    cfg = AcquisitionConfig(n_sobol=64, n_local=64, min_distance=min_distance, improvement_margin=improvement_margin,
                            bound_candidates=bound_candidates)
    return AcquisitionOptimizer(model, np.ones(2, bool), lambda rows: rows, [], cfg)


def test_skip_seen_masks_near_candidates_only(tiny_model):
    opt = _optimizer(tiny_model, 0.05)
    candidates = np.array([[0.5, 0.5], [0.52, 0.49], [0.9, 0.1]])
    scores = torch.tensor([3.0, 2.0, 1.0])
    masked = opt._skip_seen(scores, candidates, np.array([[0.51, 0.5]]))
    assert torch.isinf(masked[:2]).all() and masked[2] == 1.0
    # when every candidate is near a seen point the scores are left alone (a suggestion is always made)
    assert torch.equal(opt._skip_seen(scores[:2], candidates[:2], np.array([[0.51, 0.5]])), scores[:2])
    assert torch.equal(_optimizer(tiny_model, 0.0)._skip_seen(scores, candidates, candidates), scores)


def test_bound_candidates_let_a_bound_through_that_a_point_just_inside_would_bar(tiny_model):
    seen = np.array([[0.0006, 0.3], [0.5, 0.5]])  # evaluated a hair inside the alpha = 0 bound
    candidates = np.array([[0.0, 0.3], [0.003, 0.3], [0.0, 0.5]])
    scores = torch.tensor([3.0, 2.0, 1.0])
    plain = _optimizer(tiny_model, 0.01)._skip_seen(scores, candidates, seen)
    aware = _optimizer(tiny_model, 0.01, bound_candidates=True)._skip_seen(scores, candidates, seen)
    assert torch.isinf(plain[:2]).all() and plain[2] == 1.0
    assert aware[0] == 3.0 and torch.isinf(aware[1]) and aware[2] == 1.0
    # symmetric: with the bound seen, a point just inside it counts as new, but the bound itself is a repeat
    inside = _optimizer(tiny_model, 0.01, bound_candidates=True)._skip_seen(
        scores, np.array([[0.0006, 0.3], [0.0, 0.305], [0.9, 0.9]]), np.array([[0.0, 0.3]]))
    assert inside[0] == 3.0 and torch.isinf(inside[1]) and inside[2] == 1.0


def test_bound_candidates_project_near_bound_incumbents_into_the_pool(tiny_model):
    x_ctx = np.array([[0.02, 0.5], [0.6, 0.97], [0.4, 0.4]])
    y_ctx = np.array([1.0, 0.5, -1.0])
    pool = _optimizer(tiny_model, 0.01, bound_candidates=True)._pool(x_ctx, y_ctx, np.random.RandomState(0))
    plain = _optimizer(tiny_model, 0.01)._pool(x_ctx, y_ctx, np.random.RandomState(0))
    assert len(pool) == len(plain) + len(x_ctx)
    np.testing.assert_allclose(pool[-3:], [[0.0, 0.5], [0.6, 1.0], [0.4, 0.4]])


def test_optimize_never_returns_a_seen_point(tiny_model):
    rng = np.random.RandomState(0)
    x_ctx = rng.rand(6, 2)
    y_ctx = rng.randn(6)

    def nearest_seen(min_distance: float) -> float:
        opt = _optimizer(tiny_model, min_distance)
        # seeds put candidates exactly on the seen points, and the local part of the pool starts near them
        chosen = opt.optimize(opt.encode(x_ctx, y_ctx), x_ctx, y_ctx, np.random.RandomState(1), seeds=x_ctx).x
        return float(np.abs(x_ctx - chosen).max(1).min())

    assert nearest_seen(0.0) < 1e-6  # without the rule this model re-proposes a seen point...
    assert nearest_seen(0.05) >= 0.05  # ...with it, never


def test_sampler_trials_keep_their_distance(tiny_model):
    sampler = metabo.TNPSampler(model=tiny_model, seed=0, n_candidates=64, min_distance=0.05)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("a", 0, 1) - 0.3) ** 2 + (t.suggest_float("b", 0, 1) - 0.6) ** 2,
                   n_trials=14)
    points = np.array([[t.params["a"], t.params["b"]] for t in study.trials])
    for i in range(4, len(points)):  # model-driven trials, each against every earlier one
        assert np.abs(points[:i] - points[i]).max(1).min() >= 0.05 - 1e-9


def test_min_distance_validation(tiny_model):
    with pytest.raises(ValueError, match="min_distance"):
        metabo.TNPSampler(model=tiny_model, min_distance=-0.1)
    with pytest.raises(ValueError, match="min_distance"):
        metabo.TNPSampler(model=tiny_model, min_distance=1.0)
    with pytest.raises(ValueError, match="improvement_margin"):
        metabo.TNPSampler(model=tiny_model, improvement_margin=-1.0)


def test_seen_in_subspace_keeps_points_a_candidate_can_reach():
    incumbent = np.array([0.2, 0.5, 0.8])
    seen = np.array([[0.2, 0.1, 0.8], [0.9, 0.1, 0.8], [0.2, 0.3, 0.805]])
    # candidates vary dim 1 only and copy dims 0 and 2 from the incumbent: point 1 differs there, so it is dropped
    kept = _seen_in_subspace(seen, incumbent, np.array([1]), 0.01)
    np.testing.assert_allclose(kept, [[0.1], [0.3]])


def test_improvement_margin_raises_the_threshold_by_the_predictive_sd_at_the_best(tiny_model):
    rng = np.random.RandomState(0)
    x_ctx, y_ctx = rng.rand(5, 2), rng.randn(5)
    plain = _optimizer(tiny_model, 0.0, improvement_margin=0.0)
    cache = plain.encode(x_ctx, y_ctx)
    assert plain._incumbent(cache, x_ctx, y_ctx)[0] == pytest.approx(float(y_ctx.max()))
    with torch.no_grad():
        logits = tiny_model.head(tiny_model.candidate_features(
            cache, torch.as_tensor(x_ctx[np.argmax(y_ctx)][None, None], dtype=torch.float32)))[0]
    sd = float(tiny_model.bar.variance(logits).sqrt()[0])
    assert sd > 0
    threshold, ei_k = _optimizer(tiny_model, 0.0, improvement_margin=2.0)._incumbent(cache, x_ctx, y_ctx)
    assert threshold == pytest.approx(float(y_ctx.max()) + 2.0 * sd, rel=1e-5)
    torch.testing.assert_close(ei_k, tiny_model.bar.improvement_per_bucket(threshold))
