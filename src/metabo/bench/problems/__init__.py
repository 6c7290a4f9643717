"""Benchmark problems: a registry of problem families, each a module of named, minimised black-box functions.

Names are ``<family>/...``: ``bbob/f01_i1_d2`` (BBOB function 1, instance 1, dimension 2),
``yahpo/lcbench/7593`` (a YAHPO Gym surrogate), and the ``sklearn/...`` and ``highs/...`` families where their
modules are installed. Every problem follows the ``Problem`` contract of ``base.py``; three families extend it:
``constrained/...`` (constraint values, ``constrained.py``), ``mo/...`` (several objectives,
``multiobjective.py``) and ``pruning/...`` (learning curves reported by epoch for pruners, ``pruning.py``), see
``base.kind_of``; ``conditional/...`` problems suggest their parameters define-by-run (``conditional.py``), 
``categorical/...`` ones have a 50-choice categorical (``categorical.py``), ``sparse/...`` ones a few active
parameters among many (``sparse.py``).

* ``get_problem(name)`` builds any well-formed name of an available family;
* ``select_problems(patterns, ...)`` matches glob patterns against every family's listing (BBOB: functions
  1-24 at the dimensions and instances asked for; YAHPO: the instances of the splits asked for, ``validation``
  by default, ``reserved`` never without ``allow_reserved``);
* ``register_family(name, module)`` adds a family whose module has a top-level ``problems()`` listing.

Family modules other than BBOB's (whose ``ioh`` import waits for an evaluation) are imported only when a name or
pattern needs them, so importing this package stays cheap (no ioh, onnxruntime or scikit-learn), and a family
whose module or dependencies are missing is simply unavailable: globs skip it, explicit names raise an error that
says why. YAHPO split selection comes from the library module ``metabo.meta.yahpo``.
"""

from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterable, Sequence

from metabo.bench.problems import bbob
from metabo.bench.problems.base import Outcome, Problem, evaluate_outcome, family_of, kind_of, normalised_regret
from metabo.meta.yahpo import check_splits

__all__ = [
    "Outcome",
    "Problem",
    "SelectOptions",
    "family_available",
    "evaluate_outcome",
    "family_names",
    "get_problem",
    "kind_of",
    "normalised_regret",
    "register_family",
    "select_problems",
]


@dataclass(frozen=True)
class SelectOptions:
    """Options that shape family listings.

    Attributes:
        dims: BBOB dimensions for globs (default: the standard ones plus any ``_d<k>`` a pattern mentions).
        instances: BBOB instances for globs.
        splits: YAHPO splits for globs and names (``validation`` by default; ``train`` for meta-training).
        allow_reserved: whether YAHPO ``reserved`` instances may be selected at all.
    """

    dims: tuple[int, ...] | None = None
    instances: tuple[int, ...] = (1,)
    splits: tuple[str, ...] = ("validation",)
    allow_reserved: bool = False


Lister = Callable[[ModuleType, SelectOptions], list[Any]]
Getter = Callable[[ModuleType, str, SelectOptions], Any]


def _default_lister(module: ModuleType, options: SelectOptions) -> list[Any]:
    return list(module.problems())


def _default_getter(module: ModuleType, name: str, options: SelectOptions) -> Any:
    if hasattr(module, "get_problem"):
        return module.get_problem(name)
    for problem in module.problems():
        if problem.name == name:
            return problem
    raise KeyError(f"unknown problem name {name!r}")


@dataclass
class Family:
    """A registered family: its module (imported lazily) and how to list and build its problems."""

    name: str
    module: str
    lister: Lister = _default_lister
    getter: Getter = _default_getter
    _loaded: ModuleType | None = field(default=None, repr=False)
    _error: str | None = field(default=None, repr=False)

    def load(self) -> ModuleType | None:
        """The family's module, or ``None`` when it (or one of its dependencies) cannot be imported."""
        if self._loaded is None and self._error is None:
            try:
                self._loaded = importlib.import_module(self.module)
            except ImportError as exc:  # the module, or a dependency of it, is missing
                self._error = f"{type(exc).__name__}: {exc}"
        return self._loaded

    def require(self) -> ModuleType:
        """The module, or an ``ImportError`` saying why the family is unavailable."""
        module = self.load()
        if module is None:
            raise ImportError(f"problem family {self.name!r} is unavailable ({self._error})")
        return module


_FAMILIES: dict[str, Family] = {}


def register_family(name: str, module: str, lister: Lister | None = None, getter: Getter | None = None) -> None:
    """Register (or replace) the family ``name`` implemented by the importable module ``module``.

    By default the module's top-level ``problems()`` lists its problems and a name is looked up in that list
    (or built by the module's ``get_problem(name)`` where it has one).
    """
    _FAMILIES[name] = Family(name, module, lister or _default_lister, getter or _default_getter)


def family_names() -> list[str]:
    """Registered family names, in registration order."""
    return list(_FAMILIES)


def family_available(name: str) -> bool:
    """Whether family ``name`` is registered and its module imports (for YAHPO: and its data folder exists)."""
    family = _FAMILIES.get(name)
    if family is None or family.load() is None:
        return False
    return bool(getattr(family.load(), "available", lambda: True)())


# --- built-in families -------------------------------------------------------------------------------------------

def _bbob_lister(module: ModuleType, options: SelectOptions) -> list[Any]:
    return module.problems(options.dims or module.BBOB_DEFAULT_DIMS, options.instances)


def _bbob_getter(module: ModuleType, name: str, options: SelectOptions) -> Any:
    return module.parse_name(name)


def _yahpo_lister(module: ModuleType, options: SelectOptions) -> list[Any]:
    return module.problems(options.splits, options.allow_reserved)


def _yahpo_getter(module: ModuleType, name: str, options: SelectOptions) -> Any:
    problem = module.parse_name(name, allow_reserved=options.allow_reserved)
    return problem


register_family("bbob", "metabo.bench.problems.bbob", _bbob_lister, _bbob_getter)
register_family("yahpo", "metabo.bench.problems.yahpo", _yahpo_lister, _yahpo_getter)
register_family("sklearn", "metabo.bench.problems.sklearn_tuning")
register_family("highs", "metabo.bench.problems.highs_mip")
register_family("constrained", "metabo.bench.problems.constrained")
register_family("mo", "metabo.bench.problems.multiobjective")
register_family("pruning", "metabo.bench.problems.pruning", _yahpo_lister)
register_family("conditional", "metabo.bench.problems.conditional")
register_family("categorical", "metabo.bench.problems.categorical")
register_family("sparse", "metabo.bench.problems.sparse")


# --- lookup and selection ----------------------------------------------------------------------------------------

def _family(name: str) -> Family:
    family = _FAMILIES.get(family_of(name))
    if family is None:
        raise KeyError(f"unknown problem name {name!r}: family {family_of(name)!r} is not one of "
                       f"{', '.join(_FAMILIES)} (names look like 'bbob/f01_i1_d2' or 'yahpo/lcbench/7593')")
    return family


def get_problem(name: str, allow_reserved: bool = False) -> Problem:
    """The problem called ``name`` (e.g. ``bbob/f07_i3_d5``, ``yahpo/lcbench/7593``).

    Any split's YAHPO instance can be named except ``reserved`` ones, which need ``allow_reserved``.
    """
    family = _family(name)
    return family.getter(family.require(), name, SelectOptions(allow_reserved=allow_reserved))


def _check_split(problem: Any, options: SelectOptions) -> None:
    split = getattr(problem, "split", None)
    if split is not None and split not in options.splits and not (split == "reserved" and options.allow_reserved):
        raise PermissionError(f"{problem.name} is a YAHPO {split!r} instance; selected splits are "
                              f"{', '.join(options.splits)} (use --yahpo-splits {split}"
                              f"{' with --allow-reserved' if split == 'reserved' else ''})")


def _sort_key(problem: Any) -> tuple[int, Any]:
    order = family_names()
    fam = getattr(problem, "family", family_of(problem.name))
    return (order.index(fam) if fam in order else len(order), getattr(problem, "sort_key", problem.name))


def select_problems(patterns: str | Sequence[str], dims: Iterable[int] | None = None,
                    instances: Iterable[int] = (1,), splits: Iterable[str] = ("validation",),
                    allow_reserved: bool = False) -> list[Problem]:
    """Problems whose names match any of the glob patterns (a list, or one comma-separated string).

    A pattern without glob characters is parsed as a name, so any BBOB instance or dimension can be named
    directly; a YAHPO name must still belong to one of ``splits``. A glob is matched against the listing of
    every available family its first component can match (``*`` alone: all of them); BBOB's listing uses
    ``dims`` (default: the dimensions the patterns mention plus the standard ones) and ``instances``, YAHPO's
    the instances of ``splits``. ``reserved`` YAHPO instances are never selected without ``allow_reserved``.
    Raises ``ValueError`` when nothing matches, ``PermissionError`` for a name outside the selected splits.
    """
    if isinstance(patterns, str):
        patterns = [p.strip() for p in patterns.split(",") if p.strip()]
    options = SelectOptions(tuple(dims) if dims is not None else tuple(bbob.dims_for(patterns)),
                            tuple(instances), check_splits(splits, allow_reserved), allow_reserved)
    pools: dict[str, list[Any]] = {}
    chosen: dict[str, Any] = {}
    skipped: set[str] = set()
    for pattern in patterns:
        if not any(c in pattern for c in "*?["):
            family = _family(pattern)
            problem = family.getter(family.require(), pattern, options)
            _check_split(problem, options)
            chosen[problem.name] = problem
            continue
        head = pattern.split("/", 1)[0]
        for family in _FAMILIES.values():
            if not fnmatch.fnmatchcase(family.name, head) and "/" in pattern:
                continue
            if family.name not in pools:
                if not family_available(family.name):
                    if not any(c in head for c in "*?["):  # the family was named: say why it is missing
                        module = family.require()
                        module.data_dir()  # raises FileNotFoundError naming the places tried
                    skipped.add(family.name)
                    continue
                pools[family.name] = family.lister(family.require(), options)
            for problem in pools[family.name]:
                if fnmatch.fnmatchcase(problem.name, pattern):
                    chosen[problem.name] = problem
    if not chosen:
        hint = f"; unavailable families skipped: {', '.join(sorted(skipped))}" if skipped else ""
        raise ValueError(f"no problem matches {list(patterns)!r} (names look like 'bbob/f01_i1_d2' or "
                         f"'yahpo/lcbench/7593'; YAHPO globs list the {', '.join(options.splits)} split(s)){hint}")
    return sorted(chosen.values(), key=_sort_key)
