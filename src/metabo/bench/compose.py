"""Assemble BENCHMARKS.md from benchmark stores and the Markdown fragments of the other benchmark scripts.

Every section is a store rendered by ``build_report`` (its plots copied next to the document) or a fragment file
(for example ``benchmarks/speed.py``'s table). The header states the command that produced the document, the
date, the machine and the library versions, as the benchmark protocol requires.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shutil
from pathlib import Path
from typing import Sequence

from metabo.bench.report import build_report
from metabo.bench.store import ResultStore


def machine_description() -> str:
    """CPU model, logical core count, memory and OS of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return f"{cpu}, {os.cpu_count()} logical cores{mem}, {platform.system()} {platform.release()}"


def store_versions(store: str | Path) -> dict[str, list[str]]:
    """Library versions recorded by the runs of a store (name -> sorted distinct versions)."""
    seen: dict[str, set[str]] = {}
    for row in ResultStore.existing(store).rows("SELECT info_json FROM runs"):
        info = json.loads(row["info_json"] or "{}")
        for source in (info.get("versions") or {}, (info.get("peer") or {}).get("versions") or {}):
            for name, version in source.items():
                if isinstance(version, str):
                    seen.setdefault(name, set()).add(version)
    return {k: sorted(v) for k, v in sorted(seen.items())}


def _demote(markdown: str, levels: int = 2) -> str:
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + levels) + " ", markdown, flags=re.M)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def compose(out: str | Path, stores: Sequence[tuple[str, str | Path]], fragments: Sequence[tuple[str, str | Path]],
            command: str, budgets: Sequence[int] | None = None, intro: str = "") -> Path:
    """Write the combined document to ``out`` (plots under ``<out dir>/docs/benchmarks/<section>/``).

    Args:
        out: the Markdown file to write (e.g. ``BENCHMARKS.md``).
        stores: (section title, results store) pairs, each rendered with ``build_report``; a store path ending in
            ``::a,b,c`` reports only optimisers a, b and c, a further ``::5,10,50`` sets that section's budgets,
            and a further ``::name`` adds paired differences from optimiser ``name`` (``build_report``'s baseline).
        fragments: (section title, Markdown file) pairs included verbatim; images they reference by a relative
            name are copied next to the document's assets.
        command: the command line that produced the document, stated in its header.
        budgets: evaluation counts for the store tables (default: each store's half and full budget).
        intro: optional paragraph under the title.
    """
    out = Path(out)
    assets = out.parent / "docs" / "benchmarks"
    lines = ["# metabo benchmarks", "",
             f"Generated {_dt.date.today().isoformat()} by `{command}`.", "",
             f"Machine: {machine_description()}.", ""]
    if intro:
        lines += [intro, ""]
    for title, store_spec in stores:
        path, _, rest = str(store_spec).partition("::")
        only, _, rest = rest.partition("::")
        own_budgets, _, baseline = rest.partition("::")
        store = Path(path)
        section = assets / _slug(title)
        section_budgets = [int(b) for b in own_budgets.split(",") if b.strip()] or budgets
        report = build_report(store, section_budgets, section, optimizers=[o for o in only.split(",") if o] or None,
                              baseline=baseline or None)
        body = report.markdown_path.read_text().split("\n", 1)[1]  # drop the report's own title
        for plot in report.plots:
            body += f"\n![{plot.stem.replace('_', ' ')}]({plot.relative_to(out.parent).as_posix()})\n"
        versions = store_versions(store)
        lines += [f"## {title}", "", _demote(body).strip(), "",
                  "Versions: " + ", ".join(f"{k} {'/'.join(v)}" for k, v in versions.items()) + ".", ""]
    for title, fragment in fragments:
        text = Path(fragment).read_text()
        section = assets / _slug(title)
        section.mkdir(parents=True, exist_ok=True)

        def relink(match: re.Match[str]) -> str:
            src = Path(fragment).parent / match.group(2)
            if not src.exists():
                return match.group(0)
            shutil.copy2(src, section / src.name)
            return f"![{match.group(1)}]({(section / src.name).relative_to(out.parent).as_posix()})"

        text = re.sub(r"!\[([^\]]*)\]\(([^)/][^)]*)\)", relink, text)
        lines += [f"## {title}", "", _demote(text).strip(), ""]
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out
