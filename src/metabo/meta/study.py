"""The unit of the meta-learning corpus: one past study as plain data (``PastStudy``), and the corpus errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from optuna.distributions import BaseDistribution

DIRECTIONS = ("minimize", "maximize")


class MetaDataError(ValueError):
    """Malformed or unusable corpus input: the message names the file or storage, and the row and column."""


@dataclass
class PastStudy:
    """One finished study, detached from wherever it came from.

    Attributes:
        name: a label, unique within a corpus where possible (an Optuna study name, a file stem,
            ``yahpo/<scenario>/<instance>``).
        source: where it was read from (a storage URL, a file path, ``yahpo:<scenario>``, ``optuna:<name>``).
        search_space: parameter name -> Optuna distribution, covering every parameter any observation holds.
        observations: ``(params, value)`` pairs; ``params`` may lack some parameters of ``search_space``
            (conditional or dynamic spaces), ``value`` is always finite.
        direction: ``"minimize"`` or ``"maximize"``.
        objective: for one objective of a study with several (its others are other entries), that objective's
            position; ``None`` for a single-objective study.
    """

    name: str
    source: str
    search_space: dict[str, BaseDistribution]
    observations: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    direction: str = "minimize"
    objective: int | None = None

    def __post_init__(self) -> None:
        self.direction = str(self.direction).strip().lower()
        if self.direction not in DIRECTIONS:
            raise MetaDataError(f"study {self.name!r} ({self.source}): direction must be one of "
                                f"{', '.join(DIRECTIONS)}, not {self.direction!r}")
        for i, (params, value) in enumerate(self.observations):
            if not math.isfinite(value):
                raise MetaDataError(f"study {self.name!r} ({self.source}): observation {i} has a non-finite value")
            unknown = set(params) - set(self.search_space)
            if unknown:
                raise MetaDataError(f"study {self.name!r} ({self.source}): observation {i} has parameters "
                                    f"{sorted(unknown)} that are not in its search space")

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def maximize(self) -> bool:
        """Whether larger values are better."""
        return self.direction == "maximize"

    @property
    def values(self) -> np.ndarray:
        """Objective values (raw, in the study's own direction), shape (n,)."""
        return np.array([v for _, v in self.observations], dtype=np.float64)

    @property
    def params(self) -> list[dict[str, Any]]:
        """Parameter dicts of the observations, in order."""
        return [p for p, _ in self.observations]

    def best(self, k: int = 1) -> list[tuple[dict[str, Any], float]]:
        """The ``k`` best observations, best first (stable: ties keep their order)."""
        order = np.argsort(-self.values if self.maximize else self.values, kind="stable")
        return [self.observations[i] for i in order[:k]]

    def summary(self) -> Mapping[str, Any]:
        """A small dict for logs and reports: name, source, size, direction, parameters and best value."""
        best = self.best(1)
        return {"name": self.name, "source": self.source, "n": len(self), "direction": self.direction,
                "params": sorted(self.search_space), "best": best[0][1] if best else None}
