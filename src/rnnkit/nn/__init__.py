"""rnnkit.nn: recurrent cells (one time step, the equations), layers (time, stacking, directions), states,
clipping."""

from rnnkit.nn.cells import (
    ElmanCell,
    GRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    RecurrentCell,
    RNNCell,
)
from rnnkit.nn.clip import clip_grad_norm, clip_grad_value
from rnnkit.nn.init import initialize
from rnnkit.nn.interop import torch_twin
from rnnkit.nn.plan import Kind, Plan
from rnnkit.nn.recurrent import CELLS, GRU, LSTM, RNN, CellSpec, Recurrent, reverse_padded, unroll
from rnnkit.nn.state import LSTMState, detach_state, map_state

__all__ = [
    "CELLS", "GRU", "LSTM", "RNN", "CellSpec", "ElmanCell", "GRUCell", "Kind", "LSTMCell", "LSTMState",
    "LayerNormLSTMCell", "Plan", "RNNCell", "Recurrent", "RecurrentCell", "clip_grad_norm", "clip_grad_value",
    "detach_state", "initialize", "map_state", "reverse_padded", "torch_twin", "unroll",
]
