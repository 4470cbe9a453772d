"""The seq2seq task end to end: learning to reverse (attention vs none), one→sequence, CLI train/translate/eval,
same seed -> same run, bad input -> one line and exit 2."""
import io
import json
import math
import random

import numpy as np
import pytest
import sacrebleu
import torch
from _cli_errors import one_error_line

from rnnkit.cli import main
from rnnkit.tasks import seq2seq
from rnnkit.tasks.decode import translate
from rnnkit.train import TrainConfig

LETTERS = "abcdef"


def reversal_files(tmp_path, name, n, lo, hi, seed):
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(n):
        s = [rng.choice(LETTERS) for _ in range(rng.randint(lo, hi))]
        src.append(" ".join(s))
        tgt.append(" ".join(reversed(s)))
    (tmp_path / f"{name}.src").write_text("\n".join(src) + "\n")
    (tmp_path / f"{name}.tgt").write_text("\n".join(tgt) + "\n")
    return tmp_path / f"{name}.src", tmp_path / f"{name}.tgt", src, tgt


def exact_by_length(run, src, tgt):
    out = translate(run, src, beam=1)
    by = {}
    for s, t, o in zip(src, tgt, out):
        by.setdefault(len(s.split()), []).append(o.text == t)
    total = sum(sum(v) for v in by.values()) / len(src)
    return total, {k: sum(v) / len(v) for k, v in sorted(by.items())}


@pytest.fixture(scope="module")
def reversal(tmp_path_factory):
    """Reverse sequences of 4-10 symbols: a bi-GRU encoder-decoder with additive attention and the same model
    without attention, trained alike (3000 pairs, 7 epochs, ~10 s each on one core)."""
    tmp = tmp_path_factory.mktemp("reverse")
    train_src, train_tgt, _, _ = reversal_files(tmp, "train", 3000, 4, 10, 0)
    _, _, test_src, test_tgt = reversal_files(tmp, "test", 300, 4, 10, 1)
    data = seq2seq.Seq2SeqData(src=str(train_src), tgt=str(train_tgt), batch_size=32)
    config = TrainConfig(epochs=7, optimizer="adam", lr=5e-3, lr_schedule="step", lr_decay_start=4, lr_factor=0.5,
                         device="cpu", progress=False, tensorboard=False)
    results = {}
    for attention in ("additive", "none"):
        seq2seq.fit(tmp / attention, data, config, emb=16, hidden=32, attention=attention)
        run = seq2seq.load_run(tmp / attention)
        results[attention] = exact_by_length(run, test_src, test_tgt)
    return results


def test_attention_learns_to_reverse(reversal):
    total, by_length = reversal["additive"]
    assert total >= 0.99, by_length
    assert min(by_length.values()) >= 0.95, by_length


def test_no_attention_degrades_with_length(reversal):
    total, by_length = reversal["none"]
    short = (by_length[4] + by_length[5]) / 2
    long = (by_length[9] + by_length[10]) / 2
    assert short >= 0.8 and long <= 0.4 and short - long >= 0.5, by_length
    assert reversal["additive"][1][10] - by_length[10] >= 0.5


def test_cli_train_translate_eval(tmp_path, capsys, monkeypatch):
    src, tgt, src_lines, tgt_lines = reversal_files(tmp_path, "train", 300, 3, 6, 0)
    run = tmp_path / "run"
    code = main(["train", "seq2seq", "--src", str(src), "--tgt", str(tgt), "--valid-src", str(src), "--valid-tgt",
                 str(tgt), "--hidden", "16", "--emb", "8", "--epochs", "2", "--attention", "dot", "--input-feeding",
                 "--cell", "lstm", "--out", str(run), "--device", "cpu"])
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert config["task"]["name"] == "seq2seq" and config["model"]["attention"] == "dot"
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(src_lines[:5]) + "\n\n"))
    png = tmp_path / "att.png"
    assert main(["translate", str(run), "--beam", "3", "--plot-attention", str(png), "--plot-line", "2"]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == 7 and lines[5] == "" and lines[6] == ""  # 5 translations, the empty line, final newline
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    long = " ".join(["a"] * 150)  # the run's max_len is 100: truncated with a warning, never a crash
    with pytest.warns(UserWarning, match="input line 2: 1 sentence.* longer than the run's max_len 100"):
        out = translate(seq2seq.load_run(run), ["a b", long])
    assert len(out[1].src_tokens) == 100
    assert main(["eval", str(run), "--src", str(src), "--tgt", str(tgt)]) == 0
    printed = capsys.readouterr().out.splitlines()
    values = printed[0].split()
    metrics = dict(zip(values[::2], map(float, values[1::2])))
    assert printed[1].startswith("sacrebleu: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert printed[2].startswith("bleu_tok ")
    assert metrics["ppl"] == pytest.approx(math.exp(metrics["loss"]), rel=1e-3)
    hyps = [t.text for t in translate(seq2seq.load_run(run), src_lines)]
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [tgt_lines]).score, abs=1e-3)
    assert metrics["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [tgt_lines]).score, abs=1e-3)
    history = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    best_valid = min(r["metrics"]["loss"] for r in history if r["split"] == "valid")
    assert metrics["loss"] == pytest.approx(best_valid, rel=1e-4)  # eval reloads the best checkpoint


def test_one_to_sequence_learns_a_caption_per_vector(tmp_path, capsys):
    """Vectors of 4 classes (one-hot + noise) -> that class's caption; CSV in, exact captions out."""
    rng = np.random.default_rng(0)
    captions = ["a b c", "b a", "c c a b", "a"]
    labels = rng.integers(0, 4, 400)
    vectors = np.eye(4)[labels] + 0.1 * rng.standard_normal((400, 4))
    (tmp_path / "v.csv").write_text("\n".join(",".join(f"{x:.4f}" for x in v) for v in vectors) + "\n")
    (tmp_path / "t.txt").write_text("\n".join(captions[k] for k in labels) + "\n")
    run = tmp_path / "run"
    assert main(["train", "seq2seq", "--features", str(tmp_path / "v.csv"), "--tgt", str(tmp_path / "t.txt"),
                 "--hidden", "16", "--emb", "8", "--epochs", "6", "--lr", "1e-2", "--out", str(run),
                 "--device", "cpu"]) == 0
    np.save(tmp_path / "test.npy", np.eye(4) + 0.05)
    capsys.readouterr()
    assert main(["translate", str(run), "--input", str(tmp_path / "test.npy")]) == 0
    assert capsys.readouterr().out.splitlines() == captions


def test_same_seed_same_run(tmp_path):
    src, tgt, _, _ = reversal_files(tmp_path, "train", 100, 2, 5, 0)
    data = seq2seq.Seq2SeqData(src=str(src), tgt=str(tgt), batch_size=16)
    config = TrainConfig(epochs=1, optimizer="adam", seed=3, device="cpu", progress=False, tensorboard=False)
    runs = [seq2seq.fit(tmp_path / f"r{i}", data, config, emb=8, hidden=8, dropout=0.3, teacher_forcing=0.5)
            for i in range(2)]
    assert runs[0][0]["train"]["loss"] == runs[1][0]["train"]["loss"]
    w = [seq2seq.load_run(tmp_path / f"r{i}").model.state_dict() for i in range(2)]
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])


def test_bad_input_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "s.txt").write_text("a b\nc\n")
    (tmp_path / "t.txt").write_text("x\ny\n")
    (tmp_path / "v.csv").write_text("1,2\n3,4\n5,6\n")
    base = ["train", "seq2seq", "--out", str(tmp_path / "r")]
    one_error_line(capsys, [*base, "--src", str(tmp_path / "s.txt")], "--tgt")
    one_error_line(capsys, [*base, "--src", str(tmp_path / "s.txt"), "--tgt", str(tmp_path / "t.txt"),
                            "--attention", "luong"], "--attention", "additive")
    one_error_line(capsys, [*base, "--features", str(tmp_path / "v.csv"), "--tgt", str(tmp_path / "t.txt")],
                   "has 3 vectors", "has 2 lines")
    one_error_line(capsys, [*base, "--src", str(tmp_path / "nope.txt"), "--tgt", str(tmp_path / "t.txt")],
                   "nope.txt", "not found")
    one_error_line(capsys, [*base, "--src", str(tmp_path / "s.txt"), "--tgt", str(tmp_path / "t.txt"),
                            "--valid-src", str(tmp_path / "s.txt")], "validation needs both sides")
    one_error_line(capsys, ["translate", str(tmp_path)], "not a run directory")


def test_resume_continues_exactly(tmp_path):
    """1 epoch + resume to 2 epochs == 2 epochs in one go (dropout and teacher forcing draw random numbers)."""
    from rnnkit.train import update_config_json

    src, tgt, _, _ = reversal_files(tmp_path, "train", 60, 2, 5, 0)
    data = seq2seq.Seq2SeqData(src=str(src), tgt=str(tgt), batch_size=16)
    options = dict(emb=8, hidden=8, dropout=0.3, teacher_forcing=0.5, cell="lstm", input_feeding=True)
    config = dict(optimizer="adam", seed=1, device="cpu", progress=False, tensorboard=False)
    whole = seq2seq.fit(tmp_path / "whole", data, TrainConfig(epochs=2, **config), **options)
    seq2seq.fit(tmp_path / "part", data, TrainConfig(epochs=1, **config), **options)
    saved = json.loads((tmp_path / "part" / "config.json").read_text())["train"]
    update_config_json(tmp_path / "part", "train", {**saved, "epochs": 2})
    resumed = seq2seq.resume(tmp_path / "part")
    assert resumed[-1]["train"]["loss"] == whole[-1]["train"]["loss"]
    a = seq2seq.load_run(tmp_path / "whole", weights="last").model.state_dict()
    b = seq2seq.load_run(tmp_path / "part", weights="last").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
