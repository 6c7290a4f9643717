"""Unit-cube encoding of Optuna search spaces, and the subspaces one suggestion optimises."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from metabo.space import SearchSpaceEncoder, Subspace


def admissible(dist: BaseDistribution, value) -> bool:
    return dist._contains(dist.to_internal_repr(value))


FLOATS = {
    "lin": FloatDistribution(-3.0, 7.0),
    "log": FloatDistribution(1e-5, 1e2, log=True),
    "step": FloatDistribution(0.0, 1.0, step=0.1),
    "step_odd": FloatDistribution(-2.5, 4.0, step=0.25),
}
INTS = {
    "lin": IntDistribution(-5, 12),
    "log": IntDistribution(1, 1000, log=True),
    "log2": IntDistribution(3, 70, log=True),
    "step": IntDistribution(0, 30, step=5),
    "binary": IntDistribution(0, 1),
}
CATEGORICALS = {
    "str": CategoricalDistribution(["adam", "sgd", "rmsprop"]),
    "num": CategoricalDistribution([1, 2.5, -7, 0]),
    "none": CategoricalDistribution([None, "a", 3]),
    "bool": CategoricalDistribution([True, False]),
}


def _grid(dist) -> list:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution):
        return list(range(dist.low, dist.high + 1, dist.step))
    if dist.step is not None:
        n = int(round((dist.high - dist.low) / dist.step))
        return [dist.low + k * dist.step for k in range(n + 1)]
    if dist.log:
        return list(np.exp(np.linspace(math.log(dist.low), math.log(dist.high), 23)))
    return list(np.linspace(dist.low, dist.high, 23))


@pytest.mark.parametrize("name", list(FLOATS))
def test_float_round_trip(name):
    dist = FLOATS[name]
    enc = SearchSpaceEncoder({"p": dist})
    for v in _grid(dist):
        row = enc.encode({"p": v})
        assert row.shape == (1,) and 0.0 <= row[0] <= 1.0
        out = enc.decode(row)["p"]
        assert isinstance(out, float)
        assert out == pytest.approx(v, rel=1e-9, abs=1e-12)
        assert admissible(dist, out)


@pytest.mark.parametrize("name", list(INTS))
def test_int_round_trip_is_exact(name):
    dist = INTS[name]
    enc = SearchSpaceEncoder({"p": dist})
    for v in _grid(dist):
        out = enc.decode(enc.encode({"p": v}))["p"]
        assert out == v and type(out) is int


@pytest.mark.parametrize("name", list(CATEGORICALS))
def test_categorical_round_trip_is_exact(name):
    dist = CATEGORICALS[name]
    enc = SearchSpaceEncoder({"p": dist})
    assert enc.n_dims == len(dist.choices)
    for v in dist.choices:
        row = enc.encode({"p": v})
        assert row.sum() == 1.0 and set(np.unique(row)) <= {0.0, 1.0}
        out = enc.decode(row)["p"]
        assert out == v and type(out) is type(v)


def test_int_slices_are_equal_width():
    """Each integer owns an equal slice of the coordinate, so uniform sampling in the cube is uniform over ints."""
    dist = IntDistribution(0, 4)
    enc = SearchSpaceEncoder({"p": dist})
    u = (np.arange(100_000) + 0.5) / 100_000
    values = [enc.decode(np.array([x]))["p"] for x in u[::97]]
    counts = np.bincount(values, minlength=5)
    assert counts.min() > 0.9 * counts.max()


def test_float_step_endpoints_reachable():
    dist = FloatDistribution(0.0, 1.0, step=0.1)
    enc = SearchSpaceEncoder({"p": dist})
    assert enc.decode(np.array([0.0]))["p"] == 0.0
    assert enc.decode(np.array([1.0]))["p"] == pytest.approx(1.0)
    assert enc.decode(np.array([-3.0]))["p"] == 0.0  # clipped
    assert enc.decode(np.array([7.0]))["p"] == pytest.approx(1.0)


def _mixed_space() -> dict[str, BaseDistribution]:
    space = {}
    space.update({f"f_{k}": v for k, v in FLOATS.items()})
    space.update({f"i_{k}": v for k, v in INTS.items()})
    space.update({f"c_{k}": v for k, v in CATEGORICALS.items()})
    return space


def test_mixed_space_layout_and_round_trip():
    space = _mixed_space()
    enc = SearchSpaceEncoder(space)
    assert enc.n_dims == len(FLOATS) + len(INTS) + sum(len(d.choices) for d in CATEGORICALS.values())
    assert enc.param_names == sorted(space)
    widths = enc.param_widths()
    assert sum(w for _, w in widths) == enc.n_dims
    assert [s for s, _ in widths] == list(np.cumsum([0] + [w for _, w in widths])[:-1])
    assert enc.continuous_mask().sum() == len(FLOATS) + len(INTS)
    assert len(enc.categorical_slices()) == len(CATEGORICALS)

    rng = np.random.default_rng(0)
    for _ in range(20):
        params = {n: _grid(d)[rng.integers(len(_grid(d)))] for n, d in space.items()}
        back = enc.decode(enc.encode(params))
        for n, d in space.items():
            if isinstance(d, FloatDistribution):
                assert back[n] == pytest.approx(params[n], rel=1e-9, abs=1e-12)
            else:
                assert back[n] == params[n]


def test_encoding_does_not_depend_on_dict_order():
    space = _mixed_space()
    reversed_space = dict(reversed(list(space.items())))
    params = {n: _grid(d)[0] for n, d in space.items()}
    np.testing.assert_array_equal(SearchSpaceEncoder(space).encode(params), SearchSpaceEncoder(reversed_space).encode(params))


def test_snap_idempotent_and_decode_invariant():
    enc = SearchSpaceEncoder(_mixed_space())
    rng = np.random.default_rng(1)
    rows = rng.uniform(-0.2, 1.2, size=(300, enc.n_dims))
    rows[:10] = 0.0
    rows[10:20] = 1.0
    rows[20:30] = 0.5
    snapped = enc.snap(rows)
    assert snapped.shape == rows.shape
    assert ((snapped >= 0) & (snapped <= 1)).all()
    np.testing.assert_array_equal(enc.snap(snapped), snapped)
    for r, s in zip(rows, snapped):
        a, b = enc.decode(r), enc.decode(s)
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == b[k], (k, a[k], b[k])
        for n, d in enc.search_space.items():
            assert admissible(d, b[n])
    # categorical blocks become exactly one-hot
    for sl in enc.categorical_slices():
        np.testing.assert_array_equal(snapped[:, sl].sum(1), 1.0)
    # plain continuous floats are only clipped, never moved
    lin = enc.param_names.index("f_lin")
    start = enc.param_widths()[lin][0]
    np.testing.assert_array_equal(snapped[:, start], np.clip(rows[:, start], 0, 1))


def test_snap_of_admissible_points_is_identity():
    enc = SearchSpaceEncoder({k: v for k, v in _mixed_space().items() if not k.startswith("f_lin") and not k.startswith("f_log")})
    rng = np.random.default_rng(2)
    rows = enc.snap(rng.uniform(size=(50, enc.n_dims)))
    encoded = enc.encode_many([enc.decode(r) for r in rows])
    np.testing.assert_allclose(enc.snap(encoded), encoded, atol=1e-12)


def test_snap_empty_batch():
    enc = SearchSpaceEncoder(_mixed_space())
    assert enc.snap(np.zeros((0, enc.n_dims))).shape == (0, enc.n_dims)
    assert enc.encode_many([]).shape == (0, enc.n_dims)


def test_encode_missing_param_raises():
    enc = SearchSpaceEncoder({"a": FloatDistribution(0, 1), "b": IntDistribution(0, 3)})
    with pytest.raises(KeyError, match="b"):
        enc.encode({"a": 0.3})


@pytest.mark.parametrize("params, message", [
    ({"c": 6, "x": 0.5}, r"parameter 'c': value 6 is not one of the search space's choices \('a', 'b'\)"),
    ({"c": "a", "x": "0.5"}, r"parameter 'x': value '0.5' is not a number, as the search space's FloatDistribution"),
    ({"c": "a", "x": None}, r"parameter 'x': value None is not a number"),
    ({"c": "a", "x": float("nan")}, r"parameter 'x': value nan is not a number"),
])
def test_a_value_of_another_kind_than_the_space_names_the_parameter(params, message):
    """A trial whose parameter was suggested with another distribution than a declared search space's: a
    ValueError naming the parameter, not Optuna's bare message or a NaN coordinate."""
    enc = SearchSpaceEncoder({"c": CategoricalDistribution(("a", "b")), "x": FloatDistribution(0, 1)})
    with pytest.raises(ValueError, match=message):
        enc.encode_many([{"c": "b", "x": 0.1}, params])


def test_integers_beyond_int64_still_encode():
    enc = SearchSpaceEncoder({"n": IntDistribution(0, 10**30)})
    x = enc.encode_many([{"n": 10**25}, {"n": 5}])
    assert np.isfinite(x).all() and x[0, 0] == pytest.approx((10**25 + 0.5) / (10**30 + 1))


def test_unsupported_distribution_raises():
    class Weird(BaseDistribution):
        def to_external_repr(self, v):
            return v

        def to_internal_repr(self, v):
            return v

        def single(self):
            return False

        def _contains(self, v):
            return True

    with pytest.raises(TypeError, match="unsupported"):
        SearchSpaceEncoder({"w": Weird()})


# ---------------------------------------------------------------------------------------------- subspaces
SMALL = {  # encoded: a -> 0, c -> 1..3 (one-hot), n -> 4, s -> 5
    "a": FloatDistribution(0.0, 1.0),
    "c": CategoricalDistribution(["x", "y", "z"]),
    "n": IntDistribution(0, 4),
    "s": FloatDistribution(0.0, 1.0, step=0.25),
}


def _whole_parameters(enc: SearchSpaceEncoder, dims: np.ndarray) -> bool:
    chosen = set(dims.tolist())
    return all(set(range(start, start + width)) <= chosen or not set(range(start, start + width)) & chosen
               for start, width in enc.param_widths())


def test_random_subspace_dims_is_everything_when_the_space_fits():
    enc = SearchSpaceEncoder(SMALL)
    rng = np.random.RandomState(0)
    np.testing.assert_array_equal(enc.random_subspace_dims(enc.n_dims, rng), np.arange(enc.n_dims))
    np.testing.assert_array_equal(enc.random_subspace_dims(16, rng), np.arange(enc.n_dims))
    assert rng.randint(1 << 30) == np.random.RandomState(0).randint(1 << 30)  # nothing drawn


def test_random_subspace_dims_takes_whole_parameters_that_fit():
    enc = SearchSpaceEncoder(_mixed_space())
    max_dims = 8
    assert enc.n_dims > max_dims
    subsets = set()
    for seed in range(20):
        dims = enc.random_subspace_dims(max_dims, np.random.RandomState(seed))
        assert len(dims) <= max_dims and (np.diff(dims) > 0).all()
        assert _whole_parameters(enc, dims)
        left = max_dims - len(dims)  # greedy: no parameter left out would still have fitted
        chosen = set(dims.tolist())
        assert all(width > left for start, width in enc.param_widths() if start not in chosen)
        np.testing.assert_array_equal(dims, enc.random_subspace_dims(max_dims, np.random.RandomState(seed)))
        subsets.add(tuple(dims))
    assert len(subsets) > 5  # a random subset, not always the same one


def test_full_subspace_is_the_identity():
    enc = SearchSpaceEncoder(SMALL)
    sub = Subspace.full(enc)
    assert sub.is_full
    np.testing.assert_array_equal(sub.dims, np.arange(6))
    rows = np.random.RandomState(0).rand(4, 6)
    np.testing.assert_array_equal(sub.to_full(rows), rows)
    np.testing.assert_array_equal(sub.restrict(rows), rows)
    np.testing.assert_array_equal(sub.continuous, enc.continuous_mask())
    assert sub.categorical == enc.categorical_slices() == [slice(1, 4)]


def test_subspace_masks_are_in_its_own_coordinates():
    enc = SearchSpaceEncoder(SMALL)
    with_cat = Subspace(enc, np.array([0, 1, 2, 3, 5]), np.full(6, 0.5))
    assert not with_cat.is_full
    assert with_cat.continuous.tolist() == [True, False, False, False, True]
    assert with_cat.categorical == [slice(1, 4)]
    shifted = Subspace(enc, np.array([1, 2, 3, 4]), np.full(6, 0.5))
    assert shifted.continuous.tolist() == [False, False, False, True]
    assert shifted.categorical == [slice(0, 3)]
    no_cat = Subspace(enc, np.array([4, 5]), np.full(6, 0.5))
    assert no_cat.categorical == [] and no_cat.continuous.tolist() == [True, True]


def test_restrict_and_to_full_keep_the_fixed_coordinates():
    enc = SearchSpaceEncoder(SMALL)
    fixed = np.array([0.1, 0.0, 1.0, 0.0, 0.3, 0.75])
    sub = Subspace(enc, np.array([0, 4]), fixed)
    rows = np.random.RandomState(1).rand(5, 6)
    part = sub.restrict(rows)
    assert part.shape == (5, 2)
    np.testing.assert_array_equal(part, rows[:, [0, 4]])
    part[0, 0] = -1.0
    assert rows[0, 0] != -1.0  # a copy
    full = sub.to_full(sub.restrict(rows))
    np.testing.assert_array_equal(full[:, [0, 4]], rows[:, [0, 4]])
    np.testing.assert_array_equal(full[:, [1, 2, 3, 5]], np.repeat(fixed[None, [1, 2, 3, 5]], 5, axis=0))
    assert enc.decode(full[0])["c"] == "y" and enc.decode(full[0])["s"] == 0.75


def test_subspace_snap_makes_its_coordinates_admissible():
    enc = SearchSpaceEncoder(SMALL)
    fixed = enc.encode({"a": 0.4, "c": "z", "n": 2, "s": 0.5})
    sub = Subspace(enc, np.array([1, 2, 3, 4]), fixed)  # c and n
    rows = np.array([[0.2, 0.9, 0.1, 0.33], [0.6, 0.1, 0.5, 0.98]])
    snapped = sub.snap(rows)
    np.testing.assert_array_equal(snapped[:, :3], [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(snapped, enc.snap(sub.to_full(rows))[:, sub.dims])
    assert [enc.decode(r)["n"] for r in sub.to_full(snapped)] == [1, 4]
    np.testing.assert_array_equal(sub.snap(snapped), snapped)


def test_nearby_keeps_seen_points_a_subspace_point_can_reach():
    enc = SearchSpaceEncoder({"x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1), "z": FloatDistribution(0, 1)})
    fixed = np.array([0.2, 0.5, 0.8])
    seen = np.array([[0.2, 0.1, 0.8], [0.9, 0.1, 0.8], [0.2, 0.3, 0.805]])
    # points vary y only and copy x and z from the fixed row: point 1 differs there, so it is dropped
    sub = Subspace(enc, np.array([1]), fixed)
    np.testing.assert_allclose(sub.nearby(seen, 0.01), [[0.1], [0.3]])
    assert sub.nearby(seen, 0.001).tolist() == [[0.1]]  # 0.805 is no longer within reach of 0.8
    np.testing.assert_array_equal(Subspace.full(enc).nearby(seen, 0.01), seen)  # nothing fixed: all of them


MIXED_CHOICES = [1, "a", None, 2.5, True]  # Optuna stores True as 1 (True == 1): five choices, four storable


def test_choices_equal_in_python_share_one_coordinate_and_warn_once():
    dist = CategoricalDistribution(MIXED_CHOICES)
    with pytest.warns(UserWarning, match=r"'mixed_once'.*True \(stored as 1\)"):
        enc = SearchSpaceEncoder({"mixed_once": dist})
    assert enc.n_dims == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second encoder of the same parameter is silent
        SearchSpaceEncoder({"mixed_once": dist})
    # stored values are matched by Optuna's index: True and 1 are one choice, 2.5 and None keep their own
    assert np.array_equal(enc.encode({"mixed_once": True}), enc.encode({"mixed_once": 1}))
    decoded = [enc.decode(np.eye(4)[k])["mixed_once"] for k in range(4)]
    assert [dist.to_internal_repr(v) for v in decoded] == [0, 1, 2, 3]
    assert decoded[2] is None and decoded[3] == 2.5


def test_choices_that_do_not_collide_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = SearchSpaceEncoder({"distinct": CategoricalDistribution(["1", 1, None, 2.5])})
    assert enc.n_dims == 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_study_with_colliding_choices_tries_every_storable_choice(seed):
    """Proposing True, which Optuna stores as 1, must not hide the choices never tried (the issue: 2.5)."""
    import optuna

    import metabo
    from metabo.acquisition import CandidateSearchConfig

    dist = CategoricalDistribution(MIXED_CHOICES)
    sampler = metabo.TNPSampler(seed=seed, n_startup_trials=2, search=CandidateSearchConfig(n_candidates=64))
    study = optuna.create_study(sampler=sampler)
    costs = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}  # the untried choices look worst: only exploring finds them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(lambda t: costs[dist.to_internal_repr(t.suggest_categorical("c", MIXED_CHOICES))],
                       n_trials=8)
    assert {dist.to_internal_repr(t.params["c"]) for t in study.trials} == {0, 1, 2, 3}


# --- categoricals wider than MAX_ONE_HOT_CHOICES: one ordinal coordinate -------------------------------------------

WIDE = CategoricalDistribution([f"c{i}" for i in range(30)])


def test_wide_categorical_is_one_ordinal_coordinate_in_the_given_order():
    from metabo.space import MAX_ONE_HOT_CHOICES

    assert len(WIDE.choices) > MAX_ONE_HOT_CHOICES
    order = tuple(reversed(range(30)))
    encoder = SearchSpaceEncoder({"c": WIDE, "x": FloatDistribution(0, 1)}, choice_orders={"c": order})
    assert encoder.n_dims == 2 and encoder.categorical_slices() == []
    assert encoder.continuous_mask().all()
    rows = encoder.encode_many([{"c": "c29", "x": 0.5}, {"c": "c0", "x": 0.5}])
    assert rows[0, 0] == pytest.approx(0.5 / 30) and rows[1, 0] == pytest.approx(29.5 / 30)
    u = np.random.RandomState(0).rand(100, 2)
    snapped = encoder.snap(u)
    for row, raw in zip(snapped, u):
        assert encoder.decode(row) == encoder.decode(raw)
        assert encoder.encode(encoder.decode(row))[0] == pytest.approx(row[0])
    with pytest.raises(ValueError, match="permutation"):
        SearchSpaceEncoder({"c": WIDE}, choice_orders={"c": (0, 1)})


def test_rank_choices_orders_by_shrunk_mean_with_untried_choices_in_the_middle():
    from metabo.space import rank_choices

    params = [{"c": "c3"}, {"c": "c3"}, {"c": "c5"}, {"c": "c7"}]
    scores = np.array([2.0, 2.0, -1.0, 0.5])  # larger is better
    order = rank_choices(params, scores, {"c": WIDE, "x": FloatDistribution(0, 1)})["c"]
    assert sorted(order) == list(range(30))
    assert order[-1] == 3 and order[0] == 5  # best last, worst first
    assert order.index(5) < order.index(7) < order.index(0)  # 7's one result is below the mean (0.875), untried at it
    assert rank_choices(params, scores, {"x": FloatDistribution(0, 1)}) == {}
