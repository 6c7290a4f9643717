"""Small synthetic past studies for the training tests (a shifted bowl on two floats)."""

from __future__ import annotations

import numpy as np
from optuna.distributions import FloatDistribution

from metabo.meta import PastStudy

SPACE = {"a": FloatDistribution(0.0, 1.0), "b": FloatDistribution(0.0, 1.0)}


def past_studies(n: int = 5, points: int = 20, seed: int = 0) -> list[PastStudy]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        obs = []
        for _ in range(points):
            p = {"a": float(rng.random()), "b": float(rng.random())}
            obs.append((p, (p["a"] - 0.3) ** 2 + (p["b"] - 0.7) ** 2 + 0.1 * k + 0.01 * rng.standard_normal()))
        out.append(PastStudy(f"past{k}", "test", SPACE, obs))
    return out
