"""``ExternalSampler``: an Optuna sampler whose suggestions come from a worker process in another environment.

One long-lived worker per sampler (so per benchmark run) speaks the JSON-lines protocol of
``worker_protocol.py``. Each ``sample_relative`` call first tells the worker every completed trial it has not
seen, then asks it for a point, and maps the reply back to exact Optuna types (ints as ``int``, categoricals as
the original choice objects). Until a first trial has completed, Optuna's sampler API does not reveal the
search space, so the first trial comes from the independent sampler (``RandomSampler(seed)``, like the startup
points of Optuna's own samplers); pass ``search_space`` to let the worker choose that one too.

Nothing is hidden: a worker error raises ``PeerWorkerError`` carrying the worker's traceback (the benchmark
runner records it and falls back to random for that trial). The failed worker is discarded and the next ask
starts a fresh one told the whole history (counted in ``peer_info["worker_starts"]``).
"""

from __future__ import annotations

import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Sequence

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
STDERR_TAIL = 3000


class PeerWorkerError(RuntimeError):
    """A peer worker failed: it raised (the message holds its traceback), died, or did not answer in time."""


# ----------------------------------------------------------------------------------------------- type mapping

def encode_space(search_space: dict[str, BaseDistribution]) -> dict[str, dict[str, Any]]:
    """Optuna distributions -> the worker's space (floats, ints, categoricals by choice count).

    Stepped floats and ints become integer grid indices ``0..n`` so that workers need no notion of a step.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, dist in search_space.items():
        if isinstance(dist, CategoricalDistribution):
            out[name] = {"type": "categorical", "n": len(dist.choices)}
        elif isinstance(dist, FloatDistribution) and dist.step is None:
            out[name] = {"type": "float", "low": dist.low, "high": dist.high, "log": dist.log}
        elif isinstance(dist, IntDistribution) and dist.step == 1:
            out[name] = {"type": "int", "low": dist.low, "high": dist.high, "log": dist.log}
        elif isinstance(dist, (FloatDistribution, IntDistribution)):
            out[name] = {"type": "int", "low": 0, "high": _n_steps(dist), "log": False}
        else:
            raise TypeError(f"unsupported distribution for {name!r}: {dist!r}")
    return out


def _n_steps(dist: FloatDistribution | IntDistribution) -> int:
    assert dist.step is not None
    return int(round((dist.high - dist.low) / dist.step))


def encode_params(search_space: dict[str, BaseDistribution], params: dict[str, Any]) -> dict[str, Any]:
    """Optuna parameter values -> worker values (choice indices, grid indices, plain numbers); parameters a
    conditional trial left inactive are left out."""
    out: dict[str, Any] = {}
    for name, dist in search_space.items():
        if name not in params:
            continue
        value = params[name]
        if isinstance(dist, CategoricalDistribution):
            out[name] = int(dist.to_internal_repr(value))
        elif isinstance(dist, FloatDistribution) and dist.step is None:
            out[name] = float(value)
        elif isinstance(dist, IntDistribution) and dist.step == 1:
            out[name] = int(value)
        else:
            out[name] = int(round((value - dist.low) / dist.step))
    return out


def decode_params(search_space: dict[str, BaseDistribution], values: dict[str, Any],
                  optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Worker values -> Optuna values of the exact types, clipped and snapped into each distribution.

    Raises ``PeerWorkerError`` for a missing parameter (unless ``optional``: inactive in a conditional space) or a
    value that is not a finite number.
    """
    out: dict[str, Any] = {}
    for name, dist in search_space.items():
        if name not in values:
            if name in optional:
                continue
            raise PeerWorkerError(f"worker reply lacks parameter {name!r}: {values!r}")
        raw = values[name]
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise PeerWorkerError(f"worker gave {name!r} = {raw!r}, not a finite number")
        if isinstance(dist, CategoricalDistribution):
            index = int(round(raw))
            if not 0 <= index < len(dist.choices):
                raise PeerWorkerError(f"worker gave choice index {raw!r} for {name!r} with {len(dist.choices)} "
                                      "choices")
            out[name] = dist.choices[index]
        elif isinstance(dist, FloatDistribution) and dist.step is None:
            out[name] = min(max(float(raw), dist.low), dist.high)
        elif isinstance(dist, IntDistribution) and dist.step == 1:
            out[name] = int(min(max(int(round(raw)), dist.low), dist.high))
        else:
            k = min(max(int(round(raw)), 0), _n_steps(dist))
            value = dist.low + k * dist.step
            out[name] = int(value) if isinstance(dist, IntDistribution) else min(float(value), dist.high)
    return out


# ------------------------------------------------------------------------------------------- worker process

def worker_environment(threads: int) -> dict[str, str]:
    """The worker's environment: ours, with thread counts pinned, string hashing fixed and no Python path leaking
    in."""
    env = dict(os.environ)
    # SMAC3 iterates over hashed sets of configurations, so with Python's per-process hash salt the same seed
    # gave different runs; a fixed salt makes every peer's run a function of its seed.
    env["PYTHONHASHSEED"] = "0"
    for var in THREAD_VARS:
        env[var] = str(threads)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(var, None)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _pump(stream: Any, lines: "queue.Queue[str | None]") -> None:
    # A reader thread lets requests time out instead of blocking forever on a hung worker.
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):
        pass
    lines.put(None)


def _shutdown(proc: subprocess.Popen, stderr: Any) -> None:
    """Ask politely (end of input), then kill; used by ``close`` and by the garbage-collection finaliser."""
    try:
        if proc.poll() is None:
            try:
                proc.stdin.close()  # the worker exits at end of input
            except OSError:
                pass
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    finally:
        for stream in (proc.stdin, proc.stdout, stderr):
            try:
                stream.close()
            except (OSError, AttributeError):
                pass


class WorkerProcess:
    """One worker: ``python -u script`` with JSON lines on stdin/stdout and stderr kept in a temporary file."""

    def __init__(self, python: str | Path, script: str | Path, name: str = "peer", threads: int = 1) -> None:
        self.name = name
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([str(python), "-u", str(script)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, env=worker_environment(threads),
                                      text=True, bufsize=1)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, self._lines), daemon=True,
                         name=f"{name}-worker-reader").start()
        self._finalizer = weakref.finalize(self, _shutdown, self._proc, self._stderr)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def stderr_tail(self) -> str:
        """The last characters the worker wrote to stderr."""
        try:
            self._stderr.flush()
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - STDERR_TAIL))
            return self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _died(self, cmd: str) -> PeerWorkerError:
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return PeerWorkerError(f"{self.name} worker exited (code {code}) during {cmd!r}; stderr tail:\n"
                               f"{self.stderr_tail()}")

    def request(self, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request and return the reply; raise ``PeerWorkerError`` on an error reply, death or timeout."""
        cmd = str(message.get("cmd"))
        if not self.alive:
            raise self._died(cmd)
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(message) + "\n")
            self._proc.stdin.flush()
        except (OSError, ValueError):
            raise self._died(cmd) from None
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise PeerWorkerError(f"{self.name} worker gave no reply to {cmd!r} within {timeout} s (killed); "
                                  f"stderr tail:\n{self.stderr_tail()}") from None
        if line is None:
            raise self._died(cmd)
        try:
            reply = json.loads(line)
        except ValueError:
            raise PeerWorkerError(f"{self.name} worker sent a line that is not JSON: {line[:500]!r}") from None
        if not reply.get("ok"):
            raise PeerWorkerError(f"{self.name} worker raised during {cmd!r}:\n{reply.get('error', reply)}")
        return reply

    def close(self) -> None:
        """End the worker (end of input, then kill after a grace period)."""
        self._finalizer()


# ------------------------------------------------------------------------------------------------- sampler

class ExternalSampler(BaseSampler):
    """Optuna sampler driven by a peer worker script run with another interpreter.

    Args:
        script: the worker script (run by path; it must not import metabo or Optuna).
        python: interpreter for the worker (default: this one).
        seed: seed sent to the worker and used by the independent sampler.
        options: worker-specific options sent with ``init``.
        name: label used in error messages and ``peer_info``.
        search_space: fixed search space; by default the intersection of the completed trials' spaces.
        independent_sampler: for the first trial and parameters outside the space (default ``RandomSampler``).
        threads: BLAS/OpenMP/torch threads in the worker.
        timeout: seconds to wait for any one reply before killing the worker.
        eager: start the worker (and its library imports) now rather than on the first ask.
        peer_info: initial contents of the ``peer_info`` attribute (e.g. the environment's versions).

    ``peer_info`` holds the worker's library versions (as it reported them), how often a worker was started and
    how many requests failed. ``close()`` ends the worker; garbage collection and interpreter exit do too.
    """

    def __init__(self, script: str | Path, python: str | Path | None = None, *, seed: int | None = None,
                 options: dict[str, Any] | None = None, name: str = "external",
                 search_space: dict[str, BaseDistribution] | None = None,
                 independent_sampler: BaseSampler | None = None, threads: int = 1, timeout: float = 900.0,
                 eager: bool = True, peer_info: dict[str, Any] | None = None) -> None:
        self._script = Path(script)
        self._python = Path(python) if python is not None else Path(sys.executable)
        self._seed = int(seed) if seed is not None else int.from_bytes(os.urandom(4), "little") >> 1
        self._options = dict(options or {})
        self._name = name
        self._fixed_space = dict(search_space) if search_space is not None else None
        # Conditional parameters (the worker's "conditions" option): a trial may leave them out.
        self._optional = frozenset(c["child"] for c in self._options.get("conditions", ()))
        self._independent = independent_sampler or RandomSampler(seed=self._seed)
        self._threads = threads
        self._timeout = timeout
        self._intersection = IntersectionSearchSpace()
        self._lock = threading.RLock()
        self._worker: WorkerProcess | None = None
        self._worker_space: dict[str, BaseDistribution] | None = None  # the space the worker was given
        self._told: set[int] = set()  # trial numbers the current worker has been told
        self._tokens: dict[int, Any] = {}  # trial number -> the current worker's ask token
        self._n_startup_trials: int | None = None
        self.peer_info: dict[str, Any] = {"peer": name, **(peer_info or {}), "worker_starts": 0,
                                          "worker_errors": 0}
        if eager:
            with self._lock:
                self._spawn()

    @property
    def n_startup_trials(self) -> int | None:
        """The peer's initial-design size, as its worker reported it (``None`` before it has)."""
        return self._n_startup_trials

    # -- worker lifecycle

    def _spawn(self) -> WorkerProcess:
        self._discard_worker()
        self._worker = WorkerProcess(self._python, self._script, self._name, self._threads)
        self.peer_info["worker_starts"] += 1
        reply = self._request({"cmd": "ping"})
        self.peer_info["versions"] = reply.get("versions", {})
        return self._worker

    def _discard_worker(self) -> None:
        if self._worker is not None:
            self._worker.close()
        self._worker = None
        self._worker_space = None
        self._told = set()
        self._tokens = {}

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self._worker is not None
        try:
            reply = self._worker.request(message, timeout=self._timeout)
            self._add_events(reply.get("events"))
            return reply
        except PeerWorkerError:
            # The worker's state is unknown now: the next ask starts afresh and replays the history.
            self.peer_info["worker_errors"] += 1
            self._discard_worker()
            raise

    def _add_events(self, events: Any) -> None:
        # Workers may report events (e.g. a library's silent random fallbacks): counts add up, messages are kept.
        if not isinstance(events, dict):
            return
        total = self.peer_info.setdefault("events", {})
        for key, value in events.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                kept = total.setdefault(key, [])
                if isinstance(kept, list) and len(kept) < 20:
                    kept.extend(value if isinstance(value, list) else [value])
            else:
                total[key] = total.get(key, 0) + value

    def _init_worker(self, search_space: dict[str, BaseDistribution]) -> None:
        if self._worker is None or not self._worker.alive or self._worker_space is not None:
            self._spawn()
        reply = self._request({"cmd": "init", "space": encode_space(search_space), "seed": self._seed,
                               "threads": self._threads, "options": self._options})
        self._worker_space = dict(search_space)
        self.peer_info["versions"] = reply.get("versions", self.peer_info.get("versions", {}))
        if isinstance(reply.get("startup_trials"), int):
            self._n_startup_trials = reply["startup_trials"]

    def close(self) -> None:
        """End the worker process now (it is restarted if the sampler is used again)."""
        with self._lock:
            self._discard_worker()

    @property
    def worker_pid(self) -> int | None:
        """Process id of the current worker, if one runs."""
        return self._worker.pid if self._worker is not None and self._worker.alive else None

    # -- Optuna sampler API

    def reseed_rng(self) -> None:
        self._independent.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if self._fixed_space is not None:
            return dict(self._fixed_space)
        return {n: d for n, d in self._intersection.calculate(study).items() if not d.single()}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        if len(study.directions) > 1:
            raise ValueError(f"{self._name}: multi-objective studies are not supported")
        with self._lock:
            if self._worker_space != search_space:
                self._init_worker(search_space)  # also after a worker error: fresh worker, whole history
            self._tell_completed(study, search_space)
            reply = self._request({"cmd": "ask"})
            params = decode_params(search_space, reply.get("params") or {}, self._optional)
            self._tokens[trial.number] = reply.get("token")
            return params

    def _tell_completed(self, study: Study, search_space: dict[str, BaseDistribution]) -> None:
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        batch, numbers = [], []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.number in self._told:
                continue
            numbers.append(t.number)
            value = t.value
            # Trials outside the space or without a finite value carry nothing a worker could use.
            if value is None or not math.isfinite(value) or any(
                    t.distributions.get(n, d if n in self._optional else None) != d for n, d in search_space.items()):
                continue
            batch.append({"params": encode_params(search_space, t.params), "value": sign * value,
                          "token": self._tokens.get(t.number)})
        if batch:
            self._request({"cmd": "tell", "trials": batch})
        self._told.update(numbers)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._independent.after_trial(study, trial, state, values)
