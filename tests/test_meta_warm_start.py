"""WarmStartSampler: the first trials are the related studies' best configurations, then it delegates."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import RandomSampler, TPESampler

from metabo.meta import PastStudy, WarmStartSampler
from metabo.meta.warm_start import USER_ATTR

SPACE = {"x": FloatDistribution(0.0, 1.0), "n": IntDistribution(1, 8), "opt": CategoricalDistribution(("a", "b"))}


class RecordingSampler(RandomSampler):
    """A random sampler that records which calls reached it."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.independent: list[tuple[int, str]] = []
        self.relative: list[int] = []

    def sample_relative(self, study, trial, search_space):
        self.relative.append(trial.number)
        return super().sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, name, dist):
        self.independent.append((trial.number, name))
        return super().sample_independent(study, trial, name, dist)


def _related() -> list[PastStudy]:
    # "partial" lacks opt (overlap 2/3) but is listed first: ranking by overlap must put "full" first
    partial = PastStudy("partial", "memory", {"x": FloatDistribution(0, 1), "n": IntDistribution(1, 8)},
                        [({"x": 0.2, "n": 3}, 0.5), ({"x": 0.8, "n": 6}, 0.9), ({"x": 0.4, "n": 2}, 0.1)],
                        direction="maximize")
    full = PastStudy("full", "memory", SPACE,
                     [({"x": 0.1, "n": 1, "opt": "a"}, 3.0), ({"x": 0.7, "n": 5, "opt": "b"}, 1.0),
                      ({"x": 5.0, "n": 4, "opt": "a"}, -9.0),  # best, but outside the target: dropped
                      ({"x": 0.9, "n": 8, "opt": "b"}, 2.0)])
    copy = PastStudy("copy", "memory", SPACE, [({"x": 0.7, "n": 5, "opt": "b"}, 0.0)])  # a duplicate config
    return [partial, full, copy]


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0, 1) + trial.suggest_int("n", 1, 8) + (trial.suggest_categorical("opt", ("a", "b")) == "b")


def test_first_trials_are_best_past_configs_then_delegates():
    base = RecordingSampler(seed=0)
    sampler = WarmStartSampler(_related(), base_sampler=base, n_warm=4, search_space=SPACE)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=6)
    params = [t.params for t in study.trials]
    # round-robin in overlap order (full, partial, copy); full's best row is out of range (dropped) and
    # copy's only config duplicates full's best in-range one (skipped)
    assert params[0] == {"x": 0.7, "n": 5, "opt": "b"}
    assert params[1]["x"] == 0.8 and params[1]["n"] == 6  # partial's best (maximised)
    assert params[2] == {"x": 0.9, "n": 8, "opt": "b"}
    assert params[3]["x"] == 0.2 and params[3]["n"] == 3
    # what the past configs lack (opt for "partial") came from the base sampler, nothing else did
    assert [c for c in base.independent if c[0] < 4] == [(1, "opt"), (3, "opt")]
    assert [t.user_attrs[USER_ATTR] for t in study.trials[:4]] == ["full", "partial", "full", "partial"]
    # from trial 4 on, everything is the base sampler's
    assert base.relative == [4, 5]
    assert {n for t, n in base.independent if t >= 4} == {"x", "n", "opt"}
    assert USER_ATTR not in study.trials[4].user_attrs


def test_learnt_search_space():
    # without search_space, trial 0 knows only "x": every study overlaps fully, so related's order decides;
    # from trial 1 on the space learnt from trial 0 ranks "full" first, skipping what was already tried
    sampler = WarmStartSampler(_related(), base_sampler=RecordingSampler(), n_warm=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=5)
    xn = [(t.params["x"], t.params["n"]) for t in study.trials]
    assert xn[:4] == [(0.8, 6), (0.7, 5), (0.9, 8), (0.2, 3)]
    assert study.trials[1].params["opt"] == "b"


def test_plan_ranks_by_overlap_and_skips_duplicates():
    sampler = WarmStartSampler(_related(), n_warm=3, search_space=SPACE)
    plan = sampler.warm_plan()
    assert [c.study for c in plan] == ["full", "partial", "full", "partial", "full", "partial"]
    assert plan[0].params == {"x": 0.7, "n": 5, "opt": "b"} and plan[0].value == 1.0
    assert plan[1].params == {"x": 0.8, "n": 6}


def test_out_of_range_configs_clip_and_params_snap_to_the_target():
    space = {"x": FloatDistribution(0.0, 1.0, step=0.25), "n": IntDistribution(1, 8),
             "opt": CategoricalDistribution(("a", "b"))}
    sampler = WarmStartSampler(_related()[1:2], base_sampler=RecordingSampler(), n_warm=1, search_space=space,
                               out_of_range="clip")
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1, step=0.25) + t.suggest_int("n", 1, 8)
                   + len(t.suggest_categorical("opt", ("a", "b"))), n_trials=1)
    assert study.trials[0].params == {"x": 1.0, "n": 4, "opt": "a"}  # x=5.0 clipped to 1.0


def test_defaults_and_loaded_sources(tmp_path):
    url = f"sqlite:///{tmp_path / 'past.db'}"
    past = optuna.create_study(study_name="old", storage=url, direction="maximize")
    past.add_trial(optuna.trial.create_trial(params={"x": 0.3}, distributions={"x": SPACE["x"]}, value=1.0))
    past.add_trial(optuna.trial.create_trial(params={"x": 0.6}, distributions={"x": SPACE["x"]}, value=2.0))
    sampler = WarmStartSampler([url], n_warm=2, seed=3)
    assert isinstance(sampler.base_sampler, TPESampler) and sampler.base_sampler._multivariate
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert [t.params["x"] for t in study.trials[:2]] == [0.6, 0.3]
    assert [s.name for s in sampler.past_studies] == ["old"]
    with pytest.raises(ValueError, match="n_warm"):
        WarmStartSampler([], n_warm=-1)


def test_existing_trials_are_not_repeated():
    sampler = WarmStartSampler(_related()[1:2], base_sampler=RecordingSampler(), n_warm=2, search_space=SPACE)
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"x": 0.7, "n": 5, "opt": "b"})  # trial 0 already holds the best past config
    study.optimize(_objective, n_trials=2)
    assert study.trials[1].params == {"x": 0.9, "n": 8, "opt": "b"}


def test_bench_registry_warmstart_tpe_falls_back_to_tpe_without_related_data() -> None:
    from optuna.samplers import TPESampler

    from metabo.bench.optimizers import available_optimizers, make_sampler

    assert "warmstart-tpe" in available_optimizers()
    assert isinstance(make_sampler("warmstart-tpe", 0, problem=None), TPESampler)
