"""Tokenizers: a run-level choice for every text task (`--tokenizer`), saved with the run and reloaded by
predict / translate / sample / eval / serve, so a run tokenises and detokenises its inputs the way it was
trained.

    kind                    encode(line)                                decode(tokens)
    whitespace              line.split()                                " ".join(tokens)
    char                    list(line.strip())                          "".join(tokens)
    moses                   sacremoses MosesTokenizer(lang)             sacremoses MosesDetokenizer(lang)
    sentencepiece-bpe       the pieces of a sentencepiece BPE model      sentencepiece's decode_pieces
    sentencepiece-unigram   the pieces of a unigram LM model (Kudo 2018) sentencepiece's decode_pieces

The subword models are trained on the run's training data with the `sentencepiece` library
(`train_subword`: character coverage 1.0, NFKC normalisation, one thread, a fixed seed, so the same data
gives the same model) and saved in the run directory as `tokenizer.model` (sentencepiece's own protobuf
file; loading it runs no code). `--vocab-size` N: exactly N pieces, or a one-line error naming the largest
size the data allows; without it, at most 8,000 (fewer when the data has fewer).

The tokens are strings (pieces for the subword kinds), so one `rnnkit.data.Vocab` maps them to ids for every
kind; the vocabulary of a subword run is the model's pieces (`pieces()`), its <unk> the model's <unk>.
A run directory of an older rnnkit has no tokenizer entry: its `level` ("word" / "char") names the kind.
sentencepiece and sacremoses are the extra `rnnkit[text]`; each is imported when first needed.
"""
from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rnnkit.data.text import DataError

KINDS = ("whitespace", "moses", "sentencepiece-bpe", "sentencepiece-unigram", "char")
SUBWORD = ("sentencepiece-bpe", "sentencepiece-unigram")
DEFAULT_SUBWORD_SIZE = 8000
MODEL_FILE = "tokenizer.model"
FROM_LEVEL = {"word": "whitespace", "char": "char"}  # run dirs without a tokenizer entry
SP_TRAIN_SENTENCES = 2_000_000  # sentencepiece trains on at most this many lines (a seeded sample)
SEED = 1234
_TOO_HIGH = re.compile(r"value <= (\d+)")


def _install_hint(module: str) -> DataError:
    return DataError(f"--tokenizer needs the Python package {module!r} (pip install 'rnnkit[text]')")


class Tokenizer:
    """Splits a line into tokens and joins tokens back into text (see the module docstring).

    Args:
        kind: one of KINDS.
        lang: the language code for moses (its non-breaking prefixes and detokenisation rules).
        model: the serialized sentencepiece model (bytes) for the subword kinds.
        file: the model's file name in the run directory.
    """

    def __init__(self, kind: str, lang: str = "en", model: bytes | None = None, file: str = MODEL_FILE):
        if kind not in KINDS:
            raise DataError(f"--tokenizer: expected one of {', '.join(KINDS)}, found {kind!r}")
        if (kind in SUBWORD) != (model is not None):
            raise ValueError(f"tokenizer {kind!r}: a sentencepiece model is given exactly for {SUBWORD}")
        self.kind, self.lang, self.model, self.file = kind, lang, model, file
        self._sp = self._moses = None
        if kind in SUBWORD:
            self._sp = _processor(model, file)
        elif kind == "moses":
            try:
                from sacremoses import MosesDetokenizer, MosesTokenizer
            except ImportError:
                raise _install_hint("sacremoses") from None
            self._moses = (MosesTokenizer(lang), MosesDetokenizer(lang))

    def __repr__(self) -> str:
        return f"Tokenizer({self.kind!r}{', ' + str(len(self.pieces())) + ' pieces' if self._sp else ''})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Tokenizer) and (self.kind, self.lang, self.model) ==
                (other.kind, other.lang, other.model))

    @property
    def subword(self) -> bool:
        return self.kind in SUBWORD

    def encode(self, line: str) -> list[str]:
        """One line of text -> its tokens (strings)."""
        if self.kind == "whitespace":
            return line.split()
        if self.kind == "char":
            return list(line.strip())
        if self._sp is not None:
            return self._sp.encode(line, out_type=str) if line.strip() else []
        return self._moses[0].tokenize(line, escape=False)

    def encode_many(self, lines: list[str]) -> list[list[str]]:
        """`encode` of every line (the subword kinds encode the whole list in one call)."""
        if self._sp is not None:
            return self._sp.encode(lines, out_type=str)
        return [self.encode(line) for line in lines]

    def decode(self, tokens: list[str]) -> str:
        """Tokens -> text (the inverse of `encode` up to whitespace and normalisation)."""
        if self.kind == "whitespace":
            return " ".join(tokens)
        if self.kind == "char":
            return "".join(tokens)
        if self._sp is not None:
            return self._sp.decode_pieces(list(tokens))
        return self._moses[1].detokenize(list(tokens))

    def pieces(self) -> list[str]:
        """The subword model's pieces in id order, its <unk> excluded (the run's vocabulary after its specials)."""
        sp = self._sp
        if sp is None:
            raise ValueError(f"a {self.kind!r} tokenizer has no fixed pieces; build a Vocab from the data")
        return [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_unknown(i) or sp.is_control(i))]

    # ---- the run directory ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        if self.kind == "moses":
            d["lang"] = self.lang
        if self.subword:
            d.update(file=self.file, pieces=len(self.pieces()))
        return d

    def save(self, path: str | os.PathLike) -> None:
        """Write the sentencepiece model to `path` atomically (temp file, then rename); no-op for other kinds."""
        if self.model is None:
            return
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(self.model)
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, d, run_dir, where: str) -> Tokenizer:
        """The tokenizer a run saved: config.json's entry `d` (`where` names it) and its model file."""
        if not isinstance(d, dict) or d.get("kind") not in KINDS:
            kind = d.get("kind") if isinstance(d, dict) else d
            raise DataError(f"{where}: kind: expected one of {', '.join(KINDS)}, found {kind!r}")
        lang = d.get("lang", "en")
        if not isinstance(lang, str):
            raise DataError(f"{where}: lang: expected a language code such as 'en', found {lang!r}")
        if d["kind"] not in SUBWORD:
            return cls(d["kind"], lang)
        file = d.get("file", MODEL_FILE)
        if not isinstance(file, str) or Path(file).name != file:
            raise DataError(f"{where}: file: expected a file name in the run directory, found {file!r}")
        path = Path(run_dir) / file
        try:
            model = path.read_bytes()
        except OSError as e:
            raise DataError(f"{path}: could not read the sentencepiece model ({e.strerror or e}); "
                            f"{where} names it") from None
        return cls(d["kind"], lang, model, file)


def _processor(model: bytes, where: str):
    try:
        import sentencepiece as spm
    except ImportError:
        raise _install_hint("sentencepiece") from None
    sp = spm.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(model)
    except (RuntimeError, OSError) as e:
        raise DataError(f"{where}: expected a sentencepiece model, found bytes it cannot read "
                        f"({str(e).splitlines()[0][:100]})") from None
    return sp


def train_subword(lines: Iterable[str], kind: str, vocab_size: int | None, where: str,
                  file: str = MODEL_FILE) -> Tokenizer:
    """A sentencepiece model of `kind` trained on `lines` (text, one sentence per line; `where` names the data
    in errors). vocab_size None: at most DEFAULT_SUBWORD_SIZE pieces (fewer when the data has fewer);
    a number: exactly that many, else DataError `where: --vocab-size: expected at most M ..., found N`."""
    if kind not in SUBWORD:
        raise ValueError(f"train_subword: kind must be one of {SUBWORD}, got {kind!r}")
    if vocab_size is not None and vocab_size < 2:
        raise DataError(f"--vocab-size: expected at least 2 pieces, found {vocab_size}")
    try:
        import sentencepiece as spm
    except ImportError:
        raise _install_hint("sentencepiece") from None
    sentences = (line for line in lines if line.strip())
    first = next(sentences, None)
    if first is None:
        raise DataError(f"{where}: expected text to train the {kind} tokenizer on, found no non-empty line")
    buf = io.BytesIO()
    spm.set_random_generator_seed(SEED)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=_chain(first, sentences), model_writer=buf, model_type=kind.split("-")[1],
            vocab_size=vocab_size or DEFAULT_SUBWORD_SIZE, hard_vocab_limit=vocab_size is not None,
            character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, num_threads=1,
            input_sentence_size=SP_TRAIN_SENTENCES, shuffle_input_sentence=True, max_sentence_length=1 << 16,
            train_extremely_large_corpus=False, minloglevel=2)
    except RuntimeError as e:
        found = _TOO_HIGH.search(str(e))
        if found:
            raise DataError(f"{where}: --vocab-size: expected at most {found.group(1)} pieces (what this data "
                            f"allows for {kind}), found {vocab_size}") from None
        raise DataError(f"{where}: sentencepiece could not train a {kind} model "
                        f"({str(e).splitlines()[0][:160]})") from None
    return Tokenizer(kind, model=buf.getvalue(), file=file)


def _chain(first: str, rest):
    yield first
    yield from rest


def make_tokenizer(kind: str, lines_for_training=None, vocab_size: int | None = None, where: str = "",
                   lang: str = "en", file: str = MODEL_FILE) -> Tokenizer:
    """The tokenizer of `kind`; the subword kinds are trained on `lines_for_training` (a callable returning
    an iterable of lines, called only for them)."""
    if kind in SUBWORD:
        return train_subword(lines_for_training(), kind, vocab_size, where, file)
    if vocab_size is not None:
        raise DataError(f"--vocab-size applies to the subword tokenizers ({', '.join(SUBWORD)}), "
                        f"not to --tokenizer {kind}")
    return Tokenizer(kind, lang)


def tokenizer_of(task_dict: dict, run_dir, where: str, key: str = "tokenizer", level: str | None = None) -> Tokenizer:
    """A saved run's tokenizer: config.json's task[key], or for a run without one (older rnnkit) the
    tokenizer its `level` meant."""
    d = task_dict.get(key)
    if d is None:
        kind = FROM_LEVEL.get(level or "word")
        if kind is None:
            raise DataError(f"{where}: level: expected one of {', '.join(FROM_LEVEL)}, found {level!r}")
        return Tokenizer(kind)
    return Tokenizer.from_dict(d, run_dir, f"{where}.{key}")
