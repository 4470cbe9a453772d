"""Spectra of the recurrent matrices: the lectures' condition for vanishing/exploding gradients.

For h_t = φ(W h_{t-1} + U x_t + b), ∂h_t/∂h_k = Π_{s=k+1..t} diag(φ'(a_s)) W, so with |φ'| ≤ γ the product's
norm is at most (γ σ_max(W))^{t-k}: σ_max(W) < 1/γ makes gradients vanish; a spectral radius ρ(W) > 1 is
necessary for them to explode (Pascanu, Mikolov & Bengio 2013).

`recurrent_spectra(model)` reports, for every recurrent weight matrix of the model (any parameter named
``weight_hh*`` of shape (G·H, H): rnnkit layers and cells, and torch.nn.RNN/LSTM/GRU alike) and each of its G
gate blocks W_g (H, H):

    spectral.<parameter name>.<gate>.radius      ρ(W_g) = max |λ_i(W_g)|
    spectral.<parameter name>.<gate>.sigma_max   σ_max(W_g) = ‖W_g‖₂

Gate names: Elman "W"; GRU r, z, n; LSTM i, f, g, o (torch.nn's block order).
"""
from __future__ import annotations

import torch
from torch import nn

GATE_NAMES = {1: ("W",), 3: ("r", "z", "n"), 4: ("i", "f", "g", "o")}


def recurrent_spectra(model: nn.Module) -> dict[str, float]:
    result = {}
    for name, p in model.named_parameters():
        if not name.rsplit(".", 1)[-1].startswith("weight_hh") or p.dim() != 2:
            continue
        rows, H = p.shape
        gates = GATE_NAMES.get(rows // H) if rows % H == 0 else None
        if gates is None:
            continue
        with torch.no_grad():
            blocks = p.detach().double().cpu().reshape(len(gates), H, H)
            radius = torch.linalg.eigvals(blocks).abs().amax(dim=-1)
            sigma = torch.linalg.matrix_norm(blocks, ord=2)
        for g, gate in enumerate(gates):
            result[f"spectral.{name}.{gate}.radius"] = float(radius[g])
            result[f"spectral.{name}.{gate}.sigma_max"] = float(sigma[g])
    return result
