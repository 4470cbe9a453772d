"""The command line: bad input gives one line on stderr and exit code 2; train -> sample -> eval end to end."""
import json
import math

import pytest
from _cli_errors import one_error_line

from rnnkit import __version__
from rnnkit.cli import main

TEXT = "the cat sat on the mat\nthe dog sat on the log\n" * 40


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.txt"
    one_error_line(capsys, ["train", "lm", "--data", str(path), "--out", str(tmp_path / "r")],
                   str(path), "not found")


def test_empty_file(tmp_path, capsys):
    path = tmp_path / "empty.txt"
    path.write_text("  \n")
    one_error_line(capsys, ["train", "lm", "--data", str(path), "--out", str(tmp_path / "r")], str(path), "empty")


def test_non_utf8_file(tmp_path, capsys):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    one_error_line(capsys, ["train", "lm", "--data", str(path), "--out", str(tmp_path / "r")],
                   str(path), "UTF-8")


def test_unknown_cell(capsys):
    one_error_line(capsys, ["train", "lm", "--cell", "transformer"], "--cell", "transformer", "lstm")


@pytest.mark.parametrize("bptt", ["0", "-3"])
def test_bptt_must_be_positive(capsys, bptt):
    one_error_line(capsys, ["train", "lm", "--bptt", bptt], "--bptt", "> 0")


def test_unknown_option_rejected(capsys):
    one_error_line(capsys, ["train", "lm", "--hiden", "10"], "unrecognized arguments: --hiden")


def test_tied_needs_equal_sizes(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    one_error_line(capsys, ["train", "lm", "--data", str(path), "--tied", "--emb", "8", "--hidden", "16",
                            "--out", str(tmp_path / "r")], "tied", "emb=8", "hidden=16")


def test_eval_of_a_missing_run(tmp_path, capsys):
    one_error_line(capsys, ["eval", str(tmp_path / "norun"), "--data", "x.txt"], "norun", "not a run directory")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    one_error_line(capsys, ["predict", str(tmp_path / "bad")],
                   "config.json:1: expected JSON, found text that is not JSON")


def test_train_sample_eval_end_to_end(tmp_path, capsys):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text(TEXT)
    valid.write_text(TEXT[:300])
    run = tmp_path / "run"
    code = main(["train", "lm", "--data", str(train), "--valid", str(valid), "--level", "word", "--cell", "gru",
                 "--layers", "1", "--hidden", "16", "--tied", "--bptt", "8", "--batch-size", "4",
                 "--optimizer", "adam", "--lr", "0.02", "--epochs", "6", "--out", str(run), "--seed", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "epoch 6" in out
    vocab = json.loads((run / "vocab.json").read_text())["itos"]
    assert vocab[:2] == ["<unk>", "<eos>"] and set(vocab[2:]) == set(TEXT.split())

    assert main(["eval", str(run), "--data", str(valid)]) == 0
    fields = capsys.readouterr().out.split()
    metrics = dict(zip(fields[::2], map(float, fields[1::2])))
    assert metrics["ppl"] == pytest.approx(math.exp(metrics["loss"]), rel=1e-3)
    assert metrics["ppl"] < 3.0  # a text of 7 word types with 2 sentence frames; uniform would be 9

    assert main(["sample", str(run), "--prime", "the", "--length", "12", "--greedy", "--num-samples", "2"]) == 0
    texts = capsys.readouterr().out.strip().split("\n\n")
    assert len(texts) == 2 and texts[0] == texts[1]  # greedy: both samples identical
    assert all(w in set(TEXT.split()) for w in texts[0].split())

    # `predict` and `eval` dispatch on the run's task: an lm run has no predict; eval rejects foreign options
    one_error_line(capsys, ["predict", str(run), "--input", str(valid)], "'lm' run has no `predict`")
    one_error_line(capsys, ["eval", str(run), "--data", str(valid), "--beam", "3"], "unrecognized", "--beam")


def test_resume_continues_to_the_configured_epochs(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    run = tmp_path / "run"
    args = ["train", "lm", "--data", str(path), "--layers", "1", "--hidden", "8", "--bptt", "16",
            "--batch-size", "4", "--epochs", "2", "--out", str(run)]
    assert main(args) == 0
    first = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((run / "config.json").read_text())
    config["train"]["epochs"] = 3
    (run / "config.json").write_text(json.dumps(config))
    assert main(["train", "lm", "--resume", str(run)]) == 0
    after = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert after[: len(first)] == first and max(r["epoch"] for r in after) == 3


def test_same_seed_same_losses_other_seed_other_losses(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)

    def losses(seed, name):
        run = tmp_path / name
        assert main(["train", "lm", "--data", str(path), "--layers", "1", "--hidden", "8", "--bptt", "8",
                     "--batch-size", "4", "--epochs", "2", "--dropout", "0.2", "--init-range", "0",
                     "--seed", str(seed), "--out", str(run)]) == 0
        return [r["metrics"]["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]

    first = losses(5, "a")
    assert losses(5, "b") == first  # CPU runs are deterministic by seed, initial weights included
    assert losses(6, "c") != first


def test_demo_ends_with_the_command_that_serves_its_run(tmp_path, capsys):
    """`rnnkit demo` (a few seconds of training here): its last line is `rnnkit serve RUN` and the page's
    address, and the app of that RUN generates what the run itself samples (greedy)."""
    import torch
    from fastapi.testclient import TestClient

    from rnnkit.generate import SamplingOptions
    from rnnkit.serve import create_app
    from rnnkit.tasks import lm

    out, threads = tmp_path / "demo", torch.get_num_threads()
    try:
        assert main(["demo", "--minutes", "0.02", "--out", str(out), "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)  # the demo sets the process's threads
    last = [line for line in capsys.readouterr().out.splitlines() if line.strip()][-1]
    assert last.startswith(f"serve this run: rnnkit serve {out} ") and "http://127.0.0.1:8000/" in last
    run_dir = last.split("rnnkit serve ", 1)[1].split()[0]
    with TestClient(create_app(run_dir)) as client:
        r = client.post("/v1/generate", json={"prime": "ROMEO:", "length": 40, "greedy": True, "stream": False})
    expected = lm.sample_text(lm.load_run(out), "ROMEO:", 40, 1, SamplingOptions(greedy=True), seed=0)[0]
    assert r.status_code == 200 and r.json()["text"] == expected
