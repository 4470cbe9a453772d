"""Optimizer and learning-rate schedule factories (see config.py for the schedules' definitions)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from rnnkit.train.config import TrainConfig


def make_optimizer(params: Iterable[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """The torch optimizer named by ``config.optimizer``, with lr, momentum and weight decay from ``config``."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("make_optimizer: the model has no parameter that requires grad")
    name, lr, wd = config.optimizer, config.lr, config.weight_decay
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    raise ValueError(f"make_optimizer: unknown optimizer {name!r}")


class LRSchedule:
    """Epoch-level learning-rate schedule ("none", "step" or "plateau"); its state is plain JSON.

    Call :meth:`lr_for_epoch` before each epoch (``epoch`` counted from 0) and :meth:`observe` with the
    monitored metric after it. ``observe`` returns True when the metric improved on the best so far.
    """

    def __init__(self, config: TrainConfig, mode: str = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"LRSchedule: mode expected 'min' or 'max', got {mode!r}")
        self.config, self.mode = config, mode
        self.lr = float(config.lr)
        self.best: float | None = None
        self.bad_epochs = 0

    def lr_for_epoch(self, epoch: int) -> float:
        c = self.config
        if c.lr_schedule == "step":
            self.lr = max(c.lr * c.lr_factor ** max(0, epoch + 1 - c.lr_decay_start), c.min_lr)
        return self.lr

    def observe(self, metric: float) -> bool:
        improved = self.best is None or (metric < self.best if self.mode == "min" else metric > self.best)
        if improved:
            self.best, self.bad_epochs = float(metric), 0
            return True
        self.bad_epochs += 1
        c = self.config
        if c.lr_schedule == "plateau" and self.bad_epochs > c.lr_patience:
            self.lr = max(self.lr * c.lr_factor, c.min_lr)
            self.bad_epochs = 0
        return False

    def state_dict(self) -> dict:
        return {"lr": self.lr, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.best, self.bad_epochs = float(state["lr"]), state["best"], int(state["bad_epochs"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
