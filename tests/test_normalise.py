"""Objective normalisation: exact inverse, direction, context statistics, and which steps apply to which values
(``ValueTransformConfig``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metabo.normalise import DEFAULT_TRANSFORM, ObjectiveTransform, ValueTransformConfig, context_loc_scale

_rng = np.random.default_rng(0)
DATASETS = {
    "normal": _rng.normal(size=40),
    "huge_scale": 1e8 * _rng.normal(size=40),
    "huge_offset": 1e8 + _rng.normal(size=40),
    "tiny_range": 1.0 + 1e-9 * _rng.normal(size=40),
    "tiny_range_tiny_values": 1e-12 * (1 + 1e-6 * _rng.normal(size=40)),
    "heavy_tail": np.exp(3 * _rng.normal(size=40)),
    "negative_heavy_tail": -np.exp(3 * _rng.normal(size=40)),
    "outlier": np.r_[np.zeros(20), 1e6],
    "integers": np.arange(12.0),
    "two_values": np.array([1.0, 2.0]),
    "one_value": np.array([3.0]),
    "constant": np.full(6, 7.0),
}


def transform(maximize: bool, **options) -> ObjectiveTransform:
    return ObjectiveTransform(maximize, ValueTransformConfig(**options))


@pytest.mark.parametrize("clip", [0.0, 3.0])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("power", [True, False])
@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("name", list(DATASETS))
def test_inverse_of_transform_is_identity(name, maximize, power, compress, clip):
    v = DATASETS[name]
    t = transform(maximize, power=power, compress_worse=compress, clip_worse=clip).fit(v)
    z = t.transform(v)
    assert np.isfinite(z).all()
    scale = max(np.ptp(v), 1e-15 * np.abs(v).max(), 1e-300)
    np.testing.assert_allclose(t.inverse(z), v, rtol=0, atol=1e-9 * scale)
    # values outside the fitted range (as the model may predict) also come back
    spread = np.ptp(v) if np.ptp(v) > 0 else 1.0
    extra = np.array([v.min() - spread, v.max() + spread, np.median(v)])
    np.testing.assert_allclose(t.inverse(t.transform(extra)), extra, rtol=1e-12, atol=1e-7 * spread)


@pytest.mark.parametrize("clip", [0.0, 3.0])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("power", [True, False])
@pytest.mark.parametrize("name", [n for n in DATASETS if np.ptp(DATASETS[n]) > 0])
def test_direction_best_maps_to_largest(name, power, compress, clip):
    v = DATASETS[name]
    options = dict(power=power, compress_worse=compress, clip_worse=clip)
    z_max = transform(True, **options).fit(v).transform(v)
    z_min = transform(False, **options).fit(v).transform(v)
    assert z_max[np.argmax(v)] == pytest.approx(z_max.max())
    assert z_min[np.argmin(v)] == pytest.approx(z_min.max())
    assert z_min[np.argmax(v)] == pytest.approx(z_min.min())
    # monotone: order of raw values is preserved (maximise) or reversed (minimise)
    order = np.argsort(v, kind="stable")
    assert (np.diff(z_max[order]) >= -1e-12).all()
    assert (np.diff(z_min[order]) <= 1e-12).all()


@pytest.mark.parametrize("power", [True, False])
@pytest.mark.parametrize("name", [n for n in DATASETS if len(DATASETS[n]) >= 2 and np.ptp(DATASETS[n]) > 0])
def test_transformed_values_are_standardised(name, power):
    """What the model sees has the context's mean 0 and std 1, as in pretraining (without the serving-only
    compression and clipping)."""
    t = transform(False, power=power, compress_worse=False, clip_worse=0.0)
    z = t.fit(DATASETS[name]).transform(DATASETS[name])
    assert z.mean() == pytest.approx(0.0, abs=1e-9)
    assert z.std(ddof=1) == pytest.approx(1.0, rel=1e-9)


def test_compress_worse_keeps_the_better_half_and_shrinks_the_tail():
    v = np.r_[np.linspace(0.12, 0.14, 20), np.full(20, 0.45)]  # a good basin and a plateau of bad values
    plain = transform(False, power=False, compress_worse=False, clip_worse=0.0).fit(v)
    compressed = transform(False, power=False, compress_worse=True, clip_worse=0.0).fit(v)
    z0, z1 = plain.transform(v), compressed.transform(v)
    better = z0 >= np.median(z0)
    np.testing.assert_allclose(z1[better], z0[better])
    assert np.ptp(z1) < np.ptp(z0)
    # relative to the spread the model sees, the good values are further apart
    assert np.ptp(z1[better]) / z1.std() > np.ptp(z0[better]) / z0.std()


def test_clip_worse_spreads_the_good_values_and_keeps_the_order():
    # five failed configurations far worse than the spread of the good ones (iaml_glmnet/41146's plateau)
    good = np.linspace(0.083, 0.084, 45)
    v = np.r_[good, 0.12, 0.3, 0.44, 0.5, 0.52]
    plain = transform(False, compress_worse=False, clip_worse=0.0).fit(v).transform(v)
    clipped_transform = transform(False, compress_worse=False, clip_worse=3.0).fit(v)
    clipped = clipped_transform.transform(v)
    assert np.ptp(plain[:45]) < 0.1  # Yeo-Johnson and standardising leave the good values bunched
    assert np.ptp(clipped[:45]) > 2.0  # measured against a robust spread they keep their differences
    assert (np.diff(clipped) < 0).all()  # still ordered, failures still worst
    assert clipped_transform.clip_at > -0.12 + 1e-3  # only the failures lie beyond the threshold
    # no failures: the threshold lies outside the values and nothing changes
    np.testing.assert_allclose(transform(False, compress_worse=False, clip_worse=3.0).fit(good).transform(good),
                               transform(False, compress_worse=False, clip_worse=0.0).fit(good).transform(good))
    with pytest.raises(ValueError, match="clip_worse"):
        ValueTransformConfig(clip_worse=-1.0)
    with pytest.raises(ValueError, match="clip_worse"):
        ValueTransformConfig(clip_worse=float("nan"))


def test_scalar_input():
    t = ObjectiveTransform(maximize=False).fit(DATASETS["normal"])
    z = t.transform(np.float64(0.3))
    assert float(t.inverse(z)) == pytest.approx(0.3)


def test_context_loc_scale():
    y = torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    loc, scale = context_loc_scale(y)
    assert loc.shape == (2, 1)
    torch.testing.assert_close(loc[:, 0], torch.tensor([2.0, 5.0]))
    torch.testing.assert_close(scale[:, 0], torch.tensor([1.0, 1.0]))
    loc, scale = context_loc_scale(torch.tensor([[4.0]]))
    assert float(loc) == 4.0 and float(scale) == 1.0
    loc, scale = context_loc_scale(torch.zeros(3, 0))
    assert loc.shape == (3, 1) and (loc == 0).all() and (scale == 1).all()


# ---------------------------------------------------------------------------------------------- ValueTransformConfig
def test_default_config_is_every_step_with_clipping_off_beside_related_studies():
    assert DEFAULT_TRANSFORM == ValueTransformConfig() == ValueTransformConfig(
        power=True, compress_worse=True, clip_worse=3.0, clip_with_related=False)
    assert ObjectiveTransform(maximize=True).config == DEFAULT_TRANSFORM
    with pytest.raises(AttributeError):
        DEFAULT_TRANSFORM.clip_worse = 1.0  # shared by every sampler: frozen


def test_own_values_lose_clipping_beside_related_studies_unless_asked():
    cfg = ValueTransformConfig(power=False, compress_worse=True, clip_worse=2.0)
    assert cfg.for_own_values(with_related=False) == cfg
    assert cfg.for_own_values(with_related=True) == ValueTransformConfig(power=False, compress_worse=True,
                                                                         clip_worse=0.0)
    keep = ValueTransformConfig(clip_worse=2.0, clip_with_related=True)
    assert keep.for_own_values(with_related=True) == keep


@pytest.mark.parametrize("cfg", [DEFAULT_TRANSFORM, ValueTransformConfig(power=False, clip_with_related=True)])
def test_past_values_are_neither_compressed_nor_clipped(cfg):
    past = cfg.for_past_values()
    assert not past.compress_worse and past.clip_worse == 0.0 and past.power == cfg.power
    v = np.r_[np.linspace(0.083, 0.084, 45), 0.3, 0.5]  # a plateau the own values' steps would reshape
    z = ObjectiveTransform(False, past).fit(v).transform(v)
    assert z.mean() == pytest.approx(0.0, abs=1e-9) and z.std(ddof=1) == pytest.approx(1.0, rel=1e-9)
    assert not np.allclose(z, ObjectiveTransform(False, cfg).fit(v).transform(v))


def test_each_config_step_changes_the_values():
    v = np.r_[np.exp(2 * np.random.default_rng(3).normal(size=40)), 1e3, 2e3]
    base = ObjectiveTransform(False, DEFAULT_TRANSFORM).fit(v).transform(v)
    for step in (dict(power=False), dict(compress_worse=False), dict(clip_worse=0.0)):
        other = ObjectiveTransform(False, ValueTransformConfig(**step)).fit(v).transform(v)
        assert not np.allclose(other, base), step


def test_values_near_the_float_limit_do_not_overflow_the_scale():
    values = np.array([0.01, 1e300, 0.04, 1e300, 0.09, 1e300, 0.16, 0.25])
    t = ObjectiveTransform(False, DEFAULT_TRANSFORM).fit(values).transform(values)
    assert np.isfinite(t).all()
    assert t[values < 1].min() > t[values > 1].max()  # the penalties read worse than every real value
