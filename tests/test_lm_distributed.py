"""`torchrun --nproc_per_node 2 rnnkit train lm` equals one process on the whole batch (DDP's closed form).

Each process takes B/2 of the stream's B columns; DDP averages the two gradients, which is the gradient of the
one-process loss (summed over time, averaged over all B columns). So, without dropout, both runs take the same
SGD steps and end with the same weights, up to float32 summation order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnkit.train import load_weights
from rnnkit.train.progress import read_metrics

ROOT = Path(__file__).resolve().parents[1]
TEXT = "the cat sat on the mat . the dog sat on the log . " * 40


def torchrun_env() -> dict:
    """This checkout's src first, one thread, and no torchrun variables inherited from the calling process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def assert_same_weights(one: Path, two: Path) -> None:
    """The two runs' weights.safetensors hold the same tensors (up to float32 summation order)."""
    a, b = load_weights(one / "weights.safetensors"), load_weights(two / "weights.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)


def _train_args(data: Path, run: Path) -> list[str]:
    return ["train", "lm", "--data", str(data), "--level", "word", "--layers", "1", "--hidden", "12",
            "--bptt", "6", "--batch-size", "4", "--optimizer", "sgd", "--lr", "0.5", "--epochs", "2",
            "--seed", "3", "--out", str(run)]


def _losses(run: Path) -> list[tuple]:
    return [(r["split"], r["epoch"], r["metrics"]["loss"]) for r in read_metrics(run) if r["split"] != "train_running"]


def test_torchrun_two_processes_equal_one_process(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text(TEXT)
    script = str(Path(sys.executable).parent / "rnnkit")  # the console script, as `torchrun ... rnnkit train`
    one = subprocess.run([sys.executable, script, *_train_args(data, tmp_path / "one")], env=torchrun_env(),
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          script, *_train_args(data, tmp_path / "two")], env=torchrun_env(), capture_output=True,
                         text=True, timeout=180)
    assert two.returncode == 0, two.stderr[-2000:]
    assert_same_weights(tmp_path / "one", tmp_path / "two")
    one_losses, two_losses = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert [x[:2] for x in one_losses] == [x[:2] for x in two_losses]
    for x, y in zip(one_losses, two_losses):
        assert y[2] == pytest.approx(x[2], rel=1e-4)  # metrics summed over both processes
    valid = [loss for split, _, loss in one_losses if split == "valid"]
    assert valid[-1] < valid[0]  # it did learn, so the equality above is not between two idle runs
