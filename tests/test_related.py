"""metabo.related: related past studies at serving (``RelatedStudies``), which of them join the context
(ranking), and the zero-shot portfolio."""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from scipy.stats import spearmanr

import metabo.related as related_mod
from conftest import BOWL_SPACE, bowl
from metabo.context import OWN_SLOT
from metabo.meta import MetaDataError, PastStudy, align_corpus
from metabo.meta.yahpo import unavailable_reason
from metabo.related import (MIN_POINTS_TO_RANK, RelatedStudies, StudyRanking, portfolio_candidates,
                            portfolio_choice, predict_in_studies, rank_correlations, space_key, study_scores)

ALL_DIMS = np.arange(2)


@pytest.fixture(scope="module")
def aligned(make_past_studies):
    studies, rejected = align_corpus(make_past_studies(4), BOWL_SPACE)
    assert not rejected
    return studies


def _own(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.RandomState(seed).rand(n, 2)
    return x, -np.array([bowl(*r) for r in x])


# ---------------------------------------------------------------------------------------------- prediction, ranking
def test_predict_in_studies_reads_each_study_alone(multitask_model, aligned):
    x = np.random.RandomState(0).rand(5, 2)
    means = predict_in_studies(multitask_model, aligned, x, np.random.RandomState(0), points_per_study=64)
    assert means.shape == (4, 5) and np.isfinite(means).all()
    for i in (0, 3):  # every point of each study fits: no draw, so alone is the same context
        alone = predict_in_studies(multitask_model, aligned[i:i + 1], x, np.random.RandomState(0), points_per_study=64)
        np.testing.assert_allclose(means[i], alone[0], atol=2e-5)
    assert not np.allclose(means[0], means[3], atol=1e-4)  # the studies differ
    narrow = predict_in_studies(multitask_model, aligned, x[:, 1:], np.random.RandomState(0), dims=np.array([1]))
    assert narrow.shape == (4, 5)


def test_ranking_orders_by_rank_correlation(multitask_model, aligned, monkeypatch):
    x_own, y_own = _own(6)
    # study 2 predicts the own values' order exactly, study 0 reversed, the others in between
    means = np.stack([-y_own, y_own + np.r_[0, 0, 0, 0, 5, -5], y_own, np.zeros(6)])
    monkeypatch.setattr(related_mod, "predict_means", lambda model, cache, x: means[:, :len(x)])
    order = StudyRanking(multitask_model, aligned).order(x_own, y_own, np.random.RandomState(0))
    assert order.tolist() == [2, 1, 3, 0]
    assert spearmanr(means[1], y_own).statistic < 1  # (1 is second for a reason)


def test_ranking_predicts_each_observation_once_and_matches_a_fresh_prediction(multitask_model, aligned,
                                                                                monkeypatch):
    ranking = StudyRanking(multitask_model, aligned, points_per_study=8)
    x_own, _ = _own(7)
    predicted = []
    original = related_mod.predict_means
    monkeypatch.setattr(related_mod, "predict_means", lambda m, c, x: predicted.append(len(x)) or original(m, c, x))
    encoded = []
    original_encode = related_mod.encode_studies
    monkeypatch.setattr(related_mod, "encode_studies", lambda *a, **k: encoded.append(1) or original_encode(*a, **k))
    first = ranking.means(x_own[:4], np.random.RandomState(3))
    later = ranking.means(np.concatenate([x_own[:4], x_own[4:], x_own[4:5]]), np.random.RandomState(99))
    assert predicted == [4, 3] and encoded == [1]  # new points only (a repeat once), the contexts encoded once
    np.testing.assert_array_equal(later[:, :4], first)
    np.testing.assert_array_equal(later[:, 7], later[:, 4])
    # the same numbers as predicting every point at once in contexts drawn by the same generator
    fresh = predict_in_studies(multitask_model, aligned, x_own, np.random.RandomState(3), points_per_study=8)
    np.testing.assert_allclose(later[:, :7], fresh, atol=2e-5)


def test_related_studies_keep_their_ranking_until_the_model_or_subspace_changes(multitask_model,
                                                                                make_past_studies):
    related = RelatedStudies(make_past_studies(3))
    first = related.ranking(multitask_model, BOWL_SPACE, ALL_DIMS)
    assert related.ranking(multitask_model, BOWL_SPACE, ALL_DIMS.copy()) is first
    assert related.ranking(multitask_model, BOWL_SPACE, np.array([1])) is not first
    other = related.ranking(multitask_model, BOWL_SPACE, ALL_DIMS)
    assert other is not first and np.array_equal(other.dims, ALL_DIMS)


def test_rank_correlations_are_scipys_spearman_to_the_bit():
    rng = np.random.RandomState(0)
    for case in range(300):
        n, m = rng.randint(1, 12), rng.randint(MIN_POINTS_TO_RANK, 80)
        means = rng.randn(n, m).astype(np.float32).astype(np.float64)
        y = rng.randn(m)
        if case % 2:
            means, y = np.round(means, 1), np.round(y)  # ties
        means[0, :] = 0.5 if case % 3 == 0 else means[0, :]  # a constant row
        means[-1, 0] = np.nan if case % 5 == 0 else means[-1, 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns about constant input
            expected = [spearmanr(row, y).statistic if np.ptp(row) > 0 else 0.0 for row in means]
        np.testing.assert_array_equal(rank_correlations(means, y), np.nan_to_num(expected, nan=0.0))
    np.testing.assert_array_equal(rank_correlations(rng.randn(3, 5), np.ones(5)), np.zeros(3))  # constant y


def test_ranking_is_random_below_the_minimum(multitask_model, aligned, monkeypatch):
    monkeypatch.setattr(related_mod, "predict_means", lambda *a, **k: pytest.fail("nothing to compare with"))
    x_own, y_own = _own(MIN_POINTS_TO_RANK - 1)
    order = StudyRanking(multitask_model, aligned).order(x_own, y_own, np.random.RandomState(5))
    np.testing.assert_array_equal(order, np.random.RandomState(5).permutation(4))


def test_ranking_fills_the_task_slots(multitask_model, make_past_studies, monkeypatch):
    many, _ = align_corpus(make_past_studies(10), BOWL_SPACE)
    assert multitask_model.cfg.task_slots - 1 == 7
    few = StudyRanking(multitask_model, many[:5]).choose(np.zeros((0, 2)), np.zeros(0), np.random.RandomState(0))
    assert [s.name for s in few] == [s.name for s in many[:5]]  # all fit, in order
    order = np.array([9, 3, 0, 8, 1, 2, 7, 4, 5, 6])
    monkeypatch.setattr(StudyRanking, "order", lambda *a, **k: order)
    chosen = StudyRanking(multitask_model, many).choose(*_own(5), np.random.RandomState(0))
    assert [s.name for s in chosen] == [many[i].name for i in order[:7]]


def test_study_scores_share_a_scale(multitask_model, aligned, monkeypatch):
    median = np.array([np.median(s.y) for s in aligned])
    best = np.array([s.y.max() for s in aligned])
    span = best - median
    means = np.stack([median, best, median + 10 * span, median - 10 * span], axis=1)
    monkeypatch.setattr(related_mod, "predict_in_studies", lambda *a, **k: means)
    scores = study_scores(multitask_model, aligned, np.zeros((4, 2)), np.random.RandomState(0))
    np.testing.assert_allclose(scores, np.tile([0.0, 1.0, 1.5, -2.0], (4, 1)), atol=1e-9)


def test_study_scores_with_the_model_stay_in_range(multitask_model, aligned):
    candidates = portfolio_candidates(aligned, per_study=2)
    scores = study_scores(multitask_model, aligned, candidates, np.random.RandomState(0))
    assert scores.shape == (4, len(candidates))
    assert np.isfinite(scores).all() and scores.min() >= -2.0 and scores.max() <= 1.5


# ---------------------------------------------------------------------------------------------- portfolio
def test_portfolio_candidates_are_each_studys_best_without_duplicates(aligned):
    candidates = portfolio_candidates(aligned, per_study=2)
    assert candidates.shape[1] == 2 and len(candidates) <= 8
    expected = {tuple(a.x[i]) for a in aligned for i in np.argsort(-a.y)[:2]}
    assert {tuple(c) for c in candidates} == expected
    doubled = portfolio_candidates(aligned + aligned, per_study=2)
    np.testing.assert_array_equal(doubled, candidates)


def test_portfolio_choice_is_greedy_over_studies():
    # Two studies; candidate 0 is good in both, 1 only in study 0, 2 only in study 1.
    scores = np.array([[0.8, 1.0, -1.0],
                       [0.8, -1.0, 1.0]])
    assert portfolio_choice(scores, np.zeros((2, 0))) == 0  # best on average
    # Once a point good in study 0 only was evaluated, the one that covers study 1 adds most.
    assert portfolio_choice(scores, np.array([[1.0], [-1.0]])) == 2
    # No candidate adds anything: the better one on average, not the first.
    assert portfolio_choice(np.array([[0.1, 0.9], [0.1, 0.9]]), np.array([[1.5], [1.5]])) == 1


def test_portfolio_point_skips_taken_configurations_and_runs_out(multitask_model, make_past_studies):
    related = RelatedStudies(make_past_studies(3))
    candidates = portfolio_candidates(related.aligned(BOWL_SPACE))
    taken = np.zeros((0, 2))
    for _ in range(len(candidates)):
        point = related.portfolio_point(multitask_model, BOWL_SPACE, ALL_DIMS, taken)
        assert point is not None
        assert any(np.array_equal(point, c) for c in candidates)
        assert not any(np.array_equal(point, t) for t in taken)
        taken = np.vstack([taken, point])
    assert related.portfolio_point(multitask_model, BOWL_SPACE, ALL_DIMS, taken) is None


def test_portfolio_scores_candidates_once_per_space_and_subspace(multitask_model, make_past_studies, monkeypatch):
    related = RelatedStudies(make_past_studies(3))
    calls = []
    original = related_mod.study_scores
    monkeypatch.setattr(related_mod, "study_scores", lambda *a, **k: calls.append(len(a[2])) or original(*a, **k))
    first = related.portfolio_point(multitask_model, BOWL_SPACE, ALL_DIMS, np.zeros((0, 2)))
    assert related.portfolio_point(multitask_model, BOWL_SPACE, ALL_DIMS, np.zeros((0, 2))) is not None
    n_candidates = len(portfolio_candidates(related.aligned(BOWL_SPACE)))
    assert calls == [n_candidates]  # the candidates' scores are cached
    related.portfolio_point(multitask_model, BOWL_SPACE, ALL_DIMS, first[None])
    assert calls == [n_candidates, 1]  # the taken point's scores are not
    related.portfolio_point(multitask_model, BOWL_SPACE, np.array([1]), np.zeros((0, 2)))
    assert calls == [n_candidates, 1, n_candidates]  # another subspace: scored again


# ---------------------------------------------------------------------------------------------- RelatedStudies
def test_related_studies_validate_and_keep_their_settings(make_past_studies):
    sources = make_past_studies(2)
    related = RelatedStudies(sources, max_points=40)
    assert related.sources is sources and related.max_points == 40 and related.transform == RelatedStudies(
        sources).transform
    assert RelatedStudies(sources).max_points == 128
    with pytest.raises(ValueError, match="at least 1"):
        RelatedStudies(sources, max_points=0)
    assert RelatedStudies(sources).n_warm_trials == 2 and RelatedStudies(sources, n_warm_trials=0).n_warm_trials == 0
    with pytest.raises(ValueError, match="n_warm_trials"):
        RelatedStudies(sources, n_warm_trials=-1)


def test_studies_are_aligned_once_per_search_space(make_past_studies, monkeypatch):
    loads = []
    original = related_mod.load_corpus
    monkeypatch.setattr(related_mod, "load_corpus", lambda *a, **k: loads.append(k) or original(*a, **k))
    related = RelatedStudies(make_past_studies(3))
    first = related.aligned(BOWL_SPACE)
    assert len(first) == 3 and len(loads) == 1
    assert related.aligned(dict(reversed(list(BOWL_SPACE.items())))) is first  # the same space
    assert len(loads) == 1
    narrower = {"a": FloatDistribution(0.0, 0.5), "b": FloatDistribution(0.0, 1.0)}
    assert related.aligned(narrower) is not first and len(loads) == 2


def test_past_values_are_normalised_without_compression_or_clipping(make_past_studies):
    related = RelatedStudies(make_past_studies(2))
    for a in related.aligned(BOWL_SPACE):
        assert a.transform.config == related.transform.for_past_values()
        assert a.y.mean() == pytest.approx(0.0, abs=1e-9) and a.y.std(ddof=1) == pytest.approx(1.0, rel=1e-9)


def test_a_corpus_that_does_not_align_warns_and_gives_no_context(multitask_model):
    other = [PastStudy("other", "test", {"z": IntDistribution(0, 3)}, [({"z": 1}, 1.0), ({"z": 2}, 0.5)])]
    related = RelatedStudies(other)
    with pytest.warns(UserWarning) as record:
        assert related.aligned(BOWL_SPACE) == []
    assert sum("no related study could be aligned" in str(w.message) for w in record) == 1
    assert related.context(multitask_model, BOWL_SPACE, ALL_DIMS, *_own(3), np.random.RandomState(0)) is None
    np.testing.assert_array_equal(related.best_point(2), [0.5, 0.5])  # the centre


def test_context_lays_out_the_chosen_studies_and_seeds_the_search(multitask_model, make_past_studies):
    related = RelatedStudies(make_past_studies(3), max_points=30)
    aligned_studies = related.aligned(BOWL_SPACE)
    points, seeds = related.context(multitask_model, BOWL_SPACE, ALL_DIMS, *_own(4), np.random.RandomState(0))
    assert len(points) == 30 and points.x.shape == (30, 2)
    assert OWN_SLOT not in points.task and sorted(set(points.task.tolist())) == [1, 2, 3]
    np.testing.assert_array_equal(seeds, np.stack([a.x[np.argmax(a.y)] for a in aligned_studies]))
    # in a subspace, both are in its coordinates
    points, seeds = related.context(multitask_model, BOWL_SPACE, np.array([1]), *_own(4), np.random.RandomState(0))
    assert points.x.shape == (30, 1) and seeds.shape == (3, 1)
    np.testing.assert_array_equal(seeds[:, 0], [a.x[np.argmax(a.y), 1] for a in aligned_studies])


def test_context_takes_the_studies_that_fit_the_task_slots(multitask_model, make_past_studies):
    related = RelatedStudies(make_past_studies(10), max_points=70)
    points, seeds = related.context(multitask_model, BOWL_SPACE, ALL_DIMS, *_own(5), np.random.RandomState(0))
    assert len(points) == 70 and sorted(set(points.task.tolist())) == list(range(1, 8))
    assert len(seeds) == 10  # the search starts around every study's best, not only those in the context


def test_best_point_is_the_best_configuration_of_any_related_study(make_past_studies):
    related = RelatedStudies(make_past_studies(4))
    np.testing.assert_array_equal(related.best_point(2), [0.5, 0.5])  # nothing aligned yet
    studies = related.aligned(BOWL_SPACE)
    best = max(studies, key=lambda a: a.y.max())
    np.testing.assert_array_equal(related.best_point(2), best.x[np.argmax(best.y)])
    np.testing.assert_array_equal(related.best_point(3), [0.5, 0.5, 0.5])  # another width: the centre


def test_space_key_ignores_order_and_tells_spaces_apart():
    assert space_key(BOWL_SPACE) == space_key(dict(reversed(list(BOWL_SPACE.items()))))
    assert space_key(BOWL_SPACE) != space_key({**BOWL_SPACE, "b": FloatDistribution(0.0, 2.0)})
    hash(space_key(BOWL_SPACE))


# ------------------------------------------------------------------------------------ sources checked up front
def _storage(tmp_path, values: dict[str, list[float]]) -> str:
    url = f"sqlite:///{tmp_path / 'past.db'}"
    for name, ys in values.items():
        study = optuna.create_study(study_name=name, storage=url)
        for y in ys:
            study.add_trial(optuna.trial.create_trial(params={"a": 0.5}, distributions={"a": BOWL_SPACE["a"]},
                                                      value=y))
    return url


def test_sources_are_checked_but_not_loaded_up_front(make_past_studies, tmp_path, monkeypatch):
    csv = tmp_path / "past.csv"
    csv.write_text("a,b,value\n0.1,0.2,1.0\n")
    url = _storage(tmp_path, {"mlp": [1.0, 2.0]})
    monkeypatch.setattr(related_mod, "load_corpus", lambda *a, **k: pytest.fail("loaded in the constructor"))
    related = RelatedStudies([*make_past_studies(2), str(csv), (url, "ml*"), url])
    assert related.sources[2] == str(csv)


def _bad_sources(tmp_path) -> dict[str, tuple[object, type, str]]:
    """name -> (related=..., the error, a regex its message matches)."""
    nan_csv = tmp_path / "nan.csv"
    nan_csv.write_text("a,b,value\n0.1,0.2,nan\n0.3,0.4,\n")
    url = _storage(tmp_path, {"mlp-a": [math.inf], "mlp-b": []})
    infinite = optuna.create_study(study_name="infinite")
    infinite.add_trial(optuna.trial.create_trial(params={"a": 0.5}, distributions={"a": BOWL_SPACE["a"]},
                                                 value=math.inf))
    return {
        "missing file": (str(tmp_path / "missing.csv"), FileNotFoundError, "missing.csv"),
        "bad storage URL": ("nosuchdb://x", ValueError, "cannot open Optuna storage 'nosuchdb://x'"),
        "missing SQLite file": (f"sqlite:///{tmp_path / 'missing.db'}", ValueError, "no such SQLite file"),
        "pattern matching no study": ((url, "cnn-*"), ValueError, r"no study matches the pattern 'cnn-\*'"),
        "no usable study": ((url, "mlp-*"), ValueError, "none of the studies matching 'mlp-\\*'"),
        "unknown YAHPO scenario": ("yahpo:nope", ValueError, "'yahpo:nope'.*unknown YAHPO scenario 'nope'"),
        "unknown kind of source": ("past.db", ValueError, "unknown corpus source 'past.db'"),
        "unsupported type": (42, TypeError, "unsupported corpus source"),
        "empty corpus": ([], ValueError, "no corpus source"),
        "table without a finite value": (str(nan_csv), ValueError, "nan.csv.*no row has a finite value"),
        "study without a finite value": (infinite, ValueError, "'infinite'.*no observation with a finite value"),
        "past study without observations": (PastStudy("empty", "test", dict(BOWL_SPACE), []), ValueError,
                                            "'empty' \\(test\\) has no observation"),
    }


@pytest.mark.parametrize("case", [
    "missing file", "bad storage URL", "missing SQLite file", "pattern matching no study", "no usable study",
    "unknown YAHPO scenario", "unknown kind of source", "unsupported type", "empty corpus",
    "table without a finite value", "study without a finite value", "past study without observations"])
def test_a_bad_source_fails_in_the_constructor(case, make_past_studies, tmp_path):
    source, error, message = _bad_sources(tmp_path)[case]
    with pytest.raises(error, match=message) as info:
        RelatedStudies(source)
    assert "\n" not in str(info.value)
    if case != "empty corpus":
        with pytest.raises(error, match=message):  # also among good sources
            RelatedStudies([*make_past_studies(1), source])
    assert not (tmp_path / "missing.db").exists()  # checking a storage never creates it


@pytest.mark.skipif(unavailable_reason("lcbench") is not None, reason=str(unavailable_reason("lcbench")))
def test_a_yahpo_scenario_without_train_instances_fails_in_the_constructor():
    with pytest.raises(MetaDataError, match="'iaml_glmnet' has no train instance"):
        RelatedStudies("yahpo:iaml_glmnet")
    RelatedStudies("yahpo:lcbench")  # nothing evaluated yet: quick
