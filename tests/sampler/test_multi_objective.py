"""TNPSampler on studies with several objectives (log-EHVI for 2-3, ParEGO scalarisation beyond)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import metabo
from metabo.sampler import PRED_MEAN_ATTR, PRED_STD_ATTR

from .helpers import make_sampler


def _zdt1(trial: optuna.Trial) -> tuple[float, float]:
    x = np.array([trial.suggest_float(f"x{i}", 0, 1) for i in range(4)])
    g = 1 + 9 * x[1:].mean()
    return float(x[0]), float(g * (1 - np.sqrt(x[0] / g)))


def _hypervolume_2d(values: np.ndarray, reference: np.ndarray) -> float:
    """Exact 2-D hypervolume (minimisation) of the points below ``reference``."""
    pts = values[np.all(values < reference, axis=1)]
    pts = pts[np.argsort(pts[:, 0])]
    volume, best_second = 0.0, reference[1]
    for a, b in pts:
        if b < best_second:
            volume += (reference[0] - a) * (best_second - b)
            best_second = b
    return volume


def test_two_objectives_beat_random_search():
    """ZDT1 in 4 dimensions, 30 trials, 3 seeds: a larger hypervolume than random search in every seed."""
    reference = np.array([1.1, 11.0])
    for seed in range(3):
        runs = {}
        for name, sampler in [("metabo", metabo.TNPSampler(seed=seed)),
                              ("random", optuna.samplers.RandomSampler(seed=seed))]:
            study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
            study.optimize(_zdt1, n_trials=30)
            runs[name] = _hypervolume_2d(np.array([t.values for t in study.trials]), reference)
        assert runs["metabo"] > runs["random"]


@pytest.mark.parametrize("n_objectives", [2, 3, 4])
def test_any_number_of_objectives_and_directions_run(tiny_model, n_objectives):
    def objective(trial: optuna.Trial) -> list[float]:
        x = np.array([trial.suggest_float("a", 0, 1), trial.suggest_float("b", 0, 1)])
        return [float(np.sum((x - k / n_objectives) ** 2)) for k in range(n_objectives)]

    directions = ["minimize", "maximize"] * 2
    study = optuna.create_study(directions=directions[:n_objectives], sampler=make_sampler(tiny_model))
    study.optimize(objective, n_trials=8)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    last = study.trials[-1].user_attrs
    assert len(last[PRED_MEAN_ATTR]) == n_objectives and len(last[PRED_STD_ATTR]) == n_objectives


def test_constraints_and_several_objectives_together(tiny_model, spy_encode_many):
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x, y = trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)
        trial.set_constraint("c", x + y - 1.2)
        return x, y

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(tiny_model))
    study.optimize(objective, n_trials=8)
    assert len(spy_encode_many[-1]) == 3  # two objectives and one constraint, one context each
    assert "metabo_predicted_feasibility" in study.trials[-1].user_attrs


def test_pending_trials_join_every_output_context(tiny_model, spy_encode_many):
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=make_sampler(tiny_model))
    study.optimize(_zdt1, n_trials=5)
    running = [study.ask() for _ in range(2)]
    for t in running:
        _zdt1(t)  # suggests the parameters; the trials stay RUNNING
    encoded = spy_encode_many[-1]
    assert encoded.n_pending == 1 and len(encoded) == 2


def _bowl_and_a(a: float, b: float) -> tuple[float, float]:
    """Two objectives on the bowl space: the bowl of ``make_past_studies`` (shift 0), and ``a``."""
    return (a - 0.3) ** 2 + (b - 0.7) ** 2, a


def test_related_studies_inform_the_first_objective_only(multitask_model, make_past_studies, spy_encode_many):
    """Single-objective past studies inform the first objective of a study with several, and no other."""
    past = make_past_studies(2, 10, seed=0)
    sampler = make_sampler(multitask_model, related=past, n_startup_trials=2)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(lambda t: _bowl_and_a(t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=5)
    first, second = spy_encode_many[-1]
    assert first.has_related and not second.has_related


def _past_two_objective_study(seed: int) -> optuna.Study:
    """A finished study of the same two objectives on the bowl space (random trials)."""
    study = optuna.create_study(directions=["minimize", "minimize"])
    rng = np.random.default_rng(seed)
    for _ in range(12):
        a, b = float(rng.random()), float(rng.random())
        study.add_trial(optuna.trial.create_trial(
            params={"a": a, "b": b}, values=list(_bowl_and_a(a, b)),
            distributions={"a": optuna.distributions.FloatDistribution(0, 1),
                           "b": optuna.distributions.FloatDistribution(0, 1)}))
    return study


def test_past_studies_with_several_objectives_inform_each_objective(multitask_model, spy_encode_many):
    sampler = make_sampler(multitask_model, related=[_past_two_objective_study(0), _past_two_objective_study(1)],
                           n_startup_trials=2)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(lambda t: _bowl_and_a(t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=5)
    first, second = spy_encode_many[-1]
    assert first.has_related and second.has_related
    # each objective reads its own past values: the second objective's related values follow `a`
    related = second.task != 0
    assert abs(np.corrcoef(second.x[related, 0], second.y[related])[0, 1]) > 0.9


def test_a_single_objective_study_reads_no_multi_objective_past_study(multitask_model):
    from metabo.related import RelatedStudies
    from metabo.space import SearchSpaceEncoder

    related = RelatedStudies([_past_two_objective_study(0)])
    space = {"a": optuna.distributions.FloatDistribution(0, 1), "b": optuna.distributions.FloatDistribution(0, 1)}
    rng = np.random.RandomState(0)
    x, y = rng.rand(4, 2), rng.randn(4)
    dims = np.arange(SearchSpaceEncoder(space).n_dims)
    assert related.context(multitask_model, space, dims, x, y, rng) is None  # single-objective: nothing fits
    assert related.context(multitask_model, space, dims, x, y, rng, objective=1) is not None


@pytest.mark.parametrize("directions, search, steps", [
    (["minimize", "minimize"], None, (256, 3, 5)),  # several objectives: a smaller pool, a line search
    (["minimize"], None, (512, 2, 1)),
    (["minimize", "minimize"], metabo.acquisition.CandidateSearchConfig(n_candidates=64), (64, 2, 1)),  # the user's
])
def test_several_objectives_search_their_own_way_by_default(tiny_model, monkeypatch, directions, search, steps):
    import metabo.sampler as sampler_mod

    seen = []
    real = sampler_mod.optimize_acquisition
    monkeypatch.setattr(sampler_mod, "optimize_acquisition", lambda *args: seen.append(
        (args[-1].n_candidates, args[-1].refine_steps, len(args[-1].refine_scales))) or real(*args))
    sampler = metabo.TNPSampler(model=tiny_model, seed=0, n_startup_trials=2, search=search)
    study = optuna.create_study(directions=directions, sampler=sampler)
    study.optimize(lambda t: tuple(_zdt1(t)[: len(directions)]), n_trials=4)
    assert seen and set(seen) == {steps}
