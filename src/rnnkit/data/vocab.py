"""One vocabulary class for every task: token <-> index, built from training data, saved as JSON.

    vocab = Vocab.build(tokens, min_freq=2, specials=("<unk>", "<eos>"))
    ids = vocab.encode(["the", "cat"])          # unknown tokens -> vocab.unk_index
    vocab.save(run_dir / "vocab.json"); Vocab.load(run_dir / "vocab.json")

Index order: the specials first (in the order given), then the tokens by decreasing frequency,
ties broken by the token itself, so the same data always gives the same indices.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from rnnkit.data.text import DataError, read_json

UNK = "<unk>"
EOS = "<eos>"
PAD = "<pad>"
BOS = "<bos>"
FORMAT = "rnnkit.vocab/1"
KEYS = ("format", "unk", "itos")


class Vocab:
    """A list of distinct tokens; index i <-> token `itos[i]`.

    Args:
        itos: the tokens, index order. Must be distinct.
        unk: the token that unknown tokens map to, or None (then unknown tokens raise KeyError).
    """

    def __init__(self, itos: Sequence[str], unk: str | None = UNK):
        self.itos = list(itos)
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            dup = [t for t, n in Counter(self.itos).items() if n > 1]
            raise ValueError(f"Vocab: tokens must be distinct, found duplicates {dup[:5]}")
        if unk is not None and unk not in self.stoi:
            raise ValueError(f"Vocab: unknown-token {unk!r} is not in the token list")
        self.unk = unk

    @classmethod
    def build(cls, tokens: Iterable[str], min_freq: int = 1, max_size: int | None = None,
              specials: Sequence[str] = (UNK,), unk: str | None = UNK) -> Vocab:
        """Count `tokens` and keep those seen at least `min_freq` times (at most `max_size` of them,
        the specials not counted); specials come first whatever their counts."""
        if min_freq < 1:
            raise ValueError(f"Vocab.build: min_freq must be >= 1, got {min_freq}")
        counts = Counter(tokens)
        kept = sorted((t for t, n in counts.items() if n >= min_freq and t not in specials),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(list(specials) + kept, unk=unk)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.unk == other.unk

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, unk={self.unk!r}, first={self.itos[:5]})"

    @property
    def unk_index(self) -> int | None:
        return None if self.unk is None else self.stoi[self.unk]

    def index(self, token: str) -> int:
        """Index of `token`; the unknown token's index when it is absent (KeyError if unk is None)."""
        i = self.stoi.get(token)
        if i is not None:
            return i
        if self.unk is None:
            raise KeyError(f"token {token!r} is not in the vocabulary and it has no unknown token")
        return self.stoi[self.unk]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        stoi, unk = self.stoi, self.unk_index
        if unk is None:
            return [self.index(t) for t in tokens]
        return [stoi.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    # ---- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "unk": self.unk, "itos": self.itos}

    @classmethod
    def from_dict(cls, d, specials: Sequence[str] = ()) -> Vocab:
        """The vocabulary of `to_dict`'s output, checked: a JSON object with exactly the keys format, unk and
        itos; itos a list of distinct strings starting with `specials`; unk null or one of them. DataError
        `field: expected ..., found ...` otherwise."""
        if not isinstance(d, dict):
            raise DataError(f"expected a vocabulary (a JSON object with {', '.join(KEYS)}), found {_kind(d)}")
        missing, unknown = [k for k in KEYS if k not in d], sorted(set(d) - set(KEYS))
        if missing or unknown:
            found = f"missing {missing}" if missing else f"unknown keys {unknown}"
            raise DataError(f"expected a vocabulary with the keys {', '.join(KEYS)}, found {found}")
        if d["format"] != FORMAT:
            raise DataError(f"format: expected {FORMAT!r}, found {d['format']!r}")
        itos, unk = d["itos"], d["unk"]
        if not isinstance(itos, list):
            raise DataError(f"itos: expected a list of token strings, found {_kind(itos)}")
        bad = next((i for i, t in enumerate(itos) if not isinstance(t, str)), None)
        if bad is not None:
            raise DataError(f"itos[{bad}]: expected a token string, found {_kind(itos[bad])}")
        if not itos:
            raise DataError("itos: expected at least one token, found an empty list")
        dup = [t for t, n in Counter(itos).items() if n > 1]
        if dup:
            raise DataError(f"itos: expected distinct tokens, found {len(dup)} duplicated: {dup[:5]}")
        if unk is not None and not isinstance(unk, str):
            raise DataError(f"unk: expected a token string or null, found {_kind(unk)}")
        if unk is not None and unk not in itos:
            raise DataError(f"unk: expected one of the tokens of itos, found {unk!r}, which is not among them")
        if itos[: len(specials)] != list(specials):
            raise DataError(f"itos: expected the special tokens {list(specials)} first, found "
                            f"{itos[: len(specials)]}")
        return cls(itos, unk=unk)

    def save(self, path: str | os.PathLike) -> None:
        """Write JSON atomically (temp file in the same folder, then os.replace)."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, specials: Sequence[str] = ()) -> Vocab:
        """The vocabulary saved at `path`; DataError `path: field: expected ..., found ...` when the file is
        not JSON, not a vocabulary (see `from_dict`) or does not start with `specials`."""
        d = read_json(path, f"a JSON vocabulary (format {FORMAT!r})")
        try:
            return cls.from_dict(d, specials)
        except DataError as e:
            raise DataError(f"{path}: {e}") from None


def _kind(value) -> str:
    """A JSON value as an error message names it: its JSON type and a short repr."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    text = repr(value)
    return f"{names.get(type(value), type(value).__name__)} {text[:40]}{'...' if len(text) > 40 else ''}"
