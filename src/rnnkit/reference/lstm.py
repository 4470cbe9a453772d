"""LSTM: NumPy forward pass and hand-written backpropagation through time.

Lecture notation; gate order (i, f, g, o) as torch.nn.LSTMCell, U = weight_ih (4H, I), W = weight_hh (4H, H),
b = bias_ih + bias_hh (4H,), each stacked as [U_i; U_f; U_g; U_o]::

    i_t = σ(U_i x_t + W_i h_{t-1} + b_i)          input gate
    f_t = σ(U_f x_t + W_f h_{t-1} + b_f)          forget gate
    g_t = tanh(U_g x_t + W_g h_{t-1} + b_g)       candidate cell c̃_t
    o_t = σ(U_o x_t + W_o h_{t-1} + b_o)          output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

Backward, from t = T back to t = 1 (e_t = ∂L/∂h_t from outside the recurrence)::

    ∂L/∂h_t = e_t + W^T δ_{t+1}                   δ_t = ∂L/∂(pre-activations of all four gates)
    ∂L/∂c_t = ∂L/∂h_t ⊙ o_t ⊙ (1 − tanh² c_t) + f_{t+1} ⊙ ∂L/∂c_{t+1}      (the constant error carousel)
    δo = ∂L/∂h_t ⊙ tanh c_t ⊙ o(1−o)      δi = ∂L/∂c_t ⊙ g_t ⊙ i(1−i)
    δf = ∂L/∂c_t ⊙ c_{t-1} ⊙ f(1−f)       δg = ∂L/∂c_t ⊙ i_t ⊙ (1−g²)
    ∂L/∂U = Σ_t δ_t x_t^T,  ∂L/∂W = Σ_t δ_t h_{t-1}^T,  ∂L/∂b = Σ_t δ_t,  ∂L/∂x_t = U^T δ_t

With projections (Sak et al. 2014; torch.nn.LSTM's proj_size = P), W_hr = weight_hr (P, H) maps the cell's
output to a smaller state that is both emitted and fed back, so W = weight_hh is (4H, P) and h is (B, P)::

    m_t = o_t ⊙ tanh(c_t)        h_t = W_hr m_t
    ∂L/∂m_t = W_hr^T ∂L/∂h_t     ∂L/∂W_hr = Σ_t ∂L/∂h_t m_t^T

and ∂L/∂m_t takes the place of ∂L/∂h_t in ∂L/∂c_t and δo above.
"""

from __future__ import annotations

import numpy as np

from ._common import as_float64, biases, check_shapes, sigmoid, upstream, zero_grads


def lstm_forward(params: dict, x: np.ndarray, h0: np.ndarray, c0: np.ndarray):
    """Run the LSTM for t = 1..T.

    Args:
        params: ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), optional ``bias_ih``, ``bias_hh`` (4H,);
            with projections also ``weight_hr`` (P, H), and then ``weight_hh`` is (4H, P).
        x: inputs (T, B, I).  h0: initial hidden state (B, H), or (B, P) with projections.  c0: initial cell
            state (B, H).

    Returns:
        hs (T, B, H) — (T, B, P) with projections — with hs[t-1] = h_t, and the cache that
        :func:`lstm_backward` needs (it also holds the cell states, ``cache["cs"]`` (T, B, H)).
    """
    params = as_float64(params)
    x, h0, c0 = (np.asarray(v, dtype=np.float64) for v in (x, h0, c0))
    projected = "weight_hr" in params
    if c0.ndim != 2 or c0.shape[0] != h0.shape[0] or (not projected and c0.shape != h0.shape):
        like = f"(B={h0.shape[0]}, H)" if projected else f"{h0.shape} like h0"
        raise ValueError(f"lstm: expected c0 of shape {like}, found {c0.shape}")
    T, B, H = check_shapes(params, x, h0, gates=4, cell="lstm", hidden=c0.shape[1] if projected else None)
    U, W, W_hr = params["weight_ih"], params["weight_hh"], params.get("weight_hr")
    b_ih, b_hh = biases(params, 4 * H)

    i, f, g, o = (np.empty((T, B, H)) for _ in range(4))
    cs, ms, hs = np.empty((T, B, H)), np.empty((T, B, H)), np.empty((T, B, h0.shape[1]))
    h, c = h0, c0
    for t in range(T):
        a = x[t] @ U.T + b_ih + h @ W.T + b_hh  # (B, 4H): pre-activations of i, f, g, o
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
        i[t], f[t], g[t], o[t] = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
        c = cs[t] = f[t] * c + i[t] * g[t]  # c_t = f ⊙ c_{t-1} + i ⊙ c̃
        ms[t] = o[t] * np.tanh(c)  # m_t = o ⊙ tanh(c_t)
        h = hs[t] = ms[t] if W_hr is None else ms[t] @ W_hr.T  # h_t = m_t, or W_hr m_t with projections
    cache = {"x": x, "h0": h0, "c0": c0, "i": i, "f": f, "g": g, "o": o, "cs": cs, "ms": ms, "hs": hs}
    return hs, cache


def lstm_backward(params: dict, cache: dict, dhs: np.ndarray | None = None,
                  dh_T: np.ndarray | None = None, dc_T: np.ndarray | None = None):
    """Backpropagation through time for :func:`lstm_forward`.

    Args:
        params: the same parameters that were given to :func:`lstm_forward`.
        cache: from :func:`lstm_forward`.
        dhs: ∂L/∂h_t from outside the recurrence (T, B, H) — (T, B, P) with projections — or None for zeros.
        dh_T, dc_T: extra ∂L/∂h_T (B, H or P) and ∂L/∂c_T (B, H), e.g. from a loss on the final state, or None.

    Returns:
        (grads, dx, dh0, dc0): grads has the same keys as params; dx (T, B, I); dh0 like h0, dc0 (B, H).
    """
    params = as_float64(params)
    x, h0, c0, hs, cs, ms = cache["x"], cache["h0"], cache["c0"], cache["hs"], cache["cs"], cache["ms"]
    i, f, g, o = cache["i"], cache["f"], cache["g"], cache["o"]
    (T, B, H), P = cs.shape, hs.shape[2]
    U, W, W_hr = params["weight_ih"], params["weight_hh"], params.get("weight_hr")
    dhs, dh_next = upstream(dhs, dh_T, T, B, P)
    dc_next = np.zeros((B, H)) if dc_T is None else np.asarray(dc_T, dtype=np.float64)

    grads = zero_grads(params)
    dx = np.empty_like(x)
    for t in reversed(range(T)):
        h_prev, c_prev = (hs[t - 1], cs[t - 1]) if t > 0 else (h0, c0)
        tanh_c = np.tanh(cs[t])
        dh = dhs[t] + dh_next  # ∂L/∂h_t = e_t + W^T δ_{t+1}
        if W_hr is None:
            dm = dh  # h_t = m_t
        else:
            grads["weight_hr"] += dh.T @ ms[t]  # Σ_t ∂L/∂h_t m_t^T
            dm = dh @ W_hr  # ∂L/∂m_t = W_hr^T ∂L/∂h_t
        dc = dc_next + dm * o[t] * (1.0 - tanh_c**2)  # ∂L/∂c_t: through h_t and through c_{t+1}
        d_i = dc * g[t] * i[t] * (1.0 - i[t])  # δi
        d_f = dc * c_prev * f[t] * (1.0 - f[t])  # δf
        d_g = dc * i[t] * (1.0 - g[t] ** 2)  # δg (the candidate c̃)
        d_o = dm * tanh_c * o[t] * (1.0 - o[t])  # δo
        delta = np.concatenate([d_i, d_f, d_g, d_o], axis=1)  # (B, 4H), gate order i, f, g, o
        grads["weight_ih"] += delta.T @ x[t]  # Σ_t δ_t x_t^T
        grads["weight_hh"] += delta.T @ h_prev  # Σ_t δ_t h_{t-1}^T
        for name in ("bias_ih", "bias_hh"):
            if name in grads:
                grads[name] += delta.sum(axis=0)  # Σ_t δ_t
        dx[t] = delta @ U  # ∂L/∂x_t = U^T δ_t
        dh_next = delta @ W  # W^T δ_t, sent back to h_{t-1}
        dc_next = dc * f[t]  # ∂L/∂c_{t-1} = f_t ⊙ ∂L/∂c_t
    return grads, dx, dh_next, dc_next
