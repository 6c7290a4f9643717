"""TNPSampler with related past studies: their points in the context from the first trial, the zero-shot
portfolio, start-up defaults, the value transform beside them, and the transfer bench optimisers."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

import metabo
from conftest import BOWL_SPACE, bowl
from metabo.meta import PastStudy, align_corpus
from metabo.model.io import with_task_slots
from metabo.normalise import ObjectiveTransform, ValueTransformConfig
from metabo.related import RelatedStudies, portfolio_candidates
from metabo.sampler import PRED_MEAN_ATTR

from .helpers import FAST_SEARCH


def objective(trial: optuna.Trial) -> float:
    return bowl(trial.suggest_float("a", 0, 1), trial.suggest_float("b", 0, 1))


def make_sampler(model, related, **kw) -> metabo.TNPSampler:
    kw.setdefault("search_space", BOWL_SPACE)
    kw.setdefault("search", FAST_SEARCH)
    return metabo.TNPSampler(model=model, related=related, seed=0, **kw)


def test_the_model_chooses_every_trial_with_related_points_in_context(multitask_model, make_past_studies,
                                                                        spy_encode):
    sampler = make_sampler(multitask_model, RelatedStudies(make_past_studies(3), max_points=30))
    assert sampler.n_startup_trials == 0
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=4)
    # the model chose every trial, the first with no own data; related points first, own points under slot 0
    assert [len(call.y_own) for call in spy_encode] == [0, 1, 2, 3]
    assert [call.n_related for call in spy_encode] == [30] * 4
    for call in spy_encode:
        n_related = call.n_related
        assert (call.context.task[:n_related] > 0).all() and (call.context.task[n_related:] == 0).all()
    assert all(PRED_MEAN_ATTR in t.user_attrs for t in study.trials[2:])  # from two own values on


def test_warm_trials_come_from_the_portfolio(multitask_model, make_past_studies):
    related = make_past_studies(4)
    aligned, _ = align_corpus(related, BOWL_SPACE)
    candidates = {tuple(np.round(c, 9)) for c in portfolio_candidates(aligned)}
    study = optuna.create_study(sampler=make_sampler(multitask_model, RelatedStudies(related, n_warm_trials=3)))
    study.optimize(objective, n_trials=4)
    warm = [tuple(np.round([t.params["a"], t.params["b"]], 9)) for t in study.trials[:3]]
    assert set(warm) <= candidates and len(set(warm)) == 3  # three distinct portfolio members


def test_without_a_search_space_one_trial_comes_first(multitask_model, make_past_studies, spy_encode):
    sampler = make_sampler(multitask_model, make_past_studies(3), search_space=None)
    assert sampler.n_startup_trials == 1
    assert make_sampler(multitask_model, make_past_studies(3), n_startup_trials=3).n_startup_trials == 3
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=3)
    assert len(study.trials) == 3
    assert [len(call.y_own) for call in spy_encode] == [1, 2]  # one value is enough beside related studies


def test_related_studies_need_task_slots(tiny_model, make_past_studies):
    with pytest.raises(ValueError, match="task slots"):
        metabo.TNPSampler(model=tiny_model, related=make_past_studies(2))


def test_a_bad_related_source_fails_in_the_constructor(multitask_model, tmp_path):
    # not at the first model-chosen trial, after the start-up trials ran (metabo.meta.check_sources)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        metabo.TNPSampler(model=multitask_model, related=str(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="unknown YAHPO scenario 'nope'"):
        metabo.TNPSampler(model=multitask_model, related=["yahpo:nope"])


def test_a_corpus_that_does_not_align_leaves_the_model_without_related_data(multitask_model, spy_encode):
    other = [PastStudy("other", "test", {"z": optuna.distributions.FloatDistribution(0, 1)}, [({"z": 0.5}, 1.0)])]
    study = optuna.create_study(sampler=make_sampler(multitask_model, other))
    with pytest.warns(UserWarning) as record:
        study.optimize(objective, n_trials=3)
    assert any("no related study could be aligned" in str(w.message) for w in record)
    assert len(study.trials) == 3 and not any(call.context.has_related for call in spy_encode)


@pytest.mark.parametrize("clip_with_related", [False, True])
def test_own_values_are_not_clipped_beside_related_studies_unless_asked(multitask_model, make_past_studies,
                                                                         spy_encode, clip_with_related):
    points = [(0.3, 0.7), (0.35, 0.7), (0.3, 0.65), (0.25, 0.75), (0.32, 0.72), (0.28, 0.66), (0.95, 0.05)]
    values = [bowl(a, b) for a, b in points[:-1]] + [50.0]  # one failure far worse than the rest
    transform = ValueTransformConfig(clip_with_related=clip_with_related)
    related = RelatedStudies(make_past_studies(2), transform, n_warm_trials=0)
    study = optuna.create_study(sampler=make_sampler(multitask_model, related, transform=transform))
    for (a, b), value in zip(points, values):
        study.add_trial(optuna.trial.create_trial(params={"a": a, "b": b}, distributions=BOWL_SPACE, value=value))
    study.optimize(objective, n_trials=1)
    y_own = spy_encode[-1].y_own
    expected = ObjectiveTransform(False, transform.for_own_values(with_related=True)).fit(values).transform(values)
    np.testing.assert_allclose(y_own, expected, atol=1e-9)
    unclipped = ObjectiveTransform(False, ValueTransformConfig(clip_worse=0.0)).fit(values).transform(values)
    assert np.allclose(y_own, unclipped) != clip_with_related


def test_learned_acquisition_with_related_studies(tiny_model, make_past_studies):
    nap_model = with_task_slots(tiny_model, 8, acquisition_head=True).eval()
    for p in nap_model.parameters():
        p.requires_grad_(False)
    sampler = make_sampler(nap_model, make_past_studies(3), acquisition="nap", budget=6)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=6)
    assert len(study.trials) == 6
    ei = optuna.create_study(sampler=make_sampler(nap_model, make_past_studies(3), budget=6))
    ei.optimize(objective, n_trials=6)
    assert [t.params for t in study.trials[2:]] != [t.params for t in ei.trials[2:]]  # after the portfolio


def test_default_model_with_related_studies_is_the_multitask_model(make_past_studies):
    sampler = metabo.TNPSampler(related=make_past_studies(2))
    assert sampler.model.multi_task
    assert metabo.TNPSampler(related=make_past_studies(2)).model is sampler.model  # loaded once per process


def _yahpo_ready() -> str | None:
    from metabo.bench.problems import yahpo

    return yahpo.unavailable_reason("lcbench")


@pytest.mark.skipif(_yahpo_ready() is not None, reason=str(_yahpo_ready()))
def test_bench_transfer_optimisers_use_train_instances_and_the_scenario_model():
    from metabo.bench.optimizers import make_sampler as bench_sampler
    from metabo.bench.optimizers import model_fingerprint, scenario_model_path
    from metabo.bench.problems import get_problem, yahpo
    from metabo.model.io import multitask_model_path

    problem = get_problem("yahpo/lcbench/167149")
    transfer = bench_sampler("metabo-transfer", 0, budget=10, problem=problem)
    related = bench_sampler("metabo-related", 0, budget=10, problem=problem)
    assert transfer.model.multi_task and related.model.multi_task
    assert transfer.n_startup_trials == 0
    # on lcbench fine-tuning did not pay: the transfer model is the multi-task one; on rbv2_xgboost it did
    assert model_fingerprint("metabo-transfer", problem)["path"] == str(multitask_model_path())
    assert model_fingerprint("metabo-related", problem)["path"] == str(multitask_model_path())
    xgboost = get_problem("yahpo/rbv2_xgboost/1049")
    assert model_fingerprint("metabo-transfer", xgboost)["path"] == str(scenario_model_path("rbv2_xgboost"))
    study = optuna.create_study(sampler=transfer)
    for _ in range(2):
        trial = study.ask(problem.search_space())
        study.tell(trial, problem.evaluate(trial.params))
    # the related corpus is the scenario's train instances, never a validation or reserved one (private state:
    # the sampler exposes no getter for its related studies)
    assert transfer._related.sources == ["yahpo:lcbench"]
    names = {a.study.name for a in transfer._related.aligned(problem.search_space())}
    assert names and all(yahpo.split_of("lcbench", n.rsplit("/", 1)[1]) == "train" for n in names)


@pytest.mark.skipif(_yahpo_ready() is not None, reason=str(_yahpo_ready()))
def test_bench_transfer_optimisers_share_the_related_corpus_and_take_a_model_folder(tmp_path, monkeypatch):
    import shutil

    from metabo.bench import related_corpus
    from metabo.bench.optimizers import make_sampler as bench_sampler
    from metabo.bench.optimizers import model_fingerprint, scenario_model_path
    from metabo.bench.problems import get_problem
    from metabo.model.io import multitask_model_path

    for name in (related_corpus.KIND_ENV, related_corpus.TRACES_ENV):
        monkeypatch.setenv(name, "")  # restored afterwards, whatever set_related_corpus writes
    monkeypatch.setenv(related_corpus.KIND_ENV, "random")
    problem = get_problem("yahpo/lcbench/167149")
    with pytest.raises(ValueError, match="one of"):
        related_corpus.set_related_corpus("sorted")
    related_corpus.set_related_corpus("traces", tmp_path)
    with pytest.raises(FileNotFoundError, match="trace_corpus.py"):
        bench_sampler("metabo-transfer", 0, budget=10, problem=problem)
    storage = f"sqlite:///{tmp_path / 'lcbench.db'}"
    past = optuna.create_study(study_name="yahpo/lcbench/126025", storage=storage)
    for _ in range(4):
        trial = past.ask(problem.search_space())
        past.tell(trial, problem.evaluate(trial.params))
    assert bench_sampler("metabo-transfer", 0, budget=10, problem=problem)._related.sources == [storage]
    related_corpus.set_related_corpus("both", tmp_path)
    assert bench_sampler("metabo-transfer", 0, budget=10, problem=problem)._related.sources == ["yahpo:lcbench",
                                                                                                storage]
    assert related_corpus.describe_related_corpus() == {"kind": "both", "traces_dir": str(tmp_path.resolve())}
    related_corpus.set_related_corpus("random")
    assert related_corpus.describe_related_corpus() == {"kind": "random"}
    assert model_fingerprint(f"metabo-transfer:{tmp_path}", problem)["path"] == str(multitask_model_path())
    shutil.copy(scenario_model_path("lcbench"), tmp_path / "yahpo_lcbench.safetensors")
    shutil.copy(scenario_model_path("lcbench").with_suffix(".json"), tmp_path / "yahpo_lcbench.json")
    in_folder = bench_sampler(f"metabo-transfer:{tmp_path}", 0, budget=10, problem=problem)
    copied = tmp_path / "yahpo_lcbench.safetensors"
    assert model_fingerprint(f"metabo-transfer:{tmp_path}", problem)["path"] == str(copied)
    assert in_folder._related.sources == ["yahpo:lcbench"]


def test_the_candidate_search_with_related_studies_also_proposes_bounds(multitask_model, make_past_studies):
    from metabo.acquisition import TRANSFER_SEARCH, CandidateSearchConfig

    assert TRANSFER_SEARCH.n_bound > 0 and CandidateSearchConfig().n_bound == 0
    assert metabo.TNPSampler(model=multitask_model, related=make_past_studies(2))._search == TRANSFER_SEARCH
    # the deeper refinement of wide spaces is zero-shot only: with related studies it measured no gain
    assert metabo.TNPSampler(model=multitask_model, related=make_past_studies(2))._search_wide == TRANSFER_SEARCH
    assert metabo.TNPSampler(model=multitask_model)._search == CandidateSearchConfig()
    assert make_sampler(multitask_model, make_past_studies(2))._search == FAST_SEARCH  # given: kept
