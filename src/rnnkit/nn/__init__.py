"""rnnkit.nn: recurrent cells (one time step, the equations), layers (time, stacking, directions), clipping."""

from rnnkit.nn.cells import (
    ElmanCell,
    GRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    LSTMState,
    RecurrentCell,
    detach_state,
)
from rnnkit.nn.clip import clip_grad_norm, clip_grad_value
from rnnkit.nn.init import initialize
from rnnkit.nn.recurrent import CELLS, GRU, LSTM, RNN, CellSpec, Recurrent, reverse_padded, unroll

__all__ = [
    "CELLS", "GRU", "LSTM", "RNN", "CellSpec", "ElmanCell", "GRUCell", "LSTMCell", "LSTMState", "LayerNormLSTMCell",
    "Recurrent", "RecurrentCell", "clip_grad_norm", "clip_grad_value", "detach_state", "initialize",
    "reverse_padded", "unroll",
]
