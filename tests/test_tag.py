"""The tagger: learns deterministic toy grammars to 100% (softmax and CRF, words and characters), no padding
leaks, entity F1 equals seqeval and a hand count, and the CLI end to end (train, predict, eval, errors)."""
import random

import pytest
import torch
from _cli_errors import one_error_line
from seqeval.metrics import f1_score, precision_score, recall_score

from rnnkit.cli import main
from rnnkit.data import DataError
from rnnkit.data.conll import read_conllu
from rnnkit.tasks import tag
from rnnkit.train import TrainConfig

WORDS = [f"w{i}" for i in range(6)]


def toy_tag(word: str, left: str | None) -> str:
    """The tag is a function of the word and its left neighbour: (i + j) mod 3 as a letter."""
    j = int(left[1:]) if left is not None else 0
    return "ABC"[(int(word[1:]) + j) % 3]


def toy_sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 7))]
        out.append((words, [toy_tag(w, words[k - 1] if k else None) for k, w in enumerate(words)]))
    return out


def write_conllu(path, sentences):
    rows = []
    for k, (words, tags) in enumerate(sentences):
        rows.append(f"# sent_id = {k}\n")
        rows += [f"{i}\t{w}\t{w}\t{t}\tX{t}\t_\t0\tdep\t_\t_\n" for i, (w, t) in enumerate(zip(words, tags), 1)]
        rows.append("\n")
    path.write_text("".join(rows), encoding="utf-8")
    return path


def fast_train(epochs: int, lr: float = 0.02) -> TrainConfig:
    return TrainConfig(epochs=epochs, optimizer="adam", lr=lr, clip=5.0, progress=False, tensorboard=False,
                       device="cpu", log_every=0)


@pytest.mark.parametrize("crf", [False, True])
def test_learns_toy_grammar_to_100_percent(tmp_path, crf):
    train = write_conllu(tmp_path / "train.conllu", toy_sentences(150, 0))
    valid = write_conllu(tmp_path / "valid.conllu", toy_sentences(60, 1))
    data = tag.TagDataConfig(train=str(train), valid=str(valid), batch_size=10)
    corpus = tag.load_corpus(data)
    config = tag.model_config_for(corpus, emb=8, hidden=16, dropout=0.0, word_dropout=0.0, crf=crf)
    history = tag.fit(tmp_path / "run", data, config, fast_train(12), corpus)
    assert history[-1]["valid"]["accuracy"] == 1.0, history[-1]
    run = tag.load_run(tmp_path / "run")
    sentences = toy_sentences(20, 2)
    predicted = tag.predict(run, [w for w, _ in sentences])
    assert predicted == [t for _, t in sentences]


def test_character_encoder_tags_unseen_words(tmp_path):
    """Tag = does the word end in 's'. Test words never occur in training: only the characters can tell."""
    rng = random.Random(0)

    def word():
        return "".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 4))) + rng.choice("sxyz")

    def sentences(n, avoid=frozenset()):
        out = []
        for _ in range(n):
            words = []
            while len(words) < rng.randint(1, 5):
                w = word()
                if w not in avoid:
                    words.append(w)
            out.append((words, ["PL" if w.endswith("s") else "SG" for w in words]))
        return out

    train = sentences(120)
    test = sentences(30, avoid={w for ws, _ in train for w in ws})
    path = write_conllu(tmp_path / "train.conllu", train)
    data = tag.TagDataConfig(train=str(path), chars=True, batch_size=10)
    corpus = tag.load_corpus(data)
    config = tag.model_config_for(corpus, emb=4, hidden=8, char_emb=8, char_hidden=8, dropout=0.0,
                                  word_dropout=0.25)
    tag.fit(tmp_path / "run", data, config, fast_train(10), corpus)
    run = tag.load_run(tmp_path / "run", weights="last")
    assert tag.predict(run, [w for w, _ in test]) == [t for _, t in test]


@pytest.mark.parametrize("crf", [False, True])
def test_padded_batch_equals_each_sentence_alone(tmp_path, crf):
    sentences = [s for s, _ in toy_sentences(5, 3)] + [["w1"]]
    vocab = tag.Vocab(["<pad>", "<unk>", *WORDS])
    chars = tag.Vocab(["<pad>", "<unk>", "w", *"012345"])
    task = tag.TagTask(vocab, tag.Vocab(list("ABC"), unk=None), chars)
    torch.manual_seed(0)
    model = tag.Tagger(tag.TaggerConfig(tags=list("ABC"), vocab_size=len(vocab), char_vocab_size=len(chars),
                                        emb=5, hidden=6, char_emb=3, char_hidden=4, crf=crf)).eval()
    examples = tag.encode([tag.Sentence(s, None, 0) for s in sentences], task)
    together = model(tag.collate(examples))
    for b, e in enumerate(examples):
        alone = model(tag.collate([e]))
        n = len(e[0])
        torch.testing.assert_close(together.logits[b, :n], alone.logits[0], atol=1e-6, rtol=1e-5)
        assert together.predictions[b, :n].tolist() == alone.predictions[0].tolist()
    # the loss is the per-sentence NLL summed and averaged over the batch
    per_sentence = [model(tag.collate([e])).loss for e in examples]
    torch.testing.assert_close(together.loss, torch.stack(per_sentence).mean(), atol=1e-5, rtol=1e-5)


def test_entity_f1_equals_seqeval_and_a_hand_count():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "I-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG", "I-ORG", "O", "O", "B-PER"]]
    # by hand: gold entities PER(0-1) LOC(3) | ORG(1-3) PER(5) = 4; predicted PER(0-1) ORG(3) | ORG(1-2) PER(5) = 4;
    # correct (type, start, end): PER(0-1), PER(5) = 2  ->  P = 2/4, R = 2/4, F1 = 0.5
    counts = tag.entity_counts(gold, pred)
    assert counts == {"tp": 2, "pred": 4, "gold": 4}
    task = tag.TagTask(tag.Vocab(["<pad>", "<unk>"]), tag.Vocab(["O"], unk=None), metric="entity")
    metrics = task.summarize({"nll": 1.0, "tokens": 10, "correct": 8, **counts})
    assert metrics["precision"] == metrics["recall"] == metrics["f1"] == 0.5
    assert metrics["precision"] == precision_score(gold, pred)
    assert metrics["recall"] == recall_score(gold, pred) and metrics["f1"] == f1_score(gold, pred)
    assert metrics["accuracy"] == 0.8
    # summing per-batch counts equals seqeval over all sentences at once
    more = [["B-LOC", "I-LOC"], ["O"]], [["B-LOC", "O"], ["B-PER"]]
    total = {k: counts[k] + tag.entity_counts(*more)[k] for k in counts}
    scores = tag.entity_scores(total["tp"], total["pred"], total["gold"])
    assert scores["f1"] == pytest.approx(f1_score(gold + more[0], pred + more[1]))


def test_same_seed_same_run(tmp_path):
    train = write_conllu(tmp_path / "train.conllu", toy_sentences(40, 0))
    data = tag.TagDataConfig(train=str(train), batch_size=8)
    corpus = tag.load_corpus(data)
    config = tag.model_config_for(corpus, emb=4, hidden=4, dropout=0.3)
    losses = [[h["train"]["loss"] for h in tag.fit(tmp_path / f"r{k}", data, config, fast_train(2), corpus)]
              for k in range(2)]
    assert losses[0] == losses[1]


def test_resume_continues_exactly(tmp_path):
    from rnnkit.train import update_config_json
    from rnnkit.train.checkpoint import read_json

    train = write_conllu(tmp_path / "train.conllu", toy_sentences(40, 0))
    valid = write_conllu(tmp_path / "valid.conllu", toy_sentences(10, 1))
    data = tag.TagDataConfig(train=str(train), valid=str(valid), batch_size=8, chars=True)
    corpus = tag.load_corpus(data)
    config = tag.model_config_for(corpus, emb=4, hidden=4, char_emb=3, char_hidden=3, dropout=0.3, crf=True)
    straight = tag.fit(tmp_path / "a", data, config, fast_train(2), corpus)
    tag.fit(tmp_path / "b", data, config, fast_train(1), corpus)
    update_config_json(tmp_path / "b", "train", {**read_json(tmp_path / "b" / "config.json")["train"], "epochs": 2})
    resumed = tag.resume(tmp_path / "b")
    assert resumed[-1]["train"] == straight[-1]["train"] and resumed[-1]["valid"] == straight[-1]["valid"]


# ---- command line ---------------------------------------------------------------------------------------------


def test_cli_train_predict_eval_conllu_round_trip(tmp_path, capsys):
    train = write_conllu(tmp_path / "train.conllu", toy_sentences(150, 0))
    valid = write_conllu(tmp_path / "valid.conllu", toy_sentences(300, 1))
    run = tmp_path / "run"
    assert main(["train", "tag", "--data", str(train), "--valid", str(valid), "--column", "xpos", "--emb", "8",
                 "--hidden", "16", "--dropout", "0", "--word-dropout", "0", "--lr", "0.02", "--epochs", "12",
                 "--batch-size", "10", "--out", str(run)]) == 0
    capsys.readouterr()
    test = toy_sentences(15, 5)
    gold = write_conllu(tmp_path / "test.conllu", test)
    blank = gold.read_text().replace("\tXA\t", "\t_\t").replace("\tXB\t", "\t_\t").replace("\tXC\t", "\t_\t")
    (tmp_path / "blank.conllu").write_text(blank)
    out = tmp_path / "pred.conllu"
    assert main(["predict", str(run), "--input", str(tmp_path / "blank.conllu"), "--format", "conllu",
                 "--output", str(out)]) == 0
    assert out.read_text() == gold.read_text()  # every column kept, XPOS predicted right
    assert [s.tags for s in read_conllu(out, column="xpos")] == [["X" + t for t in ts] for _, ts in test]
    assert main(["eval", str(run), "--data", str(gold)]) == 0
    assert "accuracy 1.0000" in capsys.readouterr().out
    (tmp_path / "raw.txt").write_text("w1 w2 w3\n\nw0\n")
    assert main(["predict", str(run), "--input", str(tmp_path / "raw.txt")]) == 0
    assert capsys.readouterr().out == "w1/XB w2/XA w3/XC\nw0/XA\n"


def test_cli_ner_with_crf_and_chars_writes_conll(tmp_path, capsys):
    text = "John\tB-PER\nlives\tO\nin\tO\nNew\tB-LOC\nYork\tI-LOC\n\nMary\tB-PER\nsmiles\tO\n\n"
    (tmp_path / "train.conll").write_text(text * 20)
    run = tmp_path / "run"
    assert main(["train", "tag", "--data", str(tmp_path / "train.conll"), "--format", "conll", "--crf", "--chars",
                 "--lower", "--emb", "8", "--hidden", "8", "--char-hidden", "4", "--epochs", "8", "--lr", "0.03",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    (tmp_path / "in.conll").write_text("Mary\nlives\nin\nNew\nYork\n")
    assert main(["predict", str(run), "--input", str(tmp_path / "in.conll")]) == 0  # format from the name
    assert capsys.readouterr().out == "Mary\tB-PER\nlives\tO\nin\tO\nNew\tB-LOC\nYork\tI-LOC\n\n"
    assert main(["eval", str(run), "--data", str(tmp_path / "train.conll")]) == 0
    assert "f1 1.0000" in capsys.readouterr().out
    assert {"john", "new"} <= set(tag.Vocab.load(run / "vocab.json").itos)  # --lower: lower-cased word types
    assert "John" not in tag.Vocab.load(run / "vocab.json") and "J" in tag.Vocab.load(run / "chars.json")


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tThe\tthe\tDET\tDT\t_\t0\troot\t_\t_\n2\tcat\tcat\tNOUN\n")
    one_error_line(capsys, ["train", "tag", "--data", str(bad), "--out", str(tmp_path / "r")],
                   f"{bad}:2: expected 10 tab-separated columns, found 4")
    ner = tmp_path / "bad.conll"
    ner.write_text("John\tB-PER\nSmith\tI-PER\n\nlives\tI-LOC\n")
    one_error_line(capsys, ["train", "tag", "--data", str(ner), "--format", "conll", "--out", str(tmp_path / "r")],
                   f"{ner}:4: expected 'I-LOC' to continue an entity")
    good = write_conllu(tmp_path / "good.conllu", toy_sentences(5, 0))
    unseen = write_conllu(tmp_path / "unseen.conllu", [(["w1"], ["Z"])])
    one_error_line(capsys, ["train", "tag", "--data", str(good), "--valid", str(unseen), "--out", str(tmp_path / "r")],
                   f"{unseen}:2: expected one of the 3 tags seen in training", "found 'Z'")
    one_error_line(capsys, ["train", "tag", "--out", str(tmp_path / "r")], "--data is required")
    one_error_line(capsys, ["predict", str(tmp_path / "nowhere"), "--input", str(good)], "not a run directory")


def test_load_run_rejects_other_tasks(tmp_path):
    (tmp_path / "config.json").write_text('{"task": {"name": "lm"}}')
    with pytest.raises(DataError, match="expected a tagging run"):
        tag.load_run(tmp_path)
