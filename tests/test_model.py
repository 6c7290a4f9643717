"""TNPModel structure: shapes, independence of candidates, permutation invariance, masking, padding."""

from __future__ import annotations

import pytest
import torch

from conftest import make_tiny_model, tiny_borders, tiny_config
from metabo.model import ModelConfig, TNPModel
from metabo.priors import GPPrior, PriorConfig

ATOL = 2e-5


def _data(b=2, c=9, q=7, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, c, d, generator=g), torch.randn(b, c, generator=g), torch.rand(b, q, d, generator=g))


@pytest.fixture(scope="module")
def model() -> TNPModel:
    return make_tiny_model(1)


def test_output_shapes(model):
    x, y, xq = _data()
    out = model(x, y, xq)
    assert out.shape == (2, 7, model.cfg.n_buckets)
    assert torch.isfinite(out).all()
    cache = model.encode_context(x, y)
    torch.testing.assert_close(model.predict_logits(cache, xq), out)
    # one cached context serves several candidate batches of other sizes
    assert model.predict_logits(cache, xq[:, :2]).shape == (2, 2, model.cfg.n_buckets)


@pytest.mark.parametrize("shared_inputs", [True, False])
def test_one_candidate_set_reads_every_context_of_a_batch(model, shared_inputs):
    # one row per model output: the same inputs (or not) with other values; padding in one row
    x, y, xq = _data(b=3)
    if shared_inputs:
        x = x[:1].expand(3, -1, -1).clone()
    mask = torch.ones(3, x.shape[1], dtype=torch.bool)
    mask[1, -2:] = False
    cache = model.encode_context(x, y, mask)
    assert cache.x.shape[0] == (1 if shared_inputs else 3)
    together = model.predict_logits(cache, xq[:1])
    torch.testing.assert_close(together, model.predict_logits(cache, xq[:1].expand(3, -1, -1)), atol=ATOL, rtol=0)
    for i in range(3):
        alone = model.predict_logits(model.encode_context(x[i:i + 1, mask[i]], y[i:i + 1, mask[i]]), xq[:1])
        torch.testing.assert_close(together[i:i + 1], alone, atol=2e-4, rtol=0)  # batch sizes round apart


def test_config_round_trip_and_validation():
    cfg = tiny_config()
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError):
        TNPModel(cfg, torch.linspace(-1, 1, cfg.n_buckets))  # one border short


def test_candidates_scored_independently(model):
    x, y, xq = _data(q=6)
    base = model(x, y, xq)
    other = xq.clone()
    other[:, 1:] = torch.rand_like(other[:, 1:])  # change every candidate but the first
    torch.testing.assert_close(model(x, y, other)[:, 0], base[:, 0], atol=ATOL, rtol=0)
    torch.testing.assert_close(model(x, y, xq[:, :1])[:, 0], base[:, 0], atol=ATOL, rtol=0)  # alone
    perm = torch.randperm(6)
    torch.testing.assert_close(model(x, y, xq[:, perm]), base[:, perm], atol=ATOL, rtol=0)


def test_context_matters(model):
    x, y, xq = _data()
    assert not torch.allclose(model(x, y, xq), model(x, -y, xq), atol=1e-4)


def test_context_permutation_invariance(model):
    x, y, xq = _data(c=11)
    base = model(x, y, xq)
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(model(x[:, perm], y[:, perm], xq), base, atol=ATOL, rtol=0)


def test_batch_elements_independent(model):
    x, y, xq = _data(b=3)
    base = model(x, y, xq)
    torch.testing.assert_close(model(x[1:2], y[1:2], xq[1:2])[0], base[1], atol=ATOL, rtol=0)


def test_ctx_mask_equals_unpadded_context(model):
    x, y, xq = _data(b=2, c=5)
    g = torch.Generator().manual_seed(4)
    # pad with 4 garbage points; interleave them so the mask, not the position, must do the work
    xp = torch.cat([x, torch.rand(2, 4, 3, generator=g)], 1)
    yp = torch.cat([y, 50 * torch.randn(2, 4, generator=g)], 1)
    order = torch.tensor([5, 0, 1, 6, 2, 3, 7, 4, 8])
    mask = torch.tensor([True] * 5 + [False] * 4)[order].expand(2, -1)
    masked = model(xp[:, order], yp[:, order], xq, ctx_mask=mask)
    torch.testing.assert_close(masked, model(x, y, xq), atol=ATOL, rtol=0)
    # a full mask is the same as no mask
    full = torch.ones(2, 5, dtype=torch.bool)
    torch.testing.assert_close(model(x, y, xq, ctx_mask=full), model(x, y, xq), atol=ATOL, rtol=0)


def test_ctx_mask_per_row_different_lengths(model):
    x, y, xq = _data(b=2, c=6)
    mask = torch.tensor([[True] * 6, [True] * 2 + [False] * 4])
    out = model(x, y, xq, ctx_mask=mask)
    torch.testing.assert_close(out[0], model(x[:1], y[:1], xq[:1])[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(out[1], model(x[1:, :2], y[1:, :2], xq[1:])[0], atol=ATOL, rtol=0)


def test_all_masked_equals_empty_context(model):
    x, y, xq = _data(c=4)
    empty = model(torch.zeros(2, 0, 3), torch.zeros(2, 0), xq)
    none = model(x, y, xq, ctx_mask=torch.zeros(2, 4, dtype=torch.bool))
    torch.testing.assert_close(none, empty, atol=ATOL, rtol=0)


def test_empty_context(model):
    _, _, xq = _data()
    out = model(torch.zeros(2, 0, 3), torch.zeros(2, 0), xq)
    assert out.shape == (2, 7, model.cfg.n_buckets) and torch.isfinite(out).all()
    assert torch.isfinite(model.bar.mean(out)).all()


def test_too_many_dims_raises(model):
    d = model.cfg.max_dims + 1
    with pytest.raises(ValueError, match="at most"):
        model(torch.rand(1, 3, d), torch.randn(1, 3), torch.rand(1, 2, d))
    cache = model.encode_context(torch.rand(1, 3, 2), torch.randn(1, 3))
    with pytest.raises(ValueError, match="at most"):
        model.predict_logits(cache, torch.rand(1, 2, d))


def test_full_width_input_accepted(model):
    d = model.cfg.max_dims
    out = model(torch.rand(1, 3, d), torch.randn(1, 3), torch.rand(1, 2, d))
    assert out.shape == (1, 2, model.cfg.n_buckets)


def test_extreme_targets_do_not_break_the_model(model):
    x, _, xq = _data()
    y = torch.tensor([1e6, -1e6, 0.0, 3.0, -3.0, 1e30, -1e30, 0.5, 0.25]).expand(2, -1)
    assert torch.isfinite(model(x, y, xq)).all()


def test_padding_matches_the_prior_convention(model):
    """Serving pads unused input dimensions; pretraining tasks leave inactive dimensions at some fill value.

    Both must agree, or every served query is out of distribution. Take a prior task with d < max_dims active
    dims, move its active dims first, and check that feeding only the active dims (model pads) equals feeding
    the full-width tensor exactly as the prior produced it.
    """
    cfg = model.cfg
    prior = GPPrior(PriorConfig(max_dims=cfg.max_dims))
    batch = prior.sample(8, 10, 5, torch.Generator().manual_seed(0))
    x_all = torch.cat([batch.x_ctx, batch.x_qry], 1)
    checked = 0
    for i in range(8):
        d = int(batch.n_dims[i])
        if d == cfg.max_dims:
            continue
        col_const = (x_all[i] == x_all[i, :1]).all(0)
        inactive = col_const.nonzero().flatten()
        active = (~col_const).nonzero().flatten()
        assert len(active) == d and len(inactive) == cfg.max_dims - d
        fill = x_all[i, 0, inactive]
        assert torch.all(fill == fill[0])  # one fill value for inactive dims
        order = torch.cat([active, inactive])
        y = (batch.y_ctx[i : i + 1] - batch.y_ctx[i].mean()) / batch.y_ctx[i].std()
        full = model(batch.x_ctx[i : i + 1, :, order], y, batch.x_qry[i : i + 1, :, order])
        short = model(batch.x_ctx[i : i + 1, :, active], y, batch.x_qry[i : i + 1, :, active])
        torch.testing.assert_close(short, full, atol=ATOL, rtol=0)
        checked += 1
    assert checked >= 3


def test_gradients_flow_to_candidates(model):
    x, y, xq = _data(b=1)
    xq = torch.cat([xq, x[:, :2], torch.full((1, 1, 3), 0.5)], 1)  # incl. candidates exactly on context points
    xq = xq.clone().requires_grad_(True)
    cache = model.encode_context(x, y)
    lei = model.bar.log_expected_improvement(model.predict_logits(cache, xq), 0.5)
    (g,) = torch.autograd.grad(lei.sum(), xq)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_tiny_borders_helper_is_increasing():
    b = tiny_borders()
    assert (b[1:] > b[:-1]).all()


# ---------------------------------------------------------------------------------------------- task slots, NAP head
def test_task_slots_start_neutral_and_single_task_models_refuse_related(model):
    from metabo.model.io import with_task_slots

    wide = with_task_slots(model, 8).eval()
    x, y, q = torch.rand(2, 6, 3), torch.randn(2, 6), torch.rand(2, 4, 3)
    with torch.no_grad():
        assert torch.allclose(model(x, y, q), wide(x, y, q))
        assert torch.allclose(wide(x, y, q), wide(x, y, q, ctx_task=torch.zeros(2, 6, dtype=torch.long)))
    with pytest.raises(ValueError, match="no task slots"):
        model(x, y, q, ctx_task=torch.ones(2, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="task slots must lie"):
        wide(x, y, q, ctx_task=torch.full((2, 6), 8))
    with pytest.raises(ValueError, match="shrink"):
        with_task_slots(wide, 4)


def test_task_slots_change_predictions_once_trained():
    multitask = make_tiny_model(0, task_slots=8)
    with torch.no_grad():
        multitask.embed_task.weight.normal_()
    x, y, q = torch.rand(1, 6, 3), torch.randn(1, 6), torch.rand(1, 4, 3)
    own = multitask(x, y, q, ctx_task=torch.zeros(1, 6, dtype=torch.long))
    related = multitask(x, y, q, ctx_task=torch.ones(1, 6, dtype=torch.long))
    assert not torch.allclose(own, related)


def test_acquisition_head_scores_candidates_from_features_and_budget(model):
    from metabo.model.io import with_task_slots

    nap_model = with_task_slots(model, 8, acquisition_head=True).eval()
    assert nap_model.acq_head is not None and model.acq_head is None
    cache = nap_model.encode_context(torch.rand(1, 4, 2), torch.randn(1, 4))
    features = nap_model.candidate_features(cache, torch.rand(1, 6, 2))
    assert nap_model.acquisition_scores(features, 0.5).shape == (1, 6)
    assert not torch.allclose(nap_model.acquisition_scores(features, 0.0), nap_model.acquisition_scores(features, 1.0))
    with pytest.raises(ValueError, match="no learned acquisition head"):
        model.acquisition_scores(features, 0.5)
