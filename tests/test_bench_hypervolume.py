"""Exact hypervolume, Pareto filtering and the per-run regret curves of constrained and multi-objective runs."""

from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest

from metabo.bench.hypervolume import (hypervolume, normalise_objectives, normalised_hypervolume_regret, pareto_front,
                                      pareto_mask)
from metabo.bench.scores import feasible_fraction_curve, feasible_regret_curve, hypervolume_regret_curve


def _grid_hypervolume(points: np.ndarray, reference: int) -> int:
    """Brute force for integer points: the number of unit cells of [0, reference)^d some point dominates."""
    d = points.shape[1]
    return sum(bool(np.any(np.all(points <= np.array(cell), axis=1)))
               for cell in itertools.product(range(reference), repeat=d))


def test_hypervolume_of_small_fronts_with_known_answers():
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4]) == pytest.approx(3 + 2 + 1)
    assert hypervolume([[1, 1, 1]], [2, 2, 2]) == pytest.approx(1.0)
    # two boxes of volume 4 and 2 overlapping in a unit cube
    assert hypervolume([[0, 0, 1], [1, 1, 0]], [2, 2, 2]) == pytest.approx(5.0)
    # dominated, duplicated and out-of-box points change nothing; nothing inside the box: 0
    assert hypervolume([[1, 3], [2, 2], [3, 1], [3, 3], [2, 2], [5, 0]], [4, 4]) == pytest.approx(6.0)
    assert hypervolume([[4, 0], [0, 4]], [4, 4]) == 0.0
    assert hypervolume(np.empty((0, 3)), [1, 1, 1]) == 0.0


@pytest.mark.parametrize("d", [2, 3])
def test_hypervolume_matches_brute_force_on_random_integer_fronts(d):
    rng = np.random.default_rng(d)
    for _ in range(20):
        points = rng.integers(0, 6, size=(int(rng.integers(1, 9)), d)).astype(float)
        assert hypervolume(points, [6] * d) == pytest.approx(_grid_hypervolume(points, 6))


@pytest.mark.parametrize("n_objectives", [2, 3])
def test_pareto_mask_agrees_with_optunas_best_trials(n_objectives):
    rng = np.random.default_rng(n_objectives)
    values = rng.integers(0, 8, size=(60, n_objectives)).astype(float)  # ties and duplicates on purpose
    study = optuna.create_study(directions=["minimize"] * n_objectives)
    for row in values:
        trial = study.ask()
        study.tell(trial, list(row))
    optuna_front = {tuple(t.values) for t in study.best_trials}
    assert {tuple(r) for r in pareto_front(values)} == optuna_front
    assert pareto_mask(values).sum() == len(optuna_front)  # one row per distinct non-dominated vector


def test_normalised_hypervolume_regret():
    ideal, nadir, ref = (0.0, 0.0), (1.0, 1.0), (1.1, 1.1)
    t = np.linspace(0, 1, 20001)
    zdt1_front = np.column_stack([t, 1 - np.sqrt(t)])
    hv_ref = 1.1**2 - 1 / 3  # ZDT1's front, analytic
    assert hypervolume(zdt1_front, ref) == pytest.approx(hv_ref, abs=1e-4)
    assert normalised_hypervolume_regret(zdt1_front, ideal, nadir, ref, hv_ref) < 1e-4
    assert normalised_hypervolume_regret(np.empty((0, 2)), ideal, nadir, ref, hv_ref) == 1.0
    assert normalised_hypervolume_regret([[2.0, 2.0]], ideal, nadir, ref, hv_ref) == 1.0
    assert normalised_hypervolume_regret([[0.0, 0.0]], ideal, nadir, ref, hv_ref) == 0.0  # beyond the front: clipped
    # normalisation: the same front scaled by 10 and shifted by 5 has the same regret
    scaled = 5 + 10 * zdt1_front[::100]
    assert normalised_hypervolume_regret(scaled, (5, 5), (15, 15), ref, hv_ref) == pytest.approx(
        normalised_hypervolume_regret(zdt1_front[::100], ideal, nadir, ref, hv_ref))
    with pytest.raises(ValueError):
        normalise_objectives([[0.0, 0.0]], (1.0, 0.0), (1.0, 1.0))


def test_feasible_regret_curve_counts_no_feasible_point_as_one():
    values = [5.0, -3.0, 8.0, 2.0, 12.0]
    feasible = [False, False, True, True, True]
    curve = feasible_regret_curve(values, feasible, f_opt=0.0, random_median=10.0)
    np.testing.assert_allclose(curve, [1.0, 1.0, 0.8, 0.2, 0.2])  # the infeasible -3 never counts
    np.testing.assert_allclose(feasible_regret_curve([20.0, -1.0], [True, True], 0.0, 10.0), [1.0, 0.0])
    np.testing.assert_allclose(feasible_fraction_curve(feasible), [0, 0, 1 / 3, 2 / 4, 3 / 5])


def test_hypervolume_regret_curve_equals_prefix_regrets():
    rng = np.random.default_rng(0)
    vectors = rng.random((25, 3)) * 1.3
    feasible = rng.random(25) < 0.8
    reference = {"ideal": [0, 0, 0], "nadir": [1, 1, 1], "reference_point": [1.1, 1.1, 1.1],
                 "reference_hypervolume": 1.1**3 - np.pi / 6}
    curve = hypervolume_regret_curve(vectors, feasible, reference)
    for n in range(1, 26):
        prefix = vectors[:n][feasible[:n]]
        assert curve[n - 1] == pytest.approx(normalised_hypervolume_regret(
            prefix, reference["ideal"], reference["nadir"], reference["reference_point"],
            reference["reference_hypervolume"]))
    assert np.all(np.diff(curve) <= 1e-12)
