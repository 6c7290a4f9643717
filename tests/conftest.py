"""Shared fixtures: a tiny randomly initialised model (fast, deterministic) and quiet, single-threaded torch."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pytest
import torch

from metabo.model import ModelConfig, TNPModel

torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY_BUCKETS = 50


def tiny_config(**overrides) -> ModelConfig:
    """A small architecture (d_model 32, 2 layers, 50 buckets) that runs in milliseconds."""
    kwargs = dict(max_dims=16, d_model=32, n_layers=2, n_heads=4, d_ff=64, n_buckets=TINY_BUCKETS, max_context=200)
    kwargs.update(overrides)
    return ModelConfig(**kwargs)


def tiny_borders(n_buckets: int = TINY_BUCKETS) -> torch.Tensor:
    # Non-uniform but symmetric-ish borders, like quantiles of a standard normal.
    from scipy.stats import norm

    qs = np.linspace(0.002, 0.998, n_buckets + 1)
    return torch.tensor(norm.ppf(qs), dtype=torch.float32)


def make_tiny_model(seed: int = 0, **overrides) -> TNPModel:
    torch.manual_seed(seed)
    cfg = tiny_config(**overrides)
    model = TNPModel(cfg, tiny_borders(cfg.n_buckets))
    # Make the (otherwise near-uniform) random head a little more opinionated so predictions vary by input.
    with torch.no_grad():
        for p in model.head.parameters():
            p.mul_(3.0)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="session")
def tiny_model() -> TNPModel:
    return make_tiny_model(0)


@pytest.fixture
def tnp_warnings():
    """Record every warning (no de-duplication by Python) and return those emitted by TNPSampler."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        yield record


def tnp_messages(record) -> list[str]:
    return [str(w.message) for w in record if "TNPSampler" in str(w.message)]
