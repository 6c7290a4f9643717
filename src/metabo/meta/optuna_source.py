"""Past studies from Optuna: a ``Study`` object, or every study of a storage URL selected by name and signature.

Only ``COMPLETE`` trials with a finite value are kept. A study's search space is the union of its trials'
distributions; where trials disagree about one parameter (dynamic ranges) the ranges are widened and
categorical choices merged, and a parameter whose kind changes between trials is dropped from the rows that
disagree with the first kind seen.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from pathlib import Path
from typing import Any, Mapping

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from metabo.meta.signature import MatchMode, matches, space_signature
from metabo.meta.study import MetaDataError, PastStudy


def merge_distributions(a: BaseDistribution, b: BaseDistribution) -> BaseDistribution | None:
    """The smallest distribution covering both, or ``None`` when their kinds (or log scales) differ."""
    if isinstance(a, CategoricalDistribution) and isinstance(b, CategoricalDistribution):
        return a if a == b else CategoricalDistribution(tuple(dict.fromkeys((*a.choices, *b.choices))))
    if type(a) is not type(b) or a.log != b.log:  # type: ignore[attr-defined]
        return None
    if a == b:
        return a
    low, high = min(a.low, b.low), max(a.high, b.high)  # type: ignore[attr-defined]
    if isinstance(a, IntDistribution):
        step = a.step if a.step == b.step and (high - low) % a.step == 0 else 1  # type: ignore[attr-defined]
        return IntDistribution(low, high, log=a.log, step=step)
    step = a.step if a.step == b.step else None  # type: ignore[attr-defined]
    if step is not None and not math.isclose(round((high - low) / step) * step, high - low):
        step = None
    return FloatDistribution(low, high, log=a.log, step=step)


def from_study(study: optuna.Study, source: str | None = None, objective: int | None = None) -> PastStudy:
    """A ``PastStudy`` from an Optuna study (COMPLETE trials with finite values only); for a study with several
    objectives, the one at position ``objective``.

    Raises:
        MetaDataError: the study is multi-objective and no ``objective`` is given.
    """
    label = source or f"optuna:{study.study_name}"
    if len(study.directions) != 1 and objective is None:
        raise MetaDataError(f"study {study.study_name!r} ({label}) is multi-objective; only single-objective "
                            "studies can join the corpus")
    k = 0 if objective is None else objective
    space: dict[str, BaseDistribution] = {}
    observations: list[tuple[dict[str, Any], float]] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        value = trial.values[k] if trial.values is not None else None
        if value is None or not math.isfinite(value):
            continue
        params: dict[str, Any] = {}
        for name, dist in trial.distributions.items():
            if name not in space:
                space[name] = dist
            else:
                merged = merge_distributions(space[name], dist)
                if merged is None:  # the parameter changed kind: keep the first kind, skip this value
                    continue
                space[name] = merged
            params[name] = trial.params[name]
        observations.append((params, float(value)))
    direction = "maximize" if study.directions[k] == optuna.study.StudyDirection.MAXIMIZE else "minimize"
    name = study.study_name if objective is None else f"{study.study_name}[{objective}]"
    return PastStudy(name, label, space, observations, direction, objective)


def study_objectives(study: optuna.Study, source: str | None = None) -> list[PastStudy]:
    """``from_study`` of a single-objective study, or one entry per objective of a study with several."""
    if len(study.directions) == 1:
        return [from_study(study, source)]
    return [from_study(study, source, k) for k in range(len(study.directions))]


def open_storage(storage: str | BaseStorage) -> BaseStorage:
    """An Optuna storage from a URL (or the storage itself); a SQLite URL must name an existing file.

    Raises:
        MetaDataError: the URL cannot be opened (unknown scheme, missing file, unreachable server).
    """
    if isinstance(storage, BaseStorage):
        return storage
    url = str(storage)
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        # Optuna would silently create an empty database: a typo must not look like an empty corpus.
        if path and path != ":memory:" and not Path(path).is_file():
            raise MetaDataError(f"Optuna storage {url!r}: no such SQLite file {path!r}")
    try:
        return optuna.storages.get_storage(url)
    except Exception as exc:  # sqlalchemy raises many types for bad URLs; all mean "cannot open"
        raise MetaDataError(f"cannot open Optuna storage {url!r}: {type(exc).__name__}: {exc}") from exc


def from_storage(storage: str | BaseStorage, pattern: str | None = None,
                 target_space: Mapping[str, BaseDistribution] | None = None,
                 match: MatchMode | None = None, multi_objective: bool = False) -> list[PastStudy]:
    """Every study of ``storage`` whose name matches the glob ``pattern`` (default ``*``) and, with ``match``,
    whose signature matches ``target_space`` (``"full"``: same parameter names and kinds; ``"partial"``: at
    least one shared name with the same kind). Studies with no usable trial are skipped with a warning, and so
    are multi-objective studies unless ``multi_objective``: then each of their objectives is an entry of its own
    (``PastStudy.objective``).

    Raises:
        MetaDataError: unknown storage, or no study left after the name and signature filters.
    """
    label = _label(storage)
    if match is not None and target_space is None:
        raise ValueError("selecting studies by signature (match=...) needs a target_space")
    opened = open_storage(storage)
    pattern = pattern or "*"
    selected = _selected_names(opened, pattern, label)
    out: list[PastStudy] = []
    for name in selected:
        study = optuna.load_study(study_name=name, storage=opened)
        if len(study.directions) != 1 and not multi_objective:
            warnings.warn(f"metabo.meta: skipping multi-objective study {name!r} in {label}", stacklevel=2)
            continue
        for past in study_objectives(study, source=str(label)):
            if not past.observations:
                warnings.warn(f"metabo.meta: skipping study {past.name!r} in {label}: no COMPLETE trial with a "
                              "finite value", stacklevel=2)
                continue
            if match is not None and not matches(past.search_space, target_space or {}, match):
                continue
            out.append(past)
    if not out:
        how = {"full": "fully", "partial": "partially"}.get(match or "", "")
        wanted = f" whose search space {how} matches {space_signature(target_space or {})}" if match else ""
        raise _none_usable(label, pattern, selected, wanted)
    return out


def check_storage(storage: str | BaseStorage, pattern: str | None = None) -> None:
    """Raise the ``MetaDataError`` that ``from_storage(storage, pattern)`` would, without loading every study:
    the storage cannot be opened, no study name matches ``pattern``, or no matching study is usable (one with a
    COMPLETE trial of finite value; a multi-objective one counts, as ``RelatedStudies`` reads each objective).
    Stops at the first usable study."""
    label = _label(storage)
    opened = open_storage(storage)
    pattern = pattern or "*"
    selected = _selected_names(opened, pattern, label)
    for name in selected:
        study = optuna.load_study(study_name=name, storage=opened)
        if any(entry.observations for entry in study_objectives(study)):
            return
    raise _none_usable(label, pattern, selected, " (with a COMPLETE trial of finite value)")


def _label(storage: str | BaseStorage) -> str:
    return storage if isinstance(storage, str) else type(storage).__name__


def _selected_names(opened: BaseStorage, pattern: str, label: str) -> list[str]:
    """The names of the studies in ``opened`` that match the glob ``pattern``; an error when none does."""
    names = [s.study_name for s in opened.get_all_studies()]
    selected = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    if not selected:
        listing = ", ".join(repr(n) for n in names[:20]) or "none"
        raise MetaDataError(f"Optuna storage {label!r}: no study matches the pattern {pattern!r} "
                            f"(studies there: {listing})")
    return selected


def _none_usable(label: str, pattern: str, selected: list[str], wanted: str = "") -> MetaDataError:
    return MetaDataError(f"Optuna storage {label!r}: none of the studies matching {pattern!r} "
                         f"({', '.join(selected[:20])}) is usable{wanted}")
