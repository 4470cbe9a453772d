"""`rnnkit train tag`, and `rnnkit predict` / `rnnkit eval` for tagging runs.

Parses arguments and calls the library (`rnnkit.tasks.tag`, `rnnkit.data.conll`).
"""
from __future__ import annotations

import sys

from rnnkit.cli.common import add_train_command, positive_int, print_metrics, run_train


def register(train_sub, sub) -> None:
    from rnnkit.tasks.tag import SPEC

    p = add_train_command(train_sub, SPEC, help="train a sequence tagger (POS from CoNLL-U, NER from CoNLL BIO/IOBES)")
    p.set_defaults(run=lambda args: run_train(args, SPEC, _describe))


def _describe(corpus) -> str:
    return (f"data: {len(corpus.train):,} sentences, valid: {len(corpus.valid or []):,} sentences, "
            f"vocabulary {len(corpus.words):,}, {len(corpus.tags)} tags")


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
