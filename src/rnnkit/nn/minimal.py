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

The time loop (rnnkit.nn.unroll's ``scan`` slot, chosen by ``linear_scan_for``; it takes the inputs x, not U x + b):
- on a CPU, :func:`sequential_min_scan`: one autograd node for the layer that walks time in chunks of
  ``CHUNK_ROWS`` rows (steps x batch) end to end, so the working set and the cost per step do not grow with T.
  Forward, per chunk: U x + b for the chunk's steps (one GEMM, a temporary), the gates (each σ computed once,
  written into the chunk's own buffer kept for the backward pass), the linear scan into the output buffer. Backward,
  chunks in reverse: the reverse scan g_t = ∂L/∂h_t + a_{t+1} ⊙ g_{t+1} (see rnnkit.nn.linear_scan) from the saved
  gates (no σ recomputed), ∂L/∂(U x_t + b) for the chunk (a small temporary, never a (T, B, G·H) buffer), then ∂L/∂x
  for the chunk and ∂L/∂U, ∂L/∂b accumulated, one GEMM each. Kept for the backward pass: x, the gates (z, h̃; for
  minLSTM also 1 − i and f − 1) and the states.
- on other devices, :func:`parallel_min_scan` of ``cell.project(x)``: the gates as whole-tensor operations
  (autograd) and ``linear_scan(method="parallel")``, log-depth in T.
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

CHUNK_ROWS = 512  # rows (steps x batch) per chunk of the CPU scan: its (L·B, G·H) temporaries stay in cache


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
    """python_scan's contract, from U x + b (T, B, G·H): by device, :func:`sequential_min_scan` on a CPU, else
    :func:`parallel_min_scan`. ``min_scan.from_input`` is the same time loop from the inputs x (T, B, I), which
    projects them itself, chunk by chunk; rnnkit.nn.unroll calls it when the scan has one."""
    if ux.device.type == "cpu":
        return sequential_min_scan(cell, ux, state, alive, projected=True)
    return parallel_min_scan(cell, ux, state, alive)


def _min_scan_from_input(cell, x: Tensor, state: Tensor, alive: Tensor | None = None):
    if x.device.type == "cpu":
        return sequential_min_scan(cell, x, state, alive)
    return parallel_min_scan(cell, cell.project(x), state, alive)


min_scan.from_input = _min_scan_from_input


def parallel_min_scan(cell, ux: Tensor, state: Tensor, alive: Tensor | None = None, method: str = "parallel"):
    """The gates over all steps at once, then ``linear_scan(method=...)``; autograd for the gates.
    Returns (outputs (T, B, H), final state (B, H)), python_scan's contract."""
    z, h_tilde = cell.mix(ux)
    live = None if alive is None else alive.unsqueeze(-1).to(ux.dtype)  # (T, B, 1)
    if live is not None:
        z = z * live  # padding: a = 1, b = 0
    hs = linear_scan(1 - z, z * h_tilde, state, method=method)
    return (hs if live is None else hs * live), hs[-1]


def sequential_min_scan(cell, x: Tensor, state: Tensor, alive: Tensor | None = None, projected: bool = False):
    """The CPU time loop from the inputs x (T, B, I): one autograd node that runs, chunk by chunk of time steps,
    projection GEMM, gates and scan (see the module docstring). ``projected``: x is already U x + b (T, B, G·H)
    (python_scan's contract; its gradient is then returned for all steps at once). Returns (outputs (T, B, H),
    final state (B, H))."""
    kind = "gru" if type(cell) is MinGRUCell else "lstm"
    live = None if alive is None else alive.unsqueeze(-1).to(x.dtype)
    if projected:
        return _MinScan.apply(kind, x, None, None, state, live)
    return _MinScan.apply(kind, x, cell.weight_ih, cell.bias_ih, state, live)


def _chunks(T: int, B: int):
    steps = max(1, CHUNK_ROWS // max(B, 1))
    return [(t0, min(t0 + steps, T)) for t0 in range(0, T, steps)]


# The CPU scan's element-wise work avoids torch.where and comparisons, which are 4-20x slower than arithmetic on
# CPU tensors, and σ, ~10x slower than a multiply-add: σ runs once per gate in the forward pass and the backward pass
# reads the gates it saved. The identities used:
#   g(x) = max(x + 0.5, σ(x)): σ is convex below 0 and concave above, with tangent 0.5 + x/4 at 0, so
#          σ(x) ≥ 0.5 + x/4 ≥ x + 0.5 for x < 0 and σ(x) ≤ 0.5 + x/4 ≤ x + 0.5 for x ≥ 0;
#   g'(x) from h̃ = g(x) alone: h̃ ≥ 0.5 ⟺ x ≥ 0, so g'(x) = max(step(h̃ − 0.5), h̃(1 − h̃)) with step(y) =
#          min(sign(y) + 1, 1) (1 for y ≥ 0, else 0) and h̃(1 − h̃) = σ'(x) ≤ 1/4 for x < 0. (Where σ(x) rounds to
#          0.5 for x < 0, |x| < 2⁻²⁴ in float32, the right-hand slope 1 is taken: the kink, to rounding.)
def _g_prime_of(h_tilde: Tensor) -> Tensor:
    """g'(x) from h̃ = g(x), into a new tensor."""
    step = torch.sub(h_tilde, 0.5).sign_().add_(1).clamp_(max=1)
    return torch.maximum(step, torch.addcmul(h_tilde, h_tilde, h_tilde, value=-1))


def _normalised_input_gate(a_f: Tensor, a_i: Tensor, f: Tensor, i: Tensor) -> Tensor:
    """i' = i/(f + i) from the sigmoids f = σ(a_f), i = σ(a_i) where f + i is a normal number (the quotient is
    then exact to rounding), else σ(log σ(a_i) − log σ(a_f)) for the whole chunk (both gates underflowed)."""
    total = f + i
    if float(total.min()) >= torch.finfo(total.dtype).tiny / torch.finfo(total.dtype).eps:
        return total.reciprocal_().mul_(i)
    return torch.sigmoid(F.logsigmoid(a_i) - F.logsigmoid(a_f))


def _rows(t: Tensor) -> Tensor:
    """(L, B, K) -> (L·B, K): a view when the chunk is contiguous, else a copy of the chunk (batch_first input)."""
    return t.reshape(-1, t.shape[-1])


SAVED = {"gru": 2, "lstm": 4}  # blocks of the saved gates: z, h̃ (and 1 − i, f − 1 for minLSTM)


def _forward_chunk(kind: str, u: Tensor, saved: Tensor, live: Tensor | None) -> tuple[Tensor, Tensor]:
    """U x + b of a chunk (L, B, G·H) -> its saved gates (written into ``saved`` (K, L, B, H)) and the scan's
    coefficients a = 1 − z, b = z ⊙ h̃ (z masked: padding has a = 1, b = 0)."""
    H = saved.shape[-1]
    z, h_tilde = saved[0], saved[1]
    a_h = u[..., -H:]
    if kind == "gru":
        torch.sigmoid(u[..., :H], out=z)
    else:
        f, i = torch.sigmoid(u[..., :H]), torch.sigmoid(u[..., H : 2 * H])
        z.copy_(_normalised_input_gate(u[..., :H], u[..., H : 2 * H], f, i))
        torch.sub(1, i, out=saved[2])  # ∂z/∂a_i = z (1 − z)(1 − i)
        torch.sub(f, 1, out=saved[3])  # ∂z/∂a_f = z (1 − z)(f − 1)
    if live is not None:
        z.mul_(live)
    torch.maximum(torch.sigmoid(a_h), a_h + 0.5, out=h_tilde)  # g(a_h)
    return torch.sub(1, z), torch.mul(z, h_tilde)


def _backward_chunk(kind: str, saved: Tensor, h_prev: Tensor, e: Tensor, carry: Tensor, d_u: Tensor) -> Tensor:
    """The chunk's ∂L/∂(U x + b) into ``d_u`` (L, B, G·H) from its saved gates, the states before each step, the
    outside gradient e and the carry from the later steps; returns the carry a_{t0} ⊙ g_{t0} to earlier steps."""
    H = saved.shape[-1]
    z, h_tilde = saved[0], saved[1]
    a = torch.sub(1, z)
    grad = reverse_gradient(a, e, carry, "sequential")  # g_t = e_t + a_{t+1} ⊙ g_{t+1}
    carry = a[0] * grad[0]
    # ∂L/∂(pre-activation of z) = g ⊙ (h̃ − h_{t-1}) ⊙ z (1 − z)  (b = z h̃, a = 1 − z; 0 at padding, z = 0)
    dz = torch.sub(h_tilde, h_prev).mul_(grad).mul_(a).mul_(z)
    if kind == "gru":
        d_u[..., :H] = dz
    else:  # z = σ(log i − log f)
        torch.mul(dz, saved[3], out=d_u[..., :H])
        torch.mul(dz, saved[2], out=d_u[..., H : 2 * H])
    torch.mul(grad.mul_(z), _g_prime_of(h_tilde), out=d_u[..., -H:])  # ∂L/∂a_h = g z g'(a_h)
    return carry


class _MinScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind: str, x: Tensor, weight: Tensor | None, bias: Tensor | None, h0: Tensor,
                live: Tensor | None):
        """x (T, B, I) and U = weight, b = bias; or x = U x + b (T, B, G·H) and weight None."""
        T, B, H = x.shape[0], x.shape[1], h0.shape[-1]
        hs = x.new_empty(T, B, H)
        # the gates, kept for the backward pass, one buffer per chunk: cache-sized blocks that the allocator
        # reuses from step to step, where one (K, T, B, H) buffer would be fresh pages (first-touch faults) each time
        saved = []
        h = h0
        for t0, t1 in _chunks(T, B):
            saved.append(x.new_empty(SAVED[kind], t1 - t0, B, H))
            a, b = _forward_chunk(kind, _project(x[t0:t1], weight, bias), saved[-1],
                                  None if live is None else live[t0:t1])
            scan_into(hs[t0:t1], a, b, h, "sequential")
            h = hs[t1 - 1]
        ctx.kind = kind
        ctx.save_for_backward(None if weight is None else x, weight, bias, hs, h0, live, *saved)
        out = hs if live is None else hs * live
        return out, hs[-1].clone()

    @staticmethod
    def backward(ctx, d_out: Tensor, d_final: Tensor):
        if torch.is_grad_enabled():
            raise RuntimeError("rnnkit's minGRU/minLSTM scan cannot differentiate twice (its hand-written backward "
                               "is not itself differentiable; create_graph=True was asked for): set "
                               "layer.use_fast_scan = False to run python_scan")
        x, weight, bias, hs, h0, live, *saved = ctx.saved_tensors
        T, B = hs.shape[0], hs.shape[1]
        need_x, need_w, need_b = ctx.needs_input_grad[1:4]
        rows = hs.shape[-1] * (2 if ctx.kind == "gru" else 3)  # G·H
        if weight is None:  # x was U x + b: its gradient for all steps, no GEMM here
            d_ux = hs.new_empty(T, B, rows) if need_x else None
            dx = dw = db = None
        else:
            I = x.shape[-1]
            dx = hs.new_empty(T, B, I) if need_x else None
            dw = torch.zeros_like(weight) if need_w else None
            db = torch.zeros_like(bias) if need_b else None
        carry = d_final  # a_{t+1} ⊙ g_{t+1} for the chunk's last step t, from the later steps
        for (t0, t1), gates in reversed(list(zip(_chunks(T, B), saved))):
            e = d_out[t0:t1] if live is None else d_out[t0:t1] * live[t0:t1]
            h_prev = hs[t0 - 1 : t1 - 1] if t0 else torch.cat([h0.unsqueeze(0), hs[: t1 - 1]])
            if weight is None:  # ∂L/∂(U x_t + b) for the chunk's steps
                d_u = d_ux[t0:t1] if d_ux is not None else hs.new_empty(t1 - t0, B, rows)
            else:
                d_u = hs.new_empty(t1 - t0, B, rows)
            carry = _backward_chunk(ctx.kind, gates, h_prev, e, carry, d_u)
            if weight is None:
                continue
            d2 = d_u.view(-1, rows)  # (L·B, G·H)
            if dx is not None:
                torch.mm(d2, weight, out=dx[t0:t1].view(-1, I))  # ∂L/∂x_t = U^T δ_t
            if dw is not None:
                dw.addmm_(d2.t(), _rows(x[t0:t1]))  # ∂L/∂U += Σ_t δ_t x_t^T
            if db is not None:
                db.add_(d2.sum(0))
        return None, (d_ux if weight is None else dx), dw, db, carry, None


def _project(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """U x + b for a chunk x (L, B, I) -> (L, B, G·H), one GEMM; x itself when weight is None (already U x + b)."""
    if weight is None:
        return x
    x2 = _rows(x)
    u = torch.mm(x2, weight.t()) if bias is None else torch.addmm(bias, x2, weight.t())
    return u.view(x.shape[0], x.shape[1], -1)
