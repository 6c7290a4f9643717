"""How far a model's predictions are from the exact posterior of the prior it was trained on.

On tasks drawn from the pretraining prior's Gaussian processes (Matérn-5/2, the prior's lengthscales scaled with
sqrt(d) and its noise levels; no input warping or trend, so the exact posterior is known), each model predicts
64 query points from n uniform context points, and so does the exact GP posterior with the task's own kernel.
Both are scored by the mean negative log-likelihood of the query values on the model's scale (standardised by
the context, as serving does); the gap is what training could still gain on that kind of task.

    python benchmarks/oracle_gap.py src/metabo/weights/default.safetensors src/metabo/weights/wide.safetensors

Prints a markdown table: one row per (dimensions, context size), the exact posterior's NLL and each model's
(models narrower than the task are left out); ``--plot FILE.png`` also draws each model's gap to the exact
posterior against the context size, one line per dimension. Seeded: the same tasks for every model and run.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from metabo.model.bar_distribution import BarDistribution
from metabo.model.io import load_model
from metabo.normalise import context_loc_scale
from metabo.priors.gp import PriorConfig, stationary_kernel

TASKS = 64
QUERIES = 64
MATERN52 = 2  # the prior's kernel code for Matérn-5/2


def sample_tasks(d: int, n: int, g: torch.Generator, isotropic: bool = False) -> tuple[torch.Tensor, ...]:
    """Inputs (B, n + Q, d), values (B, n + Q) and covariance (B, n + Q, n + Q) of ``TASKS`` GP tasks
    (``isotropic``: one lengthscale for every input of a task)."""
    prior, dt = PriorConfig(), torch.float64
    x = torch.rand(TASKS, n + QUERIES, d, generator=g, dtype=dt)
    z = torch.randn(TASKS, d, generator=g, dtype=dt)
    if isotropic:
        z = z[:, :1].expand(TASKS, d)
    ls = torch.exp(prior.lengthscale_log_mean + prior.lengthscale_log_std * z) * math.sqrt(d)
    low, high = prior.noise_log10_range
    noise = 10 ** (low + (high - low) * torch.rand(TASKS, generator=g, dtype=dt) ** 2)
    nugget = (noise[:, None, None] + 1e-8) * torch.eye(n + QUERIES, dtype=dt)
    cov = stationary_kernel(x, x, ls, torch.full((TASKS,), MATERN52)) + nugget
    y = (torch.linalg.cholesky(cov) @ torch.randn(TASKS, n + QUERIES, 1, generator=g, dtype=dt))[..., 0]
    return x, y, cov


def exact_posterior(y: torch.Tensor, cov: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, Q) mean and standard deviation of the query values under the exact posterior, in raw units."""
    chol = torch.linalg.cholesky(cov[:, :n, :n])
    cross = cov[:, n:, :n]
    mean = (cross @ torch.cholesky_solve(y[:, :n, None], chol))[..., 0]
    reduction = (cross * torch.cholesky_solve(cross.transpose(1, 2), chol).transpose(1, 2)).sum(-1)
    var = (torch.diagonal(cov[:, n:, n:], dim1=1, dim2=2) - reduction).clamp_min(1e-12)
    return mean, var.sqrt()


def exact_nll(z: torch.Tensor, m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """(B, Q) NLL of the query values ``z`` under the exact posterior (mean ``m``, standard deviation ``s``), all
    on the context-standardised scale."""
    return 0.5 * math.log(2 * math.pi) + torch.log(s) + 0.5 * ((z - m) / s) ** 2


def exact_on_bars(bar: BarDistribution, z: torch.Tensor, m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """(B, Q) NLL of ``z`` under the exact posterior (as in ``exact_nll``) rendered on ``bar``'s buckets: the best
    any model with those buckets could score (each bucket gets the posterior's mass in it, the tails theirs)."""
    cdf = torch.special.ndtr((bar.borders.double() - m[..., None]) / s[..., None])
    mass = cdf[..., 1:] - cdf[..., :-1]
    mass[..., 0] += cdf[..., 0]
    mass[..., -1] += 1 - cdf[..., -1]
    return bar.nll(mass.clamp_min(1e-300).log().float(), z.float())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help=".safetensors models (each with its JSON card)")
    parser.add_argument("--dims", default="2,5,16,40")
    parser.add_argument("--contexts", default="8,16,32,50,100,150")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=None, help="write the gap against the context size to this PNG")
    parser.add_argument("--isotropic", action="store_true", help="tasks with one lengthscale for every input")
    parser.add_argument("--on-bars", action="store_true",
                        help="also the exact posterior rendered on the first model's buckets (their resolution's floor)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = {Path(p).as_posix(): load_model(p).eval() for p in args.models}
    first = next(iter(models.values()))
    on_bars = ["exact posterior on the first model's bars"] if args.on_bars else []
    print("| dimensions | context | exact posterior | " + " | ".join(on_bars + [f"`{p}`" for p in models]) + " |")
    print("|---:|---:|---:|" + "---:|" * (len(models) + len(on_bars)))
    g = torch.Generator().manual_seed(args.seed)
    gaps: dict[tuple[str, int], list[tuple[int, float]]] = {}  # (model, dimensions) -> (context, gap)
    for d in (int(v) for v in args.dims.split(",")):
        for n in (int(v) for v in args.contexts.split(",")):
            x, y, cov = sample_tasks(d, n, g, args.isotropic)
            loc, scale = context_loc_scale(y[:, :n])
            z = (y[:, n:] - loc) / scale
            keep = (z.abs() < 30).all(1)  # the models' targets are clamped at 30 (metabo.train.pretrain)
            mean, std = exact_posterior(y, cov, n)
            m, s = (mean - loc) / scale, std / scale
            exact = float(exact_nll(z, m, s)[keep].mean())
            cells = [f"{exact:.3f}"]
            if args.on_bars:
                cells.append(f"{float(exact_on_bars(first.bar, z, m, s)[keep].mean()):.3f}")
            for name, model in models.items():
                if d > model.cfg.max_dims:
                    cells.append("")
                    continue
                with torch.no_grad():
                    logits = model(x[:, :n].float(), ((y[:, :n] - loc) / scale).float(), x[:, n:].float())
                    nll = float(model.bar.nll(logits, z.float())[keep].mean())
                cells.append(f"{nll:.3f}")
                gaps.setdefault((name, d), []).append((n, nll - exact))
            print(f"| {d} | {n} | " + " | ".join(cells) + " |", flush=True)
    if args.plot:
        plot_gaps(gaps, args.plot)


def plot_gaps(gaps: dict[tuple[str, int], list[tuple[int, float]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({name for name, _ in gaps})
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        for (model, d), points in sorted(gaps.items(), key=lambda item: item[0][1]):
            if model == name:
                ax.plot(*zip(*points), marker="o", label=f"{d} dimensions")
        ax.set_title(Path(name).name)
        ax.set_xlabel("context points")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0][0].set_ylabel("NLL above the exact posterior (nats)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
