"""metrics.jsonl read strictly for the report: every record checked against what the Trainer and
rnnkit.diagnostics write (rnnkit.train.progress.MetricsLog, rnnkit.diagnostics.callbacks), so that a damaged or
foreign file is one line ``metrics.jsonl:LINE: expected ..., found ...`` (a DataError, exit 2), never a traceback
from deep inside a plot.

Tolerated: blank lines, and a last line cut short by a killed process (no newline at its end, not valid JSON).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from rnnkit.data import DataError

METRIC_SPLITS = ("train", "valid", "train_running")
UPDATE_LISTS = ("updates.step", "updates.loss", "updates.grad_norm", "updates.grad_norm_clipped", "updates.clipped")


def read_records(run_dir) -> list[dict]:
    """Every record of RUN_DIR/metrics.jsonl, checked (see the module docstring)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: expected the run's training log (one JSON record per line), found no file "
                        "(was the run trained, and with this directory as --out?)")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if number == len(lines):  # no newline after it: a write cut short by a kill
                continue
            raise DataError(f"{path}:{number}: expected a JSON record, found invalid JSON ({e.msg})") from None
        records.append(check_record(record, f"{path}:{number}"))
    if not records:
        raise DataError(f"{path}:1: expected JSON records (one per line), found an empty file")
    return records


def check_record(record, where: str) -> dict:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, found {_found(record)}")
    _need(record, "step", where, _is_count, "a non-negative integer")
    _need(record, "split", where, lambda v: isinstance(v, str), "a string")
    for key, test, what in (("epoch", _is_count, "a non-negative integer"), ("time", _is_number, "a number")):
        if key in record:
            _need(record, key, where, test, what)
    split = record["split"]
    if split in METRIC_SPLITS or "metrics" in record:
        _need(record, "metrics", where, _is_number_dict, "an object of numbers")
    if split == "diagnostics":
        _check_diagnostics(record, where)
    return record


def _check_diagnostics(record: dict, where: str) -> None:
    _need(record, "kind", where, lambda v: isinstance(v, str), "a string")
    _need(record, "diagnostics", where, lambda v: isinstance(v, dict), "an object")
    values = record["diagnostics"]
    for key, value in values.items():
        if not (_is_number(value) or isinstance(value, str) or
                isinstance(value, list) and all(_is_number(v) for v in value)):
            raise DataError(f'{where}: expected "diagnostics"."{key}": a number or a list of numbers, found '
                            f"{_found(value)}")
    if record["kind"] == "updates":
        lengths = set()
        for key in UPDATE_LISTS:
            if not isinstance(values.get(key), list):
                raise DataError(f'{where}: expected "diagnostics"."{key}": a list (kind "updates"), found '
                                f"{_found(values.get(key), missing=key not in values)}")
            lengths.add(len(values[key]))
        if len(lengths) > 1:
            raise DataError(f"{where}: expected the updates.* lists to have one length, found lengths "
                            f"{sorted(lengths)}")
        if not _is_number(values.get("updates.clip_rate")):
            raise DataError(f'{where}: expected "diagnostics"."updates.clip_rate": a number, found '
                            f"{_found(values.get('updates.clip_rate'), missing='updates.clip_rate' not in values)}")


def _need(record: dict, key: str, where: str, test, what: str) -> None:
    if key not in record:
        raise DataError(f'{where}: expected "{key}": {what}, found no "{key}"')
    if not test(record[key]):
        raise DataError(f'{where}: expected "{key}": {what}, found {_found(record[key])}')


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_number_dict(v) -> bool:
    return isinstance(v, dict) and all(_is_number(x) for x in v.values())


def _found(value, missing: bool = False) -> str:
    if missing:
        return "nothing"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = json.dumps(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    kind = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
    return f"{text} ({kind})"
