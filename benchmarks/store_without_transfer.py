"""Remove from a benchmark store every run that read related past studies (metabo's transfer variants, the
transfer peers), keeping those that read none (zero-shot metabo, TPE, GP, random, SMAC3, HEBO, ...) and the
reference searches: the start of a stage whose transfer optimisers read another corpus
(``CORPUS=... bash benchmarks/meta_stage.sh``).

    python benchmarks/store_without_transfer.py bench_results/meta_traces/lcbench.db
"""

from __future__ import annotations

import sqlite3
import sys

# Optimisers that read no related studies (metabo:<path> is zero-shot with another model).
NO_PAST_STUDIES = ("metabo", "metabo-subspace", "random", "tpe", "tpe-group", "gp", "cmaes", "smac-hpo", "smac-bb",
                   "hebo", "botorch")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    with sqlite3.connect(argv[0]) as db:
        names = [row[0] for row in db.execute("SELECT DISTINCT optimizer FROM runs")]
        drop = [n for n in names if n.split(":")[0] not in NO_PAST_STUDIES]
        for table in ("runs", "trials"):
            db.executemany(f"DELETE FROM {table} WHERE optimizer = ?", [(n,) for n in drop])
    print(f"{argv[0]}: removed the runs of {', '.join(drop) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
