"""The candidate search: it maximises an acquisition within a ``Subspace``, skips points near seen ones
(``min_distance``), refines without ever getting worse, and returns admissible points."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from metabo import context as ctx
from metabo.acquisition import (CandidateSearchConfig, LogExpectedImprovement, PredictedMean, optimize_acquisition,
                                score_points)
from metabo.acquisition.optimizer import _line_search, _skip_seen
from metabo.space import SearchSpaceEncoder, Subspace

PLANE = SearchSpaceEncoder({"a": FloatDistribution(0.0, 1.0), "b": FloatDistribution(0.0, 1.0)})
MIXED = SearchSpaceEncoder({  # a -> 0, b -> 1, c -> 2..4 (one-hot), n -> 5, s -> 6
    "a": FloatDistribution(0.0, 1.0),
    "b": FloatDistribution(0.0, 1.0),
    "c": CategoricalDistribution(["x", "y", "z"]),
    "n": IntDistribution(0, 6),
    "s": FloatDistribution(0.0, 1.0, step=0.1),
})


def small(**kw) -> CandidateSearchConfig:
    kw = {"n_candidates": 64, "n_local": 64, **kw}
    return CandidateSearchConfig(**kw)


def setting(model, subspace: Subspace, n: int = 6, seed: int = 0):
    """An encoded context of ``n`` random admissible points in ``subspace``, its EI, and its points best first."""
    rng = np.random.RandomState(seed)
    x = subspace.snap(rng.rand(n, len(subspace.dims)))
    y = rng.randn(n)
    cache = ctx.encode(model, ctx.join(None, x, y))
    return cache, LogExpectedImprovement(model, float(y.max())), x[np.argsort(-y)]


# ---------------------------------------------------------------------------------------------- config
def test_config_defaults_and_validation():
    cfg = CandidateSearchConfig()
    assert (cfg.n_candidates, cfg.n_local, cfg.n_incumbents, cfg.n_refine, cfg.refine_steps, cfg.refine_lr,
            cfg.min_distance) == (512, 256, 5, 4, 2, 0.05, 0.01)
    CandidateSearchConfig(min_distance=0.0, n_local=0, n_incumbents=0, refine_steps=0)  # all allowed
    for bad in (dict(min_distance=-0.1), dict(min_distance=1.0), dict(n_candidates=0), dict(n_refine=0),
                dict(n_local=-1), dict(n_incumbents=-1), dict(refine_steps=-1), dict(refine_scales=()),
                dict(refine_scales=(1.0, 0.0))):
        with pytest.raises(ValueError, match=next(iter(bad))):
            CandidateSearchConfig(**bad)


# ---------------------------------------------------------------------------------------------- scoring
def test_score_points_matches_the_acquisition_on_the_heads_logits(tiny_model):
    cache, acquisition, _ = setting(tiny_model, Subspace.full(PLANE))
    x = np.random.RandomState(3).rand(7, 2)
    scores, logits = score_points(cache, acquisition, x)
    assert scores.shape == (7,) and logits.shape == (7, tiny_model.cfg.n_buckets)
    expected = tiny_model.predict_logits(cache, torch.as_tensor(x, dtype=torch.float32)[None])[0]
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(scores, acquisition.score(logits, None))


def test_the_suggestion_carries_its_own_score_and_logits(tiny_model):
    sub = Subspace.full(PLANE)
    cache, acquisition, incumbents = setting(tiny_model, sub)
    s = optimize_acquisition(cache, acquisition, sub, incumbents, incumbents, np.random.RandomState(1), cfg=small())
    scores, logits = score_points(cache, acquisition, s.x[None])
    assert s.acquisition == pytest.approx(float(scores[0]), abs=1e-5)
    torch.testing.assert_close(s.logits, logits[0])
    again = optimize_acquisition(cache, acquisition, sub, incumbents, incumbents, np.random.RandomState(1),
                                 cfg=small())
    np.testing.assert_array_equal(again.x, s.x)  # seeded
    other = optimize_acquisition(cache, acquisition, sub, incumbents, incumbents, np.random.RandomState(2),
                                 cfg=small())
    assert not np.array_equal(other.x, s.x)


@pytest.mark.parametrize("scales", [(1.0,), (2.0, 1.0, 0.5)])  # plain steps; a line search
def test_refinement_never_makes_the_suggestion_worse(tiny_model, scales):
    sub = Subspace.full(PLANE)
    for seed in range(3):
        cache, acquisition, incumbents = setting(tiny_model, sub, seed=seed)
        found = [optimize_acquisition(cache, acquisition, sub, incumbents, incumbents[:0], np.random.RandomState(seed),
                                      cfg=small(refine_steps=steps, refine_scales=scales)).acquisition
                 for steps in (0, 5)]
        assert found[1] >= found[0] - 1e-6


def test_a_line_search_takes_the_best_step_of_its_batch(tiny_model):
    sub = Subspace.full(PLANE)
    cache, acquisition, _ = setting(tiny_model, sub)
    x = torch.tensor([[0.2, 0.3], [0.9, 0.5]])
    direction = torch.tensor([[0.1, 0.0], [0.0, -0.2]])
    scales = (4.0, 1.0, 0.25)
    moved, values = _line_search(cache, acquisition, x, direction, scales)
    for i in range(2):
        options = [np.clip(x[i].numpy() + s * direction[i].numpy(), 0, 1) for s in scales]
        scores = score_points(cache, acquisition, np.stack(options))[0]
        j = int(scores.argmax())
        np.testing.assert_allclose(moved[i].numpy(), options[j], atol=1e-6)
        assert float(values[i]) == pytest.approx(float(scores[j]), abs=1e-5)


def test_the_search_finds_the_pools_best_point(tiny_model):
    sub = Subspace.full(PLANE)
    cache, _, incumbents = setting(tiny_model, sub)
    mean = PredictedMean(tiny_model)
    best = optimize_acquisition(cache, mean, sub, incumbents, incumbents[:0], np.random.RandomState(0),
                                cfg=small(n_candidates=256))
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 41), np.linspace(0, 1, 41)), -1).reshape(-1, 2)
    assert best.acquisition >= float(score_points(cache, mean, grid)[0].max()) - 0.05


# ---------------------------------------------------------------------------------------------- subspaces
def test_the_suggestion_lies_in_the_subspace(tiny_model):
    fixed = MIXED.encode({"a": 0.9, "b": 0.1, "c": "z", "n": 3, "s": 0.4})
    dims = np.array([1, 2, 3, 4, 5])  # b, c (one-hot) and n are free; a and s stay at the fixed row
    sub = Subspace(MIXED, dims, fixed)
    cache, acquisition, incumbents = setting(tiny_model, sub)
    for seed in range(3):
        s = optimize_acquisition(cache, acquisition, sub, incumbents, incumbents, np.random.RandomState(seed),
                                 cfg=small())
        assert s.x.shape == (len(dims),)
        full = sub.to_full(s.x[None])
        np.testing.assert_array_equal(full[0, [0, 6]], fixed[[0, 6]])
        np.testing.assert_array_equal(MIXED.snap(full), full)  # admissible: one-hot, integer
        assert full[0, 2:5].sum() == 1.0
        torch.testing.assert_close(score_points(cache, acquisition, s.x[None])[0][0],
                                   torch.tensor(s.acquisition), atol=1e-5, rtol=0)


def test_only_free_continuous_coordinates_move_in_refinement(tiny_model):
    sub = Subspace(MIXED, np.array([0, 1]), MIXED.encode({"a": 0.5, "b": 0.5, "c": "x", "n": 0, "s": 0.0}))
    cache, acquisition, incumbents = setting(tiny_model, sub)
    for scales in ((1.0,), (2.0, 1.0, 0.5)):
        s = optimize_acquisition(cache, acquisition, sub, incumbents, incumbents[:0], np.random.RandomState(0),
                                 cfg=small(refine_steps=4, refine_scales=scales))
        assert s.x.shape == (2,) and ((s.x >= 0) & (s.x <= 1)).all()
        assert MIXED.decode(sub.to_full(s.x[None])[0])["c"] == "x"


# ---------------------------------------------------------------------------------------------- seen points
def test_skip_seen_masks_near_candidates_only():
    candidates = np.array([[0.5, 0.5], [0.52, 0.49], [0.9, 0.1]])
    scores = torch.tensor([3.0, 2.0, 1.0])
    masked = _skip_seen(scores, candidates, np.array([[0.51, 0.5]]), 0.05)
    assert torch.isinf(masked[:2]).all() and masked[2] == 1.0
    # when every candidate is near a seen point the scores are left alone (a suggestion is always made)
    assert torch.equal(_skip_seen(scores[:2], candidates[:2], np.array([[0.51, 0.5]]), 0.05), scores[:2])
    assert torch.equal(_skip_seen(scores, candidates, candidates, 0.0), scores)
    assert torch.equal(_skip_seen(scores, candidates, np.zeros((0, 2)), 0.05), scores)


def test_optimize_never_returns_a_seen_point(tiny_model):
    rng = np.random.RandomState(0)
    x_ctx, y_ctx = rng.rand(6, 2), rng.randn(6)
    cache = ctx.encode(tiny_model, ctx.join(None, x_ctx, y_ctx))
    acquisition = LogExpectedImprovement(tiny_model, float(y_ctx.max()))
    sub = Subspace.full(PLANE)

    def nearest_seen(min_distance: float) -> float:
        # seeds put candidates exactly on the seen points, and the local part of the pool starts near them
        chosen = optimize_acquisition(cache, acquisition, sub, x_ctx[np.argsort(-y_ctx)], x_ctx,
                                      np.random.RandomState(1), seeds=x_ctx, cfg=small(min_distance=min_distance)).x
        return float(np.abs(x_ctx - chosen).max(1).min())

    assert nearest_seen(0.0) < 1e-6  # without the rule this model re-proposes a seen point...
    assert nearest_seen(0.05) >= 0.05  # ...with it, never


def test_seen_points_reached_through_the_subspace_are_skipped(tiny_model):
    fixed = np.array([0.2, 0.5])
    sub = Subspace(PLANE, np.array([1]), fixed)  # b is free, a stays at 0.2
    rng = np.random.RandomState(0)
    x_ctx, y_ctx = rng.rand(6, 1), rng.randn(6)
    cache = ctx.encode(tiny_model, ctx.join(None, x_ctx, y_ctx))
    acquisition = LogExpectedImprovement(tiny_model, float(y_ctx.max()))
    free = optimize_acquisition(cache, acquisition, sub, x_ctx[np.argsort(-y_ctx)], x_ctx[:0],
                                np.random.RandomState(1), cfg=small(min_distance=0.0))
    seen = np.array([[0.2, free.x[0]], [0.9, 0.3]])  # the unconstrained choice, already evaluated
    near = sub.nearby(seen, 0.05)
    np.testing.assert_allclose(near, [[free.x[0]]])  # (0.9, 0.3) is out of reach of the subspace
    moved = optimize_acquisition(cache, acquisition, sub, x_ctx[np.argsort(-y_ctx)], near,
                                 np.random.RandomState(1), cfg=small(min_distance=0.05))
    assert abs(moved.x[0] - free.x[0]) >= 0.05


def test_a_suggestion_is_made_even_when_every_candidate_is_near_a_seen_point(tiny_model):
    sub = Subspace.full(PLANE)
    cache, acquisition, incumbents = setting(tiny_model, sub)
    s = optimize_acquisition(cache, acquisition, sub, incumbents, np.array([[0.5, 0.5]]), np.random.RandomState(0),
                             cfg=small(min_distance=0.99))
    assert np.isfinite(s.acquisition) and s.x.shape == (2,)



def test_bound_copies_put_continuous_coordinates_on_their_nearer_bound():
    from metabo.acquisition.optimizer import _pool

    enc = SearchSpaceEncoder({"a": FloatDistribution(0, 1), "b": FloatDistribution(0, 1),
                              "c": CategoricalDistribution(("x", "y"))})
    sub = Subspace.full(enc)
    centres = np.array([[0.2, 0.9, 1.0, 0.0]])
    plain = _pool(sub, centres, np.random.RandomState(0), None, CandidateSearchConfig(n_candidates=8, n_local=4))
    cfg = CandidateSearchConfig(n_candidates=8, n_local=4, n_bound=64)
    pool = _pool(sub, centres, np.random.RandomState(0), None, cfg)
    assert np.array_equal(pool[: len(plain)], plain)  # the bound copies come last and change nothing before them
    bound = pool[len(plain):]
    assert bound.shape == (64, 4)
    assert set(np.unique(bound[:, 0])) == {0.0, 0.2} and set(np.unique(bound[:, 1])) == {0.9, 1.0}
    assert (bound[:, 2:] == centres[0, 2:]).all()  # one-hot coordinates are never moved
