"""`rnnkit lab TASK`: train on a long-range problem and print the test metric against its baseline.

    rnnkit lab adding --length 200 --cell irnn --lr 1e-4 --epochs 30 --out runs/adding-irnn
    rnnkit lab copy --length 100 --cell lstm
    rnnkit lab digits --permute --cell gru
    rnnkit report runs/adding-irnn          # loss, gradient flow, gates, spectra, clipping
"""
from __future__ import annotations

import sys

from rnnkit.cli.common import positive_int

PROBLEM_NAMES = ("adding", "copy", "sum", "larger", "digits")


def register(train_sub, sub) -> None:
    from rnnkit.config import add_options
    from rnnkit.lab.tasks import SPEC

    p = sub.add_parser("lab", help="long-range problems: adding, copy, sum, larger, digits (prints the baseline)",
                       description="Train a recurrent network on a synthetic long-range problem, print the test "
                       "metric next to the problem's closed-form baseline, and record gradient diagnostics for "
                       "`rnnkit report`.")
    p.add_argument("task", choices=PROBLEM_NAMES, help="adding (MSE vs 1/6), copy (CE vs 10 ln 8/(T+20)), sum "
                   "(MSE vs 1), larger (accuracy vs 1/2), digits (pixel-by-pixel 8x8 digits, T = 64)")
    p.add_argument("--out", default="runs/lab", help="run directory (default: runs/lab)")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    add_options(p, SPEC.data_config, "data")
    add_options(p, SPEC.model_config, "model")
    add_options(p, SPEC.train_config, "train", title="training")
    p.set_defaults(run=run_lab)


def run_lab(args) -> int:
    import torch

    from rnnkit.config import from_dict, given
    from rnnkit.lab import fit
    from rnnkit.lab.tasks import SPEC

    if args.threads:
        torch.set_num_threads(args.threads)
    data = from_dict(SPEC.data_config, {**given(args, "data"), "problem": args.task}, "command line: data")
    model = from_dict(SPEC.model_config, {**given(args, "model"), "problem": args.task}, "command line: model")
    train = from_dict(SPEC.train_config, given(args, "train"), "command line: train")
    if not train.quiet:
        print(f"{args.task}, T = {data.length}, cell {model.cell}, {model.hidden} hidden units", file=sys.stderr)
    result = fit(args.out, data, model, train, overwrite=args.overwrite)
    if not train.quiet:
        for h in result.history:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in (h["valid"] or {}).items())
            print(f"epoch {h['epoch']}: train loss {h['train']['loss']:.4f}; valid {shown}", file=sys.stderr)
    print(result.line(args.task))
    if not train.quiet:
        print(f"run saved in {args.out} (rnnkit report {args.out})", file=sys.stderr)
    return 0
