"""SMAC3 2.4.1 peer worker (run by path in the ``smac`` environment; see ``worker_protocol.py``).

Options: ``facade`` (``hpo``: HyperparameterOptimizationFacade, random forest and log-EI; ``bb``: BlackBoxFacade, GP
and EI), ``n_trials`` (SMAC's ``Scenario.n_trials``, default 100 as in SMAC; it caps the Sobol initial design at a
quarter of it) and ``conditions`` (a conditional space: ConfigSpace conditions on categorical parents; inactive
parameters are left out of what is told and asked). Everything else is the facade's default (HPO retrains its forest
every 8 configurations, BlackBox every one). Points asked from SMAC are told back with their own ``TrialInfo``;
outside points (the first, random trial; random fallbacks) are told as new configurations on the intensifier's seed,
which SMAC accepts into its run history.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from typing import Any

import worker_protocol

from ConfigSpace import (Categorical, Configuration, ConfigurationSpace, EqualsCondition, Float,  # noqa: E402
                         InCondition, Integer)
from smac import BlackBoxFacade, HyperparameterOptimizationFacade, Scenario
from smac.runhistory.dataclasses import TrialInfo, TrialValue

VERSION_PACKAGES = ("smac", "ConfigSpace", "numpy", "scipy", "scikit-learn", "dask")
FACADES = {"hpo": HyperparameterOptimizationFacade, "bb": BlackBoxFacade}


def _never_called(config: Configuration, seed: int = 0) -> float:
    raise RuntimeError("ask/tell mode: SMAC never runs the target function itself")


class SmacWorker:
    """Ask/tell around a SMAC facade."""

    def __init__(self, space: dict[str, dict[str, Any]], seed: int, options: dict[str, Any]) -> None:
        self.space = space
        cs = ConfigurationSpace(seed=seed)
        for name, spec in space.items():
            if spec["type"] == "categorical":
                cs.add(Categorical(name, [f"c{i}" for i in range(spec["n"])]))
            elif spec["type"] == "int":
                cs.add(Integer(name, (int(spec["low"]), int(spec["high"])), log=bool(spec["log"])))
            else:
                cs.add(Float(name, (float(spec["low"]), float(spec["high"])), log=bool(spec["log"])))
        for cond in options.get("conditions", ()):
            child, parent = cs[cond["child"]], cs[cond["parent"]]
            values = [f"c{int(v)}" for v in cond["values"]]
            cs.add(EqualsCondition(child, parent, values[0]) if len(values) == 1
                   else InCondition(child, parent, values))
        self.cs = cs
        out_dir = tempfile.mkdtemp(prefix="metabo-smac-")
        atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
        n_trials = int(options.get("n_trials") or 100)
        scenario = Scenario(cs, deterministic=True, n_trials=n_trials, seed=seed, output_directory=out_dir)
        facade = FACADES[options.get("facade", "hpo")]
        self.smac = facade(scenario, _never_called, overwrite=True, logging_level=40)
        n_design = getattr(self.smac._initial_design, "_n_configs", None)  # sized from n_trials
        self.startup_trials = 1 + n_design if isinstance(n_design, int) else None  # + the outside first trial
        self.pending: dict[int, TrialInfo] = {}
        self.asks = 0
        self.seed = 0  # the intensifier's seed for a deterministic scenario; updated from its asks

    def _config(self, params: dict[str, Any]) -> Configuration:
        values = {}
        for name, spec in self.space.items():
            if name not in params:  # inactive in a conditional space
                continue
            if spec["type"] == "categorical":
                values[name] = f"c{int(params[name])}"
            elif spec["type"] == "int":
                values[name] = int(params[name])
            else:
                values[name] = float(params[name])
        return Configuration(self.cs, values=values)

    def tell(self, params: dict[str, Any], value: float, token: Any) -> None:
        info = self.pending.pop(token, None) if token is not None else None
        if info is None:
            info = TrialInfo(self._config(params), seed=self.seed)
        self.smac.tell(info, TrialValue(cost=value))

    def ask(self) -> tuple[dict[str, Any], Any]:
        info = self.smac.ask()
        if info.seed is not None:
            self.seed = info.seed
        self.asks += 1
        self.pending[self.asks] = info
        config = dict(info.config)
        out: dict[str, Any] = {}
        for name, spec in self.space.items():
            if name not in config:  # inactive in a conditional space
                continue
            value = config[name]
            if spec["type"] == "categorical":
                out[name] = int(str(value)[1:])
            elif spec["type"] == "int":
                out[name] = int(value)
            else:
                out[name] = float(value)
        return out, self.asks


if __name__ == "__main__":
    worker_protocol.serve(SmacWorker, VERSION_PACKAGES)
