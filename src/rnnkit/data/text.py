"""Reading text files (UTF-8, optionally gzip-compressed) and splitting them into tokens.

Errors are `DataError` (a ValueError) whose message names the file and says what was expected,
so the CLI can print it as one line.
"""
from __future__ import annotations

import gzip
import os
from importlib import resources
from pathlib import Path


class DataError(ValueError):
    """Bad user data: the message names the file and what was expected."""


LEVELS = ("char", "word")


def bundled_path(name: str = "tinyshakespeare.txt") -> Path:
    """Path of a data file shipped inside the package (e.g. tiny Shakespeare)."""
    return Path(str(resources.files("rnnkit.data").joinpath(name)))


def read_text(path: str | os.PathLike) -> str:
    """The whole file as a str. `.gz` files are decompressed. Raises DataError when the file is missing,
    is a directory, is not gzip although named .gz, is not UTF-8, or holds no text."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found (expected a UTF-8 text file, optionally .gz)")
    if path.is_dir():
        raise DataError(f"{path}: is a directory (expected a UTF-8 text file, optionally .gz)")
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                        "expected UTF-8 text") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise DataError(f"{path}: file is empty (expected UTF-8 text)")
    return text


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a valid gzip file ({e}); expected gzip-compressed UTF-8 text") from None


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
