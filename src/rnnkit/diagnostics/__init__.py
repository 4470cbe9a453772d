"""rnnkit.diagnostics: make vanishing and exploding gradients visible, on any task's model.

- `probe(model, batch)`: ‖∂L/∂h_k‖ for every step k, ‖∂h_T/∂h_k‖ (Jacobian products), LSTM/GRU gate means and
  saturation, dead ReLUs (rnnkit.diagnostics.probe).
- `recurrent_spectra(model)`: spectral radius and largest singular value of every recurrent matrix's gate blocks.
- Trainer callbacks writing all of it, plus per-update gradient norms before/after clipping and the clipping
  rate, to metrics.jsonl: `default_callbacks(probe_batch, every)` (rnnkit.diagnostics.callbacks lists the keys),
  or `TrainConfig(diagnostics_every=N)` / `--diagnostics-every N` for the Trainer to attach them itself.
  `rnnkit report RUN_DIR` turns them into plots.
"""
from rnnkit.diagnostics.callbacks import (
    ProbeDiagnostics,
    SpectraDiagnostics,
    UpdateDiagnostics,
    default_callbacks,
    trainer_callbacks,
)
from rnnkit.diagnostics.probe import (
    gate_activations,
    gate_statistics,
    jacobian_norms,
    probe,
    recording,
    recurrent_layers,
)
from rnnkit.diagnostics.weights import recurrent_spectra

__all__ = [
    "ProbeDiagnostics", "SpectraDiagnostics", "UpdateDiagnostics", "default_callbacks", "gate_activations",
    "gate_statistics", "jacobian_norms", "probe", "recording", "recurrent_layers", "recurrent_spectra",
    "trainer_callbacks",
]
