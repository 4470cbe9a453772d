"""Language models: predict the next token of a character or word stream.

    P(x_1 .. x_N) = prod_t P(x_{t+1} | x_1 .. x_t)

Model (`RNNLM`, Zaremba et al. 2014, pytorch/examples word_language_model, char-rnn):

    e_t = E x_t                         embedding, (B, T, D)
    h_t = Recurrent(cell)(e_t, h_{t-1})  L stacked layers of any rnnkit cell, (B, T, H)
    y_t = softmax(V dropout(h_t) + b)    decoder, (B, T, |vocab|); tied: V = E (needs D == H)

Loss convention (Zaremba et al. 2014): the batch loss is the negative log-likelihood SUMMED over the
T time steps and AVERAGED over the B rows,

    loss = (1/B) sum_b sum_t -log y_t[b, x_{t+1}]

so gradients grow with the window length T and the paper's lr = 1 and clip = 5 apply unchanged.
The reported metrics are per token: loss = nll / tokens, ppl = exp(loss), bpc = loss / ln 2.

Bengio et al. 2003's feed-forward model lives in `rnnkit.tasks.nplm`; both share `lm_loss`, the
`LMOutput` type, the `step(ids, state)` API used by `rnnkit.generate`, and `LMTask`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.data import (
    EOS,
    LEVELS,
    UNK,
    DataError,
    LMBatch,
    LMStream,
    RollingWindows,
    Vocab,
    bundled_path,
    detokenize,
    read_text,
    tokenize,
)
from rnnkit.generate import SamplingOptions, generate
from rnnkit.tasks.runs import LoadedRun, load_run_weights, read_run_config, write_run_files
from rnnkit.train import TrainConfig, Trainer, seed_everything
from rnnkit.train.checkpoint import absolute_paths

LN2 = math.log(2.0)


@dataclass
class LMOutput:
    """What a language model's forward returns (the Trainer <-> task contract)."""

    loss: torch.Tensor  # scalar: sum over time of token NLL, mean over batch rows
    logits: torch.Tensor  # (B, T, V)
    state: Any  # recurrent state to carry to the next window
    stats: dict  # {"nll": summed token NLL, "tokens": number of predicted tokens}


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Zaremba convention: sum over (B, T) of -log p(target), divided by B. Also returns summable stats."""
    b, t, v = logits.shape
    nll = F.cross_entropy(logits.reshape(b * t, v).float(), targets.reshape(b * t), reduction="sum")
    stats = {"nll": nll.detach(), "tokens": b * t}
    return nll / b, stats


def summarize_lm(totals: dict, level: str) -> dict:
    """Summed stats -> per-token loss (nats), and ppl (word level) or bpc (char level)."""
    tokens = float(totals["tokens"])
    loss = float(totals["nll"]) / max(tokens, 1.0)
    metrics = {"loss": loss}
    if level == "char":
        metrics["bpc"] = loss / LN2
    else:
        metrics["ppl"] = math.exp(min(loss, 700.0))
    return metrics


@dataclass
class RNNLMConfig:
    """Configuration of `RNNLM`, saved as JSON in the run directory."""

    vocab_size: int
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 128
    emb: int = 128
    dropout: float = 0.0
    tied: bool = False
    init_range: float = 0.1  # uniform(-a, a) for every parameter (Zaremba); 0 keeps the layers' default init
    model: str = "rnn"

    def __post_init__(self):
        if self.tied and self.emb != self.hidden:
            raise ValueError(f"tied weights need the embedding size to equal the hidden size, "
                             f"got emb={self.emb}, hidden={self.hidden}")
        for name in ("vocab_size", "layers", "hidden", "emb"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class RNNLM(nn.Module):
    """Embedding -> stacked recurrent layer (any rnnkit cell) -> dropout -> linear softmax decoder."""

    def __init__(self, config: RNNLMConfig):
        super().__init__()
        from rnnkit import Recurrent  # the core layer

        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.emb)
        self.drop = nn.Dropout(c.dropout)
        self.rnn = Recurrent(c.cell, c.emb, c.hidden, num_layers=c.layers, batch_first=True,
                             dropout=c.dropout if c.layers > 1 else 0.0)
        self.decoder = nn.Linear(c.hidden, c.vocab_size)
        if c.init_range > 0:
            self.reset_parameters(c.init_range)
        if c.tied:
            self.decoder.weight = self.embedding.weight  # V = E (Press & Wolf 2017, Inan et al. 2017)

    def reset_parameters(self, a: float) -> None:
        """Every parameter ~ U(-a, a) (Zaremba et al. 2014 use a = 0.1 / 0.05 / 0.04), except the recurrent
        weights of cells that define their own initialisation (e.g. "irnn": identity W_hh)."""
        from rnnkit import CELLS

        spec = CELLS.get(self.config.cell)
        keep_rnn = spec is not None and spec.init is not None
        for name, p in self.named_parameters():
            if not (keep_rnn and name.startswith("rnn.")):
                nn.init.uniform_(p, -a, a)

    def step(self, ids: torch.Tensor, state=None) -> tuple[torch.Tensor, Any]:
        """ids (B, T) -> logits (B, T, V) and the state after the last step; feeding the windows of a
        stream one after the other with the carried state equals one forward over the whole stream."""
        e = self.drop(self.embedding(ids))  # (B, T, D)
        h, state = self.rnn(e, state)  # (B, T, H)
        return self.decoder(self.drop(h)), state  # (B, T, V)

    def forward(self, batch: LMBatch, state=None) -> LMOutput:
        logits, state = self.step(batch.inputs, state)
        loss, stats = lm_loss(logits, batch.targets)
        return LMOutput(loss=loss, logits=logits, state=state, stats=stats)


# ---- configs as JSON ------------------------------------------------------------------------------


def config_to_dict(config) -> dict:
    return asdict(config)


def config_from_dict(d: dict):
    """Rebuild the model config saved in a run directory (the 'model' key picks the class)."""
    from rnnkit.tasks.nplm import NPLMConfig

    classes = {"rnn": RNNLMConfig, "nplm": NPLMConfig}
    kind = d.get("model", "rnn")
    if kind not in classes:
        raise ValueError(f"unknown language model kind {kind!r}; expected one of {sorted(classes)}")
    cls = classes[kind]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def build_model(config) -> nn.Module:
    from rnnkit.tasks.nplm import NPLM, NPLMConfig

    return NPLM(config) if isinstance(config, NPLMConfig) else RNNLM(config)


# ---- the task: data, metrics, run directories ------------------------------------------------------


class LMTask:
    """What the Trainer needs to know about language modelling: how to report summed stats."""

    name = "lm"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(self, vocab: Vocab, level: str):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        self.vocab = vocab
        self.level = level

    def summarize(self, totals: dict) -> dict:
        return summarize_lm(totals, self.level)

    def to_dict(self) -> dict:
        return {"name": self.name, "level": self.level}


def specials_for(level: str) -> tuple[str, ...]:
    """`<unk>` at both levels (characters unseen in training map to it); `<eos>` ends each line of words."""
    return (UNK,) if level == "char" else (UNK, EOS)


@dataclass
class LMCorpus:
    vocab: Vocab
    level: str
    train: torch.Tensor  # (N_train,) token indices
    valid: torch.Tensor  # (N_valid,)
    valid_source: str  # the file, or "last 10% of <train file>"


def load_corpus(train_path, valid_path=None, level: str = "char", min_freq: int = 1,
                valid_fraction: float = 0.1, vocab: Vocab | None = None) -> LMCorpus:
    """Read and tokenize the training text, build the vocabulary from it (unless given), and encode.

    Without `valid_path` the last `valid_fraction` of TRAIN's tokens are held back for validation
    (char-rnn's split) and the vocabulary is built from the rest only."""
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    train_tokens = tokenize(read_text(train_path), level)
    if valid_path is not None:
        valid_tokens = tokenize(read_text(valid_path), level)
        source = str(valid_path)
    else:
        n_valid = max(1, int(len(train_tokens) * valid_fraction))
        train_tokens, valid_tokens = train_tokens[:-n_valid], train_tokens[-n_valid:]
        source = f"last {valid_fraction:.0%} of {train_path}"
    if vocab is None:
        vocab = Vocab.build(train_tokens, min_freq=min_freq, specials=specials_for(level))
    encode = lambda toks: torch.tensor(vocab.encode(toks), dtype=torch.long)  # noqa: E731
    return LMCorpus(vocab, level, encode(train_tokens), encode(valid_tokens), source)


def save_run_files(run_dir, task: LMTask, model_config, data: dict) -> None:
    """vocab.json and the task / model / data entries of config.json (the Trainer adds "train")."""
    write_run_files(run_dir, {"vocab.json": task.vocab}, task=task.to_dict(), model=config_to_dict(model_config),
                    data=data)


def load_run(run_dir, weights: str = "best", device: str = "cpu") -> LoadedRun:
    """Rebuild a trained language model from RUN_DIR (no pickle, no user code): config.json, vocab.json
    and `best.safetensors` (or `weights.safetensors` with weights="last")."""
    config = read_run_config(run_dir, "lm", "a language-model run")
    task = LMTask(Vocab.load(Path(run_dir) / "vocab.json"), config["task"]["level"])
    model = build_model(config_from_dict(config["model"]))
    return LoadedRun(load_run_weights(run_dir, model, weights, device), task, config)


# ---- verbs: fit, evaluate, sample --------------------------------------------------------------------


@dataclass
class LMDataConfig:
    """Where the text comes from and how it is batched (saved as config.json["data"])."""

    train: str | None = None  # None: the bundled tiny Shakespeare
    valid: str | None = None  # None: the last `valid_fraction` of train
    level: str = "char"
    min_freq: int = 1
    valid_fraction: float = 0.1
    batch_size: int = 32  # B columns of the stream
    bptt: int = 64  # T steps per window (truncated BPTT)
    eval_batch_size: int = 10

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        for name in ("batch_size", "bptt", "eval_batch_size", "min_freq"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def train_path(self) -> Path:
        return Path(self.train) if self.train is not None else bundled_path()

    def load(self, vocab: Vocab | None = None) -> LMCorpus:
        return load_corpus(self.train_path, self.valid, self.level, self.min_freq, self.valid_fraction, vocab)

    def batches(self, corpus: LMCorpus) -> tuple[LMStream, LMStream]:
        return (LMStream(corpus.train, self.batch_size, self.bptt),
                LMStream(corpus.valid, min(self.eval_batch_size, max(1, len(corpus.valid) // 2)), self.bptt))


def evaluate(model: nn.Module, task: LMTask, batches, device: str = "auto") -> dict:
    """Metrics of `model` over a stream (state carried from window to window), by the shared Trainer."""
    config = TrainConfig(epochs=0, device=device, progress=False, tensorboard=False)
    with Trainer(model, task, batches, None, config, run_dir=None) as trainer:
        return trainer.evaluate(batches)


def evaluate_file(run_dir, data_path, batch_size: int = 10, bptt: int | None = None) -> dict:
    """Per-token loss and perplexity (words) or bits per character of a trained run on a text file."""
    run = load_run(run_dir)
    tokens = tokenize(read_text(data_path), run.task.level)
    ids = torch.tensor(run.task.vocab.encode(tokens), dtype=torch.long)
    bptt = bptt or run.config.get("data", {}).get("bptt", 64)
    batch_size = max(1, min(batch_size, len(ids) // 2))
    if len(ids) < 2:
        raise DataError(f"{data_path}: expected at least 2 tokens to evaluate, found {len(ids)}")
    return evaluate(run.model, run.task, LMStream(ids, batch_size, bptt))


def sample_text(run: LoadedRun, prime: str = "", length: int = 500, num_samples: int = 1,
                options: SamplingOptions | None = None, seed: int | None = None) -> list[str]:
    """`num_samples` texts, each the prime followed by `length` generated tokens."""
    vocab, level = run.task.vocab, run.task.level
    prime_tokens = tokenize(prime, level) if prime else []
    start = prime_tokens or [EOS if level == "word" else ("\n" if "\n" in vocab else vocab.itos[-1])]
    run.model.eval()
    ids = generate(run.model, vocab.encode(start), length, num_samples, options, seed)
    return [detokenize(prime_tokens + vocab.decode(row.tolist()), level) for row in ids]


def fit(run_dir, data: LMDataConfig, model_config, train: TrainConfig, corpus: LMCorpus | None = None) -> list[dict]:
    """Train a language model from scratch into RUN_DIR with the shared Trainer; returns its history.

    `model_config.vocab_size` must match the corpus vocabulary (load the corpus first with `data.load()`).
    A time budget is `train.max_minutes`: a deadline the Trainer checks after every step."""
    corpus = corpus or data.load()
    if model_config.vocab_size != len(corpus.vocab):
        raise ValueError(f"model vocab_size {model_config.vocab_size} != vocabulary size {len(corpus.vocab)}")
    task = LMTask(corpus.vocab, data.level)
    seed_everything(train.seed)  # before building: the same seed gives the same initial weights
    model = build_model(model_config)
    train_batches, valid_batches = data.batches(corpus)
    save_run_files(run_dir, task, model_config, absolute_paths(asdict(data)))  # --resume from any directory
    with Trainer(model, task, train_batches, valid_batches, train, run_dir) as trainer:
        return trainer.fit()


def resume(run_dir) -> list[dict]:
    """Continue the run saved in RUN_DIR exactly where its last checkpoint stopped."""
    config = read_run_config(run_dir, "lm", "a language-model run")
    data_dict = dict(config["data"])
    windows = data_dict.pop("windows_per_epoch", None)
    data = LMDataConfig(**data_dict)
    corpus = data.load(vocab=Vocab.load(Path(run_dir) / "vocab.json"))
    task = LMTask(corpus.vocab, data.level)
    train_batches, valid_batches = data.batches(corpus)
    if windows:
        train_batches = RollingWindows(train_batches, windows)
    model = build_model(config_from_dict(config["model"]))
    with Trainer(model, task, train_batches, valid_batches, TrainConfig.from_dict(config["train"]), run_dir) as t:
        return t.fit(resume=True)
