"""rnnkit.tasks.runs: the run-directory checks and the best/last weight choice every task's load_run uses."""

import json

import pytest
import torch
from torch import nn

from rnnkit.data import DataError
from rnnkit.tasks.runs import load_run_weights, read_run_config, write_run_files
from rnnkit.train.checkpoint import save_weights

SECTIONS = {"model": {}, "data": {}, "train": {}}


def _run_dir(tmp_path, task="tag"):
    (tmp_path / "config.json").write_text(json.dumps({"task": {"name": task}, **SECTIONS}))
    return tmp_path


def test_read_run_config_returns_the_json_of_the_right_task(tmp_path):
    assert read_run_config(_run_dir(tmp_path), "tag", "a tagging run") == {"task": {"name": "tag"}, **SECTIONS}


@pytest.mark.parametrize("config, message", [
    ([1, 2], "expected a JSON object with task, model, data and train, found list"),
    ({"task": {"name": "tag"}, "model": {}, "data": {}}, "missing section 'train'"),
    ({"task": {"name": "tag"}, "model": [], "data": {}, "train": {}}, "model: expected an object, found list"),
    ({"task": "tag", **SECTIONS}, r"task: expected an object with the task's name .*, found 'tag'"),
])
def test_read_run_config_checks_the_sections(tmp_path, config, message):
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=message):
        read_run_config(tmp_path, "tag", "a tagging run")


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing",
     r"missing: not a run directory \(no such directory; expected the --out of `rnnkit train tag`\)"),
    (lambda p: p, r": not a run directory \(no config.json; expected the --out of `rnnkit train tag`\)"),
    (lambda p: _run_dir(p, "lm"), r"config\.json: expected a tagging run \(task 'tag'\), found task 'lm'"),
])
def test_read_run_config_names_what_is_wrong(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        read_run_config(make(tmp_path), "tag", "a tagging run")


def _weights(value: float) -> dict:
    return {"weight": torch.full((2, 3), value), "bias": torch.full((2,), value)}


@pytest.mark.parametrize("files, weights, expected", [
    ({"best": 1.0, "weights": 2.0}, "best", 1.0),
    ({"best": 1.0, "weights": 2.0}, "last", 2.0),
    ({"weights": 2.0}, "best", 2.0),  # no validated epoch yet: no best.safetensors, the last weights serve
    ({"best": 1.0, "weights": 2.0}, None, None),  # None: the fresh initialisation stays
])
def test_load_run_weights_picks_best_or_last(tmp_path, files, weights, expected):
    for name, value in files.items():
        save_weights(tmp_path / f"{name}.safetensors", _weights(value))
    torch.manual_seed(0)
    model = nn.Linear(3, 2).train()
    fresh = model.weight.detach().clone()
    loaded = load_run_weights(tmp_path, model, weights)
    assert loaded is model and not model.training
    want = fresh if expected is None else torch.full((2, 3), expected)
    torch.testing.assert_close(model.weight.detach(), want, rtol=0, atol=0)


def test_load_run_weights_rejects_an_unknown_choice(tmp_path):
    with pytest.raises(ValueError, match="weights must be 'best', 'last' or None, got 'first'"):
        load_run_weights(tmp_path, nn.Linear(3, 2), "first")


def test_write_run_files_saves_vocabularies_and_keeps_other_config_entries(tmp_path):
    from rnnkit.data import Vocab

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"train": {"epochs": 3}}))
    vocab = Vocab.build(["b", "a", "b"], min_freq=1, specials=("<unk>",))
    run_dir = write_run_files(tmp_path / "run", {"vocab.json": vocab, "chars.json": None},
                              task={"name": "tag"}, data={"train": "t.txt"}, model={"hidden": 2})
    assert run_dir == tmp_path / "run" and not (run_dir / "chars.json").exists()
    assert Vocab.load(run_dir / "vocab.json").itos == vocab.itos
    assert read_run_config(run_dir, "tag", "a tagging run") == {
        "train": {"epochs": 3}, "task": {"name": "tag"}, "data": {"train": "t.txt"}, "model": {"hidden": 2}}


@pytest.mark.parametrize("module, task", [("lm", "lm"), ("classify", "classify"), ("forecast", "forecast"),
                                          ("tag", "tag"), ("tree", "tree"), ("seq2seq", "seq2seq")])
def test_resume_and_load_run_reject_another_task_s_run(tmp_path, module, task):
    import importlib

    other = "tag" if task != "tag" else "lm"
    run_dir = _run_dir(tmp_path, other)
    mod = importlib.import_module(f"rnnkit.tasks.{module}")
    for verb in (mod.resume, mod.load_run):
        with pytest.raises(DataError, match=rf"expected .* \(task '{task}'\), found task '{other}'"):
            verb(run_dir)
