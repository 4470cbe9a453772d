"""One lifecycle for every task: fit, resume, load_run (and the evaluate/predict verbs) of a run directory.

A task supplies only what is its own, as a `TaskSpec` (see the protocol below): its config dataclasses, how
to read its data and build its vocabularies, how to build its model, its batches, and how to rebuild the
model and the task object from a saved run. This module owns everything else, once, for all of them:

    fit:       validate (options, data, model, device, --out) -> lock -> write the run into a staging
               directory -> train -> the run moves into place at its first checkpoint
    resume:    lock -> check config.json and the checkpoint -> continue exactly where it stopped
               (optionally for more epochs)
    load_run:  check config.json against the task's schema, the vocabularies against the model's sizes,
               every tensor against the model's shapes and for NaN/inf -> the model in eval mode

so a failed or concurrent start never damages an existing run, and a damaged run directory gives one line
naming the file and the field instead of a traceback.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from rnnkit.config import from_dict
from rnnkit.data import DataError
from rnnkit.tasks.runs import (
    LoadedRun,
    RunLock,
    Staging,
    check_out,
    load_run_weights,
    read_config_json,
    read_run_config,
    write_run_files,
)
from rnnkit.train import TrainConfig, Trainer, TrainingDiverged, seed_everything
from rnnkit.train import distributed as dist_

# The registry: task name -> module defining SPEC (imported on first use, so `rnnkit --help` stays fast).
TASKS = {"lm": "rnnkit.tasks.lm", "classify": "rnnkit.tasks.classify", "tag": "rnnkit.tasks.tag",
         "forecast": "rnnkit.tasks.forecast", "seq2seq": "rnnkit.tasks.seq2seq", "tree": "rnnkit.tasks.tree",
         "lab": "rnnkit.lab.tasks"}

# TrainConfig fields that may change when a run is continued (they do not change what is computed).
RESUMABLE_TRAIN_FIELDS = ("epochs", "device", "checkpoint_every", "log_every", "progress", "tensorboard",
                          "max_minutes", "quiet", "verbose", "diagnostics_every")


class TaskSpec(Protocol):
    """What a task tells the driver. `prepare` may be given the task object of a saved run (resume), whose
    vocabularies it must reuse instead of building new ones."""

    name: str  # "classify": the config.json task.name and the `rnnkit train` sub-command
    description: str  # "a classification run", for error messages
    data_config: type  # the data dataclass (config.json "data")
    model_config: type  # the model dataclass (config.json "model"; sizes from the data are cli=False fields)
    train_config: type  # TrainConfig or a subclass with this task's defaults
    path_fields: tuple[str, ...]  # data fields that name files (saved absolute, so resume works anywhere)

    def prepare(self, data, task=None) -> Any: ...  # -> an object with .task (what the Trainer summarizes)
    def model_config_for(self, prepared, options: dict) -> Any: ...  # the full model config for this data
    def build_model(self, model_config, prepared) -> nn.Module: ...
    def batches(self, prepared, data, seed: int) -> tuple[Any, Any]: ...  # (train, valid or None)
    def run_files(self, prepared, model_config) -> tuple[dict, dict]: ...  # ({file: vocab}, {config key: value})
    def load(self, run_dir: Path, config: dict) -> tuple[nn.Module, Any]: ...  # (fresh model, task object)


def spec_for(name: str) -> TaskSpec:
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return importlib.import_module(TASKS[name]).SPEC


def saved_paths(spec: TaskSpec, data) -> dict:
    """The data config as saved in config.json: every file path made absolute."""
    saved = dataclasses.asdict(data)
    for key in spec.path_fields:
        if saved.get(key) is not None:
            saved[key] = str(Path(saved[key]).resolve())
    return saved


# ---- fit ---------------------------------------------------------------------------------------------------


def check_device(device: str) -> None:
    """A clear error for a device this machine does not have, before anything is built or written."""
    if device in ("auto", "cpu"):
        return
    if not torch.cuda.is_available():
        raise DataError(f"--device {device}: CUDA is not available on this machine (use --device cpu or auto)")
    if ":" in device:
        index = device.split(":", 1)[1]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise DataError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                            f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")


def build_checked(spec: TaskSpec, model_config, prepared, seed: int) -> nn.Module:
    """The model, seeded (same seed, same initial weights); a model too large to allocate is one clear line."""
    seed_everything(seed)
    try:
        return spec.build_model(model_config, prepared)
    except (MemoryError, RuntimeError) as e:
        if isinstance(e, MemoryError) or "alloc" in str(e).lower() or "memory" in str(e).lower():
            raise DataError(f"the model does not fit in memory ({_parameter_estimate(model_config)}); use a "
                            f"smaller --hidden/--emb/--layers ({str(e).splitlines()[0][:120]})") from None
        raise


def _parameter_estimate(model_config) -> str:
    sizes = {k: v for k, v in dataclasses.asdict(model_config).items() if k in ("hidden", "emb", "layers")}
    return ", ".join(f"{k} {v:,}" for k, v in sizes.items()) or type(model_config).__name__


def fit(spec: TaskSpec, run_dir, data, model_options: dict | Any, train: TrainConfig, *,
        overwrite: bool = False, prepared=None, callbacks=()) -> list[dict]:
    """Train a new run of `spec` into RUN_DIR; returns the history (one dict per epoch).

    `model_options`: the model config's own fields (a dict, or a full model config whose sizes must match
    the data). Everything is validated before the first byte is written; the run is written beside RUN_DIR
    and moved into place at its first checkpoint, so an existing run (with `overwrite`) is replaced only by a
    run that has started, and a start that fails leaves it unchanged."""
    writer = run_dir is not None and dist_.from_env().is_main  # under torchrun only rank 0 writes the run
    if writer:
        run_dir = check_out(run_dir, overwrite)
    check_device(train.device)
    prepared = prepared if prepared is not None else spec.prepare(data)
    if dataclasses.is_dataclass(model_options) and not isinstance(model_options, type):
        model_options = dataclasses.asdict(model_options)
    model_config = spec.model_config_for(prepared, dict(model_options))
    model = build_checked(spec, model_config, prepared, train.seed)
    train_batches, valid_batches = spec.batches(prepared, data, train.seed)
    if not writer:  # no run directory (tests, benchmarks), or a DDP rank other than 0 (the Trainer writes nothing)
        with Trainer(model, prepared.task, train_batches, valid_batches, train, run_dir, callbacks=callbacks) as t:
            return t.fit()
    vocabularies, entries = spec.run_files(prepared, model_config)
    entries = {"task": entries.pop("task"), "model": dataclasses.asdict(model_config),
               "data": saved_paths(spec, data), **entries}
    with RunLock(run_dir):
        staging = Staging(run_dir)
        staging.recover()
        check_out(run_dir, overwrite)  # again under the lock: another process may have started meanwhile
        path = staging.create()
        try:
            write_run_files(path, vocabularies, **entries)
            with Trainer(model, prepared.task, train_batches, valid_batches, train, path,
                         callbacks=[*callbacks, staging]) as trainer:
                history = trainer.fit()
            if not staging.moved:  # no checkpoint was written (epochs=0): the run is complete as it is
                staging.move_into_place()
            return history
        except TrainingDiverged as e:
            if not staging.moved:  # before the first checkpoint: no loadable-but-broken run is left behind
                staging.discard()
                e.args = (f"{e}; nothing was saved in {run_dir}",)
            raise
        except BaseException:
            staging.discard()
            raise


# ---- resume --------------------------------------------------------------------------------------------------


def resume(run_dir, spec: TaskSpec | None = None, epochs: int | None = None, callbacks=(),
           **train_changes) -> list[dict]:
    """Continue the run in RUN_DIR exactly where its last checkpoint stopped. `epochs`: train up to this
    many epochs in all (to extend a finished run); `train_changes`: other TrainConfig fields that do not
    change what is computed (device, checkpoint_every, ...; see RESUMABLE_TRAIN_FIELDS)."""
    run_dir = Path(run_dir)
    refused = sorted(k for k in train_changes if k not in RESUMABLE_TRAIN_FIELDS)
    if refused:
        raise DataError(f"--resume {run_dir}: {', '.join(refused)} would change the run; only "
                        f"{', '.join(RESUMABLE_TRAIN_FIELDS)} may change when a run is continued")
    main = dist_.from_env().is_main
    with RunLock(run_dir) if main else contextlib.nullcontext():
        if main:
            Staging(run_dir).recover()
        spec, config = _spec_and_config(run_dir, spec)
        where = f"{run_dir / 'config.json'}"
        data = from_dict(spec.data_config, config["data"], f"{where}: data")
        changes = dict(train_changes, **({"epochs": epochs} if epochs is not None else {}))
        train = from_dict(spec.train_config, {**config["train"], **changes}, f"{where}: train")
        check_device(train.device)
        if not (run_dir / "checkpoint.safetensors").is_file():
            raise DataError(f"{run_dir}: no checkpoint.safetensors to resume from (the run never reached its first "
                            "checkpoint, or it was not trained with rnnkit train)")
        model, task = spec.load(run_dir, config)
        prepared = spec.prepare(data, task)
        train_batches, valid_batches = spec.batches(prepared, data, train.seed)
        with Trainer(model, prepared.task, train_batches, valid_batches, train, run_dir,
                     callbacks=list(callbacks)) as trainer:
            return trainer.fit(resume=True)


# ---- load ----------------------------------------------------------------------------------------------------


def run_task_name(run_dir) -> str:
    """The task that wrote RUN_DIR, from config.json (one clear line when there is none)."""
    path, config = read_config_json(run_dir)
    name = config["task"].get("name")
    if not isinstance(name, str) or name not in TASKS:
        raise DataError(f"{path}: task.name: expected one of {', '.join(TASKS)}, found {name!r}")
    return name


def _spec_and_config(run_dir: Path, spec: TaskSpec | None) -> tuple[TaskSpec, dict]:
    spec = spec or spec_for(run_task_name(run_dir))
    return spec, read_run_config(run_dir, spec.name, spec.description)


def load_run(run_dir, weights: str | None = "best", device: str = "cpu", spec: TaskSpec | None = None,
             run_class: type = LoadedRun) -> LoadedRun:
    """Rebuild a trained run from RUN_DIR: config.json (checked against the task's schema), the task's
    vocabulary files (checked against the model's sizes), and best (or last) weights (checked tensor by
    tensor). Loading runs no code from the directory (JSON + safetensors only)."""
    run_dir = Path(run_dir)
    spec, config = _spec_and_config(run_dir, spec)
    model, task = spec.load(run_dir, config)
    return run_class(load_run_weights(run_dir, model, weights, device), task, config)


def model_from(spec: TaskSpec, run_dir: Path, config: dict):
    """config.json's model section as the task's model config (strict: unknown or ill-typed keys name the key)."""
    return from_dict(spec.model_config, config["model"], f"{run_dir / 'config.json'}: model")


def sized_config(cls, options: dict, where: str = "model", **derived):
    """The model config `cls` from the user's `options` and the sizes the data gives (`derived`: vocab_size
    = len(vocab), ...); a size given in `options` that differs from the data's is an error."""
    for key, value in derived.items():
        if options.get(key) not in (None, 0) and options[key] != value:  # 0 / None: "from the data"
            raise DataError(f"{where}: {key} is {options[key]!r}, but the data gives {value!r}")
    return from_dict(cls, {**options, **derived}, where)


def cell_names() -> tuple[str, ...]:
    """The recurrent cells a task accepts: the registry rnnkit.nn.CELLS (for --cell's choices)."""
    from rnnkit.nn import CELLS

    return tuple(sorted(CELLS))
