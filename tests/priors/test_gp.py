"""The GP prior's multi-task batches: related studies, each standardised on its own."""

from __future__ import annotations

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
