"""Bad inputs and what each gets (issue 19): a clear error, a documented fallback, or a DEFECT.

Every case below feeds metabo one bad input the way a user would (a model file to ``TNPSampler(model=...)``, a
related source to ``TNPSampler(related=...)``, a table to ``metabo.meta.load_corpus``, arguments to the ``metabo``
command, a search space or objective values to a study driven by ``TNPSampler``), each in a temporary folder, and
records what the user gets:

* **clear error**: an exception of a library type (``ModelLoadError``, ``MetaDataError``, ``ValueError``, ...;
  never a bare ``KeyError``, ``IndexError`` or ``AttributeError``), raised by metabo's (or, where noted,
  Optuna's) own checks, whose one-line message names the problem; for the command line, an exit status other
  than 0 with exactly one line on stderr and no traceback;
* **documented fallback**: the study completes and the observed behaviour (a warning's text, which trials the
  model chose, the values it read) is what the quoted sentence of README.md says; the sentence is checked to be
  in README.md, so a fallback that loses its documentation is reported;
* **DEFECT**: anything else: a traceback from inside a library (a bare ``KeyError`` / ``IndexError`` /
  ``AttributeError``, or an exception raised outside metabo's checks), a message that does not name the
  problem, an input accepted without error and without a documented fallback, or a silently wrong result.

Writes the table (kind, input, what the user gets, class, the test that covers it) to
``benchmarks/fragments/bad_inputs.md`` and exits with status 1 if any case is a DEFECT (2 if a test named in the
table does not exist)::

    python benchmarks/bad_inputs.py                 # every case; about a minute on 2 busy cores
    python benchmarks/bad_inputs.py --only cli      # cases whose id contains "cli"

``tests/test_bad_inputs.py`` runs the same cases in-process (``--in-process`` here: the command line through
``metabo.cli.main`` instead of a subprocess).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FRAGMENT = ROOT / "benchmarks" / "fragments" / "bad_inputs.md"
COMMAND = "python benchmarks/bad_inputs.py"

CLEAR, FALLBACK, DEFECT = "clear error", "documented fallback", "DEFECT"
BARE_ERRORS = (KeyError, IndexError, AttributeError)
MAX_MESSAGE = 320


@dataclass
class Result:
    """What the user got (one line) and its class; ``why`` says what makes a DEFECT one."""

    gets: str
    cls: str
    why: str = ""
    doc: str = ""  # a documented fallback: the README sentence it matches


@dataclass
class Env:
    """One temporary folder for a case, and how the command line is run (a subprocess or in-process)."""

    tmp: Path
    in_process: bool = False

    def cli(self, argv: list[str]) -> tuple[int, str]:
        """(exit status, stderr) of ``metabo ARGV``."""
        return (_cli_in_process if self.in_process else _cli_subprocess)(argv, self.tmp)


@dataclass
class Case:
    """One bad input: ``run`` feeds it to metabo in ``Env`` and classifies what came back."""

    id: str
    kind: str
    input: str
    run: Callable[[Env], Result]
    test: str  # the pytest node id of the test that covers it


# ---------------------------------------------------------------------------------------------- how to classify

def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _message(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    return _one_line(text) or type(exc).__name__


def _raised_in(exc: BaseException) -> str:
    """The package whose code raised ``exc`` (the innermost frame of its traceback), e.g. ``metabo``, ``numpy``."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    path = Path(frames[-1].filename).resolve()
    for name in ("metabo", "optuna", "numpy", "torch", "safetensors", "pyarrow", "sqlalchemy", "scipy"):
        module = sys.modules.get(name)
        if module is not None and module.__file__ and path.is_relative_to(Path(module.__file__).resolve().parent):
            return name
    return path.name


def _quiet() -> contextlib.AbstractContextManager:
    """Warnings recorded (not printed) while a case runs."""
    return warnings.catch_warnings(record=True)


def classify(exc: Exception, names: str, by: str = "metabo") -> Result:
    """A clear error is an exception raised by ``by``'s own code (not a bare KeyError, IndexError or
    AttributeError) whose message matches the regex ``names``."""
    gets = f"`{type(exc).__name__}`: {_message(exc)}"
    where = _raised_in(exc)
    if isinstance(exc, BARE_ERRORS):
        return Result(gets, DEFECT, f"a bare {type(exc).__name__} from {where}")
    if where != by:
        return Result(gets, DEFECT, f"raised inside {where}, not by {by}'s checks")
    if not re.search(names, _message(exc)):
        return Result(gets, DEFECT, f"the message does not name the problem (expected /{names}/)")
    return Result(gets, CLEAR)


def expect_error(call: Callable[[], Any], names: str, by: str = "metabo") -> Result:
    """Run ``call``, which should raise a clear error (``classify``)."""
    try:
        with _quiet() as record:
            warnings.simplefilter("always")
            value = call()
    except Exception as exc:  # what the user gets is the point here
        return classify(exc, names, by)
    said = "; ".join(_one_line(str(w.message)) for w in record) or "no warning"
    return Result(f"no error ({said}); returned {value!r:.80}", DEFECT, "the bad input was accepted")


def expect_cli_error(env: Env, argv: list[str], names: str) -> Result:
    """``metabo ARGV``: a clear error is an exit status other than 0 with one line on stderr (matching ``names``)
    and no traceback."""
    status, err = env.cli(argv)
    lines = [line for line in err.splitlines() if line.strip()]
    shown = lines[0] if lines else ""
    gets = f"exit {status}, stderr: `{shown}`" + (f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else "")
    if status == 0:
        return Result(gets, DEFECT, "exit status 0 for a bad input")
    if any("Traceback" in line for line in lines):
        return Result(gets, DEFECT, "a traceback on stderr")
    if len(lines) != 1:
        return Result(gets, DEFECT, f"{len(lines)} lines on stderr, not one")
    if not re.search(names, shown):
        return Result(gets, DEFECT, f"the message does not name the problem (expected /{names}/)")
    return Result(gets, CLEAR)


def _readme_text() -> str:
    return _one_line(README.read_text(encoding="utf-8"))


def documented(observed: str, quote: str) -> Result:
    """A fallback observed to behave as ``quote`` (a sentence of README.md) says."""
    if _one_line(quote) not in _readme_text():
        return Result(observed, DEFECT, f"undocumented: README.md does not say “{quote}”")
    return Result(observed, FALLBACK, doc=quote)


def wrong(observed: str, why: str) -> Result:
    return Result(observed, DEFECT, why)


def run_case(case: Case, env: Env) -> Result:
    """``case.run(env)``, with anything that escapes it (a crash of the study itself) a DEFECT."""
    try:
        return case.run(env)
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return Result(f"`{type(exc).__name__}`: {_message(exc)} (at {Path(frame.filename).name}:{frame.lineno})",
                      DEFECT, f"a traceback from inside {_raised_in(exc)}")


# ---------------------------------------------------------------------------------------------- the command line

def _metabo_command() -> list[str]:
    script = Path(sys.executable).parent / "metabo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "metabo.cli"]


def _cli_subprocess(argv: list[str], cwd: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "METABO_DEBUG"}
    proc = subprocess.run([*_metabo_command(), *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    return proc.returncode, proc.stderr


def _cli_in_process(argv: list[str], cwd: Path) -> tuple[int, str]:
    """As the console script: ``SystemExit(str)`` prints the string and exits 1, anything else is a traceback."""
    from metabo.cli import main

    err = io.StringIO()
    previous = os.environ.pop("METABO_DEBUG", None)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), _quiet():
            try:
                status = main(argv)
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    status = exc.code or 0
                else:
                    print(exc.code, file=sys.stderr)
                    status = 1
            except Exception:
                traceback.print_exc()
                status = 1
    finally:
        if previous is not None:
            os.environ["METABO_DEBUG"] = previous
    return int(status), err.getvalue()


# ---------------------------------------------------------------------------------------------- model files

def _shipped() -> Path:
    from metabo.model.io import default_model_path

    return default_model_path()


def _copy_model(env: Env, name: str, card: bool = True) -> Path:
    """A copy of the shipped model (and its card) as ``<tmp>/<name>.safetensors``."""
    src = _shipped()
    dest = env.tmp / f"{name}.safetensors"
    shutil.copyfile(src, dest)
    if card:
        shutil.copyfile(src.with_suffix(".json"), dest.with_suffix(".json"))
    return dest


def _edit_card(path: Path, **edits: Any) -> None:
    """Change the card beside ``path`` (``None`` removes a key)."""
    cp = path.with_suffix(".json")
    card = {**json.loads(cp.read_text()), **edits}
    cp.write_text(json.dumps({k: v for k, v in card.items() if v is not None}))


def _resave(path: Path, edit: Callable[[dict], dict], metadata: bool = True) -> None:
    """Rewrite the weights at ``path`` through ``edit`` (with metabo's metadata, or none)."""
    from safetensors import safe_open
    from safetensors.torch import load, save_file

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    state = load(path.read_bytes())  # in memory: the file is about to be overwritten
    save_file(edit(state), str(path), metadata=meta if metadata else None)


def _stamp_hash(path: Path) -> None:
    """Record the weights' current hash in their card, so only the check under test can fail."""
    from metabo.model.io import file_sha256

    _edit_card(path, sha256=file_sha256(path))


def _first_matrix(state: dict) -> str:
    return next(k for k in sorted(state) if k.endswith("weight") and state[k].ndim == 2)


def _poisoned(value: float) -> Callable[[dict], dict]:
    def edit(state: dict) -> dict:
        key = _first_matrix(state)
        state[key] = state[key].clone()
        state[key][0, 0] = value
        return state

    return edit


def _load(path: Path) -> Callable[[], Any]:
    def call() -> Any:
        import metabo

        return metabo.TNPSampler(model=path)

    return call


def weights_nan(env: Env) -> Result:
    path = _copy_model(env, "nan")
    _resave(path, _poisoned(float("nan")))
    _stamp_hash(path)
    return expect_error(_load(path), r"non-finite value.*NaN or inf")


def weights_truncated(env: Env) -> Result:
    path = _copy_model(env, "truncated")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return expect_error(_load(path), r"truncated\.safetensors: not a readable safetensors file")


def weights_pickle(env: Env) -> Result:
    import torch
    from safetensors.torch import load

    path = _copy_model(env, "pickled")
    state = load(path.read_bytes())
    torch.save(state, path)  # a PyTorch pickle under a .safetensors name
    return expect_error(_load(path), r"pickled\.safetensors: not a readable safetensors file")


def weights_pt_suffix(env: Env) -> Result:
    good = _copy_model(env, "model")
    path = good.with_suffix(".pt")
    good.rename(path)
    return expect_error(_load(path), r"model\.pt: model files must be \.safetensors")


def weights_missing(env: Env) -> Result:
    return expect_error(_load(env.tmp / "missing.safetensors"), r"missing\.safetensors: no such model file")


def weights_foreign(env: Env) -> Result:
    path = _copy_model(env, "foreign")
    _resave(path, lambda state: state, metadata=False)  # safetensors of another program: no metabo metadata
    _stamp_hash(path)
    return expect_error(_load(path), r"foreign\.safetensors: not a metabo model")


def card_missing(env: Env) -> Result:
    path = _copy_model(env, "nocard", card=False)
    return expect_error(_load(path), r"no model card nocard\.json.*metabo card")


def card_version(env: Env) -> Result:
    path = _copy_model(env, "version")
    _edit_card(path, format_version="2")
    return expect_error(_load(path), r"version\.json: model card version '2' is not supported")


def card_architecture(env: Env) -> Result:
    path = _copy_model(env, "arch")
    config = json.loads(path.with_suffix(".json").read_text())["config"]
    _edit_card(path, config={**config, "d_model": 2 * config["d_model"]})
    return expect_error(_load(path), r"arch\.json: the card describes another architecture")


def card_sha256(env: Env) -> Result:
    path = _copy_model(env, "changed")
    _resave(path, _poisoned(0.125))  # finite, but not the weights the card was written for
    return expect_error(_load(path), r"changed\.safetensors: the weights' sha256 .* differs from the one in its card")


def card_not_json(env: Env) -> Result:
    path = _copy_model(env, "badjson")
    path.with_suffix(".json").write_text("{not json")
    return expect_error(_load(path), r"badjson\.json: model card is not valid JSON")


def card_no_hash(env: Env) -> Result:
    path = _copy_model(env, "old")
    _edit_card(path, sha256=None)
    return expect_error(_load(path), r"old\.json: the card records no sha256.*metabo card")


# ---------------------------------------------------------------------------------------------- related sources

def _related(source: Any) -> Callable[[], Any]:
    def call() -> Any:
        import metabo

        return metabo.TNPSampler(related=source)

    return call


def _storage(env: Env) -> str:
    """A SQLite storage with one study, ``mlp-a``, of 3 trials."""
    import optuna

    url = f"sqlite:///{env.tmp / 'past.db'}"
    study = optuna.create_study(study_name="mlp-a", storage=url)
    for v in (1.0, 2.0, 3.0):
        study.add_trial(optuna.trial.create_trial(params={"x": v / 4},
                                                  distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                                                  value=v))
    return url


def related_missing_file(env: Env) -> Result:
    return expect_error(_related(str(env.tmp / "past.csv")), r"no such corpus file: .*past\.csv")


def related_bad_url(env: Env) -> Result:
    return expect_error(_related("nosuchdb://x"), r"cannot open Optuna storage 'nosuchdb://x'")


def related_missing_sqlite(env: Env) -> Result:
    return expect_error(_related(f"sqlite:///{env.tmp / 'past.db'}"), r"no such SQLite file")


def related_no_match(env: Env) -> Result:
    url = _storage(env)
    return expect_error(_related((url, "cnn-*")), r"no study matches the pattern 'cnn-\*'")


def related_yahpo(env: Env) -> Result:
    return expect_error(_related("yahpo:nope"), r"unknown YAHPO scenario 'nope'")


def related_no_finite(env: Env) -> Result:
    path = env.tmp / "failed.csv"
    path.write_text("x,value\n0.1,nan\n0.3,\n0.5,inf\n")
    return expect_error(_related(str(path)), r"failed\.csv.*no row has a finite value")


def related_unknown_kind(env: Env) -> Result:
    return expect_error(_related(str(env.tmp / "past.db")), r"unknown corpus source '.*past\.db'")


def related_text_in_numeric_column(env: Env) -> Result:
    """Parameter columns are parsed once the search space is known: at the first suggestion the model makes."""
    import optuna

    import metabo

    path = env.tmp / "sweep.csv"
    path.write_text("x,value\n0.1,1.0\noops,2.0\n0.3,0.5\n")

    def call() -> Any:
        study = optuna.create_study(sampler=metabo.TNPSampler(seed=0, related=str(path)))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)

    result = expect_error(call, r"sweep\.csv, row 2 \(line 3\), column 'x': non-numeric value 'oops'")
    if result.cls == CLEAR:
        result.gets += " (raised by `study.optimize` at the first model suggestion, trial 1)"
    return result


def related_no_shared_parameter(env: Env) -> Result:
    import optuna

    import metabo

    path = env.tmp / "other.csv"
    path.write_text("q,value\n0.1,1.0\n0.2,2.0\n0.3,0.5\n")
    with _quiet() as record:
        warnings.simplefilter("always")
        study = optuna.create_study(sampler=metabo.TNPSampler(seed=0, related=str(path)))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    messages = [_one_line(str(w.message)) for w in record]
    left_out = [m for m in messages if re.search(r"leaving out study 'other' \(.*\) shares no parameter", m)]
    alone = [m for m in messages if "no related study could be aligned" in m]
    complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    if not (left_out and alone and complete == 4):
        return wrong(f"{complete} of 4 trials complete; warnings: {messages}", "the study left out nothing silently")
    return documented(f"warns “metabo.meta: leaving out study 'other' (…) shares no parameter with the target "
                      f"space: it has ['q'], the target has ['x']” and “{alone[0]}”; 4 of 4 trials complete",
                      "Related studies that share no parameter with the search space")


# ---------------------------------------------------------------------------------------------- CSV / Parquet

def _table(path: Path) -> Callable[[], Any]:
    def call() -> Any:
        from metabo.meta import load_corpus

        return load_corpus(str(path))

    return call


def table_no_value_column(env: Env) -> Result:
    path = env.tmp / "sweep.csv"
    path.write_text("x,loss\n0.1,1.0\n")
    return expect_error(_table(path), r"sweep\.csv: no value column 'value' \(columns: x, loss\); pass value_column")


def table_non_numeric(env: Env) -> Result:
    path = env.tmp / "sweep.csv"
    path.write_text("x,value\n0.1,1.0\n0.2,n/a\n")
    return expect_error(_table(path), r"sweep\.csv, row 2 \(line 3\), column 'value': non-numeric value 'n/a'")


def table_empty(env: Env) -> Result:
    path = env.tmp / "sweep.csv"
    path.write_text("")
    return expect_error(_table(path), r"sweep\.csv: the file is empty")


def table_header_only(env: Env) -> Result:
    path = env.tmp / "sweep.csv"
    path.write_text("x,value\n")
    return expect_error(_table(path), r"sweep\.csv: the file has a header but no data rows")


def table_unknown_extension(env: Env) -> Result:
    path = env.tmp / "sweep.xlsx"
    path.write_bytes(b"PK\x03\x04")
    return expect_error(_table(path), r"unknown corpus source '.*sweep\.xlsx'.*\.csv/\.tsv/\.parquet")


def table_mixed_column(env: Env) -> Result:
    path = env.tmp / "sweep.csv"
    path.write_text("x,value\n0.1,1.0\nabc,2.0\n")
    return expect_error(_table(path), r"row 2 \(line 3\), column 'x': non-numeric value 'abc' in a column that also "
                                      r"holds numbers")


def parquet_corrupt(env: Env) -> Result:
    path = env.tmp / "sweep.parquet"
    path.write_bytes(b"PAR1 this is not really a parquet file")
    return expect_error(_table(path), r"sweep\.parquet: not a readable Parquet file")


def parquet_no_value_column(env: Env) -> Result:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = env.tmp / "sweep.parquet"
    pq.write_table(pa.table({"x": [0.1, 0.2], "loss": [1.0, 2.0]}), path)
    return expect_error(_table(path), r"sweep\.parquet: no value column 'value' \(columns: x, loss\)")


def parquet_bool_values(env: Env) -> Result:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = env.tmp / "sweep.parquet"
    pq.write_table(pa.table({"x": [0.1, 0.2], "value": [True, False]}), path)
    return expect_error(_table(path), r"sweep\.parquet, row 1, column 'value': non-numeric value True")


# ---------------------------------------------------------------------------------------------- command line

def cli_unknown_optimizer(env: Env) -> Result:
    return expect_cli_error(env, ["bench", "--optimizers", "nosuch", "--store", str(env.tmp / "r.db"),
                                  "--no-progress"], r"unknown optimiser 'nosuch'")


def cli_seeds_zero(env: Env) -> Result:
    return expect_cli_error(env, ["bench", "--seeds", "0", "--store", str(env.tmp / "r.db")],
                            r"--seeds: must be at least 1, got 0")


def cli_seeds_text(env: Env) -> Result:
    return expect_cli_error(env, ["bench", "--seeds", "five", "--store", str(env.tmp / "r.db")],
                            r"--seeds: not an integer: 'five'")


def cli_unknown_scenario(env: Env) -> Result:
    return expect_cli_error(env, ["finetune", "--yahpo", "nosuch", "--out", str(env.tmp / "m.safetensors")],
                            r"^metabo finetune: unknown YAHPO scenario 'nosuch'")


def cli_bench_unknown_scenario(env: Env) -> Result:
    return expect_cli_error(env, ["bench", "--problems", "yahpo/nosuch/1", "--store", str(env.tmp / "r.db"),
                                  "--no-progress"], r"unknown YAHPO scenario 'nosuch'")


def cli_info_broken(env: Env) -> Result:
    path = env.tmp / "model.safetensors"
    path.write_bytes(os.urandom(4096))
    return expect_cli_error(env, ["info", "--model", str(path)],
                            r"^metabo info: .*model\.safetensors: not a readable safetensors file")


def cli_info_missing(env: Env) -> Result:
    return expect_cli_error(env, ["info", "--model", str(env.tmp / "model.safetensors")],
                            r"^metabo info: .*model\.safetensors: no such model file")


def cli_card_nan(env: Env) -> Result:
    path = _copy_model(env, "nan")
    _resave(path, _poisoned(float("nan")))
    return expect_cli_error(env, ["card", str(path)], r"^metabo card: .*nan\.safetensors: tensor .* non-finite")


def cli_finetune_bad_table(env: Env) -> Result:
    path = env.tmp / "sweep.csv"
    path.write_text("x,value\n0.1,1.0\n0.2,n/a\n")
    return expect_cli_error(env, ["finetune", "--file", str(path), "--out", str(env.tmp / "m.safetensors")],
                            r"^metabo finetune: .*sweep\.csv, row 2 \(line 3\), column 'value': non-numeric")


def cli_finetune_no_source(env: Env) -> Result:
    return expect_cli_error(env, ["finetune", "--out", str(env.tmp / "m.safetensors")],
                            r"^metabo finetune: give past studies with --storage URL, --file PATH or --yahpo")


def cli_nap_cuda(env: Env) -> Result:
    # without a GPU: the device; with one: the missing --base (both before anything loads)
    return expect_cli_error(env, ["nap", "--yahpo", "lcbench", "--base", str(env.tmp / "base.safetensors"),
                                  "--out", str(env.tmp / "m.safetensors"), "--device", "cuda", "--no-progress"],
                            r"^metabo nap: (device 'cuda' asked for, but .* sees no CUDA GPU|.*no such model file)")


def cli_report_missing_store(env: Env) -> Result:
    return expect_cli_error(env, ["report", "--store", str(env.tmp / "none.db"), "--out", str(env.tmp / "rep")],
                            r"^metabo report: .*none\.db: no such results store")


# ---------------------------------------------------------------------------------------------- search spaces

def _study(objective: Callable, n_trials: int, **sampler_options: Any) -> tuple[Any, list[str]]:
    """A study of ``n_trials`` with ``TNPSampler(seed=0, **sampler_options)``, and the warnings it gave."""
    import optuna

    import metabo

    with _quiet() as record:
        warnings.simplefilter("always")
        study = optuna.create_study(sampler=metabo.TNPSampler(seed=0, **sampler_options))
        study.optimize(objective, n_trials=n_trials)
    return study, [_one_line(str(w.message)) for w in record]


def _states(study: Any) -> str:
    from collections import Counter

    counts = Counter(t.state.name for t in study.trials)
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def _model_chose(trial: Any) -> bool:
    from metabo.sampler import PRED_MEAN_ATTR

    return PRED_MEAN_ATTR in trial.user_attrs


def space_equal_choices(env: Env) -> Result:
    import metabo.space

    choices = [True, 1, "a"]
    metabo.space._WARNED_COLLISIONS.discard(("flag", repr(tuple(choices))))  # this process may have warned before
    study, messages = _study(lambda t: {True: 1.0, "a": 0.0}[t.suggest_categorical("flag", choices)], 10)
    said = [m for m in messages if "'flag' has choices equal to earlier ones" in m]
    if len(said) != 1 or _states(study) != "10 COMPLETE":
        return wrong(f"{_states(study)}; warnings: {messages}", "not one warning, or trials that did not complete")
    tried = sorted({repr(t.params["flag"]) for t in study.trials})
    return documented(f"one warning “{said[0][:100]}...”; {_states(study)}, choices tried: {', '.join(tried)}",
                      "Optuna stores the later as the earlier (`True` as `1`), so metabo treats them as one choice "
                      "and warns once.")


def space_empty(env: Env) -> Result:
    study, messages = _study(lambda t: 1.0, 6)
    if _states(study) != "6 COMPLETE" or messages or any(t.params for t in study.trials):
        return wrong(f"{_states(study)}; warnings: {messages}", "a study without parameters did not just run")
    return documented(f"{_states(study)}, no warning, no parameters", "objectives without parameters need no model")


def space_single_valued(env: Env) -> Result:
    def objective(trial: Any) -> float:
        width = trial.suggest_float("width", 2.0, 2.0)
        kind = trial.suggest_categorical("kind", ["only"])
        return (trial.suggest_float("x", 0, 1) - 0.3) ** 2 + width + len(kind)

    study, messages = _study(objective, 8)
    fixed = all(t.params["width"] == 2.0 and t.params["kind"] == "only" for t in study.trials)
    modelled = [t.number for t in study.trials if _model_chose(t)]
    if not fixed or messages or _states(study) != "8 COMPLETE" or modelled != [4, 5, 6, 7]:
        return wrong(f"{_states(study)}; fixed values kept: {fixed}; model chose trials {modelled}; warnings: "
                     f"{messages}", "single-valued parameters changed the study")
    return documented(f"{_states(study)}, width = 2.0 and kind = 'only' in every trial, no warning; x chosen by the "
                      "model from trial 4 on", "Parameters with a single possible value")


def space_dynamic(env: Env) -> Result:
    def objective(trial: Any) -> float:
        return trial.suggest_float("x", 0, 1) + trial.suggest_int("n", 0, 3 + trial.number)

    study, messages = _study(objective, 8)
    said = [m for m in messages if "parameter 'n' is outside the space the model handles" in m]
    inside = all(0 <= t.params["n"] <= 3 + t.number for t in study.trials)
    if len(said) != 1 or len(messages) != 1 or not inside or _states(study) != "8 COMPLETE":
        return wrong(f"{_states(study)}; warnings: {messages}", "not one warning, or a value outside its range")
    return documented(f"one warning “{said[0][:90]}...”; {_states(study)}, every n within its trial's range",
                      "**Dynamic parameters** (a range that changes between trials): sampled by the independent "
                      "sampler")


def space_too_wide(env: Env) -> Result:
    n = 80

    def objective(trial: Any) -> float:
        return sum((trial.suggest_float(f"x{i:02d}", 0, 1) - 0.3) ** 2 for i in range(n))

    study, messages = _study(objective, 8)
    copied = []
    for k in range(4, len(study.trials)):
        best = min(study.trials[:k], key=lambda t: t.value)
        copied.append(sum(math.isclose(study.trials[k].params[p], best.params[p], rel_tol=1e-9, abs_tol=1e-12)
                          for p in best.params))
    if messages or _states(study) != "8 COMPLETE" or not all(n - 64 <= c < n for c in copied):
        return wrong(f"{_states(study)}; parameters copied from the best trial: {copied}; warnings: {messages}",
                     "the model did not search a subspace")
    span = f"{min(copied)}" if min(copied) == max(copied) else f"{min(copied)}-{max(copied)}"
    return documented(f"{_states(study)}, no warning; each model suggestion copies {span} of {n} parameters from "
                      "the best trial so far",
                      "each suggestion optimises a random subset of parameters that fits; the others are copied from "
                      "the best trial so far.")


def space_not_a_distribution(env: Env) -> Result:
    def call() -> Any:
        import optuna

        import metabo

        study = optuna.create_study(sampler=metabo.TNPSampler(seed=0, search_space={"x": "uniform(0, 1)"}))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)

    return expect_error(call, r"distributions.*'x'")


def space_declared_other_kind(env: Env) -> Result:
    from optuna.distributions import CategoricalDistribution

    study, messages = _study(lambda t: float(t.suggest_int("x", 0, 10)), 6,
                             search_space={"x": CategoricalDistribution(("a", "b"))})
    warned = [m for m in messages if "left out of the model's data" in m]
    if not warned:
        return wrong(f"{_states(study)}; no warning", "trials of another kind read without a warning")
    return documented(f"one warning (“{warned[0][:90]}…”); {_states(study)}",
                      "trials whose parameters come from other distributions are left out of the model's data, "
                      "with one warning")


def space_declared_narrower(env: Env) -> Result:
    from optuna.distributions import FloatDistribution

    from metabo.space import SearchSpaceEncoder

    declared = {"x": FloatDistribution(0, 1)}
    try:
        study, messages = _study(lambda t: (t.suggest_float("x", 0, 10) - 6) ** 2, 8, search_space=declared)
    except Exception as exc:  # a clear error would do
        return classify(exc, r"'x'")
    outside = [t for t in study.trials if t.params["x"] > 1]
    chosen = [t.params["x"] for t in study.trials if _model_chose(t)]
    warned = [m for m in messages if "'x'" in m and "left out of the model's data" in m]
    if warned and not chosen:
        return documented(f"one warning (“{_one_line(warned[0])[:90]}…”); the trials outside are left out of the "
                          f"model's data, so nothing is read at x = 1; {_states(study)}",
                          "trials whose parameters come from other distributions are left out of the model's data, "
                          "with one warning")
    if outside and not warned:
        t = outside[0]
        read = SearchSpaceEncoder(declared).encode(t.params)[0]
        return wrong(f"no error, no warning; trial {t.number}'s x = {t.params['x']:.3f} is read by the model as the "
                     f"declared space's {read:.1f} (x = 1); the model's {len(chosen)} choices of x are all <= "
                     f"{max(chosen, default=float('nan')):.2f}",
                     "silently wrong: start-up trials outside the declared search space are clipped into it")
    return wrong(f"{_states(study)}; warnings: {messages}", "no documented fallback")


# ---------------------------------------------------------------------------------------------- objective values

def _outcomes(study: Any, constraints: tuple[str, ...] = ()) -> Any:
    """The values of the study's complete trials as the sampler reads them (``read_outcomes``)."""
    import optuna

    from metabo.normalise import DEFAULT_TRANSFORM
    from metabo.outcomes import read_outcomes

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return complete, read_outcomes(complete, study.directions, DEFAULT_TRANSFORM.for_own_values(False), constraints)


def objective_nan(env: Env) -> Result:
    import optuna

    study, messages = _study(lambda t: float("nan") if t.number % 3 == 1 else t.suggest_float("x", 0, 1), 9)
    failed = [t.number for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    modelled = [t.number for t in study.trials if _model_chose(t)]
    if failed != [1, 4, 7] or modelled != [6, 8]:  # the model from 4 complete trials on: 0, 2, 3, 5
        return wrong(f"{_states(study)} (failed: {failed}, model chose {modelled}); warnings: {messages}",
                     "NaN trials not ignored")
    return documented(f"Optuna fails trials 1, 4 and 7 (“The value nan is not acceptable”); {_states(study)}; the "
                      "model chooses trials 6 and 8 (after 4 complete ones)", "**Failed trials** are ignored")


def _infinite(value: float) -> Result:
    values = iter([1.0, value, 3.0, 2.0, 0.5, 1.5, 2.5])
    study, messages = _study(lambda t: t.suggest_float("x", 0, 1) * 0 + next(values), 7)
    complete, out = _outcomes(study)
    y = out.y[:, 0]
    worst_finite = min(y[i] for i, t in enumerate(complete) if math.isfinite(t.value))
    if _states(study) != "7 COMPLETE" or not np.isfinite(y).all() or y[1] != worst_finite or messages:
        return wrong(f"{_states(study)}; values read: {np.round(y, 3).tolist()}; warnings: {messages}",
                     "the infinite value was not read as the worst finite one")
    return documented(f"{_states(study)}; the model reads trial 1 ({value}) as {y[1]:.3f}, the value of the worst "
                      "finite trial (3.0)", "infinite values are replaced by the worst finite value")


def objective_inf(env: Env) -> Result:
    return _infinite(math.inf)


def objective_minus_inf(env: Env) -> Result:
    return _infinite(-math.inf)


def objective_all_inf(env: Env) -> Result:
    study, messages = _study(lambda t: t.suggest_float("x", 0, 1) * 0 + math.inf, 7)
    modelled = [t.number for t in study.trials if _model_chose(t)]
    if _states(study) != "7 COMPLETE" or modelled or messages:
        return wrong(f"{_states(study)}; model chose {modelled}; warnings: {messages}", "not sampled at random")
    return documented(f"{_states(study)}, no warning; no trial chosen by the model (the independent sampler's)",
                      "a study with no finite value yet is sampled at random.")


def objective_huge_penalty(env: Env) -> Result:
    import optuna

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        return 1e300 if x > 0.6 else (x - 0.3) ** 2  # a "very large" value for failed configurations

    with np.errstate(all="ignore"):
        study, messages = _study(objective, 10)
        complete, out = _outcomes(study)
    y = out.y[:, 0]
    good = [i for i, t in enumerate(complete) if t.value < 1]
    bad = [i for i, t in enumerate(complete) if t.value >= 1]
    if good and bad and (np.ptp(y[good]) == 0 or y[bad].max() > y[good].min()):
        return wrong(f"{_states(study)}, no error; with {len(bad)} of {len(complete)} trials at 1e300 the model reads "
                     f"every trial as {y[0]:.3g}: good and penalised trials look alike",
                     "silently wrong: the value transform overflows (np.std of values near 1e300)")
    huge = [m for m in messages if "read like float('inf')" in m]
    if not huge:
        return wrong(f"{_states(study)}; no warning", "penalties beyond 1e150 are read like inf without a warning")
    return documented(f"{_states(study)}; one warning; penalised trials read as the worst of the others, the good "
                      "values stay apart", "values beyond 1e150 in magnitude (a huge penalty) are read like infinite "
                      "ones, with a warning")


def constraint_inf(env: Env) -> Result:
    import optuna

    import metabo

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.set_constraint("c", math.inf if x > 0.9 else x - 0.5)
        return x

    with _quiet():
        study = optuna.create_study(sampler=metabo.TNPSampler(seed=0))
        study.enqueue_trial({"x": 0.95})  # an experimental feature: Optuna warns
    study, messages = _study_from(study, objective, 7)
    complete, out = _outcomes(study, ("c",))
    c = out.y[:, 1]
    finite = [i for i, t in enumerate(complete) if math.isfinite(t.constraints["c"])]
    if _states(study) != "7 COMPLETE" or not np.isfinite(c).all() or c[0] != c[finite].min() or out.feasible[0]:
        return wrong(f"{_states(study)}; constraint values read: {np.round(c, 3).tolist()}", "inf not the worst")
    return documented(f"{_states(study)}; the model reads trial 0's constraint (inf) as the worst finite one, "
                      "infeasible", "infinite objective or constraint values are replaced by the worst finite value "
                      "of that output")


def _study_from(study: Any, objective: Callable, n_trials: int) -> tuple[Any, list[str]]:
    with _quiet() as record:
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=n_trials)
    return study, [_one_line(str(w.message)) for w in record]


def constraint_nan(env: Env) -> Result:
    import optuna

    import metabo

    study = optuna.create_study(sampler=metabo.TNPSampler(seed=0))
    trial = study.ask()
    result = expect_error(lambda: trial.set_constraint("c", float("nan")), r"NaN is not allowed", by="optuna")
    if result.cls == CLEAR and "NaN constraint values are refused by Optuna itself" in _readme_text():
        result.doc = "NaN constraint values are refused by Optuna itself"
    return result


def constraint_different_sets(env: Env) -> Result:
    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.set_constraint("a", x - 0.8)
        if trial.number % 2:
            trial.set_constraint("b", 0.2 - x)
        return x

    study, messages = _study(objective, 8)
    said = [m for m in messages if "trials report different constraints" in m]
    complete, out = _outcomes(study, ("a", "b"))
    missing_b = np.isnan(out.y[:, 2]).tolist() == [t.number % 2 == 0 for t in complete]
    if len(said) != 1 or _states(study) != "8 COMPLETE" or not missing_b:
        return wrong(f"{_states(study)}; warnings: {messages}", "not one warning, or b not missing where unreported")
    return documented(f"one warning “{said[0][:110]}...”; {_states(study)}; b is missing (left out of its model) "
                      "on the even trials", "a constraint that is missing on some trials (or stored as a non-number, "
                      "with a warning) is left out of that constraint's model for those trials.")


def constraint_text_stored(env: Env) -> Result:
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    import metabo

    study = optuna.create_study(sampler=metabo.TNPSampler(seed=0))
    for i in range(5):  # e.g. written to the storage by other code
        study.add_trial(create_trial(value=float(i), params={"x": i / 5}, distributions={"x": FloatDistribution(0, 1)},
                                     system_attrs={"constraints:c": "high" if i == 2 else i / 5 - 0.5}))

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.set_constraint("c", x - 0.5)
        return x

    study, messages = _study_from(study, objective, 2)
    said = [m for m in messages if "trial 2 stores constraint 'c' as 'high', not a number" in m]
    if not said or _states(study) != "7 COMPLETE" or not _model_chose(study.trials[-1]):
        return wrong(f"{_states(study)}; warnings: {messages}", "no warning, or the study stopped")
    return documented(f"warns “{said[0]}”; {_states(study)}, the model chooses trials 5 and 6",
                      "(or stored as a non-number, with a warning) is left out of that constraint's model for those "
                      "trials.")


def constraint_text_set(env: Env) -> Result:
    import optuna

    import metabo

    study = optuna.create_study(sampler=metabo.TNPSampler(seed=0))
    trial = study.ask()
    return expect_error(lambda: trial.set_constraint("c", "high"), r"supposed to be a float", by="optuna")


# ---------------------------------------------------------------------------------------------- the cases

T_IO = "tests/test_io.py"
T_REL = "tests/test_related.py::test_a_bad_source_fails_in_the_constructor"
T_TAB = "tests/test_meta_corpus.py::test_table_errors_name_file_row_and_column"
T_BAD = "tests/test_bad_inputs.py"
T_CLI = "tests/test_cli.py::test_user_errors_are_one_line_and_status_2"
T_BENCH = "tests/test_bench_runner.py::test_cli_bad_bench_options_are_one_line"

CASES: list[Case] = [
    Case("weights-nan", "weights", "a NaN in one tensor (card hash matching)", weights_nan,
         f"{T_IO}::test_non_finite_weights_refused[nan]"),
    Case("weights-truncated", "weights", "the first half of a model file", weights_truncated,
         f"{T_IO}::test_truncated_file[0.5]"),
    Case("weights-pickle", "weights", "a PyTorch pickle named `.safetensors`", weights_pickle,
         f"{T_IO}::test_torch_pickle_renamed"),
    Case("weights-pt", "weights", "a good model file named `model.pt`", weights_pt_suffix,
         f"{T_IO}::test_wrong_suffix_refused_even_if_valid"),
    Case("weights-missing", "weights", "a path where no file is", weights_missing,
         "tests/sampler/test_options.py::test_bad_model_path_fails_at_construction"),
    Case("weights-foreign", "weights", "a safetensors file without metabo's metadata", weights_foreign,
         f"{T_IO}::test_plain_safetensors_without_metadata"),
    Case("card-missing", "cards", "weights without a card", card_missing,
         f"{T_IO}::test_missing_card_refused_with_how_to_make_one"),
    Case("card-version", "cards", "card `format_version` 2", card_version,
         f"{T_IO}::test_card_checked_on_load[edits2-card version]"),
    Case("card-architecture", "cards", "card `config.d_model` twice the weights'", card_architecture,
         f"{T_IO}::test_card_of_another_architecture_refused"),
    Case("card-sha256", "cards", "weights changed after the card was written (sha256 mismatch)", card_sha256,
         f"{T_IO}::test_weights_changed_after_the_card_was_written"),
    Case("card-json", "cards", "a card that is not JSON", card_not_json,
         f"{T_IO}::test_card_that_is_not_a_json_object_refused[{{not json]"),
    Case("card-no-hash", "cards", "a card without `sha256` (older metabo)", card_no_hash,
         f"{T_IO}::test_card_checked_on_load[edits6-no sha256.*metabo card]"),
    Case("related-missing-file", "related sources", "`related=\"past.csv\"`, no such file", related_missing_file,
         f"{T_REL}[missing file]"),
    Case("related-bad-url", "related sources", "`related=\"nosuchdb://x\"`", related_bad_url,
         f"{T_REL}[bad storage URL]"),
    Case("related-missing-sqlite", "related sources", "`related=\"sqlite:///past.db\"`, no such file",
         related_missing_sqlite, f"{T_REL}[missing SQLite file]"),
    Case("related-no-match", "related sources", "`related=(url, \"cnn-*\")`, no study matches", related_no_match,
         f"{T_REL}[pattern matching no study]"),
    Case("related-yahpo", "related sources", "`related=\"yahpo:nope\"`", related_yahpo,
         f"{T_REL}[unknown YAHPO scenario]"),
    Case("related-no-finite", "related sources", "a CSV whose values are all NaN, empty or inf", related_no_finite,
         f"{T_REL}[table without a finite value]"),
    Case("related-unknown-kind", "related sources", "`related=\"past.db\"` (a path of no known kind)",
         related_unknown_kind, f"{T_REL}[unknown kind of source]"),
    Case("related-text-param", "related sources", "a CSV with text in a numeric parameter column",
         related_text_in_numeric_column,
         f"{T_BAD}::test_a_related_table_with_text_in_a_numeric_column_fails_at_the_first_model_suggestion"),
    Case("related-no-overlap", "related sources", "a CSV sharing no parameter with the study",
         related_no_shared_parameter,
         "tests/sampler/test_with_related.py::test_a_corpus_that_does_not_align_leaves_the_model_without_related_data"),
    Case("table-no-value", "CSV/Parquet files", "CSV without a `value` column", table_no_value_column, T_TAB),
    Case("table-non-numeric", "CSV/Parquet files", "CSV value `n/a`", table_non_numeric, T_TAB),
    Case("table-empty", "CSV/Parquet files", "an empty CSV file", table_empty, T_TAB),
    Case("table-header-only", "CSV/Parquet files", "CSV with a header and no rows", table_header_only, T_TAB),
    Case("table-mixed-column", "CSV/Parquet files", "CSV parameter column of numbers and text", table_mixed_column,
         T_TAB),
    Case("table-extension", "CSV/Parquet files", "`sweep.xlsx`", table_unknown_extension,
         "tests/test_meta_corpus.py::test_table_missing_params_can_be_omitted_and_other_file_errors"),
    Case("parquet-corrupt", "CSV/Parquet files", "a `.parquet` file that is not Parquet", parquet_corrupt,
         f"{T_BAD}::test_a_corrupt_parquet_file_is_a_clear_error"),
    Case("parquet-no-value", "CSV/Parquet files", "Parquet without a `value` column", parquet_no_value_column,
         f"{T_BAD}::test_parquet_without_a_value_column_or_with_boolean_values"),
    Case("parquet-bool-values", "CSV/Parquet files", "Parquet `value` column of booleans", parquet_bool_values,
         f"{T_BAD}::test_parquet_without_a_value_column_or_with_boolean_values"),
    Case("cli-unknown-optimizer", "CLI arguments", "`metabo bench --optimizers nosuch`", cli_unknown_optimizer,
         f"{T_BENCH}[argv0-unknown optimiser 'nosuch']"),
    Case("cli-seeds-zero", "CLI arguments", "`metabo bench --seeds 0`", cli_seeds_zero,
         f"{T_BENCH}[argv2-argument --seeds: must be at least 1]"),
    Case("cli-seeds-text", "CLI arguments", "`metabo bench --seeds five`", cli_seeds_text,
         f"{T_BAD}::test_cli_seeds_that_are_not_an_integer"),
    Case("cli-unknown-scenario", "CLI arguments", "`metabo finetune --yahpo nosuch`", cli_unknown_scenario,
         f"{T_CLI}[argv0-unknown YAHPO scenario 'nosuch']"),
    Case("cli-bench-unknown-scenario", "CLI arguments", "`metabo bench --problems yahpo/nosuch/1`",
         cli_bench_unknown_scenario, f"{T_BAD}::test_cli_bench_unknown_yahpo_scenario"),
    Case("cli-info-broken", "CLI arguments", "`metabo info --model` on random bytes", cli_info_broken,
         "tests/test_cli.py::test_info_on_a_broken_model_is_one_line_and_status_2"),
    Case("cli-info-missing", "CLI arguments", "`metabo info --model` on a missing file", cli_info_missing,
         f"{T_CLI}[argv10-no such model file]"),
    Case("cli-card-nan", "CLI arguments", "`metabo card` on weights with a NaN", cli_card_nan,
         f"{T_BAD}::test_cli_card_refuses_non_finite_weights"),
    Case("cli-finetune-table", "CLI arguments", "`metabo finetune --file` on a CSV with value `n/a`",
         cli_finetune_bad_table, f"{T_BAD}::test_cli_finetune_on_a_bad_table"),
    Case("cli-finetune-no-source", "CLI arguments", "`metabo finetune --out m.safetensors` (no source)",
         cli_finetune_no_source, "tests/test_cli.py::test_finetune_command_needs_a_source_and_is_wired"),
    Case("cli-nap-cuda", "CLI arguments", "`metabo nap --device cuda` without a GPU", cli_nap_cuda,
         "tests/train/test_nap.py::test_cuda_without_a_gpu_and_a_run_folder_not_to_resume_are_clear_errors"),
    Case("cli-report-missing", "CLI arguments", "`metabo report --store` on a missing store",
         cli_report_missing_store,
         "tests/test_bench_runner.py::test_cli_report_on_a_missing_or_foreign_store_is_one_line[None]"),
    Case("space-equal-choices", "search spaces", "`suggest_categorical(\"flag\", [True, 1, \"a\"])`",
         space_equal_choices,
         "tests/test_space.py::test_a_study_with_colliding_choices_tries_every_storable_choice[0]"),
    Case("space-empty", "search spaces", "an objective without parameters", space_empty,
         f"{T_BAD}::test_a_study_without_parameters_runs"),
    Case("space-single", "search spaces", "`suggest_float(\"width\", 2.0, 2.0)`, `suggest_categorical(\"kind\", "
         "[\"only\"])`", space_single_valued, f"{T_BAD}::test_single_valued_parameters_keep_their_value"),
    Case("space-dynamic", "search spaces", "`suggest_int(\"n\", 0, 3 + trial.number)` (dynamic range)",
         space_dynamic,
         "tests/sampler/test_fallbacks.py::test_dynamic_param_warns_once_and_conditional_param_is_modelled"),
    Case("space-too-wide", "search spaces", "80 float parameters (wide model: 64 inputs)", space_too_wide,
         "tests/sampler/test_suggestions.py::test_more_dims_than_the_model_takes"),
    Case("space-not-distribution", "search spaces", "`TNPSampler(search_space={\"x\": \"uniform(0, 1)\"})`",
         space_not_a_distribution, f"{T_BAD}::test_a_declared_search_space_of_non_distributions"),
    Case("space-declared-kind", "search spaces", "`search_space={\"x\": Categorical((\"a\", \"b\"))}`, objective "
         "`suggest_int(\"x\", 0, 10)`", space_declared_other_kind,
         f"{T_BAD}::test_a_declared_search_space_of_another_kind_is_left_out_with_a_warning"),
    Case("space-declared-narrower", "search spaces", "`search_space={\"x\": Float(0, 1)}`, objective "
         "`suggest_float(\"x\", 0, 10)`", space_declared_narrower,
         f"{T_BAD}::test_a_declared_search_space_narrower_than_the_objective"),
    Case("objective-nan", "objective values", "NaN on every third trial", objective_nan,
         "tests/sampler/test_fallbacks.py::test_failed_nan_inf_and_pruned_trials"),
    Case("objective-inf", "objective values", "`+inf` on trial 1 (minimised)", objective_inf,
         "tests/sampler/test_fallbacks.py::test_infinite_values_become_the_worst_finite_value"),
    Case("objective-minus-inf", "objective values", "`-inf` on trial 1 (minimised)", objective_minus_inf,
         "tests/sampler/test_fallbacks.py::test_infinite_values_become_the_worst_finite_value"),
    Case("objective-all-inf", "objective values", "`+inf` on every trial", objective_all_inf,
         "tests/sampler/test_fallbacks.py::test_only_infinite_values_so_far_never_crash"),
    Case("objective-huge", "objective values", "`1e300` as the value of failed configurations (x > 0.6)",
         objective_huge_penalty, f"{T_BAD}::test_a_huge_penalty_value_keeps_the_good_values_apart"),
    Case("constraint-inf", "objective values", "constraint `inf` on one trial", constraint_inf,
         "tests/sampler/test_constraints.py::test_infinite_constraint_values_are_taken_as_the_worst_seen"),
    Case("constraint-nan", "objective values", "`trial.set_constraint(\"c\", nan)`", constraint_nan,
         "tests/sampler/test_constraints.py::test_nan_constraints_are_refused_by_optuna_before_they_reach_the_sampler"),
    Case("constraint-sets", "objective values", "constraint `b` reported on odd trials only",
         constraint_different_sets,
         "tests/sampler/test_constraints.py::test_trials_with_different_constraints_get_a_warning_and_still_run"),
    Case("constraint-text-stored", "objective values", "constraint stored as `\"high\"` (by other code)",
         constraint_text_stored, "tests/test_outcomes.py::test_a_non_numeric_constraint_is_missing_with_a_warning"),
    Case("constraint-text-set", "objective values", "`trial.set_constraint(\"c\", \"high\")`", constraint_text_set,
         f"{T_BAD}::test_a_text_constraint_is_refused_by_optuna"),
]


# ---------------------------------------------------------------------------------------------- the table

def _clean(text: str, tmp_root: Path) -> str:
    """A table cell: temporary and install paths replaced, one line, bounded, pipes escaped."""
    text = _one_line(text)
    for path, label in ((tmp_root, "<tmp>"), (_shipped().parent, "<weights>"), (ROOT, "<repo>")):
        text = text.replace(str(path.resolve()), label).replace(str(path), label)
    text = re.sub(r"<tmp>/[^/\s'\"`]+/", "<tmp>/", text)
    if len(text) > MAX_MESSAGE:
        cut = text[:MAX_MESSAGE]
        text = cut + ("…`" if cut.count("`") % 2 else "…")
    return text.replace("|", "\\|")


def run_cases(cases: list[Case], in_process: bool = False,
              progress: Callable[[Case, Result], None] | None = None) -> list[tuple[Case, Result]]:
    """Each case in a temporary folder of its own."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # not Optuna's log of each failed trial
    results = []
    with tempfile.TemporaryDirectory(prefix="metabo-bad-inputs-") as root:
        for case in cases:
            tmp = Path(root) / case.id
            tmp.mkdir()
            result = run_case(case, Env(tmp, in_process))
            result.gets = _clean(result.gets, Path(root))
            result.why = _clean(result.why, Path(root))
            results.append((case, result))
            if progress is not None:
                progress(case, result)
    optuna.logging.set_verbosity(verbosity)
    return results


def table(results: list[tuple[Case, Result]], command: str, in_process: bool = False) -> str:
    counts = {cls: sum(r.cls == cls for _, r in results) for cls in (CLEAR, FALLBACK, DEFECT)}
    lines = [
        f"Command: `{command}` ({len(results)} bad inputs: {counts[CLEAR]} clear errors, {counts[FALLBACK]} "
        f"documented fallbacks, {counts[DEFECT]} DEFECTs). Each runs in a temporary folder (`<tmp>`); the model "
        "cases give the file to `TNPSampler(model=...)`, the related ones `TNPSampler(related=...)`, the table ones "
        "`metabo.meta.load_corpus`, the search-space and objective ones run a study with `TNPSampler(seed=0)`, and "
        "the command-line ones run `metabo ...` " + ("through `metabo.cli.main`." if in_process else
                                                    "in a subprocess."),
        "",
        "| kind | input | what the user gets | class | test |",
        "|---|---|---|---|---|",
    ]
    for case, r in results:
        cls = f"**{DEFECT}**: {r.why}" if r.cls == DEFECT else r.cls
        if r.doc:
            quote = r.doc.replace("|", "\\|")
            cls += f" (README: “{quote}”)"
        lines.append(f"| {case.kind} | {case.input} | {r.gets} | {cls} | `{case.test}` |")
    return "\n".join(lines) + "\n"


def missing_tests(cases: list[Case]) -> list[str]:
    """The test node ids named by ``cases`` that pytest does not collect."""
    files = sorted({c.test.split("::")[0] for c in cases})
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    collected = {line.strip() for line in proc.stdout.splitlines() if "::" in line}
    functions = {node.split("[")[0] for node in collected}
    return [c.test for c in cases if c.test not in collected and c.test not in functions]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="run the cases whose id contains this text")
    parser.add_argument("--out", type=Path, default=FRAGMENT, help="markdown table (default: %(default)s)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the command line through metabo.cli.main instead of a subprocess")
    parser.add_argument("--no-test-check", action="store_true",
                        help="do not check that the tests the table names exist (pytest --collect-only)")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if args.only is None or args.only in c.id]
    if not cases:
        parser.error(f"no case id contains {args.only!r}")

    def progress(case: Case, result: Result) -> None:
        print(f"{case.id:28s} {result.cls:20s} {result.why or result.gets}"[:200], flush=True)

    results = run_cases(cases, in_process=args.in_process, progress=progress)
    command = COMMAND + (f" --only {args.only}" if args.only else "") + (" --in-process" if args.in_process else "")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table(results, command, args.in_process))
    counts = {cls: sum(r.cls == cls for _, r in results) for cls in (CLEAR, FALLBACK, DEFECT)}
    print(f"{len(results)} cases: " + ", ".join(f"{n} {cls}" for cls, n in counts.items()) + f"; table: {args.out}")
    if not args.no_test_check:
        absent = missing_tests(cases)
        if absent:
            print("tests named in the table that pytest does not collect:\n  " + "\n  ".join(absent), file=sys.stderr)
            return 2
    return 1 if counts[DEFECT] else 0


if __name__ == "__main__":
    raise SystemExit(main())
