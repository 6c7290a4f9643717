"""Choosing among several models by how well each predicted the study's own observations.

Each observation is scored once per model, when it first appears: its log density under the model's predictive
distribution given the context as it stood before it (the related points, then the study's earlier observations
in trial order). The sum over a study's observations is the model's prequential log likelihood, the log marginal
likelihood of the study's data under that model, so the model with the largest sum is the one Bayesian model
selection would pick; a suggestion uses it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from metabo.context import Context, collate, join
from metabo.model.transformer import TNPModel


@torch.no_grad()
def prequential_log_likelihoods(model: TNPModel, related: Context | None, x_own: np.ndarray, y_own: np.ndarray,
                                rows: Sequence[int]) -> np.ndarray:
    """Log density of each observation ``rows`` of ``y_own`` given ``related`` and the observations before it.

    Args:
        model: the model that predicts.
        related: related studies' points (``metabo.context.related_points``), or ``None``.
        x_own: (n, d) the study's encoded observations, in trial order.
        y_own: (n,) their values on the model's scale.
        rows: the observations to score.
    """
    contexts = [join(related, x_own[:i], y_own[:i]) for i in rows]
    x, y, task, mask = collate(contexts, width=x_own.shape[1])
    cache = model.encode_context(x, y, mask, ctx_task=task if related is not None and len(related) else None)
    targets = torch.as_tensor(x_own[list(rows)], dtype=torch.float32)[:, None, :]
    logits = model.predict_logits(cache, targets)[:, 0]
    return model.bar.log_prob(logits.double(), torch.as_tensor(y_own[list(rows)], dtype=torch.float64)).numpy()


class ModelSelection:
    """Several models for one study; each suggestion takes the one with the largest prequential log likelihood
    of the study's observations (the first model while they are level, before any observation).

    Observations are keyed by their encoded point, so each is scored once per model across suggestions; the
    scores of earlier observations keep the value scale they were scored on (both models on the same one).

    Args:
        models: the candidate models, the preferred one first.
    """

    def __init__(self, models: Sequence[TNPModel]) -> None:
        if len(models) < 2:
            raise ValueError("model selection needs at least two models")
        self.models = list(models)
        self._scores: list[dict[bytes, float]] = [{} for _ in self.models]

    def totals(self, related: Context | None, x_own: np.ndarray, y_own: np.ndarray) -> np.ndarray:
        """(n_models,) each model's prequential log likelihood of the observations (scoring new ones first)."""
        x_own = np.ascontiguousarray(x_own, dtype=np.float64)
        keys = [row.tobytes() for row in x_own]
        new = list({k: i for i, k in enumerate(keys) if k not in self._scores[0]}.values())
        if new:
            for model, scores in zip(self.models, self._scores):
                for i, value in zip(new, prequential_log_likelihoods(model, related, x_own, y_own, new)):
                    scores[keys[i]] = float(value)
        return np.array([sum(scores[k] for k in keys) for scores in self._scores])

    def choose(self, related: Context | None, x_own: np.ndarray, y_own: np.ndarray) -> TNPModel:
        """The model to suggest with."""
        if not len(y_own):
            return self.models[0]
        return self.models[int(np.argmax(self.totals(related, x_own, y_own)))]
