"""The related past studies every transfer optimiser of a benchmark run reads (one corpus for all of them).

For a YAHPO problem the past studies come from the scenario's *train* instances, as one of:

* ``random``: 100 uniformly random evaluations per instance (``yahpo:<scenario>``), the default;
* ``traces``: optimisation traces, one study per instance (``<traces dir>/<scenario>.db``, an Optuna storage
  written by ``benchmarks/trace_corpus.py``), as users' past studies are;
* ``both``: the two together.

``metabo bench --related-corpus KIND --traces-dir DIR`` sets it (``set_related_corpus``); it is exported to the
environment (``METABO_BENCH_RELATED``, ``METABO_BENCH_TRACES``) so that spawned benchmark workers read the same
corpus, and every run records it (``describe_related_corpus``). metabo's transfer variants, ``warmstart-tpe``
and the Syne Tune transfer peers all take their past studies from ``related_sources``.
"""

from __future__ import annotations

import os
from pathlib import Path

RELATED_CORPORA = ("random", "traces", "both")
DEFAULT_TRACES_DIR = Path("bench_results/traces")
KIND_ENV = "METABO_BENCH_RELATED"
TRACES_ENV = "METABO_BENCH_TRACES"


def set_related_corpus(kind: str = "random", traces_dir: str | Path | None = None) -> None:
    """Use past studies of ``kind`` (``RELATED_CORPORA``) in this process and the workers it spawns."""
    if kind not in RELATED_CORPORA:
        raise ValueError(f"related corpus must be one of {', '.join(RELATED_CORPORA)}, got {kind!r}")
    os.environ[KIND_ENV] = kind
    os.environ[TRACES_ENV] = str(Path(traces_dir or DEFAULT_TRACES_DIR).expanduser().resolve())


def related_corpus() -> tuple[str, Path]:
    """The corpus kind and the traces folder in use."""
    kind = os.environ.get(KIND_ENV, "random")
    if kind not in RELATED_CORPORA:
        raise ValueError(f"{KIND_ENV} must be one of {', '.join(RELATED_CORPORA)}, got {kind!r}")
    return kind, Path(os.environ.get(TRACES_ENV) or DEFAULT_TRACES_DIR)


def related_sources(scenario: str) -> list[str]:
    """The past-study sources (``metabo.meta.load_corpus``) of a YAHPO scenario under the corpus in use.

    Raises:
        FileNotFoundError: traces are asked for and ``<traces dir>/<scenario>.db`` does not exist.
    """
    kind, traces_dir = related_corpus()
    sources = [f"yahpo:{scenario}"] if kind in ("random", "both") else []
    if kind in ("traces", "both"):
        path = traces_dir / f"{scenario}.db"
        if not path.is_file():
            raise FileNotFoundError(f"no trace corpus {path}: write it with python benchmarks/trace_corpus.py "
                                    f"--scenario {scenario} --out {traces_dir}")
        sources.append(f"sqlite:///{path}")
    return sources


def describe_related_corpus() -> dict[str, str]:
    """What a run records about its related corpus."""
    kind, traces_dir = related_corpus()
    return {"kind": kind, **({"traces_dir": str(traces_dir)} if kind != "random" else {})}
