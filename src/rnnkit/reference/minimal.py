"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): NumPy forward pass and hand-written BPTT.

No recurrent weights: U = weight_ih, b = bias_ih; gate blocks (z, h̃) for minGRU (2H rows), (f, i, h̃) for
minLSTM (3H rows)::

    g(x) = x + 0.5 (x ≥ 0),  σ(x) (x < 0)
    minGRU   z_t = σ(a_z),  h̃_t = g(a_h),  (a_z; a_h) = U x_t + b
             h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t
    minLSTM  f_t = σ(a_f),  i_t = σ(a_i),  h̃_t = g(a_h),  f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
             h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t

A ``mask`` (T, B) of 0/1 marks real steps: at a padded step the state is carried (h_t = h_{t-1}) and nothing is
emitted or differentiated.

Backward, from t = T back to 1 (e_t = ∂L/∂h_t from outside the recurrence, a_{t} the coefficient of h_{t-1})::

    ∂L/∂h_t = e_t + a_{t+1} ⊙ ∂L/∂h_{t+1}          a_t = 1 − z_t (minGRU), f'_t (minLSTM)
    minGRU   δa_z = ∂L/∂h_t ⊙ (h̃_t − h_{t-1}) ⊙ z_t (1 − z_t),   δa_h = ∂L/∂h_t ⊙ z_t ⊙ g'(a_h)
    minLSTM  ∂L/∂f'_t = ∂L/∂h_t ⊙ h_{t-1},   ∂L/∂i'_t = ∂L/∂h_t ⊙ h̃_t
             ∂f'/∂f = i/(f+i)²,  ∂f'/∂i = −f/(f+i)²,  ∂i'/∂i = f/(f+i)²,  ∂i'/∂f = −i/(f+i)²
             δa_f = (∂L/∂f' ⊙ i − ∂L/∂i' ⊙ i)/(f+i)² ⊙ f(1 − f),   δa_i = (∂L/∂i' ⊙ f − ∂L/∂f' ⊙ f)/(f+i)² ⊙ i(1 − i)
             δa_h = ∂L/∂h_t ⊙ i'_t ⊙ g'(a_h)
    ∂L/∂U = Σ_t δ_t x_t^T,  ∂L/∂b = Σ_t δ_t,  ∂L/∂x_t = U^T δ_t,  ∂L/∂h_0 = a_1 ⊙ ∂L/∂h_1
"""

from __future__ import annotations

import numpy as np

from ._common import sigmoid

GATES = {"mingru": 2, "minlstm": 3}


def g(x: np.ndarray) -> np.ndarray:
    """The paper's activation: x + 0.5 for x ≥ 0, σ(x) for x < 0."""
    return np.where(x >= 0, x + 0.5, sigmoid(x))


def g_prime(x: np.ndarray) -> np.ndarray:
    """g'(x): 1 for x ≥ 0, σ(x)(1 − σ(x)) for x < 0."""
    s = sigmoid(x)
    return np.where(x >= 0, 1.0, s * (1.0 - s))


def _check(cell: str, params: dict, x: np.ndarray, h0: np.ndarray):
    if cell not in GATES:
        raise ValueError(f"minimal: unknown cell {cell!r}; expected one of {sorted(GATES)}")
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"{cell}: expected x of shape (T >= 1, B, I), found {x.shape}")
    T, B, I = x.shape
    if h0.ndim != 2 or h0.shape[0] != B:
        raise ValueError(f"{cell}: expected h0 of shape (B={B}, H), found {h0.shape}")
    H = h0.shape[1]
    U = np.asarray(params["weight_ih"], dtype=np.float64)
    if U.shape != (GATES[cell] * H, I):
        raise ValueError(f"{cell}: expected weight_ih of shape {(GATES[cell] * H, I)}, found {U.shape}")
    b = params.get("bias_ih")
    b = np.zeros(GATES[cell] * H) if b is None else np.asarray(b, dtype=np.float64)
    return T, B, H, U, b


def minimal_forward(cell: str, params: dict, x: np.ndarray, h0: np.ndarray, mask: np.ndarray | None = None):
    """Run minGRU / minLSTM (``cell`` = "mingru" | "minlstm") for t = 1..T.

    Args:
        params: ``weight_ih`` (G·H, I), optional ``bias_ih`` (G·H,).  x: (T, B, I).  h0: (B, H).
        mask: (T, B) 1 for real steps, 0 for padding (the state is carried), or None.

    Returns:
        hs (T, B, H), hs[t-1] = h_t (at a padded step: the carried state), and the cache for the backward pass.
    """
    x, h0 = np.asarray(x, dtype=np.float64), np.asarray(h0, dtype=np.float64)
    T, B, H, U, b = _check(cell, params, x, h0)
    m = np.ones((T, B)) if mask is None else np.asarray(mask, dtype=np.float64)
    pre = x @ U.T + b  # (T, B, G·H): every step's U x_t + b
    a_h = pre[..., -H:]
    h_tilde = g(a_h)
    if cell == "mingru":
        z = sigmoid(pre[..., :H])
        coef, inp = 1.0 - z, z  # h_t = coef ⊙ h_{t-1} + inp ⊙ h̃_t
    else:
        f, i = sigmoid(pre[..., :H]), sigmoid(pre[..., H : 2 * H])
        coef, inp = f / (f + i), i / (f + i)
    hs = np.empty((T, B, H))
    h = h0
    for t in range(T):
        new = coef[t] * h + inp[t] * h_tilde[t]
        keep = m[t][:, None]
        h = hs[t] = keep * new + (1.0 - keep) * h
    cache = {"cell": cell, "x": x, "h0": h0, "pre": pre, "h_tilde": h_tilde, "coef": coef, "inp": inp,
             "hs": hs, "mask": m}
    return hs, cache


def minimal_backward(params: dict, cache: dict, dhs: np.ndarray | None = None, dh_T: np.ndarray | None = None):
    """BPTT for :func:`minimal_forward`: returns (grads {weight_ih, bias_ih (if given)}, dx (T, B, I), dh0 (B, H)).

    ``dhs`` (T, B, H) is ∂L/∂h_t from outside (ignored at padded steps), ``dh_T`` (B, H) an extra ∂L/∂h_T."""
    cell, x, h0, pre, hs, m = (cache[k] for k in ("cell", "x", "h0", "pre", "hs", "mask"))
    h_tilde, coef, inp = cache["h_tilde"], cache["coef"], cache["inp"]
    T, B, H = hs.shape
    U = np.asarray(params["weight_ih"], dtype=np.float64)
    dhs = np.zeros((T, B, H)) if dhs is None else np.asarray(dhs, dtype=np.float64)
    dh = np.zeros((B, H)) if dh_T is None else np.asarray(dh_T, dtype=np.float64)
    delta = np.zeros_like(pre)  # ∂L/∂(U x_t + b)
    for t in reversed(range(T)):
        keep = m[t][:, None]
        h_prev = hs[t - 1] if t else h0
        dh = dh + keep * dhs[t]  # ∂L/∂h_t
        d_coef, d_inp = keep * dh * h_prev, keep * dh * h_tilde[t]  # through h_t = coef h_{t-1} + inp h̃_t
        delta[t, :, -H:] = keep * dh * inp[t] * g_prime(pre[t, :, -H:])
        if cell == "mingru":
            z = inp[t]
            delta[t, :, :H] = (d_inp - d_coef) * z * (1.0 - z)
        else:
            f, i = sigmoid(pre[t, :, :H]), sigmoid(pre[t, :, H : 2 * H])
            s2 = (f + i) ** 2
            delta[t, :, :H] = (d_coef * i - d_inp * i) / s2 * f * (1.0 - f)
            delta[t, :, H : 2 * H] = (d_inp * f - d_coef * f) / s2 * i * (1.0 - i)
        dh = keep * coef[t] * dh + (1.0 - keep) * dh  # ∂L/∂h_{t-1}: through the coefficient, or carried
    grads = {"weight_ih": np.einsum("tbg,tbi->gi", delta, x)}
    if params.get("bias_ih") is not None:
        grads["bias_ih"] = delta.sum(axis=(0, 1))
    return grads, delta @ U, dh
