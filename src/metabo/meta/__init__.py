"""A corpus of past studies for meta-learning, and a warm-start transfer baseline.

Modules (one job each):

* ``study``: ``PastStudy``, one past study as plain data (search space, ``(params, value)`` pairs, direction).
* ``optuna_source``: from an ``optuna.Study`` or a storage URL (name glob, search-space signature).
* ``table_source``: from CSV/TSV or Parquet files (inferred or declared search space).
* ``yahpo_source``: the meta-training corpus, random evaluations of YAHPO ``train`` instances.
* ``signature``: parameter names and kinds, to select studies that fit a target space.
* ``align``: a past study in a target space's unit cube, with an observed mask and overlap (documented rules).
* ``objective``: per-study normalisation, larger is better.
* ``corpus``: ``load_corpus`` over any mix of sources; ``check_sources`` checks them up front.
* ``warm_start``: ``WarmStartSampler``, the best past configurations first, then a base sampler.

Example::

    import optuna
    from optuna.distributions import FloatDistribution, CategoricalDistribution
    from metabo.meta import WarmStartSampler, align_corpus, load_corpus

    space = {"lr": FloatDistribution(1e-5, 1e-1, log=True), "opt": CategoricalDistribution(("adam", "sgd"))}
    corpus = load_corpus([("sqlite:///past.db", "resnet-*"), "runs/old_sweep.csv"], target_space=space)
    aligned, rejected = align_corpus(corpus, space)   # encoded x, observed mask, normalised y per study
    for a in aligned:
        print(a.name, a.overlap, a.x.shape, a.observed.mean())

    sampler = WarmStartSampler(corpus, n_warm=5, seed=0, search_space=space)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=50)   # trials 0-4: best past configs; then multivariate TPE

    train = load_corpus("yahpo:lcbench", yahpo_n_configs=200)   # meta-training corpus (train instances only)
"""

from metabo.meta.align import AlignedStudy, AlignmentError, Rejection, align, align_corpus
from metabo.meta.corpus import check_sources, load_corpus, load_source
from metabo.meta.objective import normalise_values
from metabo.meta.optuna_source import from_storage, from_study
from metabo.meta.signature import matches, shared_signature, space_signature
from metabo.meta.study import MetaDataError, PastStudy
from metabo.meta.table_source import read_table
from metabo.meta.warm_start import WarmStartSampler
from metabo.meta.yahpo_source import yahpo_studies

__all__ = [
    "AlignedStudy",
    "AlignmentError",
    "MetaDataError",
    "PastStudy",
    "Rejection",
    "WarmStartSampler",
    "align",
    "align_corpus",
    "check_sources",
    "from_storage",
    "from_study",
    "load_corpus",
    "load_source",
    "matches",
    "normalise_values",
    "read_table",
    "shared_signature",
    "space_signature",
    "yahpo_studies",
]
