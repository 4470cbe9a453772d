"""Run directories, the part every task shares. Writing: create RUN_DIR, save the vocabularies, set the
task / model / data entries of config.json (the Trainer adds "train"). Reading: find config.json, check it is
the right task, load the best (or last) weights into a freshly built model. Each task's `save_run_files` and
`load_run` add only what is its own (which vocabularies, a normalizer, the model class).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from rnnkit.data import DataError
from rnnkit.train.checkpoint import load_weights, read_json, update_config_json


def write_run_files(run_dir, vocabularies: dict[str, Any], **config) -> Path:
    """Create RUN_DIR, save each vocabulary as its file name (None: skipped), and set config.json[key] = value
    for each keyword (task=..., model=..., data=...). Returns RUN_DIR as a Path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, vocab in vocabularies.items():
        if vocab is not None:
            vocab.save(run_dir / name)
    for key, value in config.items():
        update_config_json(run_dir, key, value)
    return run_dir


@dataclass
class LoadedRun:
    """A trained run rebuilt from its directory: the model (in eval mode), the task object, all of config.json."""

    model: nn.Module
    task: Any
    config: dict


def read_run_config(run_dir, task_name: str, description: str) -> dict:
    """RUN_DIR/config.json, checked to be a run of `task_name` (`description`: "a tagging run", ...)."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.is_file():
        where = "not a run directory" if run_dir.is_dir() else "run directory not found"
        raise DataError(f"{run_dir}: {where} (expected the --out of `rnnkit train {task_name}`)")
    config = read_json(path)
    found = config.get("task", {}).get("name") if isinstance(config, dict) else None
    if found != task_name:
        raise DataError(f"{path}: expected {description} (task {task_name!r}), found task {found!r}")
    return config


def load_run_weights(run_dir, model: nn.Module, weights: str | None = "best", device: str = "cpu") -> nn.Module:
    """Load `best.safetensors` (or `weights.safetensors` when no epoch was validated, or with weights="last")
    into `model`; weights=None keeps the fresh initialisation (resume loads its checkpoint itself).
    Returns the model on `device`, in eval mode."""
    if weights not in ("best", "last", None):
        raise ValueError(f"weights must be 'best', 'last' or None, got {weights!r}")
    if weights is not None:
        path = Path(run_dir) / ("best.safetensors" if weights == "best" else "weights.safetensors")
        if not path.exists():
            path = Path(run_dir) / "weights.safetensors"
        load_weights(path, model, device=device)
    return model.to(device).eval()
