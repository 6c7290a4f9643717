"""The load and fault suite's smoke run (benchmarks/reliability.py --quick) on SQLite and JournalStorage: workers
in separate processes on one study lose no trial, repeat no parameter set and keep model-driven suggestions
min_distance apart; a worker killed mid-trial, an objective that raises, returns NaN or hangs still leave the
study at its COMPLETE count with nothing RUNNING."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_reliability_suite(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "reliability.py"), "--quick", "--storages", "sqlite,journal",
               "--workers", "2", "--ray", "no", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "reliability.json").read_text())

    assert [(r["storage"], r["workers"]) for r in results["load"]] == [("sqlite", 2), ("journal", 2)]
    for run in results["load"]:
        assert run["completed"] == run["trials"] == 12
        assert run["lost"] == 0 and run["duplicates"] == 0 and run["close_pairs"] == 0
        assert run["model_driven"] >= 4  # the spacing check saw model-driven trials
        assert run["timing"]["n"] == run["model_driven"] and run["timing"]["sample_cpu"]["p50"] > 0

    faults = {r["fault"]: r for r in results["faults"]}
    assert sorted(faults) == ["hang", "kill", "nan", "raise"]
    for fault in faults.values():
        assert fault["ok"] and fault["fault_happened"], fault
        assert fault["completed"] >= fault["target"] and not fault["unfinished"]
    assert faults["kill"]["killed_workers"] == [0] and faults["kill"]["requeued"] >= 1
    assert faults["hang"]["states"].get("FAIL", 0) >= 1
    # PostgreSQL was not asked for: the restart fault is skipped with a reason, not silently
    assert any(s["part"] == "fault restart" for s in results["skipped"])
    assert all(bar["met"] for bar in results["bars"])
    assert "| sqlite | 2 | 12 | 12 | 0 | 0 |" in (tmp_path / "reliability.md").read_text()
