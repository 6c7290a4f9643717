"""End to end: past studies in a SQLite Optuna storage -> fine-tuning -> a new related study.

The scenario: a team tunes the same kind of model on dataset after dataset. Each dataset gives a slightly
different validation loss surface over five hyperparameters (learning rate, dropout, layers, batch size,
optimiser): the best region moves a little and the loss level changes, but the shape is shared.

Steps (all in ``--out``, default ``metabo_transfer_example/``):

1. ``past.db``: 50 past studies x 100 random trials on 50 datasets (``past-000`` ... ``past-049``).
2. ``finetuned.safetensors``: ``metabo.train.finetune`` on those studies (the same as
   ``metabo finetune --storage sqlite:///past.db --study-pattern 'past-*' --out finetuned.safetensors``).
3. New datasets never seen before: for each seed, one new dataset is tuned for ``--trials`` trials by the plain
   ``TNPSampler`` (zero-shot), by the shipped multi-task model with the past studies in context
   (``TNPSampler(related=(storage, 'past-*'))``, no fine-tuning) and by the fine-tuned model with them
   (``TNPSampler(model=finetuned, related=(storage, 'past-*'))``). The table gives the mean simple regret (loss
   above the dataset's known optimum) after 5, 10 and 20 trials.

Run: ``python examples/transfer_sqlite.py`` (about ten minutes on two cores; ``--quick`` for a smaller run).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from metabo import TNPSampler
from metabo.meta import load_corpus
from metabo.train.finetune import FinetuneConfig, finetune

SPACE = {
    "learning_rate": FloatDistribution(1e-4, 1.0, log=True),
    "dropout": FloatDistribution(0.0, 0.8),
    "layers": IntDistribution(1, 6),
    "batch_size": IntDistribution(16, 512, log=True),
    "optimizer": CategoricalDistribution(("adam", "sgd")),
}
CHECKPOINTS = (5, 10, 20)


class Dataset:
    """One dataset's validation loss surface: shared shape, a dataset-specific optimum and loss level."""

    def __init__(self, index: int) -> None:
        rng = np.random.default_rng([2026, index])
        self.centre = np.clip(np.array([0.55, 0.3, 0.45, 0.4]) + 0.08 * rng.standard_normal(4), 0.05, 0.95)
        self.weights = np.array([3.0, 1.0, 0.6, 0.4]) * np.exp(0.2 * rng.standard_normal(4))
        self.level = float(rng.uniform(0.2, 1.0))
        self.scale = float(np.exp(0.3 * rng.standard_normal()))
        self.sgd_penalty = float(rng.uniform(0.05, 0.3))

    def unit(self, params: dict) -> np.ndarray:
        lr = (math.log10(params["learning_rate"]) + 4) / 4
        bs = (math.log2(params["batch_size"]) - 4) / 5
        return np.array([lr, params["dropout"] / 0.8, (params["layers"] - 1) / 5, bs])

    def loss(self, params: dict) -> float:
        u = self.unit(params)
        bowl = float(self.weights @ (u - self.centre) ** 2)
        ripple = 0.05 * (1 - math.cos(8 * math.pi * (u[0] - self.centre[0])))
        penalty = self.sgd_penalty if params["optimizer"] == "sgd" else 0.0
        return self.level + self.scale * (bowl + ripple + penalty)

    def best_loss(self) -> float:
        """A lower bound reached at the centre with Adam (layers are integers, so it may be unreachable)."""
        return self.level


def objective_for(dataset: Dataset):
    def objective(trial: optuna.Trial) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1.0, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.8),
            "layers": trial.suggest_int("layers", 1, 6),
            "batch_size": trial.suggest_int("batch_size", 16, 512, log=True),
            "optimizer": trial.suggest_categorical("optimizer", ["adam", "sgd"]),
        }
        return dataset.loss(params)

    return objective


def make_past_studies(storage: str, n_studies: int, n_trials: int) -> None:
    """``n_studies`` random-search studies of ``n_trials`` trials each, on datasets 0..n_studies-1."""
    for i in range(n_studies):
        name = f"past-{i:03d}"
        study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True)
        if len(study.trials) >= n_trials:
            continue
        dataset = Dataset(i)
        rng = np.random.default_rng(i)
        trials = []
        for _ in range(n_trials - len(study.trials)):
            params = {
                "learning_rate": float(10 ** rng.uniform(-4, 0)),
                "dropout": float(rng.uniform(0, 0.8)),
                "layers": int(rng.integers(1, 7)),
                "batch_size": int(round(2 ** rng.uniform(4, 9))),
                "optimizer": str(rng.choice(["adam", "sgd"])),
            }
            trials.append(optuna.trial.create_trial(params=params, distributions=SPACE, value=dataset.loss(params)))
        study.add_trials(trials)


def regret_curve(study: optuna.Study, dataset: Dataset) -> list[float]:
    best = np.minimum.accumulate([t.value for t in study.trials])
    return [float(best[k - 1] - dataset.best_loss()) for k in CHECKPOINTS if k <= len(best)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="metabo_transfer_example")
    parser.add_argument("--past-studies", type=int, default=50)
    parser.add_argument("--past-trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--finetune-minutes", type=float, default=8.0)
    parser.add_argument("--quick", action="store_true", help="10 past studies x 40 trials, 3 seeds, 1 minute")
    args = parser.parse_args()
    if args.quick:
        args.past_studies, args.past_trials, args.seeds, args.finetune_minutes = 10, 40, 3, 1.0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{out / 'past.db'}"

    t0 = time.time()
    make_past_studies(storage, args.past_studies, args.past_trials)
    print(f"1. {args.past_studies} past studies x {args.past_trials} trials in {storage} ({time.time() - t0:.0f} s)")

    corpus = load_corpus((storage, "past-*"), target_space=SPACE)
    model_path = out / "finetuned.safetensors"
    result = finetune(corpus, model_path, target_space=SPACE, cfg=FinetuneConfig(max_minutes=args.finetune_minutes),
                      command=f"python examples/transfer_sqlite.py --out {args.out}", corpus_label=f"{storage} (past-*)")
    print(f"2. fine-tuned in {result.wall_seconds:.0f} s ({result.steps} steps, best at {result.best_step}; "
          f"validation NLL {result.base_val_nll:.3f} -> {result.best_val_nll:.3f}): {model_path}")

    curves: dict[str, list[list[float]]] = {"plain": [], "past studies": [], "fine-tuned + past studies": []}
    for seed in range(args.seeds):
        dataset = Dataset(10_000 + seed)  # datasets never seen in the past studies
        samplers = {
            "plain": TNPSampler(seed=seed),
            "past studies": TNPSampler(seed=seed, related=(storage, "past-*"), search_space=SPACE),
            "fine-tuned + past studies": TNPSampler(seed=seed, model=model_path, related=(storage, "past-*"),
                                                    search_space=SPACE),
        }
        for label, sampler in samplers.items():
            study = optuna.create_study(sampler=sampler)
            study.optimize(objective_for(dataset), n_trials=args.trials)
            curves[label].append(regret_curve(study, dataset))
    print(f"3. new datasets, {args.seeds} seeds: mean simple regret after k trials (lower is better)")
    print("| sampler | " + " | ".join(f"k={k}" for k in CHECKPOINTS if k <= args.trials) + " |")
    print("|---|" + "---|" * sum(k <= args.trials for k in CHECKPOINTS))
    summary = {}
    for label, rows in curves.items():
        means = np.mean(np.array(rows), axis=0)
        summary[label] = means.tolist()
        print(f"| {label} | " + " | ".join(f"{m:.4f}" for m in means) + " |")
    summary["finetune_seconds"] = result.wall_seconds
    summary["args"] = vars(args)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"summary: {out / 'summary.json'}")


if __name__ == "__main__":
    main()
