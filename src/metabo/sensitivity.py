"""Which parameters matter, as the model sees them: for spaces wider than the model's input.

A space wider than the model is searched one ``Subspace`` at a time. Rather than drawing each subspace's
parameters uniformly, the sampler draws them in proportion to how strongly the model's prediction responds to
them: after a suggestion it records, for every parameter of that subspace, the mean absolute gradient of the
predicted mean with respect to the parameter's inputs at the study's own points (``prediction_sensitivity``);
the next subspace favours the parameters with the largest records, and a parameter never measured yet counts as
much as the most sensitive one, so every parameter is tried (``subspace_weights``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from metabo.model.transformer import ContextCache, TNPModel

FLOOR = 0.05  # every measured parameter keeps at least this share of the largest weight


def prediction_sensitivity(model: TNPModel, cache: ContextCache, x: np.ndarray) -> np.ndarray:
    """Mean absolute gradient (d,) of the predicted mean (summed over the cache's outputs) with respect to each
    input coordinate, over the points ``x`` (n, d)."""
    if not len(x):
        return np.zeros(np.shape(x)[1])
    points = torch.as_tensor(x, dtype=torch.float32)[None].expand(cache.x.shape[0], -1, -1).clone()
    points.requires_grad_(True)
    mean = model.bar.mean(model.predict_logits(cache, points)).sum()
    (grad,) = torch.autograd.grad(mean, points)
    return grad.abs().mean(dim=(0, 1)).numpy().astype(np.float64)


def parameter_sensitivity(coordinate: np.ndarray, widths: Sequence[tuple[str, int, int]]) -> dict[str, float]:
    """Per parameter: the sum of ``coordinate`` sensitivities over its inputs (``(name, first, width)`` in the
    same coordinates)."""
    return {name: float(coordinate[start:start + width].sum()) for name, start, width in widths}


def subspace_weights(measured: Mapping[str, float], names: Sequence[str]) -> dict[str, float] | None:
    """Sampling weights for ``names`` from the ``measured`` sensitivities; ``None`` (uniform) before any."""
    known = [measured[n] for n in names if n in measured]
    if not known or max(known) <= 0:
        return None
    top = max(known)
    return {n: max(measured.get(n, top), FLOOR * top) for n in names}
