"""HEBO 0.3.6 peer worker (run by path in the ``hebo`` environment; see ``worker_protocol.py``).

Defaults throughout: GP surrogate, MACE acquisition, NSGA-II acquisition search, Sobol initial design of
``1 + d`` observations (HEBO counts observations, so an outside first trial shortens its own design by one).
HEBO draws from numpy's and torch's global generators, which are seeded here.
"""

from __future__ import annotations

import random
from typing import Any

import worker_protocol

import numpy as np  # noqa: E402 - after worker_protocol, which pins thread counts and cleans sys.path
import pandas as pd
import torch
from hebo.design_space.design_space import DesignSpace
from hebo.optimizers.hebo import HEBO

VERSION_PACKAGES = ("hebo", "torch", "numpy", "scipy", "scikit-learn", "pymoo", "gpytorch", "pandas")


def _hebo_param(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    if spec["type"] == "categorical":
        return {"name": name, "type": "cat", "categories": [f"c{i}" for i in range(spec["n"])]}
    kind = {("float", False): "num", ("float", True): "pow", ("int", False): "int", ("int", True): "pow_int"}
    return {"name": name, "type": kind[spec["type"], bool(spec["log"])], "lb": spec["low"], "ub": spec["high"]}


class HeboWorker:
    """Ask/tell around ``hebo.optimizers.hebo.HEBO`` with one suggestion per ask."""

    def __init__(self, space: dict[str, dict[str, Any]], seed: int, options: dict[str, Any]) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        self.space = space
        design = DesignSpace().parse([_hebo_param(n, s) for n, s in space.items()])
        self.opt = HEBO(design, scramble_seed=seed, **options.get("hebo_kwargs", {}))
        self.startup_trials = int(self.opt.rand_sample)

    def _to_hebo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {n: (f"c{int(params[n])}" if s["type"] == "categorical" else params[n]) for n, s in self.space.items()}

    def tell(self, params: dict[str, Any], value: float, token: Any) -> None:
        self.opt.observe_new_data(pd.DataFrame([self._to_hebo(params)]), np.array([[value]], dtype=float))

    def ask(self) -> tuple[dict[str, Any], Any]:
        row = self.opt.suggest(n_suggestions=1).iloc[0]
        out: dict[str, Any] = {}
        for name, spec in self.space.items():
            value = row[name]
            if spec["type"] == "categorical":
                out[name] = int(str(value)[1:])
            elif spec["type"] == "int":
                out[name] = int(round(float(value)))
            else:
                out[name] = float(value)
        return out, None


if __name__ == "__main__":
    worker_protocol.serve(HeboWorker, VERSION_PACKAGES)
