"""BENCHMARKS.md assembly: stores and fragments become sections with command, machine and versions."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ioh")

from metabo.bench.compose import compose  # noqa: E402
from metabo.bench.problems import select_problems  # noqa: E402
from metabo.bench.runner import run_benchmark  # noqa: E402


def test_compose_writes_sections_plots_and_header(tmp_path: Path) -> None:
    store = tmp_path / "r.db"
    run_benchmark(["random", "tpe"], select_problems(["bbob/f01_i1_d2"]), range(2), 6, store, progress=False)
    fragment_dir = tmp_path / "frag"
    fragment_dir.mkdir()
    (fragment_dir / "curve.png").write_bytes(b"\x89PNG fake")
    (fragment_dir / "speed.md").write_text("# Speed\n\n| n | s |\n|---|---|\n| 10 | 0.01 |\n\n![curve](curve.png)\n")
    out = compose(tmp_path / "BENCHMARKS.md", [("BBOB tiny", store)], [("Speed", fragment_dir / "speed.md")],
                  command="metabo report --compose BENCHMARKS.md")
    text = out.read_text()
    assert "by `metabo report --compose BENCHMARKS.md`" in text
    assert "Machine:" in text and "logical cores" in text
    assert "## BBOB tiny" in text and "## Speed" in text and "### Speed" in text  # fragment headings demoted
    assert "| all | 6 | 2 | random |" in text and "| all | 6 | 2 | tpe |" in text
    assert "Versions:" in text and "optuna" in text
    for link in ("docs/benchmarks/bbob-tiny/regret_vs_evaluations.png", "docs/benchmarks/speed/curve.png"):
        assert link in text and (tmp_path / link).exists()


def test_compose_section_selects_optimisers_and_budgets(tmp_path: Path) -> None:
    store = tmp_path / "r.db"
    run_benchmark(["random", "tpe"], select_problems(["bbob/f01_i1_d2"]), range(2), 6, store, progress=False)
    out = compose(tmp_path / "B.md", [("Only TPE", f"{store}::tpe::2,4")], [], command="x")
    text = out.read_text()
    assert "| all | 2 | 2 | tpe |" in text and "| all | 4 | 2 | tpe |" in text
    assert "| random |" not in text and "| all | 6 |" not in text
    assert "Paired differences" not in text
    text = compose(tmp_path / "C.md", [("Paired", f"{store}::::4::random")], [], command="x").read_text()
    assert "### Paired differences from random" in text and "| all | 4 | 2 | tpe |" in text


def test_report_baseline_adds_paired_differences(tmp_path: Path) -> None:
    from metabo.bench.report import build_report

    store = tmp_path / "r.db"
    run_benchmark(["random", "tpe"], select_problems(["bbob/f01_i1_d2", "bbob/f08_i1_d2"]), range(2), 12, store,
                  progress=False)
    report = build_report(store, [12], tmp_path / "rep", n_boot=100, baseline="random")
    (row,) = [r for r in report.paired if r.group == "all"]
    by_name = {(r.optimizer, r.group): r for r in report.rows}
    assert row.optimizer == "tpe" and row.n_pairs == 4
    # the mean paired difference is the difference of the means over the same pairs
    assert row.difference == pytest.approx(by_name[("tpe", "all")].regret - by_name[("random", "all")].regret)
    assert row.difference_ci[0] <= row.difference <= row.difference_ci[1]
    assert row.wins + row.losses <= 4
    assert "## Paired differences from random" in report.markdown_path.read_text()
    with pytest.raises(ValueError, match="baseline"):
        build_report(store, [12], tmp_path / "rep2", baseline="nope")
