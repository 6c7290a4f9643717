"""Acquisition functions: each scores known bar distributions exactly, and ``make_acquisition`` picks them."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import tiny_config
from metabo.acquisition import (ACQUISITION_KINDS, Acquisition, LearnedAcquisition, LogExpectedImprovement,
                                LogProbabilityOfImprovement, PredictedMean, UpperConfidenceBound, make_acquisition)
from metabo.model import TNPModel
from metabo.model.io import with_task_slots

OFF = -1e4  # a logit whose bucket gets exactly zero probability in float32
# Four buckets of width 1 on [-2, 2]: two tails and the inner buckets [-1, 0] and [0, 1].
POINT = [OFF, OFF, 0.0, OFF]  # uniform on [0, 1]: mean 1/2, variance 1/12
SPLIT = [OFF, 0.0, 0.0, OFF]  # uniform on [-1, 1]: mean 0, variance 1/3


@pytest.fixture(scope="module")
def model() -> TNPModel:
    torch.manual_seed(0)
    m = TNPModel(tiny_config(n_buckets=4), torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


@pytest.fixture(scope="module")
def nap_model(tiny_model) -> TNPModel:
    m = with_task_slots(tiny_model, 8, acquisition_head=True).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def _logits(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def _features(model: TNPModel, q: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    cache = model.encode_context(torch.rand(1, 4, 2, generator=g), torch.randn(1, 4, generator=g))
    return model.candidate_features(cache, torch.rand(1, q, 2, generator=g))


def _scores(acquisition: Acquisition) -> list[float]:
    return acquisition.score(_logits(POINT, SPLIT), torch.zeros(1, 2, 1)).tolist()


def test_predicted_mean(model):
    assert _scores(PredictedMean(model)) == pytest.approx([0.5, 0.0], abs=1e-6)


@pytest.mark.parametrize("beta", [0.0, 2.0, 3.0])
def test_upper_confidence_bound(model, beta):
    expected = [0.5 + beta * math.sqrt(1 / 12), beta * math.sqrt(1 / 3)]
    assert _scores(UpperConfidenceBound(model, beta)) == pytest.approx(expected, abs=1e-5)
    assert UpperConfidenceBound(model).beta == 2.0


@pytest.mark.parametrize("best, expected", [
    (0.0, [0.5, 0.25]),  # E[max(y, 0)]: the whole of [0, 1]; half the mass of [-1, 1]
    (0.5, [0.125, 0.0625]),  # (1 - best)^2 / 2 within the bucket, times its mass
    (-0.5, [1.0, 0.5 * 0.125 + 0.5 * 1.0]),
])
def test_log_expected_improvement(model, best, expected):
    acquisition = LogExpectedImprovement(model, best)
    assert acquisition.best == best
    assert _scores(acquisition) == pytest.approx([math.log(e) for e in expected], abs=1e-5)


@pytest.mark.parametrize("best, expected", [(0.5, [0.5, 0.25]), (-0.5, [1.0, 0.75]), (0.0, [1.0, 0.5])])
def test_log_probability_of_improvement(model, best, expected):
    assert _scores(LogProbabilityOfImprovement(model, best)) == pytest.approx([math.log(e) for e in expected],
                                                                              abs=1e-5)


def test_log_probability_of_improvement_stays_finite_without_mass_above(model):
    scores = _scores(LogProbabilityOfImprovement(model, 1.5))
    assert all(math.isfinite(s) and s < -80 for s in scores)


def test_improvement_scores_rank_more_mass_above_the_incumbent_higher(model):
    above = _logits([OFF, OFF, OFF, 0.0])  # the upper tail: everything above 1
    for acquisition in (LogExpectedImprovement(model, 1.0), LogProbabilityOfImprovement(model, 1.0),
                        UpperConfidenceBound(model), PredictedMean(model)):
        assert float(acquisition.score(above, None)) > max(_scores(acquisition)), type(acquisition).__name__


@pytest.mark.parametrize("acquisition", [PredictedMean, UpperConfidenceBound,
                                         lambda m: LogExpectedImprovement(m, 0.3),
                                         lambda m: LogProbabilityOfImprovement(m, 0.3)])
def test_call_scores_the_heads_logits(model, acquisition):
    acquisition = acquisition(model)
    features = _features(model)
    scores, logits = acquisition(features)
    expected_logits = model.head(features)[0]
    assert scores.shape == (5,) and logits.shape == (5, 4)
    torch.testing.assert_close(logits, expected_logits)
    torch.testing.assert_close(scores, acquisition.score(expected_logits, features))


def test_learned_acquisition_reads_the_features_and_the_budget_fraction(nap_model, tiny_model):
    features = _features(nap_model, q=6)
    early, late = LearnedAcquisition(nap_model, 0.0), LearnedAcquisition(nap_model, 1.0)
    scores, logits = early(features)
    assert scores.shape == (6,) and logits.shape == (6, nap_model.cfg.n_buckets)
    torch.testing.assert_close(scores, nap_model.acquisition_scores(features, 0.0)[0])
    assert not torch.allclose(scores, late(features)[0])
    with pytest.raises(ValueError, match="no learned acquisition head"):
        LearnedAcquisition(tiny_model, 0.5)


@pytest.mark.parametrize("kind, cls", [("ei", LogExpectedImprovement), ("pi", LogProbabilityOfImprovement),
                                       ("ucb", UpperConfidenceBound)])
def test_make_acquisition(model, kind, cls):
    acquisition = make_acquisition(kind, model, 0.25)
    assert type(acquisition) is cls and acquisition.model is model
    assert getattr(acquisition, "best", 0.25) == 0.25
    # before the study's first observation there is no incumbent: the predicted mean
    assert type(make_acquisition(kind, model, None)) is PredictedMean


def test_make_acquisition_learned_and_unknown(model, nap_model):
    assert set(ACQUISITION_KINDS) == {"ei", "pi", "ucb", "nap"}
    learned = make_acquisition("nap", nap_model, None, budget_fraction=0.4)
    assert type(learned) is LearnedAcquisition and learned.budget_fraction == 0.4
    assert type(make_acquisition("nap", nap_model, 1.0)) is LearnedAcquisition
    with pytest.raises(ValueError, match="no learned acquisition head"):
        make_acquisition("nap", model, 1.0)
    with pytest.raises(ValueError, match="unknown acquisition"):
        make_acquisition("qei", model, 1.0)
