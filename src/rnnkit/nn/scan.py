"""Fast scans: the loop path's time loop with a hand-written backpropagation through time.

``python_scan`` (in recurrent.py) lets autograd record every step: ~10 graph nodes per step, a weight-gradient
GEMM per step, and a Python-level engine walk back through T·10 nodes. A fast scan is one autograd node for the
whole sequence (a ``torch.autograd.Function``):

- forward: the time loop runs without recording, keeping only what the backward pass needs (the gate
  activations and the states);
- backward: the error signals flow from T back to 1 as in the lectures (and in ``rnnkit.reference``); per step
  only elementwise work and one (B, H) x (H, G·H) matmul for ∂L/∂h_{t-1} (two for reset-before GRU, whose
  W_n acts on r ⊙ h); the derivatives that do not depend on the backward recursion (σ' = s(1 − s),
  tanh' = 1 − g², ...) are computed for all steps at once before the loop;
- the shared weights collect their gradient once, batched over time, in ONE GEMM each:
  ∂L/∂W = Σ_t δ_t h_{t-1}^T  as  (G·H, T·B) @ (T·B, H);  ∂L/∂b_hh = Σ_t δ_t;
- ∂L/∂(U x_t + b_ih) is returned for all steps at once, so the input projection (``cell.project``, one matmul)
  gets its gradient from autograd.

Every scan has python_scan's signature, ``scan(cell, ux, state, alive) -> (out (T, B, H), final state)``, and
its semantics: where ``alive`` (T, B) is False the state is carried unchanged and the output is zero. The
results equal python_scan's up to rounding (tests/test_scan.py). Double backward (gradcheck of gradcheck,
Hessian-vector products) is not supported: the backward pass is not itself differentiable and says so.

``fast_scan_for(cell)`` returns the scan for a cell of exactly one of the supported types (Elman with any φ,
LSTM, layer-norm LSTM, GRU in both forms) and None for anything else, e.g. a subclass with its own ``step``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnkit.nn.cells import ElmanCell, GRUCell, LayerNormLSTMCell, LSTMCell, LSTMState


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
    @once_differentiable
    def backward(ctx, d_out: Tensor, *d_final: Tensor):
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


def _previous(first: Tensor, seq: Tensor) -> Tensor:
    """(T, B, H): the state entering each step, [s_0, s_1, ..., s_{T-1}]."""
    return torch.cat([first.unsqueeze(0), seq[:-1]])


def _live(keep: Tensor | None, like: Tensor) -> Tensor | float:
    """1.0 where alive and 0.0 where not, (T, B, 1); 1.0 without a mask."""
    return 1.0 if keep is None else keep.to(like.dtype)


def _through_time(delta: Tensor, inputs: Tensor) -> Tensor:
    """Σ_t δ_t^T inputs_t for δ (T, B, G·H) and inputs (T, B, K): one (G·H, T·B) @ (T·B, K) GEMM."""
    return delta.flatten(0, 1).t() @ inputs.flatten(0, 1)


def _sum_bt(delta: Tensor) -> Tensor:
    return delta.sum(dim=(0, 1))


def _back_to(dh: Tensor, dead_t: Tensor | None, delta_t: Tensor, W: Tensor) -> Tensor:
    """∂L/∂h_{t-1} = W^T δ_t, plus ∂L/∂h_t itself where the sequence had ended (its state was carried)."""
    return delta_t @ W if dead_t is None else torch.addmm(dh * dead_t, delta_t, W)


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
    h, hs = h0, []
    for t in range(ux.shape[0]):
        a = torch.addmm(a_x[t], h, W.t())  # a_t = U x_t + W h_{t-1} + b
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
    for t in reversed(range(hs.shape[0])):
        dh = dh + d_hs[t]  # ∂L/∂h_t = e_t + W^T δ_{t+1}
        torch.mul(dh, phi_prime[t], out=delta[t])  # δ_t = ∂L/∂h_t ⊙ φ'(a_t)
        dh = _back_to(dh, None if dead is None else dead[t], delta[t], W)
    dW = _through_time(delta, _previous(h0, hs))  # Σ_t δ_t h_{t-1}^T
    return delta, (dh,), (dW, _sum_bt(delta))


# -- LSTM: gates (i, f, g, o), c_t = f ⊙ c_{t-1} + i ⊙ c̃, h_t = o ⊙ tanh(c_t) ----------------------------------------
def _lstm_gates(a: Tensor) -> Tensor:
    """(B, 4H) pre-activations → [σ(a_i), σ(a_f), tanh(a_g), σ(a_o)] (B, 4H)."""
    H = a.shape[1] // 4
    s = torch.sigmoid(a)
    torch.tanh(a[:, 2 * H : 3 * H], out=s[:, 2 * H : 3 * H])  # c̃ = tanh(a_g), written over σ(a_g)
    return s


def _lstm_forward(ux, state, params, keep):
    (h, c), (W, b) = state, params
    h0, c0 = h, c
    a_x = ux if b is None else ux + b  # U x_t + b_ih + b_hh, every step
    gates, hs, cs = [], [], []
    for t in range(ux.shape[0]):
        s = _lstm_gates(torch.addmm(a_x[t], h, W.t()))  # σ/tanh(U x_t + W h_{t-1} + b)
        i, f, g, o = s.chunk(4, dim=1)
        c_new = torch.addcmul(f * c, i, g)  # c_t = f ⊙ c_{t-1} + i ⊙ c̃
        h_new = o * torch.tanh(c_new)  # h_t = o ⊙ tanh(c_t)
        keep_t = None if keep is None else keep[t]
        h, c = _carry(keep_t, h_new, h), _carry(keep_t, c_new, c)
        gates.append(s)
        hs.append(h)
        cs.append(c)
    out = _emit(hs, keep)
    saved = {"gates": torch.stack(gates), "hs": out if keep is None else torch.stack(hs), "cs": torch.stack(cs),
             "h0": h0, "c0": c0, "W": W, "keep": keep}
    return out, (h, c), saved


def _lstm_local(gates: Tensor, tanh_c: Tensor, c_prev: Tensor, live) -> tuple[Tensor, Tensor, Tensor]:
    """The step-local derivatives, for all steps at once (zero where not alive):

    K = [c̃ ⊙ σ'(i), c_{t-1} ⊙ σ'(f), i ⊙ tanh'(c̃), tanh(c_t) ⊙ σ'(o)]  so that  δ = [∂c, ∂c, ∂c, ∂h] ⊙ K,
    K_c = o ⊙ (1 − tanh² c_t)  (∂L/∂c_t gets ∂L/∂h_t ⊙ K_c),  and f (∂L/∂c_{t-1} = f ⊙ ∂L/∂c_t).
    """
    i, f, g, o = gates.chunk(4, dim=2)
    K = torch.cat([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tanh_c * o * (1 - o)], dim=2) * live
    K_c = o * (1 - tanh_c * tanh_c) * live
    f_carry = f if isinstance(live, float) else torch.where(live > 0, f, 1.0)  # carried c: ∂c passes as is
    return K, K_c, f_carry


def _lstm_backward(saved, d_out, d_final):
    gates, hs, cs, h0, c0, W, keep = (saved[k] for k in ("gates", "hs", "cs", "h0", "c0", "W", "keep"))
    T, B, H = hs.shape
    live = _live(keep, hs)
    dead = None if keep is None else 1 - live
    K, K_c, f = _lstm_local(gates, cs.tanh(), _previous(c0, cs), live)
    d_hs = d_out * live
    delta = torch.empty_like(gates)  # δ_t = ∂L/∂(pre-activations of i, f, g, o)
    dh, dc = d_final
    for t in reversed(range(T)):
        dh = dh + d_hs[t]  # ∂L/∂h_t = e_t + W^T δ_{t+1}
        dc = torch.addcmul(dc, dh, K_c[t])  # ∂L/∂c_t = f_{t+1} ⊙ ∂L/∂c_{t+1} + ∂L/∂h_t ⊙ o ⊙ tanh'(c_t)
        torch.mul(K[t, :, : 3 * H].view(B, 3, H), dc.unsqueeze(1), out=delta[t, :, : 3 * H].view(B, 3, H))
        torch.mul(K[t, :, 3 * H :], dh, out=delta[t, :, 3 * H :])  # δi, δf, δg from ∂c; δo from ∂h
        dc = dc * f[t]  # ∂L/∂c_{t-1}, through the constant error carousel
        dh = _back_to(dh, None if dead is None else dead[t], delta[t], W)
    dW = _through_time(delta, _previous(h0, hs))  # Σ_t δ_t h_{t-1}^T
    return delta, (dh, dc), (dW, _sum_bt(delta))


# -- layer-norm LSTM: a = LN(U x_t) + LN(W h_{t-1}; α_h) + b, h_t = o ⊙ tanh(LN(c_t; α_c, β_c)) ----------------------
def _normalise(a: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """â = (a − mean(a)) / std(a) over the last dimension, and 1/std (B, 1): what LN's backward needs."""
    a_hat, _, rstd = torch.native_layer_norm(a, a.shape[-1:], None, None, eps)
    return a_hat, rstd


def _normalise_backward(d_hat: Tensor, a_hat: Tensor, rstd: Tensor) -> Tensor:
    """∂L/∂a from ∂L/∂â:  (∂â − mean(∂â) − â ⊙ mean(∂â ⊙ â)) / std(a)."""
    mean_d = d_hat.mean(dim=-1, keepdim=True)
    mean_da = (d_hat * a_hat).mean(dim=-1, keepdim=True)
    return (d_hat - mean_d - a_hat * mean_da) * rstd


def _ln_lstm_forward(ux, state, params, keep, eps: float):
    (h, c), (W, b, alpha_h, alpha_c, beta_c) = state, params
    h0, c0 = h, c
    a_x = ux if b is None else ux + b  # LN(U x_t; α_x) + b_ih + b_hh, every step
    keys = ("gates", "m_hat", "rstd_m", "hs", "cs", "c_hat", "rstd_c")
    steps = {k: [] for k in keys}
    for t in range(ux.shape[0]):
        m_hat, rstd_m = _normalise(h @ W.t(), eps)  # W h_{t-1}, normalised
        s = _lstm_gates(torch.addcmul(a_x[t], m_hat, alpha_h))
        i, f, g, o = s.chunk(4, dim=1)
        c_new = torch.addcmul(f * c, i, g)  # c_t = f ⊙ c_{t-1} + i ⊙ c̃
        c_hat, rstd_c = _normalise(c_new, eps)
        h_new = o * torch.addcmul(beta_c, c_hat, alpha_c).tanh_()  # h_t = o ⊙ tanh(LN(c_t; α_c, β_c))
        keep_t = None if keep is None else keep[t]
        h, c = _carry(keep_t, h_new, h), _carry(keep_t, c_new, c)
        for k, v in zip(keys, (s, m_hat, rstd_m, h, c, c_hat, rstd_c)):
            steps[k].append(v)
    saved = {k: torch.stack(v) for k, v in steps.items()}
    out = saved["hs"] if keep is None else saved["hs"] * keep
    saved.update(h0=h0, c0=c0, W=W, alpha_h=alpha_h, alpha_c=alpha_c, beta_c=beta_c, keep=keep)
    return out, (h, c), saved


def _ln_lstm_backward(saved, d_out, d_final):
    gates, hs, cs, c_hat, keep = (saved[k] for k in ("gates", "hs", "cs", "c_hat", "keep"))
    m_hat, rstd_m, rstd_c, W, alpha_h = (saved[k] for k in ("m_hat", "rstd_m", "rstd_c", "W", "alpha_h"))
    T, B, H = hs.shape
    live = _live(keep, hs)
    dead = None if keep is None else 1 - live
    tanh_hc = torch.addcmul(saved["beta_c"], c_hat, saved["alpha_c"]).tanh_()
    K, K_hc, f = _lstm_local(gates, tanh_hc, _previous(saved["c0"], cs), live)  # K_hc: ∂h_t/∂LN(c_t)
    d_hs = d_out * live
    delta = torch.empty_like(gates)  # ∂L/∂a_t, the gates' pre-activations
    d_m = torch.empty_like(gates)  # ∂L/∂(W h_{t-1}), before normalisation
    dhs = torch.empty_like(hs)  # ∂L/∂h_t, kept for the gains α_c, β_c
    dh, dc = d_final
    for t in reversed(range(T)):
        dh = torch.add(dh, d_hs[t], out=dhs[t])  # ∂L/∂h_t = e_t + W^T ∂L/∂(W h_t)
        dc = dc + _normalise_backward(dh * K_hc[t] * saved["alpha_c"], c_hat[t], rstd_c[t])  # + f_{t+1} ∂c_{t+1}
        torch.mul(K[t, :, : 3 * H].view(B, 3, H), dc.unsqueeze(1), out=delta[t, :, : 3 * H].view(B, 3, H))
        torch.mul(K[t, :, 3 * H :], dh, out=delta[t, :, 3 * H :])  # δi, δf, δg from ∂c; δo from ∂h
        d_m[t] = _normalise_backward(delta[t] * alpha_h, m_hat[t], rstd_m[t])
        dc = dc * f[t]  # ∂L/∂c_{t-1}, through the constant error carousel
        dh = _back_to(dh, None if dead is None else dead[t], d_m[t], W)
    d_hc = dhs * K_hc  # ∂L/∂LN(c_t)
    dW = _through_time(d_m, _previous(saved["h0"], hs))  # Σ_t ∂(W h_{t-1}) h_{t-1}^T
    d_params = (dW, _sum_bt(delta), _sum_bt(delta * m_hat), _sum_bt(d_hc * c_hat), _sum_bt(d_hc))
    return delta, (dh, dc), d_params


# -- GRU: r, z = σ(...), n = tanh(...), h_t = (1 − z) ⊙ n + z ⊙ h_{t-1} (torch.nn's z) -----------------------------
def _gru_forward(ux, state, params, keep, reset: str):
    (h,), (W, b) = state, params
    h0, H = h, h.shape[1]
    W_rz, W_n = W[: 2 * H], W[2 * H :]
    before = reset == "before"
    a_x = ux + b if before and b is not None else ux  # reset-before: b_hh adds like b_ih
    rzs, ns, hns, hs = [], [], [], []
    for t in range(ux.shape[0]):
        if before:
            r, z = torch.addmm(a_x[t, :, : 2 * H], h, W_rz.t()).sigmoid_().chunk(2, dim=1)
            hn = r * h  # W_n acts on r ⊙ h_{t-1}
            n = torch.addmm(a_x[t, :, 2 * H :], hn, W_n.t()).tanh_()  # n = tanh(U_n x + W_n (r ⊙ h) + b_n)
        else:
            wh = h @ W.t() if b is None else torch.addmm(b, h, W.t())  # W h_{t-1} + b_hh
            r, z = (a_x[t, :, : 2 * H] + wh[:, : 2 * H]).sigmoid_().chunk(2, dim=1)
            hn = wh[:, 2 * H :]  # W_n h_{t-1} + b_hn, gated by r
            n = torch.addcmul(a_x[t, :, 2 * H :], r, hn).tanh_()  # n = tanh(U_n x + b_in + r ⊙ (W_n h + b_hn))
        h = _carry(None if keep is None else keep[t], torch.lerp(n, h, z), h)  # (1 − z) ⊙ n + z ⊙ h_{t-1}
        rzs.append(torch.cat([r, z], dim=1))
        ns.append(n)
        hns.append(hn)
        hs.append(h)
    out = _emit(hs, keep)
    saved = {"rz": torch.stack(rzs), "n": torch.stack(ns), "hn": torch.stack(hns),
             "hs": out if keep is None else torch.stack(hs), "h0": h0, "W": W, "keep": keep}
    return out, (h,), saved


def _gru_local(rz: Tensor, n: Tensor, h_prev: Tensor, live):
    """The step-local derivatives for all steps (zero where not alive): δn = ∂h ⊙ K_n, δz = ∂h ⊙ K_z, and z with
    1 where the state was carried (∂L/∂h_{t-1} gets ∂L/∂h_t ⊙ z)."""
    r, z = rz.chunk(2, dim=2)
    K_n = (1 - z) * (1 - n * n) * live  # ∂h_t/∂(pre-activation of n)
    K_z = (h_prev - n) * z * (1 - z) * live  # ∂h_t/∂(pre-activation of z)
    z_carry = z if isinstance(live, float) else torch.where(live > 0, z, 1.0)
    return r, K_n, K_z, z_carry


def _gru_before_backward(saved, d_out, d_final):
    rz, n, r_h, hs, h0, W, keep = (saved[k] for k in ("rz", "n", "hn", "hs", "h0", "W", "keep"))
    T, B, H = hs.shape
    W_rz, W_n = W[: 2 * H], W[2 * H :]
    live = _live(keep, hs)
    h_prev = _previous(h0, hs)
    r, K_n, K_z, z = _gru_local(rz, n, h_prev, live)
    K_zn = torch.cat([K_z, K_n], dim=2)
    K_r = h_prev * r * (1 - r)  # ∂(r ⊙ h_{t-1})/∂(pre-activation of r), times h_{t-1}
    d_hs = d_out * live
    delta = torch.empty(T, B, 3 * H, dtype=hs.dtype, device=hs.device)  # [δr, δz, δn]
    dh = d_final[0]
    for t in reversed(range(T)):
        dh = dh + d_hs[t]  # ∂L/∂h_t
        torch.mul(K_zn[t].view(B, 2, H), dh.unsqueeze(1), out=delta[t, :, H:].view(B, 2, H))  # δz, δn
        d_rh = delta[t, :, 2 * H :] @ W_n  # ∂L/∂(r ⊙ h_{t-1}) = W_n^T δn
        torch.mul(d_rh, K_r[t], out=delta[t, :, :H])  # δr
        dh = torch.addcmul(dh * z[t], r[t], d_rh)  # through z ⊙ h_{t-1} and through r ⊙ h_{t-1} ...
        dh = torch.addmm(dh, delta[t, :, : 2 * H], W_rz)  # ... and through r and z: W_{r,z}^T δ_{r,z}
    dW = torch.cat([_through_time(delta[:, :, : 2 * H], h_prev), _through_time(delta[:, :, 2 * H :], r_h)])
    return delta, (dh,), (dW, _sum_bt(delta))


def _gru_after_backward(saved, d_out, d_final):
    rz, n, hn, hs, h0, W, keep = (saved[k] for k in ("rz", "n", "hn", "hs", "h0", "W", "keep"))
    T, B, H = hs.shape
    live = _live(keep, hs)
    h_prev = _previous(h0, hs)
    r, K_n, K_z, z = _gru_local(rz, n, h_prev, live)  # carried rows: K = 0, z = 1
    K = torch.cat([K_n * hn * r * (1 - r), K_z, K_n * r], dim=2)  # ∂L/∂(W h + b_hh) = ∂h ⊙ K
    d_hs = d_out * live
    d_wh = torch.empty(T, B, 3 * H, dtype=hs.dtype, device=hs.device)  # [δr, δz, r ⊙ δn]
    dhs = torch.empty_like(hs)  # ∂L/∂h_t
    dh = d_final[0]
    for t in reversed(range(T)):
        dh = torch.add(dh, d_hs[t], out=dhs[t])
        torch.mul(K[t].view(B, 3, H), dh.unsqueeze(1), out=d_wh[t].view(B, 3, H))
        dh = torch.addmm(dh * z[t], d_wh[t], W)  # z ⊙ ∂L/∂h_t + W^T ∂L/∂(W h_{t-1} + b_hh)
    delta = torch.cat([d_wh[:, :, : 2 * H], dhs * K_n], dim=2)  # [δr, δz, δn] = ∂L/∂(U x_t + b_ih)
    return delta, (dh,), (_through_time(d_wh, h_prev), _sum_bt(d_wh))


# -- which cells have a fast scan ----------------------------------------------------------------------------------
def fast_scan_for(cell):
    """The hand-written BPTT scan for ``cell``, or None if its exact type has none (python_scan then)."""
    kind = type(cell)
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
