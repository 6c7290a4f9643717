"""Choose a scikit-learn classifier and tune its own hyperparameters in one study (a conditional space).

The objective is written define-by-run, as for any Optuna sampler: each classifier's hyperparameters are suggested
only when that classifier is chosen. metabo reads which parameters belong to which choice from the trials and
models them all (nothing is sampled at random after the start-up trials). Runs metabo and Optuna's TPE with
``group=True`` side by side on the bundled digits data and prints the best 3-fold CV error of each.

    python examples/cash_sklearn.py            # 40 trials each, about two minutes on two cores
    python examples/cash_sklearn.py --trials 15
"""

from __future__ import annotations

import argparse
import warnings

import optuna
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from metabo import TNPSampler

X, Y = load_digits(return_X_y=True)


def objective(trial: optuna.Trial) -> float:
    """3-fold CV error of the chosen classifier with its own hyperparameters."""
    name = trial.suggest_categorical("classifier", ["svm", "forest", "knn", "logistic"])
    if name == "svm":
        model = SVC(C=trial.suggest_float("svm_C", 1e-2, 1e3, log=True),
                    gamma=trial.suggest_float("svm_gamma", 1e-4, 1.0, log=True))
    elif name == "forest":
        model = RandomForestClassifier(n_estimators=30, random_state=0,
                                       max_depth=trial.suggest_int("forest_max_depth", 1, 16, log=True),
                                       max_features=trial.suggest_float("forest_max_features", 0.05, 1.0, log=True))
    elif name == "knn":
        model = KNeighborsClassifier(n_neighbors=trial.suggest_int("knn_neighbors", 1, 32, log=True),
                                     weights=trial.suggest_categorical("knn_weights", ["uniform", "distance"]))
    else:
        model = LogisticRegression(C=trial.suggest_float("logistic_C", 1e-4, 1e2, log=True), max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings at small iteration counts
        accuracy = cross_val_score(make_pipeline(StandardScaler(), model), X, Y, cv=3).mean()
    return 1.0 - float(accuracy)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = {"metabo": TNPSampler(seed=args.seed),
                "tpe (group=True)": optuna.samplers.TPESampler(multivariate=True, group=True, seed=args.seed)}
    best: dict[str, float] = {}
    for label, sampler in samplers.items():
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=args.trials)
        best[label] = study.best_value
        print(f"{label:18s} best CV error {study.best_value:.4f}  with {study.best_params}")
    return best


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # TPE's group=True
        main()
