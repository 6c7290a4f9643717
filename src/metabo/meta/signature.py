"""Search-space signatures: parameter names with their kinds, used to pick past studies that fit a target.

A signature maps each parameter name to ``"float"``, ``"int"`` or ``"categorical"``. Signature matching is strict
about kinds (an ``int`` past parameter does not match a ``float`` target one); alignment (``align.py``) is more
lenient and accepts any numeric parameter for a numeric target.
"""

from __future__ import annotations

from typing import Literal, Mapping

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

MatchMode = Literal["full", "partial"]


def kind_of(dist: BaseDistribution) -> str:
    """``"float"``, ``"int"`` or ``"categorical"``; ``TypeError`` for any other distribution."""
    if isinstance(dist, FloatDistribution):
        return "float"
    if isinstance(dist, IntDistribution):
        return "int"
    if isinstance(dist, CategoricalDistribution):
        return "categorical"
    raise TypeError(f"unsupported distribution {type(dist).__name__}")


def space_signature(space: Mapping[str, BaseDistribution]) -> dict[str, str]:
    """Parameter name -> kind, sorted by name."""
    return {name: kind_of(space[name]) for name in sorted(space)}


def shared_signature(past: Mapping[str, BaseDistribution], target: Mapping[str, BaseDistribution]) -> list[str]:
    """Names present in both spaces with the same kind, sorted."""
    a, b = space_signature(past), space_signature(target)
    return sorted(n for n in a if b.get(n) == a[n])


def matches(past: Mapping[str, BaseDistribution], target: Mapping[str, BaseDistribution], mode: MatchMode) -> bool:
    """``full``: same names and kinds; ``partial``: at least one name with the same kind."""
    if mode == "full":
        return space_signature(past) == space_signature(target)
    if mode == "partial":
        return bool(shared_signature(past, target))
    raise ValueError(f"signature match mode must be 'full' or 'partial', not {mode!r}")
