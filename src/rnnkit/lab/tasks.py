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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import opt
from rnnkit.lab import generators as gen
from rnnkit.tasks import driver
from rnnkit.tasks.driver import cell_names, model_from, sized_config
from rnnkit.tasks.runs import task_field
from rnnkit.train import TrainConfig, evaluate, seed_everything
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

    problem: str = field(default="adding", metadata=opt(cli=False))  # from the data
    cell: str = field(default="lstm", metadata=opt("recurrent cell", choices=cell_names))
    hidden: int = field(default=100, metadata=opt("hidden units"))
    layers: int = field(default=1, metadata=opt("stacked recurrent layers"))
    forget_bias: float = field(default=1.0, metadata=opt("LSTM forget-gate bias at initialisation"))

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

    problem: str = field(default="adding", metadata=opt(cli=False))  # `rnnkit lab PROBLEM`
    length: int = field(default=100, metadata=opt("T, the range of the dependency (digits: always 64)"))
    batch_size: int = field(default=50, metadata=opt("sequences per batch"))
    batches_per_epoch: int = field(default=100, metadata=opt("fresh batches per epoch"))
    valid_size: int = field(default=1000, metadata=opt("validation sequences"))
    test_size: int = field(default=2000, metadata=opt("test sequences"))
    permute: bool = field(default=False, metadata=opt("digits: a seeded fixed permutation of the pixels"))
    seed: int = field(default=0, metadata=opt("data seed (the model's is --seed)", flag="--data-seed"))

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


@dataclass
class TrainLab(TrainConfig):
    """The Trainer's options with the lab's defaults (Adam 1e-3, losses are means: clip 1, diagnostics on)."""

    epochs: int = field(default=20, metadata=opt("passes of --batches-per-epoch fresh batches"))
    clip: float = field(default=1.0, metadata=opt("max gradient norm (the loss is a mean: ~1)"))
    diagnostics_every: int = field(default=50, metadata=opt(
        "record gradient flow, gates, spectra, clipping every N updates for `rnnkit report` (0: off)"))


@dataclass
class LabCorpus:
    task: LabTask
    train: Any
    valid: Any
    test: Any


class LabSpec:
    name, description = "lab", "a lab run"
    data_config, model_config, train_config = LabDataConfig, LabModelConfig, TrainLab
    path_fields = ()

    def prepare(self, data: LabDataConfig, task: LabTask | None = None) -> LabCorpus:
        return LabCorpus(LabTask(data.problem, data.length), *data.batches())

    def model_config_for(self, corpus: LabCorpus, options: dict) -> LabModelConfig:
        return sized_config(LabModelConfig, {k: v for k, v in options.items() if k != "problem"},
                            problem=corpus.task.problem.name)

    def build_model(self, config: LabModelConfig, corpus: LabCorpus) -> LabModel:
        return LabModel(config)

    def batches(self, corpus: LabCorpus, data: LabDataConfig, seed: int):
        return corpus.train, corpus.valid

    def run_files(self, corpus: LabCorpus, config: LabModelConfig) -> tuple[dict, dict]:
        return {}, {"task": corpus.task.to_dict()}

    def load(self, run_dir: Path, config: dict) -> tuple[LabModel, LabTask]:
        model_config = model_from(self, run_dir, config)
        length = task_field(config, run_dir, "length", int)
        return LabModel(model_config), LabTask(model_config.problem, length)


SPEC = LabSpec()


def fit(run_dir, data: LabDataConfig, model_config: LabModelConfig, train: TrainConfig,
        diagnostics_every: int = 0, probe_size: int = 16, overwrite: bool = False) -> LabResult:
    """Train on fresh batches of ``data.problem`` with the shared Trainer (the task driver), then evaluate on
    the test set.

    With ``diagnostics_every`` > 0 the `rnnkit.diagnostics` callbacks write gradient flow, spectra, gate and
    clipping statistics to metrics.jsonl every that many updates (probe: the first ``probe_size`` validation
    examples). With a ``run_dir``, also writes results.json and predictions.txt."""
    if model_config.problem != data.problem:
        raise ValueError(f"model problem {model_config.problem!r} != data problem {data.problem!r}")
    corpus = SPEC.prepare(data)
    callbacks = []
    if diagnostics_every > 0:
        from rnnkit.diagnostics import default_callbacks

        probe = corpus.valid.get(0, 0)
        probe = gen.LabBatch(probe.inputs[:probe_size], probe.targets[:probe_size])
        callbacks = default_callbacks(probe, every=diagnostics_every)
    keep = _KeepModel()
    history = driver.fit(SPEC, run_dir, data, model_config, train, overwrite=overwrite, prepared=corpus,
                         callbacks=[*callbacks, keep])
    task = corpus.task
    model = keep.trainer.model if keep.trainer is not None else build_model(model_config, train.seed)  # 0 epochs
    result = LabResult(evaluate(model, task, corpus.test), task.baseline, history)
    if run_dir is not None:
        atomic_write_json(Path(run_dir) / "results.json", {"test": result.test, "baseline": result.baseline})
        write_predictions(Path(run_dir) / "predictions.txt", model, corpus.test.get(0, 0), task)
    return result


class _KeepModel:
    """A Trainer callback that remembers the Trainer (to evaluate its final model on the test set)."""

    trainer = None

    def on_epoch_end(self, trainer, record) -> None:
        self.trainer = trainer


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
