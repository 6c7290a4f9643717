"""Peer optimisers behind the subprocess protocol: type mapping, the JSON-lines protocol with a fake random-search
worker run by this interpreter, error propagation, shutdown, and (only where their environments are built)
one short study with each real peer."""

from __future__ import annotations

import ast
import gc
import math
import subprocess
import sys

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from metabo.bench.peers import PEERS, envs, worker_script
from metabo.bench.peers.external import (ExternalSampler, PeerWorkerError, decode_params, encode_params, encode_space,
                                         worker_environment)

CHOICES = (None, "adam", 1.5, True)
SPACE = {
    "x": FloatDistribution(-5.0, 5.0),
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "q": FloatDistribution(0.0, 1.0, step=0.25),
    "n": IntDistribution(1, 10),
    "width": IntDistribution(8, 1024, log=True),
    "k": IntDistribution(2, 20, step=3),
    "opt": CategoricalDistribution(CHOICES),
}


def objective(params: dict) -> float:
    return (params["x"] - 1) ** 2 + math.log10(params["lr"]) ** 2 + params["n"] + (params["opt"] == "adam")


def fake(**kwargs) -> ExternalSampler:
    """A sampler driving the standard-library random worker with this interpreter (no peer environment)."""
    kwargs.setdefault("seed", 0)
    return ExternalSampler(worker_script("random_worker.py"), sys.executable, name="fake", **kwargs)


def run(study: optuna.Study, n: int, space=SPACE) -> list[optuna.trial.FrozenTrial]:
    for _ in range(n):
        trial = study.ask(space)
        study.tell(trial, objective(trial.params))
    return study.trials


def check_types(params: dict) -> None:
    assert type(params["x"]) is float and -5 <= params["x"] <= 5
    assert type(params["lr"]) is float and 1e-5 <= params["lr"] <= 1e-1
    assert params["q"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert type(params["n"]) is int and 1 <= params["n"] <= 10
    assert type(params["width"]) is int and 8 <= params["width"] <= 1024
    assert type(params["k"]) is int and params["k"] in (2, 5, 8, 11, 14, 17, 20)
    assert any(params["opt"] is c or (params["opt"] == c and type(params["opt"]) is type(c)) for c in CHOICES)


# ------------------------------------------------------------------------------------------------ mapping

def test_encode_space_turns_steps_into_grid_indices():
    space = encode_space(SPACE)
    assert space["lr"] == {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}
    assert space["q"] == {"type": "int", "low": 0, "high": 4, "log": False}
    assert space["width"] == {"type": "int", "low": 8, "high": 1024, "log": True}
    assert space["k"] == {"type": "int", "low": 0, "high": 6, "log": False}
    assert space["opt"] == {"type": "categorical", "n": 4}


def test_params_round_trip_with_exact_types():
    params = {"x": 0.5, "lr": 1e-3, "q": 0.75, "n": 3, "width": 64, "k": 11, "opt": True}
    encoded = encode_params(SPACE, params)
    assert encoded["opt"] == 3 and encoded["k"] == 3 and encoded["q"] == 3
    decoded = decode_params(SPACE, encoded)
    assert decoded == params and decoded["opt"] is True
    check_types(decoded)


def test_decode_clips_snaps_and_rejects_garbage():
    out = decode_params(SPACE, {"x": 7.0, "lr": 1.0, "q": 3.6, "n": 4.6, "width": 2000.2, "k": -1, "opt": 0})
    assert out == {"x": 5.0, "lr": 0.1, "q": 1.0, "n": 5, "width": 1024, "k": 2, "opt": None}
    check_types(out)
    with pytest.raises(PeerWorkerError, match="lacks parameter"):
        decode_params({"x": SPACE["x"]}, {})
    with pytest.raises(PeerWorkerError, match="not a finite number"):
        decode_params({"x": SPACE["x"]}, {"x": float("nan")})
    with pytest.raises(PeerWorkerError, match="choice index"):
        decode_params({"opt": SPACE["opt"]}, {"opt": 4})


def test_worker_scripts_import_neither_metabo_nor_optuna():
    # They run in peer environments that have neither.
    for script in {s for s, _ in PEERS.values()} | {"random_worker.py", "worker_protocol.py"}:
        tree = ast.parse(worker_script(script).read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not names & {"metabo", "optuna"}, script


# ----------------------------------------------------------------------------------------------- protocol

def test_fake_worker_study_with_fixed_space_gives_exact_types():
    sampler = fake(search_space=SPACE)
    study = optuna.create_study(sampler=sampler)
    trials = run(study, 12)
    for t in trials:
        check_types(t.params)
    assert len({t.params["x"] for t in trials}) == 12  # every point came from the worker, none repeated
    assert sampler.peer_info["versions"]["python"]
    assert sampler.peer_info["worker_starts"] == 1 and sampler.peer_info["worker_errors"] == 0
    sampler.close()


def test_first_trial_is_independent_then_worker_takes_over_and_hears_every_trial():
    sampler = fake(options={"fail_on_ask": 4})  # the failure message reports how many trials it was told
    study = optuna.create_study(sampler=sampler, direction="maximize")
    run(study, 4)  # trial 0 random (space unknown), trials 1-3 from the worker's asks 1-3
    with pytest.raises(PeerWorkerError, match=r"planned failure on ask 4 \(told 4\)"):
        study.ask(SPACE)
    sampler.close()


def test_worker_error_raises_with_traceback_and_next_ask_restarts_with_history():
    sampler = fake(search_space=SPACE, options={"fail_on_ask": 3})
    study = optuna.create_study(sampler=sampler)
    run(study, 2)
    with pytest.raises(PeerWorkerError) as info:
        study.ask(SPACE)
    text = str(info.value)
    assert "Traceback (most recent call last)" in text and "random_worker.py" in text
    assert "ValueError: planned failure on ask 3 (told 2)" in text
    assert sampler.peer_info["worker_errors"] == 1
    # as the benchmark runner does: fail the half-made trial and carry on
    for stuck in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(stuck._trial_id, TrialState.FAIL)
    run(study, 2)  # a fresh worker, told the 2 complete trials, answers its asks 1-2 ...
    assert sampler.peer_info["worker_starts"] == 2
    with pytest.raises(PeerWorkerError, match=r"ask 3 \(told 4\)"):
        study.ask(SPACE)  # ... and fails on its ask 3 again, having heard all 4 complete trials
    sampler.close()


def test_worker_crash_reports_exit_code_and_stderr():
    sampler = fake(search_space=SPACE, options={"crash_on_ask": 1})
    study = optuna.create_study(sampler=sampler)
    with pytest.raises(PeerWorkerError, match=r"(?s)exited \(code 3\).*crashing on purpose"):
        study.ask(SPACE)


def test_stdout_noise_from_a_library_does_not_break_the_protocol():
    sampler = fake(search_space=SPACE, options={"noise": True})
    run(optuna.create_study(sampler=sampler), 3)
    sampler.close()


def test_hung_worker_times_out_and_is_killed():
    sampler = fake(search_space=SPACE, options={"sleep": 30})
    sampler._timeout = 0.5  # after the start-up, which may take longer on a busy machine
    proc = sampler._worker._proc
    with pytest.raises(PeerWorkerError, match="no reply"):
        optuna.create_study(sampler=sampler).ask(SPACE)
    assert proc.poll() is not None


def test_close_and_garbage_collection_end_the_worker():
    sampler = fake(search_space=SPACE)
    run(optuna.create_study(sampler=sampler), 2)
    proc = sampler._worker._proc
    sampler.close()
    assert proc.poll() is not None and sampler.worker_pid is None

    sampler = fake(search_space=SPACE)
    study = optuna.create_study(sampler=sampler)
    run(study, 2)
    proc = sampler._worker._proc
    assert proc.poll() is None
    del study, sampler
    gc.collect()
    assert proc.poll() is not None


# ------------------------------------------------------------------------------------------- environments

def test_worker_processes_share_one_string_hash_salt():
    # A library that iterates over a set of strings (SMAC3 does) must see the same order in every run of a seed.
    def worker_hash() -> str:
        return subprocess.run([sys.executable, "-c", "print(hash('metabo'))"], env=worker_environment(1),
                              capture_output=True, text=True, check=True).stdout
    assert len({worker_hash() for _ in range(3)}) == 1


def test_env_locations_and_names(tmp_path, monkeypatch):
    monkeypatch.setenv(envs.ROOT_ENV_VAR, str(tmp_path))
    assert envs.env_name("smac-bb") == "smac" and envs.env_name("hebo") == "hebo"
    assert envs.python_path("botorch") == tmp_path / "botorch" / "bin" / "python"
    assert not envs.is_ready("hebo") and envs.versions("hebo") == {}
    with pytest.raises(KeyError):
        envs.env_name("nope")
    monkeypatch.setenv("METABO_PEER_AUTO_SETUP", "0")
    with pytest.raises(envs.PeerEnvError, match="not built"):
        envs.ensure("smac-hpo")


def test_torch_is_pinned_wherever_an_env_needs_torch():
    for reqs in envs.REQUIREMENTS.values():
        torch_pins = [r for r in reqs if r.startswith("torch")]
        assert torch_pins in ([], [envs.TORCH])


def test_peers_are_registered_optimizers():
    from metabo.bench.optimizers import available_optimizers

    assert set(PEERS) <= set(available_optimizers())


# ------------------------------------------------------------------------------------------------ real peers

MIXED = {"x": FloatDistribution(-5.0, 5.0), "lr": FloatDistribution(1e-4, 1.0, log=True),
         "n": IntDistribution(1, 8), "opt": CategoricalDistribution(("a", "b", None))}


def test_transfer_peers_refuse_problems_without_related_data():
    from metabo.bench.peers import TRANSFER_PEERS, make_peer_sampler

    for name in TRANSFER_PEERS:  # fails before any environment is built or looked up
        with pytest.raises(ValueError, match="transfer peer"):
            make_peer_sampler(name, seed=0)
        with pytest.raises(ValueError, match="only for YAHPO"):
            make_peer_sampler(name, seed=0, problem=object())


@pytest.mark.parametrize("name", sorted(set(PEERS) - {"synetune-quantile", "synetune-boundingbox",
                                                       "synetune-zeroshot"}))
def test_real_peer_short_study(name):
    if not envs.is_ready(name):
        pytest.skip(f"peer environment {envs.env_name(name)!r} not built at {envs.env_dir(name)} "
                    f"(build it with metabo.bench.peers.envs.setup([{name!r}]); CI cannot in time)")
    from metabo.bench.optimizers import startup_trials
    from metabo.bench.peers import make_peer_sampler

    # small initial designs, so that a few model-based asks happen within 6 trials
    options = {"hebo": {"hebo_kwargs": {"rand_sample": 3}}, "botorch": {"n_init": 3}}.get(name, {})
    sampler = make_peer_sampler(name, seed=0, budget=8, options=options)
    study = optuna.create_study(sampler=sampler)
    for _ in range(6):
        trial = study.ask(MIXED)
        p = trial.params
        assert type(p["x"]) is float and type(p["n"]) is int and p["opt"] in ("a", "b", None)
        study.tell(trial, (p["x"] - 1) ** 2 + math.log10(p["lr"]) ** 2 + p["n"] + (p["opt"] == "a"))
    assert sampler.peer_info["worker_errors"] == 0 and sampler.peer_info["worker_starts"] == 1
    assert startup_trials(sampler) is not None and startup_trials(sampler) <= 4
    assert sampler.peer_info["versions"].get(envs.VERSION_PACKAGES[envs.env_name(name)][0])
    sampler.close()


def test_conditional_params_may_be_left_out_where_declared_optional():
    space = {"kind": CategoricalDistribution(("a", "b")), "x": FloatDistribution(0.0, 1.0)}
    assert encode_params(space, {"kind": "b"}) == {"kind": 1}
    assert decode_params(space, {"kind": 0}, optional=frozenset({"x"})) == {"kind": "a"}
    with pytest.raises(PeerWorkerError, match="lacks parameter 'x'"):
        decode_params(space, {"kind": 0})


def test_conditional_problems_go_to_peers_that_take_conditions_only():
    from metabo.bench.peers import make_peer_sampler
    from metabo.bench.problems.conditional import CashProblem

    with pytest.raises(ValueError, match="takes no conditional spaces"):
        make_peer_sampler("hebo", seed=0, problem=CashProblem("digits", "error"))


def test_smac_is_told_the_conditions_and_asks_active_parameters_only():
    if not envs.is_ready("smac-hpo"):
        pytest.skip(f"peer environment 'smac' not built at {envs.env_dir('smac-hpo')} "
                    "(build it with metabo.bench.peers.envs.setup(['smac-hpo']); CI cannot in time)")
    from metabo.bench.peers import make_peer_sampler
    from metabo.bench.problems.conditional import CASH_MODELS, CLASSIFIER, CashProblem

    problem = CashProblem("digits", "error")
    sampler = make_peer_sampler("smac-hpo", seed=0, budget=8, problem=problem)
    study = optuna.create_study(sampler=sampler)
    for _ in range(6):
        trial = study.ask()
        params = problem.suggest(trial)
        model = params[CLASSIFIER]
        assert set(trial.relative_params) == {CLASSIFIER, *(f"{model}_{n}" for n in CASH_MODELS[model][0])}
        study.tell(trial, len(params) + (model == "knn"))
    assert sampler.peer_info["worker_errors"] == 0
    sampler.close()
