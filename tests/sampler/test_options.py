"""TNPSampler's options: validation at construction, the model argument, defaults, and the bench variants that
set them."""

from __future__ import annotations

import inspect

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

import metabo
from metabo.acquisition import CandidateSearchConfig
from metabo.normalise import DEFAULT_TRANSFORM, ValueTransformConfig
from conftest import tnp_messages
from metabo.sampler import PRED_MEAN_ATTR

from .helpers import N_STARTUP, make_sampler, quadratic

OPTIONS = ["model", "related", "search_space", "seed", "n_startup_trials", "acquisition", "budget",
           "independent_sampler", "transform", "search", "warn_independent_sampling",
           "constraints_func"]  # the last: Optuna's deprecated argument, accepted as GPSampler and TPE accept it


def test_at_most_twelve_keyword_only_options():
    parameters = inspect.signature(metabo.TNPSampler.__init__).parameters
    assert len(parameters) - 1 <= 12
    assert list(parameters)[1:] == OPTIONS
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(parameters.values())[1:])


@pytest.mark.parametrize("options, error, match", [
    (dict(n_startup_trials=-1), ValueError, "n_startup_trials"),
    (dict(acquisition="nope"), ValueError, "acquisition"),
    (dict(acquisition="nap"), ValueError, "budget"),
    (dict(acquisition="nap", budget=0), ValueError, "budget"),
    (dict(acquisition="nap", budget=10), ValueError, "acquisition head"),
    (dict(transform={"clip_worse": 0.0}), TypeError, "ValueTransformConfig"),
    (dict(search={"n_candidates": 64}), TypeError, "CandidateSearchConfig"),
])
def test_constructor_validation(tiny_model, options, error, match):
    with pytest.raises(error, match=match):
        metabo.TNPSampler(model=tiny_model, **options)


def test_option_objects_validate_their_own_values():
    with pytest.raises(ValueError, match="clip_worse"):
        ValueTransformConfig(clip_worse=-1.0)
    with pytest.raises(ValueError, match="min_distance"):
        CandidateSearchConfig(min_distance=1.0)


def test_properties_and_startup_defaults(tiny_model):
    sampler = metabo.TNPSampler(model=tiny_model)
    assert sampler.model is tiny_model
    assert sampler.n_startup_trials == 4
    assert metabo.TNPSampler(model=tiny_model, n_startup_trials=2).n_startup_trials == 2
    with pytest.raises(AttributeError):
        sampler.n_startup_trials = 3  # read-only
    with pytest.raises(AttributeError):
        sampler.model = tiny_model


def _objective(kind: str):
    """A 2-D objective of one, two objectives, or one objective with a constraint."""
    def objective(trial: optuna.Trial):
        x, y = trial.suggest_float("x", -1.0, 1.0), trial.suggest_int("y", 0, 4)
        if kind == "constrained":
            trial.set_constraint("c", x - 0.5)
        return (x * x + y, (x - 1) ** 2 - y) if kind == "two objectives" else x * x + y
    return objective


@pytest.mark.parametrize("kind", ["one objective", "two objectives", "constrained"])
@pytest.mark.parametrize("n_startup", [0, 1])
def test_zero_or_one_startup_trial_without_related(tiny_model, spy_encode_many, tnp_warnings, n_startup, kind):
    sampler = make_sampler(tiny_model, n_startup_trials=n_startup)
    assert sampler.n_startup_trials == n_startup
    study = optuna.create_study(sampler=sampler, directions=["minimize"] * (2 if kind == "two objectives" else 1))
    study.optimize(_objective(kind), n_trials=3)
    # trial 0 has no value to condition on (independent sampler); trials 1 and 2 are the model's, on 1 and 2 values
    n_outputs = 1 if kind == "one objective" else 2
    assert [[len(c.y) for c in call] for call in spy_encode_many] == [[1] * n_outputs, [2] * n_outputs]
    # one value gives no scale to state a prediction in; two do
    assert PRED_MEAN_ATTR not in study.trials[1].user_attrs and PRED_MEAN_ATTR in study.trials[2].user_attrs
    assert tnp_messages(tnp_warnings) == []  # no parameter is "outside the model's space" before any trial


def test_sample_relative_from_the_first_finite_value(tiny_model):
    """What Optuna's conformance tests need of n_startup_trials=0: every parameter of the relative space is
    sampled once the study has one value; before it (or with only infinite values) the independent sampler."""
    sampler = make_sampler(tiny_model, n_startup_trials=0)
    study = optuna.create_study(sampler=sampler)
    space = {"x": FloatDistribution(-1.0, 1.0), "n": IntDistribution(1, 100, log=True),
             "c": CategoricalDistribution([1, 10, 100])}

    def sample() -> dict:
        trial = study._storage.get_trial(study._storage.create_new_trial(study._study_id))
        return sampler.sample_relative(study, trial, space)

    assert sample() == {}
    study.tell(study.ask(space), float("inf"))
    assert sample() == {}
    study.tell(study.ask(space), 1.0)
    params = sample()
    assert params.keys() == space.keys()
    assert all(dist._contains(dist.to_internal_repr(params[name])) for name, dist in space.items())
    assert type(params["x"]) is float and type(params["n"]) is int and type(params["c"]) is int


def test_reseed_rng_reseeds_the_model_search_and_the_independent_sampler(tiny_model):
    reseeded, same_seed = make_sampler(tiny_model, seed=1), make_sampler(tiny_model, seed=1)
    reseeded.reseed_rng()
    assert reseeded._rng.randint(2**31) != same_seed._rng.randint(2**31)
    assert (reseeded._independent_sampler._rng.rng.randint(2**31)
            != same_seed._independent_sampler._rng.rng.randint(2**31))


def test_model_from_path(tiny_model, tmp_path):
    from metabo.model import save_model

    path = save_model(tiny_model, tmp_path / "m.safetensors")
    sampler = make_sampler(str(path))
    assert sampler.model.cfg == tiny_model.cfg
    study = optuna.create_study(sampler=sampler)
    study.optimize(quadratic, n_trials=N_STARTUP + 1)
    assert PRED_MEAN_ATTR in study.trials[-1].user_attrs


def test_bad_model_path_fails_at_construction(tmp_path):
    from metabo.model import ModelLoadError

    with pytest.raises(ModelLoadError):
        metabo.TNPSampler(model=tmp_path / "missing.safetensors")
    (tmp_path / "m.pt").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError):
        metabo.TNPSampler(model=tmp_path / "m.pt")


def test_bench_variants_change_only_the_options_they_name():
    from metabo.bench.optimizers import make_sampler as bench_sampler

    # the options live in private attributes: the sampler exposes no getter for them
    def options(name: str) -> tuple[ValueTransformConfig, CandidateSearchConfig]:
        sampler = bench_sampler(name, 0)
        assert isinstance(sampler, metabo.TNPSampler)
        return sampler._transform, sampler._search

    assert options("metabo") == (DEFAULT_TRANSFORM, CandidateSearchConfig())
    assert options("metabo-noclip") == (ValueTransformConfig(clip_worse=0.0), CandidateSearchConfig())
    assert options("metabo-nocompress") == (ValueTransformConfig(compress_worse=False), CandidateSearchConfig())
    assert options("metabo-refine10") == (DEFAULT_TRANSFORM, CandidateSearchConfig(refine_steps=10))
    assert options("metabo-repeats") == (DEFAULT_TRANSFORM, CandidateSearchConfig(min_distance=0.0))


@pytest.mark.parametrize("n_params, search, expected", [
    (20, None, (8, 10, 5)),  # a wide space: more starts, more steps, a line search
    (16, None, (4, 2, 1)),
    (20, CandidateSearchConfig(n_refine=3), (3, 2, 1)),  # a search the user gives is kept
])
def test_wide_spaces_refine_deeper_by_default(monkeypatch, n_params, search, expected):
    import metabo.sampler as sampler_mod
    from conftest import make_tiny_model

    seen = []
    real = sampler_mod.optimize_acquisition
    monkeypatch.setattr(sampler_mod, "optimize_acquisition", lambda *args: seen.append(
        (args[-1].n_refine, args[-1].refine_steps, len(args[-1].refine_scales))) or real(*args))
    sampler = metabo.TNPSampler(model=make_tiny_model(0, max_dims=24), seed=0, n_startup_trials=2, search=search)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: sum((t.suggest_float(f"x{i}", 0, 1) - 0.3) ** 2 for i in range(n_params)), n_trials=4)
    assert seen and set(seen) == {expected}
