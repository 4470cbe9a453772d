"""Sequence tagging: one tag per word (part-of-speech tags, BIO/IOBES named entities).

Model (`Tagger`; Lample et al. 2016, Plank et al. 2016 "bilty"):

    e_t = [E w_t ; c_t]                         word embedding, optionally with a character encoding
    c_t = [→h_char(w_t) ; ←h_char(w_t)]          last states of a BiLSTM over the characters of word w_t
    h_t = BiRecurrent(e_1 .. e_n)[t]            L stacked bidirectional layers of any rnnkit cell, (B, T, 2H)
    P_t = W dropout(h_t) + b                    emission scores, (B, T, K)

    softmax head:  p(y_t | x) = softmax(P_t)[y_t],  loss = Σ_t −log p(y_t | x)
    CRF head:      p(y | x) = exp(s(x, y)) / Z(x) with s(x, y) = Σ_t (A[y_{t−1}, y_t] + P_t[y_t]) (rnnkit.nn.crf),
                   loss = −log p(y | x) = log Z(x) − s(x, y); predictions by Viterbi decoding

The loss of a batch is summed over each sentence's words and averaged over the B sentences (the lm task's
convention, so clip = 5 applies). Padding never enters: the recurrent layer gets `lengths=`, the losses are
masked. Word dropout (Kiperwasser & Goldberg 2016): while training, word w is replaced by <unk> with
probability α / (α + count(w)), so the <unk> embedding is learnt from rare words.

Metrics (`TagTask.summarize`): loss (per word), accuracy (per word); for BIO/IOBES tags also entity-level
precision, recall and F1, the entities found by seqeval's chunker (conlleval's rules) and counted per batch:
P = tp / predicted, R = tp / gold, F1 = 2PR / (P + R), an entity correct iff type, start and end match.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import from_dict, opt
from rnnkit.data import PAD, UNK, DataError, PaddedBatches, Vocab, pad
from rnnkit.data.conll import FORMATS, SCHEMES, Sentence, read_sentences
from rnnkit.nn.crf import CRF
from rnnkit.tasks import driver
from rnnkit.tasks.driver import cell_names, model_from, sized_config
from rnnkit.tasks.runs import LoadedRun, load_vocab, task_field
from rnnkit.train import TrainConfig

PAD_ID, UNK_ID = 0, 1  # word and character vocabularies start with (<pad>, <unk>)
METRICS = ("accuracy", "entity")


@dataclass
class TaggerConfig:
    """Configuration of `Tagger`, saved as JSON in the run directory."""

    tags: list[str] = field(metadata=opt(cli=False))  # the tag set, index order
    vocab_size: int = field(metadata=opt(cli=False))
    char_vocab_size: int = field(default=0, metadata=opt(cli=False))  # 0: words only, no character encoder
    emb: int = field(default=100, metadata=opt("word embedding size"))
    char_emb: int = field(default=30, metadata=opt("character embedding size"))
    char_hidden: int = field(default=50, metadata=opt("character BiLSTM units per direction"))
    hidden: int = field(default=100, metadata=opt("units per direction"))
    layers: int = field(default=1, metadata=opt("stacked bidirectional layers"))
    cell: str = field(default="lstm", metadata=opt("recurrent cell", choices=cell_names))
    dropout: float = field(default=0.33, metadata=opt("on the embeddings, between layers, before the output"))
    crf: bool = field(default=False, metadata=opt("a linear-chain CRF output layer (Viterbi decoding)"))
    word_dropout: float = field(default=0.25, metadata=opt("alpha: p(<unk>) = alpha / (alpha + count); 0: off"))
    metric: str = field(default="accuracy", metadata=opt(cli=False))  # "entity": also entity P/R/F1

    def __post_init__(self):
        for name in ("vocab_size", "emb", "hidden", "layers", "char_emb", "char_hidden"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.tags:
            raise ValueError("tags: expected at least one tag")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")


@dataclass
class TagBatch:
    words: torch.Tensor  # (B, T) word ids, PAD_ID past each length
    tags: torch.Tensor  # (B, T) tag ids (0 past each length)
    lengths: torch.Tensor  # (B,)
    chars: torch.Tensor | None = None  # (B, T, C) character ids
    char_lengths: torch.Tensor | None = None  # (B, T), 0 for padding words


@dataclass
class TagOutput:
    loss: torch.Tensor  # scalar: Σ over words of the NLL, mean over sentences
    logits: torch.Tensor  # (B, T, K) emission scores
    predictions: torch.Tensor  # (B, T) argmax (softmax) or Viterbi (CRF) tags
    state: None
    stats: dict = field(default_factory=dict)


class CharEncoder(nn.Module):
    """A word as the last states of a BiLSTM over its characters: (N, C) ids -> (N, 2 H_c)."""

    def __init__(self, num_chars: int, emb: int, hidden: int):
        super().__init__()
        from rnnkit import Recurrent

        self.embedding = nn.Embedding(num_chars, emb, padding_idx=PAD_ID)
        self.rnn = Recurrent("lstm", emb, hidden, batch_first=True, bidirectional=True)

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        chars = chars[:, : int(lengths.max())]
        _, (h_n, _) = self.rnn(self.embedding(chars), lengths=lengths)  # h_n (2, N, H_c)
        return torch.cat([h_n[0], h_n[1]], dim=1)


class Tagger(nn.Module):
    """Word (+ character) embeddings -> bidirectional recurrent layers -> softmax or CRF over the tags."""

    def __init__(self, config: TaggerConfig):
        super().__init__()
        from rnnkit import Recurrent

        c = self.config = config
        self.embedding = nn.Embedding(c.vocab_size, c.emb, padding_idx=PAD_ID)
        self.chars = CharEncoder(c.char_vocab_size, c.char_emb, c.char_hidden) if c.char_vocab_size else None
        width = c.emb + (2 * c.char_hidden if self.chars is not None else 0)
        self.drop = nn.Dropout(c.dropout)
        self.rnn = Recurrent(c.cell, width, c.hidden, num_layers=c.layers, batch_first=True, bidirectional=True,
                             dropout=c.dropout if c.layers > 1 else 0.0)
        self.out = nn.Linear(2 * c.hidden, len(c.tags))
        self.crf = CRF(len(c.tags)) if c.crf else None
        self.register_buffer("unk_prob", torch.zeros(c.vocab_size))  # word dropout, saved with the weights
        self.reset_embeddings()

    def reset_embeddings(self) -> None:
        """Word and character embeddings ~ U(−√(3/D), √(3/D)) (variance 1/D; Lample et al. 2016), padding 0.
        torch's N(0, 1) default makes the embeddings learn ~10x slower than the layers above with Adam."""
        tables = [self.embedding] + ([self.chars.embedding] if self.chars is not None else [])
        for table in tables:
            a = (3.0 / table.embedding_dim) ** 0.5
            nn.init.uniform_(table.weight, -a, a)
            with torch.no_grad():
                table.weight[PAD_ID].zero_()

    def set_word_counts(self, counts: list[int]) -> None:
        """p(<unk> | w) = α / (α + count(w)) from the training counts of each word id (specials: 0)."""
        a = self.config.word_dropout
        counts = torch.tensor(counts, dtype=torch.float)
        self.unk_prob.copy_(torch.where(counts > 0, a / (a + counts.clamp(min=1)), torch.zeros_like(counts)))

    def emissions(self, batch: TagBatch) -> torch.Tensor:
        words = batch.words
        B, T = words.shape
        mask = torch.arange(T, device=words.device).unsqueeze(0) < batch.lengths.to(words.device).unsqueeze(1)
        if self.training and self.config.word_dropout > 0:
            drop = torch.rand(words.shape, device=words.device) < self.unk_prob[words]
            words = words.masked_fill(drop, UNK_ID)
        x = self.embedding(words)  # (B, T, D)
        if self.chars is not None:
            c = torch.zeros(B, T, 2 * self.config.char_hidden, dtype=x.dtype, device=x.device)
            c[mask] = self.chars(batch.chars[mask], batch.char_lengths[mask].cpu()).to(x.dtype)
            x = torch.cat([x, c], dim=2)  # (B, T, D + 2 H_c)
        h, _ = self.rnn(self.drop(x), lengths=batch.lengths.cpu())  # (B, T, 2H)
        return self.out(self.drop(h))  # (B, T, K)

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.crf is not None:
            return self.crf.decode(emissions.float(), mask)[0]
        return emissions.argmax(dim=2)

    def forward(self, batch: TagBatch, state=None) -> TagOutput:
        P = self.emissions(batch)
        B, T, K = P.shape
        mask = torch.arange(T, device=P.device).unsqueeze(0) < batch.lengths.to(P.device).unsqueeze(1)
        if self.crf is not None:
            nll = self.crf.nll(P.float(), batch.tags, mask).sum()
        else:
            token_nll = F.cross_entropy(P.reshape(B * T, K).float(), batch.tags.reshape(B * T), reduction="none")
            nll = (token_nll * mask.reshape(-1)).sum()
        predictions = self.decode(P.detach(), mask)
        stats = {"nll": nll.detach(), "tokens": int(mask.sum()), "sentences": B,
                 "correct": ((predictions == batch.tags) & mask).sum()}
        if self.config.metric == "entity":
            stats.update(entity_counts(self._strings(batch.tags, batch.lengths),
                                       self._strings(predictions, batch.lengths)))
        return TagOutput(loss=nll / B, logits=P, predictions=predictions, state=None, stats=stats)

    def _strings(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[list[str]]:
        tags = self.config.tags
        return [[tags[i] for i in row[:n]] for row, n in zip(ids.tolist(), lengths.tolist())]


def entity_counts(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Entities found by seqeval's chunker in each sentence: {"tp": matched, "pred": predicted, "gold": gold}."""
    from seqeval.metrics.sequence_labeling import get_entities

    tp = n_pred = n_gold = 0
    for g, p in zip(gold, pred):
        g_set, p_set = set(get_entities(g)), set(get_entities(p))
        tp, n_pred, n_gold = tp + len(g_set & p_set), n_pred + len(p_set), n_gold + len(g_set)
    return {"tp": tp, "pred": n_pred, "gold": n_gold}


def entity_scores(tp: float, n_pred: float, n_gold: float) -> dict:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


class TagTask:
    """What the Trainer needs to know about tagging: metrics from summed stats, and what to monitor."""

    name = "tag"
    monitor_mode = "max"

    def __init__(self, words: Vocab, tags: Vocab, chars: Vocab | None = None, metric: str = "accuracy",
                 lower: bool = False):
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.words, self.tags, self.chars, self.metric, self.lower = words, tags, chars, metric, lower
        self.monitor = "f1" if metric == "entity" else "accuracy"

    def summarize(self, totals: dict) -> dict:
        tokens = max(float(totals.get("tokens", 0.0)), 1.0)
        metrics = {"loss": float(totals["nll"]) / tokens, "accuracy": float(totals.get("correct", 0.0)) / tokens}
        if self.metric == "entity":
            metrics.update(entity_scores(*(float(totals.get(k, 0.0)) for k in ("tp", "pred", "gold"))))
        return metrics

    def to_dict(self) -> dict:
        return {"name": self.name, "metric": self.metric, "chars": self.chars is not None, "lower": self.lower}


# ---- data ---------------------------------------------------------------------------------------------------


MAX_WORD_CHARS = 40  # longer words (URLs) keep their first and last 20 characters


def word_chars(word: str) -> str:
    half = MAX_WORD_CHARS // 2
    return word if len(word) <= MAX_WORD_CHARS else word[:half] + word[-half:]


@dataclass
class TagDataConfig:
    """Where the tagged sentences come from and how they are batched (saved as config.json["data"])."""

    train: str = field(metadata=opt("training file: CoNLL-U or CoNLL columns (UTF-8, or .gz)", flag="--data"))
    valid: str | None = field(default=None, metadata=opt(
        "validation file in the same format (the best epoch is kept by its metric)"))
    format: str = field(default="conllu", metadata=opt("the files' format", choices=FORMATS[:2]))
    column: str = field(default="upos", metadata=opt("conllu: which tags to learn", choices=("upos", "xpos")))
    scheme: str = field(default="bio", metadata=opt("conll: tag scheme to check (entity P/R/F1 unless none)",
                                                    choices=SCHEMES))
    min_freq: int = field(default=1, metadata=opt("rarer training words become <unk>"))
    chars: bool = field(default=False, metadata=opt("add a character-level BiLSTM word encoder"))
    lower: bool = field(default=False, metadata=opt("lower-case the words for the word embeddings"))
    batch_size: int = field(default=32, metadata=opt("sentences per training batch"))
    eval_batch_size: int = field(default=128, metadata=opt("sentences per evaluation batch"))

    def __post_init__(self):
        if self.format not in FORMATS[:2]:
            raise ValueError(f"format must be 'conllu' or 'conll' to train, got {self.format!r}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
        for name in ("min_freq", "batch_size", "eval_batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def metric(self) -> str:
        return "entity" if self.format == "conll" and self.scheme != "none" else "accuracy"

    def read(self, path) -> list[Sentence]:
        return read_sentences(path, self.format, self.column, self.scheme)


@dataclass
class TagCorpus:
    words: Vocab
    tags: Vocab
    chars: Vocab | None
    train: list[Sentence]
    valid: list[Sentence] | None
    word_counts: list[int]  # training count of each word id
    task: TagTask | None = None  # what the Trainer summarizes (set by the driver's prepare)


def load_corpus(data: TagDataConfig, task: TagTask | None = None) -> TagCorpus:
    """Read train (and valid) and build the word, character and tag vocabularies from train (or take them
    from `task`, a trained run's, when resuming)."""
    train = data.read(data.train)
    valid = data.read(data.valid) if data.valid else None
    forms = Counter(w for s in train for w in s.words)
    counts = Counter(w.lower() for w in forms.elements()) if data.lower else forms
    words = Vocab.build(counts.elements(), min_freq=data.min_freq, specials=(PAD, UNK))
    tags = Vocab.build((t for s in train for t in s.tags), specials=(), unk=None)
    chars = Vocab.build((ch for w in forms for ch in word_chars(w)), specials=(PAD, UNK)) if data.chars else None
    if task is not None:
        words, tags, chars = task.words, task.tags, task.chars
    word_counts = [counts.get(w, 0) if i > UNK_ID else 0 for i, w in enumerate(words.itos)]
    for s in valid or []:
        tag_ids(s, tags, data.valid)  # fail early on tags that training never saw
    return TagCorpus(words, tags, chars, train, valid, word_counts)


def encode(sentences: list[Sentence], task: TagTask, path="<data>") -> list[tuple]:
    """Examples (word ids, character ids per word or None, tag ids) for `collate`; unknown tags raise."""
    examples = []
    for s in sentences:
        word_ids = task.words.encode([w.lower() for w in s.words] if task.lower else s.words)
        char_ids = [task.chars.encode(word_chars(w)) for w in s.words] if task.chars is not None else None
        examples.append((word_ids, char_ids, tag_ids(s, task.tags, path)))
    return examples


def tag_ids(s: Sentence, tags: Vocab, path="<data>") -> list[int]:
    """The ids of a sentence's gold tags (zeros when it has none); a tag unseen in training raises."""
    if s.tags is None:
        return [0] * len(s.words)
    for k, t in enumerate(s.tags):
        if t not in tags:
            raise DataError(f"{path}:{s.line + s.word_lines[k]}: expected one of the {len(tags)} tags seen in "
                            f"training ({', '.join(tags.itos[:8])}{', ...' if len(tags) > 8 else ''}), found {t!r}")
    return [tags.stoi[t] for t in s.tags]


def collate(examples: list[tuple]) -> TagBatch:
    words, lengths = pad([e[0] for e in examples], PAD_ID)
    tags, _ = pad([e[2] for e in examples], 0)
    if examples[0][1] is None:
        return TagBatch(words, tags, lengths)
    B, T = words.shape
    C = max(len(c) for e in examples for c in e[1])
    chars = torch.zeros(B, T, C, dtype=torch.long)
    char_lengths = torch.zeros(B, T, dtype=torch.long)
    for b, e in enumerate(examples):
        for t, c in enumerate(e[1]):
            chars[b, t, : len(c)] = torch.tensor(c, dtype=torch.long)
            char_lengths[b, t] = len(c)
    return TagBatch(words, tags, lengths, chars, char_lengths)


def batches(examples: list[tuple], batch_size: int, shuffle: bool, seed: int = 0) -> PaddedBatches:
    return PaddedBatches(examples, collate, batch_size, shuffle=shuffle, seed=seed, length=lambda e: len(e[0]))


# ---- the lifecycle: what tagging tells the driver (rnnkit.tasks.driver) -------------------------------------


def model_config_for(corpus: TagCorpus, metric: str = "accuracy", **options) -> TaggerConfig:
    """A TaggerConfig sized for `corpus` (vocabularies, tag set); `options` are TaggerConfig fields."""
    return sized_config(TaggerConfig, options, tags=list(corpus.tags.itos), vocab_size=len(corpus.words),
                        char_vocab_size=len(corpus.chars) if corpus.chars is not None else 0, metric=metric)


@dataclass
class TrainTagger(TrainConfig):
    """The Trainer's options with the tagger's defaults (Adam at 5e-3)."""

    lr: float | None = field(default=5e-3, metadata=opt("learning rate"))


class TagSpec:
    name, description = "tag", "a tagging run"
    data_config, model_config, train_config = TagDataConfig, TaggerConfig, TrainTagger
    path_fields = ("train", "valid")

    def prepare(self, data: TagDataConfig, task: TagTask | None = None) -> TagCorpus:
        corpus = load_corpus(data, task)
        corpus.task = task or TagTask(corpus.words, corpus.tags, corpus.chars, data.metric, data.lower)
        return corpus

    def model_config_for(self, corpus: TagCorpus, options: dict) -> TaggerConfig:
        return model_config_for(corpus, corpus.task.metric, **{k: v for k, v in options.items() if k != "metric"})

    def build_model(self, config: TaggerConfig, corpus: TagCorpus) -> Tagger:
        if (config.char_vocab_size > 0) != (corpus.chars is not None):
            raise ValueError("the character encoder needs a character vocabulary: set TagDataConfig(chars=True)")
        model = Tagger(config)
        model.set_word_counts(corpus.word_counts)
        return model

    def batches(self, corpus: TagCorpus, data: TagDataConfig, seed: int):
        train = batches(encode(corpus.train, corpus.task, data.train), data.batch_size, shuffle=True, seed=seed)
        valid = None
        if corpus.valid is not None:
            valid = batches(encode(corpus.valid, corpus.task, data.valid), data.eval_batch_size, shuffle=False)
        return train, valid

    def run_files(self, corpus: TagCorpus, config: TaggerConfig) -> tuple[dict, dict]:
        """vocab.json (words), tags.json, chars.json (with the character encoder)."""
        return ({"vocab.json": corpus.words, "tags.json": corpus.tags, "chars.json": corpus.chars},
                {"task": corpus.task.to_dict()})

    def load(self, run_dir: Path, config: dict) -> tuple[Tagger, TagTask]:
        model_config = model_from(self, run_dir, config)
        words = load_vocab(run_dir, "vocab.json", model_config.vocab_size, "vocab_size", (PAD, UNK))
        tags = Vocab.load(run_dir / "tags.json")
        if tags.itos != model_config.tags:
            raise DataError(f"{run_dir / 'tags.json'}: the tags differ from config.json's model.tags "
                            f"({len(tags)} vs {len(model_config.tags)}); the run directory's files do not belong "
                            "together")
        chars = None
        if task_field(config, run_dir, "chars", bool, False):
            chars = load_vocab(run_dir, "chars.json", model_config.char_vocab_size, "char_vocab_size",
                               (PAD, UNK))
        metric = task_field(config, run_dir, "metric", str)
        if metric not in METRICS:
            raise DataError(f"{run_dir / 'config.json'}: task.metric: expected one of {METRICS}, found {metric!r}")
        task = TagTask(words, tags, chars, metric, task_field(config, run_dir, "lower", bool, False))
        return Tagger(model_config), task


SPEC = TagSpec()


def fit(run_dir, data: TagDataConfig, model_config: TaggerConfig | dict, train: TrainConfig,
        corpus: TagCorpus | None = None, overwrite: bool = False, callbacks=()) -> list[dict]:
    """Train a tagger from scratch into RUN_DIR with the shared Trainer (rnnkit.tasks.driver.fit)."""
    corpus = SPEC.prepare(data) if corpus is None else corpus
    if getattr(corpus, "task", None) is None:
        corpus.task = TagTask(corpus.words, corpus.tags, corpus.chars, data.metric, data.lower)
    return driver.fit(SPEC, run_dir, data, model_config, train, overwrite=overwrite, prepared=corpus,
                      callbacks=callbacks)


def resume(run_dir, epochs: int | None = None, **train_changes) -> list[dict]:
    """Continue the run saved in RUN_DIR exactly where its last checkpoint stopped."""
    return driver.resume(run_dir, SPEC, epochs, **train_changes)


def load_run(run_dir, weights: str = "best", device: str = "cpu") -> LoadedRun:
    """Rebuild a trained tagger from RUN_DIR (config.json, vocab.json, tags.json, chars.json and
    `best.safetensors`, or `weights.safetensors` with weights="last"); no pickle, no user code."""
    return driver.load_run(run_dir, weights, device, SPEC)


@torch.no_grad()
def predict(run: LoadedRun, sentences: list[list[str]] | list[Sentence], batch_size: int = 128) -> list[list[str]]:
    """The predicted tags of each sentence (a list of words, or a `Sentence`), in input order."""
    sentences = [s if isinstance(s, Sentence) else Sentence(list(s), None, 0) for s in sentences]
    if not sentences:
        return []
    untagged = [Sentence(s.words, None, s.line, s.lines, s.word_lines) for s in sentences]
    data = batches(encode(untagged, run.task), batch_size, shuffle=False)
    device = next(run.model.parameters()).device
    run.model.eval()
    out: list[list[str]] = [[] for _ in sentences]
    for i, indices in enumerate(data.batch_indices(0)):
        batch = data.get(i)
        batch = TagBatch(*(None if x is None else x.to(device) for x in
                           (batch.words, batch.tags, batch.lengths, batch.chars, batch.char_lengths)))
        emissions = run.model.emissions(batch)
        mask = torch.arange(batch.words.shape[1], device=device).unsqueeze(0) < batch.lengths.unsqueeze(1)
        for j, row, n in zip(indices, run.model.decode(emissions, mask).tolist(), batch.lengths.tolist()):
            out[j] = [run.task.tags.itos[k] for k in row[:n]]
    return out


def evaluate_file(run_dir, path, batch_size: int = 128) -> dict:
    """Metrics (loss, accuracy; entity P/R/F1 for NER runs) of a trained run on a gold-tagged file."""
    from rnnkit.train import evaluate

    run = load_run(run_dir)
    data = from_dict(TagDataConfig, {**run.config["data"], "train": str(path), "valid": None}, "config.json: data")
    examples = encode(data.read(path), run.task, path)
    return evaluate(run.model, run.task, batches(examples, batch_size, shuffle=False), device="cpu")
