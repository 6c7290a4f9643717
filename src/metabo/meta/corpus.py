"""``load_corpus``: many sources in, one list of ``PastStudy`` out.

A source is one of:

* a ``PastStudy`` (kept as is) or an ``optuna.Study``;
* an Optuna storage URL (anything with ``://``, e.g. ``sqlite:///past.db``), or a ``(url, pattern)`` pair:
  its studies whose names match the glob (default: the ``pattern`` argument, ``*``) and, with ``match``, whose
  search-space signature matches ``target_space``;
* a CSV/TSV/Parquet file path (``str`` or ``Path``);
* ``"yahpo:<scenario>"``: random evaluations of the scenario's ``train`` instances (``yahpo_n_configs`` each).

With a ``target_space``, file columns are parsed with its distributions, and studies that share no parameter
with it (or lose every row in alignment) are left out with a warning that gives the reason (``on_reject="raise"``
raises instead).

``check_sources`` raises up front, before any target space is known, where loading would fail or find no study
(a missing file, a storage that cannot be opened or has no matching study, an unknown YAHPO scenario, a study
without a finite value, no source at all), without the expensive part of loading.
"""

from __future__ import annotations

import warnings
from collections import abc
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence, Union

import optuna
from optuna.distributions import BaseDistribution

from metabo.meta.align import AlignmentError, OutOfRange, align
from metabo.meta.optuna_source import check_storage, from_storage, from_study, study_objectives
from metabo.meta.signature import MatchMode
from metabo.meta.study import MetaDataError, PastStudy
from metabo.meta.table_source import CSV_SUFFIXES, PARQUET_SUFFIXES, check_table, read_table
from metabo.meta.yahpo_source import check_yahpo_corpus, yahpo_studies
from metabo.normalise import ValueTransformConfig

_CHECK_ONLY = ValueTransformConfig(power=False)  # only whether a study aligns matters here

Source = Union[PastStudy, optuna.Study, str, Path, tuple[str, str]]
YAHPO_PREFIX = "yahpo:"


def _is_storage_pair(source: Any) -> bool:
    """A ``(url, pattern)`` pair, as opposed to a tuple of sources."""
    return (isinstance(source, tuple) and len(source) == 2 and all(isinstance(p, str) for p in source)
            and "://" in source[0])


SourceKind = Literal["past", "study", "storage", "yahpo", "table"]


def source_kind(source: Any) -> SourceKind:
    """What ``source`` is (see the module docstring); ``MetaDataError`` or ``TypeError`` for anything else."""
    if isinstance(source, PastStudy):
        return "past"
    if isinstance(source, optuna.Study):
        return "study"
    if isinstance(source, tuple):
        if not _is_storage_pair(source):
            raise MetaDataError(f"a storage source tuple is (url, pattern), not {source!r}")
        return "storage"
    if isinstance(source, str) and source.startswith(YAHPO_PREFIX):
        return "yahpo"
    if isinstance(source, str) and "://" in source:
        return "storage"
    if isinstance(source, (str, Path)):
        if Path(source).suffix.lower() in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
            return "table"
        raise MetaDataError(f"unknown corpus source {str(source)!r}: expected a storage URL (sqlite:///...), a "
                            ".csv/.tsv/.parquet file, 'yahpo:<scenario>', an optuna.Study or a PastStudy")
    raise TypeError(f"unsupported corpus source of type {type(source).__name__}: {source!r}")


def _storage(source: str | tuple[str, str], pattern: str | None) -> tuple[str, str | None]:
    """The URL and name pattern of a storage source (a pair's own pattern wins)."""
    return source if isinstance(source, tuple) else (source, pattern)


def load_source(source: Source, target_space: Mapping[str, BaseDistribution] | None = None, *,
                pattern: str | None = None, match: MatchMode | None = None, value_column: str = "value",
                direction: str | None = None, yahpo_n_configs: int = 100,
                yahpo_splits: Sequence[str] = ("train",), seed: int = 0, multi_objective: bool = False
                ) -> list[PastStudy]:
    """The past studies of one source (see the module docstring; arguments as in ``load_corpus``)."""
    kind = source_kind(source)
    if kind == "past":
        return [source]
    if kind == "study":
        return study_objectives(source) if multi_objective else [from_study(source)]
    if kind == "storage":
        return from_storage(*_storage(source, pattern), target_space, match, multi_objective)
    if kind == "yahpo":
        return yahpo_studies(source[len(YAHPO_PREFIX):], yahpo_n_configs, yahpo_splits, seed=seed)
    return [read_table(Path(source), value_column=value_column, direction=direction, target_space=target_space)]


def check_source(source: Source, *, pattern: str | None = None, value_column: str = "value",
                 direction: str | None = None, yahpo_splits: Sequence[str] = ("train",)) -> None:
    """Raise where ``load_source`` (same arguments) would fail or find no study for any target space, without
    loading what is expensive to load (every study of a storage, the YAHPO evaluations).

    Raises:
        FileNotFoundError: a missing table file or YAHPO data folder.
        MetaDataError (a ``ValueError``): an unknown kind of source, a storage that cannot be opened or holds no
            usable study matching the pattern, an unknown or unusable YAHPO scenario, an unreadable table, a
            study or table without a finite value.
        PermissionError: reserved YAHPO instances. TypeError: a source of an unsupported type.
    """
    kind = source_kind(source)
    if kind in ("past", "study"):
        entries = [source] if kind == "past" else study_objectives(source)
        if not any(entry.observations for entry in entries):
            raise MetaDataError(f"study {entries[0].name!r} ({entries[0].source}) has no observation with a finite "
                                "value")
    elif kind == "storage":
        check_storage(*_storage(source, pattern))
    elif kind == "yahpo":
        try:
            check_yahpo_corpus(source[len(YAHPO_PREFIX):], yahpo_splits)
        except KeyError as exc:  # an unknown scenario: a bad value here rather than a missing key
            raise MetaDataError(f"corpus source {source!r}: {exc.args[0]}") from None
    else:
        check_table(Path(source), value_column=value_column, direction=direction)


def check_sources(sources: Source | Iterable[Source], **options: Any) -> list[Source]:
    """The sources as a list (one source or many, as ``load_corpus`` takes them), after ``check_source`` on
    each (``options`` as there); ``MetaDataError`` when there are none."""
    listed = _source_list(sources)
    if not listed:
        raise MetaDataError("no corpus source given (the list of sources is empty)")
    for source in listed:
        check_source(source, **options)
    return listed


def _source_list(sources: Source | Iterable[Source]) -> list[Source]:
    """One source or an iterable of them, as a list (a ``(url, pattern)`` pair is one source; anything else
    that is not iterable is one source too, which ``source_kind`` then refuses)."""
    single = isinstance(sources, (PastStudy, optuna.Study, str, Path)) or not isinstance(sources, abc.Iterable)
    if single or _is_storage_pair(sources):
        return [sources]
    return list(sources)


def load_corpus(sources: Source | Iterable[Source], target_space: Mapping[str, BaseDistribution] | None = None, *,
                pattern: str | None = None, match: MatchMode | None = None, value_column: str = "value",
                direction: str | None = None, yahpo_n_configs: int = 100,
                yahpo_splits: Sequence[str] = ("train",), seed: int = 0, out_of_range: OutOfRange = "drop",
                on_reject: Literal["warn", "raise"] = "warn", multi_objective: bool = False) -> list[PastStudy]:
    """Past studies from every source, in source order.

    Args:
        sources: one source or a list of them (see the module docstring).
        target_space: the new study's space: parses file columns, selects storage studies with ``match``,
            and filters out studies that cannot be aligned to it.
        pattern: default glob for study names in storage URLs.
        match: ``"full"`` or ``"partial"`` signature selection of storage studies (needs ``target_space``).
        value_column, direction: for table files.
        yahpo_n_configs, yahpo_splits, seed: for ``yahpo:<scenario>`` sources (``train`` only by default).
        out_of_range: alignment rule used to decide whether a study keeps any row.
        on_reject: ``"warn"`` and skip a study that cannot be aligned, or ``"raise"`` its ``AlignmentError``.
        multi_objective: Optuna studies with several objectives give one entry per objective
            (``PastStudy.objective``) instead of being skipped.

    Returns:
        The studies (not aligned: use ``align`` / ``align_corpus`` for encoded arrays).
    """
    out: list[PastStudy] = []
    for source in _source_list(sources):
        out += load_source(source, target_space, pattern=pattern, match=match, value_column=value_column,
                           direction=direction, yahpo_n_configs=yahpo_n_configs, yahpo_splits=yahpo_splits,
                           seed=seed, multi_objective=multi_objective)
    if target_space is None:
        return out
    kept: list[PastStudy] = []
    for study in out:
        try:
            align(study, target_space, out_of_range=out_of_range, transform=_CHECK_ONLY)
        except AlignmentError as exc:
            if on_reject == "raise":
                raise
            warnings.warn(f"metabo.meta: leaving out {exc}", stacklevel=2)
            continue
        kept.append(study)
    return kept


def describe(studies: Iterable[PastStudy]) -> list[dict[str, Any]]:
    """One summary dict per study (name, source, size, direction, parameters, best value)."""
    return [dict(s.summary()) for s in studies]
