"""Tests of metabo.sampler (TNPSampler)."""
