"""The GP prior's multi-task batches: related studies, each standardised on its own."""

from __future__ import annotations

import pytest
import torch

from metabo.priors.gp import GPPrior, standardise_per_study


def test_multitask_prior_related_studies_are_standardised_per_study():
    g = torch.Generator().manual_seed(0)
    prior = GPPrior()
    batch = prior.sample(64, 4, 8, g, n_related=40, n_related_studies=3)
    assert batch.x_rel.shape == (64, 40, 16) and batch.y_rel.shape == (64, 40)
    assert set(batch.rel_study.unique().tolist()) == {0, 1, 2}
    for s in range(3):  # each study is standardised on its own
        m = batch.rel_study[0] == s
        if m.sum() > 1:
            assert torch.allclose(batch.y_rel[:, m].mean(1), torch.zeros(64), atol=1e-4)
            assert torch.allclose(batch.y_rel[:, m].std(1), torch.ones(64), atol=1e-3)
    assert prior.sample(8, 4, 8, g).x_rel is None  # single-task batches have no related studies


def test_standardise_per_study():
    y = torch.tensor([[1.0, 3.0, 10.0, 20.0, 5.0]])
    study = torch.tensor([[0, 0, 1, 1, 2]])
    out = standardise_per_study(y, study)
    assert torch.allclose(out, torch.tensor([[-0.7071, 0.7071, -0.7071, 0.7071, 0.0]]), atol=1e-4)


def test_conditional_layout_makes_the_switch_one_hot_and_zeroes_other_choices_blocks():
    from metabo.priors.gp import _apply_conditions, _conditional_layout

    g = torch.Generator().manual_seed(1)
    B, D = 32, 8
    order = torch.argsort(torch.rand(B, D, generator=g), dim=1)
    n_dims = torch.full((B,), D)
    switch, owner = _conditional_layout(order, n_dims, 1.0, g)
    x = _apply_conditions(torch.rand(B, 50, D, generator=g, dtype=torch.float64), switch, owner)
    for i in range(B):
        k = int(switch[i].max()) + 1
        assert 2 <= k <= 4 and sorted(switch[i][switch[i] >= 0].tolist()) == list(range(k))
        cols = switch[i] >= 0
        assert torch.all(x[i][:, cols].sum(-1) == 1) and torch.all((x[i][:, cols] == 0) | (x[i][:, cols] == 1))
        choice = switch[i][cols][x[i][:, cols].argmax(-1)]  # (N,) each point's choice
        for j in range(D):
            if owner[i, j] >= 0:  # a block input: 0 exactly where another choice holds, free where its own does
                assert torch.all(x[i][choice != owner[i, j], j] == 0)
                assert torch.all(x[i][choice == owner[i, j], j] > 0)
    assert set(torch.cat([s[s >= 0] for s in switch]).unique().tolist()) >= {0, 1, 2}  # choices are spread


def test_without_conditional_tasks_the_prior_draws_exactly_as_before():
    from metabo.priors.gp import PriorConfig

    plain = GPPrior().sample(8, 12, 6, torch.Generator().manual_seed(3))
    zero = GPPrior(PriorConfig(conditional_prob=0.0)).sample(8, 12, 6, torch.Generator().manual_seed(3))
    assert torch.equal(plain.x_ctx, zero.x_ctx) and torch.equal(plain.y_qry, zero.y_qry)
    conditional = GPPrior(PriorConfig(conditional_prob=1.0, min_dims=16)).sample(8, 40, 6, torch.Generator().manual_seed(3))
    for x in conditional.x_ctx:  # every task has a switch: columns holding only 0 and 1, one 1 per point
        binary = ((x == 0) | (x == 1)).all(0)
        assert binary.sum() >= 2 and torch.all(x[:, binary].sum(-1) >= 1)
    with pytest.raises(ValueError, match="conditional_prob"):
        PriorConfig(conditional_prob=1.5)
