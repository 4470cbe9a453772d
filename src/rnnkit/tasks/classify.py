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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import from_dict, opt
from rnnkit.data import PAD, UNK, DataError, PaddedBatches, Vocab, pad
from rnnkit.data.tabular import parse_column, read_table
from rnnkit.data.text import read_text
from rnnkit.data.tokenizers import KINDS, Tokenizer, make_tokenizer, tokenizer_of
from rnnkit.metrics import classification_metrics
from rnnkit.nn.attention import context, masked_softmax
from rnnkit.tasks import driver
from rnnkit.tasks.driver import cell_names, model_from, sized_config
from rnnkit.tasks.runs import LoadedRun, load_vocab, task_field
from rnnkit.train import TrainConfig

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

    vocab_size: int = field(metadata=opt(cli=False))
    num_classes: int = field(metadata=opt(cli=False))
    cell: str = field(default="lstm", metadata=opt("recurrent cell", choices=cell_names))
    layers: int = field(default=1, metadata=opt("stacked recurrent layers"))
    hidden: int = field(default=128, metadata=opt("units per direction"))
    emb: int | None = field(default=None, metadata=opt("embedding size (none: the vectors' size, else 128)"))
    bidirectional: bool = field(default=True, metadata=opt("read the text in both directions",
                                                           negative="--unidirectional"))
    pooling: str = field(default="last", metadata=opt("how the states become one vector", choices=POOLINGS))
    attention_size: int = field(default=64, metadata=opt("A: hidden size of the attention pooling's score"))
    dropout: float = field(default=0.0, metadata=opt("on the embeddings, between layers, before the output"))
    freeze_embedding: bool = field(default=False, metadata=opt("keep the (pretrained) embeddings fixed",
                                                               flag="--freeze-vectors"))

    def __post_init__(self):
        if self.emb is None:
            self.emb = 128
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

    def __init__(self, vocab: Vocab, labels: list[str], lower: bool = False, tokenizer: Tokenizer | None = None):
        if len(labels) < 2:
            raise ValueError(f"a classifier needs at least 2 labels, got {labels}")
        self.vocab, self.labels, self.lower = vocab, list(labels), lower
        self.tokenizer = tokenizer or Tokenizer("whitespace")
        self.label_index = {label: k for k, label in enumerate(self.labels)}

    def tokenize(self, text: str) -> list[str]:
        """A raw text -> the run's tokens (a subword model sees the lowercased text when `lower`)."""
        return self.tokenizer.encode(text.lower() if self.lower and self.tokenizer.subword else text)

    def tokenizer_files(self) -> dict:
        return {self.tokenizer.file: self.tokenizer} if self.tokenizer.subword else {}

    def confusion(self, totals: dict) -> np.ndarray:
        K = len(self.labels)
        return np.array([[totals.get(f"cm_{i}_{j}", 0.0) for j in range(K)] for i in range(K)]).round()

    def summarize(self, totals: dict) -> dict:
        loss = float(totals["nll"]) / max(float(totals["examples"]), 1.0)
        return {"loss": loss, **classification_metrics(self.confusion(totals), self.labels)}

    def to_dict(self) -> dict:
        return {"name": self.name, "labels": self.labels, "lower": self.lower, "tokenizer": self.tokenizer.to_dict()}

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

    train: str = field(metadata=opt("training file: .tsv/.csv (optionally .gz) or SST trees, one per line",
                                    flag="--data"))
    valid: str | None = field(default=None, metadata=opt(
        "validation file (same format); none: a seeded random --valid-fraction of --data"))
    format: str = field(default="auto", metadata=opt(
        "auto: from the file name (.tsv, .csv), else SST trees if lines start with '('", choices=FORMATS))
    text_column: int | str = field(default=0, metadata=opt("0-based index or header name (tsv/csv)"))
    label_column: int | str = field(default=1, metadata=opt("0-based index or header name (tsv/csv)"))
    header: bool | None = field(default=None, metadata=opt(
        "the first row is a header (none: yes if a column is given by name)"))
    quoting: bool = field(default=True, metadata=opt("double quotes delimit fields (tsv/csv)"))
    sst_labels: str = field(default="fine", metadata=opt(
        "SST: 5 classes, or negative/positive with neutral sentences dropped", choices=tuple(SST_LABELS)))
    phrases: bool = field(default=False, metadata=opt("SST: also train on every labelled phrase (subtree)"))
    lower: bool = field(default=False, metadata=opt("lower-case the tokens"))
    tokenizer: str | None = field(default=None, metadata=opt(
        "none: whitespace words (tsv/csv; SST trees: the texts of their leaves)", choices=KINDS))
    vocab_size: int | None = field(default=None, metadata=opt(
        "subword pieces (none: at most 8000, fewer if the data has fewer)"))
    lang: str = field(default="en", metadata=opt("language code (moses)"))
    min_freq: int = field(default=1, metadata=opt("rarer words become <unk>"))
    valid_fraction: float = field(default=0.1, metadata=opt("held out of --data when there is no --valid"))
    vectors: str | None = field(default=None, metadata=opt(
        "pretrained word vectors, GloVe/word2vec text format (optionally .gz)"))
    batch_size: int = field(default=32, metadata=opt("examples per training batch"))
    eval_batch_size: int = field(default=128, metadata=opt("examples per evaluation batch"))
    split_seed: int = field(default=0, metadata=opt("seed of the --valid-fraction split"))

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

    def read(self, path, labelled: bool = True, phrases: bool = False, task: ClassifyTask | None = None
             ) -> list[Example]:
        """Examples of `path` in this config's format (texts only if not `labelled`; tsv/csv only), tokenised
        by `task`'s tokenizer (None: whitespace words)."""
        fmt = self.format_of(path)
        if fmt == "sst":
            examples = read_sst(path, self.sst_labels, phrases)
            if task is not None and task.tokenizer.kind != "whitespace":
                examples = [Example(task.tokenize(" ".join(e.tokens)), e.label, e.where) for e in examples]
            return examples
        rows = read_table(path, self.text_column, self.label_column if labelled else None, self.header,
                          "\t" if fmt == "tsv" else ",", self.quoting)
        split = task.tokenize if task is not None else str.split
        return [Example(split(r.text), r.label, f"{path}:{r.line}") for r in rows]

    def make_tokenizer(self) -> Tokenizer:
        """The --tokenizer, a subword model trained on the texts of --data."""
        kind = self.tokenizer or "whitespace"
        texts = lambda: (" ".join(e.tokens).lower() if self.lower else " ".join(e.tokens)  # noqa: E731
                         for e in self.read(self.train))
        return make_tokenizer(kind, texts, self.vocab_size, str(self.train), self.lang)


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
    vectors: Any = None  # pretrained word vectors for task.vocab (rnnkit.data.vectors.Vectors), or None


def load_corpus(data: ClassifyDataConfig, task: ClassifyTask | None = None) -> ClassifyCorpus:
    """Read train (and valid) examples, build the vocabulary and the label set from train (unless `task` is
    given, as when resuming), and encode. The vocabulary counts sentences, not the extra SST phrases."""
    tokenizer, reader = None, None  # reader: whose tokenizer splits the texts (None: whitespace)
    if task is not None:
        reader = task if task.tokenizer.kind != "whitespace" else None
    elif (data.tokenizer or "whitespace") != "whitespace":
        tokenizer = data.make_tokenizer()
        reader = ClassifyTask(Vocab([PAD, UNK]), ["a", "b"], data.lower, tokenizer)  # it only tokenises
    sentences = data.read(data.train, task=reader)
    rng = np.random.default_rng(data.split_seed)
    if data.valid is None:
        order = rng.permutation(len(sentences))
        n_valid = max(1, int(len(sentences) * data.valid_fraction))
        valid = [sentences[i] for i in order[:n_valid]]
        sentences = [sentences[i] for i in sorted(order[n_valid:])]
        source = f"{data.valid_fraction:.0%} of {data.train} (seed {data.split_seed})"
    else:
        valid, source = data.read(data.valid, task=reader), str(data.valid)
    train = sentences
    if data.phrases and data.format_of(data.train) == "sst":
        phrases = data.read(data.train, phrases=True, task=reader)
        if data.valid is not None:
            train = phrases
        else:  # phrases of the training part only
            held = {tuple(e.tokens) for e in valid}
            train = [e for e in phrases if tuple(e.tokens) not in held]
    if task is None:
        fmt = data.format_of(data.train)
        labels = SST_LABELS[data.sst_labels] if fmt == "sst" else label_order(e.label for e in train)
        if tokenizer is not None and tokenizer.subword:
            vocab = Vocab([PAD, UNK, *tokenizer.pieces()])
        else:
            vocab = Vocab.build((t.lower() if data.lower else t for e in sentences for t in e.tokens), data.min_freq,
                                specials=(PAD, UNK))
        task = ClassifyTask(vocab, labels, data.lower, tokenizer)
    encode = lambda examples: [(task.encode(e.tokens), task.label_id(e.label, e.where)) for e in examples]  # noqa
    return ClassifyCorpus(task, encode(train), encode(valid), source)


def make_batches(corpus: ClassifyCorpus, data: ClassifyDataConfig, seed: int = 0):
    length = lambda example: len(example[0])  # noqa: E731
    return (PaddedBatches(corpus.train, collate, data.batch_size, shuffle=True, seed=seed, length=length),
            PaddedBatches(corpus.valid, collate, data.eval_batch_size, shuffle=False, length=length))


# ---- the lifecycle: what classification tells the driver (rnnkit.tasks.driver) -------------------------


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


class ClassifySpec:
    name, description = "classify", "a classification run"
    data_config, model_config, train_config = ClassifyDataConfig, ClassifierConfig, TrainConfig
    path_fields = ("train", "valid", "vectors")

    def prepare(self, data: ClassifyDataConfig, task: ClassifyTask | None = None) -> ClassifyCorpus:
        corpus = load_corpus(data, task)
        if data.vectors and task is None:
            from rnnkit.data.vectors import load_vectors

            corpus.vectors = load_vectors(data.vectors, corpus.task.vocab, lower=True)
        return corpus

    def model_config_for(self, corpus: ClassifyCorpus, options: dict) -> ClassifierConfig:
        if options.get("emb") is None and corpus.vectors is not None:
            options["emb"] = corpus.vectors.dim
        return sized_config(ClassifierConfig, options, vocab_size=len(corpus.task.vocab),
                            num_classes=len(corpus.task.labels))

    def build_model(self, config: ClassifierConfig, corpus: ClassifyCorpus) -> RNNClassifier:
        return build_model(config, corpus.vectors)

    def batches(self, corpus: ClassifyCorpus, data: ClassifyDataConfig, seed: int):
        return make_batches(corpus, data, seed)

    def run_files(self, corpus: ClassifyCorpus, config: ClassifierConfig) -> tuple[dict, dict]:
        return {"vocab.json": corpus.task.vocab, **corpus.task.tokenizer_files()}, {"task": corpus.task.to_dict()}

    def load(self, run_dir: Path, config: dict) -> tuple[RNNClassifier, ClassifyTask]:
        model_config = model_from(self, run_dir, config)
        vocab = load_vocab(run_dir, "vocab.json", model_config.vocab_size, "vocab_size", (PAD, UNK))
        labels = task_field(config, run_dir, "labels", list)
        if len(labels) != model_config.num_classes or not all(isinstance(x, str) for x in labels):
            raise DataError(f"{run_dir / 'config.json'}: task.labels: expected {model_config.num_classes} label "
                            f"strings (model.num_classes), found {labels!r}")
        tokenizer = tokenizer_of(config["task"], run_dir, f"{run_dir / 'config.json'}: task")
        if tokenizer.subword and vocab.itos[2:] != tokenizer.pieces():
            raise DataError(f"{run_dir / 'vocab.json'}: expected the pieces of {run_dir / tokenizer.file} after "
                            "the specials, found other tokens; the run directory's files do not belong together")
        task = ClassifyTask(vocab, labels, task_field(config, run_dir, "lower", bool, False), tokenizer)
        return RNNClassifier(model_config), task


SPEC = ClassifySpec()


def fit(run_dir, data: ClassifyDataConfig, model_config: ClassifierConfig | dict, train: TrainConfig,
        corpus: ClassifyCorpus | None = None, vectors=None, overwrite: bool = False, callbacks=()) -> list[dict]:
    """Train a classifier from scratch into RUN_DIR with the shared Trainer (rnnkit.tasks.driver.fit);
    returns its history. `vectors`: pretrained vectors for the corpus vocabulary (else data.vectors)."""
    corpus = corpus or SPEC.prepare(data)
    if vectors is not None:
        corpus.vectors = vectors
    return driver.fit(SPEC, run_dir, data, model_config, train, overwrite=overwrite, prepared=corpus,
                      callbacks=callbacks)


def resume(run_dir, epochs: int | None = None, **train_changes) -> list[dict]:
    """Continue the run saved in RUN_DIR exactly where its last checkpoint stopped."""
    return driver.resume(run_dir, SPEC, epochs, **train_changes)


# ---- trained runs: load, predict, evaluate ------------------------------------------------------------


@dataclass
class LoadedClassifier(LoadedRun):
    """model (RNNClassifier), task (ClassifyTask), config; `data`: the run's ClassifyDataConfig."""

    @property
    def data(self) -> ClassifyDataConfig:
        return from_dict(ClassifyDataConfig, self.config["data"], "config.json: data")


def load_run(run_dir, weights: str = "best", device: str = "cpu") -> LoadedClassifier:
    """Rebuild a trained classifier from RUN_DIR: config.json, vocab.json and best (or last) weights."""
    return driver.load_run(run_dir, weights, device, SPEC, LoadedClassifier)


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
        return [Example(run.task.tokenize(line), None, f"{path}:{n}") for n, line in enumerate(lines, 1)
                if line.strip()]
    data = run.data
    data.format = input_format
    examples = data.read(path, task=run.task)
    for e in examples:
        run.task.label_id(e.label, e.where)  # unknown label -> file:line error
    return examples


def evaluate_file(run: LoadedClassifier, path, input_format: str = "auto", batch_size: int = 128) -> dict:
    """Loss, accuracy, macro-F1, per-class P/R/F1 and confusion counts of a trained run on a labelled file."""
    from rnnkit.train import evaluate

    data = run.data
    data.format = input_format
    examples = [(run.task.encode(e.tokens), run.task.label_id(e.label, e.where))
                for e in data.read(path, task=run.task)]
    batches = PaddedBatches(examples, collate, batch_size, shuffle=False, length=lambda e: len(e[0]))
    return evaluate(run.model, run.task, batches)
