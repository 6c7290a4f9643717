"""Load and fault suite: TNPSampler in many worker processes against one study, on every storage Optuna offers
for that, with workers killed, a database restarted, and objectives that raise, return NaN or hang.

    python benchmarks/reliability.py                        # everything: 1,2,4,8 workers x 500 trials, all faults
    python benchmarks/reliability.py --quick --storages sqlite,journal   # smoke run, well under a minute

Load. For each storage (PostgreSQL, JournalStorage on a file with its default symlink lock, SQLite, and Optuna's
gRPC storage proxy in front of PostgreSQL, or SQLite without it) and each worker count, ``--trials`` trials *in
total* are shared between the worker processes (500 over 8 workers: 62 or 63 each), every worker with its own
``TNPSampler(seed=i)``, on a cheap 3-D objective (Branin plus a log-scaled term, 5 ms of sleep). Reported:
completed trials; lost trials (asked but never finished: left RUNNING or WAITING, or asked and missing from the
storage); duplicate parameter sets; pairs of model-driven trials (those with the ``metabo:suggestion`` system
attribute) closer than ``min_distance`` (max-norm in the unit cube of the search space's bounds, log scale for the
log parameter); and the time of a suggestion, as wall and CPU (thread) time, both inside the sampler
(``sample_relative``) and for the whole ask (``study.ask()`` plus suggesting every parameter), p50/p90/p99 over the
model-driven suggestions. CPU time separates the sampler's own cost from waiting for a core: with more workers
than cores, wall time grows with contention alone.

Faults (on PostgreSQL, or SQLite where PostgreSQL is not run), each a study that must reach ``--fault-trials``
COMPLETE trials with no trial left RUNNING or WAITING: a worker killed with SIGKILL mid-trial (Optuna's heartbeat:
``heartbeat_interval=1, grace_period=2`` and ``RetryHeartbeatStaleTrialCallback``, so the dead worker's trial is
failed and re-queued with its parameters); the PostgreSQL server restarted mid-run (``pg_ctl stop -m fast``,
down ``--down`` seconds, ``pg_ctl start``; workers retry storage calls that fail with a connection error); a
worker whose objective raises, one whose objective returns NaN, and one whose objective hangs (each on every second
trial of that worker). The worker loop enforces a deadline on the objective (SIGALRM; ``--objective-timeout``) and
tells a timed-out trial FAIL; trials that fail are not re-queued, the study simply runs on to its COMPLETE count.

Ray Tune: ``examples/ray_tune.py`` (``OptunaSearch(sampler=TNPSampler())``, 4 concurrent trials) runs as one
check when ray is importable.

Servers are started here on 127.0.0.1 (a throwaway PostgreSQL cluster from initdb in a temporary directory, on a
free port, run as user ``postgres`` when this runs as root; the gRPC proxy as a child process) and removed at the
end, also on Ctrl-C or an error. Nothing is installed: a missing server binary or Python package skips its part
with the command that installs it. Progress goes to stderr; results to ``<out>/reliability.json`` and the
markdown fragment for BENCHMARKS.md (``benchmarks/fragments/reliability.md``; ``<out>/reliability.md`` with
``--quick``). Exit status 1 when a correctness bar (lost trials, duplicates, close pairs, faults) is not met or a
part failed to run; the timing bar is reported only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MIN_DISTANCE = 0.01  # CandidateSearchConfig's default
RESERVED_ATTR = "metabo:suggestion"  # metabo.sampler.RESERVED_ATTR (not imported: the parent stays light)
FAULT_ATTR = "reliability:fault"
FAULTS = ("kill", "restart", "raise", "nan", "hang")
STORAGES = ("postgres", "journal", "sqlite", "grpc")
INSTALL = {
    "psycopg2": "pip install psycopg2-binary  (or: pip install -e '.[reliability]')",
    "grpc": "pip install grpcio  (or: pip install -e '.[reliability]')",
    "ray": "pip install 'ray[tune]'  (or: pip install -e '.[reliability]')",
    "postgres": "install PostgreSQL's server binaries (initdb, pg_ctl), e.g. apt-get install postgresql",
}


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[reliability {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- objective
def search_space() -> dict[str, Any]:
    """The 3-D search space: Branin's box and a log-scaled learning-rate-like parameter."""
    from optuna.distributions import FloatDistribution

    return {"x": FloatDistribution(-5.0, 10.0), "y": FloatDistribution(0.0, 15.0),
            "lr": FloatDistribution(1e-4, 1e-1, log=True)}


def objective_value(params: dict[str, float]) -> float:
    """Branin(x, y) + (log10(lr) + 2.5)^2: three global minima of 0.398 at lr = 10^-2.5."""
    x, y, lr = params["x"], params["y"], params["lr"]
    branin = ((y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6) ** 2
              + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10)
    return branin + (math.log10(lr) + 2.5) ** 2


def unit_cube(params_list: list[dict[str, float]], space: dict[str, Any]) -> np.ndarray:
    """Parameters mapped to [0, 1] by the distributions' bounds (log scale where the distribution is log)."""
    columns = []
    for name, dist in space.items():
        values = np.array([p[name] for p in params_list], dtype=np.float64)
        low, high = dist.low, dist.high
        if dist.log:
            values, low, high = np.log(values), math.log(low), math.log(high)
        columns.append((values - low) / (high - low))
    return np.stack(columns, axis=1) if columns else np.empty((len(params_list), 0))


# ---------------------------------------------------------------------------------------------- servers
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float) -> bool:
    """Whether something accepts connections on 127.0.0.1:port within the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        time.sleep(0.1)
    return False


def postgres_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl, if PostgreSQL's server binaries are installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust authentication) in a temporary directory.

    initdb refuses to run as root, so under root the server runs as the ``postgres`` user."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="metabo-reliability-pg-"))
        self.data = self.dir / "data"
        self.running = False
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://metabo@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout_s: float = 120) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        # A new session: Ctrl-C in the terminal must not reach the server before the cleanup stops it.
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout_s,
                       start_new_session=True)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "metabo", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._pg_ctl_start()
        self.running = True

    def _pg_ctl_start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options, "-w", "start")

    def restart(self, down_s: float) -> None:
        """Stop (fast: open connections are closed), stay down ``down_s`` seconds, start again."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        time.sleep(down_s)
        self._pg_ctl_start()

    def stop(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout_s=60)
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)


GRPC_SERVER_CODE = """
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from optuna.storages import get_storage, run_grpc_proxy_server
run_grpc_proxy_server(get_storage(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]))
"""


class GrpcProxy:
    """Optuna's gRPC storage proxy (``run_grpc_proxy_server``) in a child process, in front of ``backing_url``."""

    def __init__(self, backing_url: str) -> None:
        self.backing_url = backing_url
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", GRPC_SERVER_CODE, self.backing_url, str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        if not wait_for_port(self.port, 120):
            self.stop()
            raise RuntimeError("the gRPC storage proxy did not start listening within 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# ---------------------------------------------------------------------------------------------- storages
@dataclass
class StorageSpec:
    """How a process opens the study's storage (plain data, so it travels to worker processes)."""

    kind: str  # postgres | journal | sqlite | grpc
    url: str = ""  # RDB URL (postgres, sqlite), or the URL behind the gRPC proxy
    path: str = ""  # journal file
    port: int = 0  # gRPC proxy
    heartbeat: bool = False

    def for_study(self, name: str) -> "StorageSpec":
        """A journal file of the study's own (one journal per study, as usually deployed); others unchanged."""
        if self.kind != "journal":
            return self
        return StorageSpec("journal", path=str(Path(self.path).with_name(f"{name}.journal")))

    @property
    def backing(self) -> "StorageSpec":
        """The storage the parent reads directly (the proxy's backing RDB for gRPC)."""
        return StorageSpec("rdb", url=self.url) if self.kind == "grpc" else self


def open_storage(spec: StorageSpec) -> Any:
    """An Optuna storage for ``spec``; with ``heartbeat`` an RDB storage that fails and re-queues stale trials."""
    import optuna

    if spec.kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(spec.path))
    if spec.kind == "grpc":
        from optuna.storages import GrpcStorageProxy

        return GrpcStorageProxy(host="127.0.0.1", port=spec.port)
    kwargs: dict[str, Any] = {}
    if spec.url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 30}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}  # a restarted server's stale connections are replaced
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the heartbeat and its callback are experimental
        if spec.heartbeat:
            callback = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
            name = "heartbeat_stale_trial_callback"
            if callback is None:  # Optuna < 4.9
                callback, name = optuna.storages.RetryFailedTrialCallback, "failed_trial_callback"
            kwargs.update(heartbeat_interval=1, grace_period=2, **{name: callback(max_retry=3)})
        return optuna.storages.RDBStorage(spec.url, **kwargs)


def close_storage(storage: Any) -> None:
    """Release an RDB storage's connections (the PostgreSQL server is stopped after the last run)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        with contextlib.suppress(Exception):
            storage.remove_session()
            engine.dispose()


def transient_errors() -> tuple[type[BaseException], ...]:
    """Storage errors worth retrying: lost or refused connections (a restarting server, a locked SQLite file, an
    unavailable gRPC proxy). Optuna wraps SQLAlchemy errors raised at commit in ``StorageInternalError``."""
    import optuna

    errors: list[type[BaseException]] = [optuna.exceptions.StorageInternalError, ConnectionError]
    with contextlib.suppress(ImportError):
        import sqlalchemy.exc

        errors += [sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError]
    if importlib.util.find_spec("grpc") is not None:
        import grpc

        errors.append(grpc.RpcError)
    return tuple(errors)


# ---------------------------------------------------------------------------------------------- worker
@dataclass
class WorkerConfig:
    """What one worker process does."""

    index: int
    storage: dict[str, Any]
    study: str
    run_dir: str
    quota: int | None = None  # load: this many trials
    target: int | None = None  # faults: until the study has this many COMPLETE trials
    fault: str | None = None  # injected by this worker: kill | restart | raise | nan | hang
    fault_at: int = 1  # the worker's trial (from 0) a kill or a restart happens in
    objective_timeout_s: float = 2.0
    sleep_s: float = 0.005
    retry_for_s: float = 120.0


class ObjectiveTimeout(Exception):
    """The objective ran past its deadline."""


@dataclass
class WorkerLog:
    """What a worker saw; written to ``worker-<i>.json`` when it ends (a killed worker writes nothing)."""

    index: int
    asked: list[int] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)
    retries: Counter = field(default_factory=Counter)
    tells_refused: int = 0  # trials already finished by someone else (a heartbeat reaper) when told
    error: str | None = None
    elapsed_s: float = 0.0


def retry(call: Callable[[], Any], wlog: WorkerLog, errors: tuple[type[BaseException], ...],
          retry_for_s: float) -> Any:
    """``call()``, retried with backoff while it fails with one of ``errors``, for up to ``retry_for_s``."""
    start, delay = time.monotonic(), 0.05
    while True:
        try:
            return call()
        except errors as e:
            if time.monotonic() - start > retry_for_s:
                raise
            cause = e.__cause__
            wlog.retries[type(e).__name__ + (f"({type(cause).__name__})" if cause else "")] += 1
            time.sleep(delay)
            delay = min(2.0, delay * 2)


def time_sampler(sampler: Any, sink: dict[str, Any]) -> None:
    """Wrap ``sampler.sample_relative`` to record its wall and CPU (thread) time and whether the model chose;
    where the sampler has them, count its model passes (``_choose``: more than one after a clash with another
    worker's point) and nudges (``_nudge``), which explain the CPU time's tail."""
    original = sampler.sample_relative
    for name in ("_choose", "_nudge"):
        if callable(getattr(sampler, name, None)):
            setattr(sampler, name, counted(getattr(sampler, name), sink, name.strip("_")))

    def timed(study: Any, trial: Any, space: dict[str, Any]) -> dict[str, Any]:
        wall, cpu = time.perf_counter(), time.thread_time()
        params = original(study, trial, space)
        sink.update(sample_wall=time.perf_counter() - wall, sample_cpu=time.thread_time() - cpu,
                    model=bool(params))
        return params

    sampler.sample_relative = timed


def counted(method: Callable[..., Any], sink: dict[str, Any], key: str) -> Callable[..., Any]:
    """``method``, counting its calls in ``sink[key]``."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sink[key] = sink.get(key, 0) + 1
        return method(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def heartbeat(storage: Any, trial_id: int | None, interval_s: float = 1.0) -> Iterator[threading.Event]:
    """Record the trial's heartbeat every ``interval_s`` while the block runs (nothing with ``trial_id=None``);
    yields an event set once a heartbeat is stored. Unlike Optuna's own thread this one survives a storage error
    (a restarting server), so a live worker's trial is not reaped as stale."""
    stop, stored = threading.Event(), threading.Event()

    def beat() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                storage.record_heartbeat(trial_id)
                stored.set()
            stop.wait(interval_s)

    thread = threading.Thread(target=beat, daemon=True)
    if trial_id is not None:
        thread.start()
    try:
        yield stored
    finally:
        stop.set()
        if trial_id is not None:
            thread.join()


def _raise_timeout(signum: int, frame: Any) -> None:
    raise ObjectiveTimeout


def evaluate(params: dict[str, float], fault: str | None, cfg: WorkerConfig, marker: Path,
             beating: threading.Event) -> float:
    """The objective, with this trial's injected fault, under a deadline of ``cfg.objective_timeout_s`` (SIGALRM:
    interrupts Python code and sleeps; a hang inside C code that ignores signals needs a child process)."""
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, cfg.objective_timeout_s)
    try:
        time.sleep(cfg.sleep_s)
        if fault == "raise":
            raise RuntimeError("injected objective error")
        if fault == "nan":
            return float("nan")
        if fault == "hang":
            time.sleep(3600)
        if fault == "kill":
            signal.setitimer(signal.ITIMER_REAL, 0)
            # Optuna never reaps a RUNNING trial without a stored heartbeat: die only once there is one.
            beating.wait(60)
            tmp = marker.parent / f"kill-{marker.name}.tmp"
            tmp.write_text(str(os.getpid()))
            tmp.replace(marker.parent / f"kill-{marker.name}")  # whole, at once: the parent sends SIGKILL now
            time.sleep(3600)
        if fault == "restart":  # hold this trial until the server goes down, so its tell meets the outage
            signal.setitimer(signal.ITIMER_REAL, 0)
            (marker.parent / f"restart-{marker.name}").touch()
            deadline = time.monotonic() + 60
            while not (marker.parent / "restarting").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return objective_value(params)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def fault_now(cfg: WorkerConfig, k: int) -> str | None:
    """The fault this worker injects into its k-th trial (from 0): a kill or the server's restart once, in trial
    ``cfg.fault_at``; the others every second trial."""
    if cfg.fault in ("kill", "restart"):
        return cfg.fault if k == cfg.fault_at else None
    return cfg.fault if cfg.fault and k % 2 == 1 else None


def suggest_all(trial: Any, wlog: WorkerLog, errors: tuple, cfg: WorkerConfig) -> None:
    """Suggest every parameter (the sampler runs at the first), with retries."""
    for name, dist in search_space().items():
        retry(lambda: trial.suggest_float(name, dist.low, dist.high, log=dist.log), wlog, errors, cfg.retry_for_s)


def tell(study: Any, trial: Any, value: float | None, wlog: WorkerLog, errors: tuple, cfg: WorkerConfig) -> None:
    """Tell ``value`` (FAIL when ``None``), retrying connection errors; a trial found finished by someone else
    (a heartbeat reaper, or this tell's own commit before the connection dropped) is left as it is."""
    import optuna
    from optuna.trial import TrialState

    def once() -> None:
        if study._storage.get_trial(trial._trial_id).state.is_finished():
            wlog.tells_refused += 1
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NaN values: Optuna warns and fails the trial
            if value is None:
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, value)

    try:
        retry(once, wlog, errors, cfg.retry_for_s)
    except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
        wlog.tells_refused += 1


def study_counts(study: Any) -> tuple[int, int]:
    """(COMPLETE trials, RUNNING trials) of the study. WAITING (re-queued) trials are not counted as running:
    workers must go on asking to pick them up."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    return complete, len(trials) - complete


def reap_stale(study: Any) -> None:
    """Fail (and so re-queue) trials whose heartbeat stopped, as ``study.optimize`` does before each trial."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)


def should_stop(study: Any, cfg: WorkerConfig, done: int, wlog: WorkerLog, errors: tuple) -> bool | None:
    """Whether this worker is finished; ``None``: not now, but wait (the running trials may still fail)."""
    if cfg.quota is not None:
        return done >= cfg.quota
    complete, unfinished = retry(lambda: study_counts(study), wlog, errors, cfg.retry_for_s)
    if complete >= cfg.target:
        return True
    return None if complete + unfinished >= cfg.target else False


def worker_loop(study: Any, storage: Any, cfg: WorkerConfig, wlog: WorkerLog) -> None:
    """Ask, evaluate, tell until the quota or the study's COMPLETE target is reached."""
    errors, spec = transient_errors(), StorageSpec(**cfg.storage)
    sink: dict[str, Any] = {}
    time_sampler(study.sampler, sink)
    done = 0
    while True:
        if spec.heartbeat:
            retry(lambda: reap_stale(study), wlog, errors, cfg.retry_for_s)
        stop = should_stop(study, cfg, done, wlog, errors)
        if stop:
            return
        if stop is None:
            time.sleep(0.2)
            continue
        sink.clear()
        run_trial(study, storage if spec.heartbeat else None, cfg, wlog, sink, fault_now(cfg, done))
        done += 1


def run_trial(study: Any, heartbeat_storage: Any, cfg: WorkerConfig, wlog: WorkerLog, sink: dict[str, Any],
              fault: str | None) -> None:
    """One trial: ask and suggest (timed, with the sampler's times from ``sink``), evaluate with this trial's
    fault, tell. With a ``heartbeat_storage`` the heartbeat starts as soon as the trial exists, as in
    ``study.optimize`` (where suggestions run inside the objective): a worker killed while its sampler runs is
    reaped too."""
    errors = transient_errors()
    wall, cpu = time.perf_counter(), time.thread_time()
    trial = retry(study.ask, wlog, errors, cfg.retry_for_s)
    wlog.asked.append(trial.number)
    with heartbeat(heartbeat_storage, trial._trial_id if heartbeat_storage else None) as beating:
        suggest_all(trial, wlog, errors, cfg)
        wlog.timings.append(sink | {"trial": trial.number, "ask_wall": time.perf_counter() - wall,
                                    "ask_cpu": time.thread_time() - cpu})
        if fault:
            retry(lambda: trial.set_user_attr(FAULT_ATTR, fault), wlog, errors, cfg.retry_for_s)
        try:
            value: float | None = evaluate(trial.params, fault, cfg, Path(cfg.run_dir) / str(cfg.index), beating)
        except Exception:  # ObjectiveTimeout included: the trial is told FAIL
            value = None
    tell(study, trial, value, wlog, errors, cfg)


def worker_main(config: dict[str, Any]) -> None:
    """Entry point of a worker process: open the study, wait for the start signal, run, write the log."""
    import optuna

    from metabo import TNPSampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")  # heartbeat outside optimize(), experimental features
    cfg = WorkerConfig(**config)
    run_dir = Path(cfg.run_dir)
    wlog = WorkerLog(cfg.index)
    storage = None
    start = time.monotonic()
    try:
        errors = transient_errors()
        storage = retry(lambda: open_storage(StorageSpec(**cfg.storage)), wlog, errors, cfg.retry_for_s)
        sampler = TNPSampler(seed=cfg.index)
        study = retry(lambda: optuna.load_study(study_name=cfg.study, storage=storage, sampler=sampler), wlog,
                      errors, cfg.retry_for_s)
        (run_dir / f"ready-{cfg.index}").touch()
        while not (run_dir / "go").exists():
            time.sleep(0.01)
        start = time.monotonic()
        worker_loop(study, storage, cfg, wlog)
    except BaseException as e:  # reported by the parent, which fails the run
        wlog.error = f"{type(e).__name__}: {e}"
    finally:
        wlog.elapsed_s = time.monotonic() - start
        if storage is not None:
            close_storage(storage)
        payload = asdict(wlog) | {"retries": dict(wlog.retries)}
        tmp = run_dir / f"worker-{cfg.index}.json.tmp"
        tmp.write_text(json.dumps(payload))
        tmp.replace(run_dir / f"worker-{cfg.index}.json")


# ---------------------------------------------------------------------------------------------- running studies
_LIVE: list[Any] = []  # worker processes, killed on the way out whatever happens


def kill_live_workers() -> None:
    """SIGKILL every worker process still alive (cleanup on Ctrl-C or an error)."""
    for process in _LIVE:
        if process.is_alive():
            process.kill()
            process.join(5)
    _LIVE.clear()


def worker_context() -> Any:
    """A forkserver: workers fork from a clean process that imported torch, Optuna and metabo once (fast starts,
    and no database connection or gRPC channel of the parent is inherited)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "optuna", "metabo.sampler"])
    return context


def create_study(spec: StorageSpec, name: str) -> None:
    """Create the study (minimised) directly in the storage; the gRPC proxy serves the same rows."""
    import optuna

    storage = open_storage(spec.backing)
    try:
        optuna.create_study(study_name=name, storage=storage, direction="minimize")
    finally:
        close_storage(storage)


@dataclass
class RunPlan:
    """One study run: storage, workers and what they do, and what the parent does while they run."""

    spec: StorageSpec
    study: str
    n_workers: int
    run_dir: Path
    trials: int | None = None  # load: total trials over the workers
    target: int | None = None  # faults: COMPLETE trials
    fault: str | None = None
    objective_timeout_s: float = 2.0
    timeout_s: float = 3600.0
    on_tick: Callable[["RunState"], None] | None = None


@dataclass
class RunState:
    """What the parent's tick handler sees and changes while workers run."""

    plan: RunPlan
    processes: list[Any]
    started: float
    events: list[str] = field(default_factory=list)
    done: set[str] = field(default_factory=set)


def worker_configs(plan: RunPlan) -> list[WorkerConfig]:
    """Quotas spread ``plan.trials`` over the workers (the first get one more); the fault goes to worker 0."""
    configs = []
    for i in range(plan.n_workers):
        quota = None if plan.trials is None else plan.trials // plan.n_workers + (i < plan.trials % plan.n_workers)
        configs.append(WorkerConfig(index=i, storage=asdict(plan.spec), study=plan.study, run_dir=str(plan.run_dir),
                                    quota=quota, target=plan.target, fault=plan.fault if i == 0 else None,
                                    objective_timeout_s=plan.objective_timeout_s, fault_at=fault_at(plan)))
    return configs


def fault_at(plan: RunPlan) -> int:
    """Worker 0's trial for a kill or a restart: about half-way through the study, when the model chooses."""
    return max(1, (plan.target or 0) // (2 * plan.n_workers))


def start_workers(plan: RunPlan) -> list[Any]:
    """Start the workers and release them together once all have loaded the study and the model."""
    context = worker_context()
    processes = [context.Process(target=worker_main, args=(asdict(cfg),), daemon=True)
                 for cfg in worker_configs(plan)]
    for process in processes:
        process.start()
        _LIVE.append(process)
    deadline = time.monotonic() + 300
    while not all((plan.run_dir / f"ready-{i}").exists() for i in range(plan.n_workers)):
        if time.monotonic() > deadline or not all(p.is_alive() for p in processes):
            break  # the workers' logs say why
        time.sleep(0.05)
    (plan.run_dir / "go").touch()
    return processes


def run_workers(plan: RunPlan) -> tuple[list[dict[str, Any]], list[str], float]:
    """Run the plan's workers to the end (or the timeout): their logs, the parent's events, elapsed seconds."""
    shutil.rmtree(plan.run_dir, ignore_errors=True)  # markers of an earlier run would fire at once
    plan.run_dir.mkdir(parents=True)
    state = RunState(plan, start_workers(plan), time.monotonic())
    last_progress = state.started
    while any(p.is_alive() for p in state.processes):
        now = time.monotonic()
        if now - state.started > plan.timeout_s:
            state.events.append(f"timed out after {plan.timeout_s:.0f} s; workers killed")
            break
        if plan.on_tick is not None:
            plan.on_tick(state)
        if now - last_progress > 15:
            log(f"  {plan.study}: {progress(plan)} after {now - state.started:.0f} s")
            last_progress = now
        time.sleep(0.1)
    elapsed = time.monotonic() - state.started
    for process in state.processes:
        process.join(1)
        if process.is_alive():
            process.kill()
            process.join(5)
    _LIVE.clear()
    return [read_worker_log(plan.run_dir, i) for i in range(plan.n_workers)], state.events, elapsed


def progress(plan: RunPlan) -> str:
    """'N complete' from the storage, or why it could not be read."""
    try:
        trials, _ = load_trials(plan.spec, plan.study)
    except Exception as e:  # a restarting server
        return f"(storage unreadable: {type(e).__name__})"
    return f"{sum(t.state.name == 'COMPLETE' for t in trials)} complete"


def read_worker_log(run_dir: Path, index: int) -> dict[str, Any]:
    """A worker's log, or a note that it wrote none (killed)."""
    path = run_dir / f"worker-{index}.json"
    if not path.exists():
        return {"index": index, "asked": [], "timings": [], "retries": {}, "tells_refused": 0,
                "error": None, "killed": True, "elapsed_s": 0.0}
    return json.loads(path.read_text()) | {"killed": False}


def load_trials(spec: StorageSpec, study: str) -> tuple[list[Any], Any]:
    """All trials of the study, read directly from the storage (not through the gRPC proxy), and its space."""
    import optuna

    storage = open_storage(spec.backing)
    try:
        trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    finally:
        close_storage(storage)
    return trials, search_space()


# ---------------------------------------------------------------------------------------------- analysis
def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p90, p99 (``None`` without values)."""
    if not values:
        return {"p50": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(np.array(values), [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99)}


def timing_summary(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Percentiles of the model-driven suggestions' times (sampler and whole ask; wall and CPU), and how many
    were chosen again after a clash or nudged."""
    rows = [t for w in workers for t in w["timings"] if t.get("model")]
    return {"n": len(rows), "chosen_again": sum(t.get("choose", 1) > 1 for t in rows),
            "nudged": sum(t.get("nudge", 0) > 0 for t in rows)} | {
        key: percentiles([t[key] for t in rows]) for key in ("sample_wall", "sample_cpu", "ask_wall", "ask_cpu")}


def spacing(trials: list[Any], space: dict[str, Any]) -> dict[str, Any]:
    """Duplicates among the trials that did not fail, and close pairs among their model-driven ones."""
    live = [t for t in trials if t.state.name != "FAIL" and space.keys() <= t.params.keys()]
    keys = [tuple(t.params[name] for name in space) for t in live]
    model = [t for t in live if RESERVED_ATTR in t.system_attrs]
    x = unit_cube([t.params for t in model], space)
    gaps = np.abs(x[:, None, :] - x[None, :, :]).max(-1) if len(x) else np.empty((0, 0))
    upper = gaps[np.triu_indices(len(x), k=1)]
    return {"duplicates": len(keys) - len(set(keys)), "model_driven": len(model),
            "close_pairs": int((upper < MIN_DISTANCE - 1e-9).sum()),
            "pairs_within_2x": int((upper < 2 * MIN_DISTANCE).sum()),
            "min_gap": float(upper.min()) if len(upper) else None}


def analyse(spec: StorageSpec, study: str, workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, lost trials, spacing and timings of one run."""
    trials, space = load_trials(spec, study)
    states = Counter(t.state.name for t in trials)
    unfinished = [t.number for t in trials if t.state.name in ("RUNNING", "WAITING")]
    missing = sorted({n for w in workers for n in w["asked"]} - {t.number for t in trials})
    retries: Counter = Counter()
    for w in workers:
        retries.update(w["retries"])
    return {"states": dict(states), "completed": states.get("COMPLETE", 0), "unfinished": unfinished,
            "missing": missing, "lost": len(unfinished) + len(missing),
            "requeued": sum("failed_trial" in t.system_attrs for t in trials),
            # a re-queued trial carries its original's user attributes: count the originals only
            "injected": dict(Counter(t.user_attrs[FAULT_ATTR] for t in trials
                                     if FAULT_ATTR in t.user_attrs and "failed_trial" not in t.system_attrs)),
            "retries": dict(retries), "tells_refused": sum(w["tells_refused"] for w in workers),
            "worker_errors": [w["error"] for w in workers if w["error"]],
            "killed_workers": [w["index"] for w in workers if w["killed"]]} | spacing(trials, space)


# ---------------------------------------------------------------------------------------------- load
def load_run(spec: StorageSpec, n_workers: int, trials: int, out: Path, timeout_s: float,
             objective_timeout_s: float) -> dict[str, Any]:
    """``trials`` trials in total over ``n_workers`` workers on one fresh study."""
    name = f"load-{spec.kind}-w{n_workers}"
    spec = spec.for_study(name)
    create_study(spec, name)
    log(f"load: {spec.kind}, {n_workers} worker(s), {trials} trials")
    plan = RunPlan(spec, name, n_workers, out / "runs" / name, trials=trials, timeout_s=timeout_s,
                   objective_timeout_s=objective_timeout_s)
    workers, events, elapsed = run_workers(plan)
    result = {"storage": spec.kind, "workers": n_workers, "trials": trials, "elapsed_s": elapsed,
              "events": events} | analyse(spec, name, workers) | {"timing": timing_summary(workers)}
    result["ok"] = (not events and not result["worker_errors"] and result["lost"] == 0
                    and result["completed"] == trials and result["duplicates"] == 0 and result["close_pairs"] == 0)
    log(f"  {result['completed']}/{trials} complete, lost {result['lost']}, duplicates {result['duplicates']}, "
        f"close pairs {result['close_pairs']}, {elapsed:.0f} s")
    return result


# ---------------------------------------------------------------------------------------------- faults
def kill_on_marker(state: RunState) -> None:
    """SIGKILL worker 0 once it says it is inside its objective (its trial is RUNNING, its heartbeat beating)."""
    marker = state.plan.run_dir / "kill-0"
    if "killed" not in state.done and marker.exists():
        os.kill(int(marker.read_text()), signal.SIGKILL)
        state.done.add("killed")
        state.events.append(f"SIGKILL to worker 0 at {time.monotonic() - state.started:.1f} s")


def restart_on_marker(server: PostgresServer, down_s: float) -> Callable[[RunState], None]:
    """A tick handler restarting PostgreSQL (down ``down_s`` seconds) when worker 0 holds a trial for it (its
    second), while the other workers run on."""

    def tick(state: RunState) -> None:
        if "restarted" in state.done or not (state.plan.run_dir / "restart-0").exists():
            return
        began = time.monotonic()
        (state.plan.run_dir / "restarting").touch()
        server.restart(down_s)
        state.done.add("restarted")
        state.events.append(f"PostgreSQL stopped at {began - state.started:.1f} s, up again "
                            f"{time.monotonic() - began:.1f} s later")

    return tick


def fault_run(fault: str, spec: StorageSpec, n_workers: int, target: int, out: Path, objective_timeout_s: float,
              server: PostgresServer | None, timeout_s: float, down_s: float) -> dict[str, Any]:
    """One fault on a fresh study that must reach ``target`` COMPLETE trials."""
    if fault == "kill":
        spec = StorageSpec(spec.kind, url=spec.url, heartbeat=True)
    name = f"fault-{fault}-{spec.kind}"
    spec = spec.for_study(name)
    create_study(spec, name)
    log(f"fault: {fault} on {spec.kind}, {n_workers} workers, {target} COMPLETE trials")
    on_tick = kill_on_marker if fault == "kill" else (
        restart_on_marker(server, down_s) if fault == "restart" and server is not None else None)
    plan = RunPlan(spec, name, n_workers, out / "runs" / name, target=target, fault=fault,
                   objective_timeout_s=objective_timeout_s, timeout_s=timeout_s, on_tick=on_tick)
    workers, events, elapsed = run_workers(plan)
    result = {"fault": fault, "storage": spec.kind, "workers": n_workers, "target": target, "elapsed_s": elapsed,
              "events": events} | analyse(spec, name, workers)
    happened = bool(result["injected"]) if fault != "restart" else any(
        e.startswith("PostgreSQL stopped") for e in events)
    result["fault_happened"] = happened
    result["ok"] = (happened and result["completed"] >= target and not result["unfinished"] and not result["missing"]
                    and not result["worker_errors"] and not any("timed out" in e for e in events))
    log(f"  {result['completed']}/{target} complete, unfinished {len(result['unfinished'])}, "
        f"states {result['states']}, {elapsed:.0f} s")
    return result


# ---------------------------------------------------------------------------------------------- ray
def ray_check(out: Path, trials: int, timeout_s: float) -> dict[str, Any]:
    """Run examples/ray_tune.py as a child process and read its summary."""
    summary = out / "ray_tune.json"
    command = [sys.executable, str(ROOT / "examples" / "ray_tune.py"), "--trials", str(trials),
               "--concurrent", "4", "--out", str(summary)]
    log(f"ray tune: {trials} trials, 4 concurrent")
    start = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout_s:.0f} s", "elapsed_s": timeout_s}
    result: dict[str, Any] = {"returncode": done.returncode, "elapsed_s": time.monotonic() - start,
                              "command": "python examples/ray_tune.py " + " ".join(command[2:-2])}
    if done.returncode != 0 or not summary.exists():
        return result | {"ok": False, "error": done.stderr[-2000:]}
    result |= json.loads(summary.read_text())
    result["ok"] = result["terminated"] == trials and result["errors"] == 0 and result["max_running_at_once"] >= 2
    log(f"  {result['terminated']}/{trials} trials terminated, best {result['best_loss']:.4f}")
    return result


# ---------------------------------------------------------------------------------------------- report
def duration(seconds: float) -> str:
    """'42 s' or '17 minutes' or '1.5 hours'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} minutes" if seconds < 5400 else f"{seconds / 3600:.1f} hours"


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def load_tables(load: list[dict[str, Any]]) -> list[str]:
    """Markdown: correctness and timing tables of the load runs."""
    lines = ["| storage | workers | trials | completed | lost | duplicate sets | model-driven | pairs < min_distance "
             "| pairs < 2x | min gap | retried storage errors | wall s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in load:
        retries = sum(r["retries"].values())
        lines.append(f"| {r['storage']} | {r['workers']} | {r['trials']} | {r['completed']} | {r['lost']} | "
                     f"{r['duplicates']} | {r['model_driven']} | {r['close_pairs']} | {r['pairs_within_2x']} | "
                     f"{fmt(r['min_gap'], 4)} | {retries} | {r['elapsed_s']:.0f} |")
    cpus, most = os.cpu_count() or 1, max(r["workers"] for r in load)
    lines += ["", "Seconds per model-driven suggestion, p50 / p90 / p99: inside the sampler (`sample_relative`) and "
              "the whole ask (`study.ask()` and every parameter suggested), wall and CPU (thread) time. With "
              f"{most} workers on {cpus} cores a worker gets at most {cpus / most:.2g} of a core, so wall time grows "
              "with contention alone; CPU time is the worker's own cost (the database's server processes share "
              "the cores and count in neither). Chosen again: suggestions whose first choice clashed with another "
              "worker's point, so the model chose again; nudged: still clashing after two more choices, moved by a "
              "random nudge (the sampler's `_choose` and `_nudge` calls, counted).", "",
              "| storage | workers | n | sampler wall | sampler CPU | ask wall | ask CPU | chosen again | nudged |",
              "|---|---:|---:|---|---|---|---|---:|---:|"]
    for r in load:
        t = r["timing"]
        cells = [" / ".join(fmt(t[k][p]) for p in ("p50", "p90", "p99"))
                 for k in ("sample_wall", "sample_cpu", "ask_wall", "ask_cpu")]
        lines.append(f"| {r['storage']} | {r['workers']} | {t['n']} | " + " | ".join(cells)
                     + f" | {t['chosen_again']} | {t['nudged']} |")
    return lines


def fault_table(faults: list[dict[str, Any]]) -> list[str]:
    """Markdown: one row per fault."""
    lines = ["| fault | storage | workers | COMPLETE / target | FAIL | left RUNNING or WAITING | re-queued | "
             "retried storage errors | what happened | met |", "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in faults:
        injected = [f"{n} x {k} injected" for k, n in r["injected"].items() if k not in ("kill", "restart")]
        what = "; ".join(r["events"] + injected) or "-"
        retries = ", ".join(f"{n} {k}" for k, n in r["retries"].items()) or "0"
        lines.append(f"| {r['fault']} | {r['storage']} | {r['workers']} | {r['completed']} / {r['target']} | "
                     f"{r['states'].get('FAIL', 0)} | {len(r['unfinished'])} | {r['requeued']} | {retries} | "
                     f"{what} | {'yes' if r['ok'] else 'no'} |")
    return lines


def bars(results: dict[str, Any], max_workers: int) -> list[dict[str, Any]]:
    """The issue's bars, each met or not, with the numbers."""
    out = []
    for r in results["load"]:
        if r["workers"] == max_workers:
            workers = f"{max_workers} worker{'s' if max_workers > 1 else ''}"
            out.append({"bar": f"{r['storage']}: {workers} x {r['trials']} trials: all COMPLETE, 0 lost, "
                        "0 duplicate sets, 0 model-driven pairs closer than min_distance", "met": r["ok"],
                        "numbers": f"{r['completed']} completed, {r['lost']} lost, {r['duplicates']} duplicates, "
                        f"{r['close_pairs']} close pairs (min gap {fmt(r['min_gap'], 4)})", "kind": "correctness"})
    for r in results["faults"]:
        out.append({"bar": f"fault {r['fault']} ({r['storage']}): COMPLETE >= {r['target']}, none RUNNING",
                    "met": r["ok"], "numbers": f"{r['completed']} COMPLETE, {len(r['unfinished'])} unfinished",
                    "kind": "correctness"})
    out += timing_bars(results["load"], max_workers)
    return out


def timing_bars(load: list[dict[str, Any]], max_workers: int) -> list[dict[str, Any]]:
    """Median suggestion time with the most workers over one worker, on PostgreSQL: wall and CPU, sampler and ask."""
    runs = {r["workers"]: r["timing"] for r in load if r["storage"] == "postgres"}
    if 1 not in runs or max_workers not in runs or max_workers == 1:
        return []
    out = []
    for key, label in (("sample_wall", "sampler wall"), ("sample_cpu", "sampler CPU"), ("ask_wall", "ask wall"),
                       ("ask_cpu", "ask CPU")):
        one, many = runs[1][key]["p50"], runs[max_workers][key]["p50"]
        if one is None or many is None:
            continue
        ratio = many / one
        numbers = f"{many:.4f} s / {one:.4f} s = {ratio:.2f}"
        if "wall" in key:
            floor = max_workers / (os.cpu_count() or 1)
            numbers += (f"; {max_workers} workers sharing {os.cpu_count()} cores make it about "
                        f"{max(1.0, floor):.1f} alone")
        out.append({"bar": f"PostgreSQL median {label} time, {max_workers} workers <= 1.5 x 1 worker",
                    "met": ratio <= 1.5, "numbers": numbers, "kind": "timing"})
    return out


def fragment(results: dict[str, Any]) -> str:
    """The markdown fragment for BENCHMARKS.md (no heading: the composer adds it)."""
    m = results["machine"]
    servers = " and ".join(results.get("servers", []))
    lines = [f"Command: `{results['command']}` ({duration(results['elapsed_s'])} on this machine: "
             f"{m['cpus']} CPU cores, load average {m['load_start']} at the start and {m['load_end']} at the end"
             f"{'; ' + results['contention'] if results.get('contention') else ''}; Optuna {m['optuna']}, "
             f"Python {m['python']})." + (f" It started its own {servers} on 127.0.0.1 and removed them."
                                          if servers else ""), "", results["interpretation"], ""]
    if results["load"]:
        lines += ["**Load**", ""] + load_tables(results["load"]) + [""]
    if results["faults"]:
        lines += ["**Faults** (each a fresh study that must reach its COMPLETE count with no trial left RUNNING "
                  "or WAITING; the faulty worker is worker 0: the kill and the restart happen in its trial about "
                  "half-way through the study, the other faults in every second trial of it)", ""]
        lines += fault_table(results["faults"]) + [""]
    ray = results.get("ray")
    if ray:
        lines += [f"**Ray Tune** (`{ray.get('command', 'examples/ray_tune.py')}`): "
                  + (f"{ray['terminated']} of {ray['trials']} trials terminated, {ray['errors']} errors, at most "
                     f"{ray['max_running_at_once']} running at once (limit 4); best loss {ray['best_loss']:.3f} "
                     f"(optimum 0.398); smallest max-norm distance between two configurations "
                     f"{fmt(ray['min_gap'], 4)}; tuning took {ray['elapsed_s']:.0f} s." if ray.get("ok")
                     else f"failed: {ray.get('error', '')[-300:]}"), ""]
    lines += ["**Bars**", ""] + [f"- {'met' if b['met'] else 'NOT met'}: {b['bar']} ({b['numbers']})"
                                 for b in results["bars"]]
    if results["skipped"]:
        lines += ["", "**Skipped**", ""] + [f"- {s['part']}: {s['reason']}" for s in results["skipped"]]
    if results["errors"]:
        lines += ["", "**Failed to run**", ""] + [f"- {e['part']}: `{e['error']}`" for e in results["errors"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main
def interpretation(trials: int, workers: int, fault_trials: int, fault_workers: int) -> str:
    """How the issue's "N worker processes x T trials" is read, and the setup, for the report."""
    per = f"{trials // workers}" + (f" or {trials // workers + 1}" if trials % workers else "")
    return (
        f"\"N worker processes x T trials against one study\" is read as T trials in total shared by the N "
        f"processes ({trials} over {workers} worker{'s' if workers > 1 else ''}: {per} each), so every worker count runs the same study size "
        f"and the times compare; the {workers} processes stay concurrent throughout, and the model-driven points "
        "crowd Branin's three minima, so the spacing bar is exercised (the 'pairs < 2x' column counts pairs "
        "within twice min_distance). Each worker has its own `TNPSampler(seed=i)`; the objective is Branin(x, y) "
        "+ (log10(lr) + 2.5)^2 on x in [-5, 10], y in [0, 15], lr in [1e-4, 1e-1] (log), with 5 ms of sleep. "
        "SQLite and PostgreSQL are opened with `RDBStorage` (SQLite: `timeout=30`; PostgreSQL: "
        "`pool_pre_ping=True`); storage calls that fail with a connection error or a locked database are retried "
        f"by the worker loop and counted. Fault studies: {fault_workers} workers until {fault_trials} trials are "
        "COMPLETE.")


def machine_info() -> dict[str, Any]:
    import optuna

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "optuna": optuna.__version__,
            "load_start": round(os.getloadavg()[0], 2)}


OTHER_JOBS = ("benchmarks/constrained_mo.sh", "metabo bench", "pytest")


def contention_note() -> str | None:
    """Other benchmarks or test runs on the machine (they inflate times), by ``pgrep -f``."""
    running = []
    for pattern in OTHER_JOBS:
        with contextlib.suppress(Exception):
            found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
            if set(found) - {str(os.getpid())}:
                running.append(f"`{pattern}`")
    return f"{', '.join(running)} also running on the same cores" if running else None


def missing_for(kind: str) -> str | None:
    """Why a storage cannot be run here, with how to install what is missing; ``None`` if it can."""
    if kind in ("postgres",) and importlib.util.find_spec("psycopg2") is None:
        return f"psycopg2 is not installed: {INSTALL['psycopg2']}"
    if kind == "postgres" and postgres_bin_dir() is None:
        return f"PostgreSQL server binaries not found: {INSTALL['postgres']}"
    if kind == "postgres" and os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root needs runuser to start PostgreSQL as user postgres"
    if kind == "postgres" and os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            pwd.getpwnam("postgres")
            return None
        return "running as root needs a 'postgres' user to run the server (initdb refuses root)"
    if kind == "grpc":
        import optuna.storages

        if not hasattr(optuna.storages, "run_grpc_proxy_server"):
            return "this Optuna version has no gRPC storage proxy (Optuna >= 4.2)"
        if importlib.util.find_spec("grpc") is None:
            return f"grpcio is not installed: {INSTALL['grpc']}"
    return None


@dataclass
class Servers:
    """Servers started for the run, stopped by ``stop``."""

    postgres: PostgresServer | None = None
    grpc: GrpcProxy | None = None
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="metabo-reliability-")))

    def stop(self) -> None:
        kill_live_workers()
        if self.grpc is not None:
            self.grpc.stop()
        if self.postgres is not None:
            self.postgres.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_postgres(servers: Servers, errors: list[dict[str, str]]) -> None:
    """Start the throwaway PostgreSQL cluster; a failure is recorded in ``errors``."""
    log("starting PostgreSQL")
    server = PostgresServer(postgres_bin_dir())  # type: ignore[arg-type]
    try:
        server.start()
        servers.postgres = server
    except (subprocess.SubprocessError, OSError) as e:
        detail = getattr(e, "stderr", b"") or b""
        errors.append({"part": "postgres", "error": f"did not start: {e!r} {detail.decode(errors='replace')[-300:]}"})
        server.stop()


def grpc_spec(servers: Servers, skipped: list[dict[str, str]], errors: list[dict[str, str]]) -> StorageSpec | None:
    """Start Optuna's gRPC proxy in front of PostgreSQL (SQLite without it); ``None`` if it cannot run."""
    why = missing_for("grpc")
    if why:
        skipped.append({"part": "grpc", "reason": why})
        return None
    backing = servers.postgres.url if servers.postgres else f"sqlite:///{servers.tmp / 'grpc.db'}"
    create_tables(backing)
    log(f"starting the gRPC storage proxy in front of {'PostgreSQL' if servers.postgres else 'SQLite'}")
    proxy = GrpcProxy(backing)
    try:
        proxy.start()
    except RuntimeError as e:
        errors.append({"part": "grpc", "error": str(e)})
        return None
    servers.grpc = proxy
    return StorageSpec("grpc", url=backing, port=proxy.port)


def storage_specs(kinds: list[str], servers: Servers, skipped: list[dict[str, str]],
                  errors: list[dict[str, str]]) -> dict[str, StorageSpec]:
    """Start what the requested storages need; those that cannot run are noted in ``skipped`` (missing) or
    ``errors`` (a server that failed to start)."""
    wants_pg = "postgres" in kinds or "grpc" in kinds  # the proxy goes in front of PostgreSQL when it can
    missing = missing_for("postgres") if wants_pg else None
    if wants_pg and missing is None:
        start_postgres(servers, errors)
    if "postgres" in kinds and missing:
        skipped.append({"part": "postgres", "reason": missing})
    specs: dict[str, StorageSpec | None] = {
        "postgres": StorageSpec("postgres", url=servers.postgres.url) if servers.postgres else None,
        "sqlite": StorageSpec("sqlite", url=f"sqlite:///{servers.tmp / 'reliability.db'}"),
        "journal": StorageSpec("journal", path=str(servers.tmp / "reliability.journal")),
        "grpc": grpc_spec(servers, skipped, errors) if "grpc" in kinds else None,
    }
    return {kind: spec for kind in kinds if (spec := specs[kind]) is not None}


def create_tables(url: str) -> None:
    """Create Optuna's tables before the proxy and the workers race to."""
    close_storage(open_storage(StorageSpec("rdb", url=url)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", default=None, help="worker counts, comma-separated (default 1,2,4,8; quick 1,2)")
    p.add_argument("--trials", type=int, default=None, help="trials per study in total (default 500; quick 12)")
    p.add_argument("--storages", default=",".join(STORAGES), help=f"comma-separated among {', '.join(STORAGES)}")
    p.add_argument("--faults", default="all", help=f"'all', 'none', or comma-separated among {', '.join(FAULTS)}")
    p.add_argument("--fault-trials", type=int, default=None, help="COMPLETE trials per fault study (100; quick 8)")
    p.add_argument("--fault-workers", type=int, default=None, help="workers per fault study (default 4; quick 2)")
    p.add_argument("--objective-timeout", type=float, default=None, help="objective deadline, s (2; quick 1)")
    p.add_argument("--down", type=float, default=None, help="seconds PostgreSQL stays down in the restart fault "
                   "(3; quick 1)")
    p.add_argument("--ray", choices=("auto", "yes", "no"), default="auto",
                   help="run examples/ray_tune.py (auto: when ray is importable, not with --quick)")
    p.add_argument("--ray-trials", type=int, default=20)
    p.add_argument("--run-timeout", type=float, default=None, help="seconds one study run may take (3600; quick 120)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    p.add_argument("--out", type=Path, default=ROOT / "bench_results" / "reliability")
    p.add_argument("--fragment", type=Path, default=None,
                   help="markdown fragment (default benchmarks/fragments/reliability.md; quick: <out>/reliability.md)")
    args = p.parse_args(argv)
    quick = args.quick
    args.workers = [int(w) for w in (args.workers or ("1,2" if quick else "1,2,4,8")).split(",")]
    args.trials = args.trials or (12 if quick else 500)
    args.fault_trials = args.fault_trials or (8 if quick else 100)
    args.fault_workers = args.fault_workers or (2 if quick else 4)
    args.objective_timeout = args.objective_timeout or (1.0 if quick else 2.0)
    args.down = args.down if args.down is not None else (1.0 if quick else 3.0)
    args.run_timeout = args.run_timeout or (120.0 if quick else 3600.0)
    args.fragment = args.fragment or (args.out / "reliability.md" if quick else ROOT / "benchmarks" / "fragments"
                                      / "reliability.md")
    args.storages = [s for s in args.storages.split(",") if s]
    args.faults = list(FAULTS) if args.faults == "all" else [] if args.faults == "none" else args.faults.split(",")
    unknown = [s for s in args.storages if s not in STORAGES] + [f for f in args.faults if f not in FAULTS]
    if unknown or min(args.workers) < 1:
        p.error(f"unknown storages or faults, or a worker count below 1: {unknown}")
    return args


def fault_storage(specs: dict[str, StorageSpec], servers: Servers) -> StorageSpec:
    """Faults run on PostgreSQL when it runs, else on SQLite (the RDB storages have heartbeats)."""
    return specs.get("postgres") or StorageSpec("sqlite", url=f"sqlite:///{servers.tmp / 'reliability.db'}")


def run_faults(args: argparse.Namespace, specs: dict[str, StorageSpec], servers: Servers,
               skipped: list[dict[str, str]], errors: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Every requested fault that can run here."""
    results = []
    base = fault_storage(specs, servers)
    for fault in args.faults:
        if fault == "restart" and "postgres" not in specs:
            why = missing_for("postgres") or ("it did not start" if "postgres" in args.storages else "not requested")
            skipped.append({"part": "fault restart", "reason": f"needs PostgreSQL (--storages postgres): {why}"})
        else:
            result = guarded(errors, f"fault {fault}", lambda: fault_run(
                fault, base, args.fault_workers, args.fault_trials, args.out, args.objective_timeout,
                servers.postgres, args.run_timeout, args.down))
            results += [result] if result else []
    return results


def run_ray(args: argparse.Namespace, skipped: list[dict[str, str]]) -> dict[str, Any] | None:
    """The Ray Tune example as one check, if asked for and ray is importable."""
    if args.ray == "no" or (args.ray == "auto" and args.quick):
        return None
    if importlib.util.find_spec("ray") is None:
        skipped.append({"part": "ray tune", "reason": f"ray is not installed: {INSTALL['ray']}"})
        return None
    return ray_check(args.out, args.ray_trials, 1200)


def run_all(args: argparse.Namespace, servers: Servers) -> dict[str, Any]:
    """Load runs, faults and the Ray check; the results dictionary."""
    skipped: list[dict[str, str]] = []
    errors: list[dict[str, str]] = []
    results: dict[str, Any] = {
        "command": command_line(), "machine": machine_info(), "contention": contention_note(),
        "interpretation": interpretation(args.trials, max(args.workers), args.fault_trials, args.fault_workers),
        "settings": {k: str(v) for k, v in vars(args).items()}, "skipped": skipped, "errors": errors}
    specs = storage_specs(args.storages, servers, skipped, errors)
    results["servers"] = [name for name, server in (("PostgreSQL", servers.postgres), ("gRPC proxy", servers.grpc))
                          if server is not None]
    load_specs = [specs[k] for k in args.storages if k in specs]
    results["load"] = [r for spec in load_specs for n in args.workers
                       if (r := guarded(errors, f"load {spec.kind} x {n}",
                                        lambda: load_run(spec, n, args.trials, args.out, args.run_timeout,
                                                         args.objective_timeout)))]
    results["faults"] = run_faults(args, specs, servers, skipped, errors)
    results["ray"] = run_ray(args, skipped)
    return results


def guarded(errors: list[dict[str, str]], part: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """``call()``; an exception is logged and recorded in ``errors`` (the suite goes on, and exits 1)."""
    try:
        return call()
    except Exception as e:
        log(f"{part} failed: {e!r}")
        errors.append({"part": part, "error": repr(e)[:1000]})
        return None


def command_line() -> str:
    """This invocation, as a reader would type it."""
    args = [a if " " not in a else repr(a) for a in sys.argv[1:]]
    return " ".join(["python benchmarks/reliability.py", *args])


def finish(results: dict[str, Any], args: argparse.Namespace, started: float) -> int:
    """Bars, JSON and fragment; the exit status."""
    results["elapsed_s"] = time.monotonic() - started
    results["machine"]["load_end"] = round(os.getloadavg()[0], 2)
    start, end = results["contention"], contention_note()
    parts = [f"at the start {start}" if start else "", f"at the end {end}" if end else ""]
    results["contention"] = "; ".join(part for part in parts if part) or None
    results["bars"] = bars(results, max(args.workers))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reliability.json").write_text(json.dumps(results, indent=1, default=str))
    args.fragment.parent.mkdir(parents=True, exist_ok=True)
    args.fragment.write_text(fragment(results))
    for bar in results["bars"]:
        log(f"{'met' if bar['met'] else 'NOT met'}: {bar['bar']} ({bar['numbers']})")
    for skip in results["skipped"]:
        log(f"skipped {skip['part']}: {skip['reason']}")
    for error in results["errors"]:
        log(f"FAILED to run {error['part']}: {error['error']}")
    log(f"wrote {args.out / 'reliability.json'} and {args.fragment} ({results['elapsed_s']:.0f} s)")
    failed = [b for b in results["bars"] if b["kind"] == "correctness" and not b["met"]]
    failed += [r for r in results["load"] if not r["ok"]]
    failed += [results["ray"]] if results["ray"] is not None and not results["ray"]["ok"] else []
    failed += results["errors"]
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # SIGTERM unwinds like Ctrl-C, so the servers and workers are stopped either way.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    servers = Servers()
    try:
        results = run_all(args, servers)
    except KeyboardInterrupt:
        log("interrupted: stopping workers and servers; nothing written")
        return 130
    finally:
        servers.stop()
    return finish(results, args, started)


if __name__ == "__main__":
    sys.exit(main())
