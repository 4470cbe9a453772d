"""Sequence classification: one label per text (sentiment, topic, ...).

Model (`RNNClassifier`), for a text x_1 .. x_T of length T:

    e_t = dropout(E x_t)                               embedding, (B, T, D); optionally pretrained vectors
    h_t = Recurrent(cell)(e_1 .. e_T)                  L stacked layers, D = 2 directions if bidirectional,
                                                       (B, T, D·H); run with lengths= so padding never enters
    s   = pool(h_1 .. h_T)                             (B, D·H), over the T real steps only:
          "last"       [h→_T ; h←_1]: each direction's final state at the sequence's own length
          "mean"       (1/T) Σ_t h_t
          "max"        max_t h_t (per feature)
          "attention"  Σ_t α_t h_t,  α = softmax_t(vᵀ tanh(W h_t + b))   (additive self-attention pooling,
                       Yang et al. 2016; the softmax runs over the real steps only)
    p(y | x) = softmax(V dropout(s) + c)               (B, K)

Loss: cross-entropy averaged over the B examples of a batch, loss = -(1/B) Σ_b log p(y_b | x_b) (so the
usual clip of 5 is loose). Summable stats: the summed NLL, the number of examples and tokens, and the
confusion-matrix counts cm_i_j; `ClassifyTask.summarize` turns them into loss, accuracy, macro-F1,
per-class precision/recall/F1 and the confusion matrix (rnnkit.metrics). The Trainer keeps the checkpoint
with the best validation accuracy.

Data (`ClassifyDataConfig`): TSV/CSV (rnnkit.data.tabular; text and label columns by index or name) or the
SST tree format (rnnkit.data.trees; the root label, fine-grained "0".."4" or binary negative (0, 1) /
positive (3, 4) with neutral sentences dropped; `phrases=True` adds every labelled subtree of the training
trees as an extra training example). Texts are split on whitespace. Batches: `PaddedBatches` (bucketing).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.data import PAD, UNK, DataError, PaddedBatches, Vocab, pad
from rnnkit.data.tabular import parse_column, read_table
from rnnkit.data.text import read_text
from rnnkit.metrics import classification_metrics
from rnnkit.nn.attention import context, masked_softmax
from rnnkit.tasks.runs import LoadedRun, load_run_weights, read_run_config, write_run_files
from rnnkit.train import TrainConfig, Trainer, seed_everything
from rnnkit.train.checkpoint import absolute_paths

POOLINGS = ("last", "mean", "max", "attention")
FORMATS = ("auto", "tsv", "csv", "sst")
SST_LABELS = {"fine": ["0", "1", "2", "3", "4"], "binary": ["negative", "positive"]}
_SST_BINARY = {0: "negative", 1: "negative", 3: "positive", 4: "positive"}


# ---- model ----------------------------------------------------------------------------------------------


@dataclass
class ClassifyBatch:
    tokens: torch.Tensor  # (B, T) token indices, PAD (0) after each length
    lengths: torch.Tensor  # (B,)
    labels: torch.Tensor  # (B,) class indices


@dataclass
class ClassifyOutput:
    loss: torch.Tensor  # scalar: mean cross-entropy over the batch
    logits: torch.Tensor  # (B, K)
    state: Any  # always None: examples are independent
    stats: dict  # nll, examples, tokens, cm_i_j


@dataclass
class ClassifierConfig:
    """Configuration of `RNNClassifier`, saved as JSON in the run directory."""

    vocab_size: int
    num_classes: int
    cell: str = "lstm"
    layers: int = 1
    hidden: int = 128
    emb: int = 128
    bidirectional: bool = True
    pooling: str = "last"
    attention_size: int = 64  # A: hidden size of the attention pooling's score
    dropout: float = 0.0  # on the embeddings, between layers and before the output layer
    freeze_embedding: bool = False  # keep (pretrained) embeddings fixed

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        for name in ("vocab_size", "layers", "hidden", "emb", "attention_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {self.num_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class AttentionPooling(nn.Module):
    """s = Σ_t α_t h_t with α = softmax over the real steps of z_t = vᵀ tanh(W h_t + b)."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(width, hidden)
        self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.v(torch.tanh(self.proj(h))).squeeze(-1)  # (B, T)
        alpha = masked_softmax(z, mask)  # (B, T), exactly 0 on padding
        return context(alpha, h), alpha  # (B, D·H), (B, T)


class RNNClassifier(nn.Module):
    """Embedding -> (bi)directional stacked recurrent layer -> pooling -> dropout -> linear -> softmax."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        from rnnkit import Recurrent

        c = self.config = config
        self.embedding = nn.Embedding(c.vocab_size, c.emb, padding_idx=0)
        self.embedding.weight.requires_grad_(not c.freeze_embedding)
        self.drop = nn.Dropout(c.dropout)
        self.rnn = Recurrent(c.cell, c.emb, c.hidden, num_layers=c.layers, batch_first=True,
                             dropout=c.dropout if c.layers > 1 else 0.0, bidirectional=c.bidirectional)
        width = c.hidden * (2 if c.bidirectional else 1)
        self.attention = AttentionPooling(width, c.attention_size) if c.pooling == "attention" else None
        self.head = nn.Linear(width, c.num_classes)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The pooled text representation s (B, D·H)."""
        B, T = tokens.shape
        h, state = self.rnn(self.drop(self.embedding(tokens)), lengths=lengths.cpu())  # (B, T, D·H)
        mask = torch.arange(T, device=tokens.device).unsqueeze(0) < lengths.to(tokens.device).unsqueeze(1)
        pooling = self.config.pooling
        if pooling == "last":  # h_n rows of the last layer: forward (at length-1) and backward (at 0)
            h_n = state[0] if isinstance(state, tuple) else state  # (L·D, B, H)
            D = 2 if self.config.bidirectional else 1
            return h_n[-D:].transpose(0, 1).reshape(B, D * self.config.hidden)
        if pooling == "mean":
            return (h * mask.unsqueeze(2)).sum(1) / lengths.to(h.device, h.dtype).unsqueeze(1)
        if pooling == "max":
            return h.masked_fill(~mask.unsqueeze(2), float("-inf")).amax(1)
        return self.attention(h, mask)[0]

    def logits(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.encode(tokens, lengths)))  # (B, K)

    def forward(self, batch: ClassifyBatch, state=None) -> ClassifyOutput:
        logits = self.logits(batch.tokens, batch.lengths)
        nll = F.cross_entropy(logits.float(), batch.labels, reduction="sum")
        K = self.config.num_classes
        cm = torch.bincount(batch.labels * K + logits.argmax(1), minlength=K * K)  # (K·K,) counts
        stats = {"nll": nll.detach(), "examples": len(batch.labels), "tokens": batch.lengths.sum()}
        stats.update({f"cm_{i}_{j}": cm[i * K + j] for i in range(K) for j in range(K)})
        return ClassifyOutput(loss=nll / len(batch.labels), logits=logits, state=None, stats=stats)


# ---- the task: labels, metrics -----------------------------------------------------------------------------


class ClassifyTask:
    """What the Trainer needs to know about classification: summed stats -> metrics; monitor accuracy."""

    name = "classify"
    monitor = "accuracy"
    monitor_mode = "max"

    def __init__(self, vocab: Vocab, labels: list[str], lower: bool = False):
        if len(labels) < 2:
            raise ValueError(f"a classifier needs at least 2 labels, got {labels}")
        self.vocab, self.labels, self.lower = vocab, list(labels), lower
        self.label_index = {label: k for k, label in enumerate(self.labels)}

    def confusion(self, totals: dict) -> np.ndarray:
        K = len(self.labels)
        return np.array([[totals.get(f"cm_{i}_{j}", 0.0) for j in range(K)] for i in range(K)]).round()

    def summarize(self, totals: dict) -> dict:
        loss = float(totals["nll"]) / max(float(totals["examples"]), 1.0)
        return {"loss": loss, **classification_metrics(self.confusion(totals), self.labels)}

    def to_dict(self) -> dict:
        return {"name": self.name, "labels": self.labels, "lower": self.lower}

    def encode(self, tokens: list[str]) -> list[int]:
        return self.vocab.encode([t.lower() for t in tokens] if self.lower else tokens)

    def label_id(self, label: str, where: str) -> int:
        if label not in self.label_index:
            raise DataError(f"{where}: expected one of the labels seen in training ({', '.join(self.labels)}), "
                            f"found {label!r}")
        return self.label_index[label]


def collate(examples: list[tuple[list[int], int]]) -> ClassifyBatch:
    tokens, lengths = pad([ids for ids, _ in examples], value=0)
    return ClassifyBatch(tokens, lengths, torch.tensor([y for _, y in examples], dtype=torch.long))


# ---- data -----------------------------------------------------------------------------------------------


@dataclass
class Example:
    tokens: list[str]
    label: str | None
    where: str  # "file:line", for error messages


@dataclass
class ClassifyDataConfig:
    """Where the labelled texts come from and how they are batched (saved as config.json["data"])."""

    train: str
    valid: str | None = None  # None: a seeded random `valid_fraction` of train
    format: str = "auto"  # "tsv", "csv", "sst"; auto: from the file name, or "sst" if lines start with "("
    text_column: int | str = 0
    label_column: int | str = 1
    header: bool | None = None  # None: yes if a column is given by name
    quoting: bool = True
    sst_labels: str = "fine"  # "fine" (5 classes) or "binary" (neutral dropped)
    phrases: bool = False  # SST: also train on every labelled subtree (phrase) of the training trees
    lower: bool = False
    min_freq: int = 1
    valid_fraction: float = 0.1
    batch_size: int = 32
    eval_batch_size: int = 128
    split_seed: int = 0

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.sst_labels not in SST_LABELS:
            raise ValueError(f"sst_labels must be 'fine' or 'binary', got {self.sst_labels!r}")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        for name in ("batch_size", "eval_batch_size", "min_freq"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        self.text_column = parse_column(str(self.text_column))
        self.label_column = parse_column(str(self.label_column))

    def format_of(self, path) -> str:
        return detect_format(path) if self.format == "auto" else self.format

    def read(self, path, labelled: bool = True, phrases: bool = False) -> list[Example]:
        """Examples of `path` in this config's format (texts only if not `labelled`; tsv/csv only)."""
        fmt = self.format_of(path)
        if fmt == "sst":
            return read_sst(path, self.sst_labels, phrases)
        rows = read_table(path, self.text_column, self.label_column if labelled else None, self.header,
                          "\t" if fmt == "tsv" else ",", self.quoting)
        return [Example(r.text.split(), r.label, f"{path}:{r.line}") for r in rows]


def detect_format(path) -> str:
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith((".tsv", ".tab")):
        return "tsv"
    if name.endswith(".csv"):
        return "csv"
    if read_text(path).lstrip().startswith("("):
        return "sst"
    raise DataError(f"{path}: expected a .tsv/.csv file or SST trees (lines starting with '('); "
                    "name the format with --format")


def read_sst(path, labels: str = "fine", phrases: bool = False) -> list[Example]:
    """Root-labelled sentences (and, with `phrases`, every distinct labelled subtree) of an SST file."""
    from rnnkit.data.trees import read_trees

    out, seen = [], set()
    for n, tree in enumerate(read_trees(path, num_classes=5), start=1):
        for node in (tree if phrases else [tree]):
            leaves = node.leaves()
            label = str(node.label) if labels == "fine" else _SST_BINARY.get(node.label)
            if label is None or (phrases and tuple(leaves) in seen):
                continue
            seen.add(tuple(leaves))
            out.append(Example(leaves, label, f"{path}:{n}"))
    if not out:
        raise DataError(f"{path}: expected {labels} SST trees, found no usable tree")
    return out


def label_order(labels) -> list[str]:
    """Sorted labels: numerically when every label is an integer."""
    labels = set(labels)
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


@dataclass
class ClassifyCorpus:
    task: ClassifyTask
    train: list[tuple[list[int], int]]  # (token ids, label id)
    valid: list[tuple[list[int], int]]
    valid_source: str


def load_corpus(data: ClassifyDataConfig, task: ClassifyTask | None = None) -> ClassifyCorpus:
    """Read train (and valid) examples, build the vocabulary and the label set from train (unless `task` is
    given, as when resuming), and encode. The vocabulary counts sentences, not the extra SST phrases."""
    sentences = data.read(data.train)
    rng = np.random.default_rng(data.split_seed)
    if data.valid is None:
        order = rng.permutation(len(sentences))
        n_valid = max(1, int(len(sentences) * data.valid_fraction))
        valid = [sentences[i] for i in order[:n_valid]]
        sentences = [sentences[i] for i in sorted(order[n_valid:])]
        source = f"{data.valid_fraction:.0%} of {data.train} (seed {data.split_seed})"
    else:
        valid, source = data.read(data.valid), str(data.valid)
    train = sentences
    if data.phrases and data.format_of(data.train) == "sst":
        if data.valid is not None:
            train = read_sst(data.train, data.sst_labels, phrases=True)
        else:  # phrases of the training part only
            held = {tuple(e.tokens) for e in valid}
            train = [e for e in read_sst(data.train, data.sst_labels, phrases=True) if tuple(e.tokens) not in held]
    if task is None:
        fmt = data.format_of(data.train)
        labels = SST_LABELS[data.sst_labels] if fmt == "sst" else label_order(e.label for e in train)
        lowered = (t.lower() if data.lower else t for e in sentences for t in e.tokens)
        task = ClassifyTask(Vocab.build(lowered, data.min_freq, specials=(PAD, UNK)), labels, data.lower)
    encode = lambda examples: [(task.encode(e.tokens), task.label_id(e.label, e.where)) for e in examples]  # noqa
    return ClassifyCorpus(task, encode(train), encode(valid), source)


def make_batches(corpus: ClassifyCorpus, data: ClassifyDataConfig, seed: int = 0):
    length = lambda example: len(example[0])  # noqa: E731
    return (PaddedBatches(corpus.train, collate, data.batch_size, shuffle=True, seed=seed, length=length),
            PaddedBatches(corpus.valid, collate, data.eval_batch_size, shuffle=False, length=length))


# ---- run directories, fit, resume ---------------------------------------------------------------------


def save_run_files(run_dir, task: ClassifyTask, model_config: ClassifierConfig, data: dict) -> None:
    write_run_files(run_dir, {"vocab.json": task.vocab}, task=task.to_dict(), model=asdict(model_config), data=data)


def build_model(config: ClassifierConfig, vectors=None) -> RNNClassifier:
    """The model; `vectors` (rnnkit.data.vectors.Vectors for the task's vocabulary) initialise the embedding
    rows of the words they cover (PAD keeps its zero row)."""
    model = RNNClassifier(config)
    if vectors is not None:
        if vectors.dim != config.emb:
            raise ValueError(f"the word vectors have {vectors.dim} dimensions but emb is {config.emb}")
        with torch.no_grad():
            found = vectors.found.clone()
            found[0] = False
            model.embedding.weight[found] = vectors.weights[found]
    return model


def fit(run_dir, data: ClassifyDataConfig, model_config: ClassifierConfig, train: TrainConfig,
        corpus: ClassifyCorpus | None = None, vectors=None) -> list[dict]:
    """Train a classifier from scratch into RUN_DIR with the shared Trainer; returns its history."""
    corpus = corpus or load_corpus(data)
    task = corpus.task
    if (model_config.vocab_size, model_config.num_classes) != (len(task.vocab), len(task.labels)):
        raise ValueError(f"model sizes (vocab {model_config.vocab_size}, classes {model_config.num_classes}) "
                         f"!= data (vocab {len(task.vocab)}, classes {len(task.labels)})")
    seed_everything(train.seed)  # before building: the same seed gives the same initial weights
    model = build_model(model_config, vectors)
    saved = absolute_paths(asdict(data))  # --resume works from any directory
    save_run_files(run_dir, task, model_config, saved)
    train_batches, valid_batches = make_batches(corpus, data, train.seed)
    with Trainer(model, task, train_batches, valid_batches, train, run_dir) as trainer:
        return trainer.fit()


def _task_from(config: dict, run_dir: Path) -> ClassifyTask:
    t = config["task"]
    return ClassifyTask(Vocab.load(run_dir / "vocab.json"), t["labels"], t.get("lower", False))


def resume(run_dir) -> list[dict]:
    """Continue the run saved in RUN_DIR exactly where its last checkpoint stopped."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, "classify", "a classification run")
    data = ClassifyDataConfig(**config["data"])
    train = TrainConfig.from_dict(config["train"])
    corpus = load_corpus(data, _task_from(config, run_dir))
    model = RNNClassifier(_model_config(config["model"]))
    train_batches, valid_batches = make_batches(corpus, data, train.seed)
    with Trainer(model, corpus.task, train_batches, valid_batches, train, run_dir) as trainer:
        return trainer.fit(resume=True)


def _model_config(d: dict) -> ClassifierConfig:
    names = {f.name for f in fields(ClassifierConfig)}
    return ClassifierConfig(**{k: v for k, v in d.items() if k in names})


# ---- trained runs: load, predict, evaluate ------------------------------------------------------------


@dataclass
class LoadedClassifier(LoadedRun):
    """model (RNNClassifier), task (ClassifyTask), config; `data`: the run's ClassifyDataConfig."""

    @property
    def data(self) -> ClassifyDataConfig:
        return ClassifyDataConfig(**self.config["data"])


def load_run(run_dir, weights: str = "best", device: str = "cpu") -> LoadedClassifier:
    """Rebuild a trained classifier from RUN_DIR: config.json, vocab.json and best (or last) weights."""
    config = read_run_config(run_dir, "classify", "a classification run")
    model = RNNClassifier(_model_config(config["model"]))
    return LoadedClassifier(load_run_weights(run_dir, model, weights, device), _task_from(config, Path(run_dir)),
                            config)


def predict_proba(run: LoadedClassifier, texts: list[list[str]], batch_size: int = 128) -> torch.Tensor:
    """p(y | x) (N, K) for tokenised texts, in the input order (batched by length internally)."""
    if any(len(t) == 0 for t in texts):
        raise ValueError("every text needs at least one token")
    examples = [(run.task.encode(t), 0) for t in texts]
    batches = PaddedBatches(examples, collate, batch_size, shuffle=False, length=lambda e: len(e[0]))
    device = next(run.model.parameters()).device
    probs = torch.empty(len(texts), len(run.task.labels))
    run.model.eval()
    with torch.no_grad():
        for i, index in enumerate(batches.batch_indices(0)):
            b = batches.get(i)
            logits = run.model.logits(b.tokens.to(device), b.lengths.to(device))
            probs[torch.as_tensor(index)] = torch.softmax(logits.float(), dim=-1).cpu()
    return probs


def read_input(run: LoadedClassifier, path, input_format: str = "text") -> list[Example]:
    """Prediction input: "text" (one text per line, blank lines skipped), or the run's own training
    format ("tsv"/"csv" with its columns and a label column if present, or "sst"; labels are checked)."""
    if input_format == "text":
        lines = read_text(path).split("\n")
        return [Example(line.split(), None, f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()]
    data = run.data
    data.format = input_format
    examples = data.read(path)
    for e in examples:
        run.task.label_id(e.label, e.where)  # unknown label -> file:line error
    return examples


def evaluate_file(run: LoadedClassifier, path, input_format: str = "auto", batch_size: int = 128) -> dict:
    """Loss, accuracy, macro-F1, per-class P/R/F1 and confusion counts of a trained run on a labelled file."""
    from rnnkit.train import evaluate

    data = run.data
    data.format = input_format
    examples = [(run.task.encode(e.tokens), run.task.label_id(e.label, e.where)) for e in data.read(path)]
    batches = PaddedBatches(examples, collate, batch_size, shuffle=False, length=lambda e: len(e[0]))
    return evaluate(run.model, run.task, batches)
