"""The long-range lab: a recurrent model per problem, its loss and metrics, its baseline, and `fit`.

Model (`LabModel`): the problem's inputs x_1..x_T (symbols one-hot encoded) → `rnnkit.Recurrent(cell)` → a
linear head on the last hidden state h_T (adding, sum, larger, digits) or on every h_t (copy):

    regression      ŷ = w·h_T + b,            loss = (1/B) Σ_b (ŷ_b − y_b)²          metrics: mse
    classification  p = softmax(V h_T + c),   loss = (1/B) Σ_b −log p_b[y_b]        metrics: loss (CE), accuracy
    copy            p_t = softmax(V h_t + c), loss = (1/(B T')) Σ_b Σ_t −log p_t[y_t]  metrics: loss (CE per step),
                                                                  accuracy (of the 10 recalled symbols)

Losses are means (over the batch, and over time for copy), so sensible clipping thresholds are ~1, not the
language models' 5. Each problem's closed-form baseline (rnnkit.lab.generators) is reported next to the result.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.lab import generators as gen
from rnnkit.tasks.runs import write_run_files
from rnnkit.train import TrainConfig, Trainer, seed_everything
from rnnkit.train.checkpoint import atomic_write_bytes, atomic_write_json


@dataclass(frozen=True)
class Problem:
    """What the lab needs to know about a problem: its generator, shapes, kind and baseline."""

    name: str
    kind: str  # "regression", "classification" or "copy"
    input_size: int
    output_size: int
    baseline_text: str
    generate: Any = None  # (n, T, generator) -> (inputs, targets); None for digits (a fixed data set)

    def baseline(self, length: int) -> dict[str, float]:
        """The closed-form metric of the problem's trivial predictor (see rnnkit.lab.generators)."""
        if self.name == "adding":
            return {"mse": 1.0 / 6.0}
        if self.name == "sum":
            return {"mse": 1.0}
        if self.name == "copy":
            return {"loss": 10 * math.log(8) / (length + 20), "accuracy": 1.0 / 8.0}
        if self.name == "larger":
            return {"loss": math.log(2), "accuracy": 0.5}
        return {"loss": math.log(10), "accuracy": 0.1}


PROBLEMS = {
    "adding": Problem("adding", "regression", 2, 1, "predict 1: MSE 1/6", gen.adding),
    "copy": Problem("copy", "copy", gen.SYMBOLS, gen.SYMBOLS, "memoryless: CE 10 ln 8/(T+20)", gen.copy_memory),
    "sum": Problem("sum", "regression", 1, 1, "predict 0: MSE 1", gen.sum_over_time),
    "larger": Problem("larger", "classification", 2, 2, "coin flip: CE ln 2, accuracy 1/2", gen.larger_stream),
    "digits": Problem("digits", "classification", 1, 10, "uniform guess: CE ln 10, accuracy 1/10"),
}
DEFAULT_METRIC = {"regression": "mse", "classification": "accuracy", "copy": "loss"}


def get_problem(name: str) -> Problem:
    if name not in PROBLEMS:
        raise ValueError(f"unknown lab problem {name!r}; expected one of {', '.join(PROBLEMS)}")
    return PROBLEMS[name]


@dataclass
class LabModelConfig:
    """`LabModel`'s configuration (saved as config.json["model"])."""

    problem: str = "adding"
    cell: str = "lstm"
    hidden: int = 100
    layers: int = 1
    forget_bias: float = 1.0  # LSTM cells only

    def __post_init__(self):
        get_problem(self.problem)
        if self.hidden <= 0 or self.layers <= 0:
            raise ValueError(f"hidden and layers must be > 0, got {self.hidden} and {self.layers}")


@dataclass
class LabOutput:
    loss: torch.Tensor
    prediction: torch.Tensor  # (B,) regression; (B, C) or (B, T', C) logits otherwise
    state: Any
    stats: dict


class LabModel(nn.Module):
    """inputs → Recurrent(cell) → linear head (see the module docstring)."""

    def __init__(self, config: LabModelConfig):
        super().__init__()
        from rnnkit import Recurrent

        self.config = config
        self.problem = get_problem(config.problem)
        p = self.problem
        self.rnn = Recurrent(config.cell, p.input_size, config.hidden, num_layers=config.layers, batch_first=True,
                             forget_bias=config.forget_bias)
        self.head = nn.Linear(config.hidden, p.output_size)

    def forward(self, batch: gen.LabBatch, state=None) -> LabOutput:
        x, y = batch.inputs, batch.targets
        if self.problem.kind == "copy":
            x = F.one_hot(x, gen.SYMBOLS).to(self.head.weight.dtype)  # (B, T', 10)
        h, state = self.rnn(x, state)  # (B, T, H)
        kind = self.problem.kind
        if kind == "regression":
            pred = self.head(h[:, -1]).squeeze(-1)  # (B,)
            se = (pred - y).pow(2)
            return LabOutput(se.mean(), pred, state, {"se": se.sum().detach(), "n": y.shape[0]})
        if kind == "classification":
            logits = self.head(h[:, -1])  # (B, C)
            nll = F.cross_entropy(logits, y, reduction="sum")
            correct = (logits.argmax(-1) == y).sum()
            return LabOutput(nll / y.shape[0], logits, state,
                             {"nll": nll.detach(), "n": y.shape[0], "correct": correct, "recalled": y.shape[0]})
        logits = self.head(h)  # (B, T', 10)
        nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")
        tail = slice(-gen.COPY_LEN, None)
        correct = (logits[:, tail].argmax(-1) == y[:, tail]).sum()
        return LabOutput(nll / y.numel(), logits, state, {"nll": nll.detach(), "n": y.numel(), "correct": correct,
                                                          "recalled": y[:, tail].numel()})


class LabTask:
    """Summed stats → metrics (the Trainer <-> task contract); knows the problem's baseline."""

    name = "lab"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(self, problem: str, length: int):
        self.problem, self.length = get_problem(problem), length

    def summarize(self, totals: dict) -> dict:
        n = max(float(totals["n"]), 1.0)
        if "se" in totals:
            mse = float(totals["se"]) / n
            return {"loss": mse, "mse": mse}
        return {"loss": float(totals["nll"]) / n, "accuracy": float(totals["correct"]) / max(totals["recalled"], 1)}

    @property
    def baseline(self) -> dict[str, float]:
        return self.problem.baseline(self.length)

    def to_dict(self) -> dict:
        return {"name": self.name, "problem": self.problem.name, "length": self.length}


@dataclass
class LabDataConfig:
    """Which problem, how long, and how much data (saved as config.json["data"])."""

    problem: str = "adding"
    length: int = 100  # T; digits: always 64
    batch_size: int = 50
    batches_per_epoch: int = 100  # fresh batches per epoch (synthetic problems)
    valid_size: int = 1000
    test_size: int = 2000
    permute: bool = False  # digits: a seeded fixed permutation of the pixels
    seed: int = 0  # data seed (the model's seed is TrainConfig.seed)

    def __post_init__(self):
        get_problem(self.problem)
        if self.problem == "digits":
            self.length = 64
        for name in ("length", "batch_size", "batches_per_epoch", "valid_size", "test_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    def batches(self) -> tuple[Any, Any, Any]:
        """(train, valid, test) Batches."""
        if self.problem == "digits":
            return gen.digits_batches(self.batch_size, self.permute, self.seed)
        g, T = get_problem(self.problem).generate, self.length
        eval_b = min(500, self.valid_size, self.test_size)
        return (gen.SyntheticBatches(g, T, self.batch_size, self.batches_per_epoch, self.seed, "train"),
                gen.SyntheticBatches(g, T, eval_b, max(1, self.valid_size // eval_b), self.seed, "valid"),
                gen.SyntheticBatches(g, T, eval_b, max(1, self.test_size // eval_b), self.seed, "test"))


@dataclass
class LabResult:
    test: dict
    baseline: dict
    history: list = field(default_factory=list)

    def line(self, problem: str) -> str:
        """'test mse 0.0031 (baseline 0.1667: predict 1: MSE 1/6)' — the metric that matters, vs the baseline."""
        p = get_problem(problem)
        key = DEFAULT_METRIC[p.kind]
        extra = "".join(f", {k} {v:.4f} (baseline {self.baseline[k]:.4f})" for k, v in self.test.items()
                        if k != key and k in self.baseline and k != "mse")
        return f"test {key} {self.test[key]:.4f} (baseline {self.baseline[key]:.4f}: {p.baseline_text}){extra}"


def build_model(config: LabModelConfig, seed: int) -> LabModel:
    seed_everything(seed)  # before building: the same seed gives the same initial weights
    return LabModel(config)


def fit(run_dir, data: LabDataConfig, model_config: LabModelConfig, train: TrainConfig,
        diagnostics_every: int = 0, probe_size: int = 16) -> LabResult:
    """Train on fresh batches of ``data.problem`` with the shared Trainer, then evaluate on the test set.

    With ``diagnostics_every`` > 0 the `rnnkit.diagnostics` callbacks write gradient flow, spectra, gate and
    clipping statistics to metrics.jsonl every that many updates (probe: the first ``probe_size`` validation
    examples). With a ``run_dir``, also writes config.json, results.json and predictions.txt."""
    if model_config.problem != data.problem:
        raise ValueError(f"model problem {model_config.problem!r} != data problem {data.problem!r}")
    task = LabTask(data.problem, data.length)
    model = build_model(model_config, train.seed)
    train_b, valid_b, test_b = data.batches()
    callbacks = []
    if diagnostics_every > 0:
        from rnnkit.diagnostics import default_callbacks

        probe = valid_b.get(0, 0)
        probe = gen.LabBatch(probe.inputs[:probe_size], probe.targets[:probe_size])
        callbacks = default_callbacks(probe, every=diagnostics_every)
    if run_dir is not None:
        save_run_files(run_dir, task, model_config, data)
    with Trainer(model, task, train_b, valid_b, train, run_dir, callbacks=callbacks) as trainer:
        history = trainer.fit()
        result = LabResult(trainer.evaluate(test_b), task.baseline, history)
    if run_dir is not None:
        atomic_write_json(Path(run_dir) / "results.json", {"test": result.test, "baseline": result.baseline})
        write_predictions(Path(run_dir) / "predictions.txt", model, test_b.get(0, 0), task)
    return result


def save_run_files(run_dir, task: LabTask, model_config: LabModelConfig, data: LabDataConfig) -> None:
    write_run_files(run_dir, {}, task=task.to_dict(), model=asdict(model_config), data=asdict(data))


@torch.no_grad()
def write_predictions(path: Path, model: LabModel, batch: gen.LabBatch, task: LabTask, n: int = 10) -> None:
    """A few test examples: target and prediction side by side (shown by `rnnkit report`)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    small = gen.LabBatch(batch.inputs[:n].to(device), batch.targets[:n].to(device))
    out = model(small)
    model.train(was)
    kind, lines = task.problem.kind, [f"# {task.problem.name}, T = {task.length}: target -> prediction"]
    for b in range(small.targets.shape[0]):
        y = small.targets[b]
        if kind == "regression":
            lines.append(f"{float(y):.4f} -> {float(out.prediction[b]):.4f}")
        elif kind == "classification":
            lines.append(f"{int(y)} -> {int(out.prediction[b].argmax())}")
        else:
            want = "".join(str(int(s)) for s in y[-gen.COPY_LEN :])
            got = "".join(str(int(s)) for s in out.prediction[b, -gen.COPY_LEN :].argmax(-1))
            lines.append(f"{want} -> {got}")
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))


def load_results(run_dir) -> dict:
    return json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8"))
