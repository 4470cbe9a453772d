"""Seq2seq data: sentence pairs (a TSV file or two line-aligned files) or vectors and sentences, their
tokenizers and vocabularies (`Seq2SeqData`), and padded batches (`collate`). See rnnkit.tasks.seq2seq."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from rnnkit.config import opt
from rnnkit.data import BOS, EOS, PAD, UNK, PaddedBatches, Vocab, pad
from rnnkit.data.parallel import (
    ParallelText,
    RawPairs,
    parse_columns,
    read_line_pairs,
    read_lines,
    read_tsv_pairs,
    read_vectors_and_targets,
    split_pairs,
    tokenize_pairs,
)
from rnnkit.data.tokenizers import FROM_LEVEL, KINDS, Tokenizer, make_tokenizer

SPECIALS = (PAD, UNK, BOS, EOS)  # indices 0, 1, 2, 3 in both vocabularies


@dataclass
class Seq2SeqBatch:
    src: Tensor  # (B, S) source ids, or (B, F) vectors (one→sequence)
    src_lengths: Tensor  # (B,)
    tgt_in: Tensor  # (B, T) <bos> y_1 .. y_n, padded
    tgt_out: Tensor  # (B, T) y_1 .. y_n <eos>, padded



def collate(examples: list) -> Seq2SeqBatch:
    """Examples (source ids or a vector, target ids) -> padded batch; targets get <bos> / <eos> (ids 2 / 3)."""
    bos, eos = SPECIALS.index(BOS), SPECIALS.index(EOS)
    tgt_in, _ = pad([[bos, *t] for _, t in examples], 0)
    tgt_out, _ = pad([[*t, eos] for _, t in examples], 0)
    first = examples[0][0]
    if isinstance(first, np.ndarray):
        src = torch.from_numpy(np.stack([s for s, _ in examples]))
        return Seq2SeqBatch(src, torch.ones(len(examples), dtype=torch.long), tgt_in, tgt_out)
    src, lengths = pad([s for s, _ in examples], 0)
    return Seq2SeqBatch(src, lengths, tgt_in, tgt_out)


def _example_length(example) -> int:
    src, tgt = example
    return len(tgt) if isinstance(src, np.ndarray) else len(src)


@dataclass
class Seq2SeqData:
    """Where the sentence pairs come from and how they are tokenised and batched (config.json["data"]).
    Pairs: one TSV file (`data`, `columns`), or two files with one sentence per line (line i of `src` is the
    translation of line i of `tgt`); UTF-8 or .gz. Without a validation set, a seeded `valid_fraction` of the
    pairs is held out. Tokenizer: sentencepiece BPE with one 8k model and vocabulary for both sides by default
    (rnnkit.data.tokenizers); `level` is the older spelling of --tokenizer whitespace / char."""

    data: str | None = field(default=None, metadata=opt(
        "tab-separated sentence pairs (source, target; .gz ok); or give --src and --tgt"))
    columns: str = field(default="0,1", metadata=opt("source,target columns of --data (1,0 swaps the direction)"))
    valid_data: str | None = field(default=None, metadata=opt("validation pairs, same format as --data"))
    src: str | None = field(default=None, metadata=opt("source sentences (omit with --features: one->sequence)"))
    tgt: str | None = field(default=None, metadata=opt("target sentences"))
    valid_src: str | None = field(default=None, metadata=opt("validation source sentences"))
    valid_tgt: str | None = field(default=None, metadata=opt("validation target sentences"))
    features: str | None = field(default=None, metadata=opt("one->sequence: .npy or CSV, one vector per --tgt line"))
    valid_features: str | None = field(default=None, metadata=opt("one->sequence: vectors for --valid-tgt"))
    tokenizer: str | None = field(default=None, metadata=opt(
        "none: sentencepiece-bpe (or what --level says)", choices=KINDS))
    vocab_size: int | None = field(default=None, metadata=opt(
        "subword pieces (none: at most 8000, fewer if the data has fewer)"))
    joint_vocab: bool = field(default=True, metadata=opt(
        "one subword model and vocabulary for both sides", negative="--separate-vocab"))
    src_lang: str = field(default="en", metadata=opt("source language code (moses)"))
    tgt_lang: str = field(default="en", metadata=opt("target language code (moses)"))
    level: str | None = field(default=None, metadata=opt(
        "older spelling: word = --tokenizer whitespace, char = --tokenizer char", choices=("word", "char")))
    lowercase: bool = field(default=False, metadata=opt("lower-case both sides"))
    max_len: int | None = field(default=100, metadata=opt("longer sentences are truncated (one warning)"))
    min_freq: int = field(default=1, metadata=opt("rarer tokens become <unk>"))
    valid_fraction: float = field(default=0.1, metadata=opt("held out of the pairs when no validation set is given"))
    split_seed: int = field(default=0, metadata=opt("seed of the --valid-fraction split"))
    batch_size: int = field(default=32, metadata=opt("sentence pairs per training batch"))
    eval_batch_size: int = field(default=64, metadata=opt("sentence pairs per evaluation batch"))

    def __post_init__(self):
        if self.data is not None:
            if self.src is not None or self.tgt is not None or self.features is not None:
                raise ValueError("give either --data (a TSV file of pairs) or --src and --tgt, not both")
            if self.valid_src is not None or self.valid_tgt is not None or self.valid_features is not None:
                raise ValueError("with --data, give validation pairs as --valid-data (same format)")
            parse_columns(self.columns)
        elif self.tgt is None or (self.src is None) == (self.features is None):
            raise ValueError("give --data (a TSV file of sentence pairs), or --tgt and exactly one of --src and "
                             "--features (a target file and exactly one of a source file and a feature file)")
        elif self.valid_data is not None:
            raise ValueError("--valid-data goes with --data; with --src/--tgt give --valid-src and --valid-tgt")
        if (self.valid_tgt is None) != (self.valid_src is None and self.valid_features is None):
            raise ValueError("validation needs both sides: --valid-tgt with --valid-src (or --valid-features)")
        if self.level is not None and self.level not in FROM_LEVEL:
            raise ValueError(f"level must be one of word, char, got {self.level!r}")
        if self.tokenizer is not None and self.tokenizer not in KINDS:
            raise ValueError(f"tokenizer must be one of {', '.join(KINDS)}, got {self.tokenizer!r}")
        if self.level is not None and self.tokenizer is not None and FROM_LEVEL[self.level] != self.tokenizer:
            raise ValueError(f"--level {self.level} means --tokenizer {FROM_LEVEL[self.level]}, but --tokenizer "
                             f"{self.tokenizer} was given; give only --tokenizer")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")

    @property
    def tokenizer_kind(self) -> str:
        if self.tokenizer is not None:
            return self.tokenizer
        return FROM_LEVEL[self.level] if self.level is not None else "sentencepiece-bpe"

    @property
    def task_level(self) -> str:
        """config.json's task.level (what older rnnkit reads): char for characters, else word."""
        return "char" if self.tokenizer_kind == "char" else "word"

    @property
    def has_valid(self) -> bool:
        return self.valid_data is not None or self.valid_tgt is not None

    def raw(self, src, tgt) -> RawPairs:
        """Untokenised pairs of a TSV file (tgt None) or of two line-aligned files."""
        return read_tsv_pairs(src, parse_columns(self.columns)) if tgt is None else read_line_pairs(src, tgt)

    def tokenizers(self, train: RawPairs) -> tuple[Tokenizer, Tokenizer]:
        """(source, target) tokenizers, the subword ones trained on the training pairs (lowercased if asked)."""
        kind = self.tokenizer_kind
        low = (lambda x: x.lower()) if self.lowercase else (lambda x: x)  # noqa: E731
        where = train.paths[0] if train.paths[0] == train.paths[1] else ", ".join(train.paths)
        if kind in ("sentencepiece-bpe", "sentencepiece-unigram") and self.joint_vocab and self.features is None:
            joint = make_tokenizer(kind, lambda: (low(x) for side in (train.src, train.tgt) for x in side),
                                   self.vocab_size, where)
            return joint, joint
        src = make_tokenizer(kind, lambda: map(low, train.src), self.vocab_size, train.paths[0], self.src_lang,
                             "src_tokenizer.model")
        tgt = make_tokenizer(kind, lambda: map(low, train.tgt), self.vocab_size, train.paths[1], self.tgt_lang,
                             "tgt_tokenizer.model")
        return src, tgt

    def vocabularies(self, tokenizers, train: ParallelText) -> tuple[Vocab | None, Vocab]:
        src_tok, tgt_tok = tokenizers
        if tgt_tok.subword:  # the pieces of the model(s): a joint model gives one vocabulary for both sides
            tgt = Vocab([*SPECIALS, *tgt_tok.pieces()])
            src = None if self.features is not None else (tgt if src_tok is tgt_tok else
                                                         Vocab([*SPECIALS, *src_tok.pieces()]))
            return src, tgt
        src = None if self.features is not None else Vocab.build((w for s in train.src for w in s), self.min_freq,
                                                                 specials=SPECIALS)
        return src, Vocab.build((w for s in train.tgt for w in s), self.min_freq, specials=SPECIALS)

    def load(self, vocabs: tuple[Vocab | None, Vocab] | None = None, tokenizers=None):
        """-> (src_vocab or None, tgt_vocab, train examples, valid examples or None, (src, tgt) tokenizers).
        `vocabs` and `tokenizers` of a saved run are reused (resume, evaluation)."""
        if self.features is not None:
            return self._load_vectors(vocabs, tokenizers)
        pairs = self.raw(self.data, None) if self.data is not None else self.raw(self.src, self.tgt)
        valid_pairs = None
        if self.valid_data is not None:
            valid_pairs = self.raw(self.valid_data, None)
        elif self.valid_tgt is not None:
            valid_pairs = self.raw(self.valid_src, self.valid_tgt)
        elif self.valid_fraction > 0:  # seeded: a resumed run holds out the same pairs again
            pairs, valid_pairs = split_pairs(pairs, self.valid_fraction, self.split_seed)
        tokenizers = tokenizers or self.tokenizers(pairs)
        train = tokenize_pairs(pairs, *tokenizers, self.lowercase, self.max_len)
        vocabs = vocabs or self.vocabularies(tokenizers, train)
        examples = lambda text: [(vocabs[0].encode(text.src[i]), vocabs[1].encode(text.tgt[i]))  # noqa: E731
                                 for i in range(len(text))]
        valid = None
        if valid_pairs is not None:
            valid = examples(tokenize_pairs(valid_pairs, *tokenizers, self.lowercase, self.max_len))
        return vocabs[0], vocabs[1], examples(train), valid, tokenizers

    def _load_vectors(self, vocabs, tokenizers):
        """One→sequence: vectors and target sentences; the target tokenizer trained on the target lines."""
        if tokenizers is None:
            lines = [x.lower() for x in read_lines(self.tgt)] if self.lowercase else read_lines(self.tgt)
            tgt_tok = make_tokenizer(self.tokenizer_kind, lambda: lines, self.vocab_size, self.tgt, self.tgt_lang)
            tokenizers = (tgt_tok, tgt_tok)
        read = lambda v, t: read_vectors_and_targets(v, t, lowercase=self.lowercase,  # noqa: E731
                                                     max_len=self.max_len, tokenizer=tokenizers[1])
        vectors, train = read(self.features, self.tgt)
        vocabs = vocabs or self.vocabularies(tokenizers, train)
        examples = lambda v, text: [(v[i], vocabs[1].encode(text.tgt[i])) for i in range(len(text))]  # noqa: E731
        pairs, valid = examples(vectors, train), None
        if self.valid_tgt is not None:
            valid = examples(*read(self.valid_features, self.valid_tgt))
        elif self.valid_fraction > 0 and len(pairs) >= 2:
            order = np.random.default_rng(self.split_seed).permutation(len(pairs))
            n_valid = max(1, int(len(pairs) * self.valid_fraction))
            valid = [pairs[i] for i in sorted(order[:n_valid])]
            pairs = [pairs[i] for i in sorted(order[n_valid:])]
        return None, vocabs[1], pairs, valid, tokenizers

    def batches(self, train: list, valid: list | None, seed: int = 0, eval_only: bool = False):
        """(training batches: shuffled, bucketed by length; validation batches: length-sorted, or None).
        eval_only: `train` is evaluated, so it is batched like validation data."""
        def fixed(examples):
            return PaddedBatches(examples, collate, self.eval_batch_size, shuffle=False, length=_example_length)

        if eval_only:
            return fixed(train), None
        return (PaddedBatches(train, collate, self.batch_size, shuffle=True, seed=seed, length=_example_length),
                None if valid is None else fixed(valid))
