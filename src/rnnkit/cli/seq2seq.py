"""`rnnkit train seq2seq`, `rnnkit translate` and `rnnkit eval` for seq2seq runs.

Parses arguments and calls the library (`rnnkit.tasks.seq2seq`, `rnnkit.tasks.decode`).
"""
from __future__ import annotations

import sys

from rnnkit.cli.common import UsageError, add_train_command, positive_int, print_metrics, run_train


def register(train_sub, sub) -> None:
    from rnnkit.tasks.seq2seq import SPEC

    p = add_train_command(train_sub, SPEC, help="train an encoder-decoder (sequence or vector -> sequence)",
                          description="Encoder-decoder with attention. Data: --data pairs.tsv (source<TAB>target "
                          "per line), or --src and --tgt (one sentence per line; line i of --src is the "
                          "translation of line i of --tgt); UTF-8 or .gz. Default tokenizer: one "
                          "sentencepiece BPE model of at most 8000 pieces for both sides.")
    p.set_defaults(run=lambda args: run_train(args, SPEC, _describe))

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
    signatures = {k: metrics.pop(k) for k in ("bleu_signature", "chrf_signature")}
    tokenized = metrics.pop("bleu_tok")
    print_metrics(metrics)
    print(f"sacrebleu: {signatures['bleu_signature']} | {signatures['chrf_signature']}")
    print(f"bleu_tok {tokenized:.4f} (BLEU on the run's own tokens; not comparable across tokenizers)")
    return 0


def _describe(corpus) -> str:
    src = len(corpus.src_vocab) if corpus.src_vocab is not None else 0
    return (f"data: {len(corpus.train):,} pairs, vocabularies {src:,} / {len(corpus.tgt_vocab):,}; valid: "
            f"{len(corpus.valid) if corpus.valid else 0:,} pairs")


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
