"""Reporting: metrics.jsonl, the progress bar (tqdm) and optional TensorBoard events."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rnnkit.train.checkpoint import atomic_write_bytes


class MetricsLog:
    """Appends one JSON object per line to RUN_DIR/metrics.jsonl (and to TensorBoard if enabled).

    Every record has ``epoch`` (from 1), ``step`` (optimizer steps so far), ``split``, ``time`` (seconds since
    the run started) and ``metrics``; training records add ``lr``, ``grad_norm`` (mean pre-clip global norm),
    ``clipped`` (fraction of steps where clipping fired) and ``tokens_per_second``. Splits: "train" and
    "valid" (one per epoch, summed over all processes under DDP) and "train_running" (every ``log_every``
    steps: the epoch so far, as seen by rank 0).
    """

    def __init__(self, run_dir: str | os.PathLike | None, tensorboard: bool = False, fresh: bool = True) -> None:
        self.path = None if run_dir is None else Path(run_dir) / "metrics.jsonl"
        self.writer = None
        if self.path is not None and fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, b"")
        if self.path is not None and tensorboard:
            self.writer = _tensorboard_writer(self.path.parent / "tensorboard")

    def truncate_after(self, step: int) -> None:
        """On resume: drop records written after the checkpoint at ``step`` (they will be written again)."""
        if self.path is None or not self.path.exists():
            return
        lines = [ln for ln in self.path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        kept = [ln for ln in lines if _step_of(ln) <= step]
        atomic_write_bytes(self.path, "".join(ln + "\n" for ln in kept).encode("utf-8"))

    def write(self, record: dict[str, Any]) -> None:
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, allow_nan=True) + "\n")
        if self.writer is not None:
            for name, value in record.get("metrics", {}).items():
                self.writer.add_scalar(f"{record['split']}/{name}", value, record["step"])
            for key in ("lr", "grad_norm", "clipped"):
                if record.get(key) is not None:
                    self.writer.add_scalar(f"{record['split']}/{key}", record[key], record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _step_of(line: str) -> float:
    try:
        return json.loads(line).get("step", 0)
    except json.JSONDecodeError:
        return float("inf")  # a torn last line from a killed process: drop it


def _tensorboard_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(log_dir))


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """All records of RUN_DIR/metrics.jsonl."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def print_epoch_summary(epoch: int, epochs: int, lr: float, train: dict, valid: dict | None,
                        improved: bool) -> None:
    """One line per epoch under the progress bars (terminal only): lr, train and valid metrics."""
    if not sys.stderr.isatty():
        return
    parts = [f"epoch {epoch}/{epochs}", f"lr {lr:.4g}", "train " + _fmt(train)]
    if valid is not None:
        parts.append("valid " + _fmt(valid))
    tqdm.write(" | ".join(parts) + (" *" if improved else ""), file=sys.stderr)


def _fmt(metrics: dict) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in metrics.items())


class ProgressBar:
    """A tqdm bar over one epoch's batches showing the running metrics and tokens/s (stderr, TTY only)."""

    def __init__(self, total: int, epoch: int, epochs: int, start: int, enabled: bool) -> None:
        self.bar = None
        self.started = time.perf_counter()
        self.tokens = 0.0
        self.last_update = time.perf_counter()  # first redraw after 0.5 s, when the rates mean something
        self.metrics: Callable[[], dict[str, float]] = dict
        if enabled and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=start, desc=f"epoch {epoch}/{epochs}", file=sys.stderr,
                            dynamic_ncols=True, leave=True)

    def update(self, metrics: Callable[[], dict[str, float]], tokens: float) -> None:
        """One more batch; ``metrics()`` (the running metrics) is called only when the bar is redrawn."""
        self.tokens += tokens
        if self.bar is None:
            return
        self.metrics = metrics
        self.bar.update(1)
        now = time.perf_counter()
        if now - self.last_update > 0.5:
            self.last_update = now
            self._show()

    def _show(self) -> None:
        shown = {k: f"{v:.4g}" for k, v in self.metrics().items()}
        if self.tokens:
            shown["tok/s"] = f"{self.tokens_per_second():.0f}"
        self.bar.set_postfix(shown, refresh=False)

    def tokens_per_second(self) -> float | None:
        if not self.tokens:
            return None
        return self.tokens / max(time.perf_counter() - self.started, 1e-9)

    def close(self) -> None:
        if self.bar is not None:
            self._show()  # the epoch's final values
            self.bar.close()
