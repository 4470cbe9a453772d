"""Reading text files (UTF-8, optionally gzip-compressed) and splitting them into tokens.

Every reader of rnnkit.data opens its file through this module (`read_text`, `read_lines`, `iter_lines`,
`read_json`), so the same checks hold for every format:

    missing file, directory                 -> "f.txt: file not found (expected UTF-8 text)"
    truncated or corrupt gzip               -> "f.txt.gz:12: expected UTF-8 text (gzip-compressed), found the
                                                 gzip data cut short (a truncated file?)"
    a binary file (.npy, .npz, safetensors,  -> "f.tsv: expected UTF-8 text, found a zip archive (e.g. a NumPy
      pickle, zip, NUL bytes)                    .npz file)"
    bytes that are not UTF-8                -> "f.txt:3: expected UTF-8 text, found bytes that are not
                                                 UTF-8 (byte 0xff at offset 17)"
    nothing but whitespace                  -> "f.txt: file is empty (expected UTF-8 text)"

`shown(value)` cuts a value quoted in a message, so that a 100 KB field still gives a short line.

Errors are `DataError` (a ValueError) whose message names the file (and line) and says what was expected,
so the CLI can print it as one line. gzip data is recognised by its magic bytes whatever the file's name; a
file named `.gz` that is not gzip is an error. A UTF-8 byte-order mark at the start is dropped.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import NamedTuple


class DataError(ValueError):
    """Bad user data: the message names the file and what was expected."""


LEVELS = ("char", "word")
TEXT = "UTF-8 text"
GZIP_MAGIC = b"\x1f\x8b"
BOM = "\ufeff".encode()
_GZIP_ERRORS = (OSError, EOFError, zlib.error)  # BadGzipFile is an OSError; a bad deflate block is zlib.error
_CHUNK = 1 << 16
# (magic bytes at offset 0, what the file is) for binary formats that are given by mistake as text
_SIGNATURES = (
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"PK\x03\x04", "a zip archive (e.g. a NumPy .npz file or a torch checkpoint)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x80\x02", "a Python pickle"), (b"\x80\x03", "a Python pickle"), (b"\x80\x04", "a Python pickle"),
    (b"\x80\x05", "a Python pickle"),
    (b"\x89PNG", "a PNG image"), (b"\xfd7zXZ", "xz-compressed data"), (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
)


def bundled_path(name: str = "tinyshakespeare.txt") -> Path:
    """Path of a data file shipped inside the package (e.g. tiny Shakespeare)."""
    return Path(str(resources.files("rnnkit.data").joinpath(name)))


def describe_binary(head: bytes) -> str | None:
    """What a file starting with `head` is when it is a known binary format, else None."""
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    if head.startswith(b"BZh") and head[4:10] == b"1AY&SY":
        return "bzip2-compressed data"
    if len(head) >= 10 and head[8:10] == b'{"' and int.from_bytes(head[:8], "little") < 1 << 30:
        return "a safetensors file"
    return None


def shown(value, limit: int = 60, quote: bool = True) -> str:
    """repr(value) (str(value) with quote=False) for an error message, cut to about `limit` characters so
    that one bad field of 100 KB still gives a short line: 'xxxxx'... (140000 characters)."""
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit] if len(text) > limit else text
    cut = repr(cut) if quote else cut
    return f"{cut}... ({len(text)} characters)" if len(text) > limit else cut


def _checked(path: str | os.PathLike, expected: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found (expected {expected}, optionally .gz)")
    if path.is_dir():
        raise DataError(f"{path}: is a directory (expected {expected}, optionally .gz)")
    return path


def _not_gzip(path: Path, head: bytes, expected: str) -> DataError:
    found = describe_binary(head) or f"the bytes {head[:2]!r}"
    return DataError(f"{path}: not a valid gzip file (expected {expected}, gzip-compressed as the name ends in "
                     f".gz; found {found} at the start)")


def _gzip_error(path: Path, lines_read: int, e: Exception, expected: str) -> DataError:
    reason = "cut short (a truncated file?)" if isinstance(e, EOFError) else f"corrupt ({e})"
    return DataError(f"{path}:{lines_read + 1}: expected {expected} (gzip-compressed), found the gzip data {reason}")


def read_bytes(path: str | os.PathLike, expected: str = TEXT) -> bytes:
    """The file's bytes, decompressed when they are gzip data (by their magic bytes, whatever the name);
    DataError when the file is missing, a directory, unreadable, named .gz but not gzip, or a truncated or
    corrupt gzip stream (the message names the line where the readable data ends)."""
    path = _checked(path, expected)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: could not read the file ({e.strerror or e}); expected {expected}") from None
    if not raw.startswith(GZIP_MAGIC):
        if path.suffix == ".gz":
            raise _not_gzip(path, raw[:64], expected)
        return raw
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb") as f:
            while chunk := f.read1(_CHUNK):  # one input block at a time: the error names its line
                out += chunk
    except _GZIP_ERRORS as e:
        raise _gzip_error(path, out.count(b"\n"), e, expected) from None
    return bytes(out)


def decode(path: str | os.PathLike, raw: bytes, expected: str = TEXT, first_line: int = 1) -> str:
    """`raw` (the file's bytes from line `first_line` on) as UTF-8 text, a leading BOM dropped; DataError
    for a binary format, a NUL byte or bytes that are not UTF-8, naming the line."""
    if first_line == 1 and (binary := describe_binary(raw[:64])):
        raise DataError(f"{path}: expected {expected}, found {binary}")
    if b"\x00" in raw:
        line = first_line + raw[: raw.index(0)].count(b"\n")
        raise DataError(f"{path}:{line}: expected {expected}, found binary data (a NUL byte)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + raw[: e.start].count(b"\n")
        where = "" if first_line == 1 else " of the line"
        raise DataError(f"{path}:{line}: expected {expected}, found bytes that are not UTF-8 "
                        f"(byte 0x{raw[e.start]:02x} at offset {e.start}{where})") from None
    return text[1:] if first_line == 1 and text.startswith("\ufeff") else text


def read_text(path: str | os.PathLike, expected: str = TEXT) -> str:
    """The whole file as a str. gzip data is decompressed. Raises DataError when the file is missing, is a
    directory, is not gzip although named .gz, is truncated or corrupt gzip, is binary, is not UTF-8, or holds
    no text; `expected` (e.g. "CoNLL-U sentences") says in the message what the file should have held."""
    path = Path(path)
    text = decode(path, read_bytes(path, expected), expected)
    if not text.strip():
        raise DataError(f"{path}: file is empty (expected {expected})")
    return text


def split_lines(text: str) -> list[str]:
    """Lines split at "\\n" only ("\\r\\n" endings dropped too), as an editor numbers them; unlike
    str.splitlines, U+2028, form feeds and other separators stay inside their line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_lines(path: str | os.PathLike, expected: str = TEXT) -> list[str]:
    """The lines of a UTF-8 (or .gz) text file, without their line endings ("\\n" or "\\r\\n")."""
    return split_lines(read_text(path, expected))


@contextlib.contextmanager
def _open_bytes(path: Path, expected: str) -> Iterator:
    """The file's bytes to read from, decompressed when it is gzip (by its magic bytes; a .gz name without them
    is a DataError), closed on exit."""
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: could not read the file ({e.strerror or e}); expected {expected}") from None
    with raw:
        gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if path.suffix == ".gz" and not gzipped:
            raise _not_gzip(path, raw.read(64), expected)
        yield gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw


def iter_lines(path: str | os.PathLike, expected: str = TEXT) -> Iterator[tuple[int, str]]:
    """(line number, line without its ending) of a file too big to hold at once (e.g. GloVe vectors), with
    the checks of `read_text` (an empty file just yields nothing)."""
    path = _checked(path, expected)
    with _open_bytes(path, expected) as f:
        try:
            binary = describe_binary(f.read(64))  # a binary format given as text: say which
            f.seek(0)
        except _GZIP_ERRORS as e:
            raise _gzip_error(path, 0, e, expected) from None
        if binary:
            raise DataError(f"{path}: expected {expected}, found {binary}")
        number = 0
        try:
            for number, line in enumerate(f, start=1):
                text = decode(path, line, expected, first_line=number)
                yield number, text.rstrip("\n").removesuffix("\r")
        except _GZIP_ERRORS as e:
            raise _gzip_error(path, number, e, expected) from None


class Chunk(NamedTuple):
    """A piece of a text file (`iter_chunks`): its first line's number, its text, and the same text as the
    UTF-8 bytes it was decoded from (already checked: valid UTF-8, no NUL, a leading BOM dropped)."""

    line: int
    text: str
    raw: bytes


def iter_chunks(path: str | os.PathLike, expected: str = TEXT, size: int = 1 << 23) -> Iterator[Chunk]:
    """Pieces (`Chunk`) of about `size` bytes of a file too big to hold at once, each ending at a line end
    (the last one at the end of the file), with the checks of `read_text`; the pieces' texts joined are
    `read_text`'s string (a leading BOM dropped). A file holding no text at all is DataError "file is empty"."""
    path = _checked(path, expected)
    with _open_bytes(path, expected) as f:
        line, pending, blank = 1, b"", True
        while True:
            try:
                block = f.read(size)
            except _GZIP_ERRORS as e:
                raise _gzip_error(path, line - 1 + pending.count(b"\n"), e, expected) from None
            data = pending + block
            cut = len(data) if not block else data.rfind(b"\n") + 1
            if cut == 0 and block:  # no line end yet: keep reading
                pending = data
                continue
            piece, pending = data[:cut], data[cut:]
            if piece:
                text = decode(path, piece, expected, first_line=line)
                blank = blank and not text.strip()
                bom = line == 1 and piece.startswith(BOM)
                yield Chunk(line, text, piece[len(BOM):] if bom else piece)
                line += piece.count(b"\n")
            if not block:
                break
        if blank:
            raise DataError(f"{path}: file is empty (expected {expected})")


def read_json(path: str | os.PathLike, expected: str = "JSON"):
    """The parsed JSON value of a file; DataError `file:line: expected JSON, found ...` when it is not JSON
    (plus every check of `read_text`). The caller checks the value's types against `expected`."""
    text = read_text(path, expected)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: expected {expected}, found text that is not JSON "
                        f"({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise DataError(f"{path}: expected {expected}, found JSON nested too deeply to read") from None


def tokenize(text: str, level: str, eos: str = "<eos>") -> list[str]:
    """Split text into tokens.

    char: every character, newlines included (char-rnn).
    word: whitespace-separated words, with `eos` appended at the end of every non-blank line
          (pytorch/examples word_language_model, Mikolov's PTB setup).
    """
    if level == "char":
        return list(text)
    if level == "word":
        tokens: list[str] = []
        for line in text.splitlines():
            words = line.split()
            if words:
                tokens.extend(words)
                tokens.append(eos)
        return tokens
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def detokenize(tokens: list[str], level: str, eos: str = "<eos>") -> str:
    """Inverse of `tokenize` up to whitespace: chars are joined; words are joined by spaces, eos -> newline."""
    if level == "char":
        return "".join(tokens)
    parts, line = [], []
    for tok in tokens:
        if tok == eos:
            parts.append(" ".join(line) + "\n")
            line = []
        else:
            line.append(tok)
    parts.append(" ".join(line))
    return "".join(parts)
