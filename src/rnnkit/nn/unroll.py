"""The time loop over one cell: ``unroll`` runs a cell over a padded batch in either direction, with any scan;
``python_scan`` is the reference scan (autograd through every step); ``reverse_padded`` reverses each sequence
within its own length."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from rnnkit.nn.cells import RecurrentCell
from rnnkit.nn.state import map_state


def unroll(cell: RecurrentCell, x: Tensor, state, lengths: Tensor | None = None, reverse: bool = False,
           scan=None):
    """Run ``cell`` over x (T, B, I) from ``state``; returns (outputs (T, B, H), final state).

    With ``lengths``, sequence b stops at step lengths[b] - 1: its state is frozen after it and its outputs
    there are zero. ``reverse`` reads each sequence backwards from its own last step. ``scan`` is the time loop
    (default: ``python_scan``, autograd through every step) and gets U x + b (``cell.project(x)``); a scan with a
    ``from_input`` attribute gets x itself there instead (the minGRU / minLSTM scan projects chunk by chunk).
    """
    T = x.shape[0]
    if reverse:
        x = reverse_padded(x, lengths)
    alive = None if lengths is None else (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).to(x.device)
    from_input = getattr(scan, "from_input", None)
    if from_input is not None:
        out, state = from_input(cell, x, state, alive)
    else:
        ux = cell.project(x)  # (T, B, G·H): U x_t + b for every step in one matmul
        out, state = (scan or python_scan)(cell, ux, state, alive)
    if reverse:
        out = reverse_padded(out, lengths)
    return out, state


def python_scan(cell: RecurrentCell, ux: Tensor, state, alive: Tensor | None = None):
    """The time loop: state_t = cell.step(ux_t, state_{t-1}); autograd records every step.

    ``alive`` (T, B) marks real steps: where it is False the state is carried unchanged and the output is zero.
    """
    steps = ux.unbind(0)  # unbind once: indexing ux[t] would allocate a full-size gradient per step
    first_dead = ux.shape[0]  # the first step at which some sequence has ended
    if alive is not None and not bool(alive.all()):
        first_dead = int(alive.all(dim=1).logical_not().nonzero()[0])
    outputs = []
    for t, ux_t in enumerate(steps):
        new = cell.step(ux_t, state)
        if t >= first_dead:  # some sequences have ended: keep their state as it was
            keep = alive[t].unsqueeze(1)
            new = map_state(new, lambda n, s, keep=keep: torch.where(keep, n, s), state)
        state = new
        outputs.append(cell.output(state))
    out = torch.stack(outputs)  # (T, B, H)
    if alive is not None:
        out = out * alive.unsqueeze(2).to(out.dtype)  # padded outputs are zero
    return out, state


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of x (T, B, ...) within its own length; padding stays where it is."""
    T = x.shape[0]
    if lengths is None:
        return x.flip(0)
    t = torch.arange(T).unsqueeze(1)  # (T, 1)
    src = torch.where(t < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - t, t)  # (T, B)
    index = src.to(x.device).view(T, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


def _lengths_of(packed: PackedSequence) -> Tensor:
    """Per-sequence lengths of a PackedSequence, in its sorted order."""
    batch_sizes = packed.batch_sizes
    return (batch_sizes.unsqueeze(1) > torch.arange(int(batch_sizes[0])).unsqueeze(0)).sum(0)


def _stack_states(states: list):
    if isinstance(states[0], tuple):
        return type(states[0])(*(torch.stack(parts) for parts in zip(*states)))
    return torch.stack(states)


def _cat_states(states: list):
    if isinstance(states[0], tuple):
        return type(states[0])(*(torch.cat(parts) for parts in zip(*states)))
    return torch.cat(states)
