"""Peer optimisers run in their own virtualenvs and driven through a subprocess protocol.

* ``envs``: builds the private environments (``setup``/``ensure``) and reports their versions;
* ``external``: ``ExternalSampler``, the Optuna side of the JSON-lines protocol;
* ``worker_protocol`` and ``*_worker.py``: the worker side, run by path with the environment's Python
  (standard library plus the peer library only: never metabo or Optuna).

``make_peer_sampler(name, seed)`` builds a sampler for ``hebo``, ``smac-hpo``, ``smac-bb`` or ``botorch``,
building the environment first if needed. The transfer peers ``synetune-quantile``, ``synetune-boundingbox`` and
``synetune-zeroshot`` (Syne Tune 0.16.0's QuantileBasedSurrogateSearcher, BoundingBox + BOTorch and
ZeroShotTransfer; see ``synetune_worker.py``) also need the ``problem``: their past tasks are the YAHPO *train*
instances of its scenario (``metabo.meta.load_corpus``, aligned to its search space, the problem's own instance
excluded), sent with ``init``. A problem without a YAHPO scenario has no related data: ``ValueError`` at
construction (the benchmark runner records it as a setup error), never a silent stand-in.
"""

from __future__ import annotations

from pathlib import Path

from metabo.bench.peers import envs
from metabo.bench.peers.external import ExternalSampler, PeerWorkerError, encode_params
from metabo.bench.related_corpus import related_sources
from metabo.meta import load_corpus

HERE = Path(__file__).resolve().parent

#: Peer name -> (worker script, options sent with ``init``).
PEERS: dict[str, tuple[str, dict[str, object]]] = {
    "hebo": ("hebo_worker.py", {}),
    "smac-hpo": ("smac_worker.py", {"facade": "hpo"}),
    "smac-bb": ("smac_worker.py", {"facade": "bb"}),
    "botorch": ("botorch_worker.py", {}),
    "synetune-quantile": ("synetune_worker.py", {"method": "quantile"}),
    "synetune-boundingbox": ("synetune_worker.py", {"method": "boundingbox"}),
    "synetune-zeroshot": ("synetune_worker.py", {"method": "zeroshot"}),
}

#: Peers that take a conditional space with its conditions declared (option ``conditions``: child, parent and
#: the parent's choice indices that make the child active).
CONDITIONAL_PEERS = ("smac-hpo", "smac-bb")

#: Peers that need past studies of related tasks (``problem`` must be given to ``make_peer_sampler``).
TRANSFER_PEERS = ("synetune-quantile", "synetune-boundingbox", "synetune-zeroshot")


def worker_script(filename: str) -> Path:
    """Path of a worker script shipped in this package."""
    return HERE / filename


def transfer_tasks(problem: object, yahpo_n_configs: int = 100, seed: int = 0) -> list[dict[str, object]]:
    """Past tasks for a transfer peer: ``[{"name", "observations": [[worker params, value], ...]}]``, minimised.

    The YAHPO *train* instances of ``problem.scenario`` (``metabo.bench.related_corpus``), in the worker encoding
    of the problem's search space; the problem's own instance and observations outside the space are left out.
    Raises ``ValueError`` for a problem without a YAHPO scenario (no related data).
    """
    scenario = getattr(problem, "scenario", None)
    name = getattr(problem, "name", repr(problem))
    if scenario is None or not hasattr(problem, "search_space"):
        raise ValueError(f"transfer peers need related past studies, which exist only for YAHPO problems "
                         f"(metabo.meta, yahpo:<scenario> train instances); {name!r} has none")
    space = problem.search_space()  # type: ignore[attr-defined]
    tasks: list[dict[str, object]] = []
    for study in load_corpus(related_sources(scenario), target_space=space, yahpo_n_configs=yahpo_n_configs,
                             seed=seed):
        if study.name == name:
            continue  # never transfer from the task being benchmarked
        sign = -1.0 if study.maximize else 1.0
        observations = []
        for params, value in study.observations:
            if not all(n in params and d._contains(d.to_internal_repr(params[n])) for n, d in space.items()):
                continue
            observations.append([encode_params(space, params), sign * float(value)])
        if len(observations) >= 2:
            tasks.append({"name": study.name, "observations": observations})
    if not tasks:
        raise ValueError(f"no past study of yahpo:{scenario} fits {name!r}'s search space")
    return tasks


def make_peer_sampler(name: str, seed: int, budget: int | None = None, threads: int = 1,
                      options: dict[str, object] | None = None, problem: object | None = None) -> ExternalSampler:
    """An ``ExternalSampler`` for peer ``name``, its environment built first if missing (minutes, once).

    ``budget`` (the planned number of trials) is passed to peers whose defaults depend on it (SMAC sizes its
    initial design from ``n_trials``; its own default is 100). ``sampler.peer_info`` records the peer's
    environment and library versions. ``options`` override the worker's options (e.g. ``{"n_init": 3}`` for
    BoTorch, ``{"hebo_kwargs": {"rand_sample": 3}}`` for HEBO).
    """
    script, defaults = PEERS[name]
    search_space = None
    info: dict[str, object] = {}
    transfer = None
    if name in TRANSFER_PEERS:
        if problem is None:
            raise ValueError(f"{name} is a transfer peer: pass the problem (its related past studies are needed)")
        transfer = transfer_tasks(problem)  # before building anything: fails fast without related data
        search_space = problem.search_space()  # type: ignore[attr-defined]  # the first point is the peer's too
        info["transfer_tasks"] = len(transfer)
        info["transfer_observations"] = sum(len(t["observations"]) for t in transfer)  # type: ignore[arg-type]
        info["events"] = {"random_fallbacks": 0, "warnings": 0}  # Syne Tune's logged fallbacks, counted here
    declared = getattr(problem, "conditions", None)
    conditions = None
    if callable(declared):  # a conditional space: given whole, with its conditions, to peers that take them
        if name not in CONDITIONAL_PEERS:
            raise ValueError(f"{name} takes no conditional spaces; peers that do: {', '.join(CONDITIONAL_PEERS)}")
        search_space = problem.search_space()  # type: ignore[attr-defined]
        conditions = [{"child": c.child, "parent": c.parent, "values": sorted(c.choices)} for c in declared()]
    python = envs.ensure(name)
    options = {**defaults, **(options or {})}
    if conditions is not None:
        options["conditions"] = conditions
    if transfer is not None:
        options.setdefault("transfer", transfer)
    if budget is not None:
        options.setdefault("n_trials", int(budget))
    info = {"env": envs.env_name(name), "env_path": str(envs.env_dir(name)), **info}
    return ExternalSampler(worker_script(script), python, seed=seed, options=options, name=name,
                           threads=threads, peer_info=info, search_space=search_space)


def peer_versions(name: str) -> dict[str, str]:
    """Library versions in peer ``name``'s environment as recorded when it was built (empty if not built)."""
    return envs.versions(name)


__all__ = ["CONDITIONAL_PEERS", "ExternalSampler", "PEERS", "TRANSFER_PEERS", "transfer_tasks", "PeerWorkerError",
           "make_peer_sampler", "peer_versions", "worker_script"]
