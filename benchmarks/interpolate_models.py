"""Weight-space interpolation between a base model and a model fine-tuned from it (WiSE-FT, Wortsman et al.
2022): ``alpha * fine_tuned + (1 - alpha) * base``, tensor by tensor. The base is first widened to the
fine-tuned model's inputs and task slots as fine-tuning widens it (new weights at zero), so the two align.

    python benchmarks/interpolate_models.py --alpha 0.5 --out runs/wise/yahpo_lcbench.safetensors \\
        src/metabo/weights/multitask.safetensors src/metabo/weights/yahpo_lcbench.safetensors

Writes the interpolated model and its card (the command, both sources and their sha256).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from metabo.model.io import file_sha256, load_model, read_card, save_model, with_task_slots


def interpolate(base_path: Path, tuned_path: Path, alpha: float, out: Path, command: str) -> Path:
    tuned = load_model(tuned_path)
    base = with_task_slots(load_model(base_path), tuned.cfg.task_slots, max_dims=tuned.cfg.max_dims)
    if base.cfg != tuned.cfg:
        raise SystemExit(f"the models differ in architecture: {base.cfg} against {tuned.cfg}")
    tuned_state, base_state = tuned.state_dict(), base.state_dict()
    if tuned_state.keys() != base_state.keys():
        raise SystemExit("the models hold different tensors")
    with torch.no_grad():
        mixed = {k: (alpha * tuned_state[k].double() + (1 - alpha) * base_state[k].double()).to(tuned_state[k].dtype)
                 if tuned_state[k].is_floating_point() else tuned_state[k] for k in tuned_state}
    tuned.load_state_dict(mixed)
    card = {"name": out.stem, "command": command, "kind": "interpolated", "alpha": alpha,
            "base_model": {"path": str(base_path), "sha256": file_sha256(base_path)},
            "fine_tuned_model": {"path": str(tuned_path), "sha256": file_sha256(tuned_path),
                                 "name": read_card(tuned_path).get("name")}}
    return save_model(tuned, out, card)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("fine_tuned", type=Path)
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the fine-tuned model, in [0, 1]")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not 0.0 <= args.alpha <= 1.0:
        raise SystemExit(f"--alpha must be in [0, 1], got {args.alpha}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/interpolate_models.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    print(f"wrote {interpolate(args.base, args.fine_tuned, args.alpha, args.out, command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
