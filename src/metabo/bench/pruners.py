"""Pruners of a benchmark run (``metabo bench --pruner median|hyperband|none``) and how they enter the run key.

A pruner is part of a run's configuration: the store keeps a run under the optimiser's name with the pruner
appended, ``<optimizer>@<pruner>`` (``metabo@median``, ``tpe@hyperband``), so results with different pruners
never mix; ``none`` appends nothing (every run stored before pruners existed is a run without one). Pruners only
act on iterative problems (``pruning/...``), whose trials report by epoch:

* ``median``: Optuna's ``MedianPruner(n_startup_trials=5, n_warmup_steps=4)``: once 5 trials have completed, a
  trial whose best value so far is worse than the median of the completed trials' values at the same epoch
  stops, from epoch 4 on;
* ``hyperband``: Optuna's ``HyperbandPruner(min_resource=1, max_resource=<the problem's last epoch>,
  reduction_factor=3)``: brackets of successive halving with rungs at epochs 1, 3, 9, 27. Optuna shows every
  sampler only the trials of the asked trial's bracket (``optuna.pruners._filter_study``), and assigns a trial's
  bracket from a hash of the study's name and the trial number, so the runner names a study after the problem
  and seed (``study_name``): every optimiser of a problem-seed pair gets the same bracket sequence, and reruns
  the same;
* ``none``: ``NopPruner``; every trial trains all epochs.
"""

from __future__ import annotations

from typing import Any

from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, NopPruner

PRUNERS = ("none", "median", "hyperband")
SEPARATOR = "@"
MEDIAN_STARTUP_TRIALS = 5
MEDIAN_WARMUP_STEPS = 4
HYPERBAND_MIN_RESOURCE = 1
HYPERBAND_REDUCTION_FACTOR = 3


def check_pruner(name: str) -> str:
    """``name`` if it is a known pruner, else ``ValueError`` naming them."""
    if name not in PRUNERS:
        raise ValueError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")
    return name


def make_pruner(name: str, max_resource: int) -> BasePruner:
    """A fresh Optuna pruner ``name`` for trials whose last step is ``max_resource`` (see the module docstring)."""
    check_pruner(name)
    if name == "median":
        return MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=MEDIAN_WARMUP_STEPS)
    if name == "hyperband":
        return HyperbandPruner(min_resource=HYPERBAND_MIN_RESOURCE, max_resource=int(max_resource),
                               reduction_factor=HYPERBAND_REDUCTION_FACTOR)
    return NopPruner()


def describe_pruner(name: str, max_resource: int) -> dict[str, Any]:
    """What a run records about its pruner (the class and its settings)."""
    check_pruner(name)
    settings: dict[str, Any] = {}
    if name == "median":
        settings = {"n_startup_trials": MEDIAN_STARTUP_TRIALS, "n_warmup_steps": MEDIAN_WARMUP_STEPS}
    elif name == "hyperband":
        settings = {"min_resource": HYPERBAND_MIN_RESOURCE, "max_resource": int(max_resource),
                    "reduction_factor": HYPERBAND_REDUCTION_FACTOR}
    return {"name": name, "class": type(make_pruner(name, max_resource)).__name__, **settings}


def run_name(optimizer: str, pruner: str) -> str:
    """The name a run is stored under: ``optimizer`` with ``@pruner`` appended (nothing for ``none``)."""
    check_pruner(pruner)
    if SEPARATOR in optimizer:
        raise ValueError(f"optimiser name {optimizer!r} holds {SEPARATOR!r}; choose the pruner with --pruner")
    return optimizer if pruner == "none" else f"{optimizer}{SEPARATOR}{pruner}"


def split_run_name(name: str) -> tuple[str, str]:
    """``(optimizer, pruner)`` of a stored run name (``"metabo@median"`` -> ``("metabo", "median")``; a name
    without a known pruner suffix -> ``(name, "none")``)."""
    base, sep, pruner = name.rpartition(SEPARATOR)
    if sep and base and pruner in PRUNERS and pruner != "none":
        return base, pruner
    return name, "none"
