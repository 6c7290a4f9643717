"""Optimiser registry: one table of named specs, each building an Optuna sampler for a run.

Every spec has the same factory signature, ``build(run) -> BaseSampler``, where ``run`` holds the seed, the
budget, the problem and the name's argument (``metabo:<path>``, ``metabo-nap:<path>``). Names:

* ``metabo`` (``TNPSampler``, shipped model), ``metabo:<path>`` (another model file), and the ablations
  ``metabo-refine10`` (10 refinement steps), ``metabo-nocompress`` (no worse-half compression),
  ``metabo-noclip`` (no soft clipping) and ``metabo-repeats`` (``min_distance=0``, evaluated points may recur);
* meta-learning on YAHPO problems: ``metabo-transfer`` (related studies in context, with the scenario's
  fine-tuned model where fine-tuning paid, ``FINETUNED_SCENARIOS``, else the multi-task model;
  ``metabo-transfer:<folder>`` takes ``<folder>/yahpo_<scenario>.safetensors`` where it exists; the
  ablation ``metabo-transfer-nocorners`` searches without the corner candidates of ``TRANSFER_SEARCH``),
  ``metabo-related`` (related studies, the multi-task model: ``multitask_wide`` for more than 16 encoded
  dimensions), ``metabo-nap`` / ``metabo-nap:<path>`` (a learned
  acquisition, NAP) and ``metabo-nap-ei`` (EI from the same model); their related studies, like the transfer
  peers', are the scenario's *train* instances as ``metabo.bench.related_corpus`` says (random evaluations by
  default), and elsewhere these are plain ``metabo``;
* Optuna's ``random``, ``tpe`` (multivariate), ``gp`` (``GPSampler``), ``cmaes`` (needs the ``cmaes`` package)
  and the transfer baseline ``warmstart-tpe`` (the best configurations of related past studies, then TPE);
  ``nsgaii`` (``NSGAIISampler``, for multi-objective problems) with a population of a fifth of the budget
  (4 to 50; Optuna's default of 50 would leave a 50-trial run entirely random). TPE, GP and NSGA-II read the
  constraints of constrained problems from the trials (Optuna 5's ``trial.set_constraint``);
* peers in their own virtualenvs (``metabo.bench.peers``): ``hebo`` (HEBO 0.3.6), ``smac-hpo`` and ``smac-bb``
  (SMAC3 2.4.1's HPO and BlackBox facades), ``botorch`` (BoTorch 0.18.1 SingleTaskGP + qLogNEI) and the transfer
  peers ``synetune-quantile``, ``synetune-boundingbox`` and ``synetune-zeroshot`` (Syne Tune 0.16.0, fed the
  same related past studies as ``warmstart-tpe``). A peer's environment is built on first use. The peer
  adapters speak single-objective, unconstrained studies only: on a constrained or multi-objective problem the
  peer is not built (the run fails, nothing is stored) rather than silently optimising something else.

Every optimiser uses its own default initial design, whose size the runner records (``startup_trials``). TPE,
GP and metabo draw their startup points from ``RandomSampler(seed)``, so with equal seeds their first points
are the random optimiser's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from optuna.samplers import BaseSampler, CmaEsSampler, GPSampler, NSGAIISampler, RandomSampler, TPESampler

from metabo.acquisition import CandidateSearchConfig
from metabo.bench.peers import make_peer_sampler
from metabo.bench.problems import kind_of
from metabo.bench.related_corpus import related_sources
from metabo.meta import WarmStartSampler
from metabo.model.io import ModelLoadError, default_model_path, load_cached, shipped_model_path
from metabo.normalise import ValueTransformConfig
from metabo.sampler import TNPSampler
from metabo.space import SearchSpaceEncoder


@dataclass(frozen=True)
class Run:
    """What a factory may use: the seed, the run's budget, the problem and the name's ``:<argument>``."""

    seed: int
    budget: int | None = None
    problem: Any = None
    argument: str | None = None

    @property
    def scenario(self) -> str | None:
        """The YAHPO scenario of the problem, if it is one (related past studies exist only there)."""
        return getattr(self.problem, "scenario", None)


@dataclass(frozen=True)
class OptimizerSpec:
    """A named optimiser: its factory, and for metabo the model file a run will use (for its fingerprint)."""

    name: str
    build: Callable[[Run], BaseSampler]
    model_path: Callable[[Run], Path | None] | None = None
    takes_argument: bool = False


def scenario_model_path(scenario: str, suffix: str = "") -> Path | None:
    """A shipped model for a YAHPO scenario (``weights/yahpo_<scenario><suffix>.safetensors``), if any."""
    path = default_model_path().with_name(f"yahpo_{scenario}{suffix}.safetensors")
    return path if path.exists() else None


# Scenarios whose shipped fine-tuned model beat the multi-task model (the same past studies in context) on their
# validation instances. On lcbench and rbv2_rpart it did not (worse or level at every budget, with random
# evaluations and with optimisation traces as past studies: BENCHMARKS.md, What was tried), so there
# metabo-transfer reads the past studies with the multi-task model.
FINETUNED_SCENARIOS = ("rbv2_xgboost",)


def _transfer_model(run: Run) -> Path:
    """The scenario's transfer model: from the name's folder (``metabo-transfer:<folder>``, a file
    ``yahpo_<scenario>.safetensors`` there) when it has one, else the shipped fine-tuned model where fine-tuning
    paid (``FINETUNED_SCENARIOS``), else the multi-task model."""
    if run.argument and run.scenario:
        candidate = Path(run.argument) / f"yahpo_{run.scenario}.safetensors"
        if candidate.exists():
            return candidate
    fine_tuned = scenario_model_path(run.scenario) if run.scenario in FINETUNED_SCENARIOS else None
    return fine_tuned or _multitask_model(run)


def _by_width(run: Run, related: bool) -> Path:
    """The shipped model TNPSampler takes for the problem's encoded width (``shipped_model_path``)."""
    n_dims = SearchSpaceEncoder(run.problem.search_space()).n_dims if run.problem is not None else 0
    return shipped_model_path(n_dims, related)


def _multitask_model(run: Run) -> Path:
    return _by_width(run, related=True)


def _nap_model(run: Run) -> Path | None:
    if run.argument:
        return Path(run.argument)
    return scenario_model_path(run.scenario, "_nap") if run.scenario else None


def _metabo(**options: Any) -> Callable[[Run], BaseSampler]:
    """``TNPSampler`` with the shipped model (or the name's model path) and these options."""
    return lambda run: TNPSampler(seed=run.seed, model=run.argument, **options)


def _with_related(model_of: Callable[[Run], Path | None], acquisition: str = "ei",
                  search: CandidateSearchConfig | None = None) -> Callable[[Run], BaseSampler]:
    """metabo with the scenario's related studies (``related_sources``) in context and the model ``model_of``
    gives; plain metabo on problems without related studies (except for the learned acquisition, which needs its
    own model)."""

    def build(run: Run) -> BaseSampler:
        if run.scenario is None and acquisition != "nap":
            return TNPSampler(seed=run.seed)
        model = model_of(run) if run.scenario is not None else None
        if model is None:
            raise ValueError(f"no model for this problem ({getattr(run.problem, 'name', None)}): NAP models and "
                             "related studies exist for YAHPO scenarios")
        return TNPSampler(seed=run.seed, model=model, related=related_sources(run.scenario), acquisition=acquisition,
                          budget=run.budget, search_space=run.problem.search_space(), search=search)

    return build


def _warmstart_tpe(run: Run) -> BaseSampler:
    if run.scenario is None:
        return TPESampler(multivariate=True, seed=run.seed)
    return WarmStartSampler(related_sources(run.scenario), n_warm=5, seed=run.seed,
                            search_space=run.problem.search_space())


def _peer(name: str) -> Callable[[Run], BaseSampler]:
    def build(run: Run) -> BaseSampler:
        if run.problem is not None and kind_of(run.problem) != "single":
            raise ValueError(f"the {name} adapter supports single-objective, unconstrained problems only; "
                             f"{run.problem.name} is {kind_of(run.problem)}")
        return make_peer_sampler(name, run.seed, budget=run.budget, problem=run.problem)

    return build


def nsgaii_population(budget: int | None) -> int:
    """NSGA-II's population for a run: a fifth of the budget, between 4 and Optuna's default 50."""
    return 50 if budget is None else max(4, min(50, budget // 5))


def _default_model(run: Run) -> Path:
    """The model a plain metabo run uses: the name's, else the default or (for a wider space) the wide model."""
    if run.argument:
        return Path(run.argument)
    return _by_width(run, related=False)


def _related_model(model_of: Callable[[Run], Path | None]) -> Callable[[Run], Path | None]:
    """The model a ``_with_related`` run uses: ``model_of``'s on YAHPO problems, else the default model."""
    return lambda run: model_of(run) if run.scenario is not None else default_model_path()


_SPECS = [
    OptimizerSpec("metabo", _metabo(), _default_model, takes_argument=True),
    OptimizerSpec("metabo-subspace", lambda run: TNPSampler(seed=run.seed, model=default_model_path()),
                  lambda run: default_model_path()),
    OptimizerSpec("metabo-start10", _metabo(n_startup_trials=10), _default_model),
    OptimizerSpec("metabo-refine10", _metabo(search=CandidateSearchConfig(refine_steps=10)), _default_model),
    OptimizerSpec("metabo-nocompress", _metabo(transform=ValueTransformConfig(compress_worse=False)), _default_model),
    OptimizerSpec("metabo-noclip", _metabo(transform=ValueTransformConfig(clip_worse=0.0)), _default_model),
    OptimizerSpec("metabo-repeats", _metabo(search=CandidateSearchConfig(min_distance=0.0)), _default_model),
    OptimizerSpec("metabo-transfer", _with_related(_transfer_model), _related_model(_transfer_model),
                  takes_argument=True),
    OptimizerSpec("metabo-transfer-nocorners", _with_related(_transfer_model, search=CandidateSearchConfig()),
                  _related_model(_transfer_model)),
    OptimizerSpec("metabo-related", _with_related(_multitask_model), _related_model(_multitask_model)),
    OptimizerSpec("metabo-nap", _with_related(_nap_model, acquisition="nap"), _related_model(_nap_model),
                  takes_argument=True),
    OptimizerSpec("metabo-nap-ei", _with_related(_nap_model), _related_model(_nap_model), takes_argument=True),
    OptimizerSpec("random", lambda run: RandomSampler(seed=run.seed)),
    OptimizerSpec("tpe", lambda run: TPESampler(multivariate=True, seed=run.seed)),
    OptimizerSpec("tpe-group", lambda run: TPESampler(multivariate=True, group=True, seed=run.seed)),
    OptimizerSpec("gp", lambda run: GPSampler(seed=run.seed)),
    OptimizerSpec("cmaes", lambda run: CmaEsSampler(seed=run.seed)),
    OptimizerSpec("nsgaii", lambda run: NSGAIISampler(population_size=nsgaii_population(run.budget), seed=run.seed)),
    OptimizerSpec("warmstart-tpe", _warmstart_tpe),
    *(OptimizerSpec(name, _peer(name)) for name in ("hebo", "smac-hpo", "smac-bb", "botorch", "synetune-quantile",
                                                    "synetune-boundingbox", "synetune-zeroshot")),
]
REGISTRY: dict[str, OptimizerSpec] = {spec.name: spec for spec in _SPECS}


def available_optimizers() -> list[str]:
    """Registered optimiser names (``metabo:<path>``, ``metabo-nap:<path>`` and ``metabo-transfer:<folder>`` are
    accepted too)."""
    return list(REGISTRY)


def _resolve(name: str) -> tuple[OptimizerSpec, str | None]:
    base, sep, argument = name.partition(":")
    spec = REGISTRY.get(base)
    if spec is None or (sep and not spec.takes_argument) or (sep and not argument):
        raise KeyError(f"unknown optimiser {name!r}; available: {', '.join(available_optimizers())}, "
                       "metabo:<model path>, metabo-nap:<model path>, metabo-transfer:<folder>")
    return spec, argument or None


def check_optimizer_names(names: list[str]) -> None:
    """Raise ``KeyError`` for any name ``make_sampler`` would refuse (before a long run starts)."""
    for name in names:
        _resolve(name)


def check_models(names: list[str], problems: Sequence[Any]) -> None:
    """Load every model file the metabo runs of ``names`` on ``problems`` would use (once per file, cached), so
    a missing or broken model stops a benchmark before it starts: ``ModelLoadError`` naming the optimiser."""
    checked: set[Path] = set()
    for name in names:
        spec, argument = _resolve(name)
        if spec.model_path is None:
            continue
        for problem in problems:
            path = spec.model_path(Run(0, None, problem, argument))
            if path is None or Path(path) in checked:
                continue
            try:
                load_cached(path)
            except ModelLoadError as exc:
                raise ModelLoadError(f"optimiser {name!r}: {exc}") from exc
            checked.add(Path(path))


def make_sampler(name: str, seed: int, budget: int | None = None, problem: Any = None) -> BaseSampler:
    """A fresh sampler for optimiser ``name`` seeded with ``seed``.

    ``budget`` (the run's number of trials) reaches the optimisers whose defaults depend on it (SMAC's initial
    design, NAP's budget fraction); ``problem`` those that look up related past studies. Peer samplers run a
    worker process: call their ``close()`` when the run ends (garbage collection does too).
    """
    spec, argument = _resolve(name)
    return spec.build(Run(seed, budget, problem, argument))


def peer_info(sampler: BaseSampler) -> dict[str, object] | None:
    """For peer samplers: the peer, its environment and the library versions its worker reported."""
    info = getattr(sampler, "peer_info", None)
    return dict(info) if isinstance(info, dict) else None


def startup_trials(sampler: BaseSampler) -> int | None:
    """The sampler's own number of initial (non-model) trials, where it has one."""
    value = getattr(sampler, "n_startup_trials", None)
    return value if isinstance(value, int) else None


def model_fingerprint(name: str, problem: Any = None) -> dict[str, str] | None:
    """For metabo optimisers: the model file a run uses and the first 16 hex digits of its SHA-256.

    Stored with every run so results of different model files are never mixed unknowingly.
    """
    spec, argument = _resolve(name)
    if not name.startswith("metabo"):
        return None
    path = (spec.model_path(Run(0, None, problem, argument)) if spec.model_path else None) or Path("missing")
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError as exc:
        digest = f"unreadable: {exc}"
    return {"path": str(path), "sha256_16": digest}
