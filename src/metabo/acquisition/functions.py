"""Acquisition functions as objects over the model's predictions at candidates.

EI, PI and UCB are computed exactly from the bar distribution (EI in log space, so it stays informative far from
the incumbent). The learned acquisition (NAP, ``metabo.train.nap``) scores a candidate from its final
representation and the fraction of the budget used. Every ``Acquisition`` maps candidate features (B, Q, d_model)
of one batch (1, Q, d_model) to scores (Q,), larger is better, and returns the predictive logits (Q, K) beside them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from metabo.model.transformer import TNPModel

AcquisitionKind = Literal["ei", "pi", "ucb", "nap"]
ACQUISITION_KINDS: tuple[str, ...] = ("ei", "pi", "ucb", "nap")


class Acquisition(ABC):
    """Scores candidates from their features; ``__call__`` returns ``(scores, logits)``.

    Features (B, Q, d_model) hold one row per model output (``metabo.outcomes``: the objectives, then the
    constraints), each read against its own context; row 0 is the first objective, whose logits are returned.
    """

    def __init__(self, model: TNPModel) -> None:
        self.model = model

    def __call__(self, features: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.model.head(features)
        return self.score_outputs(logits, features), logits[0]

    @abstractmethod
    def score_outputs(self, logits: Tensor, features: Tensor) -> Tensor:
        """Scores (Q,) from every output's logits (B, Q, K) and features (B, Q, d_model)."""


class ObjectiveAcquisition(Acquisition):
    """An acquisition of the first objective alone (row 0)."""

    def score_outputs(self, logits: Tensor, features: Tensor) -> Tensor:
        return self.score(logits[0], features[:1])

    @abstractmethod
    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        """Scores (Q,) from the candidates' bucket logits (Q, K) and features (1, Q, d_model)."""


class LogExpectedImprovement(ObjectiveAcquisition):
    """log E[max(y - best, 0)] under the bar distribution (its per-bucket terms cached for ``best``)."""

    def __init__(self, model: TNPModel, best: float) -> None:
        super().__init__(model)
        self.best = best
        self._per_bucket = model.bar.improvement_per_bucket(best)

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        return self.model.bar.log_expected_improvement(logits, self.best, self._per_bucket)


class LogProbabilityOfImprovement(ObjectiveAcquisition):
    """log P(y > best)."""

    def __init__(self, model: TNPModel, best: float) -> None:
        super().__init__(model)
        self.best = best

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        return torch.log(self.model.bar.probability_of_improvement(logits, self.best).clamp_min(1e-38))


class UpperConfidenceBound(ObjectiveAcquisition):
    """mean + beta * sd of the predictive distribution."""

    def __init__(self, model: TNPModel, beta: float = 2.0) -> None:
        super().__init__(model)
        self.beta = beta

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        return self.model.bar.upper_confidence_bound(logits, self.beta)


class PredictedMean(ObjectiveAcquisition):
    """The predicted mean: before the study's first observation there is no incumbent to improve on."""

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        return self.model.bar.mean(logits)


class LearnedAcquisition(ObjectiveAcquisition):
    """The model's learned acquisition head (NAP), given the fraction of the budget used (t/T in [0, 1])."""

    def __init__(self, model: TNPModel, budget_fraction: float) -> None:
        if model.acq_head is None:
            raise ValueError("this model has no learned acquisition head (train one with `metabo nap`)")
        super().__init__(model)
        self.budget_fraction = budget_fraction

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        return self.model.acquisition_scores(features, self.budget_fraction)[0]


class FeasibilityWeighted(Acquisition):
    """log P(every constraint holds) + an objective's log-scale acquisition (constrained EI, as GPSampler's).

    Args:
        model: the model.
        objective: the acquisition of the objectives (log-scale), or ``None`` before any feasible trial: then the
            probability of feasibility alone is maximised.
        thresholds: (C,) each constraint output holds at or above its threshold; constraints are the last C rows.
    """

    def __init__(self, model: TNPModel, objective: Acquisition | None, thresholds: Sequence[float]) -> None:
        super().__init__(model)
        self.objective = objective
        self.thresholds = torch.as_tensor(np.asarray(thresholds, dtype=np.float32))

    def log_feasibility(self, logits: Tensor) -> Tensor:
        """(Q,) log P(every constraint holds), from the constraint rows of ``logits`` (B, Q, K)."""
        rows = logits[logits.shape[0] - len(self.thresholds):]
        p = self.model.bar.probability_of_improvement(rows, self.thresholds[:, None])
        return torch.log(p.clamp_min(1e-38)).sum(0)

    def score_outputs(self, logits: Tensor, features: Tensor) -> Tensor:
        log_feasible = self.log_feasibility(logits)
        if self.objective is None:
            return log_feasible
        return self.objective.score_outputs(logits, features) + log_feasible


def make_acquisition(kind: AcquisitionKind, model: TNPModel, best: float | None,
                     budget_fraction: float = 0.0) -> Acquisition:
    """The acquisition ``kind`` for a context whose best own value is ``best`` (``None`` before any)."""
    if kind == "nap":
        return LearnedAcquisition(model, budget_fraction)
    if kind not in ACQUISITION_KINDS:
        raise ValueError(f"unknown acquisition {kind!r}; choose from {', '.join(ACQUISITION_KINDS)}")
    if best is None:
        return PredictedMean(model)
    if kind == "ei":
        return LogExpectedImprovement(model, best)
    if kind == "pi":
        return LogProbabilityOfImprovement(model, best)
    return UpperConfidenceBound(model)
