"""metabo: meta-learned Bayesian optimisation."""
__version__ = "0.1.0"
