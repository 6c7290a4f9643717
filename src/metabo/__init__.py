"""metabo: meta-learned Bayesian optimisation with a pretrained transformer neural process.

Use it as an Optuna sampler::

    import optuna, metabo
    study = optuna.create_study(sampler=metabo.TNPSampler(seed=0))
"""

from metabo.sampler import TNPSampler

__version__ = "0.1.0"

__all__ = ["TNPSampler", "__version__"]
