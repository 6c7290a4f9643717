"""SQLite results store (stdlib ``sqlite3``).

Tables:

* ``problems``: name, dim, f_opt, random_median (the normalisation constants), plus family, ``exact`` (1: f_opt
  is the known optimum), where f_opt and the random median come from and how many random points the median
  used. For a problem without a known optimum ``f_opt`` is the best value seen so far (kept up to date by
  ``put_run`` and ``put_reference``);
* ``runs``: one row per finished run, keyed by (optimizer, problem, seed, budget), with the sampler's own
  startup size, error / fallback / warning counts, the first error text, wall time and library versions. A run
  with errors (the optimiser raised; random points stood in) is stored but is not *complete*
  (``complete_keys``): the runner runs it again;
* ``trials``: one row per evaluation: value, best_so_far, suggest_seconds (wall time of ``study.ask``), error
  flag (the optimiser raised while suggesting or being told), fallback flag (the point came from the random
  fallback) and the error text. Constrained and multi-objective problems (``problems.kind``) also store every
  objective value (``values_json``), the constraint values by name (``constraints_json``) and ``feasible``
  (NULL without constraints); there ``value`` is the first objective and ``best_so_far`` its best *feasible*
  value so far (``inf`` before the first feasible trial). Their problem rows carry ``kind`` and, for
  multi-objective problems, the hypervolume reference (``reference_json``: ideal, nadir, reference point,
  reference hypervolume and its source).
  Iterative problems (``pruning/...``, kind ``iterative``) also store each trial's ``state`` (``COMPLETE`` or
  ``PRUNED``; NULL for other problems: every such trial completed), its ``last_step`` reported and the
  ``epochs`` it consumed; there ``value`` is what Optuna holds as the trial's value (the final value of a
  complete trial, the last reported value of a pruned one) and ``best_so_far`` the best *complete* value so far
  (``inf`` before the first). A run stored with a pruner has ``<optimizer>@<pruner>`` as its optimiser
  (``metabo.bench.pruners``).

* ``reference_runs``: one row per long reference search (problem, method, seed, evaluations, best value and
  parameters), see ``metabo.bench.reference``.

Stores written before these columns and tables existed are migrated when opened (columns and tables are only
ever added; a problem row without ``exact`` counts as exact for BBOB, the only family such stores hold).

A run and its trials are written in one transaction, so a run row exists only for a finished run; an
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
CREATE TABLE IF NOT EXISTS reference_runs (
    problem TEXT NOT NULL, method TEXT NOT NULL, seed INTEGER NOT NULL, evaluations INTEGER NOT NULL,
    best_value REAL NOT NULL, best_params_json TEXT, seconds REAL, finished_at TEXT NOT NULL,
    PRIMARY KEY (problem, method, seed, evaluations)
);
CREATE TABLE IF NOT EXISTS trials (
    optimizer TEXT NOT NULL, problem TEXT NOT NULL, seed INTEGER NOT NULL, budget INTEGER NOT NULL,
    trial INTEGER NOT NULL, value REAL NOT NULL, best_so_far REAL NOT NULL, suggest_seconds REAL NOT NULL,
    error INTEGER NOT NULL, fallback INTEGER NOT NULL, error_text TEXT, params_json TEXT,
    PRIMARY KEY (optimizer, problem, seed, budget, trial)
);
"""

# columns added to ``problems`` and ``trials`` after the first release; old stores get them on open
PROBLEM_COLUMNS = {"family": "TEXT", "exact": "INTEGER", "f_opt_source": "TEXT", "random_median_points": "INTEGER",
                   "random_median_source": "TEXT", "kind": "TEXT", "reference_json": "TEXT"}
TRIAL_COLUMNS = {"values_json": "TEXT", "constraints_json": "TEXT", "feasible": "INTEGER", "state": "TEXT",
                 "last_step": "INTEGER", "epochs": "INTEGER"}
FEASIBLE = "(feasible IS NULL OR feasible = 1)"  # SQL: a trial without constraints is feasible
# SQL: a trial whose value is a final objective value (feasible, and not a pruned trial's intermediate value)
FINAL = f"({FEASIBLE} AND (state IS NULL OR state != 'PRUNED'))"
EXACT_FAMILIES = ("bbob",)  # families whose f_opt in a pre-migration store is exact


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
    values: tuple[float, ...] | None = None  # every objective (constrained and multi-objective problems)
    constraints: dict[str, float] | None = None  # constraint name -> value, feasible when <= 0
    feasible: bool | None = None  # None: the problem has no constraints
    state: str | None = None  # iterative problems: "COMPLETE" or "PRUNED"
    last_step: int | None = None  # iterative problems: the last step reported
    epochs: int | None = None  # iterative problems: epochs consumed

    @property
    def final(self) -> bool:
        """Whether ``value`` is a final objective value: feasible, and not a pruned trial's last reported value."""
        return self.feasible is not False and self.state != "PRUNED"


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
        try:
            with closing(self._connect()) as con, con:
                con.executescript(SCHEMA)
                self._migrate(con)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.path}: not a usable results store (SQLite: {exc})") from exc

    @classmethod
    def existing(cls, path: str | Path) -> "ResultStore":
        """The results database at ``path`` for reading: ``FileNotFoundError`` where there is none (reading a
        misspelt path must not create an empty store)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such results store")
        return cls(path)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60.0)

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        for table, columns in (("problems", PROBLEM_COLUMNS), ("trials", TRIAL_COLUMNS)):
            have = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column not in have:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def put_problem(self, name: str, dim: int, f_opt: float, random_median: float, *, family: str | None = None,
                    exact: bool = True, f_opt_source: str | None = None, random_median_points: int | None = None,
                    random_median_source: str | None = None, kind: str = "single",
                    reference: dict[str, object] | None = None) -> None:
        """Insert or update a problem's normalisation constants.

        For an inexact ``f_opt`` (a best value seen, not a known optimum) a better value already stored is kept.
        ``kind`` is ``single``, ``constrained`` or ``multi``; ``reference`` the hypervolume reference of a
        multi-objective problem.
        """
        family = family or name.split("/", 1)[0]
        with closing(self._connect()) as con, con:
            old = con.execute("SELECT f_opt, f_opt_source, exact FROM problems WHERE name = ?", (name,)).fetchone()
            if not exact and old is not None and not old[2] and old[0] is not None and old[0] <= f_opt:
                f_opt, f_opt_source = old[0], old[1]
            con.execute("INSERT OR REPLACE INTO problems (name, dim, f_opt, random_median, family, exact, f_opt_source,"
                        " random_median_points, random_median_source, kind, reference_json)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (name, dim, f_opt, random_median, family, int(exact), f_opt_source, random_median_points,
                         random_median_source, kind, json.dumps(reference) if reference is not None else None))

    def problem_row(self, name: str) -> dict[str, object] | None:
        """The stored constants of a problem (``exact`` filled in for pre-migration rows), or ``None``."""
        rows = self.problem_rows([name])
        return rows.get(name)

    def problem_rows(self, names: list[str] | None = None) -> dict[str, dict[str, object]]:
        """Stored constants by problem name (all problems, or those named)."""
        out = {}
        for r in self.rows("SELECT * FROM problems"):
            if names is not None and r["name"] not in names:
                continue
            row = dict(r)
            row["family"] = row.get("family") or row["name"].split("/", 1)[0]
            row["kind"] = row.get("kind") or "single"
            row["reference"] = json.loads(row.pop("reference_json", None) or "null")
            if row.get("exact") is None:
                row["exact"] = int(row["family"] in EXACT_FAMILIES)
            if row.get("f_opt_source") is None and row["exact"]:
                row["f_opt_source"] = "known optimum"
            out[row["name"]] = row
        return out

    def _lower_f_opt(self, con: sqlite3.Connection, problem: str, value: float, source: str) -> None:
        # only inexact references move: a known optimum stays what it is
        con.execute("UPDATE problems SET f_opt = ?, f_opt_source = ? WHERE name = ? AND exact = 0 AND f_opt > ?",
                    (value, source, problem, value))

    def put_reference(self, problem: str, method: str, seed: int, evaluations: int, best_value: float,
                      best_params: dict[str, object], seconds: float, finished_at: str) -> None:
        """Store a reference search and lower the problem's inexact ``f_opt`` if it found a better value."""
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR REPLACE INTO reference_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (problem, method, seed, evaluations, best_value, json.dumps(best_params, default=str),
                         seconds, finished_at))
            self._lower_f_opt(con, problem, best_value,
                              f"reference search ({method}, {evaluations} evaluations, seed {seed})")

    def reference_keys(self) -> set[tuple[str, int, int]]:
        """(problem, seed, evaluations) of the stored reference searches."""
        with closing(self._connect()) as con:
            return {tuple(r) for r in con.execute("SELECT problem, seed, evaluations FROM reference_runs")}

    def references(self) -> dict[str, dict[str, object]]:
        """Per problem: the current reference ``f_opt`` and ``random_median`` with how each was obtained.

        Exact problems keep their stored optimum. For the others ``f_opt`` is the best value ever seen: the
        stored value (random sample, reference searches, earlier runs) or any stored trial, whichever is lower.
        """
        out = self.problem_rows()
        best_trials = {r["problem"]: r for r in self.rows(
            f"SELECT problem, optimizer, seed, MIN(value) AS v FROM trials WHERE {FINAL} GROUP BY problem")}
        for name, row in out.items():
            t = best_trials.get(name)
            if not row["exact"] and t is not None and t["v"] is not None and t["v"] < row["f_opt"]:
                row["f_opt"] = t["v"]
                row["f_opt_source"] = f"best value seen in the store ({t['optimizer']} run, seed {t['seed']})"
            if row.get("random_median_source") is None:
                row["random_median_source"] = "median of 10,000 uniform random points (seed 20240101)"
        return out

    def complete_keys(self, with_errors: bool = False) -> set[RunKey]:
        """Keys of the complete runs: every trial stored and (unless ``with_errors``) the optimiser never raised,
        so no random fallback point stands in the optimiser's name."""
        query = """SELECT r.optimizer, r.problem, r.seed, r.budget FROM runs r
                   WHERE (SELECT COUNT(*) FROM trials t WHERE t.optimizer = r.optimizer AND t.problem = r.problem
                          AND t.seed = r.seed AND t.budget = r.budget) = r.budget"""
        if not with_errors:
            query += " AND r.n_errors = 0"
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
                "INSERT INTO trials (optimizer, problem, seed, budget, trial, value, best_so_far, suggest_seconds, "
                "error, fallback, error_text, params_json, values_json, constraints_json, feasible, state, last_step, "
                "epochs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [key + (t.index, t.value, t.best_so_far, t.suggest_seconds, int(t.error), int(t.fallback),
                        t.error_text, json.dumps(t.params),
                        None if t.values is None else json.dumps(list(t.values)),
                        None if t.constraints is None else json.dumps(t.constraints),
                        None if t.feasible is None else int(t.feasible), t.state, t.last_step, t.epochs)
                 for t in result.trials],
            )
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                key + (result.startup_trials, result.n_errors, result.n_fallbacks, sum(result.warnings.values()),
                       result.first_error, json.dumps(result.warnings), result.wall_seconds, result.finished_at,
                       json.dumps(result.info)),
            )
            finite = [t.value for t in result.trials
                      if t.final and t.value == t.value and abs(t.value) != float("inf")]
            if finite:
                self._lower_f_opt(con, k.problem, min(finite),
                                  f"best value seen in the store ({k.optimizer} run, seed {k.seed})")

    def rows(self, query: str, params: tuple = ()) -> Iterator[sqlite3.Row]:
        """Rows of a read-only query, as ``sqlite3.Row`` (access by column name)."""
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            yield from con.execute(query, params).fetchall()
