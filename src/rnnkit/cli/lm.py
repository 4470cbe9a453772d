"""`rnnkit train lm`, `rnnkit sample`, `rnnkit eval` (for lm runs) and `rnnkit demo`.

Parses arguments and calls the library (`rnnkit.tasks.lm`, `rnnkit.generate`).
"""
from __future__ import annotations

import sys
import time

from rnnkit.cli.common import add_train_options, cell_names, positive_int, print_history, print_metrics, train_config


def register(train_sub, sub) -> None:
    p = train_sub.add_parser("lm", help="train a character- or word-level language model")
    p.add_argument("--data", help="training text (UTF-8, or .gz); default: the bundled tiny Shakespeare")
    p.add_argument("--valid", help="validation text; default: the last --valid-fraction of --data")
    p.add_argument("--valid-fraction", type=float, default=0.1)
    p.add_argument("--level", choices=["char", "word"], default="char")
    p.add_argument("--min-freq", type=positive_int, default=1, help="rarer words become <unk>")
    p.add_argument("--model", choices=["rnn", "nplm"], default="rnn", help="recurrent LM or Bengio's NPLM")
    p.add_argument("--cell", choices=cell_names(), default="lstm")
    p.add_argument("--layers", type=positive_int, default=2)
    p.add_argument("--hidden", type=positive_int, default=128)
    p.add_argument("--emb", type=positive_int, default=None, help="embedding size (default: --hidden)")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--tied", action="store_true", help="tie decoder and embedding weights (needs emb == hidden)")
    p.add_argument("--init-range", type=float, default=0.1, help="uniform(-a, a) init; 0: the layers' default")
    p.add_argument("--context", type=positive_int, default=4, help="nplm: number of previous tokens (n-1)")
    p.add_argument("--no-direct", action="store_true", help="nplm: no direct embedding->output connections")
    p.add_argument("--bptt", type=positive_int, default=64, help="steps per truncated-BPTT window")
    add_train_options(p, out="runs/lm", clip_help="max gradient norm (loss summed over time)")
    p.set_defaults(run=run_train_lm)

    p = sub.add_parser("sample", help="generate text from a trained language model")
    p.add_argument("run_dir")
    p.add_argument("--prime", default="", help="priming text")
    p.add_argument("--length", type=positive_int, default=500, help="tokens to generate")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--num-samples", type=positive_int, default=1)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--greedy", action="store_true")
    p.set_defaults(run=run_sample)

    p = sub.add_parser("demo", help="train a char LSTM on tiny Shakespeare for a few minutes, then sample")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--threads", type=positive_int, default=2)
    p.set_defaults(run=run_demo)


def add_eval_args(p) -> None:
    """`rnnkit eval RUN_DIR --data FILE`: perplexity (words) or bits per character (characters)."""
    p.add_argument("--data", required=True, help="text file to evaluate on")
    p.add_argument("--batch-size", type=positive_int, default=10)
    p.add_argument("--bptt", type=positive_int, default=None)


def evaluate(args) -> int:
    from rnnkit.tasks import lm

    metrics = lm.evaluate_file(args.run_dir, args.data, args.batch_size, args.bptt)
    print_metrics(metrics)
    return 0


def run_train_lm(args) -> int:
    from rnnkit.tasks import lm

    if args.resume:
        print_history(lm.resume(args.resume))
        return 0
    data = lm.LMDataConfig(train=args.data, valid=args.valid, level=args.level, min_freq=args.min_freq,
                           valid_fraction=args.valid_fraction, batch_size=args.batch_size, bptt=args.bptt)
    corpus = data.load()
    model_config = _model_config(args, len(corpus.vocab))
    print(f"data: {data.train_path} ({len(corpus.train):,} {data.level} tokens), valid: {corpus.valid_source} "
          f"({len(corpus.valid):,}), vocabulary {len(corpus.vocab):,}", file=sys.stderr)
    print_history(lm.fit(args.out, data, model_config, train_config(args), corpus))
    print(f"run saved in {args.out}", file=sys.stderr)
    return 0


def _model_config(args, vocab_size: int):
    from rnnkit.tasks.lm import RNNLMConfig
    from rnnkit.tasks.nplm import NPLMConfig

    if args.model == "nplm":
        return NPLMConfig(vocab_size=vocab_size, context=args.context, emb=args.emb or 60, hidden=args.hidden,
                          direct=not args.no_direct, dropout=args.dropout, init_range=args.init_range)
    return RNNLMConfig(vocab_size=vocab_size, cell=args.cell, layers=args.layers, hidden=args.hidden,
                       emb=args.emb or args.hidden, dropout=args.dropout, tied=args.tied,
                       init_range=args.init_range)


def run_sample(args) -> int:
    from rnnkit.generate import SamplingOptions
    from rnnkit.tasks import lm

    options = SamplingOptions(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                              greedy=args.greedy)
    run = lm.load_run(args.run_dir)
    texts = lm.sample_text(run, args.prime, args.length, args.num_samples, options, args.seed)
    print("\n\n".join(texts))
    return 0


def run_demo(args) -> int:
    """The main job: a char LSTM on bundled tiny Shakespeare for a few minutes, then a 300-char sample."""
    import torch

    from rnnkit.demo import run_demo as demo

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    result = demo(args.out, minutes=args.minutes)
    print(f"validation: {result['valid_bpc']:.3f} bits/char ({result['valid_loss']:.3f} nats/char) after "
          f"{result['train_minutes']:.1f} min of training; wall time {time.perf_counter() - start:.0f} s")
    print("sample (temperature 0.8, prime 'ROMEO:'):")
    print(result["sample"])
    return 0
