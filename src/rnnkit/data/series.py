"""Time series from CSV: a time column and value columns, the target and covariates chosen by name.

    series = read_series("sunspots.csv", target="SUNACTIVITY")                # time = the first column
    series = read_series("shop.csv", target="sales", covariates=["price", "promo"], time="date")
    series.values          # (N, C) float64: column 0 the target, then the covariates in the order given
    series.times           # the N time stamps as written in the file
    series.future_times(3) # the next 3 time stamps, continuing the series' step

Format: comma-separated (or `delimiter=`), a header row naming the columns (quotes allowed, as written by
pandas or R), then one row per time step. Columns that are neither the time, the target nor a covariate are
ignored (but every row must still have as many fields as the header).

Time stamps (one kind per file; they must strictly increase from row to row); `time` names one column, or
two columns "YEAR,MONTH" holding a year and a month number (read as the month YYYY-MM):
  - numbers: `1700`, `1700.5`; the future continues with the most common step between rows;
  - months: `1949-01` (the future adds the most common step in months);
  - dates: `2020-01-31`; date-times: `2020-01-31 12:00` or `2020-01-31T12:00:00` (the future adds the most
    common step in months when every step is a whole number of months with the same day, else in time).

Missing values (an empty field, `NA`, `NaN`, `null`, `?`): with `missing="error"` (the default) they are an
error naming the line; with `missing="interpolate"` they are filled by linear interpolation between the
nearest observed values of the same column (before the first / after the last observation: that value).
A column with no observed value at all is always an error. Any other non-numeric value is always an error.

Every problem is a `DataError` whose message is `file:line: expected ..., found ...`.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnkit.data.tabular import read_records
from rnnkit.data.text import DataError, shown

MISSING = ("", "na", "nan", "null", "none", "?")
MISSING_POLICIES = ("error", "interpolate")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")
_DATETIME = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
TIME_FORMATS = "a number (1700), a month (1949-01), a date (2020-01-31) or a date-time (2020-01-31 12:00)"


@dataclass
class Series:
    """A multivariate time series read from a CSV file (see the module docstring)."""

    path: str
    time_column: str
    columns: list[str]  # [target, *covariates]
    times: list[str]  # (N,) as written in the file
    values: np.ndarray  # (N, C) float64
    time_kind: str = "number"  # "int", "float", "month", "date" or "datetime"
    _parsed: list = field(default_factory=list, repr=False)

    @property
    def target(self) -> str:
        return self.columns[0]

    @property
    def covariates(self) -> list[str]:
        return self.columns[1:]

    def __len__(self) -> int:
        return len(self.values)

    def future_times(self, horizon: int) -> list[str]:
        """The `horizon` time stamps after the last one, continuing the series' most common step."""
        try:
            return future_times(self._parsed, self.time_kind, horizon)
        except (OverflowError, ValueError):  # a date past year 9999
            raise DataError(f"{self.path}: {self.time_column}: expected a last time {horizon} steps before the end "
                            f"of the calendar (year 9999), found {self.times[-1]!r}") from None


def read_series(path: str | os.PathLike, target: str, covariates: Sequence[str] = (), time: str | None = None,
                missing: str = "error", delimiter: str = ",") -> Series:
    """Read a CSV time series; `time` names the time column (default: the first column of the header)."""
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    records = read_records(path, delimiter, strict=False, expected="a CSV time series (a header, then rows)")
    header = [h.strip() for h in records[0][1]]
    time = time if time is not None else header[0]
    time_names = [t.strip() for t in time.split(",")]
    if len(time_names) > 2:
        raise ValueError(f"time must name one column, or two (year,month), got {time!r}")
    columns = [target, *covariates]
    index = {name: i for i, name in enumerate(header)}
    for name in [*time_names, *columns]:
        if name not in index:
            raise DataError(f"{path}:{records[0][0]}: expected a column named {name!r} in the header, found "
                            f"columns {shown(', '.join(map(repr, header)), 200, quote=False)}")
    if len(set([*time_names, *columns])) != len(columns) + len(time_names):
        raise ValueError(f"time {time!r}, target {target!r} and covariates {list(covariates)} must be distinct "
                         "columns")
    lines = records[1:]
    if not lines:
        raise DataError(f"{path}:{records[0][0] + 1}: expected at least one data row after the header, found none")
    times, parsed, kind = _read_times(path, lines, [index[t] for t in time_names], len(header), delimiter)
    values = np.empty((len(lines), len(columns)))
    for j, name in enumerate(columns):
        values[:, j] = _read_column(path, lines, index[name], name, missing)
    return Series(str(path), time, columns, times, values, kind, parsed)


def _read_times(path, lines, cols: list[int], width: int, delimiter: str) -> tuple[list[str], list, str]:
    times, parsed, kind = [], [], None
    sep = "tab" if delimiter == "\t" else repr(delimiter)
    for n, row in lines:
        if len(row) != width:
            raise DataError(f"{path}:{n}: expected {width} {sep}-separated columns (as in the header), "
                            f"found {len(row)}")
        text = row[cols[0]].strip()
        if len(cols) == 2:  # year and month columns -> YYYY-MM
            year, month = text, row[cols[1]].strip()
            digits = (year + month).isascii() and year.isdigit() and month.isdigit()
            text = f"{year}-{int(month):02d}" if digits else f"{year}-{month}"
        k, value = parse_time(text)
        if k is None:
            raise DataError(f"{path}:{n}: expected a time stamp: {TIME_FORMATS}; found {shown(text)}")
        if kind is None or {kind, k} == {"int", "float"}:
            kind = "float" if "float" in (kind, k) else k
        elif k != kind:
            raise DataError(f"{path}:{n}: expected a time stamp of the same kind as the first row's "
                            f"({times[0]!r}), found {shown(text)}")
        if parsed and not value > parsed[-1]:
            raise DataError(f"{path}:{n}: expected a time after {times[-1]!r} (times must strictly increase), "
                            f"found {shown(text)}")
        times.append(text)
        parsed.append(value)
    return times, parsed, kind


def _read_column(path, lines, col: int, name: str, missing: str) -> np.ndarray:
    out = np.empty(len(lines))
    for i, (n, row) in enumerate(lines):
        text = row[col].strip()
        if text.lower() in MISSING:
            if missing == "error":
                raise DataError(f"{path}:{n}: expected a number in column {name!r}, found a missing value "
                                f"({shown(text)}); use missing='interpolate' (--missing interpolate) to fill it")
            out[i] = np.nan
            continue
        try:
            out[i] = float(text)
        except ValueError:
            raise DataError(f"{path}:{n}: expected a number in column {name!r}, found {shown(text)}") from None
        if not math.isfinite(out[i]):
            raise DataError(f"{path}:{n}: expected a finite number in column {name!r}, found {shown(text)}")
    gaps = np.isnan(out)
    if gaps.all():
        raise DataError(f"{path}:{lines[0][0]}: expected at least one value in column {name!r}, found none")
    if gaps.any():  # linear interpolation in the row index; constant before the first / after the last value
        x = np.arange(len(out))
        out[gaps] = np.interp(x[gaps], x[~gaps], out[~gaps])
    return out


# ---- time stamps ------------------------------------------------------------------------------------


def parse_time(text: str):
    """(kind, comparable value) of a time stamp, or (None, None) if it is none of TIME_FORMATS."""
    try:
        return "int", int(text)
    except ValueError:
        pass
    try:
        value = float(text)
        return ("float", value) if math.isfinite(value) else (None, None)
    except ValueError:
        pass
    try:
        m = _MONTH.match(text)
        if m:
            year, month = int(m.group(1)), int(m.group(2))
            if not 1 <= month <= 12:
                return None, None
            return "month", year * 12 + month - 1
        if _DATE.match(text):
            y, mo, d = map(int, text.split("-"))
            return "date", dt.date(y, mo, d)
        if _DATETIME.match(text):
            return "datetime", dt.datetime.fromisoformat(text.replace("T", " "))
    except ValueError:
        pass
    return None, None


def _most_common(steps: list):
    """The most frequent step; ties go to the latest one."""
    counts = Counter(steps)
    best = max(counts.values())
    return next(s for s in reversed(steps) if counts[s] == best)


def _months(a, b) -> int | None:
    """b - a in whole months when both have the same day and time of day, else None."""
    same = a.day == b.day and (not isinstance(a, dt.datetime) or a.time() == b.time())
    return (b.year - a.year) * 12 + b.month - a.month if same else None


def _add_months(t, k: int):
    y, m = divmod(t.month - 1 + k, 12)
    return t.replace(year=t.year + y, month=m + 1)


def future_times(parsed: list, kind: str, horizon: int) -> list[str]:
    """`horizon` time stamps after parsed[-1], continuing the most common step (a single row: step 1 for
    numbers and months, one day for dates)."""
    last = parsed[-1]
    if kind in ("int", "float", "month"):
        step = _most_common([b - a for a, b in zip(parsed, parsed[1:])]) if len(parsed) > 1 else 1
        out = [last + step * k for k in range(1, horizon + 1)]
        if kind == "month":
            return [f"{v // 12:04d}-{v % 12 + 1:02d}" for v in out]
        return [str(v) if kind == "int" else f"{v:.10g}" for v in out]
    months = [_months(a, b) for a, b in zip(parsed, parsed[1:])]
    if months and None not in months:
        step = _most_common(months)
        out = [_add_months(last, step * k) for k in range(1, horizon + 1)]
    else:
        step = _most_common([b - a for a, b in zip(parsed, parsed[1:])]) if len(parsed) > 1 else dt.timedelta(1)
        out = [last + step * k for k in range(1, horizon + 1)]
    if kind == "date":
        return [t.isoformat() for t in out]
    return [t.isoformat(sep=" ", timespec="seconds" if any(p.second for p in parsed) else "minutes") for t in out]


def default_season(series: Series) -> int:
    """A seasonal period suggested by the time axis: 12 for monthly, 4 for quarterly, 7 for daily and 24 for
    hourly steps; 1 (no seasonality: seasonal naive = naive) for numbers and anything else."""
    p, kind = series._parsed, series.time_kind
    if len(p) < 2 or kind in ("int", "float"):
        return 1
    if kind == "month":
        step = _most_common([b - a for a, b in zip(p, p[1:])])
        return {1: 12, 3: 4}.get(step, 1)
    months = [_months(a, b) for a, b in zip(p, p[1:])]
    if None not in months:
        return {1: 12, 3: 4}.get(_most_common(months), 1)
    step = _most_common([b - a for a, b in zip(p, p[1:])])
    return {dt.timedelta(days=1): 7, dt.timedelta(hours=1): 24}.get(step, 1)


def write_series_csv(path: str | os.PathLike | None, time_column: str, times: list[str],
                     columns: dict[str, Sequence[float]]) -> str:
    """A CSV text (header + one row per time) of forecasts; written to `path` when given. Returns the text.
    A two-column time "YEAR,MONTH" is written back as two columns (year, month number)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = [n.strip() for n in time_column.split(",")]
    w.writerow([*names, *columns])
    for i, t in enumerate(times):
        stamp = [t] if len(names) == 1 else [t.split("-")[0], str(int(t.split("-")[1]))]
        w.writerow([*stamp, *(f"{float(v[i]):.6g}" for v in columns.values())])
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
