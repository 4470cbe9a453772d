"""Elman RNN: NumPy forward pass and hand-written backpropagation through time.

Lecture notation (torch.nn.RNNCell names in brackets)::

    a_t = U x_t + W h_{t-1} + b          U = weight_ih (H, I), W = weight_hh (H, H), b = bias_ih + bias_hh
    h_t = φ(a_t)                         φ ∈ {tanh, relu, hardtanh = clip to [-1, 1], sigmoid}

Backward (the error signal δ_t = ∂L/∂a_t flows from t = T back to t = 1)::

    ∂L/∂h_t = e_t + W^T δ_{t+1}          e_t = ∂L/∂h_t from outside the recurrence (the loss at step t)
    δ_t     = ∂L/∂h_t ⊙ φ'(a_t)
    ∂L/∂U   = Σ_t δ_t x_t^T              the shared weights collect one term per time step
    ∂L/∂W   = Σ_t δ_t h_{t-1}^T
    ∂L/∂b   = Σ_t δ_t                    (the same for bias_ih and bias_hh: both are added to a_t)
    ∂L/∂x_t = U^T δ_t,   ∂L/∂h_0 = W^T δ_1
"""

from __future__ import annotations

import numpy as np

from ._common import as_float64, biases, check_shapes, sigmoid, upstream, zero_grads

# φ(a) and φ'(a) written with both a and h = φ(a) at hand, whichever is simpler.
# At the kinks (relu at 0, hardtanh at ±1) the derivative is taken as 0, as torch does.
NONLINEARITIES = {
    "tanh": (np.tanh, lambda a, h: 1.0 - h * h),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a, h: (a > 0).astype(np.float64)),
    "hardtanh": (lambda a: np.clip(a, -1.0, 1.0), lambda a, h: ((a > -1) & (a < 1)).astype(np.float64)),
    "sigmoid": (sigmoid, lambda a, h: h * (1.0 - h)),
}


def _phi(nonlinearity: str):
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"elman: unknown nonlinearity {nonlinearity!r}; expected one of {sorted(NONLINEARITIES)}")
    return NONLINEARITIES[nonlinearity]


def elman_forward(params: dict, x: np.ndarray, h0: np.ndarray, nonlinearity: str = "tanh"):
    """Run h_t = φ(U x_t + W h_{t-1} + b) for t = 1..T.

    Args:
        params: ``weight_ih`` (H, I), ``weight_hh`` (H, H), optional ``bias_ih``, ``bias_hh`` (H,).
        x: inputs (T, B, I).  h0: initial state (B, H).
        nonlinearity: "tanh", "relu", "hardtanh" or "sigmoid".

    Returns:
        hs (T, B, H) with hs[t-1] = h_t, and the cache that :func:`elman_backward` needs.
    """
    phi, _ = _phi(nonlinearity)
    params = as_float64(params)
    x, h0 = np.asarray(x, dtype=np.float64), np.asarray(h0, dtype=np.float64)
    T, B, H = check_shapes(params, x, h0, gates=1, cell="elman")
    U, W = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = biases(params, H)

    a = np.empty((T, B, H))
    hs = np.empty((T, B, H))
    h = h0
    for t in range(T):
        a[t] = x[t] @ U.T + b_ih + h @ W.T + b_hh  # a_t = U x_t + W h_{t-1} + b
        h = hs[t] = phi(a[t])  # h_t = φ(a_t)
    cache = {"x": x, "h0": h0, "a": a, "hs": hs, "nonlinearity": nonlinearity}
    return hs, cache


def elman_backward(params: dict, cache: dict, dhs: np.ndarray | None = None, dh_T: np.ndarray | None = None):
    """Backpropagation through time for :func:`elman_forward`.

    Args:
        params: the same parameters that were given to :func:`elman_forward`.
        cache: from :func:`elman_forward`.
        dhs: ∂L/∂h_t from outside the recurrence, (T, B, H), or None for zeros.
        dh_T: an extra ∂L/∂h_T (B, H), e.g. from a loss on the last state only, or None.

    Returns:
        (grads, dx, dh0): grads has the same keys as params (∂L/∂U, ∂L/∂W, ∂L/∂b_ih, ∂L/∂b_hh);
        dx = ∂L/∂x (T, B, I); dh0 = ∂L/∂h_0 (B, H).
    """
    params = as_float64(params)
    x, h0, a, hs = cache["x"], cache["h0"], cache["a"], cache["hs"]
    _, dphi = _phi(cache["nonlinearity"])
    T, B, H = hs.shape
    U, W = params["weight_ih"], params["weight_hh"]
    dhs, dh_next = upstream(dhs, dh_T, T, B, H)

    grads = zero_grads(params)
    dx = np.empty_like(x)
    for t in reversed(range(T)):
        h_prev = hs[t - 1] if t > 0 else h0
        dh = dhs[t] + dh_next  # ∂L/∂h_t = e_t + W^T δ_{t+1}
        delta = dh * dphi(a[t], hs[t])  # δ_t = ∂L/∂h_t ⊙ φ'(a_t)
        grads["weight_ih"] += delta.T @ x[t]  # Σ_t δ_t x_t^T
        grads["weight_hh"] += delta.T @ h_prev  # Σ_t δ_t h_{t-1}^T
        for name in ("bias_ih", "bias_hh"):
            if name in grads:
                grads[name] += delta.sum(axis=0)  # Σ_t δ_t (summed over the batch too)
        dx[t] = delta @ U  # ∂L/∂x_t = U^T δ_t
        dh_next = delta @ W  # W^T δ_t, sent back to h_{t-1}
    return grads, dx, dh_next
