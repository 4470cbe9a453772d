"""Reporting: metrics.jsonl, progress on stderr (a tqdm bar on a terminal, plain lines otherwise) and optional
TensorBoard events."""

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
    ``clipped`` (fraction of steps where clipping fired) and ``tokens_per_second``; the epoch's "train" record
    has ``stopped`` ("deadline" or "early_stopping") when training stops there before its epochs. Splits: "train" and
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
        lines = _log_lines(self.path)
        kept = [ln for n, ln in enumerate(lines, 1) if _step_of(ln, self.path, n, last=n == len(lines)) <= step]
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


def _log_lines(path: Path) -> list[str]:
    """The non-blank lines of metrics.jsonl; bytes that are not UTF-8 are one DataError naming the file."""
    from rnnkit.data import DataError

    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: expected UTF-8 JSON lines, found byte 0x{data[e.start]:02x} (the run's log "
                        "is damaged; repair or delete that line to resume)") from None
    return [ln for ln in text.splitlines() if ln.strip()]


def _step_of(line: str, path: Path, number: int, last: bool) -> float:
    """The step of a metrics.jsonl record; a torn last line (a killed process) is dropped, any other line that
    is not a JSON object with a numeric step is a DataError naming file and line."""
    from rnnkit.data import DataError

    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        record = None
    step = record.get("step") if isinstance(record, dict) else None
    if isinstance(step, (int, float)) and not isinstance(step, bool):
        return step
    if last and not isinstance(record, dict):
        return float("inf")  # a torn last line from a killed process: drop it
    raise DataError(f"{path}:{number}: expected a JSON object with a numeric step, found {line[:60]!r} (the run's "
                    "log is damaged; repair or delete that line to resume)")


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


def progress_mode(progress: bool, quiet: bool, is_main: bool) -> str:
    """How the Trainer reports progress on stderr, decided once per fit: "bar" (a terminal: a tqdm bar per epoch
    and a summary line), "lines" (no terminal: a line every ``log_every`` steps and one per epoch, as Keras'
    ``verbose=2``), or "off" (``quiet``, ``progress=False``, or not rank 0)."""
    if quiet or not progress or not is_main:
        return "off"
    return "bar" if sys.stderr.isatty() else "lines"


def epoch_line(epoch: int, epochs: int, lr: float, train: dict, valid: dict | None, improved: bool,
               seconds: float, tokens_per_second: float | None = None, stopped: str | None = None,
               batches: tuple[int, int] | None = None, eval_seconds: float | None = None) -> str:
    """One epoch's summary: ``epoch 2/10 - 35s (validation 2s) - lr 0.001 - loss: 1.2345 - ppl: 3.4365 -
    val_loss: ... *`` (``*``: the monitored metric improved; the validation metrics get Keras' ``val_`` prefix;
    ``35s``: the epoch's training and validation)."""
    parts = [f"epoch {epoch}/{epochs}"]
    if batches is not None:
        parts.append(f"{batches[0]}/{batches[1]} batches")
    took = f"{seconds:.0f}s" + ("" if eval_seconds is None else f" (validation {eval_seconds:.0f}s)")
    parts += [took, f"lr {lr:.4g}", _keras(train)]
    if valid is not None:
        parts.append(_keras(valid, "val_"))
    if tokens_per_second is not None:
        parts.append(f"{tokens_per_second:,.0f} tok/s")
    if stopped == "deadline":
        parts.append("stopped: max_minutes deadline reached")
    elif stopped == "early_stopping":
        parts.append("stopped: early stopping")
    return " - ".join(p for p in parts if p) + (" *" if improved else "")


def print_epoch_summary(mode: str, line: str) -> None:
    """The epoch line under the bars (terminal) or as a plain line (log file); nothing when mode is "off"."""
    if mode == "bar":
        tqdm.write(line, file=sys.stderr)
    elif mode == "lines":
        print(line, file=sys.stderr, flush=True)


def _keras(metrics: dict, prefix: str = "") -> str:
    return " - ".join(f"{prefix}{k}: {v:.4f}" for k, v in metrics.items())


def clock_text(seconds: float) -> str:
    """0:07, 12:34, 1:02:03 (as tqdm and Keras show durations)."""
    s = max(0, round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


class ProgressBar:
    """A tqdm bar over one epoch's batches showing the running metrics and tokens/s (stderr, TTY only)."""

    def __init__(self, total: int, epoch: int, epochs: int, start: int, enabled: bool,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.bar = None
        self.clock = clock
        self.started = clock()
        self.tokens = 0.0
        self.last_update = clock()  # first redraw after 0.5 s, when the rates mean something
        self.metrics: Callable[[], dict[str, float]] = dict
        if enabled and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=start, desc=f"epoch {epoch}/{epochs}", file=sys.stderr,
                            dynamic_ncols=True, leave=True)

    def update(self, metrics: Callable[[], dict[str, float]], tokens: float, step: int = 0) -> None:
        """One more batch (``step``: optimizer steps so far); ``metrics()`` (the running metrics) is called only
        when the bar is redrawn."""
        self.tokens += tokens
        if self.bar is None:
            return
        self.metrics = metrics
        self.bar.update(1)
        now = self.clock()
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
        return self.tokens / max(self.clock() - self.started, 1e-9)

    def close(self) -> None:
        if self.bar is not None:
            self._show()  # the epoch's final values
            self.bar.close()


class ProgressLines(ProgressBar):
    """Progress where there is no terminal (a log file, CI, a pipe): every ``every`` optimizer steps one line

        epoch 1/4 - batch 100/490 - step 100 - loss: 2.3450 - bpc: 3.3831 - 12,345 tok/s - ETA 1:23

    with the running metrics of the epoch so far (the same numbers as metrics.jsonl's "train_running" record
    of that step) and the time left in the epoch, or to the deadline when that comes first."""

    def __init__(self, total: int, epoch: int, epochs: int, start: int, every: int,
                 clock: Callable[[], float] = time.perf_counter, deadline: float | None = None) -> None:
        super().__init__(total, epoch, epochs, start, enabled=False, clock=clock)
        self.total, self.epoch, self.epochs, self.done, self.start = total, epoch, epochs, start, start
        self.every, self.deadline = every, deadline

    def update(self, metrics: Callable[[], dict[str, float]], tokens: float, step: int = 0) -> None:
        self.tokens += tokens
        self.done += 1
        if self.every and step % self.every == 0:
            print(self.line(metrics(), step), file=sys.stderr, flush=True)

    def line(self, metrics: dict[str, float], step: int) -> str:
        parts = [f"epoch {self.epoch}/{self.epochs}", f"batch {self.done}/{self.total}", f"step {step}",
                 _keras(metrics)]
        rate = self.tokens_per_second()
        if rate is not None:
            parts.append(f"{rate:,.0f} tok/s")
        parts.append(f"ETA {clock_text(self.eta())}")
        return " - ".join(p for p in parts if p)

    def eta(self) -> float:
        """Seconds to the end of the epoch at this epoch's pace so far, or to the deadline if sooner."""
        now = self.clock()
        per_batch = (now - self.started) / max(self.done - self.start, 1)
        left = per_batch * (self.total - self.done)
        return left if self.deadline is None else max(0.0, min(left, self.deadline - now))


def epoch_progress(mode: str, total: int, epoch: int, epochs: int, start: int, every: int,
                   clock: Callable[[], float] = time.perf_counter, deadline: float | None = None) -> ProgressBar:
    """The progress of one epoch for ``progress_mode``'s answer: lines, a bar, or a silent counter (which still
    measures tokens/s for metrics.jsonl)."""
    if mode == "lines":
        return ProgressLines(total, epoch, epochs, start, every, clock, deadline)
    return ProgressBar(total, epoch, epochs, start, mode == "bar", clock)
