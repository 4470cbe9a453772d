"""Checkpoints without pickle: tensors in safetensors, everything else in JSON, every file written atomically.

RUN_DIR layout written by the Trainer:
  config.json              {"train": TrainConfig, ...}; other keys ("task", "model") belong to the task/CLI
  weights.safetensors      model weights after the last completed epoch (or mid-epoch checkpoint)
  best.safetensors         model weights of the best epoch by ``task.monitor``
  checkpoint.safetensors   everything ``fit(resume=True)`` needs, in ONE file so it is replaced atomically:
                           model weights ("model/..."), optimizer tensors ("optimizer/<param>/<name>"),
                           per process r: carried TBPTT state ("rank/r/carry/<i>") and torch RNG
                           ("rank/r/rng/torch"); and, in the safetensors metadata, the JSON trainer state
                           (optimizer scalars and param groups, LR schedule, numpy/python RNG, epoch and
                           batch position, partial sums of the epoch's stats, history).
  trainer_state.json       a human-readable copy of that JSON trainer state (informational)
  metrics.jsonl            one JSON object per line

"Atomic": data goes to a temporary file in the same directory, is fsynced, then ``os.replace``d over the
target, so a reader (or a resumed run after SIGKILL) sees either the old or the new file, never a torn one.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch

from rnnkit.nn.state import flatten_tree, unflatten_tree

FORMAT = "rnnkit-checkpoint-1"


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()  # mkstemp creates 0600 files; give checkpoints the usual permissions


class CheckpointError(RuntimeError):
    """A run directory or checkpoint file is missing, incomplete or of an unexpected format."""


# --------------------------------------------------------------------------- atomic files


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory + fsync + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, strict JSON (NaN/inf rejected) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; every way it can be unreadable (missing, a directory, binary, not UTF-8, empty, not
    JSON) is a DataError that names the file (and the line). The caller checks the value's types."""
    from rnnkit.data.text import read_json as read

    return read(path)


def update_config_json(run_dir: str | os.PathLike, key: str, value: Any) -> None:
    """Set ``config.json[key] = value`` in ``run_dir``, keeping the other keys (atomic read-modify-write)."""
    path = Path(run_dir) / "config.json"
    config = read_json(path) if path.exists() else {}
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(config).__name__}")
    config[key] = value
    atomic_write_json(path, config)


# --------------------------------------------------------------------------- weights


def absolute_paths(config: dict, keys: tuple[str, ...] = ("train", "valid")) -> dict:
    """A copy of `config` with the file paths under `keys` made absolute (None stays None), so that a run
    saved in config.json can be resumed from any working directory."""
    out = dict(config)
    for key in keys:
        out[key] = None if out[key] is None else str(Path(out[key]).resolve())
    return out


def _unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies where needed; tensors sharing storage (tied weights) are cloned apart."""
    seen: set[int] = set()
    out = {}
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel() > 0:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """Atomically save named tensors (and str->str ``metadata``) as one safetensors file."""
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    atomic_write_bytes(path, safetensors.torch.save(_unshared(tensors), metadata=meta))


def save_weights(path: str | os.PathLike, model: torch.nn.Module | dict, metadata: dict | None = None) -> None:
    """Save a module's ``state_dict()`` (or a dict of tensors) to ``path`` in safetensors, atomically."""
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    save_tensors(path, state, metadata)


def load_weights(
    path: str | os.PathLike, model: torch.nn.Module | None = None, device: str | torch.device = "cpu",
    strict: bool = True,
) -> dict[str, torch.Tensor]:
    """Read a safetensors file (no code runs); if ``model`` is given, load the tensors into it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    tensors = _load_file(path, device)
    if model is not None:
        check_tensors(path, tensors, model.state_dict(), strict)
        model.load_state_dict(tensors, strict=strict)
    return tensors


def check_tensors(path, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                  strict: bool = True) -> None:
    """The tensors of `path` against a model's state_dict: every name present (and no other, if `strict`),
    every shape equal, every value finite. A CheckpointError names the file and the first tensor that is off."""
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if strict and (missing or unexpected):
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {unexpected[0]!r}"
        raise CheckpointError(f"{path}: {what} for the model described by config.json "
                              f"({len(missing)} missing, {len(unexpected)} unexpected)")
    for name, t in tensors.items():
        if name not in expected:
            continue
        want = expected[name]
        if tuple(t.shape) != tuple(want.shape):
            raise CheckpointError(f"{path}: tensor {name!r}: expected shape {tuple(want.shape)} for the model "
                                  f"described by config.json, found {tuple(t.shape)}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: tensor {name!r} holds NaN or inf values; the run is not usable "
                                  "(did training diverge?)")


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The str->str metadata of a safetensors file."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (safetensors.SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def _load_file(path: Path, device: str | torch.device) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load_file(str(path), device=str(device))
    except (safetensors.SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


# --------------------------------------------------------------------------- optimizer state


def flatten_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors ("optimizer/<param>/<name>") and a JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, entries in state_dict["state"].items():
        scalars[str(pid)] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{pid}/{name}"] = value
            else:
                scalars[str(pid)][name] = _jsonable(value, f"optimizer state {pid}.{name}")
    groups = [{k: _jsonable(v, f"param_groups.{k}") for k, v in g.items()} for g in state_dict["param_groups"]]
    return tensors, {"state": scalars, "param_groups": groups}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    """Inverse of :func:`flatten_optimizer_state` (keys of ``tensors`` without a "optimizer/" prefix ignored)."""
    rest = _from_jsonable(rest)
    state: dict[int, dict] = {int(pid): dict(entries) for pid, entries in rest["state"].items()}
    for key, value in tensors.items():
        prefix, _, tail = key.partition("/")
        if prefix != "optimizer":
            continue
        pid, name = tail.split("/", 1)
        state.setdefault(int(pid), {})[name] = value
    groups = [dict(g, params=list(g["params"])) for g in rest["param_groups"]]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


def _jsonable(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"float": repr(value)}
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    raise CheckpointError(f"{where}: cannot store a {type(value).__name__} without pickle")


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"float"}:
            return float(value["float"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------- RNG states


def capture_rng() -> dict:
    """This process's RNG states as JSON-able data: torch CPU (+CUDA) as lists of bytes, numpy, random."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state().tolist(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(internal), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# --------------------------------------------------------------------------- per-process state


def pack_rank_state(rng: dict, carry: Any, partial: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """One process's own resume state (RNG, carried TBPTT state, partial epoch sums) as tensors + JSON."""
    spec, carry_tensors = flatten_tree(carry)
    tensors = {"rng/torch": torch.tensor(rng["torch"], dtype=torch.uint8)}
    for i, s in enumerate(rng.get("cuda", [])):
        tensors[f"rng/cuda/{i}"] = torch.tensor(s, dtype=torch.uint8)
    tensors.update({f"carry/{i}": t for i, t in enumerate(carry_tensors)})
    info = {"numpy": rng["numpy"], "python": rng["python"], "cuda": len(rng.get("cuda", [])),
            "carry": spec, "carry_count": len(carry_tensors), "partial": _jsonable(partial, "partial sums")}
    return tensors, info


def unpack_rank_state(tensors: dict[str, torch.Tensor], info: dict) -> dict:
    """Inverse of :func:`pack_rank_state`: {"rng": ..., "carry": state tree, "partial": ...}."""
    rng = {"numpy": info["numpy"], "python": info["python"], "torch": tensors["rng/torch"].cpu().tolist()}
    if info["cuda"]:
        rng["cuda"] = [tensors[f"rng/cuda/{i}"].cpu().tolist() for i in range(info["cuda"])]
    carry = unflatten_tree(info["carry"], [tensors[f"carry/{i}"] for i in range(info["carry_count"])])
    return {"rng": rng, "carry": carry, "partial": _from_jsonable(info["partial"])}


def rank_state_to_bytes(tensors: dict[str, torch.Tensor], info: dict) -> bytes:
    """Serialize a packed rank state (safetensors bytes, JSON in the metadata) to send between processes."""
    return safetensors.torch.save(_unshared(tensors), metadata={"info": json.dumps(info, allow_nan=False)})


def rank_state_from_bytes(data: bytes) -> tuple[dict[str, torch.Tensor], dict]:
    tensors = safetensors.torch.load(data)
    header_len = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + header_len])["__metadata__"]
    return tensors, json.loads(meta["info"])


# --------------------------------------------------------------------------- the resume checkpoint


def save_checkpoint(
    path: str | os.PathLike, model_state: dict[str, torch.Tensor], optimizer_state: dict,
    rank_states: list[tuple[dict[str, torch.Tensor], dict]], trainer_state: dict,
) -> None:
    """Write the single resume file (see the module docstring); ``rank_states[r]`` is rank r's
    :func:`pack_rank_state`."""
    opt_tensors, opt_rest = flatten_optimizer_state(optimizer_state)
    tensors = {f"model/{k}": v for k, v in model_state.items()}
    tensors.update(opt_tensors)
    for rank, (rank_tensors, _) in enumerate(rank_states):
        tensors.update({f"rank/{rank}/{k}": v for k, v in rank_tensors.items()})
    state = dict(_jsonable(trainer_state, "trainer state"), optimizer=opt_rest,
                 ranks=[info for _, info in rank_states])
    text = json.dumps(state, allow_nan=False)
    save_tensors(path, tensors, {"format": FORMAT, "trainer_state": text})


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """Read the resume file. Returns the trainer state dict with the tensors put back in place:
    ``model`` (a state_dict), ``optimizer`` (a torch optimizer state_dict) and ``ranks`` (per rank:
    {"rng", "carry", "partial"})."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from (expected a run directory written by fit())")
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: expected format {FORMAT!r}, found {meta.get('format')!r}")
    tensors = _load_file(path, device)
    state = json.loads(meta["trainer_state"])
    ranks = state.pop("ranks")
    state = _from_jsonable(state)
    state["model"] = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    state["optimizer"] = unflatten_optimizer_state(tensors, state["optimizer"])
    state["ranks"] = []
    for rank, info in enumerate(ranks):
        prefix = f"rank/{rank}/"
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        state["ranks"].append(unpack_rank_state(own, info))
    return state
