"""Every private torch entry point rnnkit calls, in one place (tests/test_nn_torch_private.py checks each one
exists and equals its public equivalent, so a torch upgrade that moves one fails there and nowhere else).

- ``torch._VF.lstm / gru / rnn_tanh / rnn_relu``: the fused kernels behind torch.nn.LSTM / GRU / RNN (cuDNN on
  CUDA, oneDNN on CPU), called on our own parameters. Public equivalent: the torch.nn module's forward.
- ``torch.ops.mkldnn._reorder_linear_weight / _linear_pointwise``: oneDNN's GEMM with a weight packed once
  (what torch.nn.LSTM runs on CPU); the fast scans' per-step matmul. Public equivalent: ``x @ W.t()``.
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor

FUSED_KERNELS = {"lstm": _VF.lstm, "gru": _VF.gru, "rnn_tanh": _VF.rnn_tanh, "rnn_relu": _VF.rnn_relu}


def fused_kernel(name: str):
    """torch's fused kernel ``name`` ("lstm", "gru", "rnn_tanh", "rnn_relu"); see torch.nn.RNNBase.forward."""
    return FUSED_KERNELS[name]


def _onednn_available() -> bool:
    mkldnn = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available() and hasattr(mkldnn, "_linear_pointwise")
            and hasattr(mkldnn, "_reorder_linear_weight"))


ONEDNN = _onednn_available()


def onednn_pack(W: Tensor, rows: int) -> Tensor:
    """W (N, K) packed once for oneDNN's GEMM with inputs of ``rows`` rows."""
    return torch.ops.mkldnn._reorder_linear_weight(W.contiguous(), rows)


def onednn_linear(x: Tensor, W: Tensor) -> Tensor:
    """x W^T for x (M, K) and W (N, K), packed or plain (float32 on CPU), in oneDNN."""
    return torch.ops.mkldnn._linear_pointwise(x, W, None, "none", [], "")
