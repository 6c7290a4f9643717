"""Random-search peer worker: the protocol's reference and test double (standard library only).

Options (for tests): ``fail_on_ask`` (raise on that 1-based ask), ``crash_on_ask`` (exit the process without a
reply on that ask), ``noise`` (print junk to stdout on every ask, which must not reach the protocol stream),
``sleep`` (seconds to wait per ask).
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

import worker_protocol


class RandomSearch:
    """Uniform sampling in each parameter's (log) scale; remembers what it was told."""

    startup_trials = None

    def __init__(self, space: dict[str, dict[str, Any]], seed: int, options: dict[str, Any]) -> None:
        self.space = space
        self.rng = random.Random(seed)
        self.options = options
        self.asks = 0
        self.told: list[tuple[dict[str, Any], float, Any]] = []

    def tell(self, params: dict[str, Any], value: float, token: Any) -> None:
        self.told.append((params, value, token))

    def ask(self) -> tuple[dict[str, Any], Any]:
        self.asks += 1
        if self.options.get("noise"):
            print("noise on stdout", flush=True)
        if self.options.get("fail_on_ask") == self.asks:
            raise ValueError(f"planned failure on ask {self.asks} (told {len(self.told)})")
        if self.options.get("crash_on_ask") == self.asks:
            sys.stderr.write("crashing on purpose\n")
            sys.stderr.flush()
            import os

            os._exit(3)
        time.sleep(float(self.options.get("sleep", 0)))
        params: dict[str, Any] = {}
        for name, spec in self.space.items():
            if spec["type"] == "categorical":
                params[name] = self.rng.randrange(spec["n"])
            else:
                params[name] = worker_protocol.unit_to_value(spec, self.rng.random())
        return params, self.asks


if __name__ == "__main__":
    worker_protocol.serve(RandomSearch)
