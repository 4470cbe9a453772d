"""`rnnkit lab TASK`: train on a long-range problem and print the test metric against its baseline.

    rnnkit lab adding --length 200 --cell irnn --lr 1e-4 --epochs 30 --out runs/adding-irnn
    rnnkit lab copy --length 100 --cell lstm
    rnnkit lab digits --permute --cell gru
    rnnkit report runs/adding-irnn          # loss, gradient flow, gates, spectra, clipping
"""
from __future__ import annotations

import sys

from rnnkit.cli.common import UsageError, add_train_options, positive_int, train_config

LAB_CELLS = ("irnn", "lstm", "gru", "rnn-tanh", "rnn-relu", "gru-before", "ln-lstm", "rnn-hardtanh", "rnn-sigmoid")
PROBLEM_NAMES = ("adding", "copy", "sum", "larger", "digits")


def register(train_sub, sub) -> None:
    p = sub.add_parser("lab", help="long-range problems: adding, copy, sum, larger, digits (prints the baseline)",
                       description="Train a recurrent network on a synthetic long-range problem, print the test "
                       "metric next to the problem's closed-form baseline, and record gradient diagnostics for "
                       "`rnnkit report`.")
    p.add_argument("task", choices=PROBLEM_NAMES, help="adding (MSE vs 1/6), copy (CE vs 10 ln 8/(T+20)), sum "
                   "(MSE vs 1), larger (accuracy vs 1/2), digits (pixel-by-pixel 8x8 digits, T = 64)")
    p.add_argument("--length", type=positive_int, default=100, help="T, the range of the dependency")
    p.add_argument("--cell", choices=LAB_CELLS, default="lstm")
    p.add_argument("--hidden", type=positive_int, default=100)
    p.add_argument("--layers", type=positive_int, default=1)
    p.add_argument("--forget-bias", type=float, default=1.0, help="LSTM forget-gate bias at initialisation")
    p.add_argument("--batches-per-epoch", type=positive_int, default=100, help="fresh batches per epoch")
    p.add_argument("--valid-size", type=positive_int, default=1000)
    p.add_argument("--test-size", type=positive_int, default=2000)
    p.add_argument("--permute", action="store_true", help="digits: a seeded fixed permutation of the pixels")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    add_train_options(p, epochs=20, optimizer="adam", lr=1e-3, clip=1.0, batch_size=50, out="runs/lab",
                      clip_help="max gradient norm (the loss is a mean: ~1)", diagnostics_every=50)
    p.set_defaults(run=run_lab)


def run_lab(args) -> int:
    import torch

    from rnnkit.lab import LabDataConfig, LabModelConfig, fit

    if args.resume:
        raise UsageError("rnnkit lab: --resume is not supported (lab runs are short; start again)")
    if args.diagnostics_every < 0:
        raise UsageError(f"rnnkit lab: --diagnostics-every expected >= 0, got {args.diagnostics_every}")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = LabDataConfig(args.task, length=args.length, batch_size=args.batch_size,
                         batches_per_epoch=args.batches_per_epoch, valid_size=args.valid_size,
                         test_size=args.test_size, permute=args.permute, seed=args.data_seed)
    model = LabModelConfig(args.task, cell=args.cell, hidden=args.hidden, layers=args.layers,
                           forget_bias=args.forget_bias)
    print(f"{args.task}, T = {data.length}, cell {args.cell}, {args.hidden} hidden units", file=sys.stderr)
    result = fit(args.out, data, model, train_config(args), diagnostics_every=args.diagnostics_every)
    for h in result.history:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in (h["valid"] or {}).items())
        print(f"epoch {h['epoch']}: train loss {h['train']['loss']:.4f}; valid {shown}", file=sys.stderr)
    print(result.line(args.task))
    print(f"run saved in {args.out} (rnnkit report {args.out})", file=sys.stderr)
    return 0
