"""Run optimisers x problems x seeds with Optuna's ask/tell and store every evaluation.

Each run builds a fresh in-memory study, asks ``budget`` times with the problem's search space as fixed
distributions, times every ``study.ask()`` (the suggestion wall time, fallback included when one was needed),
evaluates the problem and tells the value. Nothing an optimiser raises is hidden:

* if ``study.ask()`` raises, the exception text is recorded on the trial (``error``), the half-made trial is
  marked failed, and the point is asked from a ``RandomSampler`` instead (``fallback``), so the run goes on;
* if ``study.tell()`` raises (in the sampler's ``after_trial``), the error is recorded; Optuna still stores
  the value;
* if the sampler cannot even be built, the run fails (``OptimizerSetupError``) and nothing is stored: random
  points are never recorded under the optimiser's name. ``run_benchmark`` first loads every model file the
  metabo runs will use, so a missing or broken model stops the benchmark before it starts;
* warnings raised while asking or telling are counted per distinct message.

Constrained problems report each constraint with ``trial.set_constraint`` before the value is told (Optuna 5's
samplers read them from the trial); multi-objective problems get a study with one ``minimize`` direction per
objective and tell the vector. Every trial's objective vector and constraint values are stored; for these two
kinds ``best_so_far`` is the best feasible value of the first objective (``inf`` until a feasible trial).

Iterative problems (``pruning/...``) are played the way a user's objective plays them
(``metabo.bench.problems.iterative.iterate``): the trial reports its learning curve epoch by epoch and asks the
run's pruner (``metabo.bench.pruners``; the key's optimiser is ``<optimizer>@<pruner>``) whether to stop; a
stopped trial is told ``PRUNED`` (Optuna keeps its last reported value as its value), the others their final
value. Every trial's state, last step and epochs are stored, and ``best_so_far`` is the best complete value. The
study is named after the problem and seed so that Hyperband's brackets are the same for every optimiser.

A run in which the optimiser raised is stored (its trials say which points came from the fallback) but does not
count as complete: ``run_benchmark`` reports it and runs it again next time, unless told to keep it.

Runs are executed in the calling process (``workers=1``) or in a spawned process pool; every worker sets its
torch thread count (default 1) before importing anything else that uses torch. Only the calling process writes
the SQLite store, one transaction per finished run, so a benchmark can be interrupted and resumed: complete
runs are skipped.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import multiprocessing
import os
import platform
import sys
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

import metabo
from metabo.bench.optimizers import (check_models, check_optimizer_names, make_sampler, model_fingerprint, peer_info,
                                     startup_trials)
from metabo.bench.problems import Problem, evaluate_outcome, get_problem, kind_of
from metabo.bench.problems.base import Outcome
from metabo.bench.problems.iterative import IterationOutcome, iterate
from metabo.bench.pruners import check_pruner, describe_pruner, make_pruner, run_name, split_run_name
from metabo.bench.reference import ensure_problem_constants
from metabo.bench.related_corpus import describe_related_corpus
from metabo.bench.store import ResultStore, RunKey, RunResult, TrialRecord

FALLBACK_SEED_OFFSET = 1_000_003


class OptimizerSetupError(RuntimeError):
    """The optimiser of a run could not be built (a missing model file, a problem it cannot run on, ...)."""


def set_threads(threads: int) -> None:
    """Pin torch (and OpenMP/MKL where not yet initialised) to ``threads`` threads; quiet Optuna's logging."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _error_text(exc: BaseException) -> str:
    tail = "".join(traceback.format_exception(exc)[-3:]).strip()
    return f"{type(exc).__name__}: {exc}\n{tail}"[:4000]


def _versions() -> dict[str, str]:
    import optuna
    import torch

    out = {"python": platform.python_version(), "optuna": optuna.__version__, "torch": torch.__version__,
           "metabo": metabo.__version__, "torch_threads": str(torch.get_num_threads())}
    for module in ("ioh", "onnxruntime"):  # only those the problems imported
        if module in sys.modules:
            out[module] = str(getattr(sys.modules[module], "__version__", "?"))
    return out


def _ask(study: Any, problem: Problem, space: dict[str, Any]) -> Any:
    """A new trial with its parameters: the whole ``space`` at once, or define-by-run where the problem suggests
    them itself (conditional spaces; the suggestions count as suggestion time)."""
    suggest = getattr(problem, "suggest", None)
    if suggest is None:
        return study.ask(space)
    trial = study.ask()
    suggest(trial)
    return trial


def execute_run(key: RunKey) -> RunResult:
    """Run one optimiser on one problem for ``key.budget`` evaluations (see the module docstring)."""
    import optuna
    from optuna.samplers import RandomSampler
    from optuna.trial import TrialState

    # the selection (select_problems) already decided whether reserved instances may run
    problem: Problem = get_problem(key.problem, allow_reserved=True)
    optimizer, pruner = split_run_name(key.optimizer)
    kind = kind_of(problem)
    space = problem.search_space()
    fallback = RandomSampler(seed=key.seed + FALLBACK_SEED_OFFSET)
    info: dict[str, object] = {"versions": _versions(), "model": model_fingerprint(optimizer, problem)}
    if getattr(problem, "scenario", None):  # YAHPO: the past studies the transfer optimisers read
        info["related_corpus"] = describe_related_corpus()
    if pruner != "none" and kind != "iterative":
        raise OptimizerSetupError(f"pruner {pruner!r} on {key.problem}: pruners need iterative problems "
                                  "(pruning/...), whose trials report by step")
    try:
        primary = make_sampler(optimizer, key.seed, budget=key.budget, problem=problem)
    except Exception as exc:  # noqa: BLE001 - the run fails: its points would all be random ones
        raise OptimizerSetupError(f"cannot build optimiser {optimizer!r} for {key.problem}: "
                                  f"{type(exc).__name__}: {exc}") from exc
    constraint_names = tuple(getattr(problem, "constraint_names", ()))
    directions = ["minimize"] * int(getattr(problem, "n_objectives", 1))
    if kind == "iterative":
        max_step = int(problem.max_step)  # type: ignore[attr-defined]
        info["pruner"] = describe_pruner(pruner, max_step)
        study = optuna.create_study(directions=directions, sampler=primary, pruner=make_pruner(pruner, max_step),
                                    study_name=f"{key.problem}/seed{key.seed}")
    else:
        study = optuna.create_study(directions=directions, sampler=primary)
    caught_warnings: Counter[str] = Counter()
    records: list[TrialRecord] = []
    best = float("inf")
    start = time.perf_counter()
    for index in range(key.budget):
        error_text: str | None = None
        used_fallback = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            try:
                trial = _ask(study, problem, space)
            except Exception as exc:  # noqa: BLE001 - recorded, never hidden
                error_text = _error_text(exc)
                for stuck in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    # straight to storage: telling would call the failing sampler's after_trial again
                    study._storage.set_trial_state_values(stuck._trial_id, TrialState.FAIL)
                study.sampler = fallback
                try:
                    trial = _ask(study, problem, space)
                finally:
                    study.sampler = primary
                used_fallback = True
            suggest_seconds = time.perf_counter() - t0
            steps: IterationOutcome | None = None
            if kind == "iterative":
                steps = iterate(problem, trial)
                outcome = Outcome((steps.value,))
            else:
                outcome = evaluate_outcome(problem, trial.params)
            value = outcome.values[0]
            for name, constraint in zip(constraint_names, outcome.constraints, strict=True):
                trial.set_constraint(name, constraint)  # before tell: a finished trial's attributes are frozen
            try:
                if steps is not None and steps.pruned:
                    study.tell(trial, state=TrialState.PRUNED)  # Optuna keeps the last reported value
                else:
                    study.tell(trial, list(outcome.values) if len(outcome.values) > 1 else value)
            except Exception as exc:  # noqa: BLE001 - recorded, never hidden
                error_text = (error_text + "\n---\n" if error_text else "") + _error_text(exc)
        for w in caught:
            caught_warnings[f"{w.category.__name__}: {str(w.message)[:300]}"] += 1
        if outcome.feasible and not (steps is not None and steps.pruned):
            best = min(best, value)
        plain = kind in ("single", "iterative")
        records.append(TrialRecord(index, value, best, suggest_seconds, error=error_text is not None,
                                   fallback=used_fallback, error_text=error_text, params=dict(trial.params),
                                   values=None if plain else outcome.values,
                                   constraints=dict(zip(constraint_names, outcome.constraints)) or None,
                                   feasible=outcome.feasible if constraint_names else None,
                                   state=None if steps is None else steps.state,
                                   last_step=None if steps is None else steps.last_step,
                                   epochs=None if steps is None else steps.epochs))
    wall = time.perf_counter() - start
    peer = peer_info(primary)
    if peer is not None:
        info["peer"] = peer
    close = getattr(primary, "close", None)
    if callable(close):
        close()  # external peers: end the worker process now rather than at garbage collection
    return RunResult(key=key, trials=records, startup_trials=startup_trials(primary),
                     wall_seconds=wall, finished_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                     warnings=dict(caught_warnings), info=info)


def plan_runs(optimizers: Sequence[str], problems: Sequence[Problem], seeds: Iterable[int],
              budget: int, pruner: str = "none") -> list[RunKey]:
    """Every (optimiser, problem, seed) run, ordered so that each problem-seed pair finishes early; with a pruner
    the keys' optimisers are ``<optimizer>@<pruner>`` (``metabo.bench.pruners.run_name``)."""
    seeds = list(seeds)
    return [RunKey(run_name(o, pruner), p.name, s, budget) for s in seeds for p in problems for o in optimizers]


def check_pruner_problems(pruner: str, problems: Sequence[Problem]) -> None:
    """``ValueError`` for an unknown pruner, or a pruner with problems whose trials report nothing to it."""
    check_pruner(pruner)
    plain = [p.name for p in problems if kind_of(p) != "iterative"]
    if pruner != "none" and plain:
        raise ValueError(f"--pruner {pruner} needs iterative problems (pruning/...), whose trials report by epoch; "
                         f"not {', '.join(plain[:3])}{' ...' if len(plain) > 3 else ''}")


def run_benchmark(optimizers: Sequence[str], problems: Sequence[Problem], seeds: Iterable[int], budget: int,
                  store: str | Path, workers: int = 1, threads: int = 1, progress: bool = True,
                  retry_errors: bool = True, pruner: str = "none") -> dict[str, int]:
    """Run every missing (optimiser, problem, seed, budget) run and store it.

    Args:
        optimizers: names understood by ``metabo.bench.optimizers.make_sampler``.
        problems: problems from ``metabo.bench.problems``.
        seeds: sampler seeds.
        budget: evaluations per run.
        store: SQLite file (created if missing).
        workers: parallel processes (1: run in this process, after setting its torch threads).
        threads: torch threads per run.
        progress: show a tqdm bar over runs.
        retry_errors: rerun stored runs in which the optimiser raised (the default: such runs are not complete
            results); ``False`` keeps them.
        pruner: ``none``, ``median`` or ``hyperband`` (``metabo.bench.pruners``; iterative problems only): runs
            are stored as ``<optimizer>@<pruner>``.

    With ``workers > 1`` the pool uses the ``spawn`` start method, so a script calling this must guard its entry
    point with ``if __name__ == "__main__":``.

    Raises:
        KeyError: an unknown optimiser name; ``ValueError``: an unknown pruner, or a pruner with problems that
        are not iterative; ``ModelLoadError``: a model file a metabo run needs is missing or
        broken (both before anything runs or is written).

    Returns:
        counts: ``planned``, ``skipped`` (already complete), ``done`` (stored, the optimiser never raised),
        ``with_errors`` (stored, but the optimiser raised and random points stood in: not complete, rerun next
        time unless ``retry_errors=False``), ``failed`` (not stored, retried on the next call: the optimiser could
        not be built, or something outside it raised, e.g. the objective).
    """
    from tqdm.auto import tqdm

    if budget < 1:
        raise ValueError("budget must be at least 1")
    check_optimizer_names(list(optimizers))
    check_pruner_problems(pruner, problems)
    check_models(list(optimizers), problems)
    db = ResultStore(store)
    ensure_problem_constants(db, problems)  # random medians of non-BBOB problems: computed once per store
    planned = plan_runs(optimizers, problems, seeds, budget, pruner)
    complete = db.complete_keys(with_errors=not retry_errors)
    todo = [k for k in planned if k not in complete]
    counts = {"planned": len(planned), "skipped": len(planned) - len(todo), "done": 0, "with_errors": 0,
              "failed": 0}
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress)
    bar.set_postfix(skipped=counts["skipped"])

    def finish(key: RunKey, result: RunResult | None, exc: BaseException | None) -> None:
        where = f"{key.optimizer} on {key.problem} seed {key.seed}"
        if result is not None:
            db.put_run(result)
            if result.n_errors:
                counts["with_errors"] += 1
                bar.write(f"{where}: {result.n_errors} error(s), {result.n_fallbacks} random fallback(s), stored "
                          f"as incomplete; first: {(result.first_error or '').splitlines()[0]}")
            else:
                counts["done"] += 1
        else:
            counts["failed"] += 1
            text = str(exc) if isinstance(exc, OptimizerSetupError) else f"{type(exc).__name__}: {exc}"
            bar.write(f"{where} failed and was not stored: {' '.join(text.split())}")
        bar.update(1)

    if workers <= 1:
        set_threads(threads)
        for key in todo:
            try:
                finish(key, execute_run(key), None)
            except Exception as exc:  # noqa: BLE001 - reported, run retried next time
                finish(key, None, exc)
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=set_threads,
                                    initargs=(threads,)) as pool:
            futures = {pool.submit(execute_run, key): key for key in todo}
            for future in cf.as_completed(futures):
                exc = future.exception()
                finish(futures[future], None if exc else future.result(), exc)
    bar.close()
    return counts
