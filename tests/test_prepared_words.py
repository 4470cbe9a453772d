"""`rnnkit.data.word_ids`, the NumPy path of `rnnkit prepare lm --tokenizer whitespace`: its tokens are exactly
those of str.split() per line (`rnnkit.data.tokenize`, the oracle), on texts with every kind of word length,
non-ASCII text, CRLF, blank lines and a literal <eos>; every character Python treats as whitespace or a line
end beyond space/tab/\\n/\\r\\n sends the chunk to the Python path; the hash table is a bijection."""
import functools
import random
from collections import defaultdict

import numpy as np
import pytest

import rnnkit.data.prepared as prepared_mod
from rnnkit.data import tokenize
from rnnkit.data.prepared import prepare_lm
from rnnkit.data.word_ids import _UNICODE_SPACES, MAX_PACKED, CharIds, WordIds, _Table
from rnnkit.tasks import lm

LETTERS = "abcxyzABQ0189.,;'\"<>-_éßø–—“”日本語😀\x7f\ufeff\u200b"


def provisional():
    ids = defaultdict()
    ids.default_factory = ids.__len__
    return ids


def word(rng: random.Random) -> str:
    n = rng.choice([1, 2, 3, 5, 7, 8, 9, 14, 15, 16, 17, 30, rng.randint(1, 60)])
    return "".join(rng.choice(LETTERS) for _ in range(n))


def text_of(rng: random.Random, n_lines: int) -> str:
    lines = []
    for _ in range(n_lines):
        r = rng.random()
        if r < 0.08:
            lines.append(rng.choice(["", "   ", "\t", " \t "]))
        else:
            words = [word(rng) if rng.random() > 0.05 else "<eos>" for _ in range(rng.randint(1, 12))]
            lines.append(rng.choice([" ", "  ", "\t", " \t"]).join(words) + rng.choice(["", " ", "\t"]))
    ends = rng.choice(["\n", "\r\n"])
    return ends.join(lines) + rng.choice([ends, ""])


def decoded(ids: dict, out: np.ndarray) -> list[str]:
    itos = list(ids)
    return [itos[i] for i in out.tolist()]


@pytest.mark.parametrize("seed", range(6))
def test_numpy_words_equal_str_split(seed):
    rng = random.Random(seed)
    ids = provisional()
    words = WordIds(ids)
    for _ in range(4):  # several chunks share the table and the ids
        text = text_of(rng, 200)
        out = words.encode(text.encode("utf-8"))
        assert out is not None and out.dtype == np.uint32
        assert decoded(ids, out) == tokenize(text, "word")
    assert len(set(ids)) == len(ids)
    long_words = [w for w in ids if len(w.encode()) > MAX_PACKED]
    assert long_words and any(len(w.encode()) == MAX_PACKED for w in ids)


def python_whitespace() -> set[str]:
    """Every character that str.split() or str.splitlines() treats differently from a letter."""
    chars = set()
    for c in map(chr, range(0x110000)):
        if 0xD800 <= ord(c) <= 0xDFFF:
            continue
        if c.isspace() or len(f"a{c}b".splitlines()) > 1 or f"a{c}b".split() != [f"a{c}b"]:
            chars.add(c)
    return chars


def test_the_characters_left_to_python_are_exactly_pythons_whitespace():
    spaces = python_whitespace()
    listed = set()
    for first, second, third in _UNICODE_SPACES:
        for t in third or [None]:
            listed.add(bytes([first, second] + ([t] if t is not None else [])).decode("utf-8"))
    assert listed == {c for c in spaces if ord(c) >= 0x80}
    for c in sorted(spaces - {" ", "\t", "\n"}) + ["\x01", "\x1b", "\r"]:  # other control characters too
        for text in (f"ab{c}cd\n", f"x y\nab{c}", f"{c}", f"é{c}"):
            assert WordIds(provisional()).encode(text.encode("utf-8")) is None, (repr(c), text)
    for c in ("\u0100", "\u2030", "\u200b", "\u2800", "\ufeff", "\x7f", "\x80", "\xa9", "\u1681", "\u205e", "\u3001"):
        ids = provisional()
        out = WordIds(ids).encode(f"ab{c}cd e\n".encode())
        assert decoded(ids, out) == [f"ab{c}cd", "e", "<eos>"]


def test_prepare_equals_the_in_memory_path_when_some_chunks_need_python(tmp_path, monkeypatch):
    monkeypatch.setattr(prepared_mod, "iter_chunks", functools.partial(prepared_mod.iter_chunks, size=300))
    rng = random.Random(7)
    parts = []
    for i in range(30):
        t = text_of(rng, 10)
        if i % 4 == 1:  # a non-breaking space, a lone \r, a form feed, a line separator
            t = t.replace(" ", rng.choice(["\u00a0", "\r", "\x0c", "\u2028"]), 1)
        parts.append(t if t.endswith("\n") else t + "\n")
    (tmp_path / "t.txt").write_text("".join(parts), encoding="utf-8", newline="")
    got = prepare_lm([tmp_path / "t.txt"], tmp_path / "p", min_freq=2)
    want = lm.load_corpus(tmp_path / "t.txt", level="word", min_freq=2)
    assert got.vocab == want.vocab
    np.testing.assert_array_equal(np.concatenate([got.train, got.valid]),
                                  np.concatenate([want.train.numpy(), want.valid.numpy()]))


def test_the_table_maps_keys_one_to_one_through_growth_and_probing():
    rng = np.random.default_rng(0)
    table = _Table(bits=2)  # 4 slots: every batch grows it and most keys probe
    values: dict[tuple[int, int], int] = {}
    next_id = [0]

    def assign(i):
        v = np.arange(next_id[0], next_id[0] + len(i), dtype=np.uint32)
        next_id[0] += len(i)
        return v

    for size in (1, 50, 3000, 20000):
        pool = rng.integers(1, 2**63, size=(max(2, size // 3), 2), dtype=np.uint64)
        pool[: len(pool) // 2, 1] = pool[0, 1]  # many keys share k1, some share k0
        pool[::5, 0] = pool[1, 0]
        pick = rng.integers(0, len(pool), size)
        k0, k1 = pool[pick, 0].copy(), pool[pick, 1].copy()
        out = table.find_or_add(k0, k1, assign)
        for a, b, v in zip(k0.tolist(), k1.tolist(), out.tolist()):
            assert values.setdefault((a, b), v) == v  # one key, one value, in this call and in the earlier ones
    assert sorted(values.values()) == list(range(len(values))) == list(range(next_id[0]))
    assert table.n == len(values) and 4 * table.n <= len(table.k1)


def test_numpy_characters_equal_list_of_the_text():
    rng = random.Random(3)
    ids = provisional()
    chars = CharIds(ids)
    alphabet = LETTERS + " \t\n\r\x0c\u2028\u00a0\U0010ffff"
    for _ in range(3):
        text = "".join(rng.choice(alphabet) for _ in range(3000))
        assert decoded(ids, chars.encode(text)) == tokenize(text, "char")
    assert len(ids) == len(set(alphabet))
