"""A language-model corpus prepared once, read as a memory map: `rnnkit prepare lm --data FILE... --out DIR`.

    info = prepare_lm(["wiki.train.txt"], "corpus/", tokenizer="whitespace")     # one streaming pass
    corpus = open_prepared("corpus/")       # corpus.train, corpus.valid: np.memmap of token ids
    stream = MappedLMStream(corpus.train, batch_size=32, bptt=64)                # rnnkit.data.streams

DIR holds

    meta.json          format, dtype, token counts, level, tokenizer, sources (what `open_prepared` checks)
    vocab.json         the vocabulary (rnnkit.data.Vocab), specials <unk> <eos> first
    tokenizer.model    the sentencepiece model (subword tokenizers only)
    train.bin          the training tokens' ids, raw little-endian uint16 (when the vocabulary has at most
                       65,536 entries) or uint32
    valid.bin          the validation tokens' ids (--valid FILE, else the last --valid-fraction of the text)

The token stream and the vocabulary are exactly those of the in-memory path (`rnnkit.tasks.lm.load_corpus`)
on the same text: char tokens are every character; other tokenizers give each non-blank line's tokens and
<eos>; the vocabulary holds the specials, then the training tokens seen at least `min_freq` times by
decreasing count (ties by the token), tokens of the held-out tail not counted. Word and char corpora are
read once: tokens get provisional ids while the text streams by (written to disk as uint32), and one pass
over those ids (not over the text) maps them to the final ids. Whitespace words are cut and looked up with
NumPy, characters mapped by their code points (`rnnkit.data.word_ids`; a piece holding a character str.split
treats specially goes through Python's str.split instead, with the same result). Subword
tokenizers read the text twice (training the model on a seeded sample of at most 2M lines, then encoding).
Memory holds one chunk of text and the vocabulary, never the corpus. Everything is written into a temporary
directory beside DIR and renamed into place at the end, so an error never leaves a half-written DIR.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.data.text import DataError, iter_chunks, read_json
from rnnkit.data.tokenizers import MODEL_FILE, SUBWORD, Tokenizer, make_tokenizer
from rnnkit.data.vocab import EOS, UNK, Vocab
from rnnkit.data.word_ids import CharIds, WordIds

FORMAT = "rnnkit.prepared-lm/1"
SPECIALS_WORD, SPECIALS_CHAR = (UNK, EOS), (UNK,)
_BLOCK = 1 << 22  # ids per block when remapping the provisional ids


def specials_for(level: str) -> tuple[str, ...]:
    """`<unk>` at both levels (characters unseen in training map to it); `<eos>` ends each line of words."""
    return SPECIALS_CHAR if level == "char" else SPECIALS_WORD


def level_of(tokenizer: Tokenizer) -> str:
    return "char" if tokenizer.kind == "char" else "word"


def stream_tokens(text: str, tokenizer: Tokenizer) -> list[str]:
    """The LM token stream of `text`: every character (char, newlines included, as char-rnn), else the tokens
    of each non-blank line followed by <eos> (pytorch/examples word_language_model)."""
    if tokenizer.kind == "char":
        return list(text)
    lines = [line for line in text.splitlines() if line and not line.isspace()]
    if not lines:
        return []
    if tokenizer.kind == "whitespace":  # one split of the whole chunk: the fast path
        return ("\n" + EOS + "\n").join(lines).split() + [EOS]
    tokens: list[str] = []
    for toks in tokenizer.encode_many(lines):
        if toks:
            tokens.extend(toks)
            tokens.append(EOS)
    return tokens


def subword_vocab(tokenizer: Tokenizer) -> Vocab:
    return Vocab([*SPECIALS_WORD, *tokenizer.pieces()])


@dataclass
class PreparedLM:
    """An opened prepared corpus (see the module docstring)."""

    path: Path
    meta: dict
    vocab: Vocab
    tokenizer: Tokenizer
    train: np.ndarray  # np.memmap, (N_train,)
    valid: np.ndarray  # np.memmap, (N_valid,)

    @property
    def level(self) -> str:
        return level_of(self.tokenizer)

    @property
    def valid_source(self) -> str:
        return self.meta["valid_source"]


# ---- writing -----------------------------------------------------------------------------------------------


def _check_inputs(files, valid, out: Path, overwrite: bool) -> None:
    for f in [*files, *([valid] if valid else [])]:
        p = Path(f)
        if not p.is_file():
            raise DataError(f"{p}: file not found (expected UTF-8 text, optionally .gz)" if not p.exists() else
                            f"{p}: is a directory (expected UTF-8 text, optionally .gz)")
    if out.exists() and not overwrite:
        raise DataError(f"{out}: already exists (expected a new directory for the prepared corpus; "
                        "--overwrite replaces an earlier one)")
    if out.exists() and not (out / "meta.json").is_file():
        raise DataError(f"{out}: exists and is not a prepared corpus (no meta.json); choose another --out")


class _Provisional:
    """Token -> provisional id (a dict whose missing keys get the next id), shared by the Python and the
    NumPy (`WordIds`) paths."""

    def __init__(self):
        self.ids: defaultdict = defaultdict()
        self.ids.default_factory = self.ids.__len__

    def encode(self, tokens: list[str]) -> np.ndarray:
        return np.fromiter(map(self.ids.__getitem__, tokens), dtype=np.uint32, count=len(tokens))


def _write_stream(files, tokenizer: Tokenizer, sink, encode, fast) -> int:
    """Stream every file's tokens through `encode` (tokens -> ids) into the open binary file `sink`; `fast`
    (whitespace words, characters: rnnkit.data.word_ids) encodes a chunk directly when it can (else None)."""
    n = 0
    for f in files:
        for chunk in iter_chunks(f, "UTF-8 text (a language-model corpus)"):
            ids = None if fast is None else fast(chunk)
            if ids is None:
                ids = encode(stream_tokens(chunk.text, tokenizer))
            sink.write(ids.tobytes())
            n += len(ids)
    return n


def numpy_path(kind: str, ids: dict):
    """chunk -> its provisional ids (or None: use Python) without a Python object per token, for the kinds
    rnnkit.data.word_ids handles (whitespace words, characters); None for the others."""
    if kind == "whitespace":
        words = WordIds(ids)
        return lambda chunk: words.encode(chunk.raw)
    if kind == "char":
        chars = CharIds(ids)
        return lambda chunk: chars.encode(chunk.text)
    return None


def _final_vocab(counts: np.ndarray, prov: dict, specials, min_freq: int) -> tuple[Vocab, np.ndarray]:
    """The vocabulary Vocab.build would give from the counts, and the provisional -> final id table."""
    tokens = list(prov)  # provisional id order
    by_token = np.empty(len(tokens), np.int64)
    by_token[sorted(range(len(tokens)), key=tokens.__getitem__)] = np.arange(len(tokens))  # rank of each token
    keep = counts >= min_freq
    keep[[prov[t] for t in specials if t in prov]] = False
    kept = np.flatnonzero(keep)
    kept = kept[np.lexsort((by_token[kept], -counts[kept]))]  # by decreasing count, ties by the token
    vocab = Vocab([*specials, *map(tokens.__getitem__, kept.tolist())])
    table = np.full(len(tokens), vocab.stoi[UNK], dtype=np.uint32)
    table[kept] = np.arange(len(specials), len(specials) + len(kept))
    for t in specials:
        if t in prov:
            table[prov[t]] = vocab.stoi[t]
    return vocab, table


def _dtype(vocab: Vocab) -> np.dtype:
    return np.dtype("<u2") if len(vocab) <= 1 << 16 else np.dtype("<u4")


def _blocks(path: Path, start: int, stop: int):
    """The uint32 ids start .. stop-1 of the file, _BLOCK at a time (read, not mapped: the file's pages stay
    in the page cache and out of this process's memory)."""
    with open(path, "rb") as f:
        f.seek(4 * start)
        for s in range(start, stop, _BLOCK):
            yield np.fromfile(f, np.uint32, min(_BLOCK, stop - s))


def _copy_mapped(blocks, dst_path: Path, dtype, table: np.ndarray | None) -> None:
    with open(dst_path, "wb") as f:
        for block in blocks:
            f.write((table[block] if table is not None else block).astype(dtype).tobytes())


def prepare_lm(files, out, tokenizer: str = "whitespace", vocab_size: int | None = None, min_freq: int = 1,
               valid: str | None = None, valid_fraction: float = 0.1, lang: str = "en",
               overwrite: bool = False) -> PreparedLM:
    """Prepare FILES (concatenated, in order) into OUT; see the module docstring. Returns the opened corpus."""
    files, out = [str(f) for f in files], Path(out)
    if not files:
        raise DataError("prepare lm: expected at least one --data file, found none")
    if not 0.0 < valid_fraction < 1.0:
        raise DataError(f"--valid-fraction: expected a number in (0, 1), found {valid_fraction}")
    if min_freq < 1:
        raise DataError(f"--min-freq: expected an integer >= 1, found {min_freq}")
    _check_inputs(files, valid, out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    start, cpu = time.perf_counter(), time.process_time()
    try:
        tok = make_tokenizer(tokenizer, lambda: _lines(files), vocab_size, ", ".join(files), lang)
        level = level_of(tok)
        meta = _write_corpus(files, valid, valid_fraction, tok, min_freq, tmp)
        tok.save(tmp / MODEL_FILE)
        bytes_read = sum(_size_of(f) for f in files) + (_size_of(valid) if valid else 0)
        meta.update(format=FORMAT, level=level, tokenizer=tok.to_dict(), min_freq=min_freq,
                    sources=[str(Path(f).resolve()) for f in files], text_bytes=bytes_read,
                    seconds=round(time.perf_counter() - start, 3), cpu_seconds=round(time.process_time() - cpu, 3))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp/mkstemp make private files; a corpus is meant to be shared (read-only)
        for f in tmp.iterdir():
            f.chmod(0o644)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return open_prepared(out)


def _size_of(path) -> int:
    """Bytes of text read (uncompressed size of a .gz is not known without reading it: the file size)."""
    return Path(path).stat().st_size


def _lines(files):
    for f in files:
        for chunk in iter_chunks(f, "UTF-8 text (a language-model corpus)"):
            yield from chunk.text.splitlines()


def _write_corpus(files, valid, valid_fraction, tok: Tokenizer, min_freq: int, tmp: Path) -> dict:
    if tok.kind in SUBWORD:  # the vocabulary is the model's pieces: final ids at once
        vocab, table, fast = subword_vocab(tok), None, None
        encode = lambda tokens: np.asarray(vocab.encode(tokens), dtype=np.uint32)  # noqa: E731
    else:
        prov = _Provisional()
        encode = prov.encode
        fast = numpy_path(tok.kind, prov.ids)
    with open(tmp / "all.u32", "wb") as sink:
        n = _write_stream(files, tok, sink, encode, fast)
        n_valid_file = _write_stream([valid], tok, sink, encode, fast) if valid else 0
    total, ids = n + n_valid_file, tmp / "all.u32"
    if valid:
        n_train, valid_source = n, str(Path(valid).resolve())
    else:
        n_valid = max(1, int(n * valid_fraction))
        n_train, valid_source = n - n_valid, f"last {valid_fraction:.0%} of {files[-1]}"
    if n_train < 2 or total - n_train < 2:
        raise DataError(f"{', '.join(files)}: expected at least 2 training and 2 validation tokens, found "
                        f"{n_train} and {total - n_train}")
    if tok.kind not in SUBWORD:
        counts = np.zeros(len(prov.ids), dtype=np.int64)
        for block in _blocks(ids, 0, n_train):
            counts += np.bincount(block, minlength=len(prov.ids))
        vocab, table = _final_vocab(counts, prov.ids, specials_for(level_of(tok)), min_freq)
    dtype = _dtype(vocab)
    _copy_mapped(_blocks(ids, 0, n_train), tmp / "train.bin", dtype, table)
    _copy_mapped(_blocks(ids, n_train, total), tmp / "valid.bin", dtype, table)
    ids.unlink()
    vocab.save(tmp / "vocab.json")
    return {"dtype": dtype.str, "vocab_size": len(vocab), "valid_source": valid_source,
            "train": {"file": "train.bin", "tokens": int(n_train)},
            "valid": {"file": "valid.bin", "tokens": int(total - n_train)}}


# ---- reading -----------------------------------------------------------------------------------------------


def is_prepared(path) -> bool:
    return (Path(path) / "meta.json").is_file()


def open_prepared(path) -> PreparedLM:
    """The corpus in PATH, its arrays memory-mapped read-only; DataError naming the file and the field when
    PATH is not a complete prepared corpus."""
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise DataError(f"{path}: not a prepared corpus (no meta.json; expected the --out of `rnnkit prepare lm`)")
    meta = read_json(meta_path, f"a prepared corpus description (format {FORMAT!r})")
    where = str(meta_path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise DataError(f"{where}: format: expected {FORMAT!r}, found {found!r}")
    if meta.get("dtype") not in ("<u2", "<u4"):
        raise DataError(f"{where}: dtype: expected '<u2' or '<u4', found {meta.get('dtype')!r}")
    tok = Tokenizer.from_dict(meta.get("tokenizer"), path, f"{where}: tokenizer")
    level = level_of(tok)
    vocab = Vocab.load(path / "vocab.json", specials_for(level))
    if len(vocab) > (1 << 16 if meta["dtype"] == "<u2" else 1 << 32):
        raise DataError(f"{where}: dtype: {meta['dtype']} cannot hold the {len(vocab):,} ids of vocab.json")
    if tok.subword and vocab.itos[len(SPECIALS_WORD):] != tok.pieces():
        raise DataError(f"{path / 'vocab.json'}: expected the pieces of {path / tok.file} after the specials, "
                        "found other tokens; the directory's files do not belong together")
    arrays = [_open_array(path, meta, split, np.dtype(meta["dtype"])) for split in ("train", "valid")]
    return PreparedLM(path, meta, vocab, tok, *arrays)


def _open_array(path: Path, meta: dict, split: str, dtype) -> np.ndarray:
    entry = meta.get(split)
    where = f"{path / 'meta.json'}: {split}"
    if not isinstance(entry, dict) or not isinstance(entry.get("tokens"), int) or entry.get("file") != f"{split}.bin":
        raise DataError(f"{where}: expected {{\"file\": \"{split}.bin\", \"tokens\": N}}, found {entry!r}")
    file = path / entry["file"]
    size = file.stat().st_size if file.is_file() else None
    if size != entry["tokens"] * dtype.itemsize:
        found = "no such file" if size is None else f"{size:,} bytes"
        raise DataError(f"{file}: expected {entry['tokens']:,} tokens of {dtype.itemsize} bytes "
                        f"({entry['tokens'] * dtype.itemsize:,} bytes), found {found}")
    if entry["tokens"] < 2:
        raise DataError(f"{where}: expected at least 2 tokens, found {entry['tokens']}")
    return np.memmap(file, dtype=dtype, mode="r")
