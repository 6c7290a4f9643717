"""Past studies from tables: CSV (standard library) or Parquet (needs ``pyarrow``).

Layout: one row per evaluated configuration, a value column (``value`` unless told otherwise), and parameter
columns. An optional ``direction`` column (one value, ``minimize`` or ``maximize``) or the ``direction``
argument gives the direction (default ``minimize``). A table exported by Optuna's ``study.trials_dataframe()``
is recognised: when columns start with ``params_``, only those are parameters (the prefix is stripped) and, if
a ``state`` column exists, only ``COMPLETE`` rows are read.

Search space, per parameter column:

* declared in ``search_space`` (or else in ``target_space``): that kind, log scale and step, with the range
  widened (and categorical choices extended) to cover the values seen, so a past study stays self-consistent
  and alignment decides what fits the target; a value the declared kind cannot hold is an error;
* otherwise inferred: all numbers -> ``IntDistribution`` (all integers) or ``FloatDistribution`` over the
  observed range (linear scale); all text (or booleans) -> ``CategoricalDistribution`` of the values seen, in
  order of appearance; a mix of numbers and text is an error (declare the column categorical to allow it).

Rows whose value is empty, NaN or infinite are failed evaluations: they are skipped with one warning.
A non-numeric value, a missing value column, an empty file, or an empty or NaN parameter cell is an error
(``MetaDataError``) naming the file, the row (data rows count from 1; CSV also gives the file line) and
the column; ``missing_params="omit"`` instead leaves such a parameter out of that row (unobserved).
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from metabo.meta.optuna_source import merge_distributions
from metabo.meta.study import DIRECTIONS, MetaDataError, PastStudy

_INT_TEXT = re.compile(r"^[+-]?\d+$")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv")


class _Table:
    """Columns and rows of one file, with a human label for each data row."""

    def __init__(self, path: Path, columns: list[str], rows: list[list[Any]], labels: list[str]) -> None:
        self.path, self.columns, self.rows, self.labels = path, columns, rows, labels

    def error(self, i: int | None, column: str | None, message: str) -> MetaDataError:
        where = [str(self.path)]
        if i is not None:
            where.append(self.labels[i])
        if column is not None:
            where.append(f"column {column!r}")
        return MetaDataError(f"{', '.join(where)}: {message}")


def _read_csv(path: Path) -> _Table:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: tolerate the BOM spreadsheets write
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        while header is not None and not any(c.strip() for c in header):
            header = next(reader, None)
        if header is None:
            raise MetaDataError(f"{path}: the file is empty (expected a header row and data rows)")
        columns = [c.strip() for c in header]
        rows, labels = [], []
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # blank line
            label = f"row {len(rows) + 1} (line {reader.line_num})"
            if len(fields) != len(columns):
                raise MetaDataError(f"{path}, {label}: {len(fields)} fields where the header has {len(columns)}")
            rows.append(fields)
            labels.append(label)
    return _Table(path, columns, rows, labels)


def _read_parquet(path: Path) -> _Table:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(f"reading {path} needs pyarrow (pip install pyarrow)") from exc
    try:
        data = pq.read_table(path).to_pydict()
    except Exception as exc:  # pyarrow's own errors for truncated or non-Parquet files
        raise MetaDataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from exc
    columns = [str(c) for c in data]
    n = len(next(iter(data.values()))) if data else 0
    rows = [[data[c][i] for c in data] for i in range(n)]
    return _Table(path, columns, rows, [f"row {i + 1}" for i in range(n)])


def _is_blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip()) or (isinstance(cell, float) and math.isnan(cell))


def _as_number(cell: Any) -> int | float | None:
    """The number a cell holds (ints stay ints), or ``None`` for text and booleans."""
    if isinstance(cell, bool):
        return None
    if isinstance(cell, (int, float)):
        return cell
    if hasattr(cell, "item") and not isinstance(cell, str):  # numpy scalars
        return _as_number(cell.item())
    text = str(cell).strip()
    if _INT_TEXT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return None


def _value(table: _Table, i: int, column: str, cell: Any) -> float | None:
    if _is_blank(cell):
        return None
    number = _as_number(cell)
    if number is None:
        raise table.error(i, column, f"non-numeric value {cell!r} in the value column")
    number = float(number)
    return number if math.isfinite(number) else None


def _numeric_column(table: _Table, column: str, cells: list[tuple[int, Any]],
                    declared: BaseDistribution | None) -> tuple[BaseDistribution, dict[int, Any]]:
    values: dict[int, Any] = {}
    for i, cell in cells:
        number = _as_number(cell)
        if number is None:
            raise table.error(i, column, f"non-numeric value {cell!r} in a numeric column")
        if not math.isfinite(number):
            raise table.error(i, column, f"non-finite parameter value {cell!r}")
        if isinstance(declared, IntDistribution):
            if float(number) != round(float(number)):
                raise table.error(i, column, f"non-integer value {cell!r} in an integer column")
            number = int(round(float(number)))
        elif isinstance(declared, FloatDistribution):
            number = float(number)
        if declared is not None and declared.log and number <= 0:  # type: ignore[attr-defined]
            raise table.error(i, column, f"value {cell!r} is not positive but the column is on a log scale")
        values[i] = number
    low, high = min(values.values()), max(values.values())
    if declared is None:
        if all(isinstance(v, int) for v in values.values()):
            return IntDistribution(int(low), int(high)), values
        values = {i: float(v) for i, v in values.items()}
        return FloatDistribution(float(low), float(high)), values
    if declared.low <= low and high <= declared.high:  # type: ignore[attr-defined]
        return declared, values
    # widen to what was seen (a declared step survives only where it still fits the wider range)
    seen = type(declared)(low, high, log=declared.log)  # type: ignore[call-arg,attr-defined]
    merged = merge_distributions(declared, seen)
    return (merged if merged is not None else declared), values


def _categorical_column(cells: list[tuple[int, Any]],
                        declared: CategoricalDistribution | None) -> tuple[BaseDistribution, dict[int, Any]]:
    choices: list[Any] = list(declared.choices) if declared is not None else []
    values: dict[int, Any] = {}
    for i, cell in cells:
        value = cell.strip() if isinstance(cell, str) else cell
        exact = [c for c in choices if type(c) is type(value) and c == value]
        by_text = [c for c in choices if str(c) == str(value)]
        if exact:
            value = exact[0]
        elif len(by_text) == 1:  # CSV text "32" for a declared choice 32
            value = by_text[0]
        else:
            choices.append(value)
        values[i] = value
    return CategoricalDistribution(tuple(choices)), values


def _read_direction(table: _Table, column: str, given: str | None) -> str | None:
    j = table.columns.index(column)
    seen = {str(r[j]).strip().lower() for r in table.rows if not _is_blank(r[j])}
    for i, r in enumerate(table.rows):
        if not _is_blank(r[j]) and str(r[j]).strip().lower() not in DIRECTIONS:
            raise table.error(i, column, f"direction must be minimize or maximize, not {r[j]!r}")
    if len(seen) > 1:
        raise table.error(None, column, f"holds more than one direction ({sorted(seen)})")
    found = next(iter(seen), None)
    if given is not None and found is not None and found != given:
        raise table.error(None, column, f"says {found!r} but direction={given!r} was passed")
    return found


def read_table(path: str | Path, value_column: str = "value", direction: str | None = None,
               search_space: Mapping[str, BaseDistribution] | None = None,
               target_space: Mapping[str, BaseDistribution] | None = None,
               param_columns: Sequence[str] | None = None, direction_column: str = "direction",
               missing_params: Literal["error", "omit"] = "error", name: str | None = None) -> PastStudy:
    """One ``PastStudy`` from a CSV/TSV or Parquet file (chosen by suffix; see the module docstring).

    Args:
        path: the file.
        value_column: the objective's column.
        direction: ``minimize`` / ``maximize``; default: the direction column, else ``minimize``.
        search_space: declared distributions for some or all parameter columns.
        target_space: the new study's space; it declares the columns ``search_space`` does not.
        param_columns: the parameter columns (default: every other column, or the ``params_*`` ones).
        direction_column: the optional direction column's name.
        missing_params: ``"error"`` for an empty or NaN parameter cell, or ``"omit"`` it from that row.
        name: the study's name (default: the file's stem).

    Raises:
        MetaDataError: malformed input, naming the file, row and column.
        FileNotFoundError: no such file.
    """
    if missing_params not in ("error", "omit"):
        raise ValueError(f"missing_params must be 'error' or 'omit', not {missing_params!r}")
    rows = _usable_rows(Path(path), value_column, direction, param_columns, direction_column)
    table, values = rows.table, rows.values
    if rows.failed:
        warnings.warn(f"metabo.meta: {table.path}: skipped {rows.failed} row(s) with an empty, NaN or infinite value",
                      stacklevel=2)

    declared = {**(target_space or {}), **(search_space or {})}
    space: dict[str, BaseDistribution] = {}
    params: dict[int, dict[str, Any]] = {i: {} for i in values}
    for c in rows.columns:
        pname = rows.param_name[c]
        j = table.columns.index(c)
        cells: list[tuple[int, Any]] = []
        for i in values:
            cell = table.rows[i][j]
            if _is_blank(cell):
                if missing_params == "error":
                    raise table.error(i, c, "empty or NaN parameter value (pass missing_params='omit' to allow)")
                continue
            cells.append((i, cell))
        if not cells:
            continue  # the parameter never has a value in the usable rows
        dist = declared.get(pname)
        if isinstance(dist, CategoricalDistribution):
            space[pname], column_values = _categorical_column(cells, dist)
        elif dist is not None:
            space[pname], column_values = _numeric_column(table, c, cells, dist)
        else:
            numbers = [(i, _as_number(cell)) for i, cell in cells]
            text = [(i, cell) for (i, cell), (_, n) in zip(cells, numbers) if n is None]
            if not text:
                space[pname], column_values = _numeric_column(table, c, cells, None)
            elif len(text) == len(cells):
                space[pname], column_values = _categorical_column(cells, None)
            else:
                first_number = next(i for i, n in numbers if n is not None)
                i_text, cell_text = text[0]
                raise table.error(i_text, c, f"non-numeric value {cell_text!r} in a column that also holds "
                                  f"numbers ({table.labels[first_number]}); declare the column in search_space "
                                  "(CategoricalDistribution to read it as categorical) or fix the value")
        for i, v in column_values.items():
            params[i][pname] = v
    stem = name or table.path.stem
    return PastStudy(stem, str(table.path), space, [(params[i], values[i]) for i in values], rows.direction)


def check_table(path: str | Path, value_column: str = "value", direction: str | None = None) -> None:
    """Raise what ``read_table(path, value_column, direction)`` would about the file whatever the search space:
    no such file (``FileNotFoundError``), an unknown format, no value column, no data row, no row with a
    finite value, or a bad direction (``MetaDataError``). Parameter columns are not parsed."""
    _usable_rows(Path(path), value_column, direction, None, "direction")


@dataclass
class _Rows:
    """A table's rows with a finite value, and what they are read with."""

    table: _Table
    columns: list[str]  # the parameter columns
    param_name: dict[str, str]  # column -> parameter name
    direction: str
    values: dict[int, float]  # row index -> finite value
    failed: int  # rows skipped for an empty, NaN or infinite value


def _usable_rows(path: Path, value_column: str, direction: str | None, param_columns: Sequence[str] | None,
                 direction_column: str) -> _Rows:
    """Read ``path`` and find its parameter columns, its direction and its rows with a finite value."""
    if not path.is_file():
        raise FileNotFoundError(f"no such corpus file: {path}")
    if direction is not None and direction not in DIRECTIONS:
        raise MetaDataError(f"{path}: direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        table = _read_parquet(path)
    elif path.suffix.lower() in CSV_SUFFIXES:
        table = _read_csv(path)
    else:
        raise MetaDataError(f"{path}: unknown table format {path.suffix!r} (use .csv, .tsv, .parquet or .pq)")
    dupes = sorted({c for c in table.columns if table.columns.count(c) > 1})
    if dupes:
        raise table.error(None, None, f"duplicate column names {dupes}")
    if value_column not in table.columns:
        raise table.error(None, None, f"no value column {value_column!r} (columns: {', '.join(table.columns)}); "
                          "pass value_column=... to name it")
    if not table.rows:
        raise table.error(None, None, "the file has a header but no data rows")

    # Optuna's trials_dataframe() export: parameters are params_*, failed trials are filtered by state.
    exported = param_columns is None and any(c.startswith("params_") for c in table.columns)
    keep = list(range(len(table.rows)))
    if exported and "state" in table.columns:
        j = table.columns.index("state")
        keep = [i for i in keep if str(table.rows[i][j]).strip().upper() in ("COMPLETE", "TRIALSTATE.COMPLETE")]
    if param_columns is not None:
        absent = [c for c in param_columns if c not in table.columns]
        if absent:
            raise table.error(None, None, f"parameter columns {absent} not found (columns: {', '.join(table.columns)})")
        columns = list(param_columns)
    elif exported:
        columns = [c for c in table.columns if c.startswith("params_")]
    else:
        columns = [c for c in table.columns if c not in (value_column, direction_column)]
    if not columns:
        raise table.error(None, None, "no parameter columns")
    param_name = {c: c[len("params_"):] if exported else c for c in columns}

    if direction_column in table.columns:
        direction = _read_direction(table, direction_column, direction) or direction
    direction = direction or "minimize"

    jv = table.columns.index(value_column)
    values: dict[int, float] = {}
    failed = 0
    for i in keep:
        v = _value(table, i, value_column, table.rows[i][jv])
        if v is None:
            failed += 1
        else:
            values[i] = v
    if not values:
        raise table.error(None, value_column, "no row has a finite value")
    return _Rows(table, columns, param_name, direction, values, failed)
