"""Trainer callbacks that write the diagnostics to RUN_DIR/metrics.jsonl while a model trains.

Every record they add has ``"split": "diagnostics"``, ``"kind"``, ``"epoch"``, ``"step"``, ``"time"`` and a
``"diagnostics"`` dict with the keys below (stable; `rnnkit report` reads them):

kind "probe"    (`ProbeDiagnostics`, every ``every`` updates and after the first): the keys of
                `rnnkit.diagnostics.probe` (grad_flow.*, gates.*, relu.*) on a fixed probe batch.
kind "spectra"  (`SpectraDiagnostics`, same cadence): spectral.* of `rnnkit.diagnostics.weights`.
kind "updates"  (`UpdateDiagnostics`, flushed every ``every`` updates and at the end of each epoch), one
                entry per update since the last record:
                    updates.step, updates.loss, updates.grad_norm (global L2 norm before clipping),
                    updates.grad_norm_clipped (after), updates.clipped (1 if clipping fired, else 0),
                and updates.clip_rate (the fraction of these updates that were clipped).

Use them with any task: ``Trainer(..., callbacks=default_callbacks(probe_batch, every=100))``.
"""
from __future__ import annotations

from typing import Any

from rnnkit.diagnostics.probe import probe, recurrent_layers
from rnnkit.diagnostics.weights import recurrent_spectra
from rnnkit.nn.state import move_to


def _due(step: int, every: int) -> bool:
    return step == 1 or step % every == 0


class ProbeDiagnostics:
    """Gradient flow, Jacobian products, gates and dead ReLUs on ``batch`` every ``every`` updates."""

    def __init__(self, batch: Any, every: int = 100, jacobian: bool = True, jacobian_examples: int = 4):
        if every <= 0:
            raise ValueError(f"every must be > 0, got {every}")
        self.batch, self.every, self.jacobian, self.jacobian_examples = batch, every, jacobian, jacobian_examples

    def on_step(self, trainer, info: dict) -> None:
        if not _due(info["step"], self.every) or not trainer.ctx.is_main:
            return
        batch = move_to(self.batch, trainer.device)
        values = probe(trainer.model, batch, self.jacobian, self.jacobian_examples)
        trainer.log({"split": "diagnostics", "kind": "probe", "diagnostics": values})


class SpectraDiagnostics:
    """ρ and σ_max of every recurrent weight matrix's gate blocks every ``every`` updates."""

    def __init__(self, every: int = 100):
        if every <= 0:
            raise ValueError(f"every must be > 0, got {every}")
        self.every = every

    def on_step(self, trainer, info: dict) -> None:
        if _due(info["step"], self.every) and trainer.ctx.is_main:
            trainer.log({"split": "diagnostics", "kind": "spectra", "diagnostics": recurrent_spectra(trainer.model)})


class UpdateDiagnostics:
    """The loss and the gradient norm before/after clipping of every update, and the clipping rate."""

    FIELDS = ("step", "loss", "grad_norm", "grad_norm_clipped", "clipped")

    def __init__(self, every: int = 100):
        if every <= 0:
            raise ValueError(f"every must be > 0, got {every}")
        self.every = every
        self.pending: dict[str, list] = {k: [] for k in self.FIELDS}

    def on_step(self, trainer, info: dict) -> None:
        for key in self.FIELDS:
            value = info[key]
            self.pending[key].append(int(value) if key in ("step", "clipped") else float(value))
        if info["step"] % self.every == 0:
            self.flush(trainer)

    def on_epoch_end(self, trainer, record: dict) -> None:
        self.flush(trainer)

    def flush(self, trainer) -> None:
        if not self.pending["step"]:
            return
        values = {f"updates.{k}": v for k, v in self.pending.items()}
        values["updates.clip_rate"] = sum(self.pending["clipped"]) / len(self.pending["clipped"])
        trainer.log({"split": "diagnostics", "kind": "updates", "diagnostics": values})
        self.pending = {k: [] for k in self.FIELDS}


def default_callbacks(probe_batch: Any, every: int = 100, jacobian: bool = True) -> list:
    """All three diagnostics, probing ``probe_batch`` every ``every`` updates."""
    return [UpdateDiagnostics(every), SpectraDiagnostics(every), ProbeDiagnostics(probe_batch, every, jacobian)]


def trainer_callbacks(model, every: int, probe_batch, existing=()) -> tuple[list, str | None]:
    """What the Trainer attaches for ``TrainConfig.diagnostics_every``: (callbacks, note).

    None when ``existing`` already holds diagnostics (the caller chose its own, e.g. rnnkit lab's smaller probe
    batch). ``probe_batch()`` gives the batch to probe. A model without any rnnkit ``Recurrent`` layer gets the
    update and spectra callbacks only, and a one-line note saying so."""
    if any(isinstance(c, (ProbeDiagnostics, SpectraDiagnostics, UpdateDiagnostics)) for c in existing):
        return [], None
    callbacks = [UpdateDiagnostics(every), SpectraDiagnostics(every)]
    if not recurrent_layers(model):
        return callbacks, (f"diagnostics: {type(model).__name__} has no rnnkit Recurrent layer, so gradient flow "
                           "through time and gate saturation are not recorded (gradient norms and spectra are)")
    return callbacks + [ProbeDiagnostics(probe_batch(), every)], None
