"""The executable lecture notes: a NumPy forward pass and a hand-written BPTT backward pass for each cell.

Everything here is plain NumPy in float64, written to be read next to the lecture slides, and serves as the
independent oracle for the torch cells and layers. Parameters are dicts with torch.nn names and layouts
(``weight_ih`` = U, ``weight_hh`` = W, ``bias_ih`` + ``bias_hh`` = b); inputs are x (T, B, I), states (B, H).

    hs, cache = elman_forward(params, x, h0, nonlinearity="tanh")
    grads, dx, dh0 = elman_backward(params, cache, dhs=None, dh_T=dL_dhT)

    hs, cache = lstm_forward(params, x, h0, c0)
    grads, dx, dh0, dc0 = lstm_backward(params, cache, dhs=None, dh_T=None, dc_T=None)

    hs, cache = gru_forward(params, x, h0, reset="after" | "before")
    grads, dx, dh0 = gru_backward(params, cache, dhs=None, dh_T=None)

    hs, cache = minimal_forward("mingru" | "minlstm", params, x, h0, mask=None)      # no recurrent weights
    grads, dx, dh0 = minimal_backward(params, cache, dhs=None, dh_T=None)

    out = seq_to_one_loss_and_grads("lstm", params, head, x, h0, targets, c0=c0)   # loss + every gradient
"""

from .elman import NONLINEARITIES, elman_backward, elman_forward
from .gru import gru_backward, gru_forward
from .loss import CELLS, SeqToOneGrads, seq_to_one_loss_and_grads, softmax_loss_backward, softmax_loss_forward
from .lstm import lstm_backward, lstm_forward
from .minimal import minimal_backward, minimal_forward

__all__ = [
    "CELLS",
    "NONLINEARITIES",
    "SeqToOneGrads",
    "elman_backward",
    "elman_forward",
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_forward",
    "minimal_backward",
    "minimal_forward",
    "seq_to_one_loss_and_grads",
    "softmax_loss_backward",
    "softmax_loss_forward",
]
