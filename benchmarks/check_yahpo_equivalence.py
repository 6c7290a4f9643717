"""Check that metabo's YAHPO surrogate evaluation equals yahpo-gym 1.0.2's, on random configurations.

metabo evaluates YAHPO's ONNX surrogates with onnxruntime directly (``metabo.bench.problems.yahpo``), because
yahpo-gym pins ConfigSpace 0.6, which does not install beside numpy 2. This script asks yahpo-gym itself, in a
separate virtualenv, for the outputs of random configurations (sampled by ConfigSpace, conditional parameters
included, at random fidelities and train/validation instances) and compares every output column, and the
full-fidelity objective, with metabo's. Batches are compared with batches and single calls with single calls
(onnxruntime's float32 results depend slightly on the batch size). It exits 1 on any difference above ``--tol``.

    python3.11 -m venv /tmp/yahpo_venv && /tmp/yahpo_venv/bin/pip install yahpo-gym==1.0.2 onnxruntime
    python benchmarks/check_yahpo_equivalence.py --yahpo-python /tmp/yahpo_venv/bin/python --n 300
    # refresh the sample the unit tests compare against:
    python benchmarks/check_yahpo_equivalence.py --yahpo-python ... --write-fixture tests/data/yahpo_reference.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# Runs inside the yahpo-gym virtualenv: reads a request on stdin, prints configurations and outputs as JSON.
_YAHPO_SIDE = r"""
import json, os, sys, random
req = json.load(sys.stdin)
from yahpo_gym import local_config
local_config.init_config()
local_config.set_data_path(req["data"])
from yahpo_gym import BenchmarkSet
bench = BenchmarkSet(req["scenario"], check=True)
bench.config_space.seed(req["seed"])
rng = random.Random(req["seed"])
inst_name = bench.config.instance_names
configs = []
for cfg in bench.config_space.sample_configuration(req["n"]):
    c = {k: (v.item() if hasattr(v, "item") else v) for k, v in cfg.get_dictionary().items()}
    c[inst_name] = rng.choice(req["instances"])
    if rng.random() < 0.5:
        c.update(req["full_fidelity"])
    configs.append(c)
outputs = bench.objective_function(configs)  # one batch
single = [bench.objective_function(c)[0] for c in configs]  # one call each, as an optimiser would
rows = lambda outs: [[float(o[y]) for y in bench.config.y_names] for o in outs]
print(json.dumps({"configs": configs, "outputs": rows(outputs), "single": rows(single),
                  "y_names": list(bench.config.y_names)}))
"""


def yahpo_outputs(python: str, data: Path, scenario: str, n: int, seed: int) -> dict:
    """Configurations and yahpo-gym outputs for one scenario, from the yahpo-gym interpreter ``python``."""
    from metabo.bench.problems import yahpo

    spec = yahpo.SCENARIOS[scenario]
    request = {"data": str(data), "scenario": scenario, "n": n, "seed": seed,
               "instances": yahpo.instances(scenario, ("train", "validation")), "full_fidelity": dict(spec.fidelity)}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "YAHPO_LOCAL_CONFIG": str(Path(tmp) / "yahpo_config.yaml")}  # leave ~/.config alone
        out = subprocess.run([python, "-c", _YAHPO_SIDE], input=json.dumps(request), capture_output=True,
                             text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(scenario: str, sample: dict, seed: int) -> tuple[float, float, int]:
    """(max abs output difference, max abs objective difference, full-fidelity configurations compared).

    Full-fidelity configurations are evaluated one by one through the problem with every inactive parameter set to a
    random value, which must be ignored."""
    from metabo.bench.problems import yahpo

    spec = yahpo.SCENARIOS[scenario]
    model = yahpo.surrogate(scenario, yahpo.data_dir())
    ours = model.predict(sample["configs"])
    theirs = np.asarray(sample["outputs"], dtype=np.float64)
    out_diff = float(np.max(np.abs(ours - theirs)))
    rng = np.random.default_rng(seed)
    obj_diff, compared = 0.0, 0
    for config, row in zip(sample["configs"], np.asarray(sample["single"], dtype=np.float64)):
        if any(config.get(k) != v for k, v in spec.fidelity):
            continue
        problem = yahpo.YahpoProblem(scenario, str(config[spec.instance_param]))
        params = {}
        for name, dist in problem.search_space().items():
            if name in config:
                params[name] = config[name]
            elif hasattr(dist, "choices"):
                params[name] = dist.choices[int(rng.integers(len(dist.choices)))]
            else:  # inactive: any value must do
                params[name] = type(dist.low)(rng.uniform(dist.low, dist.high))
        expected = spec.objective(row[None, :].astype(np.float32))[0]
        obj_diff = max(obj_diff, abs(problem.evaluate(params) - float(expected)))
        compared += 1
    return out_diff, obj_diff, compared


def main(argv: list[str] | None = None) -> int:
    """Compare every scenario; optionally write a small fixture for the unit tests."""
    from metabo.bench.problems import yahpo

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--yahpo-python", required=True, help="python of a virtualenv with yahpo-gym==1.0.2")
    p.add_argument("--yahpo-data", default=None, help="YAHPO data folder (default: metabo's lookup)")
    p.add_argument("--n", type=int, default=300, help="random configurations per scenario (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol", type=float, default=0.0, help="largest allowed absolute difference")
    p.add_argument("--write-fixture", default=None, help="write the first --fixture-n configurations here")
    p.add_argument("--fixture-n", type=int, default=25)
    args = p.parse_args(argv)
    if args.yahpo_data:
        yahpo.set_data_dir(args.yahpo_data)
    data = yahpo.data_dir()
    fixture: dict[str, dict] = {}
    worst = 0.0
    for scenario in yahpo.SCENARIOS:
        sample = yahpo_outputs(args.yahpo_python, data, scenario, args.n, args.seed)
        out_diff, obj_diff, compared = compare(scenario, sample, args.seed)
        worst = max(worst, out_diff, obj_diff)
        print(f"{scenario:<14} {len(sample['configs'])} configs: max |output diff| {out_diff:.3g}; "
              f"{compared} at full fidelity: max |objective diff| {obj_diff:.3g}")
        fixture[scenario] = {"configs": sample["configs"][:args.fixture_n], "y_names": sample["y_names"],
                             "single": sample["single"][:args.fixture_n]}
    if args.write_fixture:
        meta = {"_doc": "yahpo-gym 1.0.2 outputs for random configurations (benchmarks/check_yahpo_equivalence.py)"}
        Path(args.write_fixture).write_text(json.dumps({**meta, "scenarios": fixture}, indent=1) + "\n")
        print(f"fixture: {args.write_fixture}")
    ok = worst <= args.tol
    print(f"{'OK' if ok else 'MISMATCH'}: largest difference {worst:.3g} (tolerance {args.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
