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


def _opt(help: str, choices: tuple[str, ...] | None = None) -> dict:
    """Field metadata for the generated command line (the keys of rnnkit.config.opt)."""
    return {"help": help, "choices": choices}


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

    epochs: int = field(default=10, metadata=_opt("passes over the training data"))
    optimizer: str = field(default="adam", metadata=_opt("the optimizer", choices=OPTIMIZERS))
    lr: float | None = field(default=None, metadata=_opt(
        "learning rate (none: the optimizer's usual value: sgd 1, adam/adamw/rmsprop 1e-3, adagrad 1e-2)"))
    momentum: float = field(default=0.0, metadata=_opt("momentum of sgd and rmsprop"))
    nesterov: bool = field(default=False, metadata=_opt("Nesterov momentum (sgd)"))
    weight_decay: float = field(default=0.0, metadata=_opt("L2 penalty (decoupled for adamw)"))
    clip: float = field(default=5.0, metadata=_opt("max gradient norm (--clip-mode value: max entry); 0: no clipping"))
    clip_mode: str = field(default="norm", metadata=_opt(
        "clip the global gradient norm, each entry to [-clip, clip], or not at all", choices=CLIP_MODES))
    lr_schedule: str = field(default="none", metadata=_opt("learning-rate schedule", choices=LR_SCHEDULES))
    lr_factor: float = field(default=0.5, metadata=_opt("decay factor of the step and plateau schedules"))
    lr_patience: int = field(default=0, metadata=_opt("plateau schedule: epochs to wait"))
    lr_decay_start: int = field(default=4, metadata=_opt("step schedule: first epoch that decays"))
    min_lr: float = field(default=0.0, metadata=_opt("lower bound of the decayed learning rate"))
    early_stopping: int = field(default=0, metadata=_opt("stop after N epochs without improvement (0: never)"))
    seed: int = field(default=0, metadata=_opt("seed of the initial weights, shuffling and dropout"))
    device: str = field(default="auto", metadata=_opt("auto, cpu, cuda or cuda:N"))
    log_every: int = field(default=100, metadata=_opt(
        "log running training metrics every N updates (metrics.jsonl; a line on stderr without a terminal)"))
    checkpoint_every: int = field(default=0, metadata=_opt(
        "also checkpoint every N batches within an epoch (0: at the end of each epoch)"))
    progress: bool = field(default=True, metadata=_opt("report progress on stderr (a bar on a terminal)"))
    quiet: bool = field(default=False, metadata=_opt("print nothing but errors (no bar, no progress lines)"))
    tensorboard: bool = field(default=True, metadata=_opt("also write TensorBoard events (if installed)"))
    max_minutes: float | None = field(default=None, metadata=_opt(
        "deadline for the training time in minutes, checked after every step: the epoch ends there "
        "(one evaluation, a checkpoint) and training stops (none: no limit)"))
    diagnostics_every: int = field(default=0, metadata=_opt(
        "record gradient flow, gate saturation, spectra and clipping to metrics.jsonl every N updates "
        "for `rnnkit report` (0: off)"))

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("clip_mode", self.clip_mode, CLIP_MODES)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]
        if self.clip == 0 and not isinstance(self.clip, bool):  # --clip 0: no clipping
            self.clip_mode, self.clip = "none", 5.0
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
