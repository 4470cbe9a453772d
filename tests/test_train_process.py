"""Trainer runs in real processes: SIGKILL + resume == uninterrupted; 2-process DDP == 1 process on the union."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnnkit.train import load_weights
from rnnkit.train.progress import read_metrics

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / "tests" / "_toy.py")


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def toy(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TOY, str(run_dir), *args], env=_env(), capture_output=True,
                          text=True, timeout=120, check=True)


def per_epoch(run_dir: Path) -> list[tuple]:
    return [(r["split"], r["step"], r["metrics"]) for r in read_metrics(run_dir) if r["split"] != "train_running"]


def wait_for_step(run_dir: Path, proc: subprocess.Popen, step: int, timeout: float = 60.0) -> None:
    """Poll metrics.jsonl until a record with ``step`` >= step appears (log_every=1 in the toy script)."""
    path, deadline = run_dir / "metrics.jsonl", time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"training ended before step {step}: {proc.stderr.read()}"
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] >= step:
                        return
                except (json.JSONDecodeError, KeyError):
                    pass  # a line being written
        time.sleep(0.005)
    raise AssertionError(f"no step {step} in {path} after {timeout}s")


def test_sigkill_then_resume_reaches_the_same_losses_and_weights(tmp_path):
    args = ["--epochs", "3", "--dropout", "0.3", "--checkpoint-every", "5"]
    toy(tmp_path / "full", *args)

    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, TOY, str(cut), *args, "--sleep", "0.02"], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_step(cut, proc, 31)  # epoch 2 of 3 (24 batches per epoch), past a mid-epoch checkpoint
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len([r for r in per_epoch(cut) if r[0] == "valid"]) < 3  # it really was cut short

    toy(cut, *args, "--resume")
    assert per_epoch(cut) == per_epoch(tmp_path / "full")
    for name in ("weights.safetensors", "best.safetensors"):
        a, b = load_weights(cut / name), load_weights(tmp_path / "full" / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_two_process_ddp_equals_one_process_on_the_union_of_the_shards(tmp_path):
    args = ["--epochs", "1", "--optimizer", "sgd", "--lr", "0.5", "--batch-size", "4", "--stream-length", "401"]
    toy(tmp_path / "single", *args)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", TOY,
           str(tmp_path / "ddp"), *args]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    # DDP averages the shards' gradients; each shard's loss is averaged over its B/2 sequences, so the
    # average equals the gradient of the loss averaged over all B sequences: the single-process step.
    single, ddp = load_weights(tmp_path / "single" / "weights.safetensors"), load_weights(
        tmp_path / "ddp" / "weights.safetensors")
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-5, atol=1e-6)
    (s_train, s_valid), (d_train, d_valid) = per_epoch_metrics(tmp_path / "single"), per_epoch_metrics(
        tmp_path / "ddp")
    assert d_train["tokens"] == s_train["tokens"]  # each rank saw its shard, together the union
    assert d_train["loss"] == pytest.approx(s_train["loss"], rel=1e-6)  # stats summed over both ranks
    assert d_valid["loss"] == pytest.approx(s_valid["loss"], rel=1e-5)
    state = json.loads((tmp_path / "ddp" / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and len(state["ranks"]) == 2  # every rank's resume state was gathered


def per_epoch_metrics(run_dir: Path) -> tuple[dict, dict]:
    records = read_metrics(run_dir)
    train = [r["metrics"] for r in records if r["split"] == "train"]
    valid = [r["metrics"] for r in records if r["split"] == "valid"]
    return train[-1], valid[-1]


def torchrun(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", TOY,
           str(run_dir), *args]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)


def test_two_process_run_crashed_mid_epoch_resumes_exactly(tmp_path):
    # dropout: each rank's own RNG state must come back; checkpoint_every: each rank's carried state too
    args = ["--epochs", "2", "--dropout", "0.3", "--checkpoint-every", "3", "--batch-size", "4",
            "--stream-length", "401"]
    full = torchrun(tmp_path / "full", *args)
    assert full.returncode == 0, full.stderr[-3000:]
    crashed = torchrun(tmp_path / "cut", *args, "--crash-at", "1:5")
    assert crashed.returncode != 0 and "simulated crash at epoch 1, batch 5" in crashed.stderr
    state = json.loads((tmp_path / "cut" / "trainer_state.json").read_text())
    assert (state["epoch"], state["next_batch"]) == (1, 3)
    resumed = torchrun(tmp_path / "cut", *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert per_epoch(tmp_path / "cut") == per_epoch(tmp_path / "full")
    a, b = load_weights(tmp_path / "cut" / "weights.safetensors"), load_weights(
        tmp_path / "full" / "weights.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
