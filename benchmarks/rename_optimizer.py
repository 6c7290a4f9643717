"""Rename an optimiser's rows in bench stores, for when a bench name changes meaning (a new default): the rows
keep what they measured under a name that still says it.

    python benchmarks/rename_optimizer.py OLD NEW STORE [STORE ...]

Refuses when a store already holds rows named NEW, so no two runs are ever mixed under one name.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

TABLES = ("runs", "trials")


def rename(store: str, old: str, new: str) -> int:
    """Rows renamed in ``store`` (runs); raises ``SystemExit`` if ``new`` is taken there."""
    con = sqlite3.connect(store)
    try:
        if con.execute("select count(*) from runs where optimizer = ?", (new,)).fetchone()[0]:
            raise SystemExit(f"{store} already has runs named {new!r}")
        n = con.execute("select count(*) from runs where optimizer = ?", (old,)).fetchone()[0]
        with con:
            for table in TABLES:
                con.execute(f"update {table} set optimizer = ? where optimizer = ?", (new, old))
        return n
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("stores", nargs="+")
    args = parser.parse_args(argv)
    for store in args.stores:
        print(f"{store}: {rename(store, args.old, args.new)} runs renamed {args.old} -> {args.new}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
