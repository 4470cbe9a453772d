"""Initialisers for recurrent weights, applied per cell (one layer, one direction).

Schemes (strings, so a config stays plain JSON):
- ``"default"``: torch.nn's U(-1/√H, 1/√H) for every parameter.
- ``"uniform(a)"``: every parameter ~ U(-a, a) (Zaremba et al. 2014 use a = 0.1 and 0.05).
- ``"orthogonal"``: each gate block of W orthogonal (Saxe et al. 2014), U Xavier-uniform per block, biases 0.
- ``"identity"``: IRNN (Le, Jaitly & Hinton 2015): W = I in each gate block, U ~ N(0, 0.001²), biases 0.

``forget_bias`` (LSTM cells only) then sets the forget gate's total bias b_f = b_ih,f + b_hh,f to the given
value (Gers et al. 2000; Jozefowicz et al. 2015 recommend 1.0).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from rnnkit.nn.cells import LSTMCell, RecurrentCell

_UNIFORM = re.compile(r"^uniform\(\s*([0-9.eE+-]+)\s*\)$")
SCHEMES = ("default", "uniform(a)", "orthogonal", "identity")


def check_scheme(scheme: str | None) -> None:
    """Raise a ValueError naming the accepted schemes when ``scheme`` is not one of them."""
    if scheme is None or scheme in ("default", "orthogonal", "identity"):
        return
    match = _UNIFORM.match(scheme)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"init must be one of {', '.join(SCHEMES)} (a > 0), got {scheme!r}")


@torch.no_grad()
def initialize(cell: RecurrentCell, scheme: str | None = None, forget_bias: float | None = None) -> None:
    """Initialise one cell's parameters in place with ``scheme``, then apply ``forget_bias``."""
    check_scheme(scheme)
    if scheme is None or scheme == "default":
        cell.reset_parameters()
    elif scheme == "orthogonal":
        _blockwise(cell, nn.init.orthogonal_, nn.init.xavier_uniform_)
    elif scheme == "identity":
        _blockwise(cell, lambda w: w.copy_(torch.eye(*w.shape)), lambda u: nn.init.normal_(u, 0.0, 1e-3))
    else:
        a = float(_UNIFORM.match(scheme).group(1))
        cell.reset_parameters()  # also resets layer-norm gains to 1
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            p = getattr(cell, name)
            if p is not None:
                nn.init.uniform_(p, -a, a)
    if forget_bias is not None and isinstance(cell, LSTMCell) and cell.bias:
        H = cell.hidden_size
        cell.bias_ih[H : 2 * H].fill_(forget_bias)  # gate order (i, f, g, o): f is the second block
        cell.bias_hh[H : 2 * H].zero_()


def _blockwise(cell: RecurrentCell, init_w, init_u) -> None:
    cell.reset_parameters()
    H = cell.hidden_size
    for block in range(cell.gates):
        rows = slice(block * H, (block + 1) * H)
        if cell.weight_hh is not None:  # minGRU / minLSTM have no recurrent weights
            init_w(cell.weight_hh[rows])
        init_u(cell.weight_ih[rows])
    for b in (cell.bias_ih, cell.bias_hh):
        if b is not None:
            b.zero_()
