"""Time of a pretraining step of the default-sized model in float32 and with bfloat16 forward passes.

    python benchmarks/train_step_speed.py [--steps 30] [--threads 1]

Each precision trains a fresh copy of the default model for ``--steps`` steps through ``metabo.train.loop.train``
(the loop `metabo pretrain` runs: forward pass, loss, backward pass, gradient clipping, AdamW update) on the
same seeded batches, drawn before timing so the prior's sampling is not counted, after two warm-up steps. Prints
a markdown table of the mean seconds per step. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse

import torch

from metabo.model.io import load_model, with_task_slots
from metabo.priors.gp import GPPrior
from metabo.train.loop import PRECISIONS, LoopConfig, train
from metabo.train.pretrain import TrainConfig, _sample_batch, task_loss

WARMUP_STEPS = 2


def seconds_per_step(batches: list, precision: str, g: torch.Generator) -> float:
    model = with_task_slots(load_model("src/metabo/weights/default.safetensors"), 0)

    def losses(step: int, rng: torch.Generator):
        yield task_loss(model, batches[step % len(batches)], rng).mean()

    train(model, losses, LoopConfig(steps=WARMUP_STEPS, lr=1e-5, precision=precision, progress=False), rng=g)
    state = train(model, losses, LoopConfig(steps=len(batches), lr=1e-5, precision=precision, progress=False), rng=g)
    return state.wall_seconds / state.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig()
    g = torch.Generator().manual_seed(0)
    batches = [_sample_batch(GPPrior(cfg.prior), cfg, g) for _ in range(args.steps)]
    print(f"| precision | mean seconds per step ({args.threads} thread(s), {args.steps} steps) |")
    print("|---|---:|")
    for precision in PRECISIONS:
        print(f"| {precision} | {seconds_per_step(batches, precision, g):.3f} |", flush=True)


if __name__ == "__main__":
    main()
