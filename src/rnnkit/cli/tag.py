"""`rnnkit train tag`, and `rnnkit predict` / `rnnkit eval` for tagging runs.

Parses arguments and calls the library (`rnnkit.tasks.tag`, `rnnkit.data.conll`).
"""
from __future__ import annotations

import sys

from rnnkit.cli.common import add_train_options, cell_names, positive_int, print_history, print_metrics, train_config


def register(train_sub, sub) -> None:
    p = train_sub.add_parser("tag", help="train a sequence tagger (POS from CoNLL-U, NER from CoNLL BIO/IOBES)")
    p.add_argument("--data", help="training file: CoNLL-U or CoNLL columns (UTF-8, or .gz)")
    p.add_argument("--valid", help="validation file in the same format (the best epoch is kept by its metric)")
    p.add_argument("--format", choices=["conllu", "conll"], default="conllu")
    p.add_argument("--column", choices=["upos", "xpos"], default="upos", help="conllu: which tags to learn")
    p.add_argument("--scheme", choices=["bio", "iobes", "none"], default="bio",
                   help="conll: tag scheme to check (entity P/R/F1 unless none)")
    p.add_argument("--min-freq", type=positive_int, default=1, help="rarer training words become <unk>")
    p.add_argument("--chars", action="store_true", help="add a character-level BiLSTM word encoder")
    p.add_argument("--lower", action="store_true", help="lower-case the words for the word embeddings")
    p.add_argument("--crf", action="store_true", help="a linear-chain CRF output layer (Viterbi decoding)")
    p.add_argument("--cell", choices=cell_names(), default="lstm")
    p.add_argument("--layers", type=positive_int, default=1)
    p.add_argument("--hidden", type=positive_int, default=100, help="units per direction")
    p.add_argument("--emb", type=positive_int, default=100, help="word embedding size")
    p.add_argument("--char-emb", type=positive_int, default=30)
    p.add_argument("--char-hidden", type=positive_int, default=50, help="character BiLSTM units per direction")
    p.add_argument("--dropout", type=float, default=0.33)
    p.add_argument("--word-dropout", type=float, default=0.25, help="alpha: p(<unk>) = alpha / (alpha + count)")
    add_train_options(p, lr=5e-3, out="runs/tag", clip_help="max gradient norm (loss summed over each sentence)")
    p.set_defaults(run=run_train_tag)


def run_train_tag(args) -> int:
    from rnnkit.cli.common import UsageError
    from rnnkit.tasks import tag

    if args.resume:
        print_history(tag.resume(args.resume))
        return 0
    if not args.data:
        raise UsageError("rnnkit train tag: error: --data is required (a CoNLL-U or CoNLL training file)")
    data = tag.TagDataConfig(train=args.data, valid=args.valid, format=args.format, column=args.column,
                             scheme=args.scheme, min_freq=args.min_freq, chars=args.chars, lower=args.lower,
                             batch_size=args.batch_size)
    corpus = tag.load_corpus(data)
    model_config = tag.model_config_for(
        corpus, data.metric, cell=args.cell, layers=args.layers, hidden=args.hidden, emb=args.emb,
        char_emb=args.char_emb, char_hidden=args.char_hidden, dropout=args.dropout, crf=args.crf,
        word_dropout=args.word_dropout)
    print(f"data: {args.data} ({len(corpus.train):,} sentences), valid: {args.valid or 'none'}, "
          f"vocabulary {len(corpus.words):,}, {len(corpus.tags)} tags", file=sys.stderr)
    print_history(tag.fit(args.out, data, model_config, train_config(args), corpus))
    print(f"run saved in {args.out}", file=sys.stderr)
    return 0


def add_predict_args(p) -> None:
    """`rnnkit predict RUN_DIR --input FILE`: tag raw text (one sentence per line) or a CoNLL(-U) file."""
    p.add_argument("--input", required=True, help="the file to tag")
    p.add_argument("--format", choices=["text", "conll", "conllu"], default=None,
                   help="text: whitespace-tokenised, one sentence per line; conll/conllu: written back with "
                        "the predicted tags in place of the tag column (default: by the file name's ending, "
                        ".conllu[.gz] or .conll[.gz], else text)")
    p.add_argument("--one-per-line", action="store_true", help="text: `token<TAB>TAG` lines instead of token/TAG")
    p.add_argument("--output", help="write here instead of stdout")
    p.add_argument("--batch-size", type=positive_int, default=128)


def predict(args) -> int:
    from rnnkit.data.conll import format_sentences, read_sentences
    from rnnkit.tasks import tag

    run = tag.load_run(args.run_dir)
    column = run.config["data"].get("column", "upos")
    fmt = args.format or _format_of(args.input)
    sentences = read_sentences(args.input, fmt, column=column, require_tags=False)
    tags = tag.predict(run, sentences, args.batch_size)
    text = format_sentences(sentences, tags, fmt, column, args.one_per_line)
    if args.output:
        from rnnkit.train import atomic_write_bytes

        atomic_write_bytes(args.output, text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    return 0


def _format_of(path: str) -> str:
    name = path[:-3] if path.endswith(".gz") else path
    return "conllu" if name.endswith(".conllu") else "conll" if name.endswith(".conll") else "text"


def add_eval_args(p) -> None:
    """`rnnkit eval RUN_DIR --data FILE`: accuracy (and entity P/R/F1) on a gold-tagged file."""
    p.add_argument("--data", required=True, help="gold-tagged file in the run's training format")
    p.add_argument("--batch-size", type=positive_int, default=128)


def evaluate(args) -> int:
    from rnnkit.tasks import tag

    metrics = tag.evaluate_file(args.run_dir, args.data, args.batch_size)
    print_metrics(metrics)
    return 0
