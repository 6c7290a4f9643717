"""Acquisition: functions that score candidates from the model's predictions, and the candidate search.

* ``functions``: ``Acquisition`` objects (log-EI, log-PI, UCB, the predicted mean, the learned NAP head, and the
  feasibility weighting for constraints), each a map from the model's candidate features (one row per objective
  and constraint) to a score (larger is better) and the predictive logits.
* ``hypervolume``: acquisitions for several objectives (log-EHVI for 2-3, ParEGO scalarisation beyond).
* ``optimizer``: ``optimize_acquisition`` maximises any ``Acquisition`` over a ``metabo.space.Subspace``; it knows
  nothing of where the context came from (own trials, pending trials, related studies).
"""

from metabo.acquisition.functions import (ACQUISITION_KINDS, Acquisition, AcquisitionKind, FeasibilityWeighted,
                                          LearnedAcquisition, LogExpectedImprovement, LogProbabilityOfImprovement,
                                          ObjectiveAcquisition, PredictedMean, UpperConfidenceBound,
                                          make_acquisition)
from metabo.acquisition.optimizer import (MULTI_OBJECTIVE_SEARCH, TRANSFER_SEARCH, WIDE_SEARCH, WIDE_SPACE_DIMS,
                                          CandidateSearchConfig, Suggestion, optimize_acquisition, score_points)

__all__ = [
    "ACQUISITION_KINDS",
    "Acquisition",
    "AcquisitionKind",
    "CandidateSearchConfig",
    "TRANSFER_SEARCH",
    "WIDE_SEARCH",
    "WIDE_SPACE_DIMS",
    "MULTI_OBJECTIVE_SEARCH",
    "FeasibilityWeighted",
    "LearnedAcquisition",
    "LogExpectedImprovement",
    "LogProbabilityOfImprovement",
    "ObjectiveAcquisition",
    "PredictedMean",
    "Suggestion",
    "UpperConfidenceBound",
    "make_acquisition",
    "optimize_acquisition",
    "score_points",
]
