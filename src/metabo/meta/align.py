"""Alignment of a past study to a new study's search space (the target).

Rules, per parameter and row:

* **Shared parameters** (in both spaces, both numeric or both categorical): a numeric value inside the target's
  ``[low, high]`` is kept; outside it the row is dropped (``out_of_range="drop"``, the default) or the value
  is clipped to the nearest bound (``out_of_range="clip"``). A categorical value that is not one of the target's
  choices drops the row (matched exactly, else by its string form, so ``"32"`` matches a choice ``32``).
  A row that lacks a shared parameter (a conditional or dynamic past space) keeps it marked unobserved; a row
  that holds none of the shared parameters says nothing about the target and is dropped.
* **Target parameters the past study lacks**, or holds with the other kind (numeric vs categorical): every row
  is kept and the parameter is marked unobserved in the mask.
* **Past parameters the target lacks** are ignored.
* A study that shares no parameter with the target, has no observations, or loses every row is rejected with
  an ``AlignmentError`` that says why.

Encoded rows live in the target's unit cube (``SearchSpaceEncoder``); a parameter the whole past study lacks
holds a neutral filler (0.5 for a numeric coordinate, 1/k on each of a categorical's k one-hot coordinates) that
only means anything together with the mask, and a parameter one row leaves out (inactive in a conditional space)
holds 0, as the new study's own trials do (``metabo.conditions``). ``overlap`` is the fraction of target
parameters the past study shares.
Objective values are normalised per study on the kept rows (``objective.normalise_values``): larger is better.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution

from metabo.meta.objective import normalise_values
from metabo.meta.study import MetaDataError, PastStudy
from metabo.normalise import DEFAULT_TRANSFORM, ObjectiveTransform, ValueTransformConfig
from metabo.space import SearchSpaceEncoder

OutOfRange = Literal["drop", "clip"]


class AlignmentError(MetaDataError):
    """A past study cannot be aligned to the target space; the message gives the reason."""


@dataclass(frozen=True)
class Rejection:
    """A past study left out of an aligned corpus, and why."""

    name: str
    source: str
    reason: str


@dataclass
class AlignedStudy:
    """A past study expressed in the target's encoding.

    Attributes:
        study: the original past study.
        encoder: the target space's encoder; ``x`` columns follow ``encoder.param_widths()``.
        x: encoded rows (n, encoder.n_dims) in the unit cube.
        observed: (n, n_params) mask in ``encoder.param_names`` order: True where the row holds the parameter.
        values: raw objective values of the kept rows.
        y: normalised values (larger is better, standardised per study).
        transform: the fitted objective transform (``transform.inverse(y) == values``).
        rows: indices of the kept rows in ``study.observations``.
        shared: target parameters the past study shares; ``missing``: those it lacks (or holds with another
            kind, listed again in ``incompatible``); ``ignored``: past parameters outside the target.
        dropped: reason -> number of rows dropped for it (``"out of range: lr"``, ``"unknown choice: opt"``).
        clipped: number of values clipped (``out_of_range="clip"``).
    """

    study: PastStudy
    encoder: SearchSpaceEncoder
    x: np.ndarray
    observed: np.ndarray
    values: np.ndarray
    y: np.ndarray
    transform: ObjectiveTransform
    rows: np.ndarray
    shared: list[str]
    missing: list[str]
    incompatible: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    clipped: int = 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def name(self) -> str:
        return self.study.name

    @property
    def param_names(self) -> list[str]:
        """Target parameter names in encoding (sorted) order, the columns of ``observed``."""
        return self.encoder.param_names

    @property
    def overlap(self) -> float:
        """Fraction of the target's parameters this study shares (0 < overlap <= 1)."""
        return len(self.shared) / max(len(self.param_names), 1)

    @property
    def observed_fraction(self) -> float:
        """Fraction of (row, target parameter) cells that are observed."""
        return float(self.observed.mean()) if self.observed.size else 0.0

    def coord_mask(self) -> np.ndarray:
        """The parameter mask widened to encoded coordinates, (n, encoder.n_dims)."""
        mask = np.zeros(self.x.shape, dtype=bool)
        for j, (start, width) in enumerate(self.encoder.param_widths()):
            mask[:, start:start + width] = self.observed[:, j:j + 1]
        return mask

    def params(self, i: int) -> dict[str, Any]:
        """Row ``i`` decoded into admissible target values, observed parameters only."""
        decoded = self.encoder.decode(self.x[i])
        return {n: decoded[n] for j, n in enumerate(self.param_names) if self.observed[i, j]}

    def best_rows(self, k: int | None = None) -> np.ndarray:
        """Indices (into ``x``) of the ``k`` best rows, best first (stable on ties)."""
        order = np.argsort(-self.y, kind="stable")
        return order if k is None else order[:k]


def _numeric(dist: BaseDistribution) -> bool:
    return not isinstance(dist, CategoricalDistribution)


def match_choice(value: Any, dist: CategoricalDistribution) -> tuple[bool, Any]:
    """``(True, choice)`` for the choice equal to ``value`` (same type), else the one with its string form."""
    for choice in dist.choices:
        if type(choice) is type(value) and choice == value:
            return True, choice
    as_text = [c for c in dist.choices if str(c) == str(value)]
    return (True, as_text[0]) if len(as_text) == 1 else (False, None)


def _filler(dist: BaseDistribution) -> Any:
    # any admissible value; its coordinates are overwritten with the neutral filler after encoding
    return dist.choices[0] if isinstance(dist, CategoricalDistribution) else dist.low


def align(study: PastStudy, target_space: Mapping[str, BaseDistribution], out_of_range: OutOfRange = "drop",
          transform: ValueTransformConfig = DEFAULT_TRANSFORM) -> AlignedStudy:
    """Align ``study`` to ``target_space`` following the module's rules.

    Args:
        study: the past study.
        target_space: the new study's parameters (Optuna distributions).
        out_of_range: ``"drop"`` rows with a numeric value outside the target range, or ``"clip"`` it.
        transform: the value transform (its ``for_past_values()`` steps normalise the objective).

    Raises:
        AlignmentError: zero overlap, no observations, or every row dropped (the message says which).
    """
    if out_of_range not in ("drop", "clip"):
        raise ValueError(f"out_of_range must be 'drop' or 'clip', not {out_of_range!r}")
    if not target_space:
        raise AlignmentError("the target search space is empty")
    encoder = SearchSpaceEncoder(target_space)
    names = encoder.param_names
    label = f"study {study.name!r} ({study.source})"
    shared, missing, incompatible = [], [], []
    for n in names:
        if n not in study.search_space:
            missing.append(n)
        elif _numeric(study.search_space[n]) != _numeric(target_space[n]):
            missing.append(n)
            incompatible.append(n)
        else:
            shared.append(n)
    ignored = sorted(set(study.search_space) - set(names))
    if not shared:
        why = (f"; {', '.join(incompatible)} differ in kind (numeric vs categorical)" if incompatible else "")
        raise AlignmentError(f"{label} shares no parameter with the target space: it has "
                             f"{sorted(study.search_space)}, the target has {names}{why}")
    if not study.observations:
        raise AlignmentError(f"{label} has no observations")

    rows: list[int] = []
    params_rows: list[dict[str, Any]] = []
    masks: list[list[bool]] = []
    dropped: dict[str, int] = {}
    clipped = 0
    for i, (params, _) in enumerate(study.observations):
        out: dict[str, Any] = {}
        reason = None
        for n in shared:
            if n not in params:
                continue
            dist, value = target_space[n], params[n]
            if isinstance(dist, CategoricalDistribution):
                ok, choice = match_choice(value, dist)
                if not ok:
                    reason = f"unknown choice: {n}"
                    break
                out[n] = choice
                continue
            v = float(value)
            tol = 1e-9 * max(1.0, abs(dist.high - dist.low))
            if not dist.low - tol <= v <= dist.high + tol:
                if out_of_range == "drop":
                    reason = f"out of range: {n}"
                    break
                clipped += 1
            out[n] = min(max(v, dist.low), dist.high)
        if reason is None and not out:
            reason = "no shared parameter"
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        rows.append(i)
        params_rows.append(out)
        masks.append([n in out for n in names])
    if not rows:
        detail = ", ".join(f"{k} ({v} rows)" for k, v in sorted(dropped.items()))
        raise AlignmentError(f"{label}: all {len(study)} rows fall outside the target space: {detail}")

    observed = np.array(masks, dtype=bool)
    x = encoder.encode_many([{n: p.get(n, _filler(target_space[n])) for n in names} for p in params_rows])
    for j, (start, width) in enumerate(encoder.param_widths()):
        if names[j] in missing:  # unknown to the whole study: the neutral filler
            categorical = isinstance(target_space[names[j]], CategoricalDistribution)
            x[:, start:start + width] = 1.0 / width if categorical else 0.5
        else:  # left out by a row of a conditional space: inactive, 0 as in the new study's own trials
            x[~observed[:, j], start:start + width] = 0.0
    values = np.array([study.observations[i][1] for i in rows], dtype=np.float64)
    y, fitted = normalise_values(values, study.direction, transform)
    return AlignedStudy(study, encoder, x, observed, values, y, fitted, np.array(rows, dtype=np.int64),
                        shared, missing, incompatible, ignored, dropped, clipped)


def align_corpus(studies: Iterable[PastStudy], target_space: Mapping[str, BaseDistribution],
                 out_of_range: OutOfRange = "drop", transform: ValueTransformConfig = DEFAULT_TRANSFORM
                 ) -> tuple[list[AlignedStudy], list[Rejection]]:
    """Align every study; those that cannot be aligned come back as ``Rejection``s instead of raising."""
    aligned: list[AlignedStudy] = []
    rejected: list[Rejection] = []
    for study in studies:
        try:
            aligned.append(align(study, target_space, out_of_range=out_of_range, transform=transform))
        except AlignmentError as exc:
            rejected.append(Rejection(study.name, study.source, str(exc)))
    return aligned, rejected
