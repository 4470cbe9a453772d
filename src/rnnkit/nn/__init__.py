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
from rnnkit.nn.linear_scan import linear_scan
from rnnkit.nn.minimal import MinGRUCell, MinLSTMCell
from rnnkit.nn.plan import Kind, Plan
from rnnkit.nn.recurrent import CELLS, GRU, LSTM, RNN, CellSpec, Recurrent
from rnnkit.nn.state import LSTMState, detach_state, map_state
from rnnkit.nn.unroll import python_scan, reverse_padded, unroll

__all__ = [
    "CELLS", "GRU", "LSTM", "RNN", "CellSpec", "ElmanCell", "GRUCell", "Kind", "LSTMCell", "LSTMState",
    "LayerNormLSTMCell", "MinGRUCell", "MinLSTMCell", "Plan", "RNNCell", "Recurrent", "RecurrentCell",
    "clip_grad_norm", "clip_grad_value", "detach_state", "initialize", "linear_scan", "map_state", "python_scan",
    "reverse_padded", "torch_twin", "unroll",
]
