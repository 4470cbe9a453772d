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

from rnnkit.data.text import DataError

UNK = "<unk>"
EOS = "<eos>"
PAD = "<pad>"
BOS = "<bos>"
FORMAT = "rnnkit.vocab/1"


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
    def from_dict(cls, d: dict) -> Vocab:
        if d.get("format") != FORMAT or not isinstance(d.get("itos"), list):
            raise DataError(f"expected a vocabulary of format {FORMAT!r} with an 'itos' list, "
                            f"found format {d.get('format')!r}")
        return cls(d["itos"], unk=d.get("unk"))

    def save(self, path: str | os.PathLike) -> None:
        """Write JSON atomically (temp file in the same folder, then os.replace)."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except FileNotFoundError:
            raise DataError(f"{path}: vocabulary file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: expected a JSON vocabulary, could not parse it ({e})") from None
        try:
            return cls.from_dict(d)
        except DataError as e:
            raise DataError(f"{path}: {e}") from None
