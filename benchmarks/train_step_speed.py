"""Time of a pretraining step of the default-sized model in float32 and with bfloat16 forward passes.

    python benchmarks/train_step_speed.py [--steps 30] [--threads 1]

The same seeded batches for both precisions (drawn before timing, so the prior's sampling is not counted); each
step is a forward pass, the loss, the backward pass and an AdamW update, as `metabo pretrain` takes it. Prints a
markdown table of the median seconds per step. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from metabo.model.io import load_model, with_task_slots
from metabo.priors.gp import GPPrior
from metabo.train.pretrain import TrainConfig, _sample_batch, task_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig()
    g = torch.Generator().manual_seed(0)
    batches = [_sample_batch(GPPrior(cfg.prior), cfg, g) for _ in range(args.steps)]
    print(f"| precision | median seconds per step ({args.threads} thread(s), {args.steps} steps) |")
    print("|---|---:|")
    for precision in ("fp32", "bf16"):
        model = with_task_slots(load_model("src/metabo/weights/default.safetensors"), 0)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        times = []
        for batch in batches:
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = task_loss(model, batch, g).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - start)
        print(f"| {precision} | {statistics.median(times):.3f} |", flush=True)


if __name__ == "__main__":
    main()
