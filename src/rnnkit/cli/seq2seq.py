"""`rnnkit train seq2seq`, `rnnkit translate` and `rnnkit eval` for seq2seq runs.

Parses arguments and calls the library (`rnnkit.tasks.seq2seq`, `rnnkit.tasks.decode`).
"""
from __future__ import annotations

import sys

from rnnkit.cli.common import (
    UsageError,
    add_train_options,
    cell_names,
    positive_int,
    print_history,
    print_metrics,
    train_config,
)

ATTENTION_CHOICES = ("additive", "additive-product", "dot", "cosine", "bilinear", "hard", "none")


def register(train_sub, sub) -> None:
    p = train_sub.add_parser("seq2seq", help="train an encoder-decoder (sequence or vector -> sequence)",
                             description="Encoder-decoder with attention. Files: one sentence per line, "
                             "UTF-8 or .gz; line i of --src is the translation of line i of --tgt.")
    p.add_argument("--src", help="source sentences (omit with --features: one->sequence)")
    p.add_argument("--tgt", help="target sentences")
    p.add_argument("--valid-src", help="validation source sentences")
    p.add_argument("--valid-tgt", help="validation target sentences")
    p.add_argument("--features", help="one->sequence: .npy or CSV, one input vector per --tgt line")
    p.add_argument("--valid-features", help="one->sequence: vectors for --valid-tgt")
    p.add_argument("--level", choices=["word", "char"], default="word", help="whitespace words or characters")
    p.add_argument("--lowercase", action="store_true")
    p.add_argument("--max-len", type=positive_int, default=100, help="longer sentences are truncated (warning)")
    p.add_argument("--min-freq", type=positive_int, default=1, help="rarer tokens become <unk>")
    p.add_argument("--cell", choices=cell_names(), default="gru")
    p.add_argument("--layers", type=positive_int, default=1)
    p.add_argument("--hidden", type=positive_int, default=128)
    p.add_argument("--emb", type=positive_int, default=128)
    p.add_argument("--unidirectional", action="store_true", help="one-directional encoder (default: bi)")
    p.add_argument("--attention", choices=ATTENTION_CHOICES, default="additive")
    p.add_argument("--attention-hidden", type=positive_int, default=None, help="A of the feed-forward scores")
    p.add_argument("--input-feeding", action="store_true", help="Luong input feeding")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--teacher-forcing", type=float, default=1.0, help="probability of feeding the reference token")
    add_train_options(p, out="runs/seq2seq", clip=5.0, batch_size=32,
                      clip_help="max gradient norm (loss summed over target tokens, averaged over sentences)")
    p.set_defaults(run=run_train)

    p = sub.add_parser("translate", help="translate stdin (one sentence per line) with a seq2seq run")
    p.add_argument("run_dir")
    p.add_argument("--input", help="read sentences from this file instead of stdin (one->sequence: .npy/CSV)")
    _add_search_args(p)
    p.add_argument("--replace-unk", action="store_true", help="<unk> -> the most-attended source token")
    p.add_argument("--plot-attention", metavar="PNG", help="write the attention heatmap of one sentence")
    p.add_argument("--plot-line", type=positive_int, default=1, help="which input line to plot (1-based)")
    p.set_defaults(run=run_translate)


def _add_search_args(p) -> None:
    p.add_argument("--beam", type=positive_int, default=1, help="beam size (1: greedy)")
    p.add_argument("--length-penalty", type=float, default=0.0, help="alpha: rank by score / length**alpha")
    p.add_argument("--max-len-a", type=float, default=1.5, help="max output length = a * source length + b")
    p.add_argument("--max-len-b", type=int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)


def add_eval_args(p) -> None:
    """`rnnkit eval RUN_DIR --src FILE --tgt FILE`: BLEU, chrF (sacrebleu) and perplexity."""
    p.add_argument("--src", required=True, help="source sentences (one->sequence runs: the vectors file)")
    p.add_argument("--tgt", required=True, help="reference translations")
    _add_search_args(p)
    p.add_argument("--replace-unk", action="store_true")


def evaluate(args) -> int:
    from rnnkit.tasks.decode import evaluate_files

    metrics = evaluate_files(args.run_dir, args.src, args.tgt, args.beam, args.length_penalty, args.batch_size,
                             args.replace_unk, args.max_len_a, args.max_len_b)
    print_metrics(metrics)
    return 0


def run_train(args) -> int:
    from rnnkit.tasks import seq2seq

    if args.resume:
        print_history(seq2seq.resume(args.resume))
        return 0
    if args.tgt is None or (args.src is None) == (args.features is None):
        raise UsageError("rnnkit train seq2seq: error: give --tgt and exactly one of --src and --features")
    data = seq2seq.Seq2SeqData(src=args.src, tgt=args.tgt, valid_src=args.valid_src, valid_tgt=args.valid_tgt,
                               features=args.features, valid_features=args.valid_features, level=args.level,
                               lowercase=args.lowercase, max_len=args.max_len, min_freq=args.min_freq,
                               batch_size=args.batch_size)
    loaded = data.load()
    src_vocab, tgt_vocab, train_ex, valid_ex = loaded
    print(f"data: {len(train_ex):,} pairs, vocabularies {len(src_vocab) if src_vocab else 0:,} / "
          f"{len(tgt_vocab):,}; valid: {len(valid_ex) if valid_ex else 0:,} pairs", file=sys.stderr)
    options = dict(cell=args.cell, emb=args.emb, hidden=args.hidden, layers=args.layers,
                   bidirectional=not args.unidirectional, attention=args.attention,
                   attention_hidden=args.attention_hidden, input_feeding=args.input_feeding, dropout=args.dropout,
                   teacher_forcing=args.teacher_forcing)
    print_history(seq2seq.fit(args.out, data, train_config(args), loaded, **options))
    print(f"run saved in {args.out}", file=sys.stderr)
    return 0


def run_translate(args) -> int:
    from rnnkit.data.parallel import read_lines, read_vectors
    from rnnkit.tasks.decode import plot_attention, translate
    from rnnkit.tasks.seq2seq import load_run

    run = load_run(args.run_dir)
    if run.task.src_vocab is None:
        if args.input is None:
            raise UsageError("rnnkit translate: error: a one->sequence run needs --input VECTORS.npy|.csv")
        sources = list(read_vectors(args.input))
    else:
        sources = read_lines(args.input) if args.input else [line.rstrip("\r\n") for line in sys.stdin]
    if args.plot_attention and args.plot_line > len(sources):
        raise UsageError(f"rnnkit translate: error: --plot-line {args.plot_line} but the input has "
                         f"{len(sources)} lines")
    results = translate(run, sources, args.beam, args.length_penalty, args.max_len_a, args.max_len_b,
                        args.replace_unk, args.batch_size)
    for r in results:
        print(r.text)
    if args.plot_attention:
        plot_attention(results[args.plot_line - 1], args.plot_attention)
        print(f"attention of line {args.plot_line} written to {args.plot_attention}", file=sys.stderr)
    return 0
