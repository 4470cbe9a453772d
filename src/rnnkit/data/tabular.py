"""TSV / CSV files of labelled texts: one example per row, a text column and a label column.

    rows = read_table("train.tsv", text_column="sentence", label_column="label")   # names need a header
    rows = read_table("train.csv", text_column=1, label_column=0)                 # 0-based indexes
    rows[0].text, rows[0].label, rows[0].line

Parsing is Python's `csv` module (double-quote quoting, "" escapes, quoted fields may span lines); the
delimiter is a tab for .tsv/.tab files (also when gzip-compressed) and a comma otherwise, unless given.
Blank lines are skipped. Every row must have as many columns as the first one (the header, if any);
otherwise `DataError("file:line: expected N columns, found M")`.
"""
from __future__ import annotations

import csv
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.text import DataError, read_text, shown

Column = int | str


@dataclass(frozen=True)
class Row:
    text: str
    label: str | None  # None when the table has no label column (prediction input)
    line: int  # 1-based line of the file where the row starts


def delimiter_for(path: str | os.PathLike) -> str:
    """Tab for .tsv / .tab (optionally .gz), comma otherwise."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return "\t" if name.endswith((".tsv", ".tab")) else ","


def parse_column(text: str) -> Column:
    """A command-line column: a 0-based index ("1") or a header name ("sentence")."""
    return int(text) if text.lstrip("-").isdigit() else text


def read_table(path: str | os.PathLike, text_column: Column = 0, label_column: Column | None = 1,
               header: bool | None = None, delimiter: str | None = None, quoting: bool = True) -> list[Row]:
    """Rows of `path` as (text, label, line).

    Args:
        text_column, label_column: 0-based index or header name; label_column None reads texts only.
        header: whether the first non-blank row is a header; None means "yes if a column is given by name".
        delimiter: default from the file name (`delimiter_for`).
        quoting: parse double-quoted fields (csv's default); False treats quotes as ordinary characters.
    """
    path = Path(path)
    if header is None:
        header = isinstance(text_column, str) or isinstance(label_column, str)
    records = read_records(path, delimiter or delimiter_for(path), quoting)
    if not records:
        raise DataError(f"{path}: file is empty (expected rows of delimited text)")
    width = len(records[0][1])
    names: list[str] | None = None
    if header:
        names = [n.strip() for n in records[0][1]]
        records = records[1:]
        if not records:
            raise DataError(f"{path}: expected rows after the header line, found none")
    text_i = _column_index(path, text_column, names, width, "text")
    label_i = None if label_column is None else _column_index(path, label_column, names, width, "label")
    rows = []
    for line, fields in records:
        if len(fields) != width:
            raise DataError(f"{path}:{line}: expected {width} columns, found {len(fields)}")
        text = fields[text_i].strip()
        if not text:
            raise DataError(f"{path}:{line}: expected a text in column {_name(text_column)}, found an empty field")
        label = None
        if label_i is not None:
            label = fields[label_i].strip()
            if not label:
                raise DataError(f"{path}:{line}: expected a label in column {_name(label_column)}, "
                                "found an empty field")
        rows.append(Row(text, label, line))
    return rows


def read_records(path: str | os.PathLike, delimiter: str = ",", quoting: bool = True, strict: bool | None = None,
                 expected: str = "rows of delimited text") -> list[tuple[int, list[str]]]:
    """(line where the record starts, fields) of every non-blank record of a CSV/TSV file (`read_text`'s
    checks first). `strict` (default: `quoting`) makes a stray quote an error. A field may be as long as the
    file: csv's field_size_limit (128 KiB by default) is raised to the text's length when that is larger, so
    a long text cell is read, not refused."""
    text = read_text(path, expected)  # missing, empty, binary, not UTF-8, bad gzip -> DataError
    if csv.field_size_limit() < len(text):
        csv.field_size_limit(min(len(text) + 1, sys.maxsize))  # process-wide, only ever raised
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE,
                        strict=quoting if strict is None else strict)
    records, start = [], 1
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                records.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path}:{start}: expected {expected} with balanced quotes, found a parse error "
                        f"({e}); quote the field or pass quoting=False / --no-quoting") from None
    return records


def _name(column: Column) -> str:
    return repr(column) if isinstance(column, str) else str(column)


def _column_index(path: Path, column: Column, names: list[str] | None, width: int, role: str) -> int:
    if isinstance(column, str):
        if names is None:
            raise DataError(f"{path}: the {role} column is given by name ({column!r}), which needs a header line")
        if column not in names:
            raise DataError(f"{path}:1: expected a {role} column named {column!r} in the header, found "
                            f"{shown(str(names), 200, quote=False)}")
        return names.index(column)
    if not -width <= column < width:
        raise DataError(f"{path}: expected the {role} column index {column} to be < {width} "
                        f"(the file has {width} columns)")
    return column % width
