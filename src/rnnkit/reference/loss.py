"""Seq→one softmax cross-entropy on the last hidden state, and the whole forward/loss/BPTT round trip.

Lecture notation (torch.nn.Linear names in brackets)::

    s   = V h_T + c                       V = head["weight"] (K, H), c = head["bias"] (K,), K classes
    p   = softmax(s)
    L   = (1/B) Σ_b −log p_b[y_b]         mean over the batch, as torch.nn.functional.cross_entropy

Backward::

    ∂L/∂s   = (p − onehot(y)) / B
    ∂L/∂V   = Σ_b ∂L/∂s_b h_{T,b}^T,   ∂L/∂c = Σ_b ∂L/∂s_b,   ∂L/∂h_T = V^T ∂L/∂s
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .elman import elman_backward, elman_forward
from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward


def softmax_loss_forward(head: dict, h: np.ndarray, targets: np.ndarray):
    """Mean softmax cross-entropy of the logits V h + c against integer targets (B,).

    Returns (loss, cache) with loss a Python float.
    """
    V, c = np.asarray(head["weight"], dtype=np.float64), np.asarray(head["bias"], dtype=np.float64)
    h, targets = np.asarray(h, dtype=np.float64), np.asarray(targets)
    B, K = h.shape[0], V.shape[0]
    if targets.shape != (B,) or targets.min() < 0 or targets.max() >= K:
        raise ValueError(f"softmax loss: expected targets of shape ({B},) with values in [0, {K}), "
                         f"found shape {targets.shape}, range [{targets.min()}, {targets.max()}]")
    s = h @ V.T + c  # logits (B, K)
    s = s - s.max(axis=1, keepdims=True)  # softmax is shift-invariant; this avoids overflow
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(B), targets].mean()
    return float(loss), {"h": h, "targets": targets, "p": np.exp(log_p)}


def softmax_loss_backward(head: dict, cache: dict):
    """Gradients of :func:`softmax_loss_forward`: ({"weight": ∂L/∂V, "bias": ∂L/∂c}, ∂L/∂h)."""
    V = np.asarray(head["weight"], dtype=np.float64)
    h, targets, p = cache["h"], cache["targets"], cache["p"]
    B = h.shape[0]
    ds = p.copy()
    ds[np.arange(B), targets] -= 1.0
    ds /= B  # ∂L/∂s = (p − onehot(y)) / B
    return {"weight": ds.T @ h, "bias": ds.sum(axis=0)}, ds @ V


@dataclass
class SeqToOneGrads:
    """The loss and every gradient of one seq→one forward/backward round trip.

    ``cell`` and ``head`` use the parameter names of the inputs (weight_ih, ..., weight, bias);
    ``c0`` is None for cells without a cell state.
    """

    loss: float
    cell: dict
    head: dict
    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray | None = None


# The cell names of rnnkit.nn.CELLS that the reference covers: name -> (reference cell, its options).
CELLS = {
    "rnn-tanh": ("elman", {"nonlinearity": "tanh"}),
    "rnn-relu": ("elman", {"nonlinearity": "relu"}),
    "irnn": ("elman", {"nonlinearity": "relu"}),  # the IRNN differs from rnn-relu only in its initialization
    "rnn-hardtanh": ("elman", {"nonlinearity": "hardtanh"}),
    "rnn-sigmoid": ("elman", {"nonlinearity": "sigmoid"}),
    "lstm": ("lstm", {}),
    "gru": ("gru", {"reset": "after"}),
    "gru-before": ("gru", {"reset": "before"}),
}


def seq_to_one_loss_and_grads(cell: str, params: dict, head: dict, x: np.ndarray, h0: np.ndarray,
                              targets: np.ndarray, c0: np.ndarray | None = None) -> SeqToOneGrads:
    """Run the cell over x (T, B, I) from h0 (and c0 for "lstm"), classify h_T, and backpropagate.

    ``cell`` is a name from rnnkit.nn.CELLS ("rnn-tanh", ..., "lstm", "gru", "gru-before");
    ``params`` the cell's torch-named weights; ``head`` {"weight": V (K, H), "bias": c (K,)}.
    """
    if cell not in CELLS:
        raise ValueError(f"seq_to_one_loss_and_grads: unknown cell {cell!r}; expected one of {sorted(CELLS)}")
    kind, options = CELLS[cell]
    if kind == "lstm":
        if c0 is None:
            raise ValueError("seq_to_one_loss_and_grads: the lstm needs c0 (B, H)")
        hs, cache = lstm_forward(params, x, h0, c0)
    elif kind == "gru":
        hs, cache = gru_forward(params, x, h0, **options)
    else:
        hs, cache = elman_forward(params, x, h0, **options)

    loss, loss_cache = softmax_loss_forward(head, hs[-1], targets)
    head_grads, dh_T = softmax_loss_backward(head, loss_cache)

    dc0 = None
    if kind == "lstm":
        cell_grads, dx, dh0, dc0 = lstm_backward(params, cache, dh_T=dh_T)
    elif kind == "gru":
        cell_grads, dx, dh0 = gru_backward(params, cache, dh_T=dh_T)
    else:
        cell_grads, dx, dh0 = elman_backward(params, cache, dh_T=dh_T)
    return SeqToOneGrads(loss=loss, cell=cell_grads, head=head_grads, x=dx, h0=dh0, c0=dc0)
