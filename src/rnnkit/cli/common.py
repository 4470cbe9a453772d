"""What every `rnnkit` sub-command shares: the one-line-error parser, argument types, and the training
options of `rnnkit train <task>` (one definition, so every task spells --lr, --clip, --resume alike)."""
from __future__ import annotations

import argparse

EXIT_USAGE = 2


class UsageError(Exception):
    """A user mistake: print the message as one line and exit with code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage block) and raise instead of exiting."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")


def make_parser(**kwargs) -> Parser:
    return Parser(**kwargs)


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected an integer > 0, got {text}")
    return value


def cell_names() -> list[str]:
    from rnnkit import CELLS

    return sorted(CELLS)


def add_train_options(p: argparse.ArgumentParser, *, epochs: int = 10, optimizer: str = "adam",
                      lr: float | None = None, clip: float = 5.0, batch_size: int = 32, out: str = "runs/run",
                      clip_help: str = "max gradient norm") -> None:
    """The Trainer's options (rnnkit.train.TrainConfig), with per-task defaults."""
    from rnnkit.train.config import LR_SCHEDULES, OPTIMIZERS

    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=positive_int, default=batch_size)
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=optimizer)
    g.add_argument("--lr", type=float, default=lr, help="default: the optimizer's usual value")
    g.add_argument("--momentum", type=float, default=0.0)
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--clip", type=float, default=clip, help=f"{clip_help}; 0 disables clipping")
    g.add_argument("--clip-mode", choices=["norm", "value"], default="norm",
                   help="clip the global gradient norm, or each gradient entry to [-clip, clip]")
    g.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="none")
    g.add_argument("--lr-factor", type=float, default=0.5)
    g.add_argument("--lr-decay-start", type=int, default=4, help="step schedule: first epoch that decays")
    g.add_argument("--lr-patience", type=int, default=0, help="plateau schedule: epochs to wait")
    g.add_argument("--early-stopping", type=int, default=0, help="stop after N epochs without improvement")
    g.add_argument("--epochs", type=positive_int, default=epochs)
    g.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N batches")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--out", default=out, help="run directory")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (other options ignored)")


def train_config(args):
    """A TrainConfig from the options added by `add_train_options`."""
    from rnnkit.train import TrainConfig

    clip_mode = "none" if args.clip <= 0 else args.clip_mode
    return TrainConfig(epochs=args.epochs, optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                       weight_decay=args.weight_decay, clip=args.clip if args.clip > 0 else 5.0,
                       clip_mode=clip_mode, lr_schedule=args.lr_schedule, lr_factor=args.lr_factor,
                       lr_decay_start=args.lr_decay_start, lr_patience=args.lr_patience,
                       early_stopping=args.early_stopping, checkpoint_every=args.checkpoint_every,
                       seed=args.seed, device=args.device)


def print_metrics(metrics: dict) -> None:
    """`rnnkit eval`'s output: one line of `name value` pairs (machine-readable, 4 decimals)."""
    print(" ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


def print_history(history: list[dict]) -> None:
    """One line per epoch: the training loss and every validation metric."""
    for h in history:
        valid = h.get("valid") or {}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in valid.items() if isinstance(v, (int, float)))
        print(f"epoch {h['epoch']}: train loss {h['train']['loss']:.4f}; valid {shown}")
