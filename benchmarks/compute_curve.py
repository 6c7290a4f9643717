"""Compute-to-quality curve: BBOB regret of metabo against the pretraining steps that produced its model.

Every snapshot a pretraining run wrote (``<run>/snapshots/stepNNNNNN.safetensors``, plus the run's final
``model.safetensors``) is benchmarked as optimiser ``metabo:<path>`` on a BBOB subset, with the same seeds and
budget as the peers. Peer curves (random, tpe, gp) are read from an existing store of the zero-shot benchmark
(``--peer-store``, default the one ``bbob_zero_shot.py`` writes) for the same problem/seed pairs, so no peer run
is repeated. Prints and writes (``<out>/compute_curve.md``, ``.json``, ``.png``) mean normalised regret at the
budget against steps and the CPU wall time each snapshot took to train.

    python benchmarks/compute_curve.py --run runs/tnp-d128-l4-s0
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from metabo.bench.cli import add_run_options
from metabo.bench.problems import select_problems
from metabo.bench.report import Curves, load_curves
from metabo.bench.runner import run_benchmark

DEFAULT_FUNCTIONS = (1, 3, 6, 8, 10, 15, 17, 21)  # separable, ill-conditioned, multimodal, weak structure
PEERS = ("random", "tpe", "gp")


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def snapshots(run_dir: Path) -> list[tuple[int, float, Path]]:
    """(steps, training wall seconds, path) of every snapshot and the final model of a pretraining run."""
    found: dict[int, tuple[int, float, Path]] = {}
    paths = sorted((run_dir / "snapshots").glob("step*.safetensors")) + [run_dir / "model.safetensors"]
    for path in paths:
        card_path = path.with_suffix(".json")
        if not path.exists() or not card_path.exists():
            continue
        card = json.loads(card_path.read_text())
        steps = int(card.get("steps") or re.sub(r"\D", "", path.stem) or 0)
        found[steps] = (steps, float(card.get("wall_seconds", float("nan"))), path)
    return [found[s] for s in sorted(found)]


def mean_regret(curves: Curves, optimizer: str, pairs: list[tuple[str, int]], n: int) -> float:
    return float(np.mean(curves.regret(optimizer, pairs, n)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="pretraining run folder (with snapshots/)")
    p.add_argument("--functions", type=_ints, default=list(DEFAULT_FUNCTIONS), help="BBOB function ids")
    p.add_argument("--dims", type=_ints, default=[2, 5], help="dimensions (default 2,5)")
    p.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 (default 2)")
    p.add_argument("--budget", type=int, default=50, help="evaluations per run (default 50)")
    p.add_argument("--steps", type=_ints, default=None, help="only these snapshot steps (default all)")
    p.add_argument("--peer-store", default="bench_results/bbob/results.db", help="store holding the peers' runs")
    p.add_argument("--out", default="bench_results/compute_curve", help="output folder")
    add_run_options(p)
    args = p.parse_args(argv)

    snaps = [s for s in snapshots(Path(args.run)) if args.steps is None or s[0] in args.steps]
    if not snaps:
        print(f"no snapshots with model cards under {args.run}", file=sys.stderr)
        return 2
    problems = select_problems([f"bbob/f{f:02d}_i1_d{d}" for d in args.dims for f in args.functions])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "results.db"
    names = {steps: f"metabo:{path}" for steps, _, path in snaps}
    counts = run_benchmark(list(names.values()), problems, range(args.seeds), args.budget, store,
                           workers=args.workers, threads=args.threads, progress=not args.no_progress)

    ours = load_curves(store)
    peers = load_curves(args.peer_store) if Path(args.peer_store).exists() else None
    wanted = {(pr.name, s) for pr in problems for s in range(args.seeds)}
    pairs = sorted(wanted.intersection(ours.common_pairs(args.budget, list(names.values()))))
    peer_names = [o for o in PEERS if peers is not None and o in peers.best]
    if peers is not None:
        pairs = [q for q in pairs if all(len(peers.best[o].get(q, ())) >= args.budget for o in peer_names)]
    budgets = sorted({args.budget // 2, args.budget})
    rows = []
    for steps, wall, _ in snaps:
        rows.append({"steps": steps, "train_hours": wall / 3600,
                     **{f"regret@{n}": mean_regret(ours, names[steps], pairs, n) for n in budgets}})
    peer_rows = {o: {f"regret@{n}": mean_regret(peers, o, pairs, n) for n in budgets} for o in peer_names}
    summary = {"run": args.run, "pairs": len(pairs), "budget": args.budget, "snapshots": rows, "peers": peer_rows,
               "counts": counts, "command": "python " + " ".join(sys.argv)}
    (out / "compute_curve.json").write_text(json.dumps(summary, indent=2))

    header = "| pretraining steps | CPU hours | " + " | ".join(f"mean regret @{n}" for n in budgets) + " |"
    lines = [header, "|" + "---|" * (2 + len(budgets))]
    lines += [f"| {r['steps']} | {r['train_hours']:.2f} | " + " | ".join(f"{r[f'regret@{n}']:.4f}" for n in budgets)
              + " |" for r in rows]
    lines += [f"| {o} (peer) | | " + " | ".join(f"{v[f'regret@{n}']:.4f}" for n in budgets) + " |"
              for o, v in peer_rows.items()]
    text = "\n".join(lines)
    (out / "compute_curve.md").write_text(
        f"Mean normalised regret of metabo with each pretraining snapshot of `{args.run}` (CPU hours: the run's "
        f"training wall time up to that step, one torch thread on this machine), on {len(pairs)} BBOB "
        f"problem/seed pairs (functions {','.join(map(str, args.functions))}, d{','.join(map(str, args.dims))}, "
        f"{args.seeds} seeds), budget {args.budget}; peers on the same pairs. Command: `{summary['command']}`.\n\n"
        f"{text}\n\n![regret against pretraining steps](compute_curve.png)\n")
    print(text)
    _plot(rows, peer_rows, args.budget, out / "compute_curve.png")
    return 0


def _plot(rows: list[dict[str, float]], peer_rows: dict[str, dict[str, float]], budget: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["steps"] for r in rows], [r[f"regret@{budget}"] for r in rows], "o-", label="metabo (snapshot)")
    for name, values in peer_rows.items():
        ax.axhline(values[f"regret@{budget}"], ls="--", lw=1, label=name, color={"gp": "C2", "tpe": "C1"}.get(name, "C7"))
    ax.set_xlabel("pretraining steps")
    ax.set_ylabel(f"mean normalised regret @ {budget}")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("What more pretraining buys (BBOB subset)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
