"""The run lifecycle contract (rnnkit.tasks.driver), swept over every task and the lab through the command
line: a run directory is never lost, a config replays its run, a damaged run is one line.

Oracles: the bytes of the run directory before and after (a failed start changes nothing), an uninterrupted
run's metrics (a replayed config, an extended resume), and the config dataclasses themselves (defaults and
choices of the generated options).
"""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from _cli_errors import one_error_line
from _runs import TASKS, make_data, snapshot, train_argv, use_argv

from rnnkit.cli import main
from rnnkit.train.checkpoint import read_json, save_tensors


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Per task: its data, the arguments, a finished 2-epoch run and a 1-epoch run of the same config."""
    out = {}
    for task in TASKS:
        folder = tmp_path_factory.mktemp(task)
        args, use = make_data(task, folder / "data")
        assert main(train_argv(task, args, folder / "two")) == 0
        assert main(train_argv(task, args, folder / "one", "--epochs", "1")) == 0
        out[task] = {"folder": folder, "args": args, "use": use, "two": folder / "two", "one": folder / "one"}
    return out


def _metrics(run) -> list[dict]:
    """metrics.jsonl without the wall-clock fields: what must be equal between two runs of one config."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if k not in ("time", "tokens_per_second")} for r in records]


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _leftovers(parent) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".replaced-" in p.name)


# ---- never lose a run ------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_training_into_an_existing_run_is_refused_and_changes_nothing(base, task, tmp_path, capsys):
    b = base[task]
    run = _copy(b["two"], tmp_path / "run")
    before = snapshot(run)
    one_error_line(capsys, train_argv(task, b["args"], run), "already holds a run", "--resume", "--overwrite")
    assert snapshot(run) == before


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("bad, message", [
    (["--device", "cuda:7"], "CUDA is not available"),
    (["--hidden", "10000000"], "does not fit in memory"),
])
def test_a_failed_overwrite_leaves_the_old_run_byte_for_byte(base, task, bad, message, tmp_path, capsys):
    if bad[0] == "--device" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # never the case on the project's machines
    b = base[task]
    run = _copy(b["two"], tmp_path / "run")
    before = snapshot(run)
    one_error_line(capsys, train_argv(task, b["args"], run, "--overwrite", *bad), message)
    assert snapshot(run) == before and _leftovers(tmp_path) == []
    assert main(use_argv(b["use"], run)) == 0  # and it still loads


def test_divergence_at_the_first_batches_leaves_no_run(base, tmp_path, capsys):
    b = base["forecast"]
    run = tmp_path / "run"
    # (a point forecast: its squared error overflows at once; the pinball loss of quantiles grows only linearly)
    line = one_error_line(capsys, train_argv("forecast", b["args"], run, "--lr", "1e30", "--clip-mode", "none",
                                             "--quantiles", "none"),
                          "training diverged at epoch 1", "nothing was saved in")
    assert "loss=" in line and not run.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("task", ["classify", "lab"])
def test_a_second_writer_is_stopped_by_the_lock(base, task, tmp_path, capsys):
    from rnnkit.tasks.runs import RunLock

    b = base[task]
    run = _copy(b["one"], tmp_path / "run")
    before = snapshot(run)
    with RunLock(run):  # as another process would hold it (flock: a second open file conflicts)
        one_error_line(capsys, train_argv(task, b["args"], run, "--overwrite"), "in use by another rnnkit process",
                       "PID")
        one_error_line(capsys, ["train", "classify", "--resume", str(run)] if task == "classify"
                       else ["train", "lm", "--resume", str(run)], "in use by another rnnkit process")
    assert snapshot(run) == before
    assert main(train_argv(task, b["args"], run, "--overwrite", "--epochs", "1")) == 0  # released


def test_what_a_killed_start_left_is_tidied_under_the_lock(base, tmp_path):
    """A staged run that never reached its first checkpoint is deleted; an old run renamed aside by a
    replacement killed between its two renames is put back before anything else happens."""
    b = base["classify"]
    old = _copy(b["two"], tmp_path / ".run.replaced-999999")
    before = snapshot(old)
    (tmp_path / ".run.partial-999998").mkdir()
    (tmp_path / ".run.partial-999998" / "config.json").write_text("{}")
    assert main(["train", "classify", "--resume", str(tmp_path / "run"), "--epochs", "2", "--quiet"]) == 0
    assert snapshot(tmp_path / "run") == before and _leftovers(tmp_path) == []  # restored, nothing left to train


@pytest.mark.parametrize("task", TASKS)
def test_overwrite_replaces_the_run_once_the_new_one_started(base, task, tmp_path):
    b = base[task]
    run = _copy(b["two"], tmp_path / "run")
    assert main(train_argv(task, b["args"], run, "--overwrite", "--hidden", "5", "--epochs", "1")) == 0
    assert read_json(run / "config.json")["model"]["hidden"] == 5 and _leftovers(tmp_path) == []
    assert len(read_json(run / "trainer_state.json")["history"]) == 1


@pytest.mark.parametrize("make, message", [
    (lambda p: (p / "f").write_text("x") and p / "f", "is a file; expected a directory"),
    (lambda p: (p / "f").write_text("x") and p / "f" / "run", "is a file, so no directory can be made under it"),
    (lambda p: (p / "d").mkdir() or (p / "d" / "keep.txt").write_text("x") and p / "d", "not empty and holds no run"),
])
def test_out_that_cannot_hold_a_run(base, make, message, tmp_path, capsys):
    out = make(tmp_path)
    before = snapshot(tmp_path)
    one_error_line(capsys, train_argv("classify", base["classify"]["args"], out), message)
    assert snapshot(tmp_path) == before


# ---- one source of configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("task", [t for t in TASKS if t != "lab"])
def test_a_run_s_config_json_replays_the_run(base, task, tmp_path, capsys):
    b = base[task]
    assert main(["train", task, "--config", str(b["two"] / "config.json"), "--out", str(tmp_path / "again")]) == 0
    assert _metrics(tmp_path / "again") == _metrics(b["two"])


@pytest.mark.parametrize("task", [t for t in TASKS if t != "lab"])
def test_print_config_is_a_config_file_that_reproduces_the_flags(base, task, tmp_path, capsys):
    b = base[task]
    capsys.readouterr()
    assert main(train_argv(task, b["args"], tmp_path / "unused", "--print-config")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert not (tmp_path / "unused").exists()
    saved = read_json(b["two"] / "config.json")
    for section in ("data", "train"):
        assert {k: v for k, v in printed[section].items()} == {
            k: v if not isinstance(v, str) or k not in _paths(saved[section]) else printed[section][k]
            for k, v in saved[section].items()}
    assert all(saved["model"][k] == v for k, v in printed["model"].items() if v is not None)
    (tmp_path / "cfg.json").write_text(json.dumps(printed))
    assert main(["train", task, "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "run")]) == 0
    assert _metrics(tmp_path / "run") == _metrics(b["two"])


def _paths(section: dict) -> set[str]:
    return {k for k, v in section.items() if isinstance(v, str) and ("/" in v or "\\" in v)}


def test_toml_and_yaml_config_files_with_flags_overriding_them(base, tmp_path, capsys):
    b = base["classify"]
    data = b["args"][1]
    (tmp_path / "c.toml").write_text(f'[data]\ntrain = "{data}"\nbatch_size = 16\n[model]\nhidden = 6\nemb = 4\n'
                                     '[train]\nepochs = 2\nseed = 3\ndevice = "cpu"\nquiet = true\n')
    (tmp_path / "c.yaml").write_text(f"data: {{train: '{data}', batch_size: 16}}\nmodel: {{hidden: 7, emb: 4}}\n"
                                     "train: {epochs: 2, seed: 3, device: cpu, quiet: true}\n")
    assert main(["train", "classify", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "t")]) == 0
    assert _metrics(tmp_path / "t") == _metrics(b["two"])
    assert main(["train", "classify", "--config", str(tmp_path / "c.yaml"), "--hidden", "6",
                 "--out", str(tmp_path / "y")]) == 0
    assert _metrics(tmp_path / "y") == _metrics(b["two"])


@pytest.mark.parametrize("text, message", [
    ("[model]\nhiddn = 6\n", "c.toml: model: unknown key 'hiddn'"),
    ("[model]\nhidden = 'six'\n", "c.toml: model: hidden: expected an integer, found 'six'"),
    ("[train]\nlr = true\n", "c.toml: train: lr: expected a number or null, found True"),
    ("[dat]\ntrain = 'x'\n", "c.toml: unknown section 'dat'"),
    ("[task]\nname = 'tag'\n", "this is a config for 'tag', not for `rnnkit train classify`"),
    ("[data\n", "c.toml: not valid TOML"),
])
def test_config_file_errors_name_the_file_and_the_key(base, text, message, tmp_path, capsys):
    (tmp_path / "c.toml").write_text(f"[data]\ntrain = '{base['classify']['args'][1]}'\n" + text
                                     if not text.startswith("[data") else text)
    one_error_line(capsys, ["train", "classify", "--config", str(tmp_path / "c.toml"), "--out",
                            str(tmp_path / "r")], message)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("task", [t for t in TASKS if t != "lab"])
def test_the_options_defaults_are_the_dataclass_defaults(base, task, capsys):
    import dataclasses

    from rnnkit.config import defaults
    from rnnkit.tasks.driver import spec_for

    spec = spec_for(task)
    capsys.readouterr()
    required = {"lm": [], "classify": ["--data", "x"], "tag": ["--data", "x"], "forecast": ["--data", "x",
                "--target", "y"], "seq2seq": ["--src", "s", "--tgt", "t"], "tree": ["--data", "x"]}[task]
    assert main(["train", task, *required, "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["train"] == spec.train_config().to_dict()
    assert printed["model"] == defaults(spec.model_config)
    data_defaults = {f.name: f.default for f in dataclasses.fields(spec.data_config)
                     if f.default is not dataclasses.MISSING}
    assert {k: printed["data"][k] for k in data_defaults if k not in ("train", "src", "tgt", "path")} == {
        k: v for k, v in data_defaults.items() if k not in ("train", "src", "tgt", "path")}


def test_choices_come_from_the_registries():
    from rnnkit.cli import build_parser
    from rnnkit.nn import CELLS
    from rnnkit.nn.attention import ATTENTIONS
    from rnnkit.nn.tree import TREE_CELLS

    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices["train"]._actions
                 if a.dest == "task").choices

    def choices(task, dest):
        return next(a.choices for a in train[task]._actions if a.dest == dest)

    for task in ("lm", "classify", "tag", "forecast", "seq2seq"):
        assert sorted(choices(task, "model.cell")) == sorted(CELLS)
    assert choices("tree", "model.cell") == list(TREE_CELLS)
    assert choices("seq2seq", "model.attention") == [*ATTENTIONS, "none"]


# ---- resume ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", [t for t in TASKS if t != "lab"])
def test_resume_with_more_epochs_equals_the_longer_run(base, task, tmp_path):
    b = base[task]
    run = _copy(b["one"], tmp_path / "run")
    assert main(["train", task, "--resume", str(run), "--epochs", "2", "--quiet"]) == 0
    assert _metrics(run) == _metrics(b["two"])


@pytest.mark.parametrize("task", [t for t in TASKS if t != "lab"])
def test_resume_refuses_options_that_change_the_run(base, task, tmp_path, capsys):
    b = base[task]
    run = _copy(b["one"], tmp_path / "run")
    before = snapshot(run)
    one_error_line(capsys, ["train", task, "--resume", str(run), "--hidden", "3"], "--hidden would change the run")
    one_error_line(capsys, ["train", task, "--resume", str(run), "--lr", "0.5"], "lr would change the run")
    if task != "seq2seq":  # the training file's flag is --data (the field is `train` or `path`)
        one_error_line(capsys, ["train", task, "--resume", str(run), "--data", "x"], "--data would change")
    assert snapshot(run) == before


# ---- a damaged run directory is one line -----------------------------------------------------------------------


def _edit_config(run, edit):
    config = read_json(run / "config.json")
    edit(config)
    (run / "config.json").write_text(json.dumps(config))


def _nan_weights(run):
    """NaN in the first float tensor of every weights file (and of the checkpoint's model), as a diverged run
    written by something other than rnnkit would hold."""
    from safetensors.torch import load_file

    from rnnkit.train.checkpoint import read_metadata

    for name in ("best.safetensors", "weights.safetensors", "checkpoint.safetensors"):
        if (run / name).exists():
            tensors = load_file(run / name)
            key = next(k for k, t in tensors.items() if t.is_floating_point() and not k.startswith(("rank/", "optim")))
            tensors[key] = torch.full_like(tensors[key], float("nan"))
            save_tensors(run / name, tensors, read_metadata(run / name))


def _shorter_vocab(run):
    name = next(n for n in ("vocab.json", "tgt_vocab.json") if (run / n).exists())
    vocab = read_json(run / name)
    vocab["itos"] = vocab["itos"][:-1]
    (run / name).write_text(json.dumps(vocab))


TAMPERING = {
    "no model section": (lambda r: _edit_config(r, lambda c: c.pop("model")), "missing section 'model'"),
    "hidden as text": (lambda r: _edit_config(r, lambda c: c["model"].update(hidden="big")),
                       "model: hidden: expected an integer, found 'big'"),
    "unknown model key": (lambda r: _edit_config(r, lambda c: c["model"].update(colour=1)),
                          "model: unknown key 'colour'"),
    "task as a string": (lambda r: _edit_config(r, lambda c: c.update(task=c["task"]["name"])),
                         "task: expected an object"),
    "shapes of another size": (lambda r: _edit_config(r, lambda c: c["model"].update(hidden=c["model"]["hidden"] + 1)),
                               "expected shape"),
    "NaN weights": (_nan_weights, "holds NaN or inf values"),
    "a shorter vocabulary": (_shorter_vocab, "do not belong together"),
    "a normaliser of other columns": (lambda r: (r / "normalizer.json").write_text(json.dumps(
        {"columns": ["y", "x"], "mean": [0.0, 0.0], "std": [1.0, 1.0]})), "normalizer.json: expected columns"),
}


@pytest.mark.parametrize("task", [t for t in TASKS if t != "lab"])  # lab runs are read by `report` only
@pytest.mark.parametrize("damage", [d for d in TAMPERING if d != "a normaliser of other columns"])
def test_a_damaged_run_gives_one_line_naming_the_file(base, task, damage, tmp_path, capsys):
    if damage == "a shorter vocabulary" and task == "forecast":
        damage = "a normaliser of other columns"
    b = base[task]
    run = _copy(b["two"], tmp_path / "run")
    tamper, message = TAMPERING[damage]
    tamper(run)
    line = one_error_line(capsys, use_argv(b["use"], run), message)
    assert str(run) in line
    one_error_line(capsys, ["train", task, "--resume", str(run), "--epochs", "3"], str(run))


# ---- the top-level guard ----------------------------------------------------------------------------------------


def test_an_internal_error_is_one_line_with_exit_1_and_debug_shows_it(base, monkeypatch, capsys):
    from rnnkit.tasks import classify

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(classify, "predict_proba", broken)
    b = base["classify"]
    argv = use_argv(b["use"], b["two"])
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rnnkit: internal error: KeyError") and "--debug" in err[0]
    with pytest.raises(KeyError, match="a bug"):
        main(["--debug", *argv])


@pytest.mark.parametrize("where, message", [
    (lambda p: (p / "f").write_text("x") and p / "f" / "att.png", "att.png"),
    (lambda p: p / "no" / "such" / "dir" / "att.png", "att.png"),
])
def test_plot_attention_to_an_unwritable_place_is_one_line(base, where, message, tmp_path, capsys):
    b = base["seq2seq"]
    one_error_line(capsys, [*use_argv(b["use"], b["two"]), "--plot-attention", str(where(tmp_path))], message)
