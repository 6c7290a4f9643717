"""Acquisition functions as objects over the model's predictions at candidates.

EI, PI and UCB are computed exactly from the bar distribution (EI in log space, so it stays informative far from
the incumbent). The learned acquisition (NAP, ``metabo.train.nap``) scores a candidate from its final
representation and the fraction of the budget used. Every ``Acquisition`` maps candidate features (B, Q, d_model)
of one batch (1, Q, d_model) to scores (Q,), larger is better, and returns the predictive logits (Q, K) beside them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import torch
from torch import Tensor

from metabo.model.transformer import TNPModel

AcquisitionKind = Literal["ei", "pi", "ucb", "nap"]
ACQUISITION_KINDS: tuple[str, ...] = ("ei", "pi", "ucb", "nap")


class Acquisition(ABC):
    """Scores candidates from their features; ``__call__`` returns ``(scores, logits)``."""

    def __init__(self, model: TNPModel) -> None:
        self.model = model

    def __call__(self, features: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.model.head(features)[0]
        return self.score(logits, features), logits

    @abstractmethod
    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        """Scores (Q,) from the candidates' bucket logits (Q, K) and features (1, Q, d_model)."""


class LogExpectedImprovement(Acquisition):
    """log E[max(y - best, 0)] under the bar distribution (its per-bucket terms cached for ``best``)."""

    def __init__(self, model: TNPModel, best: float) -> None:
        super().__init__(model)
        self.best = best
        self._per_bucket = model.bar.improvement_per_bucket(best)

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        return self.model.bar.log_expected_improvement(logits, self.best, self._per_bucket)


class LogProbabilityOfImprovement(Acquisition):
    """log P(y > best)."""

    def __init__(self, model: TNPModel, best: float) -> None:
        super().__init__(model)
        self.best = best

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        return torch.log(self.model.bar.probability_of_improvement(logits, self.best).clamp_min(1e-38))


class UpperConfidenceBound(Acquisition):
    """mean + beta * sd of the predictive distribution."""

    def __init__(self, model: TNPModel, beta: float = 2.0) -> None:
        super().__init__(model)
        self.beta = beta

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        return self.model.bar.upper_confidence_bound(logits, self.beta)


class PredictedMean(Acquisition):
    """The predicted mean: before the study's first observation there is no incumbent to improve on."""

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        return self.model.bar.mean(logits)


class LearnedAcquisition(Acquisition):
    """The model's learned acquisition head (NAP), given the fraction of the budget used (t/T in [0, 1])."""

    def __init__(self, model: TNPModel, budget_fraction: float) -> None:
        if model.acq_head is None:
            raise ValueError("this model has no learned acquisition head (train one with `metabo nap`)")
        super().__init__(model)
        self.budget_fraction = budget_fraction

    def score(self, logits: Tensor, features: Tensor) -> Tensor:
        return self.model.acquisition_scores(features, self.budget_fraction)[0]


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
