"""TNPSampler behaviour with a tiny random model (fast; quality is tested separately with the shipped model)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

import metabo
from conftest import make_tiny_model, tnp_messages
from metabo.acquisition import AcquisitionOptimizer
from metabo.sampler import PRED_MEAN_ATTR, PRED_STD_ATTR

N_STARTUP = 4


def sampler(model, seed=0, **kw) -> metabo.TNPSampler:
    kw.setdefault("n_startup_trials", N_STARTUP)
    kw.setdefault("n_candidates", 128)
    kw.setdefault("refine_steps", 3)
    return metabo.TNPSampler(model=model, seed=seed, **kw)


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -2.0, 3.0)
    y = trial.suggest_float("y", 1e-3, 10.0, log=True)
    return (x - 0.7) ** 2 + (math.log10(y) - 0.2) ** 2


def params_seq(study) -> list[dict]:
    return [t.params for t in study.trials]


@pytest.fixture
def spy_encode(monkeypatch):
    """Record the (x_ctx, y_ctx, x_pending) each model-driven suggestion hands to the acquisition optimiser."""
    calls: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
    original = AcquisitionOptimizer.encode

    def spy(self, x_ctx, y_ctx, x_pending=None, related=None):
        assert related is None
        calls.append((np.array(x_ctx), np.array(y_ctx), None if x_pending is None else np.array(x_pending)))
        cache = original(self, x_ctx, y_ctx, x_pending)
        # every context point, and every pending point (as a fantasy), is in the encoded context (+1: null token)
        n_pending = 0 if x_pending is None else len(x_pending)
        assert cache.keys[0].shape[-2] == len(y_ctx) + n_pending + 1
        return cache

    monkeypatch.setattr(AcquisitionOptimizer, "encode", spy)
    return calls


# ---------------------------------------------------------------------------------------------- construction
def test_constructor_validation(tiny_model):
    with pytest.raises(ValueError):
        metabo.TNPSampler(model=tiny_model, n_startup_trials=1)
    with pytest.raises(ValueError):
        metabo.TNPSampler(model=tiny_model, acquisition="nope")
    with pytest.raises(ValueError, match="quantile_weight"):
        metabo.TNPSampler(model=tiny_model, quantile_weight=2.0)
    with pytest.raises(ValueError, match="clip_worse"):
        metabo.TNPSampler(model=tiny_model, clip_worse=-1.0)


def test_model_from_path(tiny_model, tmp_path):
    from metabo.model import save_model

    path = save_model(tiny_model, tmp_path / "m.safetensors")
    study = optuna.create_study(sampler=sampler(str(path)))
    study.optimize(quadratic, n_trials=N_STARTUP + 1)
    assert PRED_MEAN_ATTR in study.trials[-1].user_attrs


def test_bad_model_path_fails_at_construction(tmp_path):
    from metabo.model import ModelLoadError

    with pytest.raises(ModelLoadError):
        metabo.TNPSampler(model=tmp_path / "missing.safetensors")
    (tmp_path / "m.pt").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError):
        metabo.TNPSampler(model=tmp_path / "m.pt")


# ---------------------------------------------------------------------------------------------- basics
def test_reproducible_with_seed(tiny_model):
    runs = []
    for _ in range(2):
        study = optuna.create_study(sampler=sampler(tiny_model, seed=11))
        study.optimize(quadratic, n_trials=9)
        runs.append(params_seq(study))
    assert runs[0] == runs[1]
    other = optuna.create_study(sampler=sampler(tiny_model, seed=12))
    other.optimize(quadratic, n_trials=9)
    assert params_seq(other)[N_STARTUP:] != runs[0][N_STARTUP:]


def test_startup_trials_are_random_sampler_draws(tiny_model, spy_encode):
    study = optuna.create_study(sampler=sampler(tiny_model, seed=3))
    study.optimize(quadratic, n_trials=N_STARTUP + 2)
    ref = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    ref.optimize(quadratic, n_trials=N_STARTUP)
    assert params_seq(study)[:N_STARTUP] == params_seq(ref)
    for t in study.trials[:N_STARTUP]:
        assert PRED_MEAN_ATTR not in t.user_attrs
    for t in study.trials[N_STARTUP:]:
        assert PRED_MEAN_ATTR in t.user_attrs
    assert len(spy_encode) == 2  # the model ran exactly for the two trials after start-up


def test_sobol_initial_design_fills_the_space_by_trial_number(tiny_model, spy_encode):
    from scipy.stats import qmc

    from metabo.space import SearchSpaceEncoder

    study = optuna.create_study(sampler=sampler(tiny_model, seed=5, initial_design="sobol"))
    study.optimize(quadratic, n_trials=N_STARTUP + 1)
    encoder = SearchSpaceEncoder(study.trials[0].distributions)
    expected = qmc.Sobol(2, scramble=True, seed=5).random_base2(2)
    x = encoder.encode_many(params_seq(study)[1:N_STARTUP])  # trial 0 is random: its space is not known yet
    np.testing.assert_allclose(x, expected[1:N_STARTUP], atol=1e-6)
    random_start = optuna.create_study(sampler=sampler(tiny_model, seed=5))
    random_start.optimize(quadratic, n_trials=N_STARTUP)
    assert params_seq(study)[0] == params_seq(random_start)[0]
    assert params_seq(study)[1:N_STARTUP] != params_seq(random_start)[1:N_STARTUP]
    assert len(spy_encode) == 1  # the model took over after the startup trials
    with pytest.raises(ValueError, match="initial_design"):
        metabo.TNPSampler(model=tiny_model, initial_design="lhs")


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_direction_reaches_the_model_as_larger_is_better(tiny_model, spy_encode, direction):
    sign = 1.0 if direction == "minimize" else -1.0
    # without the default clipping and compression, the context is exactly standardised as in pretraining
    study = optuna.create_study(direction=direction,
                                sampler=sampler(tiny_model, seed=1, compress_worse=False, clip_worse=0.0))
    study.optimize(lambda t: sign * quadratic(t), n_trials=N_STARTUP + 3)
    assert len(spy_encode) == 3
    x_ctx, y_ctx, _ = spy_encode[-1]
    done = [t for t in study.trials if t.state == TrialState.COMPLETE][: len(y_ctx)]
    values = np.array([t.value for t in done])
    best = int(np.argmin(values)) if direction == "minimize" else int(np.argmax(values))
    assert int(np.argmax(y_ctx)) == best
    assert y_ctx.mean() == pytest.approx(0.0, abs=1e-6) and y_ctx.std(ddof=1) == pytest.approx(1.0, rel=1e-6)
    assert x_ctx.shape == (len(done), 2) and ((x_ctx >= 0) & (x_ctx <= 1)).all()
    assert study.best_trial is not None


@pytest.mark.parametrize("default_clipping", [True, False])
def test_default_clipping_keeps_the_good_values_apart_beside_a_failure_plateau(tiny_model, spy_encode,
                                                                               default_clipping):
    def objective(trial: optuna.Trial) -> float:  # a plateau of failures far worse than the good values' spread
        x = trial.suggest_float("x", 0.0, 1.0)
        return 0.5 if x > 0.7 else 0.083 + 0.001 * x

    options = {} if default_clipping else {"clip_worse": 0.0}  # the default is 3
    study = optuna.create_study(sampler=sampler(tiny_model, seed=3, **options))
    for x in [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.8, 0.9]:  # fewer than a quarter fail
        study.enqueue_trial({"x": x})
    study.optimize(objective, n_trials=11)
    _, y_ctx, _ = spy_encode[-1]
    good = y_ctx[:8]  # the enqueued points below the plateau, best to worst by construction
    assert (np.diff(good) < 0).all()
    if default_clipping:
        assert np.ptp(good) > 0.5 * np.ptp(y_ctx)  # the good values keep most of the model's scale
    else:
        assert np.ptp(good) < 0.2 * np.ptp(y_ctx)  # without clipping the plateau squeezes them together


def test_predicted_mean_and_std_recorded_on_the_objective_scale(tiny_model):
    study = optuna.create_study(direction="minimize", sampler=sampler(tiny_model, seed=2))
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

    study = optuna.create_study(sampler=sampler(tiny_model, seed=5))
    study.optimize(objective, n_trials=N_STARTUP + 3)
    for t in study.trials[N_STARTUP:]:
        assert math.isfinite(t.user_attrs[PRED_MEAN_ATTR]) and math.isfinite(t.user_attrs[PRED_STD_ATTR])
        assert 0.0 <= t.params["x"] <= 1.0


@pytest.mark.parametrize("acquisition", ["pi", "ucb"])
def test_other_acquisitions(tiny_model, acquisition):
    study = optuna.create_study(sampler=sampler(tiny_model, acquisition=acquisition))
    study.optimize(quadratic, n_trials=N_STARTUP + 2)
    assert len(study.trials) == N_STARTUP + 2


# ---------------------------------------------------------------------------------------------- robustness
def test_failed_nan_inf_and_pruned_trials(tiny_model, tnp_warnings):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        z = trial.suggest_int("z", 1, 9)
        kind = trial.number % 6
        if kind == 1:
            raise RuntimeError("boom")
        if kind == 2:
            return float("nan")
        if kind == 3:
            return float("inf")
        if kind == 4:
            trial.report(x, step=0)
            raise optuna.TrialPruned()
        if kind == 5:
            return float("-inf")
        return x * z

    study = optuna.create_study(sampler=sampler(tiny_model, seed=4))
    study.optimize(objective, n_trials=24, catch=(RuntimeError,))
    states = [t.state for t in study.trials]
    assert len(states) == 24
    assert states.count(TrialState.FAIL) == 8  # exceptions and NaN
    assert states.count(TrialState.PRUNED) == 4
    assert any(PRED_MEAN_ATTR in t.user_attrs for t in study.trials)
    for t in study.trials:
        if PRED_MEAN_ATTR in t.user_attrs:
            assert math.isfinite(t.user_attrs[PRED_MEAN_ATTR])
    assert tnp_messages(tnp_warnings) == []


def test_only_infinite_values_so_far_never_crash(tiny_model, tnp_warnings):
    def objective(trial):
        trial.suggest_float("x", 0.0, 1.0)
        return float("inf") if trial.number < 6 else 1.0

    study = optuna.create_study(sampler=sampler(tiny_model))
    study.optimize(objective, n_trials=9)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_no_spurious_independent_sampling_warning_for_static_space(tiny_model, tnp_warnings):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        return float("inf") if trial.number < N_STARTUP + 1 else x

    study = optuna.create_study(sampler=sampler(tiny_model))
    study.optimize(objective, n_trials=N_STARTUP + 3)
    assert tnp_messages(tnp_warnings) == []


def test_static_space_emits_no_warning(tiny_model, tnp_warnings):
    study = optuna.create_study(sampler=sampler(tiny_model))
    study.optimize(quadratic, n_trials=N_STARTUP + 3)
    assert tnp_messages(tnp_warnings) == []


def test_running_trials_are_pending(tiny_model, spy_encode):
    study = optuna.create_study(sampler=sampler(tiny_model, seed=6))
    study.optimize(quadratic, n_trials=N_STARTUP + 1)
    spy_encode.clear()
    asked = []
    for _ in range(3):
        trial = study.ask()
        quadratic(trial)  # suggests every parameter; the trial stays RUNNING
        asked.append(trial)
    pending_counts = [0 if xp is None else len(xp) for _, _, xp in spy_encode]
    assert pending_counts == [0, 1, 2]
    # the pending points handed to the model are exactly the running trials' params
    _, _, xp = spy_encode[-1]
    from metabo.space import SearchSpaceEncoder

    enc = SearchSpaceEncoder(asked[0].distributions)
    np.testing.assert_allclose(xp, enc.encode_many([t.params for t in asked[:2]]), atol=1e-12)
    suggestions = [tuple(t.params[k] for k in sorted(t.params)) for t in asked]
    assert len(set(suggestions)) == 3
    for t in asked:
        assert PRED_MEAN_ATTR in study.trials[t.number].user_attrs
        study.tell(t, quadratic(t))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_dynamic_and_conditional_params_warn_once_each(tiny_model, tnp_warnings):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        value = x
        if trial.number % 2 == 0:  # conditional
            value += trial.suggest_float("cond", 0.0, 1.0)
        dyn = trial.suggest_int("dyn", 0, 3 + trial.number)  # dynamic range
        return value + dyn

    study = optuna.create_study(sampler=sampler(tiny_model))
    study.optimize(objective, n_trials=14)
    messages = tnp_messages(tnp_warnings)
    assert sum("'cond'" in m for m in messages) == 1
    assert sum("'dyn'" in m for m in messages) == 1
    assert len(messages) == 2
    # x still comes from the model
    assert all(PRED_MEAN_ATTR in t.user_attrs for t in study.trials[N_STARTUP:])
    for t in study.trials:
        assert 0 <= t.params["dyn"] <= 3 + t.number


def test_warning_can_be_disabled(tiny_model, tnp_warnings):
    def objective(trial):
        return trial.suggest_float("x", 0.0, 1.0) + trial.suggest_float(f"p{trial.number % 3}", 0, 1)

    study = optuna.create_study(sampler=sampler(tiny_model, warn_independent_sampling=False))
    study.optimize(objective, n_trials=N_STARTUP + 3)
    assert tnp_messages(tnp_warnings) == []


def test_multi_objective_rejected(tiny_model):
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler(tiny_model))
    with pytest.raises(ValueError, match="single-objective"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=N_STARTUP + 1)


# ---------------------------------------------------------------------------------------------- spaces and limits
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
    study = optuna.create_study(sampler=sampler(tiny_model, seed=8))
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


def test_more_dims_than_the_model_takes(tiny_model, tnp_warnings):
    n = 20
    assert n > tiny_model.cfg.max_dims

    def objective(trial):
        return sum((trial.suggest_float(f"x{i:02d}", 0.0, 1.0) - 0.3) ** 2 for i in range(n))

    study = optuna.create_study(sampler=sampler(tiny_model, seed=9))
    study.optimize(objective, n_trials=N_STARTUP + 4)
    assert tnp_messages(tnp_warnings) == []
    for k in range(N_STARTUP, len(study.trials)):
        t = study.trials[k]
        assert PRED_MEAN_ATTR in t.user_attrs
        best = min(study.trials[:k], key=lambda s: s.value)
        same = sum(math.isclose(t.params[p], best.params[p], rel_tol=1e-9, abs_tol=1e-12) for p in t.params)
        assert same >= n - tiny_model.cfg.max_dims  # the parameters left out are copied from the incumbent
        assert same < n  # but the model did move some


@pytest.mark.parametrize("with_float", [False, True])
def test_wide_categorical_is_explored(tiny_model, with_float):
    n = tiny_model.cfg.max_dims + 4

    def objective(trial):
        c = trial.suggest_categorical("c", list(range(n)))
        x = trial.suggest_float("x", 0.0, 1.0) if with_float else 0.0
        return (c - 7) ** 2 + x

    study = optuna.create_study(sampler=sampler(tiny_model, seed=0))
    study.optimize(objective, n_trials=N_STARTUP + 8)
    assert len({t.params["c"] for t in study.trials[N_STARTUP:]}) > 1


def test_more_trials_than_the_context_holds(tiny_model, spy_encode):
    limit = tiny_model.cfg.max_context
    n_old = limit + 40
    dists = {"x": FloatDistribution(-1.0, 1.0), "n": IntDistribution(0, 4)}
    rng = np.random.default_rng(0)
    trials = []
    for _ in range(n_old):
        x, n = float(rng.uniform(-1, 1)), int(rng.integers(0, 5))
        trials.append(create_trial(params={"x": x, "n": n}, distributions=dists, value=x * x + n))
    study = optuna.create_study(sampler=sampler(tiny_model, seed=1))
    study.add_trials(trials)
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2 + t.suggest_int("n", 0, 4), n_trials=2)
    assert len(spy_encode) == 2
    x_ctx, y_ctx, _ = spy_encode[0]
    assert len(y_ctx) == limit and x_ctx.shape == (limit, 2)
    # the best half of the trials is always kept
    values = np.array([t.value for t in trials])
    best_rows = {(round(trials[i].params["x"], 12), trials[i].params["n"]) for i in np.argsort(values)[: limit // 2]}
    from metabo.space import SearchSpaceEncoder

    enc = SearchSpaceEncoder(dists)
    kept = {(round(p["x"], 12), p["n"]) for p in (enc.decode(r) for r in x_ctx)}
    assert best_rows <= kept
    assert PRED_MEAN_ATTR in study.trials[-1].user_attrs


def test_bench_variants_change_only_the_options_they_name():
    from metabo.bench.optimizers import make_sampler

    default = make_sampler("metabo", 0)._transform_options
    assert default == dict(power=True, compress_worse=True, quantile_weight=0.0, clip_worse=3.0)
    assert make_sampler("metabo-noclip", 0)._transform_options == {**default, "clip_worse": 0.0}
    assert make_sampler("metabo-nocompress", 0)._transform_options == {**default, "compress_worse": False}
    ranks = make_sampler("metabo-bounds-ranks", 0)  # pinned to the settings it was measured with
    assert ranks._transform_options == {**default, "compress_worse": False, "clip_worse": 0.0, "quantile_weight": 0.5}
    assert ranks._acq_cfg.bound_candidates and not make_sampler("metabo", 0)._acq_cfg.bound_candidates

