"""Parallel text for sequence-to-sequence tasks: two line-aligned files, one sentence per line.

    pairs = read_parallel("train.de.gz", "train.en.gz", level="word", lowercase=True, max_len=50)
    pairs.src[i], pairs.tgt[i]        # token lists of the i-th kept pair

Line i of the source file is the translation of line i of the target file. Files are UTF-8, `.gz` accepted
(`rnnkit.data.read_text`). Tokenisation: "word" splits on whitespace, "char" keeps every character (spaces
included); `lowercase` lowercases first. Pairs with an empty side are skipped (they are counted, and
`lines` keeps the 1-based line number of every kept pair); sentences longer than `max_len` tokens are
truncated with one warning that says how many and where the first one is. Files with different numbers of
lines raise `DataError` naming both files and both counts.

Sentence pairs in one file (`read_tsv_pairs`): one pair per line, tab-separated columns (the common download
format of sentence-pair corpora; extra columns such as an attribution are allowed), `columns` picks the
(source, target) columns, so (1, 0) swaps the direction. A line with too few columns or an empty sentence in
a chosen column is a DataError `file:line: expected ..., found ...`; blank lines are skipped. CRLF endings and a
byte-order mark are accepted. Tokenisation of raw pairs (`RawPairs`) with any `rnnkit.data.tokenizers.Tokenizer`:
`tokenize_pairs`; a seeded hold-out: `split_pairs`.

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
from rnnkit.data.tokenizers import FROM_LEVEL, Tokenizer

TOKENIZATIONS = ("word", "char")
NPY_MAGIC = b"\x93NUMPY"
VECTORS = "a .npy array or a CSV file of numbers (one vector per line)"
__all__ = ["ParallelText", "RawPairs", "read_line_pairs", "read_lines", "read_parallel", "read_tsv_pairs",
           "read_vectors", "read_vectors_and_targets", "split_pairs", "tokenize_pairs"]


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


@dataclass
class RawPairs:
    """Untokenised sentence pairs and the 1-based line number of each (in both files, or in the TSV file)."""

    src: list[str]
    tgt: list[str]
    lines: list[int]
    paths: tuple[str, str]

    def __len__(self) -> int:
        return len(self.src)

    def subset(self, index) -> RawPairs:
        return RawPairs([self.src[i] for i in index], [self.tgt[i] for i in index], [self.lines[i] for i in index],
                        self.paths)


def read_line_pairs(src_path, tgt_path) -> RawPairs:
    """Two line-aligned files -> every line pair (empty ones too; `tokenize_pairs` skips them)."""
    src_lines, tgt_lines = read_lines(src_path), read_lines(tgt_path)
    if len(src_lines) != len(tgt_lines):
        raise DataError(f"{src_path} has {len(src_lines)} lines but {tgt_path} has {len(tgt_lines)}; "
                        "expected line-aligned files (line i of one is the translation of line i of the other)")
    return RawPairs(src_lines, tgt_lines, list(range(1, len(src_lines) + 1)), (str(src_path), str(tgt_path)))


def parse_columns(text: str) -> tuple[int, int]:
    """--columns "0,1" -> (0, 1): the 0-based source and target columns of a TSV file."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts) or parts[0].strip() == parts[1].strip():
        raise DataError(f"--columns: expected two different 0-based column numbers such as 0,1 (source, target), "
                        f"found {text!r}")
    return int(parts[0]), int(parts[1])


def read_tsv_pairs(path, columns: tuple[int, int] = (0, 1)) -> RawPairs:
    """Tab-separated sentence pairs (see the module docstring)."""
    need = max(columns) + 1
    src, tgt, kept = [], [], []
    for n, line in enumerate(read_lines(path, "tab-separated sentence pairs"), start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) < need:
            raise DataError(f"{path}:{n}: expected at least {need} tab-separated columns (a sentence pair), "
                            f"found {len(cells)}: {shown(line)}")
        pair = [cells[columns[0]], cells[columns[1]]]
        for side, text in zip(columns, pair):
            if not text.strip():
                raise DataError(f"{path}:{n}: column {side}: expected a sentence, found an empty field")
        src.append(pair[0])
        tgt.append(pair[1])
        kept.append(n)
    return RawPairs(src, tgt, kept, (str(path), str(path)))


def split_pairs(pairs: RawPairs, fraction: float, seed: int) -> tuple[RawPairs, RawPairs]:
    """A seeded random `fraction` of the pairs held out: (train, valid), each in file order."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {fraction}")
    if len(pairs) < 2:
        raise DataError(f"{pairs.paths[0]}: expected at least 2 sentence pairs to hold out a validation set, "
                        f"found {len(pairs)}")
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_valid = max(1, int(len(pairs) * fraction))
    return pairs.subset(sorted(order[n_valid:])), pairs.subset(sorted(order[:n_valid]))


def tokenize_pairs(pairs: RawPairs, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, lowercase: bool = False,
                   max_len: int | None = 100) -> ParallelText:
    """Tokenise raw pairs; pairs with an empty side are skipped (counted), long sentences truncated."""
    lower = (lambda x: x.lower()) if lowercase else (lambda x: x)  # noqa: E731
    src_tok = src_tokenizer.encode_many([lower(s) for s in pairs.src])
    tgt_tok = tgt_tokenizer.encode_many([lower(t) for t in pairs.tgt])
    src, tgt, kept = [], [], []
    for s, t, n in zip(src_tok, tgt_tok, pairs.lines):
        if s and t:
            src.append(s)
            tgt.append(t)
            kept.append(n)
    src_path, tgt_path = pairs.paths
    if not src:
        raise DataError(f"{src_path}, {tgt_path}: no sentence pair with text on both sides "
                        f"(expected non-empty lines, found {len(pairs)} empty pairs)")
    truncated = truncate(src, max_len, src_path, kept) + truncate(tgt, max_len, tgt_path, kept)
    return ParallelText(src, tgt, kept, len(pairs) - len(src), truncated, (src_path, tgt_path))


def read_parallel(src_path, tgt_path, level: str = "word", lowercase: bool = False,
                  max_len: int | None = 100, tgt_level: str | None = None) -> ParallelText:
    """Read two line-aligned files into token lists (see the module docstring)."""
    for lv in (level, tgt_level or level):
        if lv not in TOKENIZATIONS:
            raise ValueError(f"level must be one of {TOKENIZATIONS}, got {lv!r}")
    return tokenize_pairs(read_line_pairs(src_path, tgt_path), Tokenizer(FROM_LEVEL[level]),
                          Tokenizer(FROM_LEVEL[tgt_level or level]), lowercase, max_len)


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
                             max_len: int | None = 100, tokenizer: Tokenizer | None = None
                             ) -> tuple[np.ndarray, ParallelText]:
    """One→sequence data: vector i conditions target line i. Returns the vectors of the kept lines and the
    targets as a ParallelText whose `src` entries are empty. `tokenizer`: how targets are split (default:
    the one `level` names)."""
    if tokenizer is None:
        if level not in TOKENIZATIONS:
            raise ValueError(f"level must be one of {TOKENIZATIONS}, got {level!r}")
        tokenizer = Tokenizer(FROM_LEVEL[level])
    vectors, lines = read_vectors(vectors_path), read_lines(tgt_path)
    if len(vectors) != len(lines):
        raise DataError(f"{vectors_path} has {len(vectors)} vectors but {tgt_path} has {len(lines)} lines; "
                        "expected one vector per target line")
    tgt, kept = [], []
    for n, line in enumerate(lines, start=1):
        tokens = tokenizer.encode(line.lower() if lowercase else line)
        if tokens:
            tgt.append(tokens)
            kept.append(n)
    if not tgt:
        raise DataError(f"{tgt_path}: every line is empty (expected one target sentence per line)")
    truncated = truncate(tgt, max_len, tgt_path, kept)
    text = ParallelText([[] for _ in tgt], tgt, kept, len(lines) - len(tgt), truncated,
                        (str(vectors_path), str(tgt_path)))
    return vectors[np.asarray(kept) - 1], text
