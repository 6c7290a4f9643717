"""TNPSampler's options: validation at construction, the model argument, defaults, and the bench variants that
set them."""

from __future__ import annotations

import inspect

import optuna
import pytest

import metabo
from metabo.acquisition import CandidateSearchConfig
from metabo.normalise import DEFAULT_TRANSFORM, ValueTransformConfig
from metabo.sampler import PRED_MEAN_ATTR

from .helpers import N_STARTUP, make_sampler, quadratic

OPTIONS = ["model", "related", "search_space", "seed", "n_startup_trials", "n_warm_trials", "acquisition", "budget",
           "independent_sampler", "transform", "search", "warn_independent_sampling",
           "constraints_func"]  # the last: Optuna's deprecated argument, accepted as GPSampler and TPE accept it


def test_at_most_thirteen_keyword_only_options():
    parameters = inspect.signature(metabo.TNPSampler.__init__).parameters
    assert len(parameters) - 1 <= 13
    assert list(parameters)[1:] == OPTIONS
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(parameters.values())[1:])


@pytest.mark.parametrize("options, error, match", [
    (dict(n_startup_trials=1), ValueError, "n_startup_trials"),
    (dict(n_startup_trials=-1), ValueError, "n_startup_trials"),
    (dict(n_warm_trials=-1), ValueError, "n_warm_trials"),
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
