"""Vocabulary, readers and stream batching, checked against direct computations."""
import gzip
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data import (
    DataError,
    LMStream,
    RollingWindows,
    Vocab,
    bundled_path,
    detokenize,
    read_text,
    tokenize,
)

# ---- Vocab ------------------------------------------------------------------------------------


def test_vocab_build_min_freq_and_order():
    tokens = "a b a c b a d".split()
    v = Vocab.build(tokens, min_freq=2, specials=("<unk>", "<eos>"))
    counts = Counter(tokens)
    expected = ["<unk>", "<eos>"] + sorted([t for t in counts if counts[t] >= 2], key=lambda t: (-counts[t], t))
    assert v.itos == expected
    assert v.encode(["a", "d", "zzz"]) == [v.stoi["a"], v.stoi["<unk>"], v.stoi["<unk>"]]
    assert v.decode(v.encode(["b", "a"])) == ["b", "a"]


def test_vocab_json_round_trip(tmp_path):
    v = Vocab.build(list("héllo wörld\n"), specials=("<unk>",))
    v.save(tmp_path / "vocab.json")
    w = Vocab.load(tmp_path / "vocab.json")
    assert w == v and w.stoi == v.stoi and w.unk == v.unk
    assert list(tmp_path.iterdir()) == [tmp_path / "vocab.json"]  # no temp file left behind


def test_vocab_without_unk_raises_on_unknown():
    v = Vocab(["x", "y"], unk=None)
    assert v.encode(["y", "x"]) == [1, 0]
    with pytest.raises(KeyError):
        v.encode(["z"])


def test_vocab_rejects_duplicates_and_bad_json(tmp_path):
    with pytest.raises(ValueError, match="distinct"):
        Vocab(["a", "a", "<unk>"])
    (tmp_path / "v.json").write_text("{not json")
    with pytest.raises(DataError, match="v.json"):
        Vocab.load(tmp_path / "v.json")


# ---- readers ----------------------------------------------------------------------------------


def test_read_text_plain_and_gzip(tmp_path):
    text = "First Citizen:\nBefore we proceed — any further.\n"
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    assert read_text(tmp_path / "a.txt") == text
    assert read_text(tmp_path / "a.txt.gz") == text


@pytest.mark.parametrize("content, message", [
    (None, "file not found"),
    (b"", "empty"),
    (b"ok line\n\xff\xfe bad", r"a.txt:2: expected UTF-8 text, found bytes that are not UTF-8 \(byte 0xff at "
                               r"offset 8\)"),
])
def test_read_text_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "a.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        read_text(path)
    assert str(path) in str(e.value)


def test_read_text_bad_gzip(tmp_path):
    (tmp_path / "b.txt.gz").write_bytes(b"plain text, not gzip")
    with pytest.raises(DataError, match="gzip"):
        read_text(tmp_path / "b.txt.gz")


def test_bundled_tiny_shakespeare():
    text = read_text(bundled_path())
    assert text.startswith("First Citizen:")
    assert len(text) == 1_115_394 and len(set(text)) == 65  # the counts its README states


def test_tokenize_word_level_appends_eos():
    text = " the cat\n\n a dog sat \n"
    assert tokenize(text, "word") == ["the", "cat", "<eos>", "a", "dog", "sat", "<eos>"]
    assert detokenize(tokenize(text, "word"), "word") == "the cat\na dog sat\n"
    assert tokenize("ab\n", "char") == ["a", "b", "\n"]


# ---- stream batching --------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(n=st.integers(4, 300), b=st.integers(1, 6), bptt=st.integers(1, 40))
def test_stream_layout_matches_direct_indexing(n, b, bptt):
    if n // b < 2:
        return
    stream = torch.arange(n) * 7 + 3  # distinct values, so positions are identifiable
    batches = LMStream(stream, b, bptt)
    m = n // b
    seen = []
    for i in range(len(batches)):
        batch = batches.get(i, epoch=i % 3)
        s = i * bptt
        t_len = min(bptt, m - 1 - s)
        for row in range(b):
            for t in range(t_len):
                assert batch.inputs[row, t] == stream[row * m + s + t]
                assert batch.targets[row, t] == stream[row * m + s + t + 1]
        assert batch.inputs.shape == (b, t_len)
        seen.extend(batch.targets.T.reshape(-1).tolist())
    # every target position of every column is predicted exactly once per epoch
    expected = [stream[row * m + s + 1].item() for s in range(m - 1) for row in range(b)]
    assert seen == expected
    assert batches.num_tokens == len(expected)


def test_stream_shards_partition_the_columns():
    stream = torch.arange(1000)
    full = LMStream(stream, 8, 13)
    parts = [full.shard(r, 4) for r in range(4)]
    assert all(len(p) == len(full) for p in parts)
    for i in range(len(full)):
        assert torch.equal(torch.cat([p.get(i, 0).inputs for p in parts]), full.get(i, 0).inputs)
    with pytest.raises(ValueError, match="divisible"):
        full.shard(0, 3)


def test_stream_rejects_bad_sizes():
    with pytest.raises(ValueError, match="bptt"):
        LMStream(torch.arange(100), 4, 0)
    with pytest.raises(ValueError, match="too short"):
        LMStream(torch.arange(5), 4, 3)


def test_rolling_windows_continue_across_epochs():
    stream = LMStream(torch.arange(400), 4, 7)  # 99 steps per column -> 15 windows
    rolling = RollingWindows(stream, 6)
    order = [rolling.get(i, epoch).inputs for epoch in range(4) for i in range(6)]
    expected = [stream.get(k % len(stream)).inputs for k in range(24)]
    assert all(torch.equal(a, b) for a, b in zip(order, expected))
    assert len(rolling.shard(1, 2)) == 6
