"""metabo.context: the one context layout (related points first, own points under slot 0, pending points as
fantasies), which points fit, and batching."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import make_tiny_model
from metabo import context as ctx
from metabo.context import OWN_SLOT, Context


def _study(n: int, d: int, seed: int) -> SimpleNamespace:
    """What ``related_points`` reads of an aligned study: encoded rows and normalised values."""
    rng = np.random.RandomState(seed)
    return SimpleNamespace(x=rng.rand(n, d), y=rng.randn(n))


def _own(n: int = 5, d: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    return rng.rand(n, d), rng.randn(n)


@pytest.fixture(scope="module")
def slot_model():
    """A multi-task model whose task embeddings are trained (random), so the slots change predictions."""
    model = make_tiny_model(3, task_slots=4)
    with torch.no_grad():
        torch.manual_seed(0)
        model.embed_task.weight.normal_()
    return model


def _predict(model, cache, xq: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return model.predict_logits(cache, torch.as_tensor(xq, dtype=torch.float32)[None])[0]


# ---------------------------------------------------------------------------------------------- select_points
def test_select_points_keeps_the_best_half_and_is_seeded():
    y = np.random.RandomState(1).permutation(20).astype(float)
    pick = ctx.select_points(y, 6, np.random.RandomState(0))
    assert len(pick) == 6 and len(set(pick.tolist())) == 6
    assert {17.0, 18.0, 19.0} <= set(y[pick].tolist())  # the best n // 2
    assert (np.diff(pick) > 0).all()  # sorted indices
    np.testing.assert_array_equal(pick, ctx.select_points(y, 6, np.random.RandomState(0)))
    others = {tuple(ctx.select_points(y, 6, np.random.RandomState(s))) for s in range(10)}
    assert len(others) > 1  # the rest is drawn at random


def test_select_points_takes_all_when_they_fit_without_drawing():
    y = np.arange(5.0)
    rng = np.random.RandomState(0)
    np.testing.assert_array_equal(ctx.select_points(y, 5, rng), np.arange(5))
    np.testing.assert_array_equal(ctx.select_points(y, 50, rng), np.arange(5))
    assert rng.randint(1 << 30) == np.random.RandomState(0).randint(1 << 30)


# ---------------------------------------------------------------------------------------------- related_points
def test_related_points_share_the_budget_with_slots_in_order():
    studies = [_study(30, 2, seed=k) for k in range(3)]
    related = ctx.related_points(studies, 30, np.random.RandomState(0))
    assert len(related) == 30 and related.x.shape == (30, 2) and related.has_related
    np.testing.assert_array_equal(related.task, np.repeat([1, 2, 3], 10))
    for k, study in enumerate(studies):
        part = related.task == k + 1
        assert set(np.sort(study.y)[-5:]) <= set(related.y[part].tolist())  # each study's best half
        rows = {tuple(r) for r in study.x}
        assert all(tuple(r) in rows for r in related.x[part])


def test_related_points_custom_slots_dims_and_errors():
    studies = [_study(8, 3, seed=k) for k in range(2)]
    related = ctx.related_points(studies, 100, np.random.RandomState(0), slots=[5, 2], dims=np.array([0, 2]))
    np.testing.assert_array_equal(related.task, np.repeat([5, 2], 8))  # small studies: every point
    np.testing.assert_array_equal(related.x, np.concatenate([s.x[:, [0, 2]] for s in studies]))
    np.testing.assert_array_equal(related.y, np.concatenate([s.y for s in studies]))
    # fewer points than studies: one each
    assert len(ctx.related_points(studies, 1, np.random.RandomState(0))) == 2
    with pytest.raises(ValueError, match="no related studies"):
        ctx.related_points([], 10, np.random.RandomState(0))


# ---------------------------------------------------------------------------------------------- join
def test_join_puts_related_points_first_and_own_points_under_slot_0():
    related = Context(np.full((4, 2), 0.25), np.arange(4.0), np.array([1, 1, 2, 2]))
    x_own, y_own = _own(3)
    joined = ctx.join(related, x_own, y_own)
    assert len(joined) == 7 and joined.has_related
    np.testing.assert_array_equal(joined.x[:4], related.x)
    np.testing.assert_array_equal(joined.x[4:], x_own)
    np.testing.assert_array_equal(joined.y, np.r_[related.y, y_own])
    np.testing.assert_array_equal(joined.task, [1, 1, 2, 2, OWN_SLOT, OWN_SLOT, OWN_SLOT])
    x, y, task = joined.tensors()
    assert x.shape == (1, 7, 2) and y.shape == (1, 7) and task.tolist() == [joined.task.tolist()]
    # before the study's first observation the context is the related points alone
    alone = ctx.join(related, np.zeros((0, 2)), np.zeros(0))
    np.testing.assert_array_equal(alone.x, related.x)
    np.testing.assert_array_equal(alone.task, related.task)


@pytest.mark.parametrize("related", [None, Context(np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=np.int64))])
def test_join_without_related_is_the_own_points_only(related):
    x_own, y_own = _own(3)
    joined = ctx.join(related, x_own, y_own)
    np.testing.assert_array_equal(joined.x, x_own)
    np.testing.assert_array_equal(joined.y, y_own)
    assert (joined.task == OWN_SLOT).all() and not joined.has_related
    assert joined.tensors()[2] is None  # a single-task model can read it


def test_join_batch_matches_join():
    g = torch.Generator().manual_seed(0)
    x_rel, y_rel = torch.rand(2, 4, 3, generator=g), torch.randn(2, 4, generator=g)
    task_rel = torch.tensor([[1, 1, 2, 3], [2, 2, 2, 1]])
    x_own, y_own = torch.rand(2, 5, 3, generator=g), torch.randn(2, 5, generator=g)
    assert ctx.join_batch(None, None, None, x_own, y_own) == (x_own, y_own, None)
    x, y, task = ctx.join_batch(x_rel, y_rel, task_rel, x_own, y_own)
    assert x.shape == (2, 9, 3) and y.shape == (2, 9) and task.shape == (2, 9) and task.dtype == torch.long
    for b in range(2):
        single = ctx.join(Context(x_rel[b].numpy(), y_rel[b].numpy(), task_rel[b].numpy()), x_own[b].numpy(),
                          y_own[b].numpy())
        np.testing.assert_allclose(x[b].numpy(), single.x, atol=1e-7)
        np.testing.assert_allclose(y[b].numpy(), single.y, atol=1e-7)
        np.testing.assert_array_equal(task[b].numpy(), single.task)


# ---------------------------------------------------------------------------------------------- collate
def test_collate_pads_and_masks(slot_model):
    short = ctx.join(Context(np.full((2, 2), 0.3), np.array([0.5, -0.5]), np.array([1, 2])), *_own(1, seed=4))
    long = ctx.join(None, *_own(5, seed=5))
    x, y, task, mask = ctx.collate([short, long])
    assert x.shape == (2, 5, 2) and y.shape == task.shape == mask.shape == (2, 5)
    assert mask.tolist() == [[True, True, True, False, False], [True] * 5]
    np.testing.assert_allclose(x[0, :3].numpy(), short.x, atol=1e-7)
    np.testing.assert_allclose(y[1].numpy(), long.y, atol=1e-7)
    assert (x[0, 3:] == 0).all() and (y[0, 3:] == 0).all()
    assert task[0].tolist() == [1, 2, 0, 0, 0] and (task[1] == 0).all()
    for got, want in zip(ctx.collate([short, long], width=2), (x, y, task, mask)):
        assert torch.equal(got, want)
    # the padded context predicts as the context alone
    xq = np.random.RandomState(0).rand(3, 2)
    with torch.no_grad():
        batched = slot_model.encode_context(x, y, mask, ctx_task=task)
        got = slot_model.predict_logits(batched, torch.as_tensor(xq, dtype=torch.float32)[None].expand(2, -1, -1))
    torch.testing.assert_close(got[0], _predict(slot_model, ctx.encode(slot_model, short), xq), atol=2e-5, rtol=0)
    torch.testing.assert_close(got[1], _predict(slot_model, ctx.encode(slot_model, long), xq), atol=2e-5, rtol=0)


def test_collate_pads_an_empty_context():
    empty = ctx.join(None, np.zeros((0, 2)), np.zeros(0))
    x, y, task, mask = ctx.collate([ctx.join(None, *_own(2)), empty])
    assert x.shape == (2, 2, 2) and not mask[1].any() and mask[0].all()


def test_collate_pads_inputs_to_the_width_asked_for():
    own = ctx.join(None, *_own(3))
    x, _, _, mask = ctx.collate([own], width=5)
    assert x.shape == (1, 3, 5) and (x[0, :, 2:] == 0).all()
    assert torch.equal(x[0, :, :2], torch.as_tensor(own.x, dtype=torch.float32))


# ---------------------------------------------------------------------------------------------- encode
def test_encode_reads_the_whole_context(tiny_model):
    x, y = _own(6)
    cache = ctx.encode(tiny_model, ctx.join(None, x, y))
    assert cache.keys[0].shape[-2] == len(y) + 1  # + the null token
    ref = tiny_model.encode_context(torch.as_tensor(x, dtype=torch.float32)[None],
                                    torch.as_tensor(y, dtype=torch.float32)[None])
    xq = np.random.RandomState(1).rand(4, 2)
    torch.testing.assert_close(_predict(tiny_model, cache, xq), _predict(tiny_model, ref, xq))
    # an empty pending set changes nothing
    empty = ctx.encode(tiny_model, ctx.join(None, x, y), np.zeros((0, 2)))
    torch.testing.assert_close(_predict(tiny_model, empty, xq), _predict(tiny_model, cache, xq))


def test_pending_points_join_as_fantasies_at_the_predicted_mean(tiny_model):
    x, y = _own(6)
    xp = np.array([[0.1, 0.9], [0.8, 0.2]])
    xq = np.random.RandomState(1).rand(4, 2)
    context = ctx.join(None, x, y)
    plain = ctx.encode(tiny_model, context)
    pending = ctx.encode(tiny_model, context, xp)
    assert pending.keys[0].shape[-2] == len(y) + len(xp) + 1
    assert not torch.allclose(_predict(tiny_model, pending, xq), _predict(tiny_model, plain, xq), atol=1e-4)
    fantasy = tiny_model.bar.mean(_predict(tiny_model, plain, xp)).numpy()  # "kriging believer"
    believed = ctx.encode(tiny_model, ctx.join(None, np.r_[x, xp], np.r_[y, fantasy]))
    torch.testing.assert_close(_predict(tiny_model, pending, xq), _predict(tiny_model, believed, xq),
                               atol=2e-5, rtol=0)
    other = ctx.encode(tiny_model, ctx.join(None, np.r_[x, xp], np.r_[y, fantasy + 1.0]))
    assert not torch.allclose(_predict(tiny_model, pending, xq), _predict(tiny_model, other, xq), atol=1e-4)


def test_pending_points_join_under_the_own_slot_after_related_points(slot_model):
    related = Context(np.random.RandomState(2).rand(4, 2), np.random.RandomState(3).randn(4), np.array([1, 1, 2, 3]))
    x, y = _own(3)
    context = ctx.join(related, x, y)
    xp = np.array([[0.4, 0.6]])
    xq = np.random.RandomState(1).rand(4, 2)
    fantasy = slot_model.bar.mean(_predict(slot_model, ctx.encode(slot_model, context), xp)).numpy()
    got = _predict(slot_model, ctx.encode(slot_model, context, xp), xq)
    as_own = ctx.join(related, np.r_[x, xp], np.r_[y, fantasy])
    torch.testing.assert_close(got, _predict(slot_model, ctx.encode(slot_model, as_own), xq), atol=2e-5, rtol=0)
    as_related = Context(as_own.x, as_own.y, np.r_[as_own.task[:-1], 1])
    assert not torch.allclose(got, _predict(slot_model, ctx.encode(slot_model, as_related), xq), atol=1e-4)
