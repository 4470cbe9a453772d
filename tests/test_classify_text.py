"""Tokenizers for classify runs: a sentencepiece or moses run tokenises training, predict, eval and serve input
with its own saved model (oracle: the sentencepiece / sacremoses libraries called directly); an old run directory
without a tokenizer entry still loads as whitespace words."""
import json
import random

import sentencepiece as spm
import torch
from sacremoses import MosesTokenizer

from rnnkit.cli import main
from rnnkit.tasks import classify
from rnnkit.train import TrainConfig

QUIET = dict(device="cpu", progress=False, tensorboard=False)
GOOD, BAD = ["wonderful", "delightful", "superb"], ["dreadful", "awful", "terrible"]
FILL = ["the", "film", "was", "quite", "story", "acting", "really", "and"]


def reviews(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        words = [rng.choice(FILL) for _ in range(rng.randint(2, 6))]
        words.insert(rng.randint(0, len(words)), rng.choice(GOOD if label == "pos" else BAD))
        out.append((" ".join(words).capitalize() + rng.choice(["!", ".", "..."]), label))
    return out


def write_tsv(path, rows):
    path.write_text("".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path


def test_sentencepiece_classifier_uses_its_own_model_everywhere(tmp_path, capsys):
    train = write_tsv(tmp_path / "train.tsv", reviews(400, 0))
    data = classify.ClassifyDataConfig(train=str(train), tokenizer="sentencepiece-unigram", vocab_size=40,
                                       lower=True, batch_size=16)
    corpus = classify.SPEC.prepare(data)
    history = classify.fit(tmp_path / "run", data, {"hidden": 16, "emb": 16}, TrainConfig(epochs=8, lr=3e-3,
                           optimizer="adam", **QUIET), corpus=corpus)
    assert history[-1]["valid"]["accuracy"] >= 0.95
    run = classify.load_run(tmp_path / "run")
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "run" / "tokenizer.model"))
    text = "The acting was SUPERB and delightful!"
    assert run.task.tokenize(text) == sp.encode(text.lower(), out_type=str)
    assert run.task.vocab.itos[2:] == [sp.id_to_piece(i) for i in range(1, sp.get_piece_size())]
    (tmp_path / "new.txt").write_text("What a dreadful film.\nSuperb story, really!\n")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run"), "--input", str(tmp_path / "new.txt")]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["neg", "pos"]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["task"]["tokenizer"]
    assert saved == {"kind": "sentencepiece-unigram", "file": "tokenizer.model", "pieces": 39}


def test_moses_classifier_and_old_run_without_tokenizer(tmp_path):
    rows = reviews(100, 1)
    train = write_tsv(tmp_path / "train.tsv", rows)
    data = classify.ClassifyDataConfig(train=str(train), tokenizer="moses", batch_size=16)
    corpus = classify.SPEC.prepare(data)
    assert "!" in corpus.task.vocab and "superb!" not in corpus.task.vocab
    assert corpus.task.tokenize(rows[0][0]) == MosesTokenizer("en").tokenize(rows[0][0], escape=False)
    plain = classify.ClassifyDataConfig(train=str(train), batch_size=16)
    classify.fit(tmp_path / "old", plain, {"hidden": 8, "emb": 8}, TrainConfig(epochs=1, **QUIET))
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["task"]["tokenizer"]  # written before tokenizers existed
    for key in ("tokenizer", "vocab_size", "lang"):
        del config["data"][key]
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    run = classify.load_run(tmp_path / "old")
    assert run.task.tokenizer.kind == "whitespace" and run.task.tokenize("a b.") == ["a", "b."]
    probs = classify.predict_proba(run, [rows[0][0].split()])
    assert torch.allclose(probs.sum(1), torch.ones(1))
