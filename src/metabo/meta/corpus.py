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
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence, Union

import optuna
from optuna.distributions import BaseDistribution

from metabo.meta.align import AlignmentError, OutOfRange, align
from metabo.meta.optuna_source import from_storage, from_study
from metabo.meta.signature import MatchMode
from metabo.meta.study import MetaDataError, PastStudy
from metabo.meta.table_source import CSV_SUFFIXES, PARQUET_SUFFIXES, read_table
from metabo.meta.yahpo_source import yahpo_studies
from metabo.normalise import ValueTransformConfig

_CHECK_ONLY = ValueTransformConfig(power=False)  # only whether a study aligns matters here

Source = Union[PastStudy, optuna.Study, str, Path, tuple[str, str]]
YAHPO_PREFIX = "yahpo:"


def _is_storage_pair(source: Any) -> bool:
    """A ``(url, pattern)`` pair, as opposed to a tuple of sources."""
    return (isinstance(source, tuple) and len(source) == 2 and all(isinstance(p, str) for p in source)
            and "://" in source[0])


def load_source(source: Source, target_space: Mapping[str, BaseDistribution] | None = None, *,
                pattern: str | None = None, match: MatchMode | None = None, value_column: str = "value",
                direction: str | None = None, yahpo_n_configs: int = 100,
                yahpo_splits: Sequence[str] = ("train",), seed: int = 0) -> list[PastStudy]:
    """The past studies of one source (see the module docstring; arguments as in ``load_corpus``)."""
    if isinstance(source, PastStudy):
        return [source]
    if isinstance(source, optuna.Study):
        return [from_study(source)]
    if isinstance(source, tuple):
        if not _is_storage_pair(source):
            raise MetaDataError(f"a storage source tuple is (url, pattern), not {source!r}")
        return from_storage(source[0], source[1], target_space, match)
    if isinstance(source, str) and source.startswith(YAHPO_PREFIX):
        return yahpo_studies(source[len(YAHPO_PREFIX):], yahpo_n_configs, yahpo_splits, seed=seed)
    if isinstance(source, str) and "://" in source:
        return from_storage(source, pattern, target_space, match)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.suffix.lower() in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
            return [read_table(path, value_column=value_column, direction=direction, target_space=target_space)]
        raise MetaDataError(f"unknown corpus source {str(source)!r}: expected a storage URL (sqlite:///...), a "
                            ".csv/.tsv/.parquet file, 'yahpo:<scenario>', an optuna.Study or a PastStudy")
    raise TypeError(f"unsupported corpus source of type {type(source).__name__}: {source!r}")


def load_corpus(sources: Source | Iterable[Source], target_space: Mapping[str, BaseDistribution] | None = None, *,
                pattern: str | None = None, match: MatchMode | None = None, value_column: str = "value",
                direction: str | None = None, yahpo_n_configs: int = 100,
                yahpo_splits: Sequence[str] = ("train",), seed: int = 0, out_of_range: OutOfRange = "drop",
                on_reject: Literal["warn", "raise"] = "warn") -> list[PastStudy]:
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

    Returns:
        The studies (not aligned: use ``align`` / ``align_corpus`` for encoded arrays).
    """
    if isinstance(sources, (PastStudy, optuna.Study, str, Path)) or _is_storage_pair(sources):
        sources = [sources]
    out: list[PastStudy] = []
    for source in sources:
        out += load_source(source, target_space, pattern=pattern, match=match, value_column=value_column,
                           direction=direction, yahpo_n_configs=yahpo_n_configs, yahpo_splits=yahpo_splits,
                           seed=seed)
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
