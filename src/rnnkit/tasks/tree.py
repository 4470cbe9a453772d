"""Sentiment over parse trees (Stanford Sentiment Treebank): a label for every node of a constituency tree.

Model (Socher et al. 2013; Tai et al. 2015):

    x_j   = E w_j                              leaf j's word embedding, (L, D)
    h_j   = TreeEncoder(cell)(x, tree)          every node's state, leaves first, (N, H)
    y_j   = softmax(V dropout(h_j) + b)         a distribution over the C classes at every node, (N, C)

cell: "tree-lstm" (binary Tree-LSTM), "child-sum" (Child-Sum Tree-LSTM) or "recursive" (Socher's
h = tanh(W [h_l; h_r] + b)); see `rnnkit.nn.tree`.

Labels: fine-grained, C = 5 (SST's 0 very negative .. 4 very positive), or binary, C = 2 (0, 1 -> 0 negative;
3, 4 -> 1 positive): trees whose root is neutral (2) are dropped, and neutral nodes are left out of the loss
and of the metrics. Supervision "nodes" (phrase-level labels at every node, as in SST) or "root" only.

Loss: the mean over the supervised nodes of the batch of -log y_j[label_j]. Metrics (`TreeTask.summarize`):
loss, root_acc (the sentence-level accuracy that papers report), node_acc (all labelled nodes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import opt
from rnnkit.data import UNK, DataError, PaddedBatches, Vocab, read_text
from rnnkit.data.trees import Tree, iter_trees, read_trees
from rnnkit.nn.tree import TREE_CELLS, TreeEncoder, TreeStructure, children_lists
from rnnkit.tasks import driver
from rnnkit.tasks.driver import model_from, sized_config
from rnnkit.tasks.runs import LoadedRun, load_vocab, task_field
from rnnkit.train import TrainConfig

IGNORE = -100  # label of nodes left out of loss and metrics (neutral nodes in binary mode)
BINARY = {0: 0, 1: 0, 2: IGNORE, 3: 1, 4: 1}


@dataclass
class TreeModelConfig:
    """Configuration of `TreeModel`, saved as config.json["model"]."""

    vocab_size: int = field(metadata=opt(cli=False))
    cell: str = field(default="tree-lstm", metadata=opt("tree cell", choices=lambda: tuple(TREE_CELLS)))
    emb: int = field(default=300, metadata=opt("word embedding size"))
    hidden: int = field(default=150, metadata=opt("hidden units"))
    classes: int = field(default=5, metadata=opt(cli=False))  # from the data
    dropout: float = field(default=0.5, metadata=opt("on the embeddings and before the softmax"))
    supervision: str = field(default="nodes", metadata=opt(
        "loss at every labelled node (phrase level) or at the root only", choices=("nodes", "root")))

    def __post_init__(self):
        if self.cell not in TREE_CELLS:
            raise ValueError(f"cell must be one of {', '.join(TREE_CELLS)}, got {self.cell!r}")
        if self.classes not in (2, 5):
            raise ValueError(f"classes must be 5 (fine-grained) or 2 (binary), got {self.classes}")
        if self.supervision not in ("nodes", "root"):
            raise ValueError(f"supervision must be 'nodes' or 'root', got {self.supervision!r}")
        for name in ("vocab_size", "emb", "hidden"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class TreeBatch:
    """A batch of trees: leaf word ids (L,), the level-batched index tensors, node labels (N,) in structure order."""

    __slots__ = ("words", "structure", "labels")

    def __init__(self, words: torch.Tensor, structure: TreeStructure, labels: torch.Tensor):
        self.words, self.structure, self.labels = words, structure, labels

    def to(self, device) -> TreeBatch:
        return TreeBatch(self.words.to(device), self.structure.to(device), self.labels.to(device))


@dataclass
class TreeOutput:
    loss: torch.Tensor  # scalar: mean NLL over the supervised nodes
    logits: torch.Tensor  # (N, C), structure order
    state: None
    stats: dict  # summable: nll, supervised, node_correct, nodes, root_correct, roots


class TreeModel(nn.Module):
    """Embedding -> tree encoder (any tree cell) -> dropout -> linear softmax at every node."""

    def __init__(self, config: TreeModelConfig):
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.emb)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = TreeEncoder(c.cell, c.emb, c.hidden)
        self.head = nn.Linear(c.hidden, c.classes)

    @property
    def arity(self) -> int | None:
        return self.encoder.arity

    def node_logits(self, batch: TreeBatch, node_by_node: bool = False) -> torch.Tensor:
        """(N, C) class scores of every node, in `batch.structure` order."""
        h, _ = self.encoder(self.drop(self.embedding(batch.words)), batch.structure, node_by_node=node_by_node)
        return self.head(self.drop(h))

    def forward(self, batch: TreeBatch) -> TreeOutput:
        logits = self.node_logits(batch)
        labels, roots = batch.labels, batch.structure.roots
        supervised = labels if self.config.supervision == "nodes" else _only(labels, roots)
        nll = F.cross_entropy(logits.float(), supervised, ignore_index=IGNORE, reduction="sum")
        count = (supervised != IGNORE).sum()
        with torch.no_grad():
            correct = (logits.argmax(1) == labels) & (labels != IGNORE)
            stats = {"nll": nll.detach(), "supervised": count, "node_correct": correct.sum(),
                     "nodes": (labels != IGNORE).sum(), "root_correct": correct[roots].sum(),
                     "roots": (labels[roots] != IGNORE).sum()}
        return TreeOutput(nll / count.clamp(min=1), logits, None, stats)


def _only(labels: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    kept = torch.full_like(labels, IGNORE)
    kept[rows] = labels[rows]
    return kept


class TreeTask:
    """What the Trainer needs to know: summed stats -> loss, root accuracy, all-node accuracy."""

    name = "tree"
    monitor = "root_acc"
    monitor_mode = "max"

    def __init__(self, vocab: Vocab, classes: int = 5, lower: bool = False):
        self.vocab, self.classes, self.lower = vocab, classes, lower
        self.arity: int | None = None  # the model's, once it is loaded

    def summarize(self, totals: dict) -> dict:
        return {"loss": float(totals["nll"]) / max(float(totals["supervised"]), 1.0),
                "root_acc": float(totals["root_correct"]) / max(float(totals["roots"]), 1.0),
                "node_acc": float(totals["node_correct"]) / max(float(totals["nodes"]), 1.0)}

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": self.classes, "lower": self.lower}


# ---- data: trees -> examples -> batches --------------------------------------------------------------


@dataclass
class TreeExample:
    kids: list  # child lists in post-order (`children_lists`)
    words: list  # leaf word ids, left to right
    labels: list  # node labels in post-order (IGNORE for left-out nodes)


def map_labels(tree: Tree, classes: int) -> list[int]:
    """The tree's node labels in post-order, mapped to `classes` (binary: neutral -> IGNORE)."""
    labels = [node.label for node in tree]
    return labels if classes == 5 else [BINARY[x] for x in labels]


def keep_tree(tree: Tree, classes: int) -> bool:
    """Binary sentiment drops the sentences whose root is neutral (the usual SST-2 split)."""
    return classes == 5 or tree.label != 2


def to_examples(trees: list[Tree], vocab: Vocab, classes: int, lower: bool) -> list[TreeExample]:
    norm = str.lower if lower else (lambda w: w)
    return [TreeExample(children_lists(t), vocab.encode(norm(w) for w in t.leaves()), map_labels(t, classes))
            for t in trees]


def collate(examples: list[TreeExample], arity: int | None) -> TreeBatch:
    """Build the level-batched index tensors once per batch; labels follow the structure's node order."""
    structure = TreeStructure.build([e.kids for e in examples], arity)
    words = torch.tensor([w for e in examples for w in e.words], dtype=torch.long)  # leaves come first
    labels = np.empty(structure.num_nodes, dtype=np.int64)
    labels[np.concatenate([np.asarray(p) for p in structure.post_order])] = [x for e in examples for x in e.labels]
    return TreeBatch(words, structure, torch.from_numpy(labels))


class _Collate:
    """A picklable collate bound to the cell's arity."""

    def __init__(self, arity: int | None):
        self.arity = arity

    def __call__(self, examples: list[TreeExample]) -> TreeBatch:
        return collate(examples, self.arity)


def tree_batches(examples: list[TreeExample], arity: int | None, batch_size: int, shuffle: bool,
                 seed: int = 0) -> PaddedBatches:
    """Bucketed by number of nodes (similar sizes -> similar heights -> few half-empty levels)."""
    return PaddedBatches(examples, _Collate(arity), batch_size, shuffle=shuffle, seed=seed,
                         length=lambda e: len(e.kids))


@dataclass
class TreeDataConfig:
    """Where the trees come from and how they are batched (saved as config.json["data"]). Trees: bracketed,
    one per line, e.g. (3 (2 It) (4 (2 's) (4 great))); .gz files are read as well."""

    train: str = field(metadata=opt("training trees (SST train.txt or .txt.gz)", flag="--data"))
    valid: str | None = field(default=None, metadata=opt(
        "validation trees (the best checkpoint is chosen by their root accuracy)"))
    classes: int = field(default=5, metadata=opt(
        "5: fine-grained; 2: binary (neutral roots dropped, neutral nodes ignored)", choices=(5, 2)))
    lower: bool = field(default=False, metadata=opt("lowercase the words"))
    min_freq: int = field(default=1, metadata=opt("rarer training words become <unk>"))
    batch_size: int = field(default=25, metadata=opt("trees per training batch"))
    eval_batch_size: int = field(default=100, metadata=opt("trees per evaluation batch"))

    def __post_init__(self):
        if self.classes not in (2, 5):
            raise ValueError(f"classes must be 5 (fine-grained) or 2 (binary), got {self.classes}")
        for name in ("batch_size", "eval_batch_size", "min_freq"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    def read(self, path) -> list[Tree]:
        trees = [t for t in read_trees(path) if keep_tree(t, self.classes)]
        if not trees:
            raise DataError(f"{path}: expected trees with a non-neutral root for binary labels, found none")
        return trees

    def build_vocab(self, trees: list[Tree]) -> Vocab:
        words = (w.lower() if self.lower else w for t in trees for w in t.leaves())
        return Vocab.build(words, min_freq=self.min_freq, specials=(UNK,))


# ---- the lifecycle: what the tree task tells the driver (rnnkit.tasks.driver) ------------------------------


@dataclass
class TreeCorpus:
    train: list[Tree]
    valid: list[Tree] | None
    task: TreeTask
    arity: int | None = None  # the cell's (set once the model is built or loaded)


class TreeSpec:
    name, description = "tree", "a tree run"
    data_config, model_config, train_config = TreeDataConfig, TreeModelConfig, TrainConfig
    path_fields = ("train", "valid")

    def prepare(self, data: TreeDataConfig, task: TreeTask | None = None) -> TreeCorpus:
        train_trees = data.read(data.train)
        valid_trees = data.read(data.valid) if data.valid else None
        if task is None:
            return TreeCorpus(train_trees, valid_trees, TreeTask(data.build_vocab(train_trees), data.classes,
                                                                 data.lower))
        return TreeCorpus(train_trees, valid_trees, task, task.arity)

    def model_config_for(self, corpus: TreeCorpus, options: dict) -> TreeModelConfig:
        return sized_config(TreeModelConfig, options, vocab_size=len(corpus.task.vocab), classes=corpus.task.classes)

    def build_model(self, config: TreeModelConfig, corpus: TreeCorpus) -> TreeModel:
        model = TreeModel(config)
        corpus.arity = model.arity
        return model

    def batches(self, corpus: TreeCorpus, data: TreeDataConfig, seed: int):
        vocab = corpus.task.vocab
        return _batches(data, vocab, corpus.arity, corpus.train, corpus.valid, seed)

    def run_files(self, corpus: TreeCorpus, config: TreeModelConfig) -> tuple[dict, dict]:
        return {"vocab.json": corpus.task.vocab}, {"task": corpus.task.to_dict()}

    def load(self, run_dir: Path, config: dict) -> tuple[TreeModel, TreeTask]:
        model_config = model_from(self, run_dir, config)
        vocab = load_vocab(run_dir, "vocab.json", model_config.vocab_size, "vocab_size", (UNK,))
        classes = task_field(config, run_dir, "classes", int)
        if classes != model_config.classes:
            raise DataError(f"{run_dir / 'config.json'}: task.classes is {classes} but model.classes is "
                            f"{model_config.classes}")
        model = TreeModel(model_config)
        task = TreeTask(vocab, classes, task_field(config, run_dir, "lower", bool, False))
        task.arity = model.arity
        return model, task


SPEC = TreeSpec()


def _batches(data: TreeDataConfig, vocab: Vocab, arity, train_trees, valid_trees, seed: int):
    train = tree_batches(to_examples(train_trees, vocab, data.classes, data.lower), arity, data.batch_size,
                         True, seed)
    valid = None
    if valid_trees is not None:
        valid = tree_batches(to_examples(valid_trees, vocab, data.classes, data.lower), arity,
                             data.eval_batch_size, False)
    return train, valid


def fit(run_dir, data: TreeDataConfig, model: dict | None = None, train: TrainConfig | None = None,
        overwrite: bool = False, callbacks=()) -> list[dict]:
    """Train a tree model into RUN_DIR with the shared Trainer; returns its history.
    `model`: TreeModelConfig fields other than vocab_size and classes (taken from the data)."""
    return driver.fit(SPEC, run_dir, data, model or {}, train or TrainConfig(), overwrite=overwrite,
                      callbacks=callbacks)


def resume(run_dir, epochs: int | None = None, **train_changes) -> list[dict]:
    """Continue the run saved in RUN_DIR exactly where its last checkpoint stopped."""
    return driver.resume(run_dir, SPEC, epochs, **train_changes)


# ---- trained runs: load, evaluate, predict -------------------------------------------------------------


def load_run(run_dir, weights: str = "best", device: str = "cpu") -> LoadedRun:
    """Rebuild a trained tree model from RUN_DIR (config.json, vocab.json, best or last weights; no pickle)."""
    return driver.load_run(run_dir, weights, device, SPEC)


def evaluate_file(run_dir, path, batch_size: int = 100) -> dict:
    """loss, root_acc, node_acc of a trained run on a file of labelled trees (binary runs drop neutral roots)."""
    from rnnkit.train import evaluate

    run = load_run(run_dir)
    data = TreeDataConfig(train=str(path), classes=run.task.classes, lower=run.task.lower)
    examples = to_examples(data.read(path), run.task.vocab, run.task.classes, run.task.lower)
    return evaluate(run.model, run.task, tree_batches(examples, run.model.arity, batch_size, False), device="cpu")


def read_input_trees(path) -> list[Tree]:
    """Trees to label: one bracketed tree per line; their labels are ignored (any integer >= 0 is accepted)."""
    trees = list(iter_trees(read_text(path), str(path), num_classes=None))
    if not trees:
        raise DataError(f"{path}: expected one bracketed tree per line, found no tree")
    return trees


@torch.no_grad()
def predict_trees(run: LoadedRun, trees: list[Tree], batch_size: int = 100) -> list[Tree]:
    """Each tree relabelled with the predicted class of every node (binary: 0 negative, 1 positive)."""
    model, vocab, lower = run.model.eval(), run.task.vocab, run.task.lower
    out = []
    for start in range(0, len(trees), batch_size):
        chunk = trees[start: start + batch_size]
        examples = [TreeExample(children_lists(t), [], [0] * len(t)) for t in chunk]
        for e, t in zip(examples, chunk):
            e.words = vocab.encode(w.lower() if lower else w for w in t.leaves())
        batch = collate(examples, model.arity)
        pred = model.node_logits(batch).argmax(1).tolist()
        out += [t.relabel([pred[p] for p in pos]) for t, pos in zip(chunk, batch.structure.post_order)]
    return out

