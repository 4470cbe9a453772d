"""Progress on stderr: plain lines where there is no terminal (their numbers are the Trainer's own: metrics.jsonl
and the history), the tqdm bar on a terminal, nothing with quiet. A fake clock makes tokens/s and ETA exact."""

from __future__ import annotations

import io
import re
import sys

import pytest
from _clock import FakeClock, Ticking, fit_with_clock
from _toy import build

from rnnkit.train import TrainConfig, Trainer
from rnnkit.train.progress import clock_text, read_metrics

STEP_LINE = re.compile(r"^epoch (\d+)/(\d+) - batch (\d+)/(\d+) - step (\d+) - (.*) - ([\d,]+) tok/s - ETA (\S+)$")
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+) - (?:(\d+)/(\d+) batches - )?(\d+)s \(validation (\d+)s\) - lr (\S+) - "
                        r"(.*?)( \*)?$")


def config(**overrides) -> TrainConfig:
    base = dict(epochs=2, optimizer="adam", lr=0.01, device="cpu", progress=True, tensorboard=False, log_every=5,
                seed=3)
    base.update(overrides)
    return TrainConfig(**base)


def metrics_of(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+): (-?[\d.]+(?:e[-+]?\d+)?)", text)}


def train(tmp_path, seconds_per_batch=1.0, valid_seconds=0.0, **overrides):
    clock = FakeClock()
    model, task, batches, valid = build(seed=0)
    trainer = Trainer(model, task, Ticking(batches, clock, seconds_per_batch), Ticking(valid, clock, valid_seconds),
                      config(**overrides), tmp_path)
    return trainer, fit_with_clock(trainer, clock)


def test_without_a_terminal_a_line_every_log_every_steps_with_the_logged_numbers(tmp_path, capsys):
    trainer, history = train(tmp_path)
    err = capsys.readouterr().err.splitlines()
    steps = [STEP_LINE.match(line) for line in err if STEP_LINE.match(line)]
    running = [r for r in read_metrics(tmp_path) if r["split"] == "train_running"]
    n = len(trainer.train_batches)  # 24
    assert [int(m[5]) for m in steps] == [r["step"] for r in running] == list(range(5, 2 * n + 1, 5))
    for m, record in zip(steps, running):
        epoch, batch = int(m[1]), int(m[3])
        assert (epoch, int(m[2]), int(m[4])) == (record["epoch"], 2, n)
        assert batch == record["step"] - (epoch - 1) * n
        shown = metrics_of(m[6])
        assert shown.keys() == record["metrics"].keys()
        for k, v in record["metrics"].items():
            assert shown[k] == float(f"{v:.4f}"), k
        # 4 x 10 tokens per batch, 1 s per batch on the fake clock; ETA = the batches left at 1 s each
        assert int(m[7].replace(",", "")) == 40
        assert m[8] == clock_text(n - batch)
    assert len(steps) < len(err)  # and the epoch lines


def test_without_a_terminal_one_line_per_epoch_with_the_history(tmp_path, capsys):
    _, history = train(tmp_path, valid_seconds=2.0)
    lines = [EPOCH_LINE.match(line) for line in capsys.readouterr().err.splitlines()]
    epochs = [m for m in lines if m and " - batch " not in m[0]]
    assert len(epochs) == len(history) == 2
    for m, h in zip(epochs, history):
        assert (int(m[1]), int(m[2]), m[3]) == (h["epoch"], 2, None)
        assert (int(m[5]), int(m[6])) == (24 + 12, 12)  # 24 batches at 1 s, 6 validation batches at 2 s
        assert float(m[7]) == float(f"{h['lr']:.4g}")
        shown = metrics_of(m[8])
        for k, v in h["train"].items():
            assert shown[k] == float(f"{v:.4f}"), k
        for k, v in h["valid"].items():
            assert shown[f"val_{k}"] == float(f"{v:.4f}"), k
        assert (m[9] is not None) == h["improved"]


def test_the_deadline_shows_in_the_eta_and_in_the_last_epoch_line(tmp_path, capsys):
    # deadline 15 s: after 5 batches (5 s) the epoch would need 19 s more, the deadline comes in 10 s
    _, history = train(tmp_path, max_minutes=0.25)
    err = capsys.readouterr().err.splitlines()
    first = next(STEP_LINE.match(line) for line in err if STEP_LINE.match(line))
    assert first[8] == "0:10"
    last = err[-1]
    assert last.startswith("epoch 1/2 - 15/24 batches - 15s (validation 0s) - ")
    assert last.endswith("stopped: max_minutes deadline reached *")
    assert history[-1]["stopped"] == "deadline" and history[-1]["step"] == 15


def test_quiet_prints_nothing_even_the_diagnostics_note(tmp_path, capsys):
    # the toy model is torch.nn.LSTM: without quiet, diagnostics_every prints a one-line note
    train(tmp_path / "loud", diagnostics_every=5)
    loud = capsys.readouterr().err
    assert loud.splitlines()[0].startswith("diagnostics: ToyLM has no rnnkit Recurrent layer")
    _, history = train(tmp_path / "quiet", quiet=True, diagnostics_every=5)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert len(history) == 2  # it did train
    _, history = train(tmp_path / "off", progress=False)
    assert capsys.readouterr().err == ""


def test_on_a_terminal_the_bar_and_the_epoch_summary_not_the_lines(tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    _, history = train(tmp_path)
    out = screen.getvalue()
    assert "epoch 1/2:" in out and "24/24" in out  # tqdm's bar: "epoch 1/2: 100%|...| 24/24"
    assert not any(STEP_LINE.match(line) for line in re.split(r"[\r\n]", out))
    summary = [line for line in out.splitlines() if line.startswith("epoch 2/2 - ")]
    assert len(summary) == 1 and f"val_loss: {history[1]['valid']['loss']:.4f}" in summary[0]


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (7.4, "0:07"), (754, "12:34"), (3723, "1:02:03")])
def test_clock_text(seconds, text):
    assert clock_text(seconds) == text
