"""metabo: meta-learned Bayesian optimisation with a pretrained transformer neural process.

Use it as an Optuna sampler::

    import optuna, metabo
    study = optuna.create_study(sampler=metabo.TNPSampler(seed=0))

Advanced settings are small config objects: ``ValueTransformConfig`` (``transform=``), ``CandidateSearchConfig``
(``search=``) and ``RelatedStudies`` (``related=``, to set how many related points join the context).
"""

from metabo.acquisition import CandidateSearchConfig
from metabo.normalise import ValueTransformConfig
from metabo.related import RelatedStudies
from metabo.sampler import TNPSampler

__version__ = "0.1.0"

__all__ = ["CandidateSearchConfig", "RelatedStudies", "TNPSampler", "ValueTransformConfig", "__version__"]
