"""SQLite results store (stdlib ``sqlite3``).

Tables:

* ``problems``: name, dim, f_opt, random_median (the normalisation constants);
* ``runs``: one row per *complete* run, keyed by (optimizer, problem, seed, budget), with the sampler's own
  startup size, error / fallback / warning counts, the first error text, wall time and library versions;
* ``trials``: one row per evaluation: value, best_so_far, suggest_seconds (wall time of ``study.ask``), error
  flag (the optimiser raised while suggesting or being told), fallback flag (the point came from the random
  fallback) and the error text.

A run and its trials are written in one transaction, so a run row exists only for a complete run; an
interrupted benchmark leaves no partial run behind and is resumed by running the missing runs.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS problems (
    name TEXT PRIMARY KEY, dim INTEGER NOT NULL, f_opt REAL NOT NULL, random_median REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    optimizer TEXT NOT NULL, problem TEXT NOT NULL, seed INTEGER NOT NULL, budget INTEGER NOT NULL,
    startup_trials INTEGER, n_errors INTEGER NOT NULL, n_fallbacks INTEGER NOT NULL, n_warnings INTEGER NOT NULL,
    first_error TEXT, warnings_json TEXT, wall_seconds REAL NOT NULL, finished_at TEXT NOT NULL,
    info_json TEXT,
    PRIMARY KEY (optimizer, problem, seed, budget)
);
CREATE TABLE IF NOT EXISTS trials (
    optimizer TEXT NOT NULL, problem TEXT NOT NULL, seed INTEGER NOT NULL, budget INTEGER NOT NULL,
    trial INTEGER NOT NULL, value REAL NOT NULL, best_so_far REAL NOT NULL, suggest_seconds REAL NOT NULL,
    error INTEGER NOT NULL, fallback INTEGER NOT NULL, error_text TEXT, params_json TEXT,
    PRIMARY KEY (optimizer, problem, seed, budget, trial)
);
"""


@dataclass(frozen=True)
class RunKey:
    """Identity of one run: an optimiser on a problem with a seed for a number of evaluations."""

    optimizer: str
    problem: str
    seed: int
    budget: int


@dataclass
class TrialRecord:
    """One evaluation of a run."""

    index: int
    value: float
    best_so_far: float
    suggest_seconds: float
    error: bool = False
    fallback: bool = False
    error_text: str | None = None
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class RunResult:
    """Everything a finished run reports back to the store."""

    key: RunKey
    trials: list[TrialRecord]
    startup_trials: int | None
    wall_seconds: float
    finished_at: str
    warnings: dict[str, int] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)

    @property
    def n_errors(self) -> int:
        return sum(t.error for t in self.trials) + int(bool(self.info.get("setup_error")))

    @property
    def n_fallbacks(self) -> int:
        return sum(t.fallback for t in self.trials)

    @property
    def first_error(self) -> str | None:
        if self.info.get("setup_error"):
            return str(self.info["setup_error"])
        return next((t.error_text for t in self.trials if t.error_text), None)


class ResultStore:
    """A results database at ``path`` (created with its folder if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60.0)

    def put_problem(self, name: str, dim: int, f_opt: float, random_median: float) -> None:
        """Insert or update a problem's normalisation constants."""
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR REPLACE INTO problems VALUES (?, ?, ?, ?)", (name, dim, f_opt, random_median))

    def complete_keys(self) -> set[RunKey]:
        """Keys of the runs whose every trial is stored."""
        query = """SELECT r.optimizer, r.problem, r.seed, r.budget FROM runs r
                   WHERE (SELECT COUNT(*) FROM trials t WHERE t.optimizer = r.optimizer AND t.problem = r.problem
                          AND t.seed = r.seed AND t.budget = r.budget) = r.budget"""
        with closing(self._connect()) as con:
            return {RunKey(*row) for row in con.execute(query)}

    def keys_with_errors(self) -> set[RunKey]:
        """Keys of the stored runs in which the optimiser raised at least once."""
        with closing(self._connect()) as con:
            return {RunKey(*row) for row in con.execute(
                "SELECT optimizer, problem, seed, budget FROM runs WHERE n_errors > 0")}

    def put_run(self, result: RunResult) -> None:
        """Write a finished run and its trials atomically, replacing any earlier copy of the same key."""
        k = result.key
        key = (k.optimizer, k.problem, k.seed, k.budget)
        where = "optimizer = ? AND problem = ? AND seed = ? AND budget = ?"
        with closing(self._connect()) as con, con:
            con.execute(f"DELETE FROM trials WHERE {where}", key)
            con.execute(f"DELETE FROM runs WHERE {where}", key)
            con.executemany(
                "INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [key + (t.index, t.value, t.best_so_far, t.suggest_seconds, int(t.error), int(t.fallback),
                        t.error_text, json.dumps(t.params)) for t in result.trials],
            )
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                key + (result.startup_trials, result.n_errors, result.n_fallbacks, sum(result.warnings.values()),
                       result.first_error, json.dumps(result.warnings), result.wall_seconds, result.finished_at,
                       json.dumps(result.info)),
            )

    def rows(self, query: str, params: tuple = ()) -> Iterator[sqlite3.Row]:
        """Rows of a read-only query, as ``sqlite3.Row`` (access by column name)."""
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            yield from con.execute(query, params).fetchall()
