"""Recurrent cells: one time step each, the equations of the lectures.

Notation (the lectures'): U are the input weights, W the recurrent weights, b the biases; σ is the logistic
sigmoid and ⊙ the elementwise product. Parameters carry torch.nn's names and layouts so that a state_dict of
``torch.nn.LSTMCell`` (or ``GRUCell``, ``RNNCell``) loads unchanged:

    weight_ih = U  (G·H, I)      weight_hh = W  (G·H, H)      bias_ih (G·H,)      bias_hh (G·H,)

where G is the number of gate blocks (Elman 1, GRU 3, LSTM 4), stacked in torch.nn's order.

A cell knows one step and nothing about time: ``project(x)`` computes U x + b_ih for any number of leading
dimensions (the layer calls it once for all T steps, one matmul), and ``step(ux_t, state)`` applies the
recurrence. ``cell(input, hx)`` does both for a single step: ``RNNCell`` (= ``ElmanCell``), ``LSTMCell`` and
``GRUCell`` are drop-ins for torch.nn's (same constructor arguments, ``forward(input, hx=None)``, same returns,
same exception types for the same mistakes), with rnnkit's extras (more nonlinearities, ``reset="before"``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.nn.state import LSTMState, detach_state, map_state

__all__ = ["ElmanCell", "GRUCell", "LSTMCell", "LSTMState", "LayerNormLSTMCell", "RNNCell", "RecurrentCell",
           "detach_state", "map_state"]

NONLINEARITIES = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "hardtanh": F.hardtanh,
    "sigmoid": torch.sigmoid,
}


class RecurrentCell(nn.Module):
    """Base class: owns U, W and the biases; subclasses set ``gates`` and write ``step``."""

    gates = 1
    has_recurrent_weights = True  # False: no W, b_hh (minGRU / minLSTM, rnnkit.nn.minimal: gates read x_t only)
    proj_size = 0  # LSTM with projections only: h_t = W_hr (o ⊙ tanh(c_t)) has proj_size features

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, device=None, dtype=None):
        super().__init__()
        for name, size in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(size, int) or isinstance(size, bool):
                raise TypeError(f"{name} should be of type int, got: {type(size).__name__}")
            if size < 0:  # torch.nn's cells accept 0 and fail with a RuntimeError on a negative size
                raise RuntimeError(f"{type(self).__name__}: {name} must be >= 0, got {size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        rows, factory = self.gates * hidden_size, {"device": device, "dtype": dtype}
        recurrent = self.has_recurrent_weights
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.register_parameter("weight_hh", nn.Parameter(torch.empty(rows, self.state_size, **factory))
                                if recurrent else None)
        self.register_parameter("bias_ih", nn.Parameter(torch.empty(rows, **factory)) if bias else None)
        self.register_parameter("bias_hh", nn.Parameter(torch.empty(rows, **factory)) if bias and recurrent else None)
        if self.proj_size:
            self.weight_hr = nn.Parameter(torch.empty(self.proj_size, hidden_size, **factory))
        self.reset_parameters()

    @property
    def state_size(self) -> int:
        """The size of h: proj_size for an LSTM with projections, else hidden_size."""
        return self.proj_size or self.hidden_size

    def reset_parameters(self) -> None:
        """torch.nn's default: every parameter ~ U(-1/√H, 1/√H)."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        """torch.nn's cell repr (bias only when False), so a drop-in prints as torch's does."""
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def __prepare_scriptable__(self):
        """torch.jit.script(cell) compiles torch.nn's cell on the same parameters (rnnkit.nn.interop)."""
        from rnnkit.nn.interop import cell_twin  # interop imports this module

        return cell_twin(self)

    # -- the two halves of a step -------------------------------------------------------------------------
    def project(self, x: Tensor) -> Tensor:
        """U x + b_ih for x (..., I) → (..., G·H). The layer calls this once for the whole sequence."""
        return F.linear(x, self.weight_ih, self.bias_ih)

    def recurrent(self, h: Tensor) -> Tensor:
        """W h + b_hh for h (B, H) → (B, G·H)."""
        return F.linear(h, self.weight_hh, self.bias_hh)

    def step(self, ux: Tensor, state):
        raise NotImplementedError

    # -- state ---------------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int, like: Tensor):
        return like.new_zeros(batch_size, self.hidden_size)

    def _sizes(self) -> tuple[int, ...]:
        """The feature size of each state tensor: (H,) or, for an LSTM, (H_out, H)."""
        return (self.hidden_size,)

    def _torch_name(self) -> str:
        """The name error messages use: torch.nn's ("RNNCell" for an Elman cell), else the class name."""
        return "RNNCell" if type(self) is ElmanCell else type(self).__name__

    @staticmethod
    def output(state) -> Tensor:
        """The hidden state h that the layer emits (the whole state for Elman and GRU)."""
        return state

    def forward(self, input: Tensor, hx=None):
        """One step on input (B, I) or (I,), like torch.nn.*Cell; returns the new state h' (or (h', c')).

        Mistakes raise what torch.nn's cells raise, checked in torch's order: ValueError for an input or a state
        that is not 1-D or 2-D; then RuntimeError for the input size, the state's batch and size, the dtypes.
        """
        name = self._torch_name()
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        parts = None if hx is None else self._hx_parts(hx)
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        if x.shape[1] != self.input_size:
            raise RuntimeError(f"{name}: input has inconsistent input_size: got {x.shape[1]} expected "
                               f"{self.input_size} (input must be (B, {self.input_size}) or ({self.input_size},))")
        if parts is not None:
            self._check_hx_shapes(parts, x, batched)
        if x.dtype != self.weight_ih.dtype:
            raise RuntimeError(f"{name}: input dtype ({x.dtype}) does not match weight dtype "
                               f"({self.weight_ih.dtype}); convert the input or the cell with .to(dtype)")
        if parts is None:
            hx = self.initial_state(x.shape[0], x)
        else:
            for k, p in enumerate(parts):
                if p.dtype != x.dtype:
                    raise RuntimeError(f"{name}: hidden{k} dtype ({p.dtype}) does not match input dtype ({x.dtype})")
            parts = parts if batched else tuple(p.unsqueeze(0) for p in parts)
            hx = LSTMState(*parts) if len(parts) == 2 else parts[0]
        new = self.step(self.project(x), hx)
        return new if batched else map_state(new, lambda t: t.squeeze(0))

    def _hx_parts(self, hx) -> tuple[Tensor, ...]:
        """hx's tensors: one (h) or, for an LSTM, two (h, c), each 1-D or 2-D (else torch.nn's ValueError)."""
        name, n = self._torch_name(), len(self._sizes())
        parts = tuple(hx) if isinstance(hx, tuple) else (hx,)
        if len(parts) != n or not all(isinstance(p, Tensor) for p in parts):
            want = "a pair of tensors (h, c)" if n == 2 else "one tensor h"
            raise TypeError(f"{name}: hx must be {want}, got {type(hx).__name__} of length {len(parts)}")
        for k, p in enumerate(parts):
            if p.dim() not in (1, 2):
                which = f"hx[{k}]" if n == 2 else "hidden"
                raise ValueError(f"{name}: Expected {which} to be 1D or 2D, got {p.dim()}D instead")
        return parts

    def _check_hx_shapes(self, parts: tuple[Tensor, ...], x: Tensor, batched: bool) -> None:
        """(B, H) for a batch, (H,) for one example; torch.nn's RuntimeErrors in its words."""
        name = self._torch_name()
        for k, (p, size) in enumerate(zip(parts, self._sizes())):
            want = (x.shape[0], size) if batched else (size,)
            if p.dim() != len(want):
                given = tuple(x.shape if batched else x[0].shape)
                raise RuntimeError(f"{name}: hidden{k} must be {want} for input {given}, got {tuple(p.shape)} "
                                   f"(a {'batched' if batched else 'unbatched'} input takes a {len(want)}-D state)")
            if batched and p.shape[0] != x.shape[0]:
                raise RuntimeError(f"{name}: Input batch size {x.shape[0]} doesn't match hidden{k} batch size "
                                   f"{p.shape[0]}")
            if p.shape[-1] != size:
                raise RuntimeError(f"{name}: hidden{k} has inconsistent hidden_size: got {p.shape[-1]}, "
                                   f"expected {size}")


class ElmanCell(RecurrentCell):
    """Elman (vanilla) RNN cell:  h_t = φ(U x_t + W h_{t-1} + b),  φ ∈ {tanh, relu, hardtanh, sigmoid}.

    b is stored as two vectors, b = b_ih + b_hh, as in torch.nn.RNNCell.
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {sorted(NONLINEARITIES)}, got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)
        self.phi = NONLINEARITIES[nonlinearity]

    def step(self, ux: Tensor, h: Tensor) -> Tensor:
        return self.phi(ux + self.recurrent(h))

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity}")


class LSTMCell(RecurrentCell):
    """Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

        i = σ(U_i x_t + W_i h_{t-1} + b_i)        input gate
        f = σ(U_f x_t + W_f h_{t-1} + b_f)        forget gate
        c̃ = tanh(U_g x_t + W_g h_{t-1} + b_g)     candidate memory (torch.nn calls it g)
        o = σ(U_o x_t + W_o h_{t-1} + b_o)        output gate
        c_t = f ⊙ c_{t-1} + i ⊙ c̃
        h_t = o ⊙ tanh(c_t)

    Gate blocks are stacked (i, f, g, o) in weight_ih / weight_hh, as in torch.nn.LSTMCell.
    The state is ``LSTMState(h, c)``.

    With ``proj_size = P > 0`` (LSTM with projections, Sak et al. 2014; torch.nn.LSTM's ``proj_size``) the
    emitted and fed-back state is projected, h_t = W_hr (o ⊙ tanh(c_t)), W_hr = ``weight_hr`` (P, H); then
    W = weight_hh is (4H, P) and h is (B, P) while c stays (B, H).
    """

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 proj_size: int = 0):
        _check_proj_size(proj_size, hidden_size)
        self.proj_size = proj_size
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)

    def initial_state(self, batch_size: int, like: Tensor) -> LSTMState:
        return LSTMState(like.new_zeros(batch_size, self.state_size), like.new_zeros(batch_size, self.hidden_size))

    def _sizes(self) -> tuple[int, ...]:
        return (self.state_size, self.hidden_size)

    @staticmethod
    def output(state: LSTMState) -> Tensor:
        return state.h

    def emit(self, m: Tensor) -> Tensor:
        """h_t from m_t = o ⊙ tanh(c_t): m_t itself, or W_hr m_t with projections."""
        return F.linear(m, self.weight_hr) if self.proj_size else m

    def step(self, ux: Tensor, state: LSTMState) -> LSTMState:
        h, c = state
        i, f, g, o = (ux + self.recurrent(h)).chunk(4, dim=-1)
        i, f, c_tilde, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * c_tilde
        h = self.emit(o * torch.tanh(c))
        return LSTMState(h, c)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", proj_size={self.proj_size}" if self.proj_size else "")


def _check_proj_size(proj_size, hidden_size) -> None:
    """torch.nn.LSTM's rules for proj_size: an int, 0 (no projection) or in [1, hidden_size)."""
    if not isinstance(proj_size, int) or isinstance(proj_size, bool):
        raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
    if proj_size < 0:
        raise ValueError(f"proj_size should be a positive integer or zero to disable projections, got {proj_size}")
    if proj_size and isinstance(hidden_size, int) and proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} and "
                         f"hidden_size={hidden_size}")


class GRUCell(RecurrentCell):
    """Gated recurrent unit (Cho et al. 2014) in both published forms, with torch.nn's convention for z.

        r = σ(U_r x_t + W_r h_{t-1} + b_r)                        reset gate
        z = σ(U_z x_t + W_z h_{t-1} + b_z)                        update gate
        reset="after"  (cuDNN, torch.nn):  n = tanh(U_n x_t + b_in + r ⊙ (W_n h_{t-1} + b_hn))
        reset="before" (Cho et al., the lectures):  n = tanh(U_n x_t + b_in + W_n (r ⊙ h_{t-1}) + b_hn)
        h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

    The lectures write h_t = (1 − z') ⊙ h_{t-1} + z' ⊙ h̃: the same model with z' = 1 − z (equivalently, negate
    U_z, W_z and b_z). Both forms use torch.nn's gate layout (r, z, n), so their state_dicts are interchangeable
    (the same numbers mean different models, of course).
    """

    gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 reset: str = "after"):
        if reset not in ("after", "before"):
            raise ValueError(f"reset must be 'after' (cuDNN/torch.nn) or 'before' (Cho et al.), got {reset!r}")
        self.reset = reset
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)

    def step(self, ux: Tensor, h: Tensor) -> Tensor:
        H = self.hidden_size
        ux_r, ux_z, ux_n = ux.chunk(3, dim=-1)
        if self.reset == "after":
            wh_r, wh_z, wh_n = self.recurrent(h).chunk(3, dim=-1)
            r = torch.sigmoid(ux_r + wh_r)
            z = torch.sigmoid(ux_z + wh_z)
            n = torch.tanh(ux_n + r * wh_n)
        else:
            b_rz = None if self.bias_hh is None else self.bias_hh[: 2 * H]
            b_n = None if self.bias_hh is None else self.bias_hh[2 * H :]
            wh_r, wh_z = F.linear(h, self.weight_hh[: 2 * H], b_rz).chunk(2, dim=-1)
            r = torch.sigmoid(ux_r + wh_r)
            z = torch.sigmoid(ux_z + wh_z)
            n = torch.tanh(ux_n + F.linear(r * h, self.weight_hh[2 * H :], b_n))
        return (1 - z) * n + z * h

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.reset == "after" else f", reset={self.reset!r}")


class LayerNormLSTMCell(LSTMCell):
    """Layer-normalised LSTM (Ba, Kiros & Hinton 2016, §3.1): no fused kernel computes it.

        (i, f, c̃, o) pre-activations = LN(U x_t; α_x) + LN(W h_{t-1}; α_h) + b
        c_t = f ⊙ c_{t-1} + i ⊙ c̃
        h_t = o ⊙ tanh(LN(c_t; α_c, β_c))

    LN(a; α, β) = α ⊙ (a − mean(a)) / std(a) + β, normalising over the 4H (or H) features of each example.
    The shift β of the two gate terms is the bias b (= bias_ih + bias_hh, applied after normalisation), so the
    extra parameters are the gains ``ln_ih_weight``, ``ln_hh_weight`` (4H) and ``ln_c_weight``, ``ln_c_bias`` (H).

    With ``proj_size = P > 0``, h_t = W_hr (o ⊙ tanh(LN(c_t))) as in :class:`LSTMCell`.
    """

    eps = 1e-5

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 proj_size: int = 0):
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype, proj_size=proj_size)
        factory = {"device": self.weight_ih.device, "dtype": self.weight_ih.dtype}
        self.ln_ih_weight = nn.Parameter(torch.ones(4 * hidden_size, **factory))
        self.ln_hh_weight = nn.Parameter(torch.ones(4 * hidden_size, **factory))
        self.ln_c_weight = nn.Parameter(torch.ones(hidden_size, **factory))
        self.ln_c_bias = nn.Parameter(torch.zeros(hidden_size, **factory))

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for name in ("ln_ih_weight", "ln_hh_weight", "ln_c_weight"):
            if hasattr(self, name):
                nn.init.ones_(getattr(self, name))
        if hasattr(self, "ln_c_bias"):
            nn.init.zeros_(self.ln_c_bias)

    def _ln(self, a: Tensor, gain: Tensor, shift: Tensor | None = None) -> Tensor:
        return F.layer_norm(a, a.shape[-1:], gain, shift, self.eps)

    def project(self, x: Tensor) -> Tensor:
        ux = self._ln(F.linear(x, self.weight_ih), self.ln_ih_weight)
        return ux if self.bias_ih is None else ux + self.bias_ih

    def step(self, ux: Tensor, state: LSTMState) -> LSTMState:
        h, c = state
        wh = self._ln(F.linear(h, self.weight_hh), self.ln_hh_weight)
        if self.bias_hh is not None:
            wh = wh + self.bias_hh
        i, f, g, o = (ux + wh).chunk(4, dim=-1)
        i, f, c_tilde, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * c_tilde
        h = self.emit(o * torch.tanh(self._ln(c, self.ln_c_weight, self.ln_c_bias)))
        return LSTMState(h, c)


RNNCell = ElmanCell  # torch.nn.RNNCell's name: (input_size, hidden_size, bias=True, nonlinearity="tanh")
