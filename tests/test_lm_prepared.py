"""`rnnkit prepare lm` + `train lm --prepared`: the memory-mapped corpus gives exactly the batches of the
in-memory path (load_corpus + LMStream, the oracle) on the same text, for every tokenizer kind, chunk
boundaries, held-out tails and DDP shards; bad input is one line, exit 2, and never a half-written directory."""
import functools
import gc
import json
import random

import numpy as np
import pytest
import torch
from _cli_errors import one_error_line

import rnnkit.data.prepared as prepared_mod
from rnnkit.cli import main
from rnnkit.data.prepared import open_prepared, prepare_lm
from rnnkit.data.streams import LMStream, MappedLMStream
from rnnkit.tasks import lm
from rnnkit.train import TrainConfig

WORDS = ("the cat dog sat on a mat and ran far away from home big small red blue green house tree river "
         "was is were under over near <unk> café naïve").split()


def corpus_text(n_lines: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = []
    for i in range(n_lines):
        if i % 17 == 5:
            lines.append("   " if i % 2 else "")  # blank lines give no <eos>
        else:
            lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))))
    return "\n".join(lines) + "\n"


def all_batches(stream):
    return [(b.inputs, b.targets) for b in (stream.get(i) for i in range(len(stream)))]


def assert_same_batches(a, b):
    xa, xb = all_batches(a), all_batches(b)
    assert len(xa) == len(xb) > 0
    for (ia, ta), (ib, tb) in zip(xa, xb):
        assert ia.dtype == ib.dtype == torch.long
        assert torch.equal(ia, ib) and torch.equal(ta, tb)


@pytest.fixture()
def small_chunks(monkeypatch):
    """Read the text in pieces of ~200 bytes, so lines and chunks meet at many boundaries."""
    monkeypatch.setattr(prepared_mod, "iter_chunks", functools.partial(prepared_mod.iter_chunks, size=200))


@pytest.mark.parametrize("kind, options", [("whitespace", {"min_freq": 2}), ("char", {}),
                                           ("sentencepiece-unigram", {"vocab_size": 45}),
                                           ("sentencepiece-bpe", {"vocab_size": 70}), ("moses", {})])
@pytest.mark.parametrize("with_valid", [False, True])
def test_memmap_batches_equal_the_in_memory_path(tmp_path, small_chunks, kind, options, with_valid):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text(corpus_text(300, 0), encoding="utf-8")
    valid.write_text(corpus_text(40, 1), encoding="utf-8")
    got = prepare_lm([train], tmp_path / "prep", kind, options.get("vocab_size"), options.get("min_freq", 1),
                     str(valid) if with_valid else None, 0.15)
    want = lm.load_corpus(train, valid if with_valid else None, min_freq=options.get("min_freq", 1),
                          valid_fraction=0.15, tokenizer=kind, vocab_size=options.get("vocab_size"))
    assert got.vocab == want.vocab and got.meta["dtype"] == "<u2"
    assert isinstance(got.train, np.memmap)
    np.testing.assert_array_equal(got.train, want.train.numpy())
    np.testing.assert_array_equal(got.valid, want.valid.numpy())
    for batch_size, bptt in ((4, 7), (3, 64)):
        assert_same_batches(MappedLMStream(got.train, batch_size, bptt), LMStream(want.train, batch_size, bptt))
    assert_same_batches(MappedLMStream(got.valid, 2, 5), LMStream(want.valid, 2, 5))
    reopened = open_prepared(tmp_path / "prep")
    assert reopened.vocab == want.vocab and reopened.tokenizer == want.tokenizer


def test_ddp_shards_read_disjoint_columns(tmp_path):
    (tmp_path / "t.txt").write_text(corpus_text(200), encoding="utf-8")
    got = prepare_lm([tmp_path / "t.txt"], tmp_path / "p")
    want = lm.load_corpus(tmp_path / "t.txt", level="word")
    mapped, stream = MappedLMStream(got.train, 8, 9), LMStream(want.train, 8, 9)
    rows = []
    for rank in range(4):
        assert_same_batches(mapped.shard(rank, 4), stream.shard(rank, 4))
        rows.append(mapped.shard(rank, 4).get(0).inputs)
    assert torch.equal(torch.cat(rows), mapped.get(0).inputs)  # the shards together are the whole batch


def test_uint32_when_the_vocabulary_does_not_fit_uint16(tmp_path):
    words = [f"w{i}" for i in range(70_000)]
    (tmp_path / "t.txt").write_text("\n".join(" ".join(words[i: i + 50]) for i in range(0, 70_000, 50)) + "\n")
    got = prepare_lm([tmp_path / "t.txt"], tmp_path / "p", valid_fraction=0.01)
    want = lm.load_corpus(tmp_path / "t.txt", level="word", valid_fraction=0.01)
    assert got.meta["dtype"] == "<u4" and got.train.dtype == np.dtype("<u4") and len(got.vocab) > 65_536
    np.testing.assert_array_equal(got.train, want.train.numpy())


def test_several_files_are_one_stream(tmp_path):
    a, b, both = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "ab.txt"
    a.write_text(corpus_text(50, 3))
    b.write_text(corpus_text(50, 4))
    both.write_text(a.read_text() + b.read_text())
    got = prepare_lm([a, b], tmp_path / "p")
    want = lm.load_corpus(both, level="word")
    np.testing.assert_array_equal(np.concatenate([got.train, got.valid]),
                                  torch.cat([want.train, want.valid]).numpy())


def test_training_on_the_map_equals_training_on_the_text(tmp_path):
    """Same seed, same model: the run from --prepared has exactly the losses and weights of the run from --data."""
    (tmp_path / "t.txt").write_text(corpus_text(400), encoding="utf-8")
    assert main(["prepare", "lm", "--data", str(tmp_path / "t.txt"), "--out", str(tmp_path / "p")]) == 0
    config = TrainConfig(epochs=2, optimizer="adam", lr=3e-3, seed=5, device="cpu", progress=False,
                         tensorboard=False)
    model = dict(hidden=16, layers=1, cell="gru")
    runs = {}
    for name, data in (("text", lm.LMDataConfig(train=str(tmp_path / "t.txt"), level="word")),
                       ("map", lm.LMDataConfig(prepared=str(tmp_path / "p")))):
        data.batch_size, data.bptt = 4, 12
        corpus = data.load()
        runs[name] = lm.fit(tmp_path / name, data, lm.RNNLMConfig(vocab_size=len(corpus.vocab), **model), config)
    assert [h["train"]["loss"] for h in runs["text"]] == [h["train"]["loss"] for h in runs["map"]]
    assert [h["valid"]["loss"] for h in runs["text"]] == [h["valid"]["loss"] for h in runs["map"]]
    a = lm.load_run(tmp_path / "text").model.state_dict()
    b = lm.load_run(tmp_path / "map").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = json.loads((tmp_path / "map" / "config.json").read_text())
    assert saved["data"]["prepared"] == str((tmp_path / "p").resolve())
    assert lm.resume(tmp_path / "map", epochs=3)[-1]["epoch"] == 3  # resume re-opens the map


def test_cli_prepare_train_sample_with_sentencepiece(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(corpus_text(300), encoding="utf-8")
    prep, run = tmp_path / "p", tmp_path / "run"
    assert main(["prepare", "lm", "--data", str(tmp_path / "t.txt"), "--out", str(prep), "--tokenizer",
                 "sentencepiece-bpe", "--vocab-size", "60"]) == 0
    assert "training and" in capsys.readouterr().out and (prep / "tokenizer.model").is_file()
    assert main(["train", "lm", "--prepared", str(prep), "--hidden", "16", "--layers", "1", "--epochs", "1",
                 "--batch-size", "4", "--bptt", "16", "--out", str(run), "--device", "cpu", "--quiet"]) == 0
    assert (run / "tokenizer.model").read_bytes() == (prep / "tokenizer.model").read_bytes()
    capsys.readouterr()
    assert main(["sample", str(run), "--length", "40", "--seed", "0", "--prime", "the cat"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the cat") and "\u2581" not in out  # detokenised: no sentencepiece word marks


def test_bad_input_one_line_and_no_half_written_directory(tmp_path, capsys):
    good = tmp_path / "t.txt"
    good.write_text(corpus_text(50), encoding="utf-8")
    mixed = tmp_path / "mixed.txt"
    mixed.write_bytes("naïve one\ntwo\n".encode() + "café latin-1\n".encode("latin-1"))
    base = ["prepare", "lm", "--out", str(tmp_path / "out")]
    one_error_line(capsys, [*base, "--data", str(good), str(mixed)], "mixed.txt:3: expected UTF-8 text",
                   "found bytes that are not UTF-8")
    one_error_line(capsys, [*base, "--data", str(good), "--tokenizer", "sentencepiece-unigram", "--vocab-size",
                            "5000"], "--vocab-size: expected at most", "found 5000")
    one_error_line(capsys, [*base, "--data", str(tmp_path / "missing.txt")], "missing.txt: file not found")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.txt", "t.txt"]  # nothing left behind
    assert main([*base, "--data", str(good)]) == 0
    one_error_line(capsys, [*base, "--data", str(good)], "already exists")
    (tmp_path / "out" / "train.bin").write_bytes(b"\x00" * 7)  # cut short
    one_error_line(capsys, ["train", "lm", "--prepared", str(tmp_path / "out"), "--out", str(tmp_path / "r")],
                   "train.bin: expected", "found 7 bytes")
    one_error_line(capsys, ["train", "lm", "--prepared", str(tmp_path), "--out", str(tmp_path / "r")],
                   "not a prepared corpus")
    one_error_line(capsys, ["train", "lm", "--prepared", str(tmp_path / "out"), "--data", str(good),
                            "--out", str(tmp_path / "r")], "--prepared DIR or --data")
    assert not (tmp_path / "r").exists()


def test_torchrun_two_processes_on_the_map_equal_one_process_on_the_text(tmp_path):
    """DDP over the memory map: each of 2 processes reads its own half of the columns; DDP's averaged gradient
    is the one-process gradient, so the weights equal a one-process run from the plain text (float32 order)."""
    import subprocess
    import sys
    from pathlib import Path

    from test_lm_distributed import assert_same_weights, torchrun_env

    env = torchrun_env()
    text = tmp_path / "t.txt"
    text.write_text(corpus_text(120), encoding="utf-8")
    assert main(["prepare", "lm", "--data", str(text), "--out", str(tmp_path / "p")]) == 0
    common = ["--layers", "1", "--hidden", "12", "--bptt", "6", "--batch-size", "4", "--eval-batch-size", "4",
              "--optimizer", "sgd", "--lr", "0.5", "--epochs", "1", "--seed", "3", "--quiet"]
    script = str(Path(sys.executable).parent / "rnnkit")
    one = subprocess.run([sys.executable, script, "train", "lm", "--data", str(text), "--level", "word", *common,
                          "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          script, "train", "lm", "--prepared", str(tmp_path / "p"), *common,
                          "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=180)
    assert two.returncode == 0, two.stderr[-2000:]
    assert_same_weights(tmp_path / "one", tmp_path / "two")


@pytest.mark.parametrize("kind", ["whitespace", "char"])
def test_crlf_and_byte_order_mark_read_as_the_in_memory_path_does(tmp_path, small_chunks, kind):
    """CRLF line ends and a BOM: the map holds what read_text + the tokenizer give (the BOM dropped; words:
    the same tokens as with LF ends; characters: '\\r' kept, as it always was)."""
    text = corpus_text(80, 5)
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    got = prepare_lm([crlf], tmp_path / "p", kind)
    want = lm.load_corpus(crlf, tokenizer=kind)
    np.testing.assert_array_equal(got.train, want.train.numpy())
    assert "\ufeff" not in got.vocab
    if kind == "whitespace":
        (tmp_path / "lf.txt").write_text(text)
        lf = prepare_lm([tmp_path / "lf.txt"], tmp_path / "q", kind)
        np.testing.assert_array_equal(got.train, lf.train)
    else:
        assert "\r" in got.vocab


def test_prepared_keeps_its_own_tokenizer(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(corpus_text(50))
    assert main(["prepare", "lm", "--data", str(tmp_path / "t.txt"), "--out", str(tmp_path / "p")]) == 0
    one_error_line(capsys, ["train", "lm", "--prepared", str(tmp_path / "p"), "--tokenizer", "char", "--out",
                            str(tmp_path / "r")], "chosen by `rnnkit prepare lm`")


@pytest.mark.parametrize("level", ["char", "word"])
def test_old_lm_run_without_a_tokenizer_entry_samples_as_before(tmp_path, level):
    (tmp_path / "t.txt").write_text(corpus_text(60))
    data = lm.LMDataConfig(train=str(tmp_path / "t.txt"), level=level, batch_size=4, bptt=8)
    corpus = data.load()
    lm.fit(tmp_path / "r", data, lm.RNNLMConfig(vocab_size=len(corpus.vocab), hidden=8, layers=1),
           TrainConfig(epochs=1, **dict(device="cpu", progress=False, tensorboard=False)))
    before = lm.sample_text(lm.load_run(tmp_path / "r"), "the cat", 30, seed=1)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    del config["task"]["tokenizer"]  # what rnnkit wrote before tokenizers existed
    for key in ("prepared", "tokenizer", "vocab_size", "lang"):
        del config["data"][key]
    (tmp_path / "r" / "config.json").write_text(json.dumps(config))
    old = lm.load_run(tmp_path / "r")
    assert old.task.tokenizer.kind == {"char": "char", "word": "whitespace"}[level]
    assert lm.sample_text(old, "the cat", 30, seed=1) == before


def test_a_large_text_is_prepared_into_the_run_and_trains_as_from_memory(tmp_path, monkeypatch):
    """Above PREPARE_ABOVE bytes, `train lm --data` streams the text into RUN_DIR/prepared and trains from the
    map: the same losses and weights as the in-memory path (the oracle), also after --resume (which reads
    RUN_DIR/prepared, not the text: the text is gone by then); nothing is left in $TMPDIR."""
    text, tmp = tmp_path / "t.txt", tmp_path / "tmpdir"
    text.write_text(corpus_text(400), encoding="utf-8")
    tmp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    common = ["train", "lm", "--data", str(text), "--level", "word", "--hidden", "16", "--layers", "1", "--cell", "gru",
              "--batch-size", "4", "--bptt", "12", "--epochs", "2", "--optimizer", "adam", "--lr", "3e-3",
              "--seed", "5", "--device", "cpu", "--quiet", "--min-freq", "2"]
    monkeypatch.setattr(lm, "PREPARE_ABOVE", 1 << 40)
    assert main([*common, "--out", str(tmp_path / "mem")]) == 0
    assert lm.resume(tmp_path / "mem", epochs=3)[-1]["epoch"] == 3
    monkeypatch.setattr(lm, "PREPARE_ABOVE", 0)
    assert main([*common, "--out", str(tmp_path / "map")]) == 0
    mem, run = tmp_path / "mem", tmp_path / "map"
    assert not (mem / "prepared").exists() and (run / "prepared" / "meta.json").is_file()
    assert open_prepared(run / "prepared").vocab == lm.load_run(mem).task.vocab
    text.write_text("something else entirely\n" * 50, encoding="utf-8")
    assert lm.resume(run, epochs=3)[-1]["epoch"] == 3
    metrics = [[json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()] for r in (mem, run)]
    losses = [[(m["split"], m["step"], m["metrics"]["loss"]) for m in ms if m["split"] in ("train", "valid")]
              for ms in metrics]
    assert losses[0] == losses[1] and len(losses[0]) == 6
    for weights in ("best", "last"):
        a = lm.load_run(mem, weights).model.state_dict()
        b = lm.load_run(run, weights).model.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert lm.sample_text(lm.load_run(run), "the cat", 20, seed=1) == lm.sample_text(lm.load_run(mem), "the cat", 20,
                                                                                      seed=1)
    assert list(tmp.glob("rnnkit-lm-*")) == []
    assert main([*common, "--out", str(tmp_path / "bad"), "--tied", "--emb", "8"]) == 2  # fails after preparing
    gc.collect()
    assert list(tmp.glob("rnnkit-lm-*")) == [] and not (tmp_path / "bad").exists()


def test_two_runs_from_one_corpus_prepared_on_the_fly_each_keep_a_copy(tmp_path, monkeypatch):
    (tmp_path / "t.txt").write_text(corpus_text(200), encoding="utf-8")
    monkeypatch.setattr(lm, "PREPARE_ABOVE", 0)
    data = lm.LMDataConfig(train=str(tmp_path / "t.txt"), level="word", batch_size=4, bptt=10)
    corpus = data.load()
    assert isinstance(corpus.train, np.memmap) and corpus.store is not None
    config = TrainConfig(epochs=1, seed=3, device="cpu", progress=False, tensorboard=False)
    for name in ("a", "b"):
        lm.fit(tmp_path / name, data, lm.RNNLMConfig(vocab_size=len(corpus.vocab), hidden=8, layers=1), config, corpus)
    for name in ("a", "b"):
        np.testing.assert_array_equal(open_prepared(tmp_path / name / "prepared").train, corpus.train)
    a, b = (lm.load_run(tmp_path / n).model.state_dict() for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
