"""`rnnkit train lm`, `rnnkit sample`, `rnnkit eval` (for lm runs) and `rnnkit demo`.

Parses arguments and calls the library (`rnnkit.tasks.lm`, `rnnkit.generate`).
"""
from __future__ import annotations

import time

from rnnkit.cli.common import add_train_command, positive_int, print_metrics, run_train


def register(train_sub, sub) -> None:
    from rnnkit.tasks.lm import SPEC

    p = add_train_command(train_sub, SPEC, help="train a character- or word-level language model")
    p.set_defaults(run=lambda args: run_train(args, SPEC, _describe))

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


def _describe(corpus) -> str:
    return (f"data: {len(corpus.train):,} {corpus.level} tokens, valid: {corpus.valid_source} "
            f"({len(corpus.valid):,}), vocabulary {len(corpus.vocab):,}")


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
    print(f"\nserve this run: {result['serve']}    then open http://127.0.0.1:8000/ (needs pip install "
          "'rnnkit[serve]')")
    return 0
