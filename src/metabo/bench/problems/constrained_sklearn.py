"""A real constrained problem: a random forest's error under a model-size budget (``constrained/rf_digits_nodes``).

The objective is exactly ``sklearn/rf/digits/error`` (``metabo.bench.problems.sklearn_tuning``): the 3-fold
cross-validated error of a 30-tree random forest (``StandardScaler -> RandomForestClassifier``, fixed seeds) on
scikit-learn's bundled digits, over the same five hyperparameters. The constraint is a deterministic model-size
budget, free of any training-time measurement: the forest's total number of tree nodes, averaged over the three
fold fits, must not exceed ``NODE_LIMIT`` (constraint value ``nodes / NODE_LIMIT - 1``). Deep, fine-grained
forests are the most accurate and the largest (about 8,000 nodes), so the budget is active at the optimum.
One evaluation takes about 0.3 s on one core.

The optimum is unknown (``known_optimum`` is ``None``): the report's reference is the best feasible value seen
in the store (random sample included), as for the other scikit-learn problems.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from optuna.distributions import BaseDistribution

from metabo.bench.problems.base import Outcome
from metabo.bench.problems.sklearn_tuning import MODELS, RANDOM_MEDIAN_POINTS, cv_splits, load_dataset

NODE_LIMIT = 1500  # about a fifth of an unconstrained forest's size; about a quarter of random configurations exceed it


@dataclass(frozen=True)
class RandomForestSizeProblem:
    """Minimise the random forest's cross-validated error on digits subject to ``nodes <= NODE_LIMIT``."""

    dataset: str = "digits"
    node_limit: int = NODE_LIMIT
    known_optimum: float | None = None
    random_median_points: int = RANDOM_MEDIAN_POINTS
    constraint_names: tuple[str, ...] = ("tree_nodes",)

    @property
    def name(self) -> str:
        return f"constrained/rf_{self.dataset}_nodes"

    @property
    def family(self) -> str:
        return "constrained"

    @property
    def dim(self) -> int:
        return len(self.search_space())

    def search_space(self) -> dict[str, BaseDistribution]:
        """The random forest's space of ``sklearn_tuning``."""
        return dict(MODELS["rf"].space)

    def evaluate_outcome(self, params: Mapping[str, Any]) -> Outcome:
        """Mean fold error and the node-budget constraint (deterministic: fixed folds and model seed)."""
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from threadpoolctl import threadpool_limits

        x, y = load_dataset(self.dataset)
        chosen = {k: params[k] for k in self.search_space()}
        errors, nodes = [], []
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for train, test in cv_splits(self.dataset):
                forest = MODELS["rf"].build(chosen, True)
                model = make_pipeline(StandardScaler(), forest)
                model.fit(x[train], y[train])
                errors.append(float(np.mean(model.predict(x[test]) != y[test])))
                nodes.append(sum(tree.tree_.node_count for tree in forest.estimators_))
        return Outcome((float(np.mean(errors)),), (float(np.mean(nodes)) / self.node_limit - 1.0,))

    def evaluate(self, params: Mapping[str, Any]) -> float:
        """The error alone, feasible or not."""
        return self.evaluate_outcome(params).values[0]
