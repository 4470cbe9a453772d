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

import os
import shutil
import tempfile
import weakref
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnkit.config import defaults, from_dict, opt
from rnnkit.data import (
    EOS,
    LEVELS,
    DataError,
    LMBatch,
    LMStream,
    Vocab,
    bundled_path,
    read_text,
)
from rnnkit.data.prepared import open_prepared, prepare_lm, specials_for, stream_tokens, subword_vocab
from rnnkit.data.streams import make_stream
from rnnkit.data.tokenizers import FROM_LEVEL, KINDS, Tokenizer, make_tokenizer, tokenizer_of
from rnnkit.generate import SamplingOptions, generate
from rnnkit.tasks import driver
from rnnkit.tasks.driver import cell_names, sized_config
from rnnkit.tasks.next_token import LMOutput, LMTask, lm_loss, summarize_lm  # noqa: F401 (re-exported)
from rnnkit.tasks.nplm import NPLM, NPLMConfig
from rnnkit.tasks.runs import LoadedRun, load_vocab, task_field
from rnnkit.train import TrainConfig, Trainer


@dataclass
class RNNLMConfig:
    """Configuration of `RNNLM`, saved as JSON in the run directory."""

    vocab_size: int = field(metadata=opt(cli=False))
    cell: str = field(default="lstm", metadata=opt("recurrent cell", choices=cell_names))
    layers: int = field(default=2, metadata=opt("stacked recurrent layers"))
    hidden: int = field(default=128, metadata=opt("hidden units"))
    emb: int | None = field(default=None, metadata=opt("embedding size (none: the hidden size; nplm: 60)"))
    dropout: float = field(default=0.0, metadata=opt("on the embeddings, between layers, before the decoder"))
    tied: bool = field(default=False, metadata=opt("tie decoder and embedding weights (needs emb == hidden)"))
    init_range: float = field(default=0.1, metadata=opt(  # uniform(-a, a) for every parameter (Zaremba)
        "uniform(-a, a) init of every parameter; 0: the layers' default"))
    model: str = field(default="rnn", metadata=opt("recurrent LM, or Bengio's feed-forward NPLM",
                                                   choices=("rnn", "nplm")))

    def __post_init__(self):
        if self.emb is None:
            self.emb = self.hidden
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


MODEL_CONFIGS = {"rnn": RNNLMConfig, "nplm": NPLMConfig}  # config.json's model.model picks the class


def config_to_dict(config) -> dict:
    return asdict(config)


def config_from_dict(d: dict, where: str = "model"):
    """Rebuild the model config saved in a run directory (the 'model' key picks the class), strictly."""
    kind = d.get("model", "rnn") if isinstance(d, dict) else None
    if kind not in MODEL_CONFIGS:
        raise DataError(f"{where}: model: expected one of {', '.join(MODEL_CONFIGS)}, found {kind!r}")
    return from_dict(MODEL_CONFIGS[kind], d, where)


def build_model(config) -> nn.Module:
    return NPLM(config) if isinstance(config, NPLMConfig) else RNNLM(config)


# ---- the task: data, metrics, run directories ------------------------------------------------------


# A --data text file larger than this (bytes on disk) is not read into memory: it is prepared on the fly
# (rnnkit.data.prepared, one streaming pass) and the run trains from the memory map, kept as RUN_DIR/prepared.
PREPARE_ABOVE = 16 << 20
PREPARED_IN_RUN = "prepared"


class PreparedStore:
    """A corpus prepared on the fly into a temporary directory ($TMPDIR, see `tempfile`) for a run started
    from a large text file; saved with each run that trains on it as RUN_DIR/prepared (hard links when $TMPDIR
    is on the run's filesystem, so no second copy of the data; else a copy). The temporary directory is
    removed when the corpus is garbage-collected or the process ends, so a start that fails leaves nothing
    behind."""

    def __init__(self, tmp: Path):
        self.path = tmp / PREPARED_IN_RUN
        weakref.finalize(self, shutil.rmtree, str(tmp), True)

    def save(self, dest) -> None:
        shutil.copytree(self.path, dest, copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem (or no hard links there)
        shutil.copy2(src, dst)


@dataclass
class LMCorpus:
    vocab: Vocab
    level: str
    train: torch.Tensor  # (N_train,) token indices (a NumPy memmap for a prepared corpus)
    valid: torch.Tensor  # (N_valid,)
    valid_source: str  # the file, or "last 10% of <train file>"
    task: LMTask | None = None  # what the Trainer summarizes (set by the driver's prepare)
    tokenizer: Tokenizer | None = None
    store: PreparedStore | None = None  # a corpus prepared on the fly, to be saved with the run


def load_corpus(train_path, valid_path=None, level: str = "char", min_freq: int = 1,
                valid_fraction: float = 0.1, vocab: Vocab | None = None, tokenizer: Tokenizer | str | None = None,
                vocab_size: int | None = None, lang: str = "en") -> LMCorpus:
    """Read and tokenize the training text, build the vocabulary from it (unless given), and encode.

    Without `valid_path` the last `valid_fraction` of TRAIN's tokens are held back for validation
    (char-rnn's split) and the vocabulary is built from the rest only. `tokenizer`: a Tokenizer, or a kind
    (rnnkit.data.tokenizers.KINDS; a subword model is trained on TRAIN's lines), or None: the one `level`
    names (char, or whitespace words)."""
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    text = read_text(train_path)
    if not isinstance(tokenizer, Tokenizer):
        tokenizer = make_tokenizer(tokenizer or FROM_LEVEL[level], text.splitlines, vocab_size, str(train_path), lang)
    level = "char" if tokenizer.kind == "char" else "word"
    train_tokens = stream_tokens(text, tokenizer)
    del text
    if valid_path is not None:
        valid_tokens = stream_tokens(read_text(valid_path), tokenizer)
        source = str(valid_path)
    else:
        n_valid = max(1, int(len(train_tokens) * valid_fraction))
        train_tokens, valid_tokens = train_tokens[:-n_valid], train_tokens[-n_valid:]
        source = f"last {valid_fraction:.0%} of {train_path}"
    if vocab is None:
        vocab = subword_vocab(tokenizer) if tokenizer.subword else Vocab.build(
            train_tokens, min_freq=min_freq, specials=specials_for(level))
    encode = lambda toks: torch.tensor(vocab.encode(toks), dtype=torch.long)  # noqa: E731
    return LMCorpus(vocab, level, encode(train_tokens), encode(valid_tokens), source, tokenizer=tokenizer)


def prepare_text(train_path, valid_path=None, tokenizer: str = "whitespace", min_freq: int = 1,
                 valid_fraction: float = 0.1, vocab_size: int | None = None, lang: str = "en") -> LMCorpus:
    """`load_corpus` without holding the corpus in memory: the text is prepared (rnnkit.data.prepared, the same
    tokens, vocabulary and ids) into a temporary directory, read as a memory map, and saved with the run that
    trains on it (`LMCorpus.store`)."""
    tmp = Path(tempfile.mkdtemp(prefix="rnnkit-lm-"))
    try:
        store = PreparedStore(tmp)
        corpus = prepare_lm([train_path], store.path, tokenizer, vocab_size, min_freq,
                            None if valid_path is None else str(valid_path), valid_fraction, lang)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    source = str(valid_path) if valid_path is not None else f"last {valid_fraction:.0%} of {train_path}"
    return LMCorpus(corpus.vocab, corpus.level, corpus.train, corpus.valid, source, tokenizer=corpus.tokenizer,
                    store=store)


def load_prepared(path, vocab: Vocab | None = None) -> LMCorpus:
    """A corpus written by `rnnkit prepare lm` (rnnkit.data.prepared), its token ids memory-mapped;
    `vocab` (a resumed run's) must be the corpus's own."""
    corpus = open_prepared(path)
    if vocab is not None and vocab != corpus.vocab:
        raise DataError(f"{path}: vocab.json differs from the run's vocabulary; resume with the prepared corpus "
                        "the run was started with")
    return LMCorpus(corpus.vocab, corpus.level, corpus.train, corpus.valid, corpus.valid_source,
                    tokenizer=corpus.tokenizer)


# ---- verbs: fit, evaluate, sample --------------------------------------------------------------------


@dataclass
class LMDataConfig:
    """Where the text comes from and how it is batched (saved as config.json["data"])."""

    train: str | None = field(default=None, metadata=opt(
        "training text (UTF-8, or .gz; over 16 MiB: prepared on the fly into RUN_DIR/prepared); none: the "
        "bundled tiny Shakespeare", flag="--data"))
    valid: str | None = field(default=None, metadata=opt("validation text; none: the last --valid-fraction"))
    prepared: str | None = field(default=None, metadata=opt(
        "a corpus written by `rnnkit prepare lm` (read as a memory map) instead of --data"))
    level: str = field(default="char", metadata=opt("characters or whitespace words", choices=LEVELS))
    tokenizer: str | None = field(default=None, metadata=opt(
        "none: what --level says (char, or whitespace words); else sets --level (char or word)", choices=KINDS))
    vocab_size: int | None = field(default=None, metadata=opt(
        "subword pieces (none: at most 8000, fewer if the data has fewer)"))
    lang: str = field(default="en", metadata=opt("language code (moses)"))
    min_freq: int = field(default=1, metadata=opt("rarer words become <unk>"))
    valid_fraction: float = field(default=0.1, metadata=opt("held back from the end of --data without --valid"))
    batch_size: int = field(default=32, metadata=opt("B columns of the token stream"))
    bptt: int = field(default=64, metadata=opt("T steps per truncated-BPTT window"))
    eval_batch_size: int = field(default=10, metadata=opt("columns of the validation stream"))

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        if self.tokenizer is not None:
            if self.tokenizer not in KINDS:
                raise ValueError(f"tokenizer must be one of {', '.join(KINDS)}, got {self.tokenizer!r}")
            self.level = "char" if self.tokenizer == "char" else "word"
        if self.prepared is not None and (self.train is not None or self.valid is not None):
            raise ValueError("give --prepared DIR or --data/--valid, not both (the prepared corpus holds its "
                             "validation tokens)")
        if self.prepared is not None and (self.tokenizer is not None or self.vocab_size is not None):
            raise ValueError("--tokenizer and --vocab-size are chosen by `rnnkit prepare lm`; a --prepared corpus "
                             "keeps its own")
        for name in ("batch_size", "bptt", "eval_batch_size", "min_freq"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def train_path(self) -> Path:
        return Path(self.train) if self.train is not None else bundled_path()

    def load(self, vocab: Vocab | None = None, tokenizer: Tokenizer | None = None) -> LMCorpus:
        """The corpus: the --prepared map; a --data file over PREPARE_ABOVE bytes prepared on the fly (a new
        run's, so no `vocab` given); else the text read into memory."""
        if self.prepared is not None:
            return load_prepared(self.prepared, vocab)
        path = self.train_path
        if vocab is None and tokenizer is None and path.is_file() and path.stat().st_size > PREPARE_ABOVE:
            return prepare_text(path, self.valid, self.tokenizer or FROM_LEVEL[self.level], self.min_freq,
                                self.valid_fraction, self.vocab_size, self.lang)
        return load_corpus(self.train_path, self.valid, self.level, self.min_freq, self.valid_fraction, vocab,
                           tokenizer or self.tokenizer, self.vocab_size, self.lang)

    def batches(self, corpus: LMCorpus) -> tuple[LMStream, LMStream]:
        return (make_stream(corpus.train, self.batch_size, self.bptt),
                make_stream(corpus.valid, min(self.eval_batch_size, max(1, len(corpus.valid) // 2)), self.bptt))


def evaluate(model: nn.Module, task: LMTask, batches, device: str = "auto") -> dict:
    """Metrics of `model` over a stream (state carried from window to window), by the shared Trainer."""
    config = TrainConfig(epochs=0, device=device, progress=False, tensorboard=False)
    with Trainer(model, task, batches, None, config, run_dir=None) as trainer:
        return trainer.evaluate(batches)


def evaluate_file(run_dir, data_path, batch_size: int = 10, bptt: int | None = None) -> dict:
    """Per-token loss and perplexity (words) or bits per character of a trained run on a text file."""
    run = load_run(run_dir)
    tokens = run.task.tokenize(read_text(data_path))
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
    prime_tokens = run.task.tokenize(prime) if prime else []
    start = prime_tokens or [EOS if level == "word" else ("\n" if "\n" in vocab else vocab.itos[-1])]
    run.model.eval()
    ids = generate(run.model, vocab.encode(start), length, num_samples, options, seed)
    return [run.task.detokenize(prime_tokens + vocab.decode(row.tolist())) for row in ids]


# ---- the lifecycle: what language modelling tells the driver (rnnkit.tasks.driver) -----------------------


class LMSpec:
    name, description = "lm", "a language-model run"
    data_config, model_config, train_config = LMDataConfig, RNNLMConfig, TrainConfig
    model_configs = (RNNLMConfig, NPLMConfig)  # --model picks one; the command line offers both's options
    path_fields = ("train", "valid", "prepared")

    def prepare(self, data: LMDataConfig, task: LMTask | None = None) -> LMCorpus:
        if isinstance(task, RunLMTask) and task.prepared_dir is not None and data.prepared is None:
            corpus = load_prepared(task.prepared_dir, task.vocab)  # resumed: the run's own prepared --data
        else:
            corpus = data.load(None if task is None else task.vocab, None if task is None else task.tokenizer)
        corpus.task = LMTask(corpus.vocab, corpus.level, corpus.tokenizer)
        return corpus

    def model_defaults(self, options: dict) -> dict:
        return defaults(MODEL_CONFIGS.get(options.get("model", "rnn"), RNNLMConfig))

    def model_config_for(self, corpus: LMCorpus, options: dict):
        cls = MODEL_CONFIGS.get(options.get("model", "rnn"), RNNLMConfig)
        own = {f.name for f in fields(cls)}
        foreign = sorted(k for k in options if k not in own)
        if foreign:
            raise DataError(f"model: {foreign[0]} does not apply to a model {options.get('model', 'rnn')!r} "
                            f"language model (its options: {', '.join(sorted(own - {'vocab_size'}))})")
        return sized_config(cls, options, vocab_size=len(corpus.vocab))

    def build_model(self, config, corpus: LMCorpus) -> nn.Module:
        return build_model(config)

    def batches(self, corpus: LMCorpus, data: LMDataConfig, seed: int):
        return data.batches(corpus)

    def run_files(self, corpus: LMCorpus, config) -> tuple[dict, dict]:
        files = {"vocab.json": corpus.vocab, **corpus.task.tokenizer_files()}
        if corpus.store is not None:
            files[PREPARED_IN_RUN] = corpus.store
        return files, {"task": corpus.task.to_dict()}

    def load(self, run_dir: Path, config: dict):
        model_config = config_from_dict(config["model"], f"{run_dir / 'config.json'}: model")
        level = task_field(config, run_dir, "level", str)
        if level not in LEVELS:
            raise DataError(f"{run_dir / 'config.json'}: task.level: expected one of {LEVELS}, found {level!r}")
        vocab = load_vocab(run_dir, "vocab.json", model_config.vocab_size, "vocab_size", specials_for(level))
        tokenizer = tokenizer_of(config["task"], run_dir, f"{run_dir / 'config.json'}: task", level=level)
        if (tokenizer.kind == "char") != (level == "char"):
            raise DataError(f"{run_dir / 'config.json'}: task.level: expected "
                            f"{'char' if tokenizer.kind == 'char' else 'word'} for a {tokenizer.kind} tokenizer, "
                            f"found {level!r}")
        if tokenizer.subword and vocab.itos[len(specials_for(level)):] != tokenizer.pieces():
            raise DataError(f"{run_dir / 'vocab.json'}: expected the pieces of {run_dir / tokenizer.file} after "
                            "the specials, found other tokens; the run directory's files do not belong together")
        prepared = run_dir / PREPARED_IN_RUN
        return build_model(model_config), RunLMTask(vocab, level, tokenizer,
                                                    prepared if (prepared / "meta.json").is_file() else None)


class RunLMTask(LMTask):
    """The LMTask of a saved run; `prepared_dir`: RUN_DIR/prepared when the run prepared its --data on the fly
    (resume trains from it again instead of re-reading the text)."""

    def __init__(self, vocab: Vocab, level: str, tokenizer: Tokenizer | None = None, prepared_dir: Path | None = None):
        super().__init__(vocab, level, tokenizer)
        self.prepared_dir = prepared_dir


SPEC = LMSpec()


def load_run(run_dir, weights: str = "best", device: str = "cpu") -> LoadedRun:
    """Rebuild a trained language model from RUN_DIR (no pickle, no user code): config.json, vocab.json
    and `best.safetensors` (or `weights.safetensors` with weights="last")."""
    return driver.load_run(run_dir, weights, device, SPEC)


def fit(run_dir, data: LMDataConfig, model_config, train: TrainConfig, corpus: LMCorpus | None = None,
        overwrite: bool = False, callbacks=()) -> list[dict]:
    """Train a language model from scratch into RUN_DIR with the shared Trainer; returns its history.

    `model_config.vocab_size` must match the corpus vocabulary (load the corpus first with `data.load()`).
    A time budget is `train.max_minutes`: a deadline the Trainer checks after every step."""
    corpus = corpus or data.load()
    corpus.task = LMTask(corpus.vocab, corpus.level, corpus.tokenizer)
    return driver.fit(SPEC, run_dir, data, model_config, train, overwrite=overwrite, prepared=corpus,
                      callbacks=callbacks)


def resume(run_dir, epochs: int | None = None, **train_changes) -> list[dict]:
    """Continue the run saved in RUN_DIR exactly where its last checkpoint stopped."""
    return driver.resume(run_dir, SPEC, epochs, **train_changes)
