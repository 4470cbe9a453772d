"""Pretrained word vectors in the GloVe or word2vec *text* format, as an embedding matrix for a Vocab.

    glove.6B.100d.txt:    the 0.418 0.24968 -0.41242 ...          one word and D numbers per line
    word2vec (.txt/.vec): 400000 100                              a first line "N D", then as GloVe

    vectors = load_vectors("glove.6B.100d.txt", vocab)
    model.embedding.weight.data[vectors.found] = vectors.weights[vectors.found]
    print(f"{vectors.num_found} of {len(vocab)} words have a pretrained vector")

The file is streamed line by line (GloVe files are gigabytes) and may be gzip-compressed; only the words of
the vocabulary are kept. A word may contain spaces (GloVe 840B has some): the last D fields are the numbers
and the rest is the word. Every line's field count is checked; the numbers are parsed only for the
vocabulary's words (a bad number elsewhere goes unnoticed, as it is never used). Duplicate words keep their
first vector. With `lower=True` a vocabulary word also matches the file's lower-cased form when its exact
form is absent.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.data.text import DataError, iter_lines, shown
from rnnkit.data.vocab import Vocab

WHAT = "word vectors in GloVe/word2vec text format"


@dataclass
class Vectors:
    weights: torch.Tensor  # (V, D) float32; zero rows where no vector was found
    found: torch.Tensor  # (V,) bool: vocabulary entries that have a pretrained vector
    dim: int

    @property
    def num_found(self) -> int:
        return int(self.found.sum())


def load_vectors(path: str | os.PathLike, vocab: Vocab, lower: bool = False) -> Vectors:
    """The vectors of `vocab`'s words found in `path`; raises DataError with file:line on a bad line."""
    path = Path(path)
    wanted: dict[str, list[int]] = {}
    for i, token in enumerate(vocab.itos):
        wanted.setdefault(token, []).append(i)
        if lower and token.lower() != token:
            wanted.setdefault(token.lower(), []).append(i)
    rows: dict[int, tuple] = {}  # vocab index -> (priority: 0 exact, 1 lowered; numbers; line)
    dim, vectors = None, 0
    for line_no, line in iter_lines(path, WHAT):
        parts = line.rstrip(" ").split(" ")
        if line_no == 1 and len(parts) == 2 and all(p.isascii() and p.isdigit() for p in parts):
            dim = int(parts[1])  # word2vec header "N D"
            if dim < 1:
                raise DataError(f"{path}:1: expected a word2vec header 'COUNT DIM' with DIM >= 1, found {shown(line)}")
            continue
        if not line.strip():
            continue
        if dim is None:
            dim = len(parts) - 1
            if dim < 1:
                raise DataError(f"{path}:{line_no}: expected a word followed by numbers, found {shown(line)}")
        if len(parts) < dim + 1:
            raise DataError(f"{path}:{line_no}: expected a word and {dim} numbers, "
                            f"found {len(parts) - 1} fields after the first")
        word, numbers = " ".join(parts[:-dim]), parts[-dim:]
        vectors += 1
        for i in wanted.get(word, ()):
            priority = 0 if vocab.itos[i] == word else 1
            if i not in rows or priority < rows[i][0]:
                rows[i] = (priority, numbers, line_no)
    if dim is None:
        raise DataError(f"{path}: file is empty (expected {WHAT})")
    if not vectors:
        raise DataError(f"{path}: expected {WHAT}, found no vector after the word2vec header")
    weights = torch.zeros(len(vocab), dim)
    found = torch.zeros(len(vocab), dtype=torch.bool)
    for i, (_, numbers, where) in rows.items():
        try:
            weights[i] = torch.tensor([float(x) for x in numbers])
        except ValueError:
            bad = next(x for x in numbers if not _is_float(x))
            raise DataError(f"{path}:{where}: expected {dim} numbers after the word, found {shown(bad)}") from None
        if not torch.isfinite(weights[i]).all():
            bad = next(x for x in numbers if not math.isfinite(float(x)) or abs(float(x)) > 3.4e38)
            raise DataError(f"{path}:{where}: expected {dim} finite numbers after the word, found {shown(bad)}")
        found[i] = True
    return Vectors(weights, found, dim)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
