"""The transformer neural process and its bar-distribution head."""

from metabo.model.bar_distribution import BarDistribution
from metabo.model.io import ModelLoadError, load_cached, load_model, save_model
from metabo.model.transformer import ContextCache, ModelConfig, TNPModel

__all__ = [
    "BarDistribution",
    "ContextCache",
    "ModelConfig",
    "ModelLoadError",
    "TNPModel",
    "load_cached",
    "load_model",
    "save_model",
]
