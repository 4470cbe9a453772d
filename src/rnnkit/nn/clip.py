"""Gradient clipping as in the lectures (Pascanu, Mikolov & Bengio 2013).

By global norm:  g ← g · V_max / ‖g‖  when ‖g‖ > V_max, with ‖g‖ over all parameters together.
By value:        g ← clamp(g, −V_max, V_max), elementwise.
torch.nn.utils does both; these wrappers return what the diagnostics need.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def _grads(parameters) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm(parameters: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Rescale all gradients together so their global norm is at most ``max_norm``; return the norm before."""
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type=norm_type)


def clip_grad_value(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> Tensor:
    """Clamp every gradient entry to [−clip_value, clip_value]; return the largest |g| before clipping."""
    if clip_value <= 0:
        raise ValueError(f"clip_value must be positive, got {clip_value}")
    grads = _grads(parameters)
    largest = torch.stack([g.detach().abs().max() for g in grads]).max() if grads else torch.tensor(0.0)
    for g in grads:
        g.clamp_(-clip_value, clip_value)
    return largest
