"""Peer optimisers run in their own virtualenvs and driven through a subprocess protocol.

* ``envs``: builds the private environments (``setup``/``ensure``) and reports their versions;
* ``external``: ``ExternalSampler``, the Optuna side of the JSON-lines protocol;
* ``worker_protocol`` and ``*_worker.py``: the worker side, run by path with the environment's Python
  (standard library plus the peer library only: never metabo or Optuna).

``make_peer_sampler(name, seed)`` builds a sampler for ``hebo``, ``smac-hpo``, ``smac-bb`` or ``botorch``,
building the environment first if needed.
"""

from __future__ import annotations

from pathlib import Path

from metabo.bench.peers.external import ExternalSampler, PeerWorkerError

HERE = Path(__file__).resolve().parent

#: Peer name -> (worker script, options sent with ``init``).
PEERS: dict[str, tuple[str, dict[str, object]]] = {
    "hebo": ("hebo_worker.py", {}),
    "smac-hpo": ("smac_worker.py", {"facade": "hpo"}),
    "smac-bb": ("smac_worker.py", {"facade": "bb"}),
    "botorch": ("botorch_worker.py", {}),
}


def worker_script(filename: str) -> Path:
    """Path of a worker script shipped in this package."""
    return HERE / filename


def make_peer_sampler(name: str, seed: int, budget: int | None = None, threads: int = 1,
                      options: dict[str, object] | None = None) -> ExternalSampler:
    """An ``ExternalSampler`` for peer ``name``, its environment built first if missing (minutes, once).

    ``budget`` (the planned number of trials) is passed to peers whose defaults depend on it (SMAC sizes its
    initial design from ``n_trials``; its own default is 100). ``sampler.peer_info`` records the peer's
    environment and library versions. ``options`` override the worker's options (e.g. ``{"n_init": 3}`` for
    BoTorch, ``{"hebo_kwargs": {"rand_sample": 3}}`` for HEBO).
    """
    from metabo.bench.peers import envs

    script, defaults = PEERS[name]
    python = envs.ensure(name)
    options = {**defaults, **(options or {})}
    if budget is not None:
        options.setdefault("n_trials", int(budget))
    info = {"env": envs.env_name(name), "env_path": str(envs.env_dir(name))}
    return ExternalSampler(worker_script(script), python, seed=seed, options=options, name=name,
                           threads=threads, peer_info=info)


def peer_versions(name: str) -> dict[str, str]:
    """Library versions in peer ``name``'s environment as recorded when it was built (empty if not built)."""
    from metabo.bench.peers import envs

    return envs.versions(name)


__all__ = ["ExternalSampler", "PEERS", "PeerWorkerError", "make_peer_sampler", "peer_versions", "worker_script"]
