"""Import structure of the package: every module imports, the library never imports the benchmark harness
``metabo.bench``, and there is no import cycle between metabo's subpackages.

The last two are read from the source with ``ast`` (module-level and function-level imports alike, plus
``importlib.import_module("metabo...")`` calls with a literal name), so a function-local import cannot hide
an edge.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections import defaultdict
from pathlib import Path

import metabo

SRC = Path(metabo.__file__).resolve().parent  # .../src/metabo
BENCH = "metabo.bench"
CLI_DISPATCH = ("metabo.cli", "metabo.bench.cli")  # the only library -> bench import: the CLI's dispatch


def _module_name(path: Path) -> str:
    parts = ("metabo", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    """Whether ``name`` (``metabo.x.y``) is a module or package of the source tree."""
    rel = Path(*name.split(".")[1:]) if name != "metabo" else Path()
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported metabo module, line) for every import in the file, at any depth."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from a import b`` imports the module a.b when b is one, else an attribute of a
            names = [f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target for a in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        out += [(n, node.lineno) for n in names if n == "metabo" or n.startswith("metabo.")]
    return out


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _node(module: str) -> str:
    """Graph node of a module: its subpackage (``metabo.meta``) or top-level module (``metabo.sampler``)."""
    parts = module.split(".")
    return "metabo" if len(parts) == 1 else ".".join(parts[:2])


def test_every_module_imports():
    failures: dict[str, str] = {}
    skipped: dict[str, str] = {}

    def walk_error(name: str) -> None:  # a package that cannot be imported is reported below, by name
        pass

    names = ["metabo", *(m.name for m in pkgutil.walk_packages(metabo.__path__, "metabo.", onerror=walk_error))]
    assert len(names) > 30, names  # the walk found the package
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing and missing.split(".")[0] != "metabo":
                # an optional third-party dependency (or, for the peers' ``*_worker.py`` scripts run by
                # path, their sibling ``worker_protocol``)
                skipped[name] = missing
            else:
                failures[name] = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - every failure is reported at once
            failures[name] = f"{type(exc).__name__}: {exc}"
    assert not failures, "\n".join(f"{k}: {v}" for k, v in failures.items())
    for core in ("metabo.cli", "metabo.meta.yahpo", "metabo.bench.problems.yahpo", "metabo.train.nap"):
        assert core in names and core not in skipped, core


def test_library_never_imports_the_benchmark_harness():
    offending = []
    for path in _sources():
        module = _module_name(path)
        if module == BENCH or module.startswith(BENCH + "."):
            continue
        for target, line in _imports(path):
            if target != BENCH and not target.startswith(BENCH + "."):
                continue
            if (module, target) == CLI_DISPATCH:
                continue
            offending.append(f"{path.relative_to(SRC.parent)}:{line} imports {target}")
    assert not offending, "outside metabo/bench/, only metabo/cli.py may import metabo.bench.cli:\n" + "\n".join(
        offending)


def test_cli_dispatches_to_the_bench_cli():
    bench_imports = {t for t, _ in _imports(SRC / "cli.py") if t == BENCH or t.startswith(BENCH + ".")}
    assert bench_imports == {CLI_DISPATCH[1]}, f"metabo/cli.py imports {sorted(bench_imports)}"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle ``[a, b, ..., a]`` of the directed graph, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_no_package_level_import_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in _sources():
        src = _node(_module_name(path))
        for target, line in _imports(path):
            dst = _node(target)
            if dst != src:
                graph[src].add(dst)
                place = f"{path.relative_to(SRC.parent)}:{line}"
                if place not in where[(src, dst)]:
                    where[(src, dst)].append(place)
    assert {"metabo.meta", "metabo.model"} <= graph["metabo.bench"]  # the scan saw imports
    cycle = _find_cycle(graph)
    assert cycle is None, "package-level import cycle " + " -> ".join(cycle) + "\n" + "\n".join(
        f"{a} -> {b}: {', '.join(where[(a, b)])}" for a, b in zip(cycle, cycle[1:]))
