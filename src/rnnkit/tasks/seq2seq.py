"""Sequence→sequence (encoder–decoder with attention) and one→sequence models.

Encoder (x_1 .. x_S the source tokens; D = 2 directions if bidirectional):

    s_j = Recurrent(cell)(E_src x_j)                  (B, S, D·H), padding handled with lengths=
    h_0 = tanh(W_b [h_S^fwd; h_1^bwd] + b_b)          bridge: encoder final state -> decoder initial state, per layer

One→sequence: a fixed vector v (an image feature, ...) replaces the source: h_0 = tanh(W_b v + b_b), and with
attention the memory is the single position m_1 = W_m v.

Decoder (Luong et al. 2015, "global attention"), y_0 = <bos>:

    s_t = Recurrent(cell)([E_tgt y_{t-1}; h̃_{t-1}], s_{t-1})   h̃_{t-1} only with input feeding
    α_t = softmax_j score(s_t, s_j)   over the non-padding source positions   (rnnkit.nn.attention)
    c_t = Σ_j α_tj s_j
    h̃_t = tanh(W_c [c_t; s_t])                                   attention "none": h̃_t = s_t (Sutskever et al. 2014)
    p(y_t | y_<t, x) = softmax(W_o h̃_t + b_o)

Training uses teacher forcing: y_{t-1} is the reference token, or, with probability 1 − teacher_forcing, the
model's own previous argmax (per sentence and step; <pad> and <bos> excluded). Without input feeding and
with teacher_forcing = 1 the decoder RNN runs over the whole target in one fused call and attention is computed
for all t at once; else `decode_step` runs step by step (the function greedy and beam search use; tests check
that both paths agree).

Loss: target NLL summed over the tokens of each sentence (<eos> included, padding excluded) and averaged
over the B sentences (the language models' convention; clip = 5 applies). Reported per token: loss, ppl
(and acc, on evaluation only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import opt
from rnnkit.data import BOS, PAD, UNK, DataError, Vocab
from rnnkit.data.tokenizers import FROM_LEVEL, Tokenizer, tokenizer_of
from rnnkit.nn.attention import ATTENTIONS, NEEDS_EQUAL_SIZES, make_attention
from rnnkit.nn.cells import LSTMState, map_state
from rnnkit.tasks import driver
from rnnkit.tasks.driver import cell_names, model_from, sized_config
from rnnkit.tasks.runs import LoadedRun, load_vocab, task_field
from rnnkit.tasks.seq2seq_data import SPECIALS, Seq2SeqBatch, Seq2SeqData, collate  # noqa: F401 (re-exported)
from rnnkit.train import TrainConfig


def attention_names() -> tuple[str, ...]:
    """--attention's choices: the registry rnnkit.nn.attention.ATTENTIONS, and "none"."""
    return (*ATTENTIONS, "none")


@dataclass
class Seq2SeqConfig:
    """Configuration of `Seq2Seq`, saved as config.json["model"]. `feature_size` > 0: one→sequence."""

    tgt_vocab_size: int = field(metadata=opt(cli=False))
    src_vocab_size: int = field(default=0, metadata=opt(cli=False))
    feature_size: int = field(default=0, metadata=opt(cli=False))
    cell: str = field(default="gru", metadata=opt("recurrent cell of encoder and decoder", choices=cell_names))
    emb: int = field(default=128, metadata=opt("embedding size"))
    hidden: int = field(default=128, metadata=opt("hidden units (per encoder direction)"))
    layers: int = field(default=1, metadata=opt("stacked layers of encoder and decoder"))
    bidirectional: bool = field(default=True, metadata=opt("bidirectional encoder", negative="--unidirectional"))
    attention: str = field(default="additive", metadata=opt("attention score (none: Sutskever et al.'s model)",
                                                            choices=attention_names))
    attention_hidden: int | None = field(default=None, metadata=opt(
        "A of the feed-forward scores (none: the hidden size)"))
    input_feeding: bool = field(default=False, metadata=opt("Luong input feeding"))
    dropout: float = field(default=0.0, metadata=opt("on embeddings, between layers and before the output"))
    teacher_forcing: float = field(default=1.0, metadata=opt("probability of feeding the reference token"))

    def __post_init__(self):
        if self.attention not in (*ATTENTIONS, "none"):
            raise ValueError(f"unknown attention {self.attention!r}; expected one of {', '.join(ATTENTIONS)}, none")
        if (self.src_vocab_size > 0) == (self.feature_size > 0):
            raise ValueError("set exactly one of src_vocab_size (sequence→sequence) and feature_size (one→sequence),"
                             f" got {self.src_vocab_size} and {self.feature_size}")
        for name in ("tgt_vocab_size", "emb", "hidden", "layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be in [0, 1], got {self.teacher_forcing}")

    @property
    def one_to_seq(self) -> bool:
        return self.feature_size > 0


@dataclass
class Seq2SeqOutput:
    loss: Tensor
    logits: Tensor  # (B, T, V)
    attention: Tensor | None  # (B, T, S)
    state: Any
    stats: dict


class Memory(NamedTuple):
    """What the decoder attends to: values (B, S, H_k), the keys' precomputed score half, mask (B, S)."""

    values: Tensor | None
    prepared: Tensor | None
    mask: Tensor | None


class DecoderState(NamedTuple):
    """The decoder's state, a value: rnn (L, B, H) or LSTMState; feed (B, H) = h̃_{t-1} (input feeding)."""

    rnn: Any
    feed: Tensor | None


def reorder_state(state: DecoderState, index: Tensor) -> DecoderState:
    """Rows `index` of every tensor of the state (beam search): one index_select per tensor."""
    rnn = map_state(state.rnn, lambda s: s.index_select(1, index))
    return DecoderState(rnn, None if state.feed is None else state.feed.index_select(0, index))


def reorder_memory(memory: Memory, index: Tensor) -> Memory:
    return Memory(*(None if m is None else m.index_select(0, index) for m in memory))


class Seq2Seq(nn.Module):
    """Encoder–decoder with optional attention (see the module docstring); `forward(batch)` -> Seq2SeqOutput."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        from rnnkit import Recurrent

        self.config = c = config
        H, D = c.hidden, (2 if c.bidirectional else 1)
        parts = 2 if c.cell in ("lstm", "ln-lstm") else 1  # the bridge makes h (and c for LSTMs)
        self.drop = nn.Dropout(c.dropout)
        key_size = H
        if c.one_to_seq:
            self.bridge = nn.Linear(c.feature_size, c.layers * parts * H)
            self.feature_memory = nn.Linear(c.feature_size, H) if c.attention != "none" else None
        else:
            self.src_embedding = nn.Embedding(c.src_vocab_size, c.emb, padding_idx=0)
            self.encoder = Recurrent(c.cell, c.emb, H, num_layers=c.layers, batch_first=True,
                                     dropout=c.dropout if c.layers > 1 else 0.0, bidirectional=c.bidirectional)
            self.bridge = nn.Linear(D * H, parts * H)
            needs_proj = c.attention in NEEDS_EQUAL_SIZES and D * H != H
            self.memory_proj = nn.Linear(D * H, H, bias=False) if needs_proj else None
            key_size = H if needs_proj else D * H
        feeding = c.input_feeding and c.attention != "none"
        self.tgt_embedding = nn.Embedding(c.tgt_vocab_size, c.emb, padding_idx=0)
        self.decoder = Recurrent(c.cell, c.emb + (H if feeding else 0), H, num_layers=c.layers, batch_first=True,
                                 dropout=c.dropout if c.layers > 1 else 0.0)
        if c.attention != "none":
            self.attention = make_attention(c.attention, H, key_size, c.attention_hidden)
            self.combine = nn.Linear(key_size + H, H)
        else:
            self.attention = None
        self.out = nn.Linear(H, c.tgt_vocab_size)

    # -- encoder -----------------------------------------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Memory, DecoderState]:
        """Source ids (B, S) with lengths (B,), or vectors (B, F) -> (memory, initial decoder state)."""
        c = self.config
        if c.one_to_seq:
            return self._encode_vector(src)
        out, h = self.encoder(self.drop(self.src_embedding(src)), lengths=src_lengths)  # (B, S, D·H)
        D, L, B = (2 if c.bidirectional else 1), c.layers, src.shape[0]
        last = map_state(h, lambda s: s.view(L, D, B, c.hidden).permute(0, 2, 1, 3).reshape(L, B, D * c.hidden))
        if isinstance(last, LSTMState):  # h and c through the same bridge layer: [W_h; W_c] [h_S; h_1]
            init = LSTMState(torch.tanh(self.bridge(last.h)[..., : c.hidden]),
                             torch.tanh(self.bridge(last.c)[..., c.hidden:]))
        else:
            init = torch.tanh(self.bridge(last))  # (L, B, H)
        memory = Memory(None, None, None)
        if self.attention is not None:
            values = out if self.memory_proj is None else self.memory_proj(out)
            mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_lengths.to(src.device)[:, None]
            memory = Memory(values, self.attention.prepare(values), mask)  # (B, S, H_k), ..., (B, S)
        return memory, self._initial(init, B, out)

    def _encode_vector(self, v: Tensor) -> tuple[Memory, DecoderState]:
        c, B = self.config, v.shape[0]
        parts = torch.tanh(self.bridge(v)).view(B, c.layers, -1, c.hidden).permute(2, 1, 0, 3)  # (P, L, B, H)
        init = LSTMState(parts[0].contiguous(), parts[1].contiguous()) if parts.shape[0] == 2 else parts[0].contiguous()
        memory = Memory(None, None, None)
        if self.attention is not None:
            values = self.feature_memory(v).unsqueeze(1)  # (B, 1, H)
            memory = Memory(values, self.attention.prepare(values), torch.ones(B, 1, dtype=torch.bool,
                                                                                device=v.device))
        return memory, self._initial(init, B, v)

    def _initial(self, rnn_state, B: int, like: Tensor) -> DecoderState:
        feeding = self.config.input_feeding and self.attention is not None
        return DecoderState(rnn_state, like.new_zeros(B, self.config.hidden) if feeding else None)

    # -- decoder -----------------------------------------------------------------------------------------------
    def _attend(self, s: Tensor, memory: Memory) -> tuple[Tensor, Tensor | None]:
        """s (B, T, H) -> h̃ (B, T, H) and α (B, T, S); without attention h̃ = s."""
        if self.attention is None:
            return s, None
        ctx, weights = self.attention(s, memory.values, memory.mask, memory.prepared)
        return torch.tanh(self.combine(torch.cat([ctx, s], dim=-1))), weights

    def decode_step(self, y_prev: Tensor, state: DecoderState, memory: Memory):
        """One step: previous tokens (B,) -> logits (B, V), new state, attention weights (B, S) or None."""
        e = self.drop(self.tgt_embedding(y_prev))  # (B, E)
        if state.feed is not None:
            e = torch.cat([e, state.feed], dim=-1)
        s, rnn = self.decoder(e.unsqueeze(1), state.rnn)  # (B, 1, H)
        h, weights = self._attend(s, memory)
        logits = self.out(self.drop(h)).squeeze(1)
        feed = h.squeeze(1) if state.feed is not None else None
        return logits, DecoderState(rnn, feed), None if weights is None else weights.squeeze(1)

    def decode(self, tgt_in: Tensor, state: DecoderState, memory: Memory, teacher_forcing: float = 1.0):
        """Teacher-forced decoding of tgt_in (B, T) -> logits (B, T, V), attention (B, T, S) or None."""
        if state.feed is None and teacher_forcing >= 1.0:  # every step's input is known: one fused call
            s, _ = self.decoder(self.drop(self.tgt_embedding(tgt_in)), state.rnn)  # (B, T, H)
            h, weights = self._attend(s, memory)
            return self.out(self.drop(h)), weights
        logits, weights = [], []
        y = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            step_logits, state, w = self.decode_step(y, state, memory)
            logits.append(step_logits)
            weights.append(w)
            if t + 1 < tgt_in.shape[1]:
                y = tgt_in[:, t + 1]
                if teacher_forcing < 1.0:  # per sentence: the reference token, or the model's own argmax
                    own = torch.rand(y.shape[0], device=y.device) >= teacher_forcing
                    y = torch.where(own, _own_prediction(step_logits), y)
        return torch.stack(logits, 1), None if weights[0] is None else torch.stack(weights, 1)

    def forward(self, batch: Seq2SeqBatch, state=None) -> Seq2SeqOutput:
        memory, init = self.encode(batch.src, batch.src_lengths)
        ratio = self.config.teacher_forcing if self.training else 1.0
        logits, weights = self.decode(batch.tgt_in, init, memory, ratio)
        B, T, V = logits.shape
        nll = F.cross_entropy(logits.reshape(B * T, V).float(), batch.tgt_out.reshape(B * T), ignore_index=0,
                              reduction="sum")
        real = batch.tgt_out != 0
        stats = {"nll": nll.detach(), "tokens": real.sum()}
        if not self.training:  # accuracy on evaluation only: an argmax over (B, T, V) costs ~10% of a step
            stats["correct"] = ((logits.argmax(-1) == batch.tgt_out) & real).sum()
        return Seq2SeqOutput(nll / B, logits, weights, None, stats)


def _own_prediction(logits: Tensor) -> Tensor:
    """argmax over the tokens a search may output (not <pad>, not <bos>), as rnnkit.tasks.decode does."""
    logits = logits.detach().clone()
    logits[:, [SPECIALS.index(PAD), SPECIALS.index(BOS)]] = float("-inf")
    return logits.argmax(-1)


# ---- the task: data, metrics, run directories ------------------------------------------------------------


class Seq2SeqTask:
    """Reports per-token loss, perplexity and (on evaluation) accuracy of the reference targets (teacher forcing)."""

    name = "seq2seq"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(self, src_vocab: Vocab | None, tgt_vocab: Vocab, level: str = "word", lowercase: bool = False,
                 max_len: int | None = 100, src_tokenizer: Tokenizer | None = None,
                 tgt_tokenizer: Tokenizer | None = None):
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.level, self.lowercase, self.max_len = level, lowercase, max_len
        self.tgt_tokenizer = tgt_tokenizer or Tokenizer(FROM_LEVEL.get(level, "whitespace"))
        self.src_tokenizer = src_tokenizer or (self.tgt_tokenizer if tgt_tokenizer else
                                               Tokenizer(FROM_LEVEL.get(level, "whitespace")))

    @property
    def joint(self) -> bool:
        """One subword model for both sides (saved once, as tokenizer.model)."""
        return self.src_tokenizer is self.tgt_tokenizer and self.tgt_tokenizer.subword

    def tokenize(self, line: str) -> list[str]:
        """A source sentence -> its tokens, as the run's training data was tokenised."""
        return self.src_tokenizer.encode(line.lower() if self.lowercase else line)

    def detokenize(self, tokens: list[str]) -> str:
        """Output tokens -> text (sentencepiece / moses detokenisation, or joined words / characters)."""
        return self.tgt_tokenizer.decode(tokens)

    def tokenizer_files(self) -> dict:
        """{file name: tokenizer} of the subword models to save in the run directory."""
        return {t.file: t for t in {id(t): t for t in (self.src_tokenizer, self.tgt_tokenizer)}.values() if t.subword}

    def summarize(self, totals: dict) -> dict:
        tokens = max(float(totals["tokens"]), 1.0)
        loss = float(totals["nll"]) / tokens
        metrics = {"loss": loss, "ppl": math.exp(min(loss, 700.0))}
        if "correct" in totals:
            metrics["acc"] = float(totals["correct"]) / tokens
        return metrics

    def to_dict(self) -> dict:
        return {"name": self.name, "level": self.level, "lowercase": self.lowercase, "max_len": self.max_len,
                "one_to_seq": self.src_vocab is None, "joint": self.joint,
                "tokenizer": {"src": self.src_tokenizer.to_dict(), "tgt": self.tgt_tokenizer.to_dict()}}


# ---- the lifecycle: what seq2seq tells the driver (rnnkit.tasks.driver) ------------------------------------


@dataclass
class Seq2SeqCorpus:
    """`Seq2SeqData.load()`'s vocabularies and encoded examples, with the task the Trainer summarizes."""

    src_vocab: Vocab | None
    tgt_vocab: Vocab
    train: list
    valid: list | None
    task: Seq2SeqTask


def corpus_of(data: Seq2SeqData, loaded) -> Seq2SeqCorpus:
    """`loaded`: what `data.load()` returns (the tokenizers last; without them, those `data` names)."""
    src_vocab, tgt_vocab, train, valid, *rest = loaded
    src_tok, tgt_tok = rest[0] if rest and rest[0] is not None else (None, None)
    if tgt_tok is None and data.tokenizer_kind in ("whitespace", "char"):
        src_tok = tgt_tok = None  # the task builds them from the level
    return Seq2SeqCorpus(src_vocab, tgt_vocab, train, valid,
                         Seq2SeqTask(src_vocab, tgt_vocab, data.task_level, data.lowercase, data.max_len,
                                     src_tok, tgt_tok))


class Seq2SeqSpec:
    name, description = "seq2seq", "a seq2seq run"
    data_config, model_config, train_config = Seq2SeqData, Seq2SeqConfig, TrainConfig
    path_fields = ("data", "valid_data", "src", "tgt", "valid_src", "valid_tgt", "features", "valid_features")

    def prepare(self, data: Seq2SeqData, task: Seq2SeqTask | None = None) -> Seq2SeqCorpus:
        if task is None:
            return corpus_of(data, data.load())
        return corpus_of(data, data.load((task.src_vocab, task.tgt_vocab), (task.src_tokenizer, task.tgt_tokenizer)))

    def model_config_for(self, corpus: Seq2SeqCorpus, options: dict) -> Seq2SeqConfig:
        one_to_seq = corpus.src_vocab is None
        return sized_config(Seq2SeqConfig, options, tgt_vocab_size=len(corpus.tgt_vocab),
                            src_vocab_size=0 if one_to_seq else len(corpus.src_vocab),
                            feature_size=len(corpus.train[0][0]) if one_to_seq else 0)

    def build_model(self, config: Seq2SeqConfig, corpus: Seq2SeqCorpus) -> Seq2Seq:
        return Seq2Seq(config)

    def batches(self, corpus: Seq2SeqCorpus, data: Seq2SeqData, seed: int):
        return data.batches(corpus.train, corpus.valid, seed)

    def run_files(self, corpus: Seq2SeqCorpus, config: Seq2SeqConfig) -> tuple[dict, dict]:
        return ({"src_vocab.json": corpus.src_vocab, "tgt_vocab.json": corpus.tgt_vocab,
                 **corpus.task.tokenizer_files()}, {"task": corpus.task.to_dict()})

    def load(self, run_dir: Path, config: dict) -> tuple[Seq2Seq, Seq2SeqTask]:
        model_config = model_from(self, run_dir, config)
        one_to_seq = task_field(config, run_dir, "one_to_seq", bool, False)
        src_vocab = None
        if not one_to_seq:
            src_vocab = load_vocab(run_dir, "src_vocab.json", model_config.src_vocab_size, "src_vocab_size", SPECIALS)
        tgt_vocab = load_vocab(run_dir, "tgt_vocab.json", model_config.tgt_vocab_size, "tgt_vocab_size", SPECIALS)
        for name, vocab in (("src_vocab.json", src_vocab), ("tgt_vocab.json", tgt_vocab)):
            if vocab is not None and vocab.unk != UNK:  # the decoder relies on <pad> <unk> <bos> <eos> = 0..3
                raise DataError(f"{run_dir / name}: unk: expected {UNK!r}, found {vocab.unk!r}")
        max_len = task_field(config, run_dir, "max_len", (int, type(None)), 100)
        level = task_field(config, run_dir, "level", str)
        src_tok, tgt_tok = load_tokenizers(run_dir, config, level)
        for name, vocab, tok in (("src_vocab.json", src_vocab, src_tok), ("tgt_vocab.json", tgt_vocab, tgt_tok)):
            if vocab is not None and tok.subword and vocab.itos[len(SPECIALS):] != tok.pieces():
                raise DataError(f"{run_dir / name}: expected the pieces of {run_dir / tok.file} after the "
                                f"specials, found other tokens; the run directory's files do not belong together")
        task = Seq2SeqTask(src_vocab, tgt_vocab, level, task_field(config, run_dir, "lowercase", bool, False),
                           max_len, src_tok, tgt_tok)
        return Seq2Seq(model_config), task


def load_tokenizers(run_dir: Path, config: dict, level: str) -> tuple[Tokenizer, Tokenizer]:
    """The (source, target) tokenizers of a saved run; a run of an older rnnkit: the ones its level means."""
    where = f"{run_dir / 'config.json'}: task"
    saved = config["task"].get("tokenizer")
    if saved is None:
        tok = tokenizer_of({}, run_dir, where, level=level)
        return tok, tok
    if not isinstance(saved, dict) or not isinstance(saved.get("tgt"), dict):
        raise DataError(f"{where}.tokenizer: expected an object with src and tgt tokenizers, found {saved!r}")
    tgt = Tokenizer.from_dict(saved["tgt"], run_dir, f"{where}.tokenizer.tgt")
    if task_field(config, run_dir, "joint", bool, False):
        return tgt, tgt
    return Tokenizer.from_dict(saved.get("src"), run_dir, f"{where}.tokenizer.src"), tgt


SPEC = Seq2SeqSpec()


def fit(run_dir, data: Seq2SeqData, train: TrainConfig, loaded=None, overwrite: bool = False, callbacks=(),
        **model_options) -> list[dict]:
    """Train into RUN_DIR with the shared Trainer (rnnkit.tasks.driver.fit); `model_options` are Seq2SeqConfig
    fields (vocabulary sizes are filled in from the data). `loaded` = the result of `data.load()`, to avoid
    reading twice."""
    corpus = corpus_of(data, loaded or data.load())
    return driver.fit(SPEC, run_dir, data, model_options, train, overwrite=overwrite, prepared=corpus,
                      callbacks=callbacks)


def model_config_for(data: Seq2SeqData, src_vocab, tgt_vocab, train_examples, **options) -> Seq2SeqConfig:
    return SPEC.model_config_for(corpus_of(data, (src_vocab, tgt_vocab, train_examples, None)), options)


def resume(run_dir, epochs: int | None = None, **train_changes) -> list[dict]:
    """Continue the run in RUN_DIR where its last checkpoint stopped."""
    return driver.resume(run_dir, SPEC, epochs, **train_changes)


def load_run(run_dir, weights: str | None = "best", device: str = "cpu") -> LoadedRun:
    """Rebuild a trained model from RUN_DIR (config.json, vocabularies, best/last safetensors; no pickle).
    weights=None: freshly initialised weights."""
    return driver.load_run(run_dir, weights, device, SPEC)
