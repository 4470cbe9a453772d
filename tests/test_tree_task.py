"""rnnkit.tasks.tree and `rnnkit train tree` / `predict` / `eval`: a synthetic sentiment task with negation scope
that a bag of words cannot solve is learned by the Tree-LSTM; labels, loss and metrics against direct
computations; one-line errors with exit code 2."""
import random
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from rnnkit.cli import main
from rnnkit.data import Vocab
from rnnkit.data.trees import Tree, parse_tree, read_trees
from rnnkit.tasks import tree as T
from rnnkit.train import TrainConfig

POSITIVE, NEGATIVE, FILLERS = ["good", "great", "fun"], ["bad", "dull", "awful"], ["the", "movie", "really"]
POS, NEG, NEUTRAL = 3, 1, 2


def negation_tree(rng: random.Random) -> Tree:
    """One positive word, one negative word and one "not", whose scope decides the sentence:
    ((not good) bad) is negative, (good (not bad)) positive: both have the same bag of words.
    Phrase labels: a word its polarity; (not X) the opposite of X; a filler keeps its sibling's label;
    two phrases of the same polarity (the only case generated) that polarity."""
    def leaf(word, label):
        return Tree(label, word=word)

    def with_filler(node):
        if rng.random() < 0.4:
            f = leaf(rng.choice(FILLERS), NEUTRAL)
            return Tree(node.label, [f, node] if rng.random() < 0.5 else [node, f])
        return node

    good, bad = leaf(rng.choice(POSITIVE), POS), leaf(rng.choice(NEGATIVE), NEG)
    negate_good = rng.random() < 0.5
    target, other = (good, bad) if negate_good else (bad, good)
    negated = with_filler(Tree(NEG if negate_good else POS, [leaf("not", NEUTRAL), target]))
    other = with_filler(other)
    parts = [negated, other] if rng.random() < 0.5 else [other, negated]
    return with_filler(Tree(negated.label, parts))


def write_trees(path, trees):
    path.write_text("".join(f"{t}\n" for t in trees), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def negation_data(tmp_path_factory):
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("negation")
    train = [negation_tree(rng) for _ in range(300)]
    test = [negation_tree(rng) for _ in range(100)]
    return write_trees(folder / "train.txt", train), write_trees(folder / "test.txt", test), train, test


@pytest.fixture(scope="module")
def trained(negation_data, tmp_path_factory):
    train_path, test_path, _, _ = negation_data
    run_dir = tmp_path_factory.mktemp("run")
    data = T.TreeDataConfig(train=str(train_path), valid=str(test_path), batch_size=10)
    model = {"cell": "tree-lstm", "emb": 16, "hidden": 24, "dropout": 0.0}
    history = T.fit(run_dir, data, model, TrainConfig(epochs=12, optimizer="adam", lr=0.02, seed=0,
                                                      device="cpu", progress=False, tensorboard=False))
    return run_dir, history


def test_bag_of_words_cannot_solve_negation_scope(negation_data):
    _, _, train, test = negation_data
    bags = defaultdict(set)
    for t in train + test:
        bags[tuple(sorted(t.leaves()))].add(t.label)
    assert sum(len(labels) == 2 for labels in bags.values()) >= 0.5 * len(bags)  # same bag, both labels
    vocab = sorted({w for t in train for w in t.leaves()})

    def counts(trees):
        return [[t.leaves().count(w) for w in vocab] for t in trees]
    clf = LogisticRegression(max_iter=1000).fit(counts(train), [t.label for t in train])
    accuracy = clf.score(counts(test), [t.label for t in test])
    assert accuracy < 0.7  # chance is 0.5; an order-free model cannot see the scope


def test_tree_lstm_learns_negation_scope(trained):
    _, history = trained
    best = max(h["valid"]["root_acc"] for h in history)
    assert best == 1.0
    assert history[-1]["valid"]["node_acc"] >= 0.99


def test_predict_round_trip_every_node(trained, negation_data):
    run_dir, _ = trained
    _, _, _, test = negation_data
    run = T.load_run(run_dir)
    unlabelled = [t.relabel([0] * len(t)) for t in test]  # predict ignores the given labels
    predicted = T.predict_trees(run, unlabelled, batch_size=7)
    assert [str(p) for p in predicted] == [str(t) for t in test]


def test_cli_predict_and_eval(trained, negation_data, tmp_path, capsys):
    run_dir, _ = trained
    _, test_path, _, test = negation_data
    assert main(["predict", str(run_dir), "--input", str(test_path)]) == 0
    assert capsys.readouterr().out.split() == [str(t.label) for t in test]
    assert main(["predict", str(run_dir), "--input", str(test_path), "--nodes"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(t) for t in test]
    assert main(["eval", str(run_dir), "--data", str(test_path)]) == 0
    out = capsys.readouterr().out
    assert "root_acc 1.0000" in out and "node_acc 1.0000" in out


def test_bag_of_words_model_fails_where_tree_succeeds(negation_data, tmp_path):
    """The same task and Trainer with an order-free encoder (mean of the word embeddings) stays near chance."""
    train_path, test_path, train, test = negation_data
    vocab = Vocab.build([w for t in train for w in t.leaves()])
    embed = torch.nn.EmbeddingBag(len(vocab), 16, mode="mean")
    head = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 5))
    opt = torch.optim.Adam([*embed.parameters(), *head.parameters()], lr=0.02)
    torch.manual_seed(0)

    def logits(trees):
        ids = [torch.tensor(vocab.encode(t.leaves())) for t in trees]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        return head(embed(torch.cat(ids), offsets))
    labels = torch.tensor([t.label for t in train])
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(logits(train), labels).backward()
        opt.step()
    accuracy = (logits(test).argmax(1) == torch.tensor([t.label for t in test])).float().mean().item()
    assert accuracy < 0.7


def test_loss_and_metrics_against_direct_computation():
    trees = [parse_tree("(3 (2 It) (4 (2 's) (4 great)))"), parse_tree("(1 (0 bad) (2 .))"),
             parse_tree("(2 (3 fine) (1 dull))")]
    vocab = Vocab.build([w for t in trees for w in t.leaves()])
    torch.manual_seed(0)
    for classes in (5, 2):
        for supervision in ("nodes", "root"):
            model = T.TreeModel(T.TreeModelConfig(len(vocab), cell="recursive", emb=6, hidden=5, classes=classes,
                                                  dropout=0.0, supervision=supervision))
            batch = T.collate(T.to_examples(trees, vocab, classes, False), model.arity)
            out = model(batch)
            logits_by_node = model.node_logits(batch, node_by_node=True)
            # direct: walk each tree in post-order, take its label, map it, look up its row
            nll, count, correct, nodes, root_correct, roots = 0.0, 0, 0, 0, 0, 0
            for b, t in enumerate(trees):
                for j, (node, pos) in enumerate(zip(t, batch.structure.post_order[b])):
                    y = node.label if classes == 5 else {0: 0, 1: 0, 3: 1, 4: 1}.get(node.label)
                    if y is None:
                        continue
                    is_root = j == len(t) - 1
                    row = logits_by_node[pos]
                    hit = int(row.argmax()) == y
                    nodes, correct = nodes + 1, correct + hit
                    roots, root_correct = roots + is_root, root_correct + (hit and is_root)
                    if supervision == "nodes" or is_root:
                        nll, count = nll - float(torch.log_softmax(row.detach(), 0)[y]), count + 1
            assert float(out.stats["nll"]) == pytest.approx(nll, rel=1e-5)
            assert float(out.loss.detach()) == pytest.approx(nll / count, rel=1e-5)
            assert (int(out.stats["supervised"]), int(out.stats["nodes"]), int(out.stats["roots"])) == (count, nodes,
                                                                                                         roots)
            assert (int(out.stats["node_correct"]), int(out.stats["root_correct"])) == (correct, root_correct)
    metrics = T.TreeTask(vocab).summarize({"nll": 6.0, "supervised": 3, "node_correct": 4, "nodes": 8,
                                           "root_correct": 1, "roots": 4})
    assert metrics == {"loss": 2.0, "root_acc": 0.25, "node_acc": 0.5}


def test_binary_drops_neutral_roots(tmp_path):
    path = write_trees(tmp_path / "t.txt", [parse_tree(s) for s in
                                            ["(3 (2 a) (4 b))", "(2 (3 a) (1 b))", "(0 (2 a) (1 b))"]])
    data = T.TreeDataConfig(train=str(path), classes=2)
    assert [t.label for t in data.read(path)] == [3, 0]
    assert T.map_labels(parse_tree("(3 (2 a) (4 b))"), 2) == [T.IGNORE, 1, 1]
    only_neutral = write_trees(tmp_path / "n.txt", [parse_tree("(2 (2 a) (2 b))")])
    with pytest.raises(Exception, match="non-neutral root"):
        data.read(only_neutral)


def test_same_seed_same_run(negation_data, tmp_path):
    train_path, test_path, _, _ = negation_data
    data = T.TreeDataConfig(train=str(train_path), valid=str(test_path), batch_size=50)
    histories = []
    for name in ("a", "b"):
        config = TrainConfig(epochs=1, optimizer="adam", seed=3, device="cpu", progress=False, tensorboard=False)
        histories.append(T.fit(tmp_path / name, data, {"cell": "child-sum", "emb": 8, "hidden": 8}, config))
    assert histories[0][0]["train"]["loss"] == histories[1][0]["train"]["loss"]
    assert histories[0][0]["valid"] == histories[1][0]["valid"]


def test_cli_train_then_bad_input_is_one_line(negation_data, tmp_path, capsys):
    train_path, test_path, _, _ = negation_data
    out = tmp_path / "run"
    assert main(["train", "tree", "--data", str(train_path), "--valid", str(test_path), "--cell", "recursive",
                 "--classes", "2", "--epochs", "1", "--emb", "8", "--hidden", "8", "--out", str(out)]) == 0
    assert read_trees(train_path)  # unchanged input
    bad = tmp_path / "bad.txt"
    bad.write_text("(3 (2 a) (1 b))\n(3 (2 a) (1 b)\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["train", "tree", "--data", str(bad), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert err == (f"rnnkit: error: {bad}:2:15: expected '(' or ')' closing the node opened at column 1, "
                   "found end of line\n")
    assert main(["predict", str(out), "--input", str(bad)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["train", "tree", "--data", str(train_path), "--cell", "lstm"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    bad_label = tmp_path / "label.txt"
    bad_label.write_text("(7 (2 a) (1 b))\n", encoding="utf-8")
    assert main(["train", "tree", "--data", str(bad_label), "--out", str(tmp_path / "r3")]) == 2
    assert capsys.readouterr().err == (f"rnnkit: error: {bad_label}:1:2: expected an integer label in 0..4, "
                                       "found '7'\n")


def test_resume_continues_like_one_run(negation_data, tmp_path):
    """2 epochs in one go == 1 epoch, then `resume` with epochs raised to 2 (exact resume through the Trainer)."""
    import json

    train_path, test_path, _, _ = negation_data
    data = T.TreeDataConfig(train=str(train_path), valid=str(test_path), batch_size=50)
    model = {"cell": "tree-lstm", "emb": 8, "hidden": 8, "dropout": 0.3}

    def config(epochs):
        return TrainConfig(epochs=epochs, optimizer="adam", seed=1, device="cpu", progress=False, tensorboard=False)
    whole = T.fit(tmp_path / "whole", data, model, config(2))
    T.fit(tmp_path / "part", data, model, config(1))
    path = tmp_path / "part" / "config.json"
    saved = json.loads(path.read_text())
    saved["train"]["epochs"] = 2
    path.write_text(json.dumps(saved))
    resumed = T.resume(tmp_path / "part")
    assert resumed[-1]["train"]["loss"] == pytest.approx(whole[-1]["train"]["loss"], rel=1e-6)
    assert resumed[-1]["valid"] == pytest.approx(whole[-1]["valid"], rel=1e-6)
