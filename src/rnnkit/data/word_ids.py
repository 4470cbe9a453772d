"""Whitespace words and characters -> ids with NumPy, for `rnnkit prepare lm` (rnnkit.data.prepared).

    words = WordIds(ids)               # ids: a dict token -> id that gives a missing token the next id
    out = words.encode(raw)            # uint32 ids of the chunk's words, <eos> after each non-blank line,
                                       # or None when the chunk needs Python's own str.split (see below)

The result is exactly `stream_tokens(raw.decode(), whitespace)` mapped through `ids` (tests check it against
that), without a Python object per word: the chunk's bytes are cut at ASCII whitespace with array
operations; a word of at most 15 bytes is packed losslessly into two 64-bit keys (its bytes and its length),
looked up in an open-addressing hash table of the keys seen so far (vectorised linear probing), and only a
key never seen before becomes a Python string (to get its id from `ids`). Longer words are looked up one by
one. str.split() and str.splitlines() also cut at \\x0b \\x0c \\x1c-\\x1f, a lone \\r and Unicode spaces
(U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000); a chunk holding any of these,
or another control character, is left to the caller (`encode` returns None), so the result never differs.

`CharIds` does the same for characters (`list(text)`): the text's code points index a table of ids.
"""
from __future__ import annotations

import numpy as np

from rnnkit.data.vocab import EOS

_U64 = np.uint64
_M1, _M2, _M3 = _U64(0x9E3779B97F4A7C15), _U64(0xC2B2AE3D27D4EB4F), _U64(0x94D049BB133111EB)
_LOW56 = (1 << 56) - 1
MAX_PACKED = 15  # bytes of a word that fit the two keys (8 + 7; the 8th byte of the second is the length)
# by word length 0 .. MAX_PACKED: which bytes of the first / second key are the word's, and the length tag
_MASK0 = np.array([(1 << 8 * min(n, 8)) - 1 for n in range(MAX_PACKED + 1)], _U64)
_MASK1 = np.array([(1 << 8 * max(n - 8, 0)) - 1 for n in range(MAX_PACKED + 1)], _U64)
_TAG = np.array([n << 56 for n in range(MAX_PACKED + 1)], _U64)
# UTF-8 of the non-ASCII characters str.split() treats as whitespace: (lead byte, second byte, third bytes)
_UNICODE_SPACES = ((0xC2, 0x85, None), (0xC2, 0xA0, None), (0xE1, 0x9A, (0x80,)),
                   (0xE2, 0x80, (*range(0x80, 0x8B), 0xA8, 0xA9, 0xAF)), (0xE2, 0x81, (0x9F,)),
                   (0xE3, 0x80, (0x80,)))


def needs_python(raw: bytes, buf: np.ndarray) -> bool:
    """True when `raw` (its bytes `buf`, padded with zeros) holds a character that str.split/str.splitlines
    treat as whitespace or a line end other than space, \\t, \\n and \\r\\n, or another control character."""
    a = buf[: len(raw)]
    returns = np.count_nonzero(a == 13)
    if np.count_nonzero(a < 32) != np.count_nonzero(a == 9) + np.count_nonzero(a == 10) + returns or (
            returns and returns != raw.count(b"\r\n")):
        return True
    if raw.isascii():
        return False
    lead = np.flatnonzero((a == 0xC2) | (a - np.uint8(0xE1) <= 2))  # 0xC2, 0xE1 .. 0xE3 (uint8 wraps around)
    b0, b1, b2 = a[lead], buf[lead + 1], buf[lead + 2]
    for first, second, third in _UNICODE_SPACES:
        hit = (b0 == first) & (b1 == second)
        if third is not None:
            hit &= np.isin(b2, third)
        if hit.any():
            return True
    return False


def _hash(k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
    """Fibonacci hashing of the two keys (the top bits are well mixed)."""
    h = k1 * _M2
    h ^= k0
    h *= _M1
    return h


def _slots(k0: np.ndarray, k1: np.ndarray, bits: int) -> np.ndarray:
    h = _hash(k0, k1)
    h >>= _U64(64 - bits)
    return h.view(np.int64)


def _view(buf: np.ndarray, offset: int) -> np.ndarray:
    """The little-endian uint64 of the 8 bytes at every position from `offset` on (unaligned, no copy)."""
    return np.ndarray((len(buf) - 7 - offset,), "<u8", buf, offset, (1,))


class _Table:
    """Open addressing with linear probing over (k0, k1) keys; k1 == 0 marks an empty slot (a packed word's
    k1 holds its length >= 1 in the top byte, so it is never 0), at most a quarter of the slots used. `find_or_add`
    is vectorised: each round resolves the keys whose slot holds them or is empty, and moves the others one
    slot on."""

    def __init__(self, bits: int = 18):
        self.bits, self.n = bits, 0
        self.k0 = np.zeros(1 << bits, _U64)
        self.k1 = np.zeros(1 << bits, _U64)
        self.val = np.zeros(1 << bits, np.uint32)
        self.owner = np.zeros(1 << bits, np.int64)  # scratch: which key claims an empty slot this round

    def find_or_add(self, k0: np.ndarray, k1: np.ndarray, assign) -> np.ndarray:
        """The value of every key (k0[i], k1[i]); a key not in the table is added once, with the value
        `assign(i)` gives it (`assign` gets the indices of the new distinct keys and returns their values)."""
        slot = _slots(k0, k1, self.bits)
        hit = (self.k1[slot] == k1) & (self.k0[slot] == k0)
        out = self.val[slot]
        if hit.all():  # the common case once the table holds the corpus's frequent words
            return out
        todo = np.flatnonzero(~hit)
        slot, q0, q1 = slot[todo], k0[todo], k1[todo]
        while len(todo):
            t1 = self.k1[slot]
            hit = (t1 == q1) & (self.k0[slot] == q0)
            out[todo] = self.val[slot]  # right where hit; the others are written again later
            empty = np.flatnonzero(t1 == 0)
            if len(empty):  # the keys not in the table: one per empty slot takes it
                claimed = slot[empty]
                self.owner[claimed] = empty
                won = empty[self.owner[claimed] == empty]
                if 4 * (self.n + len(won)) > len(self.k1):
                    self._grow(self.n + len(won))
                    todo = todo[~hit]
                    q0, q1 = k0[todo], k1[todo]
                    slot = _slots(q0, q1, self.bits)
                    continue
                at = slot[won]
                self.k0[at], self.k1[at] = q0[won], q1[won]
                self.val[at] = out[todo[won]] = assign(todo[won])
                self.n += len(won)
                hit[won] = True
            # the losers of an empty slot stay (it holds another key or theirs now); the rest probe on
            moved = np.where(t1 == 0, slot, (slot + 1) & ((1 << self.bits) - 1))
            todo, slot = todo[~hit], moved[~hit]
            q0, q1 = k0[todo], k1[todo]
        return out

    def _grow(self, n: int) -> None:
        used = np.flatnonzero(self.k1)
        k0, k1, val = self.k0[used], self.k1[used], self.val[used]
        bits = self.bits + 1
        while (1 << bits) < 4 * n:
            bits += 1
        self.__init__(bits)
        self.find_or_add(k0, k1, val.__getitem__)


class WordIds:
    """Whitespace words of text chunks -> ids from `ids` (a dict whose missing keys get the next id, e.g. a
    defaultdict with default_factory = its own __len__), see the module docstring."""

    def __init__(self, ids: dict):
        self.ids = ids
        self.table = _Table()

    def encode(self, raw: bytes) -> np.ndarray | None:
        """uint32 ids of the words of `raw` (valid UTF-8 without a BOM, cut at a line end) with the id of
        <eos> after the last word of each line that has one; None when `needs_python(raw)`."""
        n = len(raw)
        buf = np.frombuffer(raw + bytes(2 * 8), np.uint8)  # padded: 16 bytes may be read after a word's start
        a = buf[:n]
        if needs_python(raw, buf):
            return None
        edges = np.flatnonzero(np.diff(a > 32, prepend=False, append=False))  # word starts and ends, in turn
        starts, ends = edges[0::2], edges[1::2]
        if not len(starts):
            return np.zeros(0, np.uint32)
        words = self._word_ids(raw, buf, starts, ends)
        last = np.zeros(len(starts), bool)  # the last word of its line: a newline follows before the next word
        after = np.searchsorted(starts, np.flatnonzero(a == 10))
        last[after[after > 0] - 1] = True
        last[-1] = True
        pos = np.arange(len(starts))
        pos[1:] += np.cumsum(last[:-1])  # each earlier line end adds an <eos>
        out = np.empty(len(starts) + int(np.count_nonzero(last)), np.uint32)
        out[pos] = words
        out[pos[last] + 1] = self.ids[EOS]
        return out

    def _word_ids(self, raw: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        length = ends - starts
        long = length.max() > MAX_PACKED
        if long:
            packed = np.flatnonzero(length <= MAX_PACKED)
            s, n = starts[packed], length[packed]
        else:
            s, n = starts, length
        k0 = _view(buf, 0)[s] & _MASK0[n]  # the first 8 bytes, and the next 7 with the length in the top byte
        k1 = (_view(buf, 8)[s] & _MASK1[n]) | _TAG[n]
        ids = self.table.find_or_add(k0, k1, lambda i: self._new(k0[i], k1[i]))
        if not long:
            return ids
        words = np.empty(len(starts), np.uint32)
        words[packed] = ids
        rest = np.flatnonzero(length > MAX_PACKED)  # words longer than MAX_PACKED bytes: one dict lookup each
        words[rest] = [self.ids[raw[i:j].decode("utf-8")] for i, j in zip(starts[rest].tolist(), ends[rest].tolist())]
        return words

    def _new(self, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
        """The ids of words new to the table (each a Python string once, looked up in `ids`)."""
        return np.array([self.ids[_unpack(x0, x1)] for x0, x1 in zip(k0.tolist(), k1.tolist())], np.uint32)


def _unpack(k0: int, k1: int) -> str:
    n = k1 >> 56
    return (k0.to_bytes(8, "little") + (k1 & _LOW56).to_bytes(7, "little"))[:n].decode("utf-8")


class CharIds:
    """Characters of text chunks -> ids from `ids` (as for WordIds): exactly `list(text)` mapped through `ids`."""

    def __init__(self, ids: dict):
        self.ids = ids
        self.table = np.full(0x110000, -1, np.int64)  # code point -> id, -1: not seen yet

    def encode(self, text: str) -> np.ndarray:
        points = np.frombuffer(text.encode("utf-32-le"), "<u4")
        seen = np.flatnonzero(np.bincount(points, minlength=0))
        new = seen[self.table[seen] < 0]
        for c in new.tolist():
            self.table[c] = self.ids[chr(c)]
        return self.table[points].astype(np.uint32)
