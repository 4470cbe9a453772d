"""torch.nn's error contract for recurrent layers: the same exception type for the same mistake, and a message
that says what torch.nn's says, plus what was expected and found where ours can say more.

    constructor   TypeError  bias / batch_first not a bool, a size not an int
                  ValueError a size <= 0, dropout not a number in [0, 1], proj_size < 0 or >= hidden_size,
                             proj_size for a cell without projections
    forward       ValueError input not 2-D or 3-D; input dtype != weight dtype
                  RuntimeError input.size(-1) != input_size; a state of the wrong shape or number of dimensions;
                             a sequence of length 0 (torch.nn refuses T = 0; B = 0 is allowed)

(tests/test_torch_contract.py sweeps these against torch.nn side by side.)
"""

from __future__ import annotations

import numbers
import warnings

from torch import Tensor


def check_layer_args(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size: int = 0) -> None:
    """Raise as torch.nn.RNNBase does for the same arguments; warn, as it does, for dropout with one layer."""
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the probability of an element "
                         f"being zeroed, got {dropout!r}")
    if dropout > 0 and isinstance(num_layers, int) and num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                      f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                      stacklevel=4)
    for name, value in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers),
                        ("proj_size", proj_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero, got {value}")
    if proj_size < 0:
        raise ValueError(f"proj_size should be a positive integer or zero to disable projections, got {proj_size}")
    if proj_size >= hidden_size > 0 and proj_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} and "
                         f"hidden_size={hidden_size}")


def check_input(name: str, x: Tensor, input_size: int, weight_dtype, *, packed: bool = False,
                layout: str = "") -> None:
    """input of a layer ``name`` ("LSTM", ...): 2-D or 3-D (2-D data for a PackedSequence), its dtype the
    weights' and its last dimension input_size; ``layout`` says the shape expected, e.g. "(T, B, 32)"."""
    dims = (2,) if packed else (2, 3)
    if x.dim() not in dims:
        raise ValueError(f"{name}: Expected input to be 2D or 3D, got {x.dim()}D instead")
    if x.dtype != weight_dtype:
        raise ValueError(f"{name}: RNN input dtype ({x.dtype}) does not match weight dtype ({weight_dtype}). "
                         f"Convert input: input.to({weight_dtype}), or convert model: model.to({x.dtype})")
    if x.shape[-1] != input_size:
        raise RuntimeError(f"{name}: input.size(-1) must be equal to input_size. Expected {input_size}, got "
                           f"{x.shape[-1]} (input must be {layout or '(..., ' + str(input_size) + ')'}, "
                           f"got {tuple(x.shape)})")


def check_state_dims(name: str, state, lstm: bool, unbatched: bool) -> None:
    """A state given with a 3-D input is 3-D (L·D, B, H), with a 2-D (unbatched) input 2-D (L·D, H)."""
    if state is None:
        return
    parts = _parts(name, state, lstm)
    want = 2 if unbatched else 3
    if any(p.dim() != want for p in parts):
        what = "unbatched 2-D" if unbatched else "batched 3-D"
        dims = ", ".join(f"{p.dim()}-D" for p in parts)
        hx = "hx and cx" if lstm else "hx"
        raise RuntimeError(f"{name}: For {what} input, {hx} should also be {want}-D but got ({dims}) "
                           f"tensor{'s' if lstm else ''}")


def check_state_shapes(name: str, state, lstm: bool, want_h: tuple, want_c: tuple, dtype) -> None:
    """h (L·D, B, H_out) and, for an LSTM, c (L·D, B, H), in the input's dtype."""
    if state is None:
        return
    parts = _parts(name, state, lstm)
    for k, (p, want) in enumerate(zip(parts, (want_h, want_c))):
        if tuple(p.shape) != want:
            which = f"hidden[{k}]" if lstm else "hidden"
            raise RuntimeError(f"{name}: Expected {which} size {want}, got {list(p.shape)} "
                               f"(state must be {want} = (L·D, B, {'H_out' if lstm and k == 0 else 'H'}))")
        if p.dtype != dtype:
            raise RuntimeError(f"{name}: state dtype ({p.dtype}) does not match input dtype ({dtype})")


def check_length(name: str, T: int) -> None:
    if T == 0:
        raise RuntimeError(f"{name}: Expected sequence length to be larger than 0 in RNN")


def _parts(name: str, state, lstm: bool) -> tuple[Tensor, ...]:
    if lstm:
        if isinstance(state, Tensor) or not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(f"{name}: the state of an LSTM is a pair (h_0, c_0), got {_what(state)}")
    elif not isinstance(state, Tensor):
        raise TypeError(f"{name}: the state is one tensor h_0 (only an LSTM takes a pair), got {_what(state)}")
    parts = tuple(state) if lstm else (state,)
    if not all(isinstance(p, Tensor) for p in parts):
        raise TypeError(f"{name}: the state must hold tensors, got {_what(state)}")
    return parts


def _what(value) -> str:
    if isinstance(value, Tensor):
        return f"a Tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"
