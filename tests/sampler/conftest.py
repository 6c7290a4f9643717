"""Fixtures of the TNPSampler tests."""

from __future__ import annotations

import numpy as np
import pytest

from metabo import context as ctx

from .helpers import Encoded, EncodedOutputs


@pytest.fixture
def spy_encode(monkeypatch) -> list[Encoded]:
    """Record every context (and pending set) a suggestion hands to the model."""
    calls: list[Encoded] = []
    original = ctx.encode

    def spy(model, context, x_pending=None):
        calls.append(Encoded(context, None if x_pending is None else np.array(x_pending)))
        cache = original(model, context, x_pending)
        # every context point, and every pending point (as a fantasy), is in the encoded context (+1: null token)
        n_pending = 0 if x_pending is None else len(x_pending)
        assert cache.keys[0].shape[-2] == len(context) + n_pending + 1
        return cache

    monkeypatch.setattr(ctx, "encode", spy)
    return calls


@pytest.fixture
def spy_encode_many(monkeypatch) -> list[EncodedOutputs]:
    """Record the contexts (one per objective and constraint) every suggestion hands to the model."""
    calls: list[EncodedOutputs] = []
    original = ctx.encode

    def spy(model, context, x_pending=None):
        contexts = [context] if isinstance(context, ctx.Context) else list(context)
        calls.append(EncodedOutputs(contexts, None if x_pending is None else np.array(x_pending)))
        cache = original(model, context, x_pending)
        assert cache.keys[0].shape[0] == len(contexts)  # one batch row per output
        return cache

    monkeypatch.setattr(ctx, "encode", spy)
    return calls
