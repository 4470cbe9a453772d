"""The Trainer: one training loop for every task (full/truncated BPTT, clipping, schedules, checkpoints, DDP).

It knows optimization, checkpoints, logging and distribution, and nothing about any one task: it needs only
``model(batch, state=None) -> out`` with ``out.loss``, ``out.state``, ``out.stats``; ``Batches`` objects; and
``task.summarize``/``task.monitor``/``task.monitor_mode`` (docs/dev/contracts.md, "Trainer").
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from rnnkit.nn.state import detach_tree, move_to
from rnnkit.train import checkpoint as ckpt
from rnnkit.train import distributed as dist_
from rnnkit.train.config import TrainConfig
from rnnkit.train.optim import LRSchedule, make_optimizer, set_lr
from rnnkit.train.progress import MetricsLog, epoch_line, epoch_progress, print_epoch_summary, progress_mode


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN/inf; the last good checkpoint on disk was kept."""

    def __init__(self, epoch: int, batch: int, loss: float, grad_norm: float, checkpoint: str | None) -> None:
        self.epoch, self.batch, self.loss, self.grad_norm, self.checkpoint = epoch, batch, loss, grad_norm, checkpoint
        kept = f"last good checkpoint kept: {checkpoint}" if checkpoint else "no checkpoint had been written yet"
        super().__init__(
            f"training diverged at epoch {epoch}, batch {batch}: loss={loss}, grad_norm={grad_norm} "
            f"({kept}; try a lower lr or a smaller clip)"
        )


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global RNG and python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


_BATCHES_API = ("__len__", "get", "carries_state", "shard")


def _check_batches(batches: Any, name: str) -> None:
    missing = [a for a in _BATCHES_API if not hasattr(batches, a)]
    if missing:
        raise TypeError(
            f"Trainer: {name} must implement the Batches protocol (len, get(i, epoch), carries_state, "
            f"shard(rank, world_size)); {type(batches).__name__} lacks {', '.join(missing)}"
        )


@dataclass
class _EpochSums:
    """This process's running sums over the batches of the current epoch (saved for mid-epoch resume)."""

    totals: dict[str, float] = field(default_factory=dict)
    grad_norm: float = 0.0
    clipped: int = 0
    steps: int = 0

    def add_stats(self, stats: dict[str, Any]) -> None:
        for key, value in stats.items():
            self.totals[key] = self.totals.get(key, 0.0) + float(value)


class Trainer:
    """Train ``model`` on ``train_batches``, evaluate on ``valid_batches`` after every epoch, write RUN_DIR.

    Args:
        model: an ``nn.Module``; ``model(batch, state=...)`` returns an object with ``loss``, ``state``, ``stats``.
        task: provides ``summarize(totals) -> metrics``, ``monitor`` (metric name; default "loss") and
            ``monitor_mode`` ("min" or "max"; default "min").
        train_batches, valid_batches: ``Batches`` (valid may be None: the training metrics are monitored).
        config: a :class:`TrainConfig`.
        run_dir: where config.json, checkpoints and metrics.jsonl go (None: write nothing).
        callbacks: objects with any of ``on_step(trainer, info)`` (after every update; ``info`` is a dict:
            "epoch" (from 1), "batch", "step" (updates so far, this one included), "loss", "grad_norm" (global
            L2 norm before clipping), "grad_norm_clipped" (after clipping) and "clipped" (whether clipping
            fired); the parameters' ``.grad`` still hold the clipped gradients), ``on_epoch_end(trainer,
            record)`` (``record`` is the epoch's history entry) and ``on_checkpoint(trainer)`` (after every
            checkpoint is on disk, rank 0; the run lifecycle moves a new run into place there). They may add
            records to metrics.jsonl with :meth:`log` (e.g. ``rnnkit.diagnostics``).

    With ``config.diagnostics_every`` > 0 the Trainer adds rnnkit.diagnostics' callbacks itself (unless
    ``callbacks`` already holds them), probing the first validation batch (else the first training batch).

    ``clock`` (default ``time.perf_counter``) is the time source of the deadline (``config.max_minutes``), of
    the "time" of metrics.jsonl and of the progress lines; tests replace it with a fake clock.

    Under torchrun the Trainer joins the process group itself; call :meth:`close` (or use ``with``) at the
    end to leave it.
    """

    def __init__(self, model: torch.nn.Module, task: Any, train_batches: Any, valid_batches: Any = None,
                 config: TrainConfig | None = None, run_dir: str | os.PathLike | None = None,
                 callbacks: list | tuple = ()) -> None:
        self.config = config if config is not None else TrainConfig()
        if not isinstance(self.config, TrainConfig):
            raise TypeError(f"Trainer: config expected a TrainConfig, got {type(self.config).__name__}")
        _check_batches(train_batches, "train_batches")
        if valid_batches is not None:
            _check_batches(valid_batches, "valid_batches")
        if not callable(getattr(task, "summarize", None)):
            raise TypeError(f"Trainer: task must have summarize(totals) -> metrics; {type(task).__name__} has not")
        self.task, self.valid_batches = task, valid_batches
        self.monitor = getattr(task, "monitor", "loss")
        self.monitor_mode = getattr(task, "monitor_mode", "min")
        if self.monitor_mode not in ("min", "max"):
            raise ValueError(f"Trainer: task.monitor_mode expected 'min' or 'max', got {self.monitor_mode!r}")
        self.ctx = dist_.from_env()
        self.device = dist_.pick_device(self.config.device, self.ctx)
        self._owns_group = dist_.init_process_group(self.ctx, self.device)
        self.model = model.to(self.device)
        self.module = self._wrap(self.model)
        self.train_batches = self._shard(train_batches)
        if len(self.train_batches) == 0:
            raise ValueError(f"Trainer: train_batches has no batch (rank {self.ctx.rank} of {self.ctx.world_size}); "
                             "expected at least one (is the training data shorter than one batch?)")
        self.optimizer = make_optimizer(self.model.parameters(), self.config)
        self.schedule = LRSchedule(self.config, self.monitor_mode)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.callbacks = list(callbacks)
        self.clock = time.perf_counter
        self._diagnostics_note = self._add_diagnostics()
        self._log: MetricsLog | None = None
        self._reset_position()

    # ------------------------------------------------------------------ setup

    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.ctx.enabled:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _add_diagnostics(self) -> str | None:
        """rnnkit.diagnostics' callbacks for ``config.diagnostics_every``; returns their note, if any."""
        if not self.config.diagnostics_every:
            return None
        from rnnkit.diagnostics import trainer_callbacks

        source = self.valid_batches if self.valid_batches is not None else self.train_batches
        added, note = trainer_callbacks(self.model, self.config.diagnostics_every, lambda: source.get(0, 0),
                                        self.callbacks)
        self.callbacks += added
        return note

    def _shard(self, batches: Any) -> Any:
        return batches.shard(self.ctx.rank, self.ctx.world_size) if self.ctx.enabled else batches

    def _reset_position(self) -> None:
        self.epoch, self.next_batch, self.step = 0, 0, 0
        self.history: list[dict] = []
        self.stale_epochs, self.stopped = 0, False
        self.stop_reason: str | None = None  # "deadline" or "early_stopping" once fit stops before its epochs
        self.carry: Any = None
        self.sums = _EpochSums()
        self.elapsed = 0.0

    @property
    def writes_files(self) -> bool:
        return self.run_dir is not None and self.ctx.is_main

    def close(self) -> None:
        """Leave the process group if this Trainer created it."""
        if self._owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self._owns_group = False

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ fit

    def fit(self, resume: bool = False) -> list[dict]:
        """Train for ``config.epochs`` epochs (or until early stopping). Returns the history: one dict per
        epoch with "epoch", "step", "lr", "train" and "valid" metrics. With ``resume=True`` continue the run
        saved in ``run_dir`` exactly where its last checkpoint left it (same losses as if never stopped)."""
        if resume:
            self._load_resume()
        else:
            self._start_fresh()
        log = MetricsLog(self.run_dir if self.writes_files else None,
                         tensorboard=self.config.tensorboard, fresh=not resume)
        if resume:
            log.truncate_after(self.step)
        self._started = self.clock() - self.elapsed
        self._log = log
        self._mode = progress_mode(self.config.progress, self.config.quiet, self.ctx.is_main)
        if self._diagnostics_note and not resume:
            self.log({"split": "diagnostics", "kind": "note", "diagnostics": {"note": self._diagnostics_note}})
            if not self.config.quiet and self.ctx.is_main:
                print(self._diagnostics_note, file=sys.stderr)
        try:
            while self.epoch < self.config.epochs and not self.stopped:
                self._train_epoch(log)
                self._end_epoch(log)
        finally:
            log.close()
            self._log = None
        return self.history

    def log(self, record: dict) -> None:
        """Append ``record`` to metrics.jsonl during :meth:`fit` (rank 0 only; ignored outside ``fit``).
        "epoch" (from 1), "step" and "time" are filled in when absent."""
        if self._log is None or not self.ctx.is_main:
            return
        full = {"epoch": self.epoch + 1, "step": self.step, "time": round(self.clock() - self._started, 3)}
        full.update(record)
        self._log.write(full)

    def _start_fresh(self) -> None:
        self._reset_position()
        seed_everything(self.config.seed + self.ctx.rank)
        if self.writes_files:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "checkpoint.safetensors").unlink(missing_ok=True)
            ckpt.update_config_json(self.run_dir, "train", self.config.to_dict())

    def _train_epoch(self, log: MetricsLog) -> None:
        batches, n = self.train_batches, len(self.train_batches)
        set_lr(self.optimizer, self.schedule.lr_for_epoch(self.epoch))
        if self.next_batch == 0:
            self.carry, self.sums = None, _EpochSums()
        self.module.train()
        self._epoch_started, self._epoch_batches = self.clock(), None
        bar = epoch_progress(self._mode, n, self.epoch + 1, self.config.epochs, self.next_batch,
                             self.config.log_every, self.clock, self._deadline())
        try:
            for i in range(self.next_batch, n):
                stats = self._train_step(move_to(batches.get(i, self.epoch), self.device), i)
                bar.update(self._running_metrics, float(stats.get("tokens", 0.0)), self.step)
                if self.config.log_every and self.step % self.config.log_every == 0:
                    log.write(self._record("train_running", self._running_metrics(), bar.tokens_per_second()))
                if i + 1 < n and self._past_deadline():
                    self.stop_reason, self._epoch_batches = "deadline", (i + 1, n)
                    break
                if self.config.checkpoint_every and (i + 1) % self.config.checkpoint_every == 0 and i + 1 < n:
                    self.next_batch = i + 1
                    self._save(best=False)
        finally:
            bar.close()
        self.next_batch = n
        rate = bar.tokens_per_second()  # this process's; all processes run in lockstep under DDP
        self._tokens_per_second = None if rate is None else rate * self.ctx.world_size

    def _deadline(self) -> float | None:
        """The clock's reading at which ``config.max_minutes`` of training time have passed (None: no limit)."""
        minutes = self.config.max_minutes
        return None if minutes is None else self._started + 60.0 * minutes

    def _past_deadline(self) -> bool:
        deadline = self._deadline()
        if deadline is None:
            return False
        past = 1.0 if self.clock() >= deadline else 0.0
        if self.ctx.enabled:  # every rank stops at the same step (the first rank past it decides)
            past = dist_.all_reduce_sum([past], self.ctx, self.device)[0]
        return bool(past)

    def _train_step(self, batch: Any, index: int) -> dict:
        carries = self.train_batches.carries_state
        out = self.module(batch, state=self.carry) if carries else self.module(batch)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm, clipped = self._clip()
        # one device->host copy per step for the loss, the norm and every stat
        keys = list(out.stats)
        loss, norm, clipped, *values = _to_floats([out.loss, grad_norm, clipped, *(out.stats[k] for k in keys)])
        self._check_finite(loss, norm, index)
        self.optimizer.step()
        self.step += 1
        if self.callbacks:
            self._after_step(index, loss, norm, bool(clipped))
        if carries:
            self.carry = detach_tree(out.state)
        stats = dict(zip(keys, values))
        self.sums.add_stats(stats)
        self.sums.grad_norm += norm
        self.sums.clipped += int(bool(clipped))
        self.sums.steps += 1
        return stats

    def _after_step(self, index: int, loss: float, norm: float, clipped: bool) -> None:
        """Call every callback's ``on_step`` with this update's numbers (see the class docstring)."""
        after = norm
        if clipped:
            after = float(_total_norm([p.grad for p in self.model.parameters() if p.grad is not None]))
        info = {"epoch": self.epoch + 1, "batch": index, "step": self.step, "loss": loss, "grad_norm": norm,
                "grad_norm_clipped": after, "clipped": clipped}
        for callback in self.callbacks:
            if hasattr(callback, "on_step"):
                callback.on_step(self, info)

    def _clip(self) -> tuple[torch.Tensor, torch.Tensor | float]:
        """Clip the gradients as configured; return the global L2 norm *before* clipping and whether it fired
        (as tensors, so that the caller reads them with the loss in one device->host copy)."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        mode, clip = self.config.clip_mode, self.config.clip
        if mode == "norm":
            norm = torch.nn.utils.clip_grad_norm_(params, clip)
            return norm, norm > clip
        norm = _total_norm([p.grad for p in params])
        if mode == "value":
            fired = torch.stack([(p.grad.abs() > clip).any() for p in params]).any()
            torch.nn.utils.clip_grad_value_(params, clip)
            return norm, fired
        return norm, 0.0

    def _check_finite(self, loss_value: float, grad_norm: float, index: int) -> None:
        bad = 0.0 if math.isfinite(loss_value) and math.isfinite(grad_norm) else 1.0
        if self.ctx.enabled:  # every rank stops together (a rank alone raising would hang the others)
            bad = dist_.all_reduce_sum([bad], self.ctx, self.device)[0]
        if bad:
            path = self.run_dir / "checkpoint.safetensors" if self.run_dir is not None else None
            kept = str(path) if path is not None and path.exists() else None
            raise TrainingDiverged(self.epoch + 1, index, loss_value, grad_norm, kept)

    def _running_metrics(self) -> dict[str, float]:
        return _floats(self.task.summarize(dict(self.sums.totals))) if self.sums.totals else {}

    def _record(self, split: str, metrics: dict, tokens_per_second: float | None = None) -> dict:
        record = {"epoch": self.epoch + 1, "step": self.step, "split": split,
                  "time": round(self.clock() - self._started, 3), "metrics": metrics}
        if split.startswith("train"):
            steps = max(self.sums.steps, 1)
            record.update(lr=self.optimizer.param_groups[0]["lr"], grad_norm=self.sums.grad_norm / steps,
                          clipped=self.sums.clipped / steps)
            if tokens_per_second is not None:
                record["tokens_per_second"] = round(tokens_per_second, 1)
        return record

    # ------------------------------------------------------------------ end of epoch

    def _end_epoch(self, log: MetricsLog) -> None:
        keys = sorted(self.sums.totals)
        totals = dict(zip(keys, dist_.all_reduce_sum([self.sums.totals[k] for k in keys], self.ctx, self.device)))
        train = _floats(self.task.summarize(totals))
        evaluating = self.clock()
        valid = self.evaluate(self.valid_batches) if self.valid_batches is not None else None
        eval_seconds = self.clock() - evaluating
        monitored = self._monitored(valid if valid is not None else train)
        lr = self.optimizer.param_groups[0]["lr"]
        improved = self.schedule.observe(monitored)
        self.stale_epochs = 0 if improved else self.stale_epochs + 1
        self.stop_reason = self._stop_reason()
        stop = {"stopped": self.stop_reason} if self.stop_reason else {}
        log.write({**self._record("train", train, self._tokens_per_second), **stop})
        if valid is not None:
            log.write(self._record("valid", valid))
        print_epoch_summary(self._mode, epoch_line(
            self.epoch + 1, self.config.epochs, lr, train, valid, improved, self.clock() - self._epoch_started,
            self._tokens_per_second, self.stop_reason, self._epoch_batches,
            eval_seconds if valid is not None else None))
        self.history.append({"epoch": self.epoch + 1, "step": self.step, "lr": lr, "train": train, "valid": valid,
                             "improved": improved, **stop})
        for callback in self.callbacks:
            if hasattr(callback, "on_epoch_end"):
                callback.on_epoch_end(self, self.history[-1])
        self.epoch, self.next_batch, self.carry, self.sums = self.epoch + 1, 0, None, _EpochSums()
        self.stopped = self.stop_reason is not None
        self._save(best=improved)

    def _stop_reason(self) -> str | None:
        """Why training stops after this epoch: "deadline" (cut short by ``max_minutes``, or the deadline passed
        during this epoch's evaluation with epochs left), "early_stopping", or None (go on / the last epoch)."""
        if self.stop_reason == "deadline":
            return "deadline"
        if self.epoch + 1 < self.config.epochs and self._past_deadline():
            return "deadline"
        patience = self.config.early_stopping
        return "early_stopping" if patience and self.stale_epochs >= patience else None

    def _monitored(self, metrics: dict[str, float]) -> float:
        if self.monitor not in metrics:
            raise ValueError(
                f"Trainer: task.monitor is {self.monitor!r}, but task.summarize returned only {sorted(metrics)}"
            )
        return metrics[self.monitor]

    # ------------------------------------------------------------------ evaluate

    def evaluate(self, batches: Any) -> dict[str, float]:
        """Metrics of the model on ``batches`` (no gradients; state carried across batches when
        ``batches.carries_state``; under DDP each process evaluates its shard and the sums are reduced)."""
        _check_batches(batches, "batches")
        totals = _sum_stats(self.model, self._shard(batches), self.device)
        keys = sorted(totals)
        totals = dict(zip(keys, dist_.all_reduce_sum([totals[k] for k in keys], self.ctx, self.device)))
        return _floats(self.task.summarize(totals))

    # ------------------------------------------------------------------ checkpoints

    def _save(self, best: bool) -> None:
        """Checkpoint (collective under DDP: every rank sends its RNG/carry/sums; rank 0 writes)."""
        if self.run_dir is None:
            return
        partial = {"totals": self.sums.totals, "grad_norm": self.sums.grad_norm,
                   "clipped": self.sums.clipped, "steps": self.sums.steps}
        mine = ckpt.rank_state_to_bytes(*ckpt.pack_rank_state(ckpt.capture_rng(), self.carry, partial))
        everyone = dist_.all_gather_bytes(mine, self.ctx, self.device)
        if self.writes_files:
            self._write_files([ckpt.rank_state_from_bytes(b) for b in everyone], best)
            for callback in self.callbacks:
                if hasattr(callback, "on_checkpoint"):
                    callback.on_checkpoint(self)
        dist_.barrier(self.ctx)

    def _write_files(self, rank_states: list, best: bool) -> None:
        meta = {"epoch": self.epoch, "next_batch": self.next_batch, "step": self.step}
        if best:
            ckpt.save_weights(self.run_dir / "best.safetensors", self.model, meta)
        ckpt.save_weights(self.run_dir / "weights.safetensors", self.model, meta)
        state = {"format": ckpt.FORMAT, "epoch": self.epoch, "next_batch": self.next_batch, "step": self.step,
                 "world_size": self.ctx.world_size, "history": self.history, "stale_epochs": self.stale_epochs,
                 "stopped": self.stopped, "schedule": self.schedule.state_dict(),
                 "elapsed": self.clock() - self._started, "config": self.config.to_dict()}
        ckpt.save_checkpoint(self.run_dir / "checkpoint.safetensors", self.model.state_dict(),
                             self.optimizer.state_dict(), rank_states, state)
        readable = dict(state, ranks=[{"partial": info["partial"]} for _, info in rank_states])
        ckpt.atomic_write_json(self.run_dir / "trainer_state.json", ckpt._jsonable(readable, "trainer state"))

    def _load_resume(self) -> None:
        if self.run_dir is None:
            raise ckpt.CheckpointError("Trainer.fit(resume=True): no run_dir was given to resume from")
        state = ckpt.load_checkpoint(self.run_dir / "checkpoint.safetensors", self.device)
        if state["world_size"] != self.ctx.world_size:
            raise ckpt.CheckpointError(
                f"{self.run_dir}: the run was checkpointed with {state['world_size']} process(es); "
                f"resume it with the same number (found {self.ctx.world_size})")
        ckpt.check_tensors(self.run_dir / "checkpoint.safetensors", state["model"], self.model.state_dict())
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.epoch, self.next_batch, self.step = state["epoch"], state["next_batch"], state["step"]
        self.history, self.stale_epochs, self.stopped = state["history"], state["stale_epochs"], state["stopped"]
        if self.config.epochs > state["config"]["epochs"]:  # extended (--resume --epochs N): train on
            self.stopped = False
        self.elapsed = state["elapsed"]
        self.stop_reason = self.history[-1].get("stopped") if self.stopped and self.history else None
        _warn_changed_config(state["config"], self.config.to_dict())
        own = state["ranks"][self.ctx.rank]
        ckpt.restore_rng(own["rng"])
        self.carry = own["carry"]
        p = own["partial"]
        self.sums = _EpochSums(dict(p["totals"]), p["grad_norm"], p["clipped"], p["steps"])
        if self.writes_files:
            ckpt.update_config_json(self.run_dir, "train", self.config.to_dict())


def evaluate(model: torch.nn.Module, task: Any, batches: Any, device: str | torch.device | None = None,
             ) -> dict[str, float]:
    """``task.summarize`` of the stats of ``model`` summed over ``batches`` (one process, no gradients,
    state carried when ``batches.carries_state``). ``device`` defaults to where the model's parameters are."""
    _check_batches(batches, "batches")
    if device is None:
        device = next(model.parameters()).device
    return _floats(task.summarize(_sum_stats(model, batches, torch.device(device))))


def _sum_stats(model: torch.nn.Module, batches: Any, device: torch.device) -> dict[str, float]:
    was_training = model.training
    model.eval()
    sums, state = _EpochSums(), None
    try:
        with torch.no_grad():
            for i in range(len(batches)):
                batch = move_to(batches.get(i, 0), device)
                out = model(batch, state=state) if batches.carries_state else model(batch)
                state = out.state if batches.carries_state else None
                keys = list(out.stats)
                sums.add_stats(dict(zip(keys, _to_floats([out.stats[k] for k in keys]))))
    finally:
        model.train(was_training)
    return sums.totals


def _warn_changed_config(saved: dict, current: dict) -> None:
    changed = sorted(k for k in current if k not in _FREE_TO_CHANGE and saved.get(k) != current[k])
    if changed:
        pairs = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        warnings.warn(f"resuming with a different training configuration ({pairs}); the continuation will "
                      "not match the interrupted run exactly", stacklevel=3)


_FREE_TO_CHANGE = {"epochs", "progress", "quiet", "tensorboard", "log_every", "checkpoint_every", "device",
                   "max_minutes", "diagnostics_every"}


def _floats(metrics: dict) -> dict[str, float]:
    return {str(k): float(v) for k, v in metrics.items()}


def _to_floats(values: list) -> list[float]:
    """Python floats of a list of scalars and scalar tensors, with a single device->host transfer."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return [float(v) for v in values]
    device = tensors[0].device
    stacked = torch.stack([v.detach().reshape(()).to(device, torch.float64) if isinstance(v, torch.Tensor)
                           else torch.tensor(float(v), dtype=torch.float64, device=device) for v in values])
    return stacked.tolist()


def _total_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    if not grads:
        return torch.tensor(0.0)
    if hasattr(torch.nn.utils, "get_total_norm"):
        return torch.nn.utils.get_total_norm(grads)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
