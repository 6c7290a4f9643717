"""Rename an optimiser's rows in bench stores, for when a bench name changes meaning (a new default): the rows
keep what they measured under a name that still says it.

    python benchmarks/rename_optimizer.py OLD NEW STORE [STORE ...] [--problems GLOB]

Refuses when a store already holds rows named NEW, so no two runs are ever mixed under one name.
"""

from __future__ import annotations

import argparse
import fnmatch
import sqlite3
import sys

TABLES = ("runs", "trials")


def rename(store: str, old: str, new: str, problems: str = "*") -> int:
    """Rows renamed in ``store`` (runs) on the problems matching ``problems``; raises ``SystemExit`` if ``new``
    is taken there."""
    con = sqlite3.connect(store)
    con.create_function("matches", 1, lambda name: fnmatch.fnmatchcase(name, problems))
    try:
        if con.execute("select count(*) from runs where optimizer = ? and matches(problem)", (new,)).fetchone()[0]:
            raise SystemExit(f"{store} already has runs named {new!r}")
        n = con.execute("select count(*) from runs where optimizer = ? and matches(problem)", (old,)).fetchone()[0]
        with con:
            for table in TABLES:
                con.execute(f"update {table} set optimizer = ? where optimizer = ? and matches(problem)", (new, old))
        return n
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--problems", default="*", help="only the runs of problems matching this glob")
    args = parser.parse_args(argv)
    for store in args.stores:
        n = rename(store, args.old, args.new, args.problems)
        print(f"{store}: {n} runs renamed {args.old} -> {args.new} ({args.problems})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
