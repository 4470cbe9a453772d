"""Checkpoint files, config and reporting helpers of rnnkit.train, each against an independent oracle."""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import random
import sys
from collections import namedtuple

import numpy as np
import pytest
import safetensors.torch
import torch

from rnnkit.nn.state import flatten_tree, unflatten_tree
from rnnkit.train import (
    CheckpointError,
    TrainConfig,
    atomic_write_json,
    detach_tree,
    load_weights,
    progress,
    save_weights,
    update_config_json,
)
from rnnkit.train import checkpoint as ckpt
from rnnkit.train.progress import ProgressBar

State = namedtuple("State", ["h", "c"])


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    atomic_write_json(path, {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like open(), not mkstemp's 0600

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)  # the process dies between writing and renaming
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(path, {"x": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"x": 1}  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # and the temp file is gone
    with pytest.raises(ValueError):
        atomic_write_json(path, {"x": float("nan")})  # strict JSON only


def test_update_config_json_keeps_the_other_keys(tmp_path):
    atomic_write_json(tmp_path / "config.json", {"task": "lm", "model": {"hidden": 8}})
    update_config_json(tmp_path, "train", {"lr": 1.0})
    assert json.loads((tmp_path / "config.json").read_text()) == {"task": "lm", "model": {"hidden": 8},
                                                                  "train": {"lr": 1.0}}


def test_weights_round_trip_with_tied_parameters_and_no_pickle(tmp_path, monkeypatch):
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(5, 3)
            self.out = torch.nn.Linear(3, 5)
            self.out.weight = self.embed.weight  # weight tying: two names, one tensor

    a, b = Tied(), Tied()
    save_weights(tmp_path / "w.safetensors", a, {"epoch": 3})
    raw = (tmp_path / "w.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])  # the safetensors format, by hand
    assert header["__metadata__"] == {"epoch": "3"} and header["embed.weight"]["shape"] == [5, 3]
    monkeypatch.setattr(pickle, "Unpickler", None)  # loading must not need pickle at all
    monkeypatch.setattr(pickle, "loads", None)
    load_weights(tmp_path / "w.safetensors", b)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert b.out.weight is b.embed.weight
    with pytest.raises(CheckpointError, match="weights file not found"):
        load_weights(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_optimizer_state_round_trip_continues_bitwise(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    from rnnkit.train.optim import make_optimizer

    cfg = TrainConfig(optimizer=name, momentum=0.9 if name in ("sgd", "rmsprop") else 0.0, weight_decay=0.01)
    opt = make_optimizer(model.parameters(), cfg)
    x = torch.randn(8, 4)

    def step(m, o):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()

    for _ in range(3):
        step(model, opt)
    tensors, rest = ckpt.flatten_optimizer_state(opt.state_dict())
    tensors = safetensors.torch.load(safetensors.torch.save(tensors))  # through the file format, no aliasing
    rest = json.loads(json.dumps(rest, allow_nan=False))  # the non-tensor part really is plain JSON
    twin = copy.deepcopy(model)
    twin_opt = make_optimizer(twin.parameters(), cfg)
    twin_opt.load_state_dict(ckpt.unflatten_optimizer_state(tensors, rest))
    for _ in range(3):
        step(model, opt)
        step(twin, twin_opt)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))


def test_rng_states_round_trip_through_json():
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's state
    saved = json.loads(json.dumps(ckpt.capture_rng()))
    first = (torch.rand(3), np.random.standard_normal(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    ckpt.restore_rng(saved)
    again = (torch.rand(3), np.random.standard_normal(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_state_trees_detach_and_round_trip_keeping_namedtuples():
    w = torch.ones(2, requires_grad=True)
    tree = (State(w * 2, w * 3), [w * 4, None], {"k": w * 5})
    detached = detach_tree(tree)
    assert isinstance(detached[0], State) and not detached[0].h.requires_grad
    assert detached[1][1] is None and torch.equal(detached[2]["k"], torch.full((2,), 5.0))
    spec, tensors = flatten_tree(detached)
    back = unflatten_tree(json.loads(json.dumps(spec)), tensors)
    assert type(back[0]) is State  # found among the already-imported modules
    assert torch.equal(back[0].c, detached[0].c) and back[1][1] is None and torch.equal(back[2]["k"], tensors[-1])
    spec["items"][0]["module"] = "no.such.module"
    stranger = unflatten_tree(spec, tensors)[0]  # an unknown class is rebuilt, never imported
    assert stranger._fields == ("h", "c") and torch.equal(stranger.h, detached[0].h)
    assert "no.such.module" not in sys.modules
    with pytest.raises(TypeError, match="expected tensors, tuples"):
        detach_tree(object())


def test_resume_file_is_one_safetensors_file_whose_metadata_holds_the_json_state(tmp_path):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    rank = ckpt.pack_rank_state(ckpt.capture_rng(), State(torch.zeros(1, 2), torch.ones(1, 2)), {"totals": {}})
    ckpt.save_checkpoint(tmp_path / "c.safetensors", model.state_dict(), opt.state_dict(), [rank],
                         {"epoch": 2, "best": float("inf")})
    back = ckpt.load_checkpoint(tmp_path / "c.safetensors")
    assert back["epoch"] == 2 and back["best"] == float("inf")
    assert torch.equal(back["model"]["weight"], model.weight)
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert isinstance(back["ranks"][0]["carry"], State)
    (tmp_path / "bad.safetensors").write_bytes((tmp_path / "c.safetensors").read_bytes()[:100])
    with pytest.raises(CheckpointError, match="bad.safetensors: not a readable safetensors file"):
        ckpt.load_checkpoint(tmp_path / "bad.safetensors")  # a torn file must not load as a checkpoint


@pytest.mark.parametrize("overrides,message", [
    ({"optimizer": "lbfgs"}, "optimizer: expected one of sgd, adam"),
    ({"clip_mode": "max"}, "clip_mode: expected one of norm, value, none"),
    ({"lr": -1.0}, "lr: expected > 0"),
    ({"epochs": 2.5}, "epochs: expected an integer"),
    ({"lr_factor": 2.0}, "lr_factor: expected a decay factor"),
    ({"nesterov": True}, "nesterov: needs optimizer='sgd' and momentum > 0"),
    ({"device": "tpu"}, "device: expected 'auto', 'cpu'"),
])
def test_config_rejects_bad_values_saying_what_was_expected(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TrainConfig(**overrides)


def test_config_round_trips_through_json_and_rejects_unknown_keys():
    cfg = TrainConfig(optimizer="adam", clip_mode="value", clip=0.5, lr_schedule="plateau")
    assert cfg.lr == 1e-3  # the optimizer's usual default
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['lr_decay'\]"):
        TrainConfig.from_dict({"lr_decay": 0.5})


def test_progress_bar_shows_metrics_and_tokens_per_second_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    bar = ProgressBar(total=4, epoch=1, epochs=2, start=0, enabled=True)
    bar.update(lambda: {"loss": 1.25, "bpc": 1.8}, tokens=1000)
    bar.close()
    out = screen.getvalue()
    assert "epoch 1/2" in out and "loss=1.25" in out and "bpc=1.8" in out and "tok/s=" in out
    screen.truncate(0)
    quiet = ProgressBar(total=4, epoch=1, epochs=2, start=0, enabled=False)
    quiet.update(lambda: {"loss": 1.0}, tokens=10)
    quiet.close()
    assert screen.getvalue() == ""


def test_metrics_log_feeds_tensorboard_when_available_and_truncates_on_resume(tmp_path, monkeypatch):
    scalars = []

    class FakeWriter:  # stands in for torch.utils.tensorboard.SummaryWriter (tensorboard is optional)
        def add_scalar(self, tag, value, step):
            scalars.append((tag, value, step))

        def close(self):
            scalars.append("closed")

    monkeypatch.setattr(progress, "_tensorboard_writer", lambda log_dir: FakeWriter())
    log = progress.MetricsLog(tmp_path, tensorboard=True)
    log.write({"epoch": 1, "step": 10, "split": "train", "metrics": {"loss": 2.0}, "lr": 0.5, "grad_norm": 3.0,
               "clipped": 0.0})
    log.write({"epoch": 1, "step": 10, "split": "valid", "metrics": {"ppl": 7.0}})
    log.write({"epoch": 2, "step": 20, "split": "train", "metrics": {"loss": 1.0}})
    log.close()
    assert scalars == [("train/loss", 2.0, 10), ("train/lr", 0.5, 10), ("train/grad_norm", 3.0, 10),
                       ("train/clipped", 0.0, 10), ("valid/ppl", 7.0, 10), ("train/loss", 1.0, 20), "closed"]
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "step": 2')  # a line torn by SIGKILL
    progress.MetricsLog(tmp_path, fresh=False).truncate_after(10)
    assert [r["step"] for r in progress.read_metrics(tmp_path)] == [10, 10]


def test_move_to_reaches_every_tensor_of_a_batch_and_keeps_the_rest():
    from dataclasses import dataclass

    from rnnkit.train import move_to

    @dataclass(frozen=True)
    class Batch:
        x: torch.Tensor
        lengths: list
        name: str

    class Custom:
        def to(self, device):
            return ("moved", str(device))

    batch = {"a": Batch(torch.ones(2), [torch.zeros(1), 3], "b0"), "b": (torch.ones(1), Custom()), "c": None}
    moved = move_to(batch, torch.device("meta"))
    assert moved["a"].x.is_meta and moved["a"].lengths[0].is_meta and moved["a"].lengths[1] == 3
    assert moved["a"].name == "b0" and moved["c"] is None
    assert moved["b"][0].is_meta and moved["b"][1] == ("moved", "meta")
