"""Optimiser registry: name -> factory returning an Optuna sampler for a seed.

Names: ``metabo`` (``TNPSampler`` with the shipped model; ``metabo-refine10`` is its 10-refinement-step ablation,
``metabo-nocompress`` its ablation with ``compress_worse=False``, ``metabo-noclip`` its ablation with
``clip_worse=0``, ``metabo-repeats`` its ablation with ``min_distance=0`` (the earlier acquisition, which may
re-propose evaluated points) and ``metabo-margin`` its variant with ``improvement_margin=1``, ``metabo-sobol`` its
variant with a Sobol initial design, ``metabo-bounds`` its variant with ``bound_candidates=True``, and, without
``compress_worse``, ``metabo-bounds-ranks`` (bounds plus ``quantile_weight=0.5``, no clipping) and
``metabo-bounds-clip`` (bounds plus ``clip_worse=3``)),
``metabo:<path>`` (``TNPSampler`` with the model file at ``<path>``), ``metabo-transfer`` (meta-learning: related
past studies in context and the scenario's fine-tuned model), ``metabo-related`` (its ablation: related studies
in context of the multi-task model, no fine-tuning), ``metabo-nap`` (the scenario's learned acquisition, NAP),
``metabo-nap-ei`` (EI from the same model) and ``metabo-nap:<path>`` (another NAP model, e.g. the ablation
trained without the auxiliary loss), ``random``, ``tpe`` (multivariate TPE), ``gp`` (Optuna's ``GPSampler``), ``cmaes`` (Optuna's
``CmaEsSampler``; needs the ``cmaes`` package from the ``bench`` extra), ``warmstart-tpe`` (transfer baseline:
the best configurations of related past studies, then TPE; see ``metabo.meta``), and the peers run in their own
virtualenvs through ``metabo.bench.peers``: ``hebo`` (HEBO 0.3.6), ``smac-hpo`` and ``smac-bb`` (SMAC3 2.4.1's
HPO and BlackBox facades), ``botorch`` (BoTorch 0.18.1 SingleTaskGP + qLogNEI) and the transfer peers
``synetune-quantile``, ``synetune-boundingbox`` and ``synetune-zeroshot`` (Syne Tune 0.16.0, fed the same related
past studies as ``warmstart-tpe``; a problem without them is a setup error). A peer's environment is built
on first use (minutes, once); its sampler's ``peer_info`` holds the library versions that ran. Every optimiser
gets only its seed (and, where its defaults depend on it, the budget); each uses its own default initial
design, whose size is recorded by the runner (``startup_trials``). TPE, GP and metabo all draw their startup
points from ``RandomSampler(seed)``, so with equal seeds their first min(startup) points are the random
optimiser's first points (the report measures this as "shared with random").
"""

from __future__ import annotations

from typing import Callable

from optuna.samplers import BaseSampler

SamplerFactory = Callable[[int], BaseSampler]


def _metabo(seed: int, model: str | None = None) -> BaseSampler:
    from metabo.sampler import TNPSampler

    return TNPSampler(seed=seed, model=model)


def _metabo_variant(**options: object) -> SamplerFactory:
    """A factory for ``TNPSampler`` with the shipped model and these options changed from their defaults."""

    def factory(seed: int) -> BaseSampler:
        from metabo.sampler import TNPSampler

        return TNPSampler(seed=seed, **options)

    return factory


# Ablations and variants of the default ``TNPSampler`` (module docstring). The bounds variants with ranks or clipping
# pin the settings they were measured with (no compression, no clipping unless named).
_METABO_VARIANTS: dict[str, dict[str, object]] = {
    "metabo-refine10": dict(refine_steps=10),
    "metabo-nocompress": dict(compress_worse=False),
    "metabo-noclip": dict(clip_worse=0.0),
    "metabo-repeats": dict(min_distance=0.0),
    "metabo-margin": dict(improvement_margin=1.0),
    "metabo-sobol": dict(initial_design="sobol"),
    "metabo-bounds": dict(bound_candidates=True),
    "metabo-bounds-ranks": dict(bound_candidates=True, quantile_weight=0.5, compress_worse=False, clip_worse=0.0),
    "metabo-bounds-clip": dict(bound_candidates=True, clip_worse=3.0, compress_worse=False),
}


def scenario_model_path(scenario: str):
    """The shipped fine-tuned model for a YAHPO scenario (``weights/yahpo_<scenario>.safetensors``), if any."""
    from metabo.model.io import default_model_path

    path = default_model_path().with_name(f"yahpo_{scenario}.safetensors")
    return path if path.exists() else None


def _metabo_transfer(seed: int, problem: object | None = None, finetuned: bool = True, model: str | None = None,
                     acquisition: str = "ei", budget: int | None = None) -> BaseSampler:
    """metabo with meta-learning: the related studies in context (``related=``), with the scenario's fine-tuned
    model where one ships (``finetuned``), else the multi-task model (or ``model``). Related studies are the
    random evaluations of the scenario's *train* instances, as for ``warmstart-tpe``; elsewhere plain ``metabo``."""
    from metabo.sampler import TNPSampler

    scenario = getattr(problem, "scenario", None)
    if scenario is None or problem is None:
        return TNPSampler(seed=seed)
    if model is None and finetuned:
        model = scenario_model_path(scenario)
    return TNPSampler(seed=seed, model=model, related=f"yahpo:{scenario}", acquisition=acquisition,  # type: ignore[arg-type]
                      budget=budget, search_space=problem.search_space())  # type: ignore[attr-defined]


def nap_model_path(scenario: str, name: str) -> str | None:
    """The NAP model of ``metabo-nap*`` names: ``metabo-nap:<path>``, else the scenario's shipped one."""
    if ":" in name:
        return name.split(":", 1)[1]
    from metabo.model.io import default_model_path

    path = default_model_path().with_name(f"yahpo_{scenario}_nap.safetensors")
    return str(path) if path.exists() else None


def _metabo_nap(name: str, seed: int, budget: int | None, problem: object | None) -> BaseSampler:
    """``metabo-nap`` (learned acquisition), ``metabo-nap-ei`` (EI from the same model), ``metabo-nap:<path>``."""
    scenario = getattr(problem, "scenario", None)
    model = nap_model_path(scenario, name) if scenario else None
    if model is None:
        raise ValueError(f"{name}: no NAP model for this problem (NAP models exist for YAHPO scenarios)")
    acquisition = "ei" if name == "metabo-nap-ei" else "nap"
    return _metabo_transfer(seed, problem, model=model, acquisition=acquisition, budget=budget)


def _random(seed: int) -> BaseSampler:
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=seed)


def _tpe(seed: int) -> BaseSampler:
    from optuna.samplers import TPESampler

    return TPESampler(multivariate=True, seed=seed)


def _gp(seed: int) -> BaseSampler:
    from optuna.samplers import GPSampler

    return GPSampler(seed=seed)


def _cmaes(seed: int) -> BaseSampler:
    from optuna.samplers import CmaEsSampler

    return CmaEsSampler(seed=seed)


def _warmstart_tpe(seed: int, problem: object | None = None) -> BaseSampler:
    """Transfer baseline: the best configurations of related past studies first, then multivariate TPE.

    Related studies exist only for YAHPO problems: random configurations of the scenario's *train* instances
    (``metabo.meta``). Elsewhere this is plain multivariate TPE.
    """
    from optuna.samplers import TPESampler

    scenario = getattr(problem, "scenario", None)
    if scenario is None or problem is None:
        return TPESampler(multivariate=True, seed=seed)
    from metabo.meta import WarmStartSampler

    return WarmStartSampler(f"yahpo:{scenario}", n_warm=5, seed=seed,
                            search_space=problem.search_space())  # type: ignore[attr-defined]


def _peer(name: str) -> Callable[..., BaseSampler]:
    def factory(seed: int, budget: int | None = None, problem: object | None = None) -> BaseSampler:
        from metabo.bench.peers import make_peer_sampler

        return make_peer_sampler(name, seed, budget=budget, problem=problem)

    return factory


_REGISTRY: dict[str, SamplerFactory] = {
    "metabo": _metabo,
    "random": _random,
    "tpe": _tpe,
    "gp": _gp,
    "cmaes": _cmaes,
    "warmstart-tpe": _warmstart_tpe,
    "metabo-transfer": _metabo_transfer,
    "metabo-related": lambda seed, problem=None: _metabo_transfer(seed, problem, finetuned=False),
}
_REGISTRY.update({name: _metabo_variant(**options) for name, options in _METABO_VARIANTS.items()})
_NEEDS_PROBLEM = ("warmstart-tpe", "metabo-transfer", "metabo-related")
_PEERS = ("hebo", "smac-hpo", "smac-bb", "botorch", "synetune-quantile", "synetune-boundingbox",
          "synetune-zeroshot")  # keys of metabo.bench.peers.PEERS (not imported here)
_TRANSFER_PEERS = ("synetune-quantile", "synetune-boundingbox", "synetune-zeroshot")  # also get the problem
_REGISTRY.update({name: _peer(name) for name in _PEERS})


def available_optimizers() -> list[str]:
    """Registered optimiser names (``metabo:<path>`` and ``metabo-nap:<path>`` variants are accepted too)."""
    return list(_REGISTRY) + ["metabo-nap", "metabo-nap-ei"]


def make_sampler(name: str, seed: int, budget: int | None = None, problem: object | None = None) -> BaseSampler:
    """A fresh sampler for optimiser ``name`` seeded with ``seed``.

    ``budget`` (the run's number of trials) reaches only peers whose defaults depend on it (SMAC's initial design);
    ``problem`` only transfer baselines that look up related past studies (``warmstart-tpe``, ``synetune-*``).
    Peer samplers run a worker process: call their ``close()`` when the run ends (garbage collection does too).
    """
    if name.startswith("metabo:"):
        return _metabo(seed, model=name.split(":", 1)[1])
    if name in ("metabo-nap", "metabo-nap-ei") or name.startswith("metabo-nap:"):
        return _metabo_nap(name, seed, budget, problem)
    if name not in _REGISTRY:
        raise KeyError(f"unknown optimiser {name!r}; available: {', '.join(available_optimizers())}, metabo:<path>")
    if name in _TRANSFER_PEERS:
        return _REGISTRY[name](seed, budget, problem)  # type: ignore[call-arg]
    if name in _PEERS:
        return _REGISTRY[name](seed, budget)  # type: ignore[call-arg]
    if name in _NEEDS_PROBLEM:
        return _REGISTRY[name](seed, problem=problem)  # type: ignore[call-arg]
    return _REGISTRY[name](seed)


def peer_info(sampler: BaseSampler) -> dict[str, object] | None:
    """For peer samplers: the peer, its environment and the library versions its worker reported."""
    info = getattr(sampler, "peer_info", None)
    return dict(info) if isinstance(info, dict) else None


def check_optimizer_names(names: list[str]) -> None:
    """Raise ``KeyError`` for any name ``make_sampler`` would refuse (before a long run starts)."""
    for name in names:
        nap = name in ("metabo-nap", "metabo-nap-ei") or name.startswith("metabo-nap:")
        if not name.startswith("metabo:") and not nap and name not in _REGISTRY:
            raise KeyError(f"unknown optimiser {name!r}; available: {', '.join(available_optimizers())}, "
                           "metabo:<path>")


def startup_trials(sampler: BaseSampler) -> int | None:
    """The sampler's own number of initial (non-model) trials, where it has one."""
    for attr in ("_n_startup_trials",):
        value = getattr(sampler, attr, None)
        if isinstance(value, int):
            return value
    return None


def model_fingerprint(name: str, problem: object | None = None) -> dict[str, str] | None:
    """For ``metabo`` optimisers: the model file used and the first 16 hex digits of its SHA-256.

    Stored with every run so results of different model files are never mixed unknowingly.
    """
    if not name.startswith("metabo"):
        return None
    import hashlib
    from pathlib import Path

    from metabo.model.io import default_model_path, multitask_model_path

    scenario = getattr(problem, "scenario", None)
    if name.startswith("metabo:"):
        path = Path(name.split(":", 1)[1])
    elif name.startswith("metabo-nap") and scenario is not None:
        path = Path(nap_model_path(scenario, name) or "missing")
    elif name in ("metabo-transfer", "metabo-related") and scenario is not None:
        finetuned = scenario_model_path(scenario) if name == "metabo-transfer" else None
        path = finetuned or multitask_model_path()
    else:
        path = default_model_path()
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        digest = f"unreadable: {exc}"
    return {"path": str(path), "sha256_16": digest}
