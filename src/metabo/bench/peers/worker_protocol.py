"""Worker side of the peer protocol: a JSON-lines loop on stdin/stdout around an ask/tell optimiser.

This file runs inside a peer's own virtualenv, which has neither metabo nor Optuna: it imports only the standard
library. A worker script (``hebo_worker.py`` ...) is started by path, imports this module from its own folder and
calls ``serve(factory)``. Requests and replies, one JSON object per line:

* ``{"cmd": "init", "space": {...}, "seed": 0, "threads": 1, "options": {...}}`` -> ``{"ok": true,
  "startup_trials": n, "versions": {...}}``; ``space`` maps parameter names, in order, to
  ``{"type": "float"|"int", "low": a, "high": b, "log": bool}`` or ``{"type": "categorical", "n": k}``;
  the objective is always minimised (the caller negates values to maximise);
* ``{"cmd": "tell", "trials": [{"params": {...}, "value": v, "token": t|null}, ...]}`` -> ``{"ok": true}``;
  ``token`` is the one an ``ask`` reply carried when the point came from this worker, else null;
* ``{"cmd": "ask"}`` -> ``{"ok": true, "params": {...}, "token": t}``; categoricals are choice indices;
* ``{"cmd": "ping"}`` -> ``{"ok": true, "versions": {...}}`` (answered once the library imports are done);
* ``{"cmd": "close"}`` -> ``{"ok": true}``, then the worker exits (it also exits at end of input).

A worker whose optimiser has ``take_events()`` adds its non-empty result to any reply as ``"events"``: counts
(e.g. ``random_fallbacks``) that the caller adds up in ``peer_info["events"]``, and ``messages`` (strings).

A failing request answers ``{"ok": false, "error": "<traceback>"}`` and the loop goes on.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import traceback
from typing import Any, Callable, Protocol

_HERE = os.path.dirname(os.path.abspath(__file__))
# Started by path, this folder is sys.path[0]; drop it so that sibling files never shadow a library's modules.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")


class Optimizer(Protocol):
    """What a worker wraps: minimise over the space given at construction."""

    startup_trials: int | None

    def tell(self, params: dict[str, Any], value: float, token: Any) -> None: ...

    def ask(self) -> tuple[dict[str, Any], Any]: ...


Factory = Callable[[dict[str, dict[str, Any]], int, dict[str, Any]], Optimizer]


def set_threads(threads: int) -> None:
    """Pin BLAS/OpenMP (and torch, when importable) to ``threads`` threads; call before importing libraries."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``names`` (those present) plus the Python version."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def serve(factory: Factory, version_packages: tuple[str, ...] = ()) -> None:
    """Answer requests from stdin until ``close`` or end of input.

    The protocol uses a private copy of the original stdout; file descriptor 1 is pointed at stderr so that
    anything a library prints cannot corrupt the reply stream.
    """
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    optimizer: Optimizer | None = None
    threads = 1
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            cmd = request.get("cmd")
            if cmd == "close":
                reply: dict[str, Any] = {"ok": True}
                out.write(json.dumps(reply) + "\n")
                break
            if cmd == "ping":
                set_threads(threads)
                reply = {"ok": True, "versions": package_versions(version_packages)}
            elif cmd == "init":
                threads = int(request.get("threads", 1))
                set_threads(threads)
                optimizer = factory(request["space"], int(request.get("seed", 0)), request.get("options") or {})
                set_threads(threads)  # some libraries (HEBO) reset torch's thread count on import
                reply = {"ok": True, "startup_trials": getattr(optimizer, "startup_trials", None),
                         "versions": package_versions(version_packages)}
            elif optimizer is None:
                raise RuntimeError(f"{cmd!r} before 'init'")
            elif cmd == "tell":
                for t in request["trials"]:
                    optimizer.tell(t["params"], float(t["value"]), t.get("token"))
                reply = {"ok": True}
            elif cmd == "ask":
                params, token = optimizer.ask()
                reply = {"ok": True, "params": params, "token": token}
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except Exception:  # noqa: BLE001 - sent to the caller, which raises it
            reply = {"ok": False, "error": traceback.format_exc()}
        take = getattr(optimizer, "take_events", None)
        if callable(take):
            try:
                events = take()
            except Exception:  # noqa: BLE001 - reported, never hidden
                events = {"event_errors": 1}
            if events:
                reply["events"] = events
        out.write(json.dumps(reply, default=_json_default) + "\n")
    out.flush()


def _json_default(value: Any) -> Any:
    # numpy scalars and the like
    for cast in (int, float):
        try:
            if cast(value) == value:
                return cast(value)
        except (TypeError, ValueError):
            continue
    return str(value)


def unit_to_value(spec: dict[str, Any], u: float) -> Any:
    """Map ``u`` in [0, 1] to a float/int parameter value (log scale where ``log``; ints own equal slices)."""
    import math

    u = min(max(float(u), 0.0), 1.0)
    low, high = float(spec["low"]), float(spec["high"])
    if spec["type"] == "int":
        lo, hi = low - 0.5, high + 0.5
        if spec.get("log"):
            x = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        else:
            x = lo + u * (hi - lo)
        return int(min(max(round(x), low), high))
    if spec.get("log"):
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def value_to_unit(spec: dict[str, Any], value: float) -> float:
    """Inverse of ``unit_to_value`` (the centre of an integer's slice)."""
    import math

    low, high = float(spec["low"]), float(spec["high"])
    if spec["type"] == "int":
        low, high = low - 0.5, high + 0.5
    if spec.get("log"):
        u = (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    else:
        u = (value - low) / (high - low) if high > low else 0.5
    return min(max(u, 0.0), 1.0)
