"""The YAHPO Gym benchmark family (``yahpo/<scenario>/<instance>``).

The surrogates, the data folder, ``splits.json`` and the search spaces belong to the library module
``metabo.meta.yahpo`` (see its docstring for the objectives and where the data is looked for); this module only
makes its instances benchmark problems: the ``Problem`` contract attributes (``family``, ``known_optimum``,
``random_median_points``, ``sort_key``), name parsing and the family listing the registry uses. The data
helpers are re-exported here so that ``metabo.bench.problems.yahpo.data_dir()`` and the like keep working.

``splits.json`` decides which instances may be used: selection lists ``validation`` instances by default,
``train`` instances only when asked for (meta-training), ``reserved`` instances only with ``allow_reserved``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from metabo.bench.problems.base import CHEAP_RANDOM_MEDIAN_POINTS
from metabo.meta.yahpo import (
    DATA_ENV,
    DEFAULT_SPLITS,
    NAME_PREFIX,
    SCENARIOS,
    SPLITS,
    Scenario,
    Surrogate,
    YahpoSurrogate,
    available,
    candidate_data_dirs,
    check_instance,
    check_splits,
    data_dir,
    instances,
    set_data_dir,
    split_of,
    surrogate,
    unavailable_reason,
)

__all__ = [
    "DATA_ENV", "DEFAULT_SPLITS", "FAMILY", "SCENARIOS", "SPLITS", "Scenario", "Surrogate", "YahpoProblem",
    "YahpoSurrogate", "available", "candidate_data_dirs", "check_splits", "data_dir", "instances", "parse_name",
    "problems", "set_data_dir", "split_of", "surrogate", "unavailable_reason",
]

FAMILY = NAME_PREFIX


@dataclass(frozen=True)
class YahpoProblem(YahpoSurrogate):
    """One YAHPO instance at full fidelity as a benchmark problem (see ``metabo.meta.yahpo``)."""

    family = FAMILY
    known_optimum = None
    random_median_points = CHEAP_RANDOM_MEDIAN_POINTS  # a batch of 10,000 surrogate calls takes about a second

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.scenario, self.instance)


def parse_name(name: str, allow_reserved: bool = False) -> YahpoProblem:
    """The problem called ``yahpo/<scenario>/<instance>``; reserved instances need ``allow_reserved``."""
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != FAMILY:
        raise KeyError(f"unknown YAHPO problem name {name!r}; expected e.g. 'yahpo/lcbench/7593'")
    _, scenario, instance = parts
    check_instance(scenario, instance, allow_reserved)
    return YahpoProblem(scenario, instance)


def problems(splits: Iterable[str] = DEFAULT_SPLITS, allow_reserved: bool = False,
             scenarios: Iterable[str] | None = None) -> list[YahpoProblem]:
    """Every instance of the given splits (default: validation only) of the supported scenarios."""
    splits = check_splits(splits, allow_reserved)
    names = list(scenarios) if scenarios is not None else list(SCENARIOS)
    return [YahpoProblem(s, i) for s in names for i in instances(s, splits)]
