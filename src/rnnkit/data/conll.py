"""Tagged sentences: CoNLL-U (Universal Dependencies), CoNLL column files (NER) and whitespace-tokenised text.

    sentences = read_conllu("en_ewt-ud-train.conllu.gz", column="upos")   # or column="xpos"
    sentences = read_conll("wnut17train.conll", scheme="bio")            # token ... tag, BIO or IOBES
    text = format_sentences(sentences, predicted_tags)                   # the same format, tags replaced

Each `Sentence` keeps the lines it was read from, so a file can be written back *unchanged except for the
tag column* (comments, multiword-token ranges, empty nodes and every other column stay as they were).

CoNLL-U (https://universaldependencies.org/format.html): 10 tab-separated columns ID FORM LEMMA UPOS XPOS
FEATS HEAD DEPREL DEPS MISC; `#` comment lines; multiword-token ranges (ID `2-3`) and empty nodes (ID `8.1`)
are kept for writing but are not words to tag. CoNLL column format (CoNLL-2003, WNUT-17): one token per line,
whitespace-separated columns, the token first and the tag last; a blank or whitespace-only line ends a
sentence; `-DOCSTART-` lines are skipped. Tags are checked against the scheme:

    bio    O, B-X, I-X; I-X must continue an entity of type X (follow B-X or I-X)
    iobes  O, B-X, I-X, E-X, S-X; I-X/E-X continue a B-X/I-X; B-X/I-X must be continued by I-X or E-X
    none   any tag (POS, chunks, IOB1 files whose entities may start with I-)

Errors are `DataError`s `file:line: expected ..., found ...`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.data.text import DataError, read_lines, shown

FORMATS = ("conllu", "conll", "text")
COLUMNS = {"upos": 3, "xpos": 4}
SCHEMES = ("bio", "iobes", "none")
DOCSTART = "-DOCSTART-"


@dataclass
class Sentence:
    """One sentence: its words, their gold tags (None when the file has none), and where it came from.

    `lines` are the raw lines of the sentence (without the final newline) and `word_lines[k]` is the index
    in `lines` of word k's line; `line` is the file line number of `lines[0]`."""

    words: list[str]
    tags: list[str] | None
    line: int
    lines: list[str] = field(default_factory=list)
    word_lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.words)


def _blocks(path, expected: str) -> list[tuple[int, list[str]]]:
    """The file's sentences as (first line number, lines): runs of lines separated by blank lines."""
    blocks, current, start = [], [], 0
    for number, line in enumerate(read_lines(path, expected), start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line)
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def read_conllu(path: str | os.PathLike, column: str = "upos", require_tags: bool = True) -> list[Sentence]:
    """Sentences of a CoNLL-U file (optionally .gz) tagged with UPOS (column 4) or XPOS (column 5).

    With `require_tags=False` (prediction) the tag column may hold `_` and `Sentence.tags` is None."""
    if column not in COLUMNS:
        raise ValueError(f"column must be one of {sorted(COLUMNS)}, got {column!r}")
    col = COLUMNS[column]
    sentences = []
    for start, lines in _blocks(path, "CoNLL-U sentences (UTF-8 text)"):
        words, tags, word_lines = [], [], []
        for k, line in enumerate(lines):
            number = start + k
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 10:
                raise DataError(f"{path}:{number}: expected 10 tab-separated columns, found {len(cols)}")
            ident = cols[0]
            if "-" in ident or "." in ident:  # multiword-token range or empty node: not a word to tag
                continue
            if not ident.isdigit():
                raise DataError(f"{path}:{number}: expected an integer word ID (or a range 1-2, or 1.1), "
                                f"found {shown(ident)}")
            if require_tags and cols[col] == "_":
                raise DataError(f"{path}:{number}: expected a {column.upper()} tag in column {col + 1}, found '_'")
            words.append(cols[1])
            tags.append(cols[col])
            word_lines.append(k)
        if words:
            sentences.append(Sentence(words, tags if require_tags else None, start, lines, word_lines))
    if not sentences:
        raise DataError(f"{path}: expected CoNLL-U sentences (10 tab-separated columns), found none")
    return sentences


def read_conll(path: str | os.PathLike, scheme: str = "bio", require_tags: bool = True) -> list[Sentence]:
    """Sentences of a CoNLL column file: token first, tag last (whitespace-separated columns).

    With `require_tags=False` (prediction) lines may hold only the token, and `Sentence.tags` is None."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    sentences = []
    for start, lines in _blocks(path, "CoNLL sentences (UTF-8 text)"):
        if lines[0].split()[0] == DOCSTART:
            lines, start = lines[1:], start + 1
            if not lines:
                continue
        words, tags = [], []
        for k, line in enumerate(lines):
            cols = line.split()
            if require_tags and len(cols) < 2:
                raise DataError(f"{path}:{start + k}: expected a token and a tag (at least 2 columns), "
                                f"found {len(cols)} column: {shown(line.strip())}")
            words.append(cols[0])
            tags.append(cols[-1])
        if require_tags:
            check_tags(tags, scheme, path, start)
        sentences.append(Sentence(words, tags if require_tags else None, start, lines, list(range(len(lines)))))
    if not sentences:
        raise DataError(f"{path}: expected CoNLL sentences (token ... tag per line), found none")
    return sentences


def read_tokens(path: str | os.PathLike) -> list[Sentence]:
    """Whitespace-tokenised raw text, one sentence per line (blank lines are skipped)."""
    return [Sentence(line.split(), None, number, [line], [])
            for number, line in enumerate(read_lines(path, "one sentence per line (UTF-8 text)"), start=1)
            if line.strip()]


def read_sentences(path, fmt: str, column: str = "upos", scheme: str = "bio",
                   require_tags: bool = True) -> list[Sentence]:
    """`read_conllu`, `read_conll` or `read_tokens`, by `fmt` ("conllu", "conll" or "text")."""
    if fmt == "conllu":
        return read_conllu(path, column, require_tags)
    if fmt == "conll":
        return read_conll(path, scheme, require_tags)
    if fmt == "text":
        return read_tokens(path)
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")


def check_tags(tags: list[str], scheme: str, path="<tags>", start: int = 1) -> None:
    """Raise DataError at the first tag that breaks the BIO/IOBES scheme (`tags[k]` is on line start + k)."""
    if scheme == "none":
        return
    allowed = "BI" if scheme == "bio" else "BIES"
    expected = "O, B-TYPE, I-TYPE" if scheme == "bio" else "O, B-TYPE, I-TYPE, E-TYPE, S-TYPE"
    prev = "O"
    for k, tag in enumerate(tags):
        where = f"{path}:{start + k}"
        if tag != "O" and not (len(tag) > 2 and tag[1] == "-" and tag[0] in allowed):
            raise DataError(f"{where}: expected a {scheme.upper()} tag ({expected}), found {shown(tag)}")
        continues = prev[0] in "BI" and tag[0] in "IE" and tag[2:] == prev[2:]
        if tag[0] in "IE" and not continues:
            raise DataError(f"{where}: expected {tag!r} to continue an entity (after B-{tag[2:]} or "
                            f"I-{tag[2:]}), found it after {prev!r}")
        if scheme == "iobes" and prev[0] in "BI" and not continues:
            raise DataError(f"{where}: expected I-{prev[2:]} or E-{prev[2:]} after {prev!r} (IOBES), "
                            f"found {tag!r}")
        prev = tag
    if scheme == "iobes" and prev[0] in "BI":
        raise DataError(f"{path}:{start + len(tags) - 1}: expected I-{prev[2:]} or E-{prev[2:]} after {prev!r} "
                        "(IOBES), found the end of the sentence")


# ---- writing ---------------------------------------------------------------------------------------------


def format_sentences(sentences: list[Sentence], tags: list[list[str]], fmt: str, column: str = "upos",
                     one_per_line: bool = False) -> str:
    """The sentences in format `fmt` with `tags` (one list per sentence) in place of their tags.

    conllu: every line as read, the UPOS/XPOS column of the word lines replaced; conll: each token line with
    its last column replaced when it has two or more columns (a tag column appended to a token alone); text:
    `token/TAG` separated by spaces, one sentence per line, or with `one_per_line` `token<TAB>TAG` lines and a
    blank line after each sentence."""
    if len(tags) != len(sentences):
        raise ValueError(f"expected one tag list per sentence ({len(sentences)}), got {len(tags)}")
    out = []
    for s, t in zip(sentences, tags):
        if len(t) != len(s.words):
            raise ValueError(f"sentence at line {s.line}: {len(s.words)} words but {len(t)} tags")
        if fmt == "text" and not one_per_line:
            out.append(" ".join(f"{w}/{tag}" for w, tag in zip(s.words, t)) + "\n")
        elif fmt == "text":
            out.append("".join(f"{w}\t{tag}\n" for w, tag in zip(s.words, t)) + "\n")
        else:
            out.append("".join(line + "\n" for line in _retagged(s, t, fmt, column)) + "\n")
    return "".join(out)


def _retagged(s: Sentence, tags: list[str], fmt: str, column: str) -> list[str]:
    lines = list(s.lines)
    for k, tag in zip(s.word_lines, tags):
        if fmt == "conllu":
            cols = lines[k].split("\t")
            cols[COLUMNS[column]] = tag
            lines[k] = "\t".join(cols)
        elif fmt == "conll":
            text = lines[k].strip()
            sep = " " if " " in text and "\t" not in text else "\t"
            cols = text.split()
            cols = cols[:-1] + [tag] if len(cols) > 1 else cols + [tag]
            lines[k] = sep.join(cols)
        else:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    return lines


def write_sentences(path: str | os.PathLike, sentences: list[Sentence], tags: list[list[str]], fmt: str,
                    column: str = "upos", one_per_line: bool = False) -> None:
    """`format_sentences` written to `path` (UTF-8)."""
    Path(path).write_text(format_sentences(sentences, tags, fmt, column, one_per_line), encoding="utf-8")
