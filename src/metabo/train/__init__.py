"""Training: ``pretrain`` (synthetic prior), ``finetune`` (past studies) and ``nap`` (learned acquisition).

Each supplies its task sampler, loss and card fields; ``loop`` is the one training loop they run on.
"""

from __future__ import annotations

import platform
import sys


def provenance(threads: int) -> dict[str, str]:
    """Where a model was trained, for its card: hardware, Python and PyTorch versions."""
    import torch

    cpu = platform.processor() or "unknown cpu"
    return {"hardware": f"{platform.machine()} CPU ({cpu}), {threads} torch thread(s)",
            "python": sys.version.split()[0], "torch": torch.__version__}
