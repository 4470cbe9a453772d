"""The linear recurrence h_t = a_t ⊙ h_{t-1} + b_t as one autograd node, sequential or parallel over time.

Shapes: a, b (T, *S) time-major (S any state shape, e.g. (B, H)), h_0 (*S) or None (zeros); returns h (T, *S)
with h[t] = h_t for t = 1..T (index t-1). The backward pass is written by hand: with e_t = ∂L/∂h_t from outside,

    g_T = e_T,   g_t = e_t + a_{t+1} ⊙ g_{t+1}          (the same linear recurrence, run backwards)
    ∂L/∂b_t = g_t,   ∂L/∂a_t = g_t ⊙ h_{t-1},   ∂L/∂h_0 = a_1 ⊙ g_1

Two ways to run a scan, chosen by device (``method=None``) or by name:

    "sequential"  T steps of one fused multiply-add each (``torch.addcmul`` into a buffer allocated once): O(T·S)
                  work, no temporaries. The CPU path: on a CPU the cost is memory traffic, and this reads a and b
                  once and writes h once (measured in bench/parallel_scan.py).
    "parallel"    Hillis & Steele's log-depth scan of the pairs (a, b) under (a, b) ∘ (a', b') = (a a', a b' + b'):
                  ⌈log₂ T⌉ rounds of whole-tensor operations, O(T log T · S) work. The GPU path, where T
                  sequential kernel launches would dominate.

Both only multiply and add: there is no log/exp round trip (the log-space form of Heinsen 2023 needs b_t > 0 and
``logcumsumexp``), so for |a_t| ≤ 1 neither overflows, at any T; products of many a_t < 1 underflow towards 0,
which is their value. Double backward is not supported (the backward pass refuses ``create_graph=True``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["METHODS", "linear_scan"]

METHODS = ("sequential", "parallel")


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, *, method: str | None = None) -> Tensor:
    """h_t = a_t ⊙ h_{t-1} + b_t for t = 1..T; a, b (T, *S), h0 (*S) or None for zeros -> h (T, *S).

    ``method``: "sequential" (CPU default), "parallel" (default on every other device) or None (by device).
    Differentiable in a, b and h0 (hand-written backward, see the module docstring).
    """
    method = _check(a, b, h0, method)
    return _LinearScan.apply(a, b, h0, method)


def _check(a: Tensor, b: Tensor, h0: Tensor | None, method: str | None) -> str:
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"linear_scan: a and b must be tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.dim() < 1 or a.shape != b.shape:
        raise ValueError(f"linear_scan: a and b must have the same shape (T, ...), got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    if a.shape[0] == 0:
        raise ValueError("linear_scan: a and b have no time steps (T = 0); expected shape (T >= 1, ...)")
    if h0 is not None and tuple(h0.shape) != tuple(a.shape[1:]):
        raise ValueError(f"linear_scan: h0 must have the shape of one step, {tuple(a.shape[1:])}, got "
                         f"{tuple(h0.shape)}")
    if a.dtype != b.dtype or (h0 is not None and h0.dtype != a.dtype):
        raise TypeError(f"linear_scan: a, b and h0 must share a dtype, got {a.dtype}, {b.dtype}"
                        + ("" if h0 is None else f", {h0.dtype}"))
    if method is None:
        return "sequential" if a.device.type == "cpu" else "parallel"
    if method not in METHODS:
        raise ValueError(f"linear_scan: method must be one of {', '.join(METHODS)} or None, got {method!r}")
    return method


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor | None, method: str):
        h = scan_into(torch.empty_like(b), a, b, h0, method)
        ctx.method, ctx.has_h0 = method, h0 is not None
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, e: Tensor):
        if torch.is_grad_enabled():
            raise RuntimeError("rnnkit.nn.linear_scan cannot differentiate twice (its hand-written backward is not "
                               "itself differentiable; create_graph=True was asked for)")
        a, h, h0 = ctx.saved_tensors
        g = reverse_gradient(a, e.contiguous(), None, ctx.method)
        da = db = dh0 = None
        if ctx.needs_input_grad[0]:
            da = torch.empty_like(g)
            torch.mul(g[1:], h[:-1], out=da[1:])  # ∂L/∂a_t = g_t ⊙ h_{t-1}
            if h0 is None:
                da[0].zero_()
            else:
                torch.mul(g[0], h0, out=da[0])
        if ctx.needs_input_grad[1]:
            db = g  # ∂L/∂b_t = g_t
        if ctx.has_h0 and ctx.needs_input_grad[2]:
            dh0 = a[0] * g[0]  # ∂L/∂h_0 = a_1 ⊙ g_1
        return da, db, dh0, None


def reverse_gradient(a: Tensor, e: Tensor, e_after: Tensor | None, method: str) -> Tensor:
    """g_t = e_t + a_{t+1} ⊙ g_{t+1}, g_T = e_T (+ ``e_after``, the carry a_{T+1} ⊙ g_{T+1} from beyond T).

    The backward recurrence of :func:`linear_scan`: a linear scan backwards in time whose coefficient at step t
    is a_{t+1}. Returns g (T, *S) in a new buffer."""
    g = torch.empty_like(e)
    last = e[-1] if e_after is None else e[-1] + e_after
    g[-1] = last
    if e.shape[0] > 1:
        scan_into(g[:-1], a[1:], e[:-1], g[-1], method, reverse=True)
    return g


def scan_into(out: Tensor, a: Tensor, b: Tensor, h0: Tensor | None, method: str, reverse: bool = False) -> Tensor:
    """h_t = a_t ⊙ h_{t-1} + b_t written into ``out`` (T, *S); ``reverse``: h_t = a_t ⊙ h_{t+1} + b_t from the
    end, with h0 standing for h_{T+1}. No autograd: the building block of the forward and backward passes."""
    if method == "sequential":
        return _sequential(out, a, b, h0, reverse)
    if reverse:
        out.copy_(_parallel(a.flip(0), b.flip(0), h0).flip(0))
    else:
        out.copy_(_parallel(a, b, h0))
    return out


def _sequential(out: Tensor, a: Tensor, b: Tensor, h: Tensor | None, reverse: bool) -> Tensor:
    """T fused multiply-adds, each written in place into its row of ``out`` (unbound once: no per-step views)."""
    steps = range(a.shape[0] - 1, -1, -1) if reverse else range(a.shape[0])
    a_t, b_t, out_t = a.unbind(0), b.unbind(0), out.unbind(0)
    for t in steps:
        if h is None:
            out_t[t].copy_(b_t[t])
        else:
            torch.addcmul(b_t[t], a_t[t], h, out=out_t[t])
        h = out_t[t]
    return out


def _parallel(a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
    """Hillis & Steele (1986): after the round with offset d, (A_t, B_t) composes steps t-2d+1..t; h_t = B_t.

    h_0 is folded into the first step (b_1 ← a_1 h_0 + b_1), so after ⌈log₂ T⌉ rounds B_t = h_t."""
    T = a.shape[0]
    B = b.clone()
    if h0 is not None:
        B[0].addcmul_(a[0], h0)
    A = a
    d = 1
    while d < T:
        B[d:] = torch.addcmul(B[d:], A[d:], B[:-d])  # b_t ← a_t ⊙ b_{t-d} + b_t (right side computed first)
        if 2 * d < T:
            A = torch.cat([A[:d], A[d:] * A[:-d]])  # a_t ← a_t ⊙ a_{t-d}
        d *= 2
    return B
