"""Private virtualenvs for peer optimisers whose pins clash with metabo's own environment.

HEBO pins ``numpy<1.25`` and SMAC brings its own ConfigSpace, so every peer library lives in its own virtualenv
under ``$METABO_PEER_ENVS`` (default ``~/.cache/metabo/peers``), one folder per environment name. An environment
is built on demand (``setup`` or the first ``ensure``) from the pinned requirement lists below, in a single pip
command that always includes ``torch==2.13.0`` where torch is needed (any other torch version would pull
gigabytes). A finished build writes ``metabo-env.json`` with its requirements and the installed versions; a
folder without it, or built from other requirements, is rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Iterator

ROOT_ENV_VAR = "METABO_PEER_ENVS"
MARKER = "metabo-env.json"
TORCH = "torch==2.13.0"

#: Environment name -> pinned pip requirements (one pip command each).
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "hebo": ("hebo==0.3.6", TORCH, "numpy==1.24.4", "scipy==1.11.4", "pandas==2.2.3", "scikit-learn==1.5.2",
             "matplotlib==3.8.4"),
    # the libraries' own dependencies pinned to what resolved when first built here, so rebuilds match
    "smac": ("smac==2.4.1", "ConfigSpace==1.2.2", "numpy==2.4.6", "scipy==1.17.1", "scikit-learn==1.9.1"),
    "botorch": ("botorch==0.18.1", TORCH, "gpytorch==1.15.2", "linear_operator==0.6.1", "numpy==2.4.6",
                "scipy==1.17.1"),
    # Syne Tune's transfer searchers; huggingface_hub because its transfer modules import the blackbox
    # repository (which would download data: it is never used here, the past studies come from metabo.meta)
    "synetune": ("syne-tune==0.16.0", "botorch==0.18.1", TORCH, "huggingface_hub", "gpytorch==1.15.2",
                 "linear_operator==0.6.1", "numpy==2.4.6", "scipy==1.17.1"),
}

#: Environment name -> distributions whose versions are recorded with every run.
VERSION_PACKAGES: dict[str, tuple[str, ...]] = {
    "hebo": ("hebo", "torch", "numpy", "scipy", "scikit-learn", "pymoo", "gpytorch"),
    "smac": ("smac", "ConfigSpace", "numpy", "scipy", "scikit-learn", "pyrfr"),
    "botorch": ("botorch", "gpytorch", "torch", "numpy", "scipy"),
    "synetune": ("syne-tune", "botorch", "gpytorch", "torch", "numpy", "scipy", "pandas", "scikit-learn",
                 "xgboost", "huggingface_hub"),
}

#: Peer optimiser name (as in ``make_sampler``) -> environment name.
PEER_ENV: dict[str, str] = {"hebo": "hebo", "smac-hpo": "smac", "smac-bb": "smac", "botorch": "botorch",
                         "synetune-quantile": "synetune", "synetune-boundingbox": "synetune",
                         "synetune-zeroshot": "synetune"}


class PeerEnvError(RuntimeError):
    """A peer environment could not be built; the message carries pip's output tail."""


def envs_root() -> Path:
    """Folder holding all peer environments (``$METABO_PEER_ENVS`` or ``~/.cache/metabo/peers``)."""
    return Path(os.environ.get(ROOT_ENV_VAR) or Path.home() / ".cache" / "metabo" / "peers").expanduser()


def env_name(name: str) -> str:
    """Environment name for an environment or peer optimiser name (``smac-bb`` -> ``smac``)."""
    name = PEER_ENV.get(name, name)
    if name not in REQUIREMENTS:
        raise KeyError(f"unknown peer environment {name!r}; known: {', '.join(sorted(REQUIREMENTS))} "
                       f"(or peers {', '.join(sorted(PEER_ENV))})")
    return name


def env_dir(name: str) -> Path:
    """The environment's folder (it may not exist yet)."""
    return envs_root() / env_name(name)


def python_path(name: str) -> Path:
    """The environment's interpreter (it may not exist yet)."""
    return env_dir(name) / "bin" / "python"


def _read_marker(name: str) -> dict | None:
    try:
        return json.loads((env_dir(name) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def is_ready(name: str) -> bool:
    """Whether the environment is fully built from the current requirement list."""
    marker = _read_marker(name)
    return (marker is not None and marker.get("requirements") == list(REQUIREMENTS[env_name(name)])
            and python_path(name).exists())


def versions(name: str) -> dict[str, str]:
    """Installed versions of the environment's key packages (and Python), as recorded when it was built.

    Empty when the environment is not built.
    """
    marker = _read_marker(name) if is_ready(name) else None
    return dict(marker.get("versions", {})) if marker else {}


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    # Parallel benchmark workers may all try to build the same environment on first use.
    root = envs_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{env_name(name)}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, quiet: bool) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None,
                          text=True)
    if proc.returncode != 0:
        tail = (proc.stdout or "")[-3000:]
        raise PeerEnvError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


_VERSION_SCRIPT = """
import importlib.metadata as m, json, platform, sys
out = {"python": platform.python_version()}
for name in sys.argv[1:]:
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        pass
print(json.dumps(out))
"""


def _installed_versions(name: str) -> dict[str, str]:
    out = subprocess.run([str(python_path(name)), "-c", _VERSION_SCRIPT, *VERSION_PACKAGES[name]],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def build(name: str, force: bool = False, quiet: bool = True) -> Path:
    """Build (or rebuild) one environment and return its interpreter; a no-op when it is ready and not ``force``.

    Runs ``python -m venv`` with this interpreter's base Python and one ``pip install`` of the pinned requirements.
    Raises ``PeerEnvError`` with pip's output tail when that fails.
    """
    name = env_name(name)
    with _lock(name):
        if is_ready(name) and not force:
            return python_path(name)
        folder = env_dir(name)
        if folder.exists():
            shutil.rmtree(folder)  # half-built or outdated: start clean
        _run([sys.executable, "-m", "venv", str(folder)], f"creating the {name} virtualenv", quiet)
        py = str(python_path(name))
        _run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--upgrade", "pip"],
             f"upgrading pip in {name}", quiet)
        _run([py, "-m", "pip", "install", "--disable-pip-version-check", *REQUIREMENTS[name]],
             f"installing {name} requirements", quiet)
        marker = {"requirements": list(REQUIREMENTS[name]), "versions": _installed_versions(name)}
        (folder / MARKER).write_text(json.dumps(marker, indent=1))
        return python_path(name)


def ensure(name: str) -> Path:
    """The environment's interpreter, building the environment first if needed (minutes, once).

    Set ``METABO_PEER_AUTO_SETUP=0`` to get an error instead of an automatic build.
    """
    if is_ready(name):
        return python_path(name)
    if os.environ.get("METABO_PEER_AUTO_SETUP", "1") == "0":
        raise PeerEnvError(f"peer environment {env_name(name)!r} is not built at {env_dir(name)} and "
                           "METABO_PEER_AUTO_SETUP=0; build it with metabo.bench.peers.envs.setup")
    return build(name)


def setup(names: Iterable[str], force: bool = False, quiet: bool = False) -> dict[str, Path]:
    """Build the environments for ``names`` (environment or peer names, e.g. ``hebo,smac-bb``); return
    environment name -> interpreter. Meant for a CLI flag such as ``metabo bench --setup-peers hebo,smac``."""
    out: dict[str, Path] = {}
    for name in names:
        env = env_name(name)
        if env not in out:
            out[env] = build(env, force=force, quiet=quiet)
    return out
