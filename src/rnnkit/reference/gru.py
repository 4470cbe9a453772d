"""GRU, both forms: NumPy forward pass and hand-written backpropagation through time.

Gate order (r, z, n) as torch.nn.GRUCell; U = weight_ih (3H, I) = [U_r; U_z; U_n], W = weight_hh (3H, H),
b_ih = bias_ih, b_hh = bias_hh (3H,)::

    r_t = σ(U_r x_t + b_ir + W_r h_{t-1} + b_hr)                     reset gate
    z_t = σ(U_z x_t + b_iz + W_z h_{t-1} + b_hz)                     update gate
    reset="after"  (torch.nn.GRU, cuDNN):  n_t = tanh(U_n x_t + b_in + r_t ⊙ (W_n h_{t-1} + b_hn))
    reset="before" (Cho et al. 2014):      n_t = tanh(U_n x_t + b_in + W_n (r_t ⊙ h_{t-1}) + b_hn)
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

The lectures write h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t with h̃_t = n_t: the same model with z ↦ 1 − z
(i.e. W_z, U_z, b_z ↦ their negatives). We follow torch so that weights are interchangeable with torch.nn.

Backward, from t = T back to t = 1 (e_t = ∂L/∂h_t from outside the recurrence)::

    ∂L/∂h_t = e_t + (everything h_t feeds at step t+1)
    δn = ∂L/∂h_t ⊙ (1 − z_t) ⊙ (1 − n_t²)                 δ of the pre-activation of n_t
    δz = ∂L/∂h_t ⊙ (h_{t-1} − n_t) ⊙ z_t (1 − z_t)
    after:  δr = δn ⊙ (W_n h_{t-1} + b_hn) ⊙ r(1−r);   ∂L/∂(W_n h_{t-1} + b_hn) = δn ⊙ r_t
    before: ∂L/∂(r ⊙ h_{t-1}) = W_n^T δn;   δr = (W_n^T δn) ⊙ h_{t-1} ⊙ r(1−r)
    ∂L/∂h_{t-1} = ∂L/∂h_t ⊙ z_t + W_r^T δr + W_z^T δz + (after: W_n^T (δn ⊙ r) | before: r ⊙ W_n^T δn)
    ∂L/∂U = Σ_t [δr; δz; δn] x_t^T,   ∂L/∂b_ih = Σ_t [δr; δz; δn],   ∂L/∂x_t = U^T [δr; δz; δn]
    ∂L/∂W_{r,z} = Σ_t δ_{r,z} h_{t-1}^T;  ∂L/∂W_n = Σ_t (after: (δn ⊙ r) h_{t-1}^T | before: δn (r ⊙ h_{t-1})^T)
    ∂L/∂b_hn = Σ_t (after: δn ⊙ r | before: δn);  ∂L/∂b_h{r,z} = Σ_t δ_{r,z}
"""

from __future__ import annotations

import numpy as np

from ._common import as_float64, biases, check_shapes, sigmoid, upstream, zero_grads

RESETS = ("after", "before")


def gru_forward(params: dict, x: np.ndarray, h0: np.ndarray, reset: str = "after"):
    """Run the GRU for t = 1..T.

    Args:
        params: ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), optional ``bias_ih``, ``bias_hh`` (3H,).
        x: inputs (T, B, I).  h0: initial state (B, H).
        reset: "after" (torch/cuDNN: r multiplies W_n h + b_hn) or "before" (Cho et al.: W_n (r ⊙ h)).

    Returns:
        hs (T, B, H) with hs[t-1] = h_t, and the cache that :func:`gru_backward` needs.
    """
    if reset not in RESETS:
        raise ValueError(f"gru: unknown reset {reset!r}; expected one of {RESETS}")
    params = as_float64(params)
    x, h0 = np.asarray(x, dtype=np.float64), np.asarray(h0, dtype=np.float64)
    T, B, H = check_shapes(params, x, h0, gates=3, cell="gru")
    U, W = params["weight_ih"], params["weight_hh"]
    W_rz, W_n = W[: 2 * H], W[2 * H :]
    b_ih, b_hh = biases(params, 3 * H)

    r, z, n, hn = (np.empty((T, B, H)) for _ in range(4))
    hs = np.empty((T, B, H))
    h = h0
    for t in range(T):
        ux_r, ux_z, ux_n = np.split(x[t] @ U.T + b_ih, 3, axis=1)  # U x_t + b_ih, per gate
        wh_r, wh_z = np.split(h @ W_rz.T + b_hh[: 2 * H], 2, axis=1)
        r[t] = sigmoid(ux_r + wh_r)
        z[t] = sigmoid(ux_z + wh_z)
        if reset == "after":
            hn[t] = h @ W_n.T + b_hh[2 * H :]  # W_n h_{t-1} + b_hn, kept for the backward pass
            n[t] = np.tanh(ux_n + r[t] * hn[t])
        else:
            hn[t] = (r[t] * h) @ W_n.T + b_hh[2 * H :]  # W_n (r ⊙ h_{t-1}) + b_hn
            n[t] = np.tanh(ux_n + hn[t])
        h = hs[t] = (1.0 - z[t]) * n[t] + z[t] * h  # h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
    cache = {"x": x, "h0": h0, "r": r, "z": z, "n": n, "hn": hn, "hs": hs, "reset": reset}
    return hs, cache


def gru_backward(params: dict, cache: dict, dhs: np.ndarray | None = None, dh_T: np.ndarray | None = None):
    """Backpropagation through time for :func:`gru_forward` (either reset form; the cache says which).

    Args:
        params: the same parameters that were given to :func:`gru_forward`.
        cache: from :func:`gru_forward`.
        dhs: ∂L/∂h_t from outside the recurrence (T, B, H), or None for zeros.
        dh_T: an extra ∂L/∂h_T (B, H), e.g. from a loss on the last state only, or None.

    Returns:
        (grads, dx, dh0): grads has the same keys as params; dx (T, B, I); dh0 (B, H).
    """
    params = as_float64(params)
    x, h0, hs, after = cache["x"], cache["h0"], cache["hs"], cache["reset"] == "after"
    r, z, n, hn = cache["r"], cache["z"], cache["n"], cache["hn"]
    T, B, H = hs.shape
    U, W = params["weight_ih"], params["weight_hh"]
    W_rz, W_n = W[: 2 * H], W[2 * H :]
    dhs, dh_next = upstream(dhs, dh_T, T, B, H)

    grads = zero_grads(params)
    dx = np.empty_like(x)
    for t in reversed(range(T)):
        h_prev = hs[t - 1] if t > 0 else h0
        dh = dhs[t] + dh_next  # ∂L/∂h_t
        d_n = dh * (1.0 - z[t]) * (1.0 - n[t] ** 2)  # δn
        d_z = dh * (h_prev - n[t]) * z[t] * (1.0 - z[t])  # δz
        if after:
            d_hn = d_n * r[t]  # ∂L/∂(W_n h_{t-1} + b_hn)
            d_r = d_n * hn[t] * r[t] * (1.0 - r[t])  # δr
            W_n_input = h_prev  # what W_n multiplies
        else:
            d_hn = d_n  # ∂L/∂(W_n (r ⊙ h_{t-1}) + b_hn)
            d_rh = d_n @ W_n  # ∂L/∂(r ⊙ h_{t-1}) = W_n^T δn
            d_r = d_rh * h_prev * r[t] * (1.0 - r[t])  # δr
            W_n_input = r[t] * h_prev
        d_ih = np.concatenate([d_r, d_z, d_n], axis=1)  # ∂L/∂(U x_t + b_ih), (B, 3H)
        d_rz = d_ih[:, : 2 * H]  # ∂L/∂(W_{r,z} h_{t-1} + b_h{r,z})
        grads["weight_ih"] += d_ih.T @ x[t]
        grads["weight_hh"][: 2 * H] += d_rz.T @ h_prev
        grads["weight_hh"][2 * H :] += d_hn.T @ W_n_input
        if "bias_ih" in grads:
            grads["bias_ih"] += d_ih.sum(axis=0)
        if "bias_hh" in grads:
            grads["bias_hh"] += np.concatenate([d_rz, d_hn], axis=1).sum(axis=0)
        dx[t] = d_ih @ U  # ∂L/∂x_t = U^T [δr; δz; δn]
        dh_next = dh * z[t] + d_rz @ W_rz  # direct path through z ⊙ h_{t-1}, and through r, z
        dh_next += d_hn @ W_n if after else r[t] * d_rh  # and through n
    return grads, dx, dh_next
