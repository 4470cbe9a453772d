"""Many time series in one file (a "panel"), read streaming and typed, for one global forecasting model.

    panel = read_panel("Hourly-train.csv.gz")                        # M4's wide format (detected)
    panel = read_panel("stores.csv", format="long", covariates=["price"])  # unique_id, ds, y, price
    panel = read_panel("sunspots.csv", target="SUNACTIVITY")         # one series (rnnkit.data.series)
    panel.ids, panel.values[i]  # the series' ids, and each one's (N_i, C) float64 values (column 0: target)

Formats (comma-separated, a header row, quotes allowed; `.gz` files are decompressed while reading):
  - long (NeuralForecast, statsforecast, Darts): columns `unique_id`, `ds`, `y` (names configurable) plus
    optional covariate columns; rows of one id in time order (ids may interleave). A duplicated
    (unique_id, ds) pair and a time that goes back are errors; so is a gap (a step that is a multiple of the
    series' most common step), unless missing="interpolate", which inserts the missing steps and fills them
    by linear interpolation (as it fills empty values).
  - wide (M4): a header `"V1","V2",...`, then one row per series: its id, then its values in time order;
    a shorter series ends in empty fields. No time stamps (the series' own step index is its time).
  - csv: today's one-series file (a time column, the target, covariates; see rnnkit.data.series).

Errors are `DataError`s naming `file:line:column: field: expected ..., found ...`; a file is read once, line
by line (the values are kept as one float array per series, not as text).
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rnnkit.data.series import MISSING, MISSING_POLICIES, parse_time, read_series
from rnnkit.data.text import DataError, _checked, shown

FORMATS = ("auto", "csv", "long", "wide")


@dataclass
class Panel:
    """Several series of the same columns. `times[i]`: series i's parsed time stamps (None: step index)."""

    path: str
    columns: list[str]  # [target, *covariates]
    ids: list[str]
    values: list[np.ndarray]  # (N_i, C) float64 each
    times: list | None = None  # per series: the parsed stamps (parse_time values), or None (wide)
    time_kind: str = "index"  # "index" (wide), or parse_time's kinds
    stamps: list | None = None  # per series: the stamps as written (long, csv), for the output
    series: object = None  # the rnnkit.data.series.Series of a one-series CSV

    def __len__(self) -> int:
        return len(self.ids)


def open_text(path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank CSV record of `path` (gzip when it starts with the gzip
    magic), read line by line."""
    path = _checked(path, "a CSV file")
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    stream = gzip.open(path, "rt", encoding="utf-8", newline="") if gz else open(path, encoding="utf-8", newline="")
    line = 1
    try:
        with stream:
            reader = csv.reader(stream)
            for fields in reader:
                if any(f.strip() for f in fields):
                    yield line, fields
                line = reader.line_num + 1
    except UnicodeDecodeError:
        raise DataError(f"{path}:{line}: expected UTF-8 text, found bytes that are not UTF-8 (on this line or one "
                        "of the next few)") from None
    except (EOFError, OSError, zlib.error) as e:
        if isinstance(e, OSError) and not isinstance(e, gzip.BadGzipFile) and e.errno is not None:
            raise
        raise DataError(f"{path}:{line}: expected gzip-compressed CSV, found the gzip data cut short or corrupt "
                        f"({e})") from None
    except csv.Error as e:
        raise DataError(f"{path}:{line}: expected CSV with balanced quotes, found a parse error ({e})") from None


def number(path, line: int, col: int, name: str, text: str, missing: str) -> float:
    """A CSV field as a float; NaN for a missing value when missing="interpolate"."""
    t = text.strip()
    if t.lower() in MISSING:
        if missing == "error":
            raise DataError(f"{path}:{line}:{col}: {name}: expected a number, found a missing value ({shown(t)}); "
                            "use --missing interpolate to fill it")
        return math.nan
    try:
        v = float(t)
    except ValueError:
        raise DataError(f"{path}:{line}:{col}: {name}: expected a number, found {shown(t)}") from None
    if not math.isfinite(v):
        raise DataError(f"{path}:{line}:{col}: {name}: expected a finite number, found {shown(t)}")
    return v


def interpolate(values: np.ndarray) -> np.ndarray:
    """NaNs filled by linear interpolation along axis 0 (constant before the first / after the last value)."""
    out = values.copy()
    x = np.arange(len(out))
    for j in range(out.shape[1]):
        gaps = np.isnan(out[:, j])
        if gaps.any() and not gaps.all():
            out[gaps, j] = np.interp(x[gaps], x[~gaps], out[~gaps, j])
    return out


def detect_format(path) -> str:
    """"long" when the header has a unique_id column, "wide" when it is V1, V2, ... (M4), else "csv" (also for
    a file whose first line cannot be read: the one-series reader then names the problem)."""
    path = _checked(path, "a CSV file")
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            first = f.readline(1 << 20).decode("utf-8", errors="replace")
    except (EOFError, OSError, zlib.error):
        return "csv"
    names = [h.strip().strip('"').lower() for h in next(csv.reader([first]), [])]
    if "unique_id" in names:
        return "long"
    if len(names) >= 2 and all(n == f"v{i}" for i, n in enumerate(names, 1)):
        return "wide"
    return "csv"


def read_panel(path, format: str = "auto", target: str | None = None, covariates: Sequence[str] = (),
               time: str | None = None, id_column: str = "unique_id", missing: str = "error") -> Panel:
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    format = detect_format(path) if format == "auto" else format
    if format == "wide":
        if covariates:
            raise ValueError("the wide format holds one value per step: it has no covariates")
        return read_wide(path, missing)
    if format == "long":
        return read_long(path, target or "y", covariates, time or "ds", id_column, missing)
    if target is None:
        raise DataError(f"{path}: a one-series CSV needs --target COLUMN (the column to forecast)")
    s = read_series(path, target, covariates, time, missing)
    return Panel(s.path, list(s.columns), [s.target], [s.values], [list(s._parsed)], s.time_kind, [s.times], s)


def read_wide(path, missing: str = "error") -> Panel:
    """M4's wide format (see the module docstring)."""
    rows = open_text(path)
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}:1: expected a header (\"V1\",\"V2\",...), found an empty file")
    header = [h.strip() for h in first[1]]
    ids, values, seen = [], [], {}
    for line, fields in rows:
        if len(fields) > len(header):
            raise DataError(f"{path}:{line}: expected at most {len(header)} fields (as in the header), "
                            f"found {len(fields)}")
        sid = fields[0].strip()
        if not sid:
            raise DataError(f"{path}:{line}:1: {header[0]}: expected a series id, found an empty field")
        if sid in seen:
            raise DataError(f"{path}:{line}:1: {header[0]}: expected a new series id, found {shown(sid)} again "
                            f"(first on line {seen[sid]})")
        seen[sid] = line
        end = len(fields)
        while end > 1 and not fields[end - 1].strip():
            end -= 1  # a shorter series ends in empty fields
        if end == 1:
            raise DataError(f"{path}:{line}:2: {header[1]}: expected the first value of series {shown(sid)}, "
                            "found none")
        v = np.array([number(path, line, c + 1, header[c], fields[c], missing) for c in range(1, end)])
        ids.append(sid)
        values.append(interpolate(v[:, None]))
    if not ids:
        raise DataError(f"{path}:{first[0] + 1}: expected at least one series after the header, found none")
    return Panel(str(path), ["y"], ids, values)


def _ordinal(kind: str, value) -> float:
    """A time stamp as a number on which the steps of a regular series are equal."""
    if kind in ("int", "float", "month"):
        return float(value)
    if kind == "date":
        return float(value.toordinal())
    return value.timestamp() if value.tzinfo else (value - value.min).total_seconds()


def read_long(path, target: str = "y", covariates: Sequence[str] = (), time: str = "ds",
              id_column: str = "unique_id", missing: str = "error") -> Panel:
    """The long format (see the module docstring)."""
    rows = open_text(path)
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}:1: expected a header with {id_column}, {time} and {target}, found an empty file")
    header = [h.strip() for h in first[1]]
    columns = [target, *covariates]
    index = {name: i for i, name in enumerate(header)}
    for name in [id_column, time, *columns]:
        if name not in index:
            raise DataError(f"{path}:{first[0]}: expected a column named {name!r} in the header, found "
                            f"{shown(', '.join(map(repr, header)), 200, quote=False)}")
    cols = [index[c] for c in columns]
    groups: dict[str, dict] = {}
    kind = None
    for line, fields in rows:
        if len(fields) != len(header):
            raise DataError(f"{path}:{line}: expected {len(header)} fields (as in the header), found {len(fields)}")
        sid, stamp = fields[index[id_column]].strip(), fields[index[time]].strip()
        k, t = parse_time(stamp)
        if k is None or (kind is not None and k != kind and {k, kind} != {"int", "float"}):
            raise DataError(f"{path}:{line}:{index[time] + 1}: {time}: expected a time stamp "
                            f"{'like the first row' if kind else '(a number, 1949-01, 2020-01-31 or 2020-01-31 12:00)'}"
                            f", found {shown(stamp)}")
        kind = k if kind is None or k == kind else "float"
        g = groups.setdefault(sid, {"t": [], "stamps": [], "v": [], "lines": []})
        if g["t"] and not t > g["t"][-1]:
            what = "a duplicated" if t == g["t"][-1] else "an earlier"
            raise DataError(f"{path}:{line}:{index[time] + 1}: {time}: expected a time after {g['stamps'][-1]!r} "
                            f"(line {g['lines'][-1]}) for series {shown(sid)}, found {what} time {shown(stamp)}")
        g["t"].append(t)
        g["stamps"].append(stamp)
        g["lines"].append(line)
        g["v"].append([number(path, line, c + 1, header[c], fields[c], missing) for c in cols])
    if not groups:
        raise DataError(f"{path}:{first[0] + 1}: expected at least one data row after the header, found none")
    panel = Panel(str(path), columns, [], [], [], kind, [])
    for sid, g in groups.items():
        values, times, stamps = _regular(path, sid, g, kind, time, index[time] + 1, missing)
        panel.ids.append(sid)
        panel.values.append(values)
        panel.times.append(times)
        panel.stamps.append(stamps)
    return panel


def _regular(path, sid, g, kind, time, col, missing):
    """One long-format series on its regular grid: gaps are errors, or (interpolate) filled steps."""
    v = np.array(g["v"], dtype=np.float64).reshape(len(g["v"]), -1)
    if len(g["t"]) > 2:
        o = np.array([_ordinal(kind, t) for t in g["t"]])
        steps = np.diff(o)
        values, counts = np.unique(steps, return_counts=True)
        step = values[np.argmax(counts)]
        k = steps / step
        bad = np.flatnonzero(np.abs(k - np.round(k)) > 1e-9)
        if len(bad):
            i = bad[0] + 1
            raise DataError(f"{path}:{g['lines'][i]}:{col}: {time}: expected a regular step for series "
                            f"{shown(sid)} (most often {g['stamps'][1]!r} - {g['stamps'][0]!r} apart), found "
                            f"{g['stamps'][i]!r} after {g['stamps'][i - 1]!r}")
        gaps = np.flatnonzero(np.round(k) > 1)
        if len(gaps):
            i = gaps[0] + 1
            if missing == "error":
                raise DataError(f"{path}:{g['lines'][i]}:{col}: {time}: expected the step after "
                                f"{g['stamps'][i - 1]!r} for series {shown(sid)}, found {g['stamps'][i]!r} "
                                f"({int(round(k[i - 1])) - 1} missing steps); use --missing interpolate to fill them")
            pos = np.concatenate([[0], np.cumsum(np.round(k).astype(int))])
            full = np.full((pos[-1] + 1, v.shape[1]), np.nan)
            full[pos] = v
            filled = interpolate(full)
            times = [None] * len(full)  # stamps of inserted steps are not needed for training
            for p, t in zip(pos, g["t"]):
                times[p] = t
            stamps = [g["stamps"][0]] * len(full)
            for p, s in zip(pos, g["stamps"]):
                stamps[p] = s
            return filled, _fill_times(times), stamps
    if np.isnan(v).any():
        bad = np.isnan(v).all(axis=0)
        if bad.any():
            raise DataError(f"{path}:{g['lines'][0]}: expected at least one value of series {shown(sid)}, found none")
        v = interpolate(v)
    return v, list(g["t"]), list(g["stamps"])


def _fill_times(times: list) -> list:
    """Inserted steps' stamps by linear interpolation between the known neighbours."""
    known = [i for i, t in enumerate(times) if t is not None]
    out = list(times)
    for a, b in zip(known, known[1:]):
        for i in range(a + 1, b):
            out[i] = out[a] + (out[b] - out[a]) * (i - a) / (b - a)
    return out


def write_wide(path, ids: Sequence[str], rows: Sequence[Sequence[float]], prefix: str = "F") -> str:
    """M4's forecast format: a header "id","F1",...,"FH", then one row per series. Written to `path`
    (temp file + rename) when given; returns the text."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    h = len(rows[0]) if len(rows) else 0
    w.writerow(["id", *(f"{prefix}{k}" for k in range(1, h + 1))])
    for sid, r in zip(ids, rows):
        w.writerow([sid, *(float(f"{float(v):.6g}") for v in r)])
    return _write(path, buf.getvalue())


def write_long(path, ids: Sequence[str], stamps: Sequence[Sequence[str]], columns: dict) -> str:
    """unique_id, ds, then one column per name in `columns` ({name: list over series of (H,) arrays})."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["unique_id", "ds", *columns])
    for i, sid in enumerate(ids):
        for k, stamp in enumerate(stamps[i]):
            w.writerow([sid, stamp, *(f"{float(c[i][k]):.6g}" for c in columns.values())])
    return _write(path, buf.getvalue())


def _write(path, text: str) -> str:
    if path is not None:
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    return text
