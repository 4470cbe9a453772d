"""Run directories: how they are created without ever losing one, and how they are read back, checked.

Creating (validate, then write; write, then rename):

1. `check_out(run_dir, overwrite)` before anything is written: --out must not be a file or under one, and a
   directory that already holds a run is refused unless `overwrite` (continue it with --resume instead).
2. `RunLock(run_dir)`: an exclusive lock (`.NAME.lock` beside the directory, holding the owner's PID), so a
   second process training into the same directory stops with a clear message instead of interleaving.
3. `Staging(run_dir)`: the new run is written into a hidden sibling `.NAME.partial-PID` and moved into place
   by `Staging.on_checkpoint` (a Trainer callback) as soon as its first checkpoint is on disk, replacing the
   old run only then (with `overwrite`). A start that fails before that, or a process killed before that,
   leaves an existing run byte-for-byte unchanged.

Reading: `read_run_config` finds config.json and checks it is a run of the right task;
`load_run_weights` loads best (or last) weights after checking every tensor against the model built from
config.json (names, shapes, finite values); `load_vocab` reads a vocabulary checked against the model's size.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from rnnkit.data import DataError
from rnnkit.train.checkpoint import CheckpointError, load_weights, read_json, update_config_json

# ---- creating a run ----------------------------------------------------------------------------------------


def holds_run(path: Path) -> bool:
    return (path / "config.json").is_file()


def check_out(run_dir, overwrite: bool = False) -> Path:
    """Check that a new run may be written to `run_dir` (nothing is written here). Returns it as a Path."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise DataError(f"--out {run_dir}: is a file; expected a directory for the run (choose another --out)")
    for parent in run_dir.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(f"--out {run_dir}: {parent} is a file, so no directory can be made under it")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise DataError(f"--out {run_dir}: {parent} is not writable")
            break
    if run_dir.is_dir():
        if holds_run(run_dir):
            if not overwrite:
                raise DataError(f"--out {run_dir}: already holds a run; continue it with `--resume {run_dir}`, "
                                "replace it with --overwrite, or choose another --out")
        elif any(run_dir.iterdir()):
            raise DataError(f"--out {run_dir}: is a directory that is not empty and holds no run; choose another "
                            "--out (rnnkit never deletes files it did not write)")
    return run_dir


def _sibling(run_dir: Path, what: str) -> Path:
    run_dir = run_dir.absolute()
    return run_dir.parent / f".{run_dir.name}.{what}"


class RunLock:
    """An exclusive, advisory lock on a run directory (fcntl.flock on `.NAME.lock` beside it): released when
    the holder exits, however it exits (so a kill -9 never leaves a stale lock behind)."""

    def __init__(self, run_dir) -> None:
        self.run_dir = Path(run_dir)
        self.path = _sibling(self.run_dir, "lock")
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise DataError(f"--out {self.run_dir}: cannot create the run's lock file {self.path} "
                            f"({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise DataError(f"{self.run_dir}: in use by another rnnkit process (PID {holder}); wait for it to end "
                            "or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # the file stays: unlinking it would let two processes lock two different files
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class Staging:
    """A new run written beside its final place and moved there at its first checkpoint (see the module
    docstring). Use as a Trainer callback; call `discard()` if the start fails, `finish(trainer)` at the end."""

    def __init__(self, run_dir) -> None:
        self.final = Path(run_dir)
        self.path = _sibling(self.final, f"partial-{os.getpid()}")
        self.moved = False

    def recover(self) -> None:
        """Under the run's lock, tidy what a killed process left beside RUN_DIR: a staged run that never
        reached its first checkpoint is deleted; an old run renamed aside by a replacement killed between its
        two renames is put back (nothing else can be holding these: their owner held the lock, now ours)."""
        parent, name = self.final.absolute().parent, self.final.name
        for old in sorted(parent.glob(f".{name}.replaced-*")):
            if not self.final.exists():
                os.replace(old, self.final)
            else:
                shutil.rmtree(old, ignore_errors=True)
        for partial in parent.glob(f".{name}.partial-*"):
            shutil.rmtree(partial, ignore_errors=True)

    def create(self) -> Path:
        self.recover()
        try:
            self.path.mkdir(parents=True)
        except OSError as e:
            raise DataError(f"--out {self.final}: cannot create a directory there ({e.strerror or e})") from None
        return self.path

    def on_checkpoint(self, trainer) -> None:
        if not self.moved:
            self.move_into_place()
            trainer.run_dir = self.final
            if trainer._log is not None and trainer._log.path is not None:
                trainer._log.path = self.final / trainer._log.path.name

    def move_into_place(self) -> None:
        """Replace whatever run is at the final path by the staged one: rename the old one aside, rename the
        new one in, delete the old one."""
        old = _sibling(self.final, f"replaced-{os.getpid()}")
        if self.final.exists():
            os.replace(self.final, old)
        os.replace(self.path, self.final)
        self.moved = True
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        if not self.moved and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


def write_run_files(run_dir, vocabularies: dict[str, Any], **config) -> Path:
    """Save each vocabulary as its file name in RUN_DIR (None: skipped), and set config.json[key] = value for
    each keyword (task=..., model=..., data=...). Returns RUN_DIR as a Path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, vocab in vocabularies.items():
        if vocab is not None:
            vocab.save(run_dir / name)
    for key, value in config.items():
        update_config_json(run_dir, key, value)
    return run_dir


# ---- reading a run -------------------------------------------------------------------------------------------


@dataclass
class LoadedRun:
    """A trained run rebuilt from its directory: the model (in eval mode), the task object, all of config.json."""

    model: nn.Module
    task: Any
    config: dict


def read_config_json(run_dir, task_name: str | None = None) -> tuple[Path, dict]:
    """RUN_DIR/config.json as (path, the object), checked to be an object whose "task" is an object."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.is_file():
        why = "no config.json" if run_dir.is_dir() else "no such directory"
        command = f"rnnkit train {task_name}" if task_name else "rnnkit train"
        raise DataError(f"{run_dir}: not a run directory ({why}; expected the --out of `{command}`)")
    config = read_json(path)
    if not isinstance(config, dict):
        raise DataError(f"{path}: expected a JSON object with task, model, data and train, found "
                        f"{type(config).__name__}")
    task = config.get("task")
    if not isinstance(task, dict):
        raise DataError(f"{path}: task: expected an object with the task's name ({{\"name\": "
                        f"\"{task_name or '...'}\", ...}}), found {task!r}")
    return path, config


def read_run_config(run_dir, task_name: str, description: str) -> dict:
    """RUN_DIR/config.json, checked to be a run of `task_name` (`description`: "a tagging run", ...) with the
    sections every run has (task, model, data, train; each an object)."""
    path, config = read_config_json(run_dir, task_name)
    found = config["task"].get("name")
    if found != task_name:
        raise DataError(f"{path}: expected {description} (task {task_name!r}), found task {found!r}")
    for section in ("model", "data", "train"):
        if section not in config:
            raise DataError(f"{path}: missing section {section!r} (is the run complete?)")
        if not isinstance(config[section], dict):
            raise DataError(f"{path}: {section}: expected an object, found {type(config[section]).__name__}")
    return config


def task_field(config: dict, run_dir, key: str, kind: type | tuple, default=...):
    """config.json's task[key], checked to be of `kind` (a DataError names the file and the field)."""
    task = config["task"]
    if key not in task:
        if default is not ...:
            return default
        raise DataError(f"{Path(run_dir) / 'config.json'}: task.{key} is missing")
    value = task[key]
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        ok = False
    else:
        ok = isinstance(value, kind)
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(f"{Path(run_dir) / 'config.json'}: task.{key}: expected {names}, found {value!r}")
    return value


def load_vocab(run_dir, file: str, expected: int, field: str, specials: tuple[str, ...] = ()):
    """RUN_DIR/FILE as a Vocab that starts with `specials`, checked against the size the model was built with
    (config.json's model.<field>)."""
    from rnnkit.data import Vocab

    vocab = Vocab.load(Path(run_dir) / file, specials)
    if len(vocab) != expected:
        raise DataError(f"{Path(run_dir) / file}: {len(vocab)} entries, but config.json's model.{field} is "
                        f"{expected}; the run directory's files do not belong together")
    return vocab


def load_run_weights(run_dir, model: nn.Module, weights: str | None = "best", device: str = "cpu") -> nn.Module:
    """Load `best.safetensors` (or `weights.safetensors` when no epoch was validated, or with weights="last")
    into `model`, after checking every tensor's name, shape and values against it; weights=None keeps the
    fresh initialisation (resume loads its checkpoint itself). Returns the model on `device`, in eval mode."""
    if weights not in ("best", "last", None):
        raise ValueError(f"weights must be 'best', 'last' or None, got {weights!r}")
    if weights is not None:
        path = Path(run_dir) / ("best.safetensors" if weights == "best" else "weights.safetensors")
        if not path.exists():
            path = Path(run_dir) / "weights.safetensors"
        if not path.exists():
            raise CheckpointError(f"{run_dir}: no weights.safetensors (the run has no checkpoint yet)")
        load_weights(path, model, device=device)
    return model.to(device).eval()
