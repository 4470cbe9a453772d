"""Fast scans: the loop path's time loop with a hand-written backpropagation through time.

``python_scan`` (in recurrent.py) lets autograd record every step: ~10 graph nodes per step, a weight-gradient
GEMM per step, and a Python-level engine walk back through T·10 nodes. A fast scan is one autograd node for the
whole sequence (a ``torch.autograd.Function``):

- forward: the time loop runs without recording, keeping only what the backward pass needs (the gate
  activations and the states), written step by step into buffers (T, B, ·) allocated once;
- backward: the error signals flow from T back to 1 as in the lectures (and in ``rnnkit.reference``); per step
  only elementwise work on (B, ·) tensors and one (B, G·H) x (G·H, H) matmul for ∂L/∂h_{t-1} (two for
  reset-before GRU, whose W_n acts on r ⊙ h). Step-local work stays in cache: a fresh (T, B, 4H) temporary
  costs more in page faults than the arithmetic it holds;
- the shared weights collect their gradient once, batched over time, in ONE GEMM each:
  ∂L/∂W = Σ_t δ_t h_{t-1}^T  as  (G·H, T·B) @ (T·B, H);  ∂L/∂b_hh = Σ_t δ_t;
- ∂L/∂(U x_t + b_ih) is returned for all steps at once, so the input projection (``cell.project``, one matmul)
  gets its gradient from autograd;
- for float32 on CPU the matmuls run in oneDNN (``ONEDNN``; torch.nn.LSTM's own CPU kernel), which is 1.4-3x
  faster than torch.mm's MKL sgemm on the AMD benchmark machine; equal results up to float32 rounding.

Every scan has python_scan's signature, ``scan(cell, ux, state, alive) -> (out (T, B, H), final state)``, and
its semantics: where ``alive`` (T, B) is False the state is carried unchanged and the output is zero. The
results equal python_scan's up to rounding (tests/test_scan.py). Double backward (gradcheck of gradcheck,
Hessian-vector products) is not supported: the backward pass is not itself differentiable and says so.

``fast_scan_for(cell)`` returns the scan for a cell of exactly one of the supported types (Elman with any φ,
LSTM, layer-norm LSTM, GRU in both forms) and None for anything else, e.g. a subclass with its own ``step`` or
an LSTM with projections.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.nn import _torch_private
from rnnkit.nn.cells import ElmanCell, GRUCell, LayerNormLSTMCell, LSTMCell, LSTMState
from rnnkit.nn.minimal import linear_scan_for


class Rule(NamedTuple):
    """One cell's forward loop and hand-written backward, and which of the cell's tensors are its parameters."""

    forward: callable  # (ux, state tuple, params, keep) -> (out, final state tuple, saved dict)
    backward: callable  # (saved, d_out, d_final tuple) -> (d_ux, d_state tuple, d_params tuple)
    params: tuple[str, ...]


class _Scan(torch.autograd.Function):
    """The whole time loop as one autograd node; ``rule`` says which cell it runs."""

    @staticmethod
    def forward(ctx, rule: Rule, ux: Tensor, alive: Tensor | None, n_state: int, *tensors: Tensor | None):
        state, params = tensors[:n_state], tensors[n_state:]
        keep = None if alive is None else alive.unsqueeze(-1)  # (T, B, 1)
        out, final, saved = rule.forward(ux, state, params, keep)
        ctx.rule, ctx.names = rule, list(saved)
        ctx.save_for_backward(*saved.values())
        return (out, *final)

    @staticmethod
    def backward(ctx, d_out: Tensor, *d_final: Tensor):
        if torch.is_grad_enabled():  # create_graph=True: a second derivative through this node would be wrong
            raise RuntimeError(
                "rnnkit's fast scan cannot differentiate twice (its hand-written backward is not itself "
                "differentiable; create_graph=True was asked for): set layer.use_fast_scan = False to run "
                "python_scan, or use a cell on the fused path"
            )
        saved = dict(zip(ctx.names, ctx.saved_tensors))
        d_ux, d_state, d_params = ctx.rule.backward(saved, d_out, d_final)
        grads = (None, d_ux, None, None, *d_state, *d_params)
        return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad))  # None for b=None


def _run(rule: Rule, cell, ux: Tensor, state, alive: Tensor | None = None):
    """A scan with python_scan's signature, for one rule."""
    tensors = tuple(state) if isinstance(state, tuple) else (state,)
    params = [getattr(cell, name) for name in rule.params]
    out, *final = _Scan.apply(rule, ux, alive, len(tensors), *tensors, *params)
    return out, (LSTMState(*final) if isinstance(state, tuple) else final[0])


# -- helpers shared by the rules ------------------------------------------------------------------------------------
def _carry(keep_t: Tensor | None, new: Tensor, old: Tensor) -> Tensor:
    """The state after a step: the new one where the sequence is alive, the old one where it has ended."""
    return new if keep_t is None else torch.where(keep_t, new, old)


def _emit(hs: list[Tensor], keep: Tensor | None) -> Tensor:
    """Outputs (T, B, H): the states, zero where not alive."""
    out = torch.stack(hs)
    return out if keep is None else out * keep


def _live(keep: Tensor | None, like: Tensor) -> Tensor | float:
    """1.0 where alive and 0.0 where not, (T, B, 1); 1.0 without a mask."""
    return 1.0 if keep is None else keep.to(like.dtype)


def _into_step(live: Tensor | None, t: int, d_out_t: Tensor, dh: Tensor, *rest: Tensor):
    """The state gradients arriving at step t, split in two (the masked-gradient rule of every fast scan).

    ∂L/∂h_t first gets the output's own e_t (zero where the step was padding). Then each gradient is split into
    the part that flows *through* step t, where the sequence was alive, and the part that passes *around* it,
    where the sequence had ended and its state was carried unchanged. Returns (through, around); around is
    None without a mask. :func:`_out_of_step` joins them again as ∂L/∂state_{t-1}.
    """
    if live is None:
        return (dh + d_out_t, *rest), None
    grads = (dh + d_out_t * live[t], *rest)
    return tuple(g * live[t] for g in grads), tuple(g * (1 - live[t]) for g in grads)


def _out_of_step(through: tuple[Tensor, ...], around: tuple[Tensor, ...] | None) -> tuple[Tensor, ...]:
    """∂L/∂state_{t-1}: what flowed back through step t plus what passed around it (see :func:`_into_step`)."""
    return through if around is None else tuple(g.add_(a) for g, a in zip(through, around))


def _through_time(delta: Tensor, inputs: Tensor) -> Tensor:
    """Σ_t δ_t^T inputs_t for δ (T, B, G·H) and inputs (T, B, K): one (G·H, T·B) @ (T·B, K) GEMM."""
    return _gram(delta.flatten(0, 1), inputs.flatten(0, 1))


def _weight_grad(delta: Tensor, h0: Tensor, hs: Tensor) -> Tensor:
    """Σ_t δ_t^T h_{t-1} (G·H, H): δ_1^T h_0 plus one GEMM over the steps 2..T (no copy of the states)."""
    dW = delta[0].t() @ h0
    return dW if hs.shape[0] == 1 else dW.add_(_gram(delta[1:].flatten(0, 1), hs[:-1].flatten(0, 1)))


def _sum_bt(delta: Tensor) -> Tensor:
    return delta.sum(dim=(0, 1))


def _back_to(dh: Tensor, dead_t: Tensor | None, delta_t: Tensor, times_W: callable) -> Tensor:
    """∂L/∂h_{t-1} = W^T δ_t, plus ∂L/∂h_t itself where the sequence had ended (its state was carried)."""
    back = times_W(delta_t)
    return back if dead_t is None else back.add_(dh * dead_t)


ONEDNN = _torch_private.ONEDNN  # set False to keep every matmul in torch.mm


def _use_onednn(t: Tensor) -> bool:
    return ONEDNN and torch.backends.mkldnn.enabled and t.dtype == torch.float32 and t.device.type == "cpu"


def _gram(a: Tensor, b: Tensor) -> Tensor:
    """a^T b for a (N, P) and b (N, Q), N = T·B: a weight gradient summed over time (oneDNN for float32 on CPU,
    ~1.4x MKL there, reading the transposes in place)."""
    if _use_onednn(a):
        return _torch_private.onednn_linear(a.t(), b.t())
    return a.t() @ b


def _times(W: Tensor, rows: int) -> callable:
    """The per-step matmul x ↦ x W^T for x (rows, ·).

    For float32 on CPU it runs oneDNN's GEMM with W packed once per sequence: on the benchmark machine (AMD EPYC)
    torch.mm's MKL sgemm reaches a third to a half of oneDNN's speed on these shapes (oneDNN is also what
    torch.nn.LSTM runs there). Same results up to float32 rounding; other dtypes and devices use torch.mm.
    """
    if _use_onednn(W):
        packed = _torch_private.onednn_pack(W, rows)
        return lambda x: _torch_private.onednn_linear(x, packed)
    Wt = W.t()
    return lambda x: x @ Wt


# -- Elman: h_t = φ(U x_t + W h_{t-1} + b) ---------------------------------------------------------------------------
def _phi(kind: str, a: Tensor) -> Tensor:
    """φ(a), in place on a fresh pre-activation."""
    return {"tanh": a.tanh_, "sigmoid": a.sigmoid_, "relu": a.relu_, "hardtanh": lambda: a.clamp_(-1.0, 1.0)}[kind]()


def _phi_prime(kind: str, h: Tensor) -> Tensor:
    """φ'(a) from h = φ(a); 0 at the kinks (relu at 0, hardtanh at ±1), as torch takes it."""
    if kind == "tanh":
        return 1 - h * h
    if kind == "sigmoid":
        return h * (1 - h)
    if kind == "relu":
        return (h > 0).to(h.dtype)
    return ((h > -1) & (h < 1)).to(h.dtype)


def _elman_forward(ux, state, params, keep, kind: str):
    (h0,), (W, b) = state, params
    a_x = ux if b is None else ux + b  # U x_t + b_ih + b_hh, every step
    h, hs, times_W = h0, [], _times(W, h0.shape[0])
    for t in range(ux.shape[0]):
        a = times_W(h).add_(a_x[t])  # a_t = U x_t + W h_{t-1} + b
        h = _carry(None if keep is None else keep[t], _phi(kind, a), h)
        hs.append(h)
    out = _emit(hs, keep)
    return out, (h,), {"hs": out if keep is None else torch.stack(hs), "h0": h0, "W": W, "keep": keep}


def _elman_backward(saved, d_out, d_final, kind: str):
    hs, h0, W, keep = saved["hs"], saved["h0"], saved["W"], saved["keep"]
    live = _live(keep, hs)
    dead = None if keep is None else 1 - live
    d_hs = d_out * live  # the outputs were the states, zeroed where not alive
    phi_prime = _phi_prime(kind, hs) * live  # ∂h_t/∂a_t, 0 where the step did not happen
    delta = torch.empty_like(hs)  # δ_t = ∂L/∂a_t
    (dh,) = d_final
    times_W = _times(W.t(), dh.shape[0])  # δ ↦ W^T δ
    for t in reversed(range(hs.shape[0])):
        dh = dh + d_hs[t]  # ∂L/∂h_t = e_t + W^T δ_{t+1}
        torch.mul(dh, phi_prime[t], out=delta[t])  # δ_t = ∂L/∂h_t ⊙ φ'(a_t)
        dh = _back_to(dh, None if dead is None else dead[t], delta[t], times_W)
    return delta, (dh,), (_weight_grad(delta, h0, hs), _sum_bt(delta))  # Σ_t δ_t h_{t-1}^T, Σ_t δ_t


# -- LSTM: gates (i, f, g, o), c_t = f ⊙ c_{t-1} + i ⊙ c̃, h_t = o ⊙ tanh(c_t) ----------------------------------------
# Buffers (T, B, ·) are allocated once and written step by step, and the backward pass works one step at a time:
# a fresh (T, B, 4H) temporary costs more in page faults than the arithmetic it holds.
def _lstm_gates(a: Tensor, out: Tensor) -> Tensor:
    """(B, 4H) pre-activations → [σ(a_i), σ(a_f), tanh(a_g), σ(a_o)], written into out (B, 4H)."""
    H = a.shape[1] // 4
    torch.sigmoid(a, out=out)
    torch.tanh(a[:, 2 * H : 3 * H], out=out[:, 2 * H : 3 * H])  # c̃ = tanh(a_g), written over σ(a_g)
    return out


def _lstm_deltas(s: Tensor, c_prev: Tensor, tanh_c: Tensor, dh: Tensor, dc: Tensor, delta_t: Tensor) -> None:
    """δ_t = ∂L/∂(pre-activations of i, f, g, o) into delta_t (B, 4H), from ∂L/∂h_t and ∂L/∂c_t:

    δi = ∂c ⊙ c̃ ⊙ σ'(i),  δf = ∂c ⊙ c_{t-1} ⊙ σ'(f),  δg = ∂c ⊙ i ⊙ (1 − c̃²),  δo = ∂h ⊙ tanh(c_t) ⊙ σ'(o).
    """
    H = dh.shape[1]
    i, f, g, o = s.chunk(4, dim=1)
    d_i, d_f, d_g, d_o = delta_t.chunk(4, dim=1)
    torch.mul(dc, g, out=d_i)
    torch.mul(dc, c_prev, out=d_f)
    torch.mul(dc, i, out=d_g)
    torch.mul(dh, tanh_c, out=d_o)
    slope = torch.addcmul(s, s, s, value=-1)  # σ' = s (1 − s) for i, f, o ...
    torch.mul(g, g, out=slope[:, 2 * H : 3 * H]).neg_().add_(1)  # ... and tanh' = 1 − c̃² for g
    delta_t.mul_(slope)


def _lstm_forward(ux, state, params, keep):
    (h, c), (W, b) = state, params
    T, (h0, c0) = ux.shape[0], state
    gates, hs, cs = torch.empty_like(ux), ux.new_empty(T, *h.shape), ux.new_empty(T, *h.shape)
    times_W = _times(W, h.shape[0])
    for t in range(T):
        a = times_W(h).add_(ux[t])  # U x_t + W h_{t-1} + b
        s = _lstm_gates(a if b is None else a.add_(b), out=gates[t])
        i, f, g, o = s.chunk(4, dim=1)
        c_new = torch.addcmul(f * c, i, g)  # c_t = f ⊙ c_{t-1} + i ⊙ c̃
        h_new = o * torch.tanh(c_new)  # h_t = o ⊙ tanh(c_t)
        keep_t = None if keep is None else keep[t]
        h, c = _carry(keep_t, h_new, h), _carry(keep_t, c_new, c)
        hs[t], cs[t] = h, c
    out = hs if keep is None else hs * keep
    return out, (h, c), {"gates": gates, "hs": hs, "cs": cs, "h0": h0, "c0": c0, "W": W, "keep": keep}


def _lstm_backward(saved, d_out, d_final):
    gates, hs, cs, h0, c0, W, keep = (saved[k] for k in ("gates", "hs", "cs", "h0", "c0", "W", "keep"))
    T, B, H = hs.shape
    live = None if keep is None else _live(keep, hs)
    delta = torch.empty_like(gates)  # δ_t = ∂L/∂(pre-activations of i, f, g, o)
    times_W = _times(W.t(), B)  # δ ↦ W^T δ
    dh, dc = d_final
    for t in reversed(range(T)):
        s, c_prev, tanh_c = gates[t], cs[t - 1] if t else c0, torch.tanh(cs[t])
        (dh, dc), around = _into_step(live, t, d_out[t], dh, dc)  # ∂L/∂h_t = e_t + W^T δ_{t+1}, ∂L/∂c_t
        o = s[:, 3 * H :]
        dc = torch.addcmul(dc, dh, o * (1 - tanh_c * tanh_c))  # ∂L/∂c_t = f_{t+1} ∂c_{t+1} + ∂h ⊙ o ⊙ tanh'(c_t)
        _lstm_deltas(s, c_prev, tanh_c, dh, dc, delta[t])
        dc = dc * s[:, H : 2 * H]  # ∂L/∂c_{t-1} = f_t ⊙ ∂L/∂c_t, the constant error carousel
        dh = times_W(delta[t])  # ∂L/∂h_{t-1} = W^T δ_t
        dh, dc = _out_of_step((dh, dc), around)
    return delta, (dh, dc), (_weight_grad(delta, h0, hs), _sum_bt(delta))


# -- layer-norm LSTM: a = LN(U x_t) + LN(W h_{t-1}; α_h) + b, h_t = o ⊙ tanh(LN(c_t; α_c, β_c)) ----------------------
def _layer_norm(a: Tensor, gain: Tensor, shift: Tensor | None, eps: float, mean: Tensor, rstd: Tensor) -> Tensor:
    """LN(a; α, β) = α ⊙ (a − mean(a)) / std(a) + β over the last dimension; mean and 1/std (B, 1) go into
    ``mean`` and ``rstd`` for the backward pass (aten's kernel, the one F.layer_norm runs)."""
    y, mean[...], rstd[...] = torch.native_layer_norm(a, a.shape[-1:], gain, shift, eps)
    return y


def _layer_norm_backward(d_y: Tensor, a: Tensor, mean: Tensor, rstd: Tensor, gain: Tensor, shift: Tensor | None):
    """(∂L/∂a, ∂L/∂α, ∂L/∂β) of one step's LN from ∂L/∂y, batch-summed (aten's kernel):
    ∂L/∂a = (∂â − mean(∂â) − â ⊙ mean(∂â ⊙ â)) / std(a) with ∂â = α ⊙ ∂L/∂y;  ∂L/∂α = Σ_b ∂L/∂y ⊙ â."""
    mask = [True, True, shift is not None]
    return torch.ops.aten.native_layer_norm_backward(d_y, a, a.shape[-1:], mean, rstd, gain, shift, mask)


def _ln_lstm_forward(ux, state, params, keep, eps: float):
    (h, c), (W, b, alpha_h, alpha_c, beta_c) = state, params
    T, (B, H), (h0, c0) = ux.shape[0], h.shape, state
    gates, m = torch.empty_like(ux), torch.empty_like(ux)  # the gates; W h_{t-1} before normalisation
    hs, cs, tanh_hc = (ux.new_empty(T, B, H) for _ in range(3))
    mean_m, rstd_m, mean_c, rstd_c = (ux.new_empty(T, B, 1) for _ in range(4))
    times_W = _times(W, B)
    for t in range(T):
        m[t] = times_W(h)
        a = _layer_norm(m[t], alpha_h, None, eps, mean_m[t], rstd_m[t]).add_(ux[t])  # LN(W h; α_h) + LN(U x) + b_ih
        s = _lstm_gates(a if b is None else a.add_(b), out=gates[t])  # ... + b_hh
        i, f, g, o = s.chunk(4, dim=1)
        c_new = torch.addcmul(f * c, i, g)  # c_t = f ⊙ c_{t-1} + i ⊙ c̃
        torch.tanh(_layer_norm(c_new, alpha_c, beta_c, eps, mean_c[t], rstd_c[t]), out=tanh_hc[t])
        h_new = o * tanh_hc[t]  # h_t = o ⊙ tanh(LN(c_t; α_c, β_c))
        keep_t = None if keep is None else keep[t]
        h, c = _carry(keep_t, h_new, h), _carry(keep_t, c_new, c)
        hs[t], cs[t] = h, c
    out = hs if keep is None else hs * keep
    saved = {"gates": gates, "m": m, "mean_m": mean_m, "rstd_m": rstd_m, "hs": hs, "cs": cs, "tanh_hc": tanh_hc,
             "mean_c": mean_c, "rstd_c": rstd_c, "h0": h0, "c0": c0, "W": W, "alpha_h": alpha_h,
             "alpha_c": alpha_c, "beta_c": beta_c, "keep": keep}
    return out, (h, c), saved


def _ln_lstm_backward(saved, d_out, d_final):
    gates, hs, cs, tanh_hc, keep = (saved[k] for k in ("gates", "hs", "cs", "tanh_hc", "keep"))
    m, mean_m, rstd_m, mean_c, rstd_c = (saved[k] for k in ("m", "mean_m", "rstd_m", "mean_c", "rstd_c"))
    alpha_h, alpha_c, beta_c = saved["alpha_h"], saved["alpha_c"], saved["beta_c"]
    T, B, H = hs.shape
    live = None if keep is None else _live(keep, hs)
    delta, d_m = torch.empty_like(gates), torch.empty_like(gates)  # ∂L/∂a_t (gates), ∂L/∂(W h_{t-1})
    d_alpha_h, d_alpha_c, d_beta_c = torch.zeros_like(alpha_h), torch.zeros_like(alpha_c), torch.zeros_like(beta_c)
    times_W = _times(saved["W"].t(), B)  # ∂(W h) ↦ W^T ∂(W h)
    dh, dc = d_final
    for t in reversed(range(T)):
        s, c_prev = gates[t], cs[t - 1] if t else saved["c0"]
        (dh, dc), around = _into_step(live, t, d_out[t], dh, dc)  # ∂L/∂h_t, ∂L/∂c_t
        d_hc = dh * s[:, 3 * H :] * (1 - tanh_hc[t] * tanh_hc[t])  # ∂L/∂LN(c_t) = ∂h ⊙ o ⊙ tanh'
        d_c, d_a, d_b = _layer_norm_backward(d_hc, cs[t], mean_c[t], rstd_c[t], alpha_c, beta_c)
        dc = dc + d_c  # ∂L/∂c_t = f_{t+1} ⊙ ∂L/∂c_{t+1} + (through h_t)
        d_alpha_c.add_(d_a)
        d_beta_c.add_(d_b)
        _lstm_deltas(s, c_prev, tanh_hc[t], dh, dc, delta[t])
        d_m[t], d_a, _ = _layer_norm_backward(delta[t], m[t], mean_m[t], rstd_m[t], alpha_h, None)
        d_alpha_h.add_(d_a)
        dc = dc * s[:, H : 2 * H]  # ∂L/∂c_{t-1} = f_t ⊙ ∂L/∂c_t
        dh = times_W(d_m[t])  # ∂L/∂h_{t-1} = W^T ∂L/∂(W h_{t-1})
        dh, dc = _out_of_step((dh, dc), around)
    dW = _weight_grad(d_m, saved["h0"], hs)  # Σ_t ∂(W h_{t-1}) h_{t-1}^T
    return delta, (dh, dc), (dW, _sum_bt(delta), d_alpha_h, d_alpha_c, d_beta_c)


# -- GRU: r, z = σ(...), n = tanh(...), h_t = (1 − z) ⊙ n + z ⊙ h_{t-1} (torch.nn's z) -----------------------------
def _gru_forward(ux, state, params, keep, reset: str):
    (h,), (W, b) = state, params
    T, (B, H), h0 = ux.shape[0], h.shape, h
    before = reset == "before"
    u_rz, u_n = ux[..., : 2 * H], ux[..., 2 * H :]
    rz, n, hn, hs = ux.new_empty(T, B, 2 * H), ux.new_empty(T, B, H), ux.new_empty(T, B, H), ux.new_empty(T, B, H)
    if before:  # W_n acts on r ⊙ h_{t-1}: two matmuls per step
        times_W_rz, times_W_n = _times(W[: 2 * H], B), _times(W[2 * H :], B)
        b_rz, b_n = (None, None) if b is None else (b[: 2 * H], b[2 * H :])
    else:
        times_W = _times(W, B)
    for t in range(T):
        if before:
            a_rz = times_W_rz(h).add_(u_rz[t])
            r, z = torch.sigmoid(a_rz if b is None else a_rz.add_(b_rz), out=rz[t]).chunk(2, dim=1)
            a_n = times_W_n(torch.mul(r, h, out=hn[t])).add_(u_n[t])  # U_n x + b_in + W_n (r ⊙ h_{t-1})
            torch.tanh(a_n if b is None else a_n.add_(b_n), out=n[t])  # ... + b_hn
        else:
            wh = times_W(h) if b is None else times_W(h).add_(b)  # W h_{t-1} + b_hh
            r, z = torch.sigmoid(wh[:, : 2 * H].add_(u_rz[t]), out=rz[t]).chunk(2, dim=1)
            hn[t] = wh[:, 2 * H :]  # W_n h_{t-1} + b_hn, gated by r
            torch.tanh(torch.addcmul(u_n[t], r, hn[t]), out=n[t])  # n = tanh(U_n x + b_in + r ⊙ (W_n h + b_hn))
        h = _carry(None if keep is None else keep[t], torch.lerp(n[t], h, z), h)  # (1 − z) ⊙ n + z ⊙ h_{t-1}
        hs[t] = h
    out = hs if keep is None else hs * keep
    return out, (h,), {"rz": rz, "n": n, "hn": hn, "hs": hs, "h0": h0, "W": W, "keep": keep}


def _gru_deltas(dh: Tensor, z: Tensor, n: Tensor, h_prev: Tensor, d_z: Tensor, d_n: Tensor) -> None:
    """δn = ∂h ⊙ (1 − z) ⊙ (1 − n²) and δz = ∂h ⊙ (h_{t-1} − n) ⊙ z (1 − z), into d_n and d_z."""
    torch.mul(dh - dh * z, 1 - n * n, out=d_n)
    torch.mul(dh * (h_prev - n), torch.addcmul(z, z, z, value=-1), out=d_z)


def _gru_before_backward(saved, d_out, d_final):
    rz, n, r_h, hs, h0, W, keep = (saved[k] for k in ("rz", "n", "hn", "hs", "h0", "W", "keep"))
    T, B, H = hs.shape
    times_W_rz, times_W_n = _times(W[: 2 * H].t(), B), _times(W[2 * H :].t(), B)  # δ ↦ W_{rz}^T δ, W_n^T δ
    live = None if keep is None else _live(keep, hs)
    d_rz, d_n = hs.new_empty(T, B, 2 * H), torch.empty_like(hs)  # [δr, δz], δn
    dh = d_final[0]
    for t in reversed(range(T)):
        (r, z), h_prev = rz[t].chunk(2, dim=1), hs[t - 1] if t else h0
        (dh,), around = _into_step(live, t, d_out[t], dh)  # ∂L/∂h_t
        _gru_deltas(dh, z, n[t], h_prev, d_rz[t, :, H:], d_n[t])
        d_rh = times_W_n(d_n[t])  # ∂L/∂(r ⊙ h_{t-1}) = W_n^T δn
        torch.mul(d_rh * h_prev, torch.addcmul(r, r, r, value=-1), out=d_rz[t, :, :H])  # δr
        dh = times_W_rz(d_rz[t]).add_(dh * z).addcmul_(r, d_rh)  # via r and z; z ⊙ h_{t-1}; r ⊙ h_{t-1}
        (dh,) = _out_of_step((dh,), around)
    dW = torch.cat([_weight_grad(d_rz, h0, hs), _through_time(d_n, r_h)])
    delta = torch.cat([d_rz, d_n], dim=2)  # [δr, δz, δn] = ∂L/∂(U x_t + b_ih)
    return delta, (dh,), (dW, _sum_bt(delta))


def _gru_after_backward(saved, d_out, d_final):
    rz, n, hn, hs, h0, W, keep = (saved[k] for k in ("rz", "n", "hn", "hs", "h0", "W", "keep"))
    T, B, H = hs.shape
    live = None if keep is None else _live(keep, hs)
    d_wh, d_n = hs.new_empty(T, B, 3 * H), torch.empty_like(hs)  # ∂L/∂(W h_{t-1} + b_hh) = [δr, δz, r ⊙ δn]; δn
    dh, times_W = d_final[0], _times(W.t(), B)  # δ ↦ W^T δ
    for t in reversed(range(T)):
        (r, z), h_prev = rz[t].chunk(2, dim=1), hs[t - 1] if t else h0
        (dh,), around = _into_step(live, t, d_out[t], dh)  # ∂L/∂h_t
        _gru_deltas(dh, z, n[t], h_prev, d_wh[t, :, H : 2 * H], d_n[t])
        torch.mul(d_n[t] * hn[t], torch.addcmul(r, r, r, value=-1), out=d_wh[t, :, :H])  # δr
        torch.mul(d_n[t], r, out=d_wh[t, :, 2 * H :])
        dh = times_W(d_wh[t]).add_(dh * z)  # W^T ∂L/∂(W h_{t-1} + b_hh) + z ⊙ ∂L/∂h_t
        (dh,) = _out_of_step((dh,), around)
    delta = torch.cat([d_wh[:, :, : 2 * H], d_n], dim=2)  # [δr, δz, δn] = ∂L/∂(U x_t + b_ih)
    return delta, (dh,), (_weight_grad(d_wh, h0, hs), _sum_bt(d_wh))


# -- which cells have a fast scan ----------------------------------------------------------------------------------
def fast_scan_for(cell):
    """The hand-written BPTT scan for ``cell``, or None if its exact type has none (python_scan then).
    An LSTM with projections (proj_size > 0) has none yet."""
    kind = type(cell)
    if linear_scan_for(cell) is not None:  # minGRU / minLSTM: a linear recurrence (rnnkit.nn.minimal)
        return linear_scan_for(cell)
    if getattr(cell, "proj_size", 0):
        return None
    if kind is ElmanCell:
        rule = Rule(partial(_elman_forward, kind=cell.nonlinearity), partial(_elman_backward, kind=cell.nonlinearity),
                    ("weight_hh", "bias_hh"))
    elif kind is LSTMCell:
        rule = Rule(_lstm_forward, _lstm_backward, ("weight_hh", "bias_hh"))
    elif kind is LayerNormLSTMCell:
        rule = Rule(partial(_ln_lstm_forward, eps=cell.eps), _ln_lstm_backward,
                    ("weight_hh", "bias_hh", "ln_hh_weight", "ln_c_weight", "ln_c_bias"))
    elif kind is GRUCell:
        backward = _gru_before_backward if cell.reset == "before" else _gru_after_backward
        rule = Rule(partial(_gru_forward, reset=cell.reset), backward, ("weight_hh", "bias_hh"))
    else:
        return None
    return partial(_run, rule)
