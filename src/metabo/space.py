"""Optuna distributions <-> unit-cube encoding.

Every parameter maps to one or more coordinates in [0, 1]:

* ``FloatDistribution``: linear or log scale, one coordinate; ``step`` is honoured on decode.
* ``IntDistribution``: linear or log scale over ``[low - 0.5, high + 0.5]`` so each integer owns an equal
  slice of the coordinate; decode rounds to the nearest admissible value.
* ``CategoricalDistribution``: one-hot, one coordinate per choice Optuna can store; decode takes the argmax.
  Choices are matched by Optuna's own index (``to_internal_repr``), never by equality of the values: where
  two choices are equal in Python (``True == 1``, ``1 == 1.0``) Optuna stores the later one as the earlier, so
  the later one gets no coordinate (it could be proposed but never observed) and a warning says so once.
* A categorical with more than ``MAX_ONE_HOT_CHOICES`` choices: one ordinal coordinate, each choice an equal
  slice of it, in the order ``rank_choices`` gives (worst to best mean result so far, untried choices in the
  middle), so the model reads "near the best choices" as a direction and the space stays narrow.

A conditional parameter (``metabo.conditions``) that a trial leaves out, or that a candidate's own choices make
inactive, has all its coordinates at 0. The model sees these coordinates padded with zeros to its fixed input width
(see ``model.TNPModel``). A space wider than that is optimised one ``Subspace`` at a time: some coordinates free,
the others fixed (as BoTorch's ``fixed_features``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from metabo.conditions import NO_CONDITIONS, Conditions

SUPPORTED_DISTRIBUTIONS = (FloatDistribution, IntDistribution, CategoricalDistribution)
MAX_ONE_HOT_CHOICES = 16  # wider categoricals take one ordinal coordinate


@dataclass(frozen=True)
class _ParamSlot:
    name: str
    distribution: BaseDistribution
    start: int
    width: int
    choice_index: tuple[int, ...] = ()  # categoricals: Optuna's choice index of each coordinate (or ordinal slice)
    ordinal: bool = False  # a wide categorical: one coordinate, choice_index[k] owns slice k

    @property
    def width_choices(self) -> int:
        """How many choices the slot encodes."""
        return len(self.choice_index)


_WARNED_COLLISIONS: set[tuple[str, str]] = set()


def storable_choices(dist: CategoricalDistribution) -> tuple[int, ...]:
    """Indices of the choices Optuna can store: each choice's own index unless an earlier choice is equal to it
    (``True == 1``), in which case Optuna stores the earlier one and the later is unreachable."""
    return tuple(sorted({int(dist.to_internal_repr(choice)) for choice in dist.choices}))


def _warn_collisions(name: str, dist: CategoricalDistribution, storable: tuple[int, ...]) -> None:
    lost = [i for i in range(len(dist.choices)) if i not in storable]
    key = (name, repr(dist.choices))
    if not lost or key in _WARNED_COLLISIONS:
        return
    _WARNED_COLLISIONS.add(key)
    pairs = ", ".join(f"{dist.choices[i]!r} (stored as {dist.choices[int(dist.to_internal_repr(dist.choices[i]))]!r})"
                      for i in lost)
    warnings.warn(f"metabo: categorical parameter {name!r} has choices equal to earlier ones in Python, which "
                  f"Optuna stores as the earlier choice: {pairs}; metabo treats equal choices as one "
                  "(use distinct values, e.g. strings, to keep them apart).", stacklevel=4)


def _slot(name: str, dist: BaseDistribution, start: int, order: tuple[int, ...] | None) -> _ParamSlot:
    if not isinstance(dist, CategoricalDistribution):
        return _ParamSlot(name, dist, start, 1)
    storable = storable_choices(dist)
    _warn_collisions(name, dist, storable)
    if len(storable) > MAX_ONE_HOT_CHOICES:
        if order is not None and sorted(order) != list(storable):
            raise ValueError(f"parameter {name!r}: choice order {order} is not a permutation of {storable}")
        return _ParamSlot(name, dist, start, 1, storable if order is None else tuple(order), ordinal=True)
    return _ParamSlot(name, dist, start, len(storable), storable)


def rank_choices(params: Sequence[Mapping[str, Any]], scores: np.ndarray,
                 search_space: Mapping[str, BaseDistribution]) -> dict[str, tuple[int, ...]]:
    """The order of the ordinal coordinate of each categorical wider than ``MAX_ONE_HOT_CHOICES``: Optuna choice
    indices from the worst to the best mean ``score`` (larger is better) of the trials that took them, each mean
    shrunk toward the overall mean as if by one more trial at it, so untried choices sit in the middle."""
    scores = np.asarray(scores, dtype=np.float64)
    orders: dict[str, tuple[int, ...]] = {}
    for name, dist in search_space.items():
        if not isinstance(dist, CategoricalDistribution):
            continue
        storable = storable_choices(dist)
        if len(storable) <= MAX_ONE_HOT_CHOICES:
            continue
        total = {c: 0.0 for c in storable}
        count = {c: 0 for c in storable}
        for p, score in zip(params, scores):
            if name in p and np.isfinite(score):
                c = int(dist.to_internal_repr(p[name]))
                total[c] += score
                count[c] += 1
        finite = scores[np.isfinite(scores)]
        prior = float(finite.mean()) if len(finite) else 0.0
        shrunk = {c: (total[c] + prior) / (count[c] + 1) for c in storable}
        orders[name] = tuple(sorted(storable, key=lambda c: (shrunk[c], c)))
    return orders


class SearchSpaceEncoder:
    """Encodes parameter dictionaries of one search space as rows of a unit-cube matrix.

    Args:
        search_space: parameter name -> Optuna distribution. Names are sorted so the encoding does not
            depend on dictionary order.
        conditions: which parameters may be missing from a parameter dict, and which choices make them active
            (``metabo.conditions.infer_conditions``); by default every parameter is always active.
        choice_orders: the ordinal order of categoricals wider than ``MAX_ONE_HOT_CHOICES`` (``rank_choices``);
            by default the order of their choices.
    """

    def __init__(self, search_space: Mapping[str, BaseDistribution], conditions: Conditions = NO_CONDITIONS,
                 choice_orders: Mapping[str, tuple[int, ...]] | None = None) -> None:
        slots: list[_ParamSlot] = []
        start = 0
        for name in sorted(search_space):
            dist = search_space[name]
            if not isinstance(dist, SUPPORTED_DISTRIBUTIONS):
                raise TypeError(f"parameter {name!r}: unsupported distribution {type(dist).__name__}")
            slots.append(_slot(name, dist, start, (choice_orders or {}).get(name)))
            start += slots[-1].width
        self._slots = slots
        self._slot_of = {s.name: s for s in slots}
        self.search_space = dict(search_space)
        self.conditions = conditions
        self.required = frozenset(self.search_space) - conditions.optional  # every parameter dict must hold these
        self.n_dims = start

    @property
    def is_conditional(self) -> bool:
        """Whether some parameter's activity depends on another's choice."""
        return bool(self.conditions.rules)

    def active(self, rows: np.ndarray) -> np.ndarray:
        """Boolean (n, n_dims): the coordinates of encoded rows that are active given the rows' own choices."""
        active = np.ones(np.shape(rows), dtype=bool)
        for rule in self.conditions.rules:
            parent, child = self._slot_of[rule.parent], self._slot_of[rule.child]
            block = rows[:, parent.start : parent.start + parent.width]
            column = _ordinal_slice(block[:, 0], parent) if parent.ordinal else np.argmax(block, axis=1)
            chosen = np.asarray(parent.choice_index)[column]
            on = active[:, parent.start] & (block.max(1) > 0) & np.isin(chosen, list(rule.choices))
            active[:, child.start : child.start + child.width] = on[:, None]
        return active

    @property
    def param_names(self) -> list[str]:
        return [s.name for s in self._slots]

    def param_widths(self) -> list[tuple[int, int]]:
        """(first encoded coordinate, number of coordinates) per parameter, in encoding order."""
        return [(s.start, s.width) for s in self._slots]

    def continuous_mask(self) -> np.ndarray:
        """Boolean mask over encoded coordinates: True where gradient refinement is meaningful."""
        mask = np.zeros(self.n_dims, dtype=bool)
        for s in self._slots:
            if isinstance(s.distribution, FloatDistribution):
                mask[s.start] = True
            elif isinstance(s.distribution, IntDistribution) or s.ordinal:
                mask[s.start] = True  # refined continuously, rounded on decode
        return mask

    def random_subspace_dims(self, max_dims: int, rng: np.random.RandomState) -> np.ndarray:
        """Encoded coordinates of a random subset of whole parameters that fits in ``max_dims`` (all of them when
        the space fits, without drawing from ``rng``)."""
        if self.n_dims <= max_dims:
            return np.arange(self.n_dims)
        chosen: list[int] = []
        used = 0
        for i in rng.permutation(len(self._slots)):
            slot = self._slots[i]
            if used + slot.width <= max_dims:
                chosen.extend(range(slot.start, slot.start + slot.width))
                used += slot.width
        return np.array(sorted(chosen), dtype=int)

    def categorical_slices(self) -> list[slice]:
        """The one-hot blocks (ordinal categoricals are single coordinates, not blocks)."""
        return [
            slice(s.start, s.start + s.width)
            for s in self._slots
            if isinstance(s.distribution, CategoricalDistribution) and not s.ordinal
        ]

    # ---------------------------------------------------------------- encode
    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """Encode one parameter dict (which must hold every parameter of the space)."""
        return self.encode_many([params])[0]

    def encode_many(self, params_list: list[Mapping[str, Any]]) -> np.ndarray:
        """Encode many parameter dicts at once (column by column; same result as stacking ``encode``)."""
        out = np.zeros((len(params_list), self.n_dims), dtype=np.float64)
        if not params_list:
            return out
        for s in self._slots:
            rows = np.arange(len(params_list))
            if s.name in self.conditions.optional:  # inactive where left out: its coordinates stay 0
                rows = np.array([i for i, p in enumerate(params_list) if s.name in p], dtype=int)
            try:
                values = [params_list[i][s.name] for i in rows]
            except KeyError:
                missing = next(p for p in params_list if s.name not in p)
                raise KeyError(f"parameter {s.name!r} missing from {sorted(missing)}") from None
            if not len(values):
                continue
            dist = s.distribution
            if isinstance(dist, CategoricalDistribution):
                columns = np.asarray([s.choice_index.index(_choice_index(s.name, dist, v)) for v in values], dtype=int)
                if s.ordinal:
                    out[rows, s.start] = (columns + 0.5) / s.width_choices
                else:
                    out[rows, s.start + columns] = 1.0
                continue
            low, high = _bounds(dist)
            if high <= low:
                out[rows, s.start] = 0.5
                continue
            v = _numbers(s.name, dist, values)
            if dist.log:
                v = np.log(v)
            out[rows, s.start] = np.clip((v - low) / (high - low), 0.0, 1.0)
        return out

    # ---------------------------------------------------------------- decode
    def decode(self, row: np.ndarray) -> dict[str, Any]:
        """Decode one encoded row to a parameter dict of admissible values (without the parameters its own
        choices make inactive)."""
        row = np.clip(np.asarray(row, dtype=np.float64), 0.0, 1.0)
        active = self.active(row[None])[0] if self.is_conditional else None
        params: dict[str, Any] = {}
        for s in self._slots:
            if active is not None and not active[s.start]:
                continue
            dist = s.distribution
            if isinstance(dist, CategoricalDistribution):
                block = row[None, s.start : s.start + s.width]
                column = int(_ordinal_slice(block[:, 0], s)[0] if s.ordinal else np.argmax(block[0]))
                params[s.name] = dist.to_external_repr(s.choice_index[column])
            else:
                params[s.name] = _from_unit(float(row[s.start]), dist)
        return params

    def snap(self, rows: np.ndarray) -> np.ndarray:
        """Project encoded rows (N, n_dims) onto admissible points: ints and stepped floats rounded,
        categoricals made one-hot. Vectorised; ``decode(snap(x)) == decode(x)``."""
        out = np.clip(np.array(rows, dtype=np.float64, copy=True), 0.0, 1.0)
        for s in self._slots:
            dist = s.distribution
            if s.ordinal:
                out[:, s.start] = (_ordinal_slice(out[:, s.start], s) + 0.5) / s.width_choices
            elif isinstance(dist, CategoricalDistribution):
                block = out[:, s.start : s.start + s.width]
                onehot = np.zeros_like(block)
                onehot[np.arange(len(block)), np.argmax(block, axis=1)] = 1.0
                out[:, s.start : s.start + s.width] = onehot
            elif isinstance(dist, IntDistribution) or dist.step is not None:
                col = out[:, s.start]
                values = np.array([_from_unit(float(u), dist) for u in np.unique(col)])
                lookup = dict(zip(np.unique(col), (_to_unit(float(v), dist) for v in values)))
                out[:, s.start] = np.vectorize(lookup.__getitem__, otypes=[float])(col) if len(col) else col
        if self.is_conditional:
            out[~self.active(out)] = 0.0
        return out


def _ordinal_slice(u: np.ndarray, slot: _ParamSlot) -> np.ndarray:
    """The slice (position in ``slot.choice_index``) of ordinal coordinates ``u``."""
    return np.clip(np.floor(np.asarray(u) * slot.width_choices), 0, slot.width_choices - 1).astype(int)


def _choice_index(name: str, dist: CategoricalDistribution, value: Any) -> int:
    """Optuna's index of a categorical value; a ``ValueError`` naming the parameter for a value not among the
    choices (a trial whose parameter has another distribution than the search space's)."""
    try:
        return int(dist.to_internal_repr(value))
    except (ValueError, TypeError):
        raise ValueError(f"parameter {name!r}: value {value!r} is not one of the search space's choices "
                         f"{dist.choices}; was it suggested with another distribution?") from None


def _numbers(name: str, dist: FloatDistribution | IntDistribution, values: list[Any]) -> np.ndarray:
    """The values of a numeric parameter as floats; a ``ValueError`` naming the parameter for a value that is not
    a number (a trial whose parameter has another distribution than the search space's)."""
    arr = np.asarray(values)
    if arr.ndim == 1 and arr.dtype.kind in "iuf":  # the usual case: numbers only
        v = arr.astype(np.float64)
        if not np.isnan(v).any():
            return v
    bad = [x for x in values if not _is_number(x)]
    if bad:
        raise ValueError(f"parameter {name!r}: value {bad[0]!r} is not a number, as the search space's "
                         f"{type(dist).__name__} needs; was it suggested with another distribution?")
    return np.array([float(x) for x in values], dtype=np.float64)  # e.g. integers beyond int64


def _is_number(x: Any) -> bool:
    """Whether ``x`` is a number that is not NaN (text is not a number here, even ``"0.5"``)."""
    if isinstance(x, (str, bytes)):
        return False
    try:
        return not math.isnan(float(x))
    except (TypeError, ValueError, OverflowError):
        return False


def _bounds(dist: FloatDistribution | IntDistribution) -> tuple[float, float]:
    if isinstance(dist, IntDistribution):
        low, high = dist.low - 0.5, dist.high + 0.5
        if dist.log:
            low, high = max(dist.low - 0.5, 0.5), dist.high + 0.5
    else:
        low, high = dist.low, dist.high
    if dist.log:
        return math.log(low), math.log(high)
    return float(low), float(high)


def _to_unit(value: float, dist: FloatDistribution | IntDistribution) -> float:
    low, high = _bounds(dist)
    if high <= low:
        return 0.5
    v = math.log(value) if dist.log else value
    return min(max((v - low) / (high - low), 0.0), 1.0)


def _from_unit(u: float, dist: FloatDistribution | IntDistribution) -> float | int:
    low, high = _bounds(dist)
    v = low + u * (high - low)
    if dist.log:
        v = math.exp(v)
    if isinstance(dist, IntDistribution):
        step = dist.step
        k = round((v - dist.low) / step)
        return int(min(max(dist.low + k * step, dist.low), dist.high))
    if dist.step is not None:
        k = round((v - dist.low) / dist.step)
        v = dist.low + k * dist.step
    return float(min(max(v, dist.low), dist.high))


@dataclass(frozen=True)
class Subspace:
    """The encoded coordinates one suggestion optimises (``dims``); the others stay at ``fixed``'s values.

    Everything the candidate optimiser needs about the space, in the subspace's own coordinates: which are
    continuous, the one-hot blocks, snapping to admissible values, and the way back to full rows.
    """

    encoder: SearchSpaceEncoder
    dims: np.ndarray
    fixed: np.ndarray  # a full encoded row: the values of the coordinates outside ``dims``

    @classmethod
    def full(cls, encoder: SearchSpaceEncoder) -> "Subspace":
        return cls(encoder, np.arange(encoder.n_dims), np.full(encoder.n_dims, 0.5))

    @property
    def is_full(self) -> bool:
        return len(self.dims) == self.encoder.n_dims

    @property
    def continuous(self) -> np.ndarray:
        """Boolean mask over the subspace's coordinates: True where gradient refinement is meaningful."""
        return self.encoder.continuous_mask()[self.dims]

    def inactive(self, rows: np.ndarray) -> np.ndarray:
        """Boolean (n, len(dims)): the subspace coordinates that rows' own choices make inactive (none in a
        space without conditions)."""
        if not self.encoder.is_conditional:
            return np.zeros(np.shape(rows), dtype=bool)
        return ~self.encoder.active(self.to_full(rows))[:, self.dims]

    @property
    def categorical(self) -> list[slice]:
        """One-hot blocks in the subspace's coordinates (blocks are either wholly in or wholly out)."""
        starts = set(self.dims.tolist())
        out = []
        for block in self.encoder.categorical_slices():
            if block.start in starts:
                first = int(np.searchsorted(self.dims, block.start))
                out.append(slice(first, first + block.stop - block.start))
        return out

    def restrict(self, rows: np.ndarray) -> np.ndarray:
        """Full encoded rows (n, n_dims) -> the subspace's coordinates (n, len(dims)), always a copy."""
        return rows[:, self.dims]

    def to_full(self, rows: np.ndarray) -> np.ndarray:
        """Subspace rows -> full encoded rows, the other coordinates taken from ``fixed``."""
        if self.is_full:
            return rows
        full = np.repeat(self.fixed[None], len(rows), axis=0)
        full[:, self.dims] = rows
        return full

    def snap(self, rows: np.ndarray) -> np.ndarray:
        """Subspace rows projected onto admissible points (``SearchSpaceEncoder.snap``)."""
        return self.encoder.snap(self.to_full(rows))[:, self.dims]

    def nearby(self, x_seen: np.ndarray, distance: float) -> np.ndarray:
        """Seen full rows that a subspace point can come within ``distance`` of (max-norm), restricted to the
        subspace: those whose fixed coordinates already lie that close to ``fixed``."""
        others = np.setdiff1d(np.arange(self.encoder.n_dims), self.dims)
        if len(others):
            x_seen = x_seen[np.abs(x_seen[:, others] - self.fixed[others]).max(1) < distance]
        return x_seen[:, self.dims]
