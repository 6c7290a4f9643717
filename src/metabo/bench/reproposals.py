"""Re-proposed points of a run with a pruner: trials that come back to where an earlier trial was pruned.

Points are compared in the unit cube of the search space (``metabo.space.SearchSpaceEncoder``: numeric
parameters on their own linear or log scale, integers owning equal slices, categoricals one-hot) with the
max-norm. For every trial of a run, in order:

* ``near_pruned``: within ``NEAR_PRUNED`` (0.01) of an earlier ``PRUNED`` trial (an exact copy included);
* ``duplicate``: exactly an earlier trial's point (pruned or complete).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from optuna.distributions import BaseDistribution

from metabo.space import SearchSpaceEncoder

NEAR_PRUNED = 0.01  # max-norm distance in the unit cube


@dataclass(frozen=True)
class Reproposals:
    """Per trial (in run order): ``near_pruned`` and ``duplicate`` flags (see the module docstring)."""

    near_pruned: np.ndarray
    duplicate: np.ndarray

    def counts(self, n: int) -> tuple[int, int]:
        """(near-pruned trials, duplicate trials) among the first ``n``."""
        return int(self.near_pruned[:n].sum()), int(self.duplicate[:n].sum())


def find_reproposals(space: Mapping[str, BaseDistribution], params: Sequence[Mapping[str, Any]],
                     pruned: Sequence[bool], radius: float = NEAR_PRUNED) -> Reproposals:
    """Flag the trials of one run (``params`` and ``pruned`` in trial order) that re-propose an earlier pruned
    point (within ``radius``, max-norm in the unit cube) or repeat any earlier point exactly."""
    if len(params) != len(pruned):
        raise ValueError(f"{len(params)} parameter sets but {len(pruned)} pruned flags")
    n = len(params)
    near = np.zeros(n, dtype=bool)
    dup = np.zeros(n, dtype=bool)
    if n == 0:
        return Reproposals(near, dup)
    x = SearchSpaceEncoder(space).encode_many(list(params))
    was_pruned = np.asarray(pruned, dtype=bool)
    for i in range(1, n):
        gaps = np.abs(x[:i] - x[i]).max(axis=1) if x.shape[1] else np.zeros(i)
        dup[i] = bool(np.any(gaps == 0.0))
        near[i] = bool(np.any(gaps[was_pruned[:i]] <= radius))
    return Reproposals(near, dup)
