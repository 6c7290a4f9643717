"""Synthetic task generators for pretraining."""

from metabo.priors.gp import GPPrior, PriorConfig, TaskBatch

__all__ = ["GPPrior", "PriorConfig", "TaskBatch"]
