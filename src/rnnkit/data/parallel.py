"""Parallel text for sequence-to-sequence tasks: two line-aligned files, one sentence per line.

    pairs = read_parallel("train.de.gz", "train.en.gz", level="word", lowercase=True, max_len=50)
    pairs.src[i], pairs.tgt[i]        # token lists of the i-th kept pair

Line i of the source file is the translation of line i of the target file. Files are UTF-8, `.gz` accepted
(`rnnkit.data.read_text`). Tokenisation: "word" splits on whitespace, "char" keeps every character (spaces
included); `lowercase` lowercases first. Pairs with an empty side are skipped (they are counted, and
`lines` keeps the 1-based line number of every kept pair); sentences longer than `max_len` tokens are
truncated with one warning that says how many and where the first one is. Files with different numbers of
lines raise `DataError` naming both files and both counts.

One→sequence data (`read_vectors`): one fixed vector per target line, from a `.npy` file (2-D float array)
or a CSV file (one row of comma-separated numbers per line, no header).
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from rnnkit.data.text import DataError, read_bytes, read_lines, shown

TOKENIZATIONS = ("word", "char")
NPY_MAGIC = b"\x93NUMPY"
VECTORS = "a .npy array or a CSV file of numbers (one vector per line)"
__all__ = ["ParallelText", "read_lines", "read_parallel", "read_vectors", "read_vectors_and_targets"]


def tokenize_line(line: str, level: str = "word", lowercase: bool = False) -> list[str]:
    """One sentence -> tokens: whitespace-separated words, or characters (inner spaces kept, ends stripped)."""
    if level not in TOKENIZATIONS:
        raise ValueError(f"level must be one of {TOKENIZATIONS}, got {level!r}")
    if lowercase:
        line = line.lower()
    return line.split() if level == "word" else list(line.strip())


def detokenize_line(tokens: list[str], level: str = "word") -> str:
    return " ".join(tokens) if level == "word" else "".join(tokens)


@dataclass
class ParallelText:
    """Kept sentence pairs (token lists) and where they came from."""

    src: list[list[str]]
    tgt: list[list[str]]
    lines: list[int]  # 1-based line number of each kept pair in both files
    skipped_empty: int = 0
    truncated: int = 0
    paths: tuple[str, str] = field(default=("", ""))

    def __len__(self) -> int:
        return len(self.src)


def truncate(sentences: list[list[str]], max_len: int | None, path, lines: list[int]) -> int:
    """Cut sentences to `max_len` tokens in place; one warning naming the count and the first line."""
    if max_len is None:
        return 0
    if max_len <= 0:
        raise ValueError(f"max_len must be > 0, got {max_len}")
    long = [i for i, s in enumerate(sentences) if len(s) > max_len]
    if long:
        first = long[0]
        warnings.warn(f"{path}:{lines[first]}: {len(long)} sentence(s) longer than {max_len} tokens truncated "
                      f"to {max_len} (the first has {len(sentences[first])})", stacklevel=3)
        for i in long:
            sentences[i] = sentences[i][:max_len]
    return len(long)


def read_parallel(src_path, tgt_path, level: str = "word", lowercase: bool = False,
                  max_len: int | None = 100, tgt_level: str | None = None) -> ParallelText:
    """Read two line-aligned files into token lists (see the module docstring)."""
    src_lines, tgt_lines = read_lines(src_path), read_lines(tgt_path)
    if len(src_lines) != len(tgt_lines):
        raise DataError(f"{src_path} has {len(src_lines)} lines but {tgt_path} has {len(tgt_lines)}; "
                        "expected line-aligned files (line i of one is the translation of line i of the other)")
    src, tgt, kept = [], [], []
    for n, (s, t) in enumerate(zip(src_lines, tgt_lines), start=1):
        s_tok, t_tok = tokenize_line(s, level, lowercase), tokenize_line(t, tgt_level or level, lowercase)
        if s_tok and t_tok:
            src.append(s_tok)
            tgt.append(t_tok)
            kept.append(n)
    if not src:
        raise DataError(f"{src_path}, {tgt_path}: no sentence pair with text on both sides "
                        f"(expected non-empty lines, found {len(src_lines)} empty pairs)")
    truncated = truncate(src, max_len, src_path, kept) + truncate(tgt, max_len, tgt_path, kept)
    return ParallelText(src, tgt, kept, len(src_lines) - len(src), truncated, (str(src_path), str(tgt_path)))


def read_vectors(path: str | os.PathLike) -> np.ndarray:
    """(N, F) float32 array of finite numbers from a .npy file (recognised by its magic bytes, optionally
    gzip-compressed) or a CSV file of numbers (one vector per line). Anything else (an .npz archive, a
    pickle, a 1-D or object array, NaN) is a DataError naming the file and what was found."""
    raw = read_bytes(path, VECTORS)
    arr = _load_npy(path, raw) if raw.startswith(NPY_MAGIC) else _csv_vectors(path)
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float32)
    bad = np.argwhere(~np.isfinite(out))
    if len(bad):
        row, col = bad[0]
        where = f"{path}: row {row + 1}" if raw.startswith(NPY_MAGIC) else f"{path}:{row + 1}"
        raise DataError(f"{where}: expected finite float32 numbers, found {arr[row, col]} in column {col + 1}")
    return out


def _load_npy(path, raw: bytes) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, EOFError, OSError, SyntaxError) as e:  # truncated data, bad header, object array
        raise DataError(f"{path}: expected {VECTORS}, found a .npy file that numpy cannot read ({e})") from None
    if arr.ndim != 2 or arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected a 2-D array of real numbers (one vector per row), found shape "
                        f"{arr.shape} of {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{path}: expected at least one vector of at least one number, found shape {arr.shape}")
    return arr


def _csv_vectors(path) -> np.ndarray:
    rows = []
    for n, line in enumerate(read_lines(path, VECTORS), start=1):
        cells = line.split(",")
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            raise DataError(f"{path}:{n}: expected comma-separated numbers, found {shown(line)}") from None
        if len(rows[-1]) != len(rows[0]):
            raise DataError(f"{path}:{n}: expected {len(rows[0])} numbers (as on line 1), found {len(rows[-1])}")
    return np.asarray(rows, dtype=np.float64)


def read_vectors_and_targets(vectors_path, tgt_path, level: str = "word", lowercase: bool = False,
                             max_len: int | None = 100) -> tuple[np.ndarray, ParallelText]:
    """One→sequence data: vector i conditions target line i. Returns the vectors of the kept lines and the
    targets as a ParallelText whose `src` entries are empty."""
    vectors, lines = read_vectors(vectors_path), read_lines(tgt_path)
    if len(vectors) != len(lines):
        raise DataError(f"{vectors_path} has {len(vectors)} vectors but {tgt_path} has {len(lines)} lines; "
                        "expected one vector per target line")
    tgt, kept = [], []
    for n, line in enumerate(lines, start=1):
        tokens = tokenize_line(line, level, lowercase)
        if tokens:
            tgt.append(tokens)
            kept.append(n)
    if not tgt:
        raise DataError(f"{tgt_path}: every line is empty (expected one target sentence per line)")
    truncated = truncate(tgt, max_len, tgt_path, kept)
    text = ParallelText([[] for _ in tgt], tgt, kept, len(lines) - len(tgt), truncated,
                        (str(vectors_path), str(tgt_path)))
    return vectors[np.asarray(kept) - 1], text
