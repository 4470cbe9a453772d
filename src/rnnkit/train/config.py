"""TrainConfig: every knob of the Trainer, as plain data (saved under "train" in RUN_DIR/config.json).

Gradient-clipping convention. ``clip`` is compared with the global L2 norm of the gradient of ``out.loss``
as the task defines it. The language-model tasks follow Zaremba et al. (2014): the loss is the NLL *summed
over the T time steps of a BPTT window and averaged over the B sequences of the batch*, and for that scale a
max norm of 5 is the usual value (hence the default). A task whose loss is averaged over time steps has
gradients about T times smaller, and should use a proportionally smaller ``clip`` (or none).

Learning-rate schedules (epochs counted from 1, as in the papers):
  - "none": constant ``lr``.
  - "step": lr is multiplied by ``lr_factor`` after every epoch from epoch ``lr_decay_start`` on, i.e. epoch
    e trains with ``lr * lr_factor ** max(0, e - lr_decay_start)``. Zaremba's small LSTM: lr=1,
    lr_factor=0.5, lr_decay_start=4 ("halve after epoch 4").
  - "plateau": after an epoch whose monitored validation metric did not improve on the best so far for
    more than ``lr_patience`` epochs, lr is multiplied by ``lr_factor`` (pytorch/examples
    word_language_model: lr_factor=0.25, lr_patience=0). ``min_lr`` bounds both decays from below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
DEFAULT_LR = {"sgd": 1.0, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "adagrad": 1e-2}
CLIP_MODES = ("norm", "value", "none")
LR_SCHEDULES = ("none", "step", "plateau")


@dataclass
class TrainConfig:
    """Optimization, checkpointing and logging options; validated on construction.

    Args:
        epochs: number of passes over the training batches.
        optimizer: one of "sgd", "adam", "adamw", "rmsprop", "adagrad".
        lr: learning rate; None picks the optimizer's usual default (sgd 1.0, adam/adamw/rmsprop 1e-3,
            adagrad 1e-2).
        momentum: momentum for "sgd" and "rmsprop" (0 = plain SGD); ``nesterov`` for SGD only.
        weight_decay: L2 penalty added by the optimizer (decoupled for "adamw").
        clip, clip_mode: gradient clipping: "norm" (global L2 norm <= clip, the default, clip=5),
            "value" (each gradient entry clamped to [-clip, clip]) or "none". See the module docstring.
        lr_schedule, lr_factor, lr_patience, lr_decay_start, min_lr: see the module docstring.
        early_stopping: stop after this many epochs without improvement of the monitored metric (0 = never).
        seed: seeds torch, numpy and random at the start of a fresh run (rank r of a DDP run uses seed + r).
        device: "auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N".
        log_every: log running training metrics to metrics.jsonl every this many optimizer steps, and (when
            stderr is not a terminal) print them as one progress line (0 = never).
        checkpoint_every: also checkpoint every this many batches *within* an epoch, so that long epochs
            can be resumed mid-way (0 = only at the end of each epoch).
        progress: report progress on stderr: a bar on a terminal; otherwise (a log file, CI, a pipe) one line
            every ``log_every`` steps and one per epoch, as Keras' ``verbose=2``.
        quiet: print nothing but errors (overrides ``progress``).
        tensorboard: also write TensorBoard events to RUN_DIR/tensorboard when tensorboard is installed.
        max_minutes: a deadline for the whole run's training time (None = no limit), checked after every
            step: once it passes, the epoch ends there (one evaluation, a checkpoint) and training stops;
            the last history entry (and the epoch's "train" record in metrics.jsonl) says
            ``"stopped": "deadline"``. A resumed run counts the time already spent.
        diagnostics_every: every this many updates record rnnkit.diagnostics (gradient flow through time,
            gate saturation, spectra of the recurrent matrices, gradient norms and clipping) to metrics.jsonl
            for `rnnkit report` (0 = off). Gradient flow and gates need rnnkit ``Recurrent`` layers.
    """

    epochs: int = 10
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    clip: float = 5.0
    clip_mode: str = "norm"
    lr_schedule: str = "none"
    lr_factor: float = 0.5
    lr_patience: int = 0
    lr_decay_start: int = 4
    min_lr: float = 0.0
    early_stopping: int = 0
    seed: int = 0
    device: str = "auto"
    log_every: int = 100
    checkpoint_every: int = 0
    progress: bool = True
    quiet: bool = field(default=False, metadata={"help": "print nothing but errors (no bar, no progress lines)"})
    tensorboard: bool = True
    max_minutes: float | None = field(default=None, metadata={
        "help": "deadline for the training time in minutes, checked after every step: the epoch ends there "
                "(one evaluation, a checkpoint) and training stops (default: no limit)"})
    diagnostics_every: int = field(default=0, metadata={
        "help": "record gradient flow, gate saturation, spectra and clipping to metrics.jsonl every N updates "
                "for `rnnkit report` (0: off)"})

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("clip_mode", self.clip_mode, CLIP_MODES)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]
        _check_number("epochs", self.epochs, low=0, integer=True)
        _check_number("lr", self.lr, low=0.0, strict=True)
        _check_number("momentum", self.momentum, low=0.0)
        _check_number("weight_decay", self.weight_decay, low=0.0)
        _check_number("lr_factor", self.lr_factor, low=0.0, strict=True)
        if self.lr_factor > 1:
            raise ValueError(f"TrainConfig.lr_factor: expected a decay factor in (0, 1], got {self.lr_factor}")
        _check_number("lr_patience", self.lr_patience, low=0, integer=True)
        _check_number("lr_decay_start", self.lr_decay_start, low=0, integer=True)
        _check_number("min_lr", self.min_lr, low=0.0)
        _check_number("early_stopping", self.early_stopping, low=0, integer=True)
        _check_number("log_every", self.log_every, low=0, integer=True)
        _check_number("checkpoint_every", self.checkpoint_every, low=0, integer=True)
        _check_number("diagnostics_every", self.diagnostics_every, low=0, integer=True)
        if self.max_minutes is not None:
            _check_number("max_minutes", self.max_minutes, low=0.0, strict=True)
            if self.max_minutes == float("inf"):
                raise ValueError("TrainConfig.max_minutes: expected a finite number of minutes (None = no limit), "
                                 "got inf")
        for name in ("progress", "quiet"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TrainConfig.{name}: expected true or false, got {getattr(self, name)!r}")
        if self.clip_mode != "none":
            _check_number("clip", self.clip, low=0.0, strict=True)
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("TrainConfig.nesterov: needs optimizer='sgd' and momentum > 0")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")
        ):
            raise ValueError(f"TrainConfig.device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")

    def to_dict(self) -> dict:
        """A plain-JSON dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from a dict (e.g. config.json's "train"); unknown keys are an error, not silently dropped."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"TrainConfig: unknown option(s) {unknown}; expected some of {sorted(names)}")
        return cls(**data)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"TrainConfig.{name}: expected one of {', '.join(choices)}; got {value!r}")


def _check_number(name: str, value: object, low: float, strict: bool = False, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = "an integer" if integer else "a number"
        raise ValueError(f"TrainConfig.{name}: expected {expected}, got {value!r}")
    if value < low or (strict and value == low) or value != value:
        bound = f"> {low}" if strict else f">= {low}"
        raise ValueError(f"TrainConfig.{name}: expected {bound}, got {value!r}")
