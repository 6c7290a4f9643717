"""metabo.selection: several models for one study, chosen between by the prequential likelihood of its own
observations (TNPSampler with a list of models: tests/sampler/test_with_related.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import metabo.selection as selection_mod
from conftest import bowl
from metabo.context import Context, join
from metabo.selection import ModelSelection, prequential_log_likelihoods


def _own(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.RandomState(seed).rand(n, 2)
    y = -np.array([bowl(*r) for r in x])
    return x, (y - y.mean()) / y.std()


def _related(n: int = 12) -> Context:
    x = np.random.RandomState(1).rand(n, 2)
    return Context(x, -np.array([bowl(*r, shift=0.1) for r in x]), np.repeat([1, 2], n // 2))


def confident_wrong(model):
    """A copy of ``model`` whose predictions put almost all their mass on the lowest bucket."""
    wrong = copy.deepcopy(model)
    with torch.no_grad():
        last = list(wrong.head.parameters())[-1]
        last.zero_()
        last[0] = 30.0
    return wrong


@pytest.mark.parametrize("with_related", [False, True])
def test_each_observation_is_scored_given_the_observations_before_it(multitask_model, with_related):
    x, y = _own(6)
    related = _related() if with_related else None
    scores = prequential_log_likelihoods(multitask_model, related, x, y, [0, 3, 5])
    for row, score in zip([0, 3, 5], scores):
        context = join(related, x[:row], y[:row])
        xc, yc, task = context.tensors()
        with torch.no_grad():
            cache = multitask_model.encode_context(xc, yc, ctx_task=task)
            logits = multitask_model.predict_logits(cache, torch.as_tensor(x[row:row + 1], dtype=torch.float32)[None])
        expected = multitask_model.bar.log_prob(logits[0, 0].double(), torch.tensor(y[row], dtype=torch.float64))
        assert score == pytest.approx(float(expected), abs=1e-4)


def test_the_model_that_predicts_the_study_better_is_chosen(multitask_model):
    x, y = _own(8)
    wrong = confident_wrong(multitask_model)
    for models in ([wrong, multitask_model], [multitask_model, wrong]):
        selection = ModelSelection(models)
        totals = selection.totals(_related(), x, y)
        assert totals[models.index(multitask_model)] > totals[models.index(wrong)]
        assert selection.choose(_related(), x, y) is multitask_model
    # before any observation, the first model
    assert ModelSelection([wrong, multitask_model]).choose(_related(), x[:0], y[:0]) is wrong


def test_each_observation_is_scored_once_per_model(multitask_model, monkeypatch):
    calls = []
    real = selection_mod.prequential_log_likelihoods
    monkeypatch.setattr(selection_mod, "prequential_log_likelihoods",
                        lambda model, related, x, y, rows: calls.append(list(rows)) or real(model, related, x, y, rows))
    selection = ModelSelection([multitask_model, confident_wrong(multitask_model)])
    x, y = _own(7)
    first = selection.totals(None, x[:5], y[:5])
    assert calls == [[0, 1, 2, 3, 4]] * 2
    calls.clear()
    second = selection.totals(None, x, y)
    assert calls == [[5, 6]] * 2  # only the new observations
    assert second[0] == pytest.approx(first[0] + real(multitask_model, None, x, y, [5, 6]).sum())


def test_selection_needs_two_models(multitask_model):
    with pytest.raises(ValueError, match="at least two"):
        ModelSelection([multitask_model])
