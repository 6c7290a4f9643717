"""End-to-end smoke test of ``metabo bench --quick`` through the command line, into a temporary folder."""

from __future__ import annotations

import pytest

pytest.importorskip("ioh", reason="the quick profile's BBOB problem needs ioh (the bench or test extra)")


def test_bench_quick_writes_store_and_report(tmp_path, capsys):
    from metabo.bench.problems import family_available
    from metabo.cli import main

    store = tmp_path / "quick" / "bench.db"
    assert main(["bench", "--quick", "--store", str(store), "--no-progress"]) == 0
    assert store.is_file()
    report = (tmp_path / "quick" / "report" / "report.md").read_text()
    for optimizer in ("random", "tpe"):
        assert f"| all | 12 | 4 | {optimizer} |" in report or f"| all | 12 | 2 | {optimizer} |" in report
    assert "bbob: 1 problem(s); f_opt: known optimum" in report
    assert "## Reference values" in report
    if family_available("yahpo"):  # one YAHPO validation instance joins when its data is present
        assert "| yahpo/lcbench/" in report
    assert "report:" in capsys.readouterr().out
