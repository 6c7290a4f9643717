"""TNPSampler's suggestions with a tiny random model (fast; quality is tested separately with the shipped model):
what reaches the model, reproducibility, recorded predictions, admissible values, and spacing."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from conftest import tnp_messages
import metabo
from metabo.acquisition import CandidateSearchConfig
from metabo.normalise import ValueTransformConfig
from metabo.sampler import PRED_MEAN_ATTR, PRED_STD_ATTR
from metabo.space import SearchSpaceEncoder

from .helpers import FAST_SEARCH, N_STARTUP, make_sampler, params_seq, quadratic


def test_reproducible_with_seed(tiny_model):
    runs = []
    for _ in range(2):
        study = optuna.create_study(sampler=make_sampler(tiny_model, seed=11))
        study.optimize(quadratic, n_trials=9)
        runs.append(params_seq(study))
    assert runs[0] == runs[1]
    other = optuna.create_study(sampler=make_sampler(tiny_model, seed=12))
    other.optimize(quadratic, n_trials=9)
    assert params_seq(other)[N_STARTUP:] != runs[0][N_STARTUP:]


def test_startup_trials_are_random_sampler_draws(tiny_model, spy_encode):
    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=3))
    study.optimize(quadratic, n_trials=N_STARTUP + 2)
    ref = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    ref.optimize(quadratic, n_trials=N_STARTUP)
    assert params_seq(study)[:N_STARTUP] == params_seq(ref)
    for t in study.trials[:N_STARTUP]:
        assert PRED_MEAN_ATTR not in t.user_attrs
    for t in study.trials[N_STARTUP:]:
        assert PRED_MEAN_ATTR in t.user_attrs
    assert len(spy_encode) == 2  # the model ran exactly for the two trials after start-up
    assert [len(call.context) for call in spy_encode] == [N_STARTUP, N_STARTUP + 1]
    assert not any(call.context.has_related for call in spy_encode)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_direction_reaches_the_model_as_larger_is_better(tiny_model, spy_encode, direction):
    sign = 1.0 if direction == "minimize" else -1.0
    # without the default clipping and compression, the context is exactly standardised as in pretraining
    plain = ValueTransformConfig(compress_worse=False, clip_worse=0.0)
    study = optuna.create_study(direction=direction, sampler=make_sampler(tiny_model, seed=1, transform=plain))
    study.optimize(lambda t: sign * quadratic(t), n_trials=N_STARTUP + 3)
    assert len(spy_encode) == 3
    x_ctx, y_ctx = spy_encode[-1].x_own, spy_encode[-1].y_own
    done = [t for t in study.trials if t.state == TrialState.COMPLETE][: len(y_ctx)]
    values = np.array([t.value for t in done])
    best = int(np.argmin(values)) if direction == "minimize" else int(np.argmax(values))
    assert int(np.argmax(y_ctx)) == best
    assert y_ctx.mean() == pytest.approx(0.0, abs=1e-6) and y_ctx.std(ddof=1) == pytest.approx(1.0, rel=1e-6)
    assert x_ctx.shape == (len(done), 2) and ((x_ctx >= 0) & (x_ctx <= 1)).all()
    np.testing.assert_allclose(x_ctx, SearchSpaceEncoder(done[0].distributions).encode_many([t.params for t in done]))


@pytest.mark.parametrize("default_clipping", [True, False])
def test_default_clipping_keeps_the_good_values_apart_beside_a_failure_plateau(tiny_model, spy_encode,
                                                                               default_clipping):
    def objective(trial: optuna.Trial) -> float:  # a plateau of failures far worse than the good values' spread
        x = trial.suggest_float("x", 0.0, 1.0)
        return 0.5 if x > 0.7 else 0.083 + 0.001 * x

    options = {} if default_clipping else {"transform": ValueTransformConfig(clip_worse=0.0)}  # the default is 3
    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=3, **options))
    for x in [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.8, 0.9]:  # fewer than a quarter fail
        study.enqueue_trial({"x": x})
    study.optimize(objective, n_trials=11)
    y_ctx = spy_encode[-1].y_own
    good = y_ctx[:8]  # the enqueued points below the plateau, best to worst by construction
    assert (np.diff(good) < 0).all()
    if default_clipping:
        assert np.ptp(good) > 0.5 * np.ptp(y_ctx)  # the good values keep most of the model's scale
    else:
        assert np.ptp(good) < 0.2 * np.ptp(y_ctx)  # without clipping the plateau squeezes them together


def test_predicted_mean_and_std_recorded_on_the_objective_scale(tiny_model):
    study = optuna.create_study(direction="minimize", sampler=make_sampler(tiny_model, seed=2))
    study.optimize(lambda t: 1000.0 + quadratic(t), n_trials=N_STARTUP + 4)
    values = np.array([t.value for t in study.trials])
    for t in study.trials[N_STARTUP:]:
        mean, std = t.user_attrs[PRED_MEAN_ATTR], t.user_attrs[PRED_STD_ATTR]
        assert math.isfinite(mean) and math.isfinite(std) and std > 0
        # raw units (around 1000), not normalised units and not sign-flipped
        assert abs(mean - values.mean()) < 50 * (values.max() - values.min())


@pytest.mark.parametrize("shape", ["constant", "huge", "tiny_range", "heavy_tail"])
def test_awkward_objective_scales(tiny_model, shape):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        if shape == "constant":
            return 3.0
        if shape == "huge":
            return 1e8 * (x - 0.3) ** 2 + 5e9
        if shape == "tiny_range":
            return 1.0 + 1e-12 * x
        return math.exp(30 * x)

    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=5))
    study.optimize(objective, n_trials=N_STARTUP + 3)
    for t in study.trials[N_STARTUP:]:
        assert math.isfinite(t.user_attrs[PRED_MEAN_ATTR]) and math.isfinite(t.user_attrs[PRED_STD_ATTR])
        assert 0.0 <= t.params["x"] <= 1.0


@pytest.mark.parametrize("acquisition", ["pi", "ucb"])
def test_other_acquisitions(tiny_model, acquisition):
    study = optuna.create_study(sampler=make_sampler(tiny_model, acquisition=acquisition))
    study.optimize(quadratic, n_trials=N_STARTUP + 2)
    assert len(study.trials) == N_STARTUP + 2
    assert all(PRED_MEAN_ATTR in t.user_attrs for t in study.trials[N_STARTUP:])
    ei = optuna.create_study(sampler=make_sampler(tiny_model))
    ei.optimize(quadratic, n_trials=N_STARTUP + 2)
    assert params_seq(study)[:N_STARTUP] == params_seq(ei)[:N_STARTUP]
    assert params_seq(study)[N_STARTUP:] != params_seq(ei)[N_STARTUP:]  # the acquisition reached the search


def test_trials_keep_their_distance(tiny_model):
    sampler = make_sampler(tiny_model, search=CandidateSearchConfig(n_candidates=64, min_distance=0.05))
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("a", 0, 1) - 0.3) ** 2 + (t.suggest_float("b", 0, 1) - 0.6) ** 2,
                   n_trials=14)
    points = np.array([[t.params["a"], t.params["b"]] for t in study.trials])
    for i in range(N_STARTUP, len(points)):  # model-driven trials, each against every earlier one
        assert np.abs(points[:i] - points[i]).max(1).min() >= 0.05 - 1e-9


# ---------------------------------------------------------------------------------------------- spaces
MIXED = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "drop": FloatDistribution(0.0, 0.5, step=0.05),
    "width": IntDistribution(16, 512, log=True),
    "depth": IntDistribution(1, 8),
    "batch": IntDistribution(16, 128, step=16),
    "opt": CategoricalDistribution(["adam", "sgd", None]),
    "flag": CategoricalDistribution([True, False]),
    "k": CategoricalDistribution([1, 2.5, 10]),
}


def mixed_objective(trial):
    p = {
        "lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
        "drop": trial.suggest_float("drop", 0.0, 0.5, step=0.05),
        "width": trial.suggest_int("width", 16, 512, log=True),
        "depth": trial.suggest_int("depth", 1, 8),
        "batch": trial.suggest_int("batch", 16, 128, step=16),
        "opt": trial.suggest_categorical("opt", ["adam", "sgd", None]),
        "flag": trial.suggest_categorical("flag", [True, False]),
        "k": trial.suggest_categorical("k", [1, 2.5, 10]),
    }
    return (math.log10(p["lr"]) + 3) ** 2 + p["drop"] + abs(p["depth"] - 3) + (p["opt"] != "adam") + p["flag"] + p["k"]


def test_mixed_params_admissible(tiny_model, tnp_warnings):
    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=8))
    study.optimize(mixed_objective, n_trials=N_STARTUP + 6)
    for t in study.trials:
        for name, dist in MIXED.items():
            v = t.params[name]
            assert dist._contains(dist.to_internal_repr(v)), (name, v)
            if isinstance(dist, IntDistribution):
                assert type(v) is int
            if isinstance(dist, CategoricalDistribution):
                assert any(v is c or (v == c and type(v) is type(c)) for c in dist.choices), (name, v)
    assert all(PRED_MEAN_ATTR in t.user_attrs for t in study.trials[N_STARTUP:])
    # a relative value Optuna rejects as inadmissible would silently go to the independent sampler and warn
    assert tnp_messages(tnp_warnings) == []


def test_more_dims_than_the_model_takes(tiny_model, tnp_warnings, spy_encode):
    n = 20
    assert n > tiny_model.cfg.max_dims

    def objective(trial):
        return sum((trial.suggest_float(f"x{i:02d}", 0.0, 1.0) - 0.3) ** 2 for i in range(n))

    study = optuna.create_study(sampler=make_sampler(tiny_model, seed=9))
    study.optimize(objective, n_trials=N_STARTUP + 4)
    assert tnp_messages(tnp_warnings) == []
    assert all(call.context.x.shape[1] == tiny_model.cfg.max_dims for call in spy_encode)  # one subspace each
    for k in range(N_STARTUP, len(study.trials)):
        t = study.trials[k]
        assert PRED_MEAN_ATTR in t.user_attrs
        best = min(study.trials[:k], key=lambda s: s.value)
        same = sum(math.isclose(t.params[p], best.params[p], rel_tol=1e-9, abs_tol=1e-12) for p in t.params)
        assert same >= n - tiny_model.cfg.max_dims  # the parameters left out are copied from the incumbent
        assert same < n  # but the model did move some


def test_a_space_wider_than_the_default_model_takes_the_wide_model(spy_encode):
    from metabo.model.io import load_cached, wide_model_path

    n = 24

    def objective(trial):
        return sum((trial.suggest_float(f"x{i:02d}", 0.0, 1.0) - 0.3) ** 2 for i in range(n))

    sampler = metabo.TNPSampler(seed=0, search=FAST_SEARCH)
    assert sampler.model.cfg.max_dims == 16
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=6)
    assert sampler.model is load_cached(wide_model_path()) and sampler.model.cfg.max_dims == 64
    assert all(call.context.x.shape[1] == n for call in spy_encode)  # the whole space, no subspace
    assert PRED_MEAN_ATTR in study.trials[-1].user_attrs


def test_with_related_studies_a_wide_space_takes_the_wide_multitask_model(spy_encode):
    from metabo.meta import PastStudy
    from metabo.model.io import load_cached, wide_multitask_model_path

    n = 24
    space = {f"x{i:02d}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(n)}
    rng = np.random.default_rng(0)
    past = []
    for k in range(2):
        points = [{name: float(v) for name, v in zip(space, rng.random(n))} for _ in range(20)]
        past.append(PastStudy(f"past{k}", "test", dict(space), [(p, sum((v - 0.3) ** 2 for v in p.values()))
                                                                 for p in points]))

    def objective(trial):
        return sum((trial.suggest_float(name, 0.0, 1.0) - 0.3) ** 2 for name in space)

    sampler = metabo.TNPSampler(seed=0, related=past, search=FAST_SEARCH)
    assert sampler.model.cfg.max_dims == 16 and sampler.model.multi_task
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=4)
    assert sampler.model is load_cached(wide_multitask_model_path())
    assert sampler.model.cfg.max_dims == 64 and sampler.model.multi_task
    assert all(call.context.x.shape[1] == n for call in spy_encode)  # the whole space, no subspace
    assert all(call.n_related > 0 for call in spy_encode)


def test_suggestions_run_on_one_torch_thread_and_restore_the_setting(tiny_model, monkeypatch):
    import torch

    from metabo import context as ctx

    seen = []
    original = ctx.encode
    monkeypatch.setattr(ctx, "encode", lambda *a, **k: seen.append(torch.get_num_threads()) or original(*a, **k))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        study = optuna.create_study(sampler=make_sampler(tiny_model, seed=4))
        study.optimize(quadratic, n_trials=N_STARTUP + 2)
        assert seen == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
