"""Optuna's own sampler conformance tests, run with TNPSampler (issue 17).

Downloads the sdist of exactly the installed Optuna version from PyPI (``pip download``, cached in
``$METABO_OPTUNA_SDIST`` or ``~/.cache/metabo/optuna-sdist``, reused when present), extracts
``tests/samplers_tests/test_samplers.py`` and the ``optuna.testing`` modules it imports into a temporary folder,
adds TNPSampler to the file's sampler lists, and runs pytest on TNPSampler's cases. Prints the Optuna version, the
passed / failed / skipped counts and the failures; exits 1 when a TNPSampler case fails or errs.

    python benchmarks/optuna_conformance.py              # TNPSampler's cases (a few minutes on 2 cores)
    python benchmarks/optuna_conformance.py --all        # the whole file: Optuna's samplers as a baseline too
    python benchmarks/optuna_conformance.py --keep DIR   # leave the patched suite in DIR (to rerun one case)
    python benchmarks/optuna_conformance.py -- -x        # anything after -- goes to pytest

TNPSampler joins the lists as GPSampler does (``n_startup_trials=0``, the shipped default model), with the id
``TNPSampler`` (so ``-k TNPSampler`` selects its cases):

* every ``sampler`` fixture of a ``*SamplerTestCase`` class (basic, relative, multi-objective, and any new one),
  except ``SingleOnlySamplerTestCase``: TNPSampler supports several objectives;
* ``sampler_class_with_seed`` (reproducibility with a seed, ``reseed_rng``, other processes);
* ``test_sampler_reseed_rng``'s list, as ``(sampler, expected_has_rng=False, expected_has_another_sampler=True)``:
  that test looks for an attribute of Optuna's private ``LazyRandomState`` class, and TNPSampler keeps a numpy
  ``RandomState`` (its reseeding is tested in ``tests/sampler/test_options.py``); its independent sampler
  must be reseeded, which the test checks.

The file's imports of ``optuna.testing.<module>`` are rewritten to the copies taken from the same sdist. A list
the patcher cannot find is an error, so a new Optuna version whose file is laid out differently is noticed.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

TEST_FILE = "tests/samplers_tests/test_samplers.py"
ID = "TNPSampler"
MAKE = "metabo.TNPSampler(n_startup_trials=0)"
MAKE_WITH_SEED = "metabo.TNPSampler(seed=seed, n_startup_trials=0)"
NOT_FOR_TNP = {"SingleOnlySamplerTestCase"}  # samplers that must refuse several objectives
RESEED_ARGNAMES = "sampler_class_reseed_rng,expected_has_rng,expected_has_another_sampler"


def cache_dir() -> Path:
    return Path(os.environ.get("METABO_OPTUNA_SDIST") or Path.home() / ".cache" / "metabo" / "optuna-sdist")


def sdist(version: str) -> Path:
    """The sdist of Optuna ``version``, downloaded from PyPI once."""
    folder = cache_dir()
    found = sorted(folder.glob(f"optuna-{version}.tar.gz"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", f"optuna=={version}", "--no-binary", ":all:",
                    "--no-deps", "-d", str(folder)], check=True)
    found = sorted(folder.glob(f"optuna-{version}.tar.gz"))
    if not found:
        sys.exit(f"pip download left no optuna-{version}.tar.gz in {folder}")
    return found[0]


def _member(tar: tarfile.TarFile, path: str) -> str:
    prefix = tar.getnames()[0].split("/")[0]
    handle = tar.extractfile(f"{prefix}/{path}")
    if handle is None:
        raise FileNotFoundError(path)
    return handle.read().decode()


def _insert_after_last(node: ast.List | ast.Dict) -> tuple[int, int]:
    """The (line index, byte column) just after the last element of ``node`` (just after its opening bracket
    when it is empty): inserting ``, item`` there is valid with or without a trailing comma."""
    last = (node.elts if isinstance(node, ast.List) else node.values) or None
    if last:
        return last[-1].end_lineno - 1, last[-1].end_col_offset
    return node.lineno - 1, node.col_offset + 1


def patch_suite(source: str) -> tuple[str, list[str]]:
    """``source`` (test_samplers.py) with TNPSampler in its sampler lists, and what was patched."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []  # (line index, byte column, text)
    patched: list[str] = []

    for node in tree.body:
        # sampler_class_with_seed: dict[str, Callable[[int], BaseSampler]] = {...}
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "sampler_class_with_seed" and isinstance(node.value,
                                                                                               ast.Dict):
            edits.append((*_insert_after_last(node.value), f', "{ID}": lambda seed: {MAKE_WITH_SEED}'))
            patched.append("sampler_class_with_seed")
        # class TestXSampler(XSamplerTestCase): @pytest.fixture(params=[...]) def sampler(...)
        if isinstance(node, ast.ClassDef):
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            if not any(b.endswith("SamplerTestCase") for b in bases) or bases & NOT_FOR_TNP:
                continue
            for item in node.body:
                if not (isinstance(item, ast.FunctionDef) and item.name == "sampler"):
                    continue
                for deco in item.decorator_list:
                    params = [k.value for k in getattr(deco, "keywords", []) if k.arg == "params"]
                    if params and isinstance(params[0], ast.List):
                        edits.append((*_insert_after_last(params[0]),
                                      f", pytest.param(lambda: {MAKE}, id=\"{ID}\")"))
                        patched.append(f"{node.name}.sampler")
        # @pytest.mark.parametrize("sampler_class_reseed_rng,...", [...]) def test_sampler_reseed_rng
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                args = getattr(deco, "args", [])
                if (len(args) == 2 and isinstance(args[0], ast.Constant) and args[0].value == RESEED_ARGNAMES
                        and isinstance(args[1], ast.List)):
                    edits.append((*_insert_after_last(args[1]),
                                  f", pytest.param(lambda: {MAKE}, False, True, id=\"{ID}\")"))
                    patched.append(node.name)

    imports = [n for n in tree.body if isinstance(n, ast.Import) and any(a.name == "optuna" for a in n.names)]
    if not imports:
        raise SystemExit(f"{TEST_FILE}: no top-level 'import optuna' to put 'import metabo' after")
    edits.append((imports[0].end_lineno - 1, len(lines[imports[0].end_lineno - 1].rstrip("\r\n").encode()),
                  "\nimport metabo"))
    expected = {"sampler_class_with_seed", "test_sampler_reseed_rng"}
    missing = expected - set(patched)
    if missing or not any(p.endswith(".sampler") for p in patched):
        raise SystemExit(f"{TEST_FILE}: could not find {', '.join(sorted(missing)) or 'any sampler fixture'}; "
                         "the runner needs updating for this Optuna version")
    for line, col, text in sorted(edits, reverse=True):
        raw = lines[line].encode()
        lines[line] = (raw[:col] + text.encode() + raw[col:]).decode()
    return "".join(lines), patched


def prepare(tar_path: Path, folder: Path) -> list[str]:
    """Write the patched suite, its ``optuna.testing`` helpers, a conftest and a pytest.ini into ``folder``."""
    with tarfile.open(tar_path) as tar:
        source, patched = patch_suite(_member(tar, TEST_FILE))
        helpers: list[str] = []
        pending = re.findall(r"^from optuna\.testing\.(\w+) import", source, flags=re.M)
        while pending:
            name = pending.pop()
            if name in helpers:
                continue
            helpers.append(name)
            text = _member(tar, f"optuna/testing/{name}.py")
            pending += re.findall(r"^from optuna\.testing\.(\w+) import", text, flags=re.M)
            (folder / f"{name}.py").write_text(re.sub(r"^from optuna\.testing\.(\w+) import", r"from \1 import",
                                                      text, flags=re.M))
    source = re.sub(r"^from optuna\.testing\.(\w+) import", r"from \1 import", source, flags=re.M)
    (folder / "test_samplers.py").write_text(source)
    (folder / "conftest.py").write_text("import pytest\n\n" + "".join(
        f'pytest.register_assert_rewrite("{name}")\n' for name in helpers))
    # Optuna's own pytest settings (its pyproject.toml), and nothing from this checkout's.
    (folder / "pytest.ini").write_text("[pytest]\nfilterwarnings = ignore::optuna.exceptions.ExperimentalWarning\n"
                                       "markers =\n    slow: marks tests as slow\n")
    return patched + [f"helpers from the sdist: optuna.testing.{', optuna.testing.'.join(helpers)}"]


def summarise(junit: Path) -> tuple[dict[str, int], list[tuple[str, str]], dict[str, int]]:
    """Counts for TNPSampler's cases, the failures (name, message), and counts for the other cases."""
    ours = {"passed": 0, "failed": 0, "skipped": 0}
    others = dict(ours)
    failures: list[tuple[str, str]] = []
    for case in ET.parse(junit).iter("testcase"):
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        outcome = "failed" if bad is not None else "skipped" if case.find("skipped") is not None else "passed"
        counts = ours if ID in name else others
        counts[outcome] += 1
        if bad is not None:
            message = (bad.get("message") or bad.text or "").strip().splitlines()
            failures.append((name, message[0][:300] if message else ""))
    return ours, failures, others


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="run the whole file (Optuna's samplers too)")
    parser.add_argument("--keep", type=Path, help="write the patched suite here and keep it")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()

    import optuna

    version = optuna.__version__
    tar_path = sdist(version)
    with tempfile.TemporaryDirectory(prefix="optuna-conformance-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        patched = prepare(tar_path, folder)
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", str(folder / "test_samplers.py"), "-c", str(folder / "pytest.ini"),
                   "--rootdir", str(folder), "-p", "no:cacheprovider", "-q", "-rfE", "--tb=short",
                   f"--junitxml={junit}", *([] if args.all else ["-k", ID]), *args.pytest_args]
        print(f"Optuna {version}: {tar_path}\nTNPSampler added to: {'; '.join(patched)}\n$ {' '.join(command)}",
              flush=True)
        status = subprocess.run(command, cwd=folder).returncode
        if not junit.exists():
            print(f"pytest wrote no report (exit status {status})")
            return 1
        ours, failures, others = summarise(junit)
    print(f"\nOptuna {version} sampler conformance (tests/samplers_tests/test_samplers.py), TNPSampler's cases: "
          f"{ours['passed']} passed, {ours['failed']} failed, {ours['skipped']} skipped")
    if sum(others.values()):
        print(f"The file's other cases (Optuna's samplers, the baseline): {others['passed']} passed, "
              f"{others['failed']} failed, {others['skipped']} skipped")
    for name, message in failures:
        print(f"  FAILED {name}: {message}")
    return 1 if ours["failed"] or not sum(ours.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
