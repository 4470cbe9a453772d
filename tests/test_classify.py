"""Sequence classification: pooling against torch.nn, padding never leaks, learning a synthetic rule, SST
loading, metrics.jsonl against sklearn, and the CLI (train, predict, eval, one-line errors)."""
import json
import random

import numpy as np
import pytest
import torch
from _cli_errors import one_error_line
from sklearn.metrics import confusion_matrix as sk_confusion

from rnnkit.cli import main
from rnnkit.data import DataError, Vocab
from rnnkit.data.vectors import Vectors
from rnnkit.tasks import classify
from rnnkit.train import TrainConfig
from rnnkit.train.progress import read_metrics


def model_for(pooling, bidirectional, cell="lstm", layers=1):
    torch.manual_seed(0)
    config = classify.ClassifierConfig(vocab_size=20, num_classes=3, cell=cell, layers=layers, hidden=8, emb=6,
                                       bidirectional=bidirectional, pooling=pooling, attention_size=5)
    return classify.RNNClassifier(config).eval()


def padded_batch(lengths, seed=0):
    """Random token ids; the padding positions hold random (non-pad) ids too, so that only the lengths
    can keep them out."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(2, 20, (len(lengths), max(lengths)), generator=g)
    return tokens, torch.tensor(lengths)


def torch_nn_pooled(model, tokens, lengths):
    """The oracle: torch.nn.LSTM with the same weights, run on each example alone (no padding at all)."""
    c = model.config
    ref = torch.nn.LSTM(c.emb, c.hidden, c.layers, batch_first=True, bidirectional=c.bidirectional)
    ref.load_state_dict(model.rnn.state_dict())
    pooled = []
    for row, n in zip(tokens, lengths.tolist()):
        out, (h_n, _) = ref(model.embedding(row[:n]).unsqueeze(0))  # (1, n, D·H)
        out = out[0]
        if c.pooling == "last":
            D = 2 if c.bidirectional else 1
            pooled.append(torch.cat(list(h_n[-D:, 0])))
        elif c.pooling == "mean":
            pooled.append(out.mean(0))
        elif c.pooling == "max":
            pooled.append(out.max(0).values)
        else:  # α = softmax_t(vᵀ tanh(W h_t + b)), s = Σ α_t h_t
            att = model.attention
            alpha = torch.softmax(att.v(torch.tanh(att.proj(out))).squeeze(-1), dim=0)
            pooled.append(alpha @ out)
    return torch.stack(pooled)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", classify.POOLINGS)
def test_pooling_matches_torch_nn_on_each_example_alone(pooling, bidirectional):
    model = model_for(pooling, bidirectional, layers=2)
    tokens, lengths = padded_batch([5, 1, 7, 3, 7])
    with torch.no_grad():
        got = model.encode(tokens, lengths)
        want = torch_nn_pooled(model, tokens, lengths)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["gru-before", "ln-lstm"])  # the loop path (no fused kernel)
@pytest.mark.parametrize("pooling", classify.POOLINGS)
def test_padded_batch_equals_each_example_alone(pooling, cell):
    model = model_for(pooling, True, cell=cell)
    tokens, lengths = padded_batch([4, 1, 6, 2], seed=1)
    with torch.no_grad():
        batch = model.logits(tokens, lengths)
        alone = torch.cat([model.logits(row[:n].unsqueeze(0), torch.tensor([n]))
                           for row, n in zip(tokens, lengths.tolist())])
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=1e-5)


def test_loss_and_stats_of_a_batch():
    model = model_for("mean", True)
    tokens, lengths = padded_batch([3, 5, 2, 4])
    labels = torch.tensor([0, 2, 2, 1])
    out = model(classify.ClassifyBatch(tokens, lengths, labels))
    logp = torch.log_softmax(out.logits, dim=1)
    assert out.loss.item() == pytest.approx(-logp[torch.arange(4), labels].mean().item(), rel=1e-6)
    cm = np.array([[out.stats[f"cm_{i}_{j}"].item() for j in range(3)] for i in range(3)])
    np.testing.assert_array_equal(cm, sk_confusion(labels, out.logits.argmax(1), labels=[0, 1, 2]))
    assert out.stats["tokens"].item() == 14 and out.stats["examples"] == 4


# ---- learning a synthetic rule -------------------------------------------------------------------------------

def rule_examples(n, seed):
    """label = whether token "a" occurs before token "b" in a sequence of fillers."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice("cdefghij") for _ in range(rng.randint(3, 10))]
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = "a", "b"
        rows.append((" ".join(words), "before" if i < j else "after"))
    return rows


def write_tsv(path, rows):
    path.write_text("".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rule_run(tmp_path_factory):
    """A BiLSTM trained through the CLI on the a-before-b rule (a few seconds)."""
    tmp = tmp_path_factory.mktemp("rule")
    train = write_tsv(tmp / "train.tsv", rule_examples(1500, 0))
    valid = write_tsv(tmp / "valid.tsv", rule_examples(300, 1))
    out = tmp / "run"
    code = main(["train", "classify", "--data", str(train), "--valid", str(valid), "--hidden", "24", "--emb", "12",
                 "--epochs", "6", "--lr", "0.01", "--batch-size", "32", "--out", str(out), "--device", "cpu"])
    assert code == 0
    return tmp, out


def test_learns_a_before_b(rule_run):
    _, out = rule_run
    valid = [r for r in read_metrics(out) if r["split"] == "valid"]
    best = max(r["metrics"]["accuracy"] for r in valid)
    assert best >= 0.95, [r["metrics"]["accuracy"] for r in valid]


def test_metrics_jsonl_confusion_matches_sklearn_on_best_model(rule_run):
    tmp, out = rule_run
    run = classify.load_run(out)
    rows = [line.split("\t") for line in (tmp / "valid.tsv").read_text().splitlines()]
    probs = classify.predict_proba(run, [text.split() for text, _ in rows])
    gold = [run.task.labels.index(label) for _, label in rows]
    want = sk_confusion(gold, probs.argmax(1).numpy(), labels=[0, 1])
    valid = [r["metrics"] for r in read_metrics(out) if r["split"] == "valid"]
    best = max(valid, key=lambda m: m["accuracy"])  # the epoch whose weights best.safetensors holds
    labels = run.task.labels
    got = [[best[f"confusion/{t}/{p}"] for p in labels] for t in labels]
    np.testing.assert_array_equal(got, want)
    assert best["accuracy"] == pytest.approx(np.trace(want) / want.sum())


def test_predict_round_trip(rule_run, capsys):
    tmp, out = rule_run
    fresh = rule_examples(100, 7)
    (tmp / "in.txt").write_text("\n".join(text for text, _ in fresh) + "\n\n")
    capsys.readouterr()
    assert main(["predict", str(out), "--input", str(tmp / "in.txt")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 100
    predicted = [line.split("\t")[0] for line in lines]
    assert np.mean([p == y for p, (_, y) in zip(predicted, fresh)]) >= 0.95
    assert main(["predict", str(out), "--input", str(tmp / "in.txt"), "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["label"] for r in records] == predicted and records[0]["text"] == fresh[0][0]
    for r in records:
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)


def test_predict_and_eval_on_labelled_input(rule_run, capsys):
    tmp, out = rule_run
    capsys.readouterr()
    assert main(["predict", str(out), "--input", str(tmp / "valid.tsv"), "--input-format", "tsv",
                 "--format", "json"]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    accuracy = np.mean([r["label"] == r["gold"] for r in records])
    assert f"accuracy {accuracy:.4f}" in captured.err
    assert main(["eval", str(out), "--data", str(tmp / "valid.tsv")]) == 0
    assert f"accuracy {accuracy:.4f}" in capsys.readouterr().out


# ---- same seed, same run; frozen pretrained vectors -------------------------------------------------------------

def tiny_fit(tmp_path, name, vectors=None, freeze=False):
    data = classify.ClassifyDataConfig(train=str(write_tsv(tmp_path / "t.tsv", rule_examples(60, 3))),
                                       batch_size=8)
    corpus = classify.load_corpus(data)
    config = classify.ClassifierConfig(len(corpus.task.vocab), 2, hidden=6, emb=4, freeze_embedding=freeze)
    train = TrainConfig(epochs=2, optimizer="adam", device="cpu", progress=False, tensorboard=False, seed=3)
    return classify.fit(tmp_path / name, data, config, train, corpus, vectors), corpus


def test_same_seed_same_history(tmp_path):
    first, _ = tiny_fit(tmp_path, "one")
    second, _ = tiny_fit(tmp_path, "two")
    assert [h["train"]["loss"] for h in first] == [h["train"]["loss"] for h in second]
    assert [h["valid"]["loss"] for h in first] == [h["valid"]["loss"] for h in second]


def test_resume_continues_exactly(tmp_path):
    """2 epochs in one go == 1 epoch, then `resume` (which rebuilds vocab, labels, batches and model from
    RUN_DIR alone) for the second."""
    full, _ = tiny_fit(tmp_path, "full")
    data = classify.ClassifyDataConfig(train=str(tmp_path / "t.tsv"), batch_size=8)
    corpus = classify.load_corpus(data)
    config = classify.ClassifierConfig(len(corpus.task.vocab), 2, hidden=6, emb=4)
    train = TrainConfig(epochs=1, optimizer="adam", device="cpu", progress=False, tensorboard=False, seed=3)
    classify.fit(tmp_path / "half", data, config, train, corpus)
    saved = json.loads((tmp_path / "half" / "config.json").read_text())
    saved["train"]["epochs"] = 2
    (tmp_path / "half" / "config.json").write_text(json.dumps(saved))
    resumed = classify.resume(tmp_path / "half")
    assert [h["valid"]["loss"] for h in resumed] == [h["valid"]["loss"] for h in full]
    assert resumed[1]["train"]["loss"] == full[1]["train"]["loss"]


def test_frozen_pretrained_vectors(tmp_path):
    _, corpus = tiny_fit(tmp_path, "probe")
    V = len(corpus.task.vocab)
    found = torch.zeros(V, dtype=torch.bool)
    found[corpus.task.vocab.index("a")] = found[corpus.task.vocab.index("b")] = True
    weights = torch.arange(V * 4, dtype=torch.float32).reshape(V, 4) * found.unsqueeze(1)
    tiny_fit(tmp_path, "frozen", Vectors(weights, found, 4), freeze=True)
    run = classify.load_run(tmp_path / "frozen", weights="last")
    emb = run.model.embedding.weight
    torch.testing.assert_close(emb[found], weights[found])  # the vectors, untouched by training
    assert not emb.requires_grad


# ---- SST trees -------------------------------------------------------------------------------------------------

SST = ("(3 (2 It) (4 (2 's) (4 great)))\n"
       "(1 (2 A) (1 (1 dull) (2 (2 ,) (0 (0 boring) (2 film)))))\n"
       "(2 (2 Just) (2 okay))\n"
       "(4 (4 great) (2 fun))\n")


def test_sst_fine_binary_and_phrases(tmp_path):
    path = tmp_path / "sst.txt"
    path.write_text(SST)
    fine = classify.read_sst(path)
    assert [(e.label, " ".join(e.tokens)) for e in fine][:2] == [("3", "It 's great"), ("1", "A dull , boring film")]
    binary = classify.read_sst(path, "binary")
    assert [e.label for e in binary] == ["positive", "negative", "positive"]  # neutral "Just okay" dropped
    assert [e.where for e in binary] == [f"{path}:1", f"{path}:2", f"{path}:4"]
    phrases = classify.read_sst(path, "fine", phrases=True)
    texts = [" ".join(e.tokens) for e in phrases]
    assert len(texts) == len(set(texts))  # each distinct phrase once ("great" occurs in trees 1 and 4)
    assert ("boring film", "0") in [(t, e.label) for t, e in zip(texts, phrases)]
    assert len(phrases) == 5 + 9 + 3 + 3 - 1  # nodes per tree, minus the repeated "great"
    assert all(e.label != "2" for e in classify.read_sst(path, "binary", phrases=True))


def test_sst_corpus_labels_and_vocab(tmp_path):
    path = tmp_path / "sst.txt"
    path.write_text(SST)
    data = classify.ClassifyDataConfig(train=str(path), valid=str(path), sst_labels="binary", phrases=True)
    assert data.format_of(path) == "sst"
    corpus = classify.load_corpus(data)
    assert corpus.task.labels == ["negative", "positive"]
    assert len(corpus.valid) == 3 and len(corpus.train) > 3
    assert "boring" in corpus.task.vocab and isinstance(corpus.task.vocab, Vocab)


# ---- bad input: one line, exit code 2 -------------------------------------------------------------------------


def test_cli_wrong_column_count(tmp_path, capsys):
    path = write_tsv(tmp_path / "t.tsv", rule_examples(10, 0))
    path.write_text(path.read_text() + "one\ttwo\tthree\n")
    one_error_line(capsys, ["train", "classify", "--data", str(path), "--out", str(tmp_path / "r")],
                   f"{path}:11: expected 2 columns, found 3")


def test_cli_unknown_label_in_valid(tmp_path, capsys):
    train = write_tsv(tmp_path / "t.tsv", rule_examples(10, 0))
    valid = write_tsv(tmp_path / "v.tsv", rule_examples(2, 1) + [("a b c", "sideways")])
    one_error_line(capsys, ["train", "classify", "--data", str(train), "--valid", str(valid),
                            "--out", str(tmp_path / "r")], f"{valid}:3: expected one of the labels", "'sideways'")


def test_cli_unknown_label_at_predict(rule_run, tmp_path, capsys):
    _, out = rule_run
    path = write_tsv(tmp_path / "p.tsv", [("a b c", "before"), ("b a", "maybe")])
    one_error_line(capsys, ["predict", str(out), "--input", str(path), "--input-format", "tsv"],
                   f"{path}:2: expected one of the labels seen in training (after, before), found 'maybe'")


@pytest.mark.parametrize("content, fragment", [("", "empty"), ("(3 (2 It) (4 great)\n", ":1:")])
def test_cli_bad_files(tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    one_error_line(capsys, ["train", "classify", "--data", str(path), "--format", "sst", "--out",
                            str(tmp_path / "r")], str(path), fragment)


def test_cli_missing_data_and_bad_pooling(capsys):
    one_error_line(capsys, ["train", "classify"], "--data is required")
    one_error_line(capsys, ["train", "classify", "--data", "x.tsv", "--pooling", "sum"], "--pooling")


def test_unknown_label_error_is_a_data_error(rule_run):
    run = classify.load_run(rule_run[1])
    with pytest.raises(DataError, match="^f.tsv:9: expected one of"):
        run.task.label_id("nope", "f.tsv:9")
