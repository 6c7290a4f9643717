"""The meta-training corpus: random configurations of YAHPO Gym ``train`` instances, evaluated by the
surrogates of ``metabo.meta.yahpo``.

Each instance becomes one ``PastStudy`` (``yahpo/<scenario>/<instance>``, minimised, the surrogate's flat
search space, which is also the benchmark problem's). Configurations are drawn uniformly in the encoded unit
cube (so log-scale parameters are log-uniform and every integer and choice is equally likely), with a generator
seeded by ``seed`` and the instance, so a corpus is reproducible and instances do not share configurations.

Splits (``splits.json``): ``train`` only by default; ``validation`` only when asked for explicitly;
``reserved`` instances are refused whatever is asked (``PermissionError``): they are kept for independent
evaluation and must never reach meta-training.
"""

from __future__ import annotations

import zlib
from typing import Iterable, Sequence

import numpy as np

from metabo.meta import yahpo
from metabo.meta.study import MetaDataError, PastStudy
from metabo.space import SearchSpaceEncoder

ALLOWED_SPLITS = ("train", "validation")


def _check(splits: Iterable[str]) -> tuple[str, ...]:
    splits = tuple(dict.fromkeys(splits))
    if "reserved" in splits:
        raise PermissionError("YAHPO 'reserved' instances are kept for independent evaluation and never join a "
                              "meta-learning corpus")
    unknown = [s for s in splits if s not in ALLOWED_SPLITS]
    if unknown:
        raise ValueError(f"unknown YAHPO split(s) {unknown}; choose from {', '.join(ALLOWED_SPLITS)}")
    if not splits:
        raise ValueError("no YAHPO split selected")
    return splits


def check_yahpo_corpus(scenario: str, splits: Sequence[str] = ("train",)) -> None:
    """Raise, before anything is evaluated, where ``yahpo_studies(scenario, splits=splits)`` would fail or find
    no study.

    Raises:
        KeyError: unknown scenario. PermissionError: a reserved split. ValueError: an unknown split.
        FileNotFoundError: no YAHPO data folder. MetaDataError: the scenario cannot be evaluated here (no
        surrogate file, no ``onnxruntime``) or has no instance in ``splits``.
    """
    yahpo.check_scenario(scenario)
    splits = _check(splits)
    yahpo.data_dir()
    reason = yahpo.unavailable_reason(scenario)
    if reason is not None:
        raise MetaDataError(f"YAHPO scenario {scenario!r} cannot be evaluated: {reason}")
    if not yahpo.instances(scenario, splits):
        raise MetaDataError(f"YAHPO scenario {scenario!r} has no {' or '.join(splits)} instance (splits.json)")


def yahpo_studies(scenario: str, n_configs: int = 100, splits: Sequence[str] = ("train",),
                  instances: Sequence[str] | None = None, seed: int = 0) -> list[PastStudy]:
    """One ``PastStudy`` per instance of ``scenario`` in ``splits`` with ``n_configs`` random evaluations.

    Args:
        scenario: a scenario of ``metabo.meta.yahpo.SCENARIOS`` (e.g. ``lcbench``).
        n_configs: random configurations per instance.
        splits: ``("train",)`` by default; add ``"validation"`` explicitly to include those.
        instances: a subset of the selected splits' instances (default: all of them).
        seed: base seed of the configuration draws.

    Raises:
        PermissionError: a reserved instance or split was asked for, or an instance outside ``splits``.
        FileNotFoundError: no YAHPO data folder. ``KeyError``: unknown scenario.
    """
    yahpo.check_scenario(scenario)
    if n_configs < 1:
        raise ValueError(f"n_configs must be at least 1, not {n_configs}")
    splits = _check(splits)
    pool = yahpo.instances(scenario, splits)
    if instances is None:
        chosen = pool
    else:
        chosen = [str(i) for i in instances]
        known = set(yahpo.instances(scenario, yahpo.SPLITS))
        for inst in chosen:
            if inst not in known:
                raise KeyError(f"{inst!r} is not an instance of YAHPO scenario {scenario!r} in splits.json")
            split = yahpo.split_of(scenario, inst)
            if split == "reserved":
                raise PermissionError(f"yahpo/{scenario}/{inst} is a reserved instance (splits.json): kept for "
                                      "independent evaluation, never part of a corpus")
            if split not in splits:
                raise PermissionError(f"yahpo/{scenario}/{inst} is a {split!r} instance; selected splits are "
                                      f"{', '.join(splits)}")
    out: list[PastStudy] = []
    for inst in chosen:
        problem = yahpo.YahpoSurrogate(scenario, inst)
        space = problem.search_space()
        encoder = SearchSpaceEncoder(space)
        rng = np.random.default_rng([seed, zlib.crc32(f"{scenario}/{inst}".encode())])
        configs = [encoder.decode(u) for u in rng.random((n_configs, encoder.n_dims))]
        values = problem.evaluate_many(configs)
        out.append(PastStudy(problem.name, f"yahpo:{scenario}", space,
                             [(c, float(v)) for c, v in zip(configs, values)], "minimize"))
    return out
