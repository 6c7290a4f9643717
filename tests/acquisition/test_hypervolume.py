"""Tests of metabo.acquisition.hypervolume and the bar distribution's quantile."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metabo.acquisition import FeasibilityWeighted, LogExpectedImprovement
from metabo.acquisition.hypervolume import (LogExpectedHypervolumeImprovement, LogExpectedScalarisedImprovement,
                                            MeasuredObjectives, hypervolume_improvement, non_dominated_boxes,
                                            reference_point)
from metabo.normalise import ObjectiveTransform, ValueTransformConfig
from metabo.outcomes import pareto_ranks

PLAIN = ValueTransformConfig(power=False, compress_worse=False, clip_worse=0.0)  # standardising only


def _measured(raw: np.ndarray, config: ValueTransformConfig = PLAIN) -> tuple[MeasuredObjectives, list]:
    """Objectives ``raw`` (n, m), larger is better, on the model's scale through ``config``'s transforms."""
    transforms = [ObjectiveTransform(True, config).fit(raw[:, k]) for k in range(raw.shape[1])]
    model_scale = np.stack([t.transform(raw[:, k]) for k, t in enumerate(transforms)], 1)
    return MeasuredObjectives(transforms, model_scale, np.flatnonzero(pareto_ranks(raw) == 0)), transforms


def _brute_force_improvement(point, front, reference, n=200_000, seed=0):
    """Monte-Carlo volume of the region ``point`` dominates above ``reference`` that no front point dominates."""
    rng = np.random.RandomState(seed)
    if not np.all(point > reference):
        return 0.0
    s = reference + (point - reference) * rng.rand(n, len(point))
    dominated = np.zeros(n, dtype=bool)
    for f in front:
        dominated |= np.all(f >= s, axis=1)
    return float(np.prod(point - reference) * (~dominated).mean())


@pytest.mark.parametrize("m", [2, 3])
def test_boxes_give_the_hypervolume_improvement(m):
    rng = np.random.RandomState(m)
    y = rng.rand(25, m)
    front = y[pareto_ranks(y) == 0]
    reference = reference_point(y)
    lower, upper = non_dominated_boxes(front, reference)
    for _ in range(4):
        point = y.max(0) + 0.1 * rng.rand(m) - 0.35 * rng.rand(m)
        exact = float(hypervolume_improvement(torch.as_tensor(point)[None], torch.as_tensor(lower),
                                              torch.as_tensor(upper))[0])
        assert exact == pytest.approx(_brute_force_improvement(point, front, reference), abs=4e-3)
    # a front point adds nothing, and nothing is lost below the reference
    zero = hypervolume_improvement(torch.as_tensor(front), torch.as_tensor(lower), torch.as_tensor(upper))
    assert torch.allclose(zero, torch.zeros(len(front), dtype=zero.dtype), atol=1e-12)


def test_quantile_inverts_the_distribution(tiny_model):
    bar = tiny_model.bar
    logits = torch.randn(3, bar.num_buckets) * 2
    u = torch.rand(40_000, generator=torch.Generator().manual_seed(0))
    samples = bar.quantile(logits, u)
    for t in (-1.0, 0.0, 1.5):
        empirical = (samples > t).double().mean(-1)
        assert torch.allclose(empirical, bar.probability_of_improvement(logits, t).double(), atol=0.01)
    assert torch.allclose(samples.mean(-1), bar.mean(logits), atol=0.05)


def _logits_at(model, means):
    """Logits of a sharp predictive distribution at each of ``means`` (Q,)."""
    centres = (model.bar.borders[1:] + model.bar.borders[:-1]) / 2
    return -((centres[None, :] - torch.as_tensor(means, dtype=torch.float32)[:, None]) ** 2) / 0.02


def test_ehvi_prefers_points_beyond_the_front(tiny_model):
    raw = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.6]])
    measured, transforms = _measured(raw)
    acq = LogExpectedHypervolumeImprovement(tiny_model, measured, seed=0)
    # candidates: beyond the front, on it, and dominated (raw values, predicted on the model's scale)
    means = [t.transform(np.array([1.2, 0.6, -0.5])) for t in transforms]
    logits = torch.stack([_logits_at(tiny_model, means[0]), _logits_at(tiny_model, means[1])])
    scores = acq.score_outputs(logits, torch.zeros(2, 3, 1))
    assert scores[0] > scores[1] > scores[2]


def test_candidates_far_behind_the_front_fall_back_to_their_log_ei(tiny_model):
    from metabo.acquisition.hypervolume import _FALLBACK_OFFSET

    raw = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.6]])
    measured, transforms = _measured(raw)
    acq = LogExpectedHypervolumeImprovement(tiny_model, measured, seed=0)
    # one candidate beyond the front, then three far behind it (every sample dominated)
    means = [t.transform(np.array([1.2, -0.3, -0.4, -0.5])) for t in transforms]
    logits = torch.stack([_logits_at(tiny_model, means[0]), _logits_at(tiny_model, means[1])])
    scores = acq.score_outputs(logits, torch.zeros(2, 4, 1))
    assert scores[0] > scores[1:].max() and scores[0] > -_FALLBACK_OFFSET
    best = measured.observed[measured.front].max(0)
    log_ei = sum(tiny_model.bar.log_expected_improvement(logits[k, 1:], float(best[k])) for k in range(2))
    torch.testing.assert_close(scores[1:], log_ei - _FALLBACK_OFFSET, atol=1e-3, rtol=0)


def test_scalarised_improvement_prefers_better_points(tiny_model):
    raw = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    measured, transforms = _measured(raw)
    acq = LogExpectedScalarisedImprovement(tiny_model, measured, np.ones(3, bool), np.random.RandomState(0), seed=0)
    means = [t.transform(np.array([1.5, 0.0])) for t in transforms]
    logits = torch.stack([_logits_at(tiny_model, means[0]), _logits_at(tiny_model, means[1])])
    scores = acq.score_outputs(logits, torch.zeros(2, 2, 1))
    assert scores[0] > scores[1]


def test_feasibility_weighting_adds_the_log_probability_of_each_constraint(tiny_model):
    bar = tiny_model.bar
    logits = torch.randn(3, 5, bar.num_buckets)
    objective = LogExpectedImprovement(tiny_model, 0.3)
    acq = FeasibilityWeighted(tiny_model, objective, [0.0, -0.5])
    expected = objective.score(logits[0], None) + sum(
        torch.log(bar.probability_of_improvement(logits[1 + k], t)) for k, t in enumerate([0.0, -0.5]))
    assert torch.allclose(acq.score_outputs(logits, torch.zeros(3, 5, 1)), expected, atol=1e-5)
    alone = FeasibilityWeighted(tiny_model, None, [0.0, -0.5]).score_outputs(logits, torch.zeros(3, 5, 1))
    assert torch.allclose(alone, expected - objective.score(logits[0], None), atol=1e-5)


def test_ehvi_needs_two_or_three_objectives(tiny_model):
    with pytest.raises(ValueError, match="2-3 objectives"):
        LogExpectedHypervolumeImprovement(tiny_model, _measured(np.random.RandomState(0).rand(5, 4))[0], seed=0)


def test_improvement_is_measured_in_the_objectives_own_units():
    rng = np.random.RandomState(0)
    raw = np.stack([rng.lognormal(0, 1, 40), -rng.lognormal(0, 1, 40)], 1)  # skewed: the default transform warps
    measured, transforms = _measured(raw, ValueTransformConfig())
    assert np.allclose(measured.values, (raw - raw.min(0)) / np.ptp(raw, 0))
    front = measured.values[pareto_ranks(raw) == 0]  # the reference: the front's nadir less a tenth of its range
    assert np.allclose(measured.reference, front.min(0) - 0.1 * np.ptp(front, 0))
    model_scale = torch.as_tensor(np.stack([t.transform(raw[:, k]) for k, t in enumerate(transforms)], 1))
    # every value at or above the reference exactly; below it (where nothing counts) at the reference
    expected = np.maximum(measured.values, measured.reference)
    assert torch.allclose(measured(model_scale), torch.as_tensor(expected), atol=1e-9)
    # far below the observed values (where the inverse grows exponentially): finite, at the reference, and a
    # finite gradient
    far = torch.tensor([[-1e3, -40.0]], dtype=torch.float64, requires_grad=True)
    out = measured(far)
    assert torch.isfinite(out).all() and torch.allclose(out, torch.as_tensor(measured.reference)[None], atol=1e-6)
    out.sum().backward()
    assert torch.isfinite(far.grad).all()
