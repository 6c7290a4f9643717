"""BoTorch 0.18.1 peer worker (run by path in the ``botorch`` environment; see ``worker_protocol.py``).

The textbook loop: a scrambled Sobol design until ``n_init`` observations (default ``max(5, 2 d)``, Ax's rule),
then per ask a ``SingleTaskGP`` (default priors, outcome standardised) fitted by ``fit_gpytorch_mll`` and one
point maximising ``qLogNoisyExpectedImprovement`` by ``optimize_acqf`` (10 restarts, 512 raw samples) in the
unit cube. Ints are relaxed to their continuous range and rounded; categoricals are one-hot, relaxed to [0, 1]
and decoded by argmax. Double precision throughout.
"""

from __future__ import annotations

import math
from typing import Any

import worker_protocol

import torch  # noqa: E402 - after worker_protocol, which pins thread counts and cleans sys.path
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf
from gpytorch.mlls import ExactMarginalLogLikelihood

VERSION_PACKAGES = ("botorch", "gpytorch", "linear_operator", "torch", "numpy", "scipy")


class BotorchWorker:
    """Sobol start, then GP + qLogNEI, one point per ask."""

    def __init__(self, space: dict[str, dict[str, Any]], seed: int, options: dict[str, Any]) -> None:
        torch.manual_seed(seed)
        self.space = space
        self.width = sum(s["n"] if s["type"] == "categorical" else 1 for s in space.values())
        self.n_init = int(options.get("n_init") or max(5, 2 * len(space)))
        self.startup_trials = self.n_init
        self.num_restarts = int(options.get("num_restarts", 10))
        self.raw_samples = int(options.get("raw_samples", 512))
        self.sobol = torch.quasirandom.SobolEngine(self.width, scramble=True, seed=seed)
        self.X: list[list[float]] = []
        self.y: list[float] = []

    def _encode(self, params: dict[str, Any]) -> list[float]:
        row: list[float] = []
        for name, spec in self.space.items():
            if spec["type"] == "categorical":
                row += [1.0 if i == int(params[name]) else 0.0 for i in range(spec["n"])]
            else:
                row.append(worker_protocol.value_to_unit(spec, params[name]))
        return row

    def _decode(self, row: list[float]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        i = 0
        for name, spec in self.space.items():
            if spec["type"] == "categorical":
                block = row[i:i + spec["n"]]
                out[name] = max(range(spec["n"]), key=block.__getitem__)
                i += spec["n"]
            else:
                out[name] = worker_protocol.unit_to_value(spec, row[i])
                i += 1
        return out

    def tell(self, params: dict[str, Any], value: float, token: Any) -> None:
        if math.isfinite(value):
            self.X.append(self._encode(params))
            self.y.append(value)

    def ask(self) -> tuple[dict[str, Any], Any]:
        if len(self.y) < self.n_init:
            return self._decode(self.sobol.draw(1)[0].tolist()), None
        X = torch.tensor(self.X, dtype=torch.double)
        Y = -torch.tensor(self.y, dtype=torch.double).unsqueeze(-1)  # BoTorch maximises
        model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        acq = qLogNoisyExpectedImprovement(model, X_baseline=X, prune_baseline=True)
        bounds = torch.stack([torch.zeros(self.width, dtype=torch.double), torch.ones(self.width, dtype=torch.double)])
        cand, _ = optimize_acqf(acq, bounds=bounds, q=1, num_restarts=self.num_restarts, raw_samples=self.raw_samples)
        return self._decode(cand[0].tolist()), None


if __name__ == "__main__":
    worker_protocol.serve(BotorchWorker, VERSION_PACKAGES)
