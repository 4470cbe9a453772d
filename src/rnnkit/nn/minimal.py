"""minGRU and minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We Needed?"): gates that
read only x_t, so the recurrence is linear in h and trains as a scan over time.

    minGRU   z_t = σ(U_z x_t + b_z),   h̃_t = g(U_h x_t + b_h)
             h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t
    minLSTM  f_t = σ(U_f x_t + b_f),   i_t = σ(U_i x_t + b_i),   h̃_t = g(U_h x_t + b_h)
             f'_t = f_t / (f_t + i_t),   i'_t = i_t / (f_t + i_t)            (the paper's normalised gates)
             h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t

    g(x) = x + 0.5 for x ≥ 0, σ(x) for x < 0   (the paper's activation: continuous, positive, linear for x ≥ 0)

Both are h_t = a_t ⊙ h_{t-1} + b_t with a_t = 1 − z_t, b_t = z_t ⊙ h̃_t, where minLSTM's z_t = i'_t (f'_t = 1 − i'_t
exactly). The state is h alone (no memory cell, no output gate) and there are no recurrent weights: weight_ih
(G·H, I) and bias_ih (G·H,) hold the gate blocks (z, h̃) for minGRU (G = 2) and (f, i, h̃) for minLSTM (G = 3).
i'_t is computed as σ(log σ(a_i) − log σ(a_f)), which equals i/(f + i) and stays finite when both gates underflow.

The initial state. The paper's log-space listing maps a given h_0 through log g, i.e. uses g(h_0), so that
log h_0 exists; that is a requirement of the log-space scan only. rnnkit's scan needs no logarithm, so a given state
is used as it is: a state carried from a previous window (truncated BPTT, generation) is then continued exactly,
and ``cell.step`` one step at a time equals the layer over the whole sequence. The default h_0 is zeros.

The time loop (rnnkit.nn.unroll's ``scan`` slot, chosen by ``linear_scan_for``):
- on a CPU, :func:`sequential_min_scan`: one autograd node for the whole sequence that computes the gates chunk
  by chunk of time steps (small temporaries that stay in cache), runs the linear scan into the output buffer, and
  in the backward pass recomputes the gates from U x + b and runs the reverse scan g_t = ∂L/∂h_t + a_{t+1} ⊙ g_{t+1}
  (see rnnkit.nn.linear_scan), writing ∂L/∂(U x_t + b) for all steps into one buffer. Only U x + b and the states
  are kept for the backward pass.
- on other devices, :func:`parallel_min_scan`: the gates as whole-tensor operations (autograd) and
  ``linear_scan(method="parallel")``, log-depth in T.
Padding (``alive`` False) is a step with a_t = 1 and b_t = 0 (z_t = 0): the state is carried, the output is zero,
and neither the value nor the gradient of any real step changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.nn.cells import RecurrentCell
from rnnkit.nn.linear_scan import linear_scan, reverse_gradient, scan_into

__all__ = ["MinGRUCell", "MinLSTMCell", "g", "linear_scan_for", "parallel_min_scan", "sequential_min_scan"]

CHUNK_ELEMENTS = 1 << 16  # elements per chunk of time steps in the CPU scan: (L, B, H) temporaries fit in cache


def g(x: Tensor) -> Tensor:
    """The paper's activation: x + 0.5 for x ≥ 0, σ(x) for x < 0."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


class _MinimalCell(RecurrentCell):
    """The shared part of minGRU and minLSTM: no recurrent weights; the state is h (B, H)."""

    has_recurrent_weights = False

    def mix(self, ux: Tensor) -> tuple[Tensor, Tensor]:
        """(z, h̃) from U x + b (..., G·H): h_t = (1 − z) ⊙ h_{t-1} + z ⊙ h̃."""
        raise NotImplementedError

    def step(self, ux: Tensor, h: Tensor) -> Tensor:
        z, h_tilde = self.mix(ux)
        return torch.lerp(h, h_tilde, z)  # (1 − z) ⊙ h_{t-1} + z ⊙ h̃_t


class MinGRUCell(_MinimalCell):
    """minGRU (Feng et al. 2024): z_t = σ(U_z x_t + b_z), h̃_t = g(U_h x_t + b_h),
    h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t. Gate blocks (z, h̃) in weight_ih (2H, I), bias_ih (2H,)."""

    gates = 2

    def mix(self, ux: Tensor) -> tuple[Tensor, Tensor]:
        a_z, a_h = ux.chunk(2, dim=-1)
        return torch.sigmoid(a_z), g(a_h)


class MinLSTMCell(_MinimalCell):
    """minLSTM (Feng et al. 2024): f_t = σ(U_f x_t + b_f), i_t = σ(U_i x_t + b_i), h̃_t = g(U_h x_t + b_h),
    h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t with f' = f/(f + i), i' = i/(f + i). Gate blocks (f, i, h̃) in
    weight_ih (3H, I), bias_ih (3H,). The state is h only (no c)."""

    gates = 3

    def mix(self, ux: Tensor) -> tuple[Tensor, Tensor]:
        a_f, a_i, a_h = ux.chunk(3, dim=-1)
        i_norm = torch.sigmoid(F.logsigmoid(a_i) - F.logsigmoid(a_f))  # i' = i/(f + i) = σ(log i − log f)
        return i_norm, g(a_h)


# -- the scans ---------------------------------------------------------------------------------------------------
def linear_scan_for(cell):
    """The time loop for a minGRU / minLSTM cell (exactly those types), else None."""
    return min_scan if type(cell) in (MinGRUCell, MinLSTMCell) else None


def min_scan(cell, ux: Tensor, state: Tensor, alive: Tensor | None = None):
    """By device: :func:`sequential_min_scan` on a CPU, :func:`parallel_min_scan` elsewhere."""
    scan = sequential_min_scan if ux.device.type == "cpu" else parallel_min_scan
    return scan(cell, ux, state, alive)


def parallel_min_scan(cell, ux: Tensor, state: Tensor, alive: Tensor | None = None, method: str = "parallel"):
    """The gates over all steps at once, then ``linear_scan(method=...)``; autograd for the gates.
    Returns (outputs (T, B, H), final state (B, H)), python_scan's contract."""
    z, h_tilde = cell.mix(ux)
    live = None if alive is None else alive.unsqueeze(-1).to(ux.dtype)  # (T, B, 1)
    if live is not None:
        z = z * live  # padding: a = 1, b = 0
    hs = linear_scan(1 - z, z * h_tilde, state, method=method)
    return (hs if live is None else hs * live), hs[-1]


def sequential_min_scan(cell, ux: Tensor, state: Tensor, alive: Tensor | None = None):
    """The CPU scan: one autograd node, gates computed chunk by chunk (see the module docstring)."""
    kind = "gru" if type(cell) is MinGRUCell else "lstm"
    live = None if alive is None else alive.unsqueeze(-1).to(ux.dtype)
    out, final = _MinScan.apply(kind, ux, state, live)
    return out, final


def _chunks(T: int, per_step: int):
    steps = max(1, CHUNK_ELEMENTS // max(per_step, 1))
    return [(t0, min(t0 + steps, T)) for t0 in range(0, T, steps)]


# The CPU scan's element-wise work avoids torch.where and comparisons, which are 5-20x slower than arithmetic on
# CPU tensors (bench/parallel_scan.py). Two identities make that possible:
#   g(x) = max(x + 0.5, σ(x)): σ is convex below 0 and concave above, with tangent 0.5 + x/4 at 0, so
#          σ(x) ≥ 0.5 + x/4 ≥ x + 0.5 for x < 0 and σ(x) ≤ 0.5 + x/4 ≤ x + 0.5 for x ≥ 0;
#   g'(x) = max(step(x), σ'(x)) with step(x) = min(sign(x) + 1, 1) (1 for x ≥ 0, else 0) and σ' ≤ 1/4.
def _g_fast(s: Tensor, x: Tensor) -> Tensor:
    """g(x) from s = σ(x), into a new tensor."""
    return torch.maximum(s, x + 0.5)


def _g_prime_fast(s: Tensor, x: Tensor) -> Tensor:
    """g'(x) from s = σ(x): 1 for x ≥ 0, σ(x)(1 − σ(x)) for x < 0."""
    return torch.maximum(torch.sign(x).add_(1).clamp_(max=1), torch.addcmul(s, s, s, value=-1))


def _normalised_input_gate(a_f: Tensor, a_i: Tensor, f: Tensor, i: Tensor) -> Tensor:
    """i' = i/(f + i) from the sigmoids f = σ(a_f), i = σ(a_i) where f + i is a normal number (the quotient is
    then exact to rounding), else σ(log σ(a_i) − log σ(a_f)) for the whole chunk (both gates underflowed)."""
    total = f + i
    if float(total.min()) >= torch.finfo(total.dtype).tiny / torch.finfo(total.dtype).eps:
        return total.reciprocal_().mul_(i)
    return torch.sigmoid(F.logsigmoid(a_i) - F.logsigmoid(a_f))


def _gates(kind: str, ux: Tensor, H: int):
    """For a chunk of U x + b (L, B, G·H): z (before masking), h̃ = g(a_h), σ(a_h), a_h and, for minLSTM, (f, i).
    One σ over the whole chunk gives every gate's sigmoid (σ(a_z) or σ(a_f), σ(a_i); and σ(a_h) for g)."""
    s = torch.sigmoid(ux)
    a_h, s_h = ux[..., -H:], s[..., -H:]
    if kind == "gru":
        z, gates = s[..., :H], None
    else:
        f, i = s[..., :H], s[..., H : 2 * H]
        z, gates = _normalised_input_gate(ux[..., :H], ux[..., H : 2 * H], f, i), (f, i)
    return z, _g_fast(s_h, a_h), s_h, a_h, gates


class _MinScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind: str, ux: Tensor, h0: Tensor, live: Tensor | None):
        T, B, H = ux.shape[0], ux.shape[1], h0.shape[-1]
        hs = ux.new_empty(T, B, H)
        h = h0
        for t0, t1 in _chunks(T, B * H):
            z, h_tilde, *_ = _gates(kind, ux[t0:t1], H)
            if live is not None:
                z.mul_(live[t0:t1])
            b = h_tilde.mul_(z)  # b_t = z_t ⊙ h̃_t
            a = z.neg_().add_(1)  # a_t = 1 − z_t
            scan_into(hs[t0:t1], a, b, h, "sequential")
            h = hs[t1 - 1]
        ctx.kind = kind
        ctx.save_for_backward(ux, hs, h0, live)
        out = hs if live is None else hs * live
        return out, hs[-1].clone()

    @staticmethod
    def backward(ctx, d_out: Tensor, d_final: Tensor):
        if torch.is_grad_enabled():
            raise RuntimeError("rnnkit's minGRU/minLSTM scan cannot differentiate twice (its hand-written backward "
                               "is not itself differentiable; create_graph=True was asked for): set "
                               "layer.use_fast_scan = False to run python_scan")
        ux, hs, h0, live = ctx.saved_tensors
        T, B, H = hs.shape
        d_ux = torch.empty_like(ux)
        carry = d_final  # a_{t+1} ⊙ g_{t+1} for the chunk's last step t, from the later steps
        for t0, t1 in reversed(_chunks(T, B * H)):
            z, h_tilde, s_h, a_h, gates = _gates(ctx.kind, ux[t0:t1], H)
            if live is not None:
                z_live = z * live[t0:t1]
                e = d_out[t0:t1] * live[t0:t1]
            else:
                z_live, e = z, d_out[t0:t1]
            a = 1 - z_live
            grad = reverse_gradient(a, e, carry, "sequential")  # g_t = e_t + a_{t+1} ⊙ g_{t+1}
            carry = a[0] * grad[0]
            h_prev = hs[t0 - 1 : t1 - 1] if t0 else torch.cat([h0.unsqueeze(0), hs[: t1 - 1]])
            dz = torch.sub(h_tilde, h_prev).mul_(grad)  # ∂L/∂z_t of the masked z: b = z h̃, a = 1 − z
            if live is not None:
                dz.mul_(live[t0:t1])
            slope = torch.addcmul(z, z, z, value=-1)  # σ'(·) = z (1 − z): through the sigmoid that makes z
            if ctx.kind == "gru":
                torch.mul(dz, slope, out=d_ux[t0:t1, :, :H])
            else:  # z = σ(log i − log f): ∂/∂a_i = 1 − i, ∂/∂a_f = −(1 − f)
                f, i = gates
                dz.mul_(slope)
                torch.mul(dz, 1 - i, out=d_ux[t0:t1, :, H : 2 * H])
                torch.mul(dz, f - 1, out=d_ux[t0:t1, :, :H])
            torch.mul(grad.mul_(z_live), _g_prime_fast(s_h, a_h), out=d_ux[t0:t1, :, -H:])  # ∂L/∂a_h = g z g'
        return None, d_ux, carry, None
