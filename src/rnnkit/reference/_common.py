"""Small NumPy helpers shared by the reference cells: sigmoid, bias handling, shape checks."""

from __future__ import annotations

import numpy as np

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")  # weight_hr: LSTM projection only


def sigmoid(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^{-a}), computed without overflow for large |a|."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def as_float64(params: dict) -> dict:
    """The parameters as float64 NumPy arrays; a missing bias (``bias=False``) is simply absent."""
    return {k: np.asarray(params[k], dtype=np.float64) for k in PARAM_NAMES if params.get(k) is not None}


def biases(params: dict, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(b_ih, b_hh), with zeros standing in for biases the cell does not have."""
    zero = np.zeros(rows)
    return params.get("bias_ih", zero), params.get("bias_hh", zero)


def check_shapes(params: dict, x: np.ndarray, h0: np.ndarray, gates: int, cell: str,
                 hidden: int | None = None) -> tuple[int, int, int]:
    """Check x (T, B, I), h0 (B, H) and the weights (G*H, I), (G*H, H); return (T, B, H).

    With ``hidden`` (an LSTM with projections) the gates have ``hidden`` = H units while h0 is (B, P):
    then weight_hh is (G*H, P) and weight_hr (P, H).
    """
    if x.ndim != 3:
        raise ValueError(f"{cell}: expected x of shape (T, B, I), found {x.shape}")
    T, B, I = x.shape
    if T == 0:
        raise ValueError(f"{cell}: x has no time steps (T = 0); expected x of shape (T >= 1, B, I)")
    if h0.ndim != 2 or h0.shape[0] != B:
        raise ValueError(f"{cell}: expected h0 of shape (B={B}, H), found {h0.shape}")
    P = h0.shape[1]
    H = P if hidden is None else hidden
    expected = {"weight_ih": (gates * H, I), "weight_hh": (gates * H, P),
                "bias_ih": (gates * H,), "bias_hh": (gates * H,), "weight_hr": (P, H)}
    for name, shape in expected.items():
        if name in params and params[name].shape != shape:
            raise ValueError(f"{cell}: expected {name} of shape {shape} (G={gates}, H={H}, I={I}), "
                             f"found {params[name].shape}")
    if "weight_ih" not in params or "weight_hh" not in params:
        raise ValueError(f"{cell}: params must contain weight_ih and weight_hh, found {sorted(params)}")
    return T, B, H


def zero_grads(params: dict) -> dict:
    """A zero gradient for every parameter present in ``params`` (same names, same shapes)."""
    return {k: np.zeros_like(v) for k, v in params.items()}


def upstream(dhs: np.ndarray | None, dh_T: np.ndarray | None, T: int, B: int, H: int):
    """The error signals arriving from outside the recurrence: ∂L/∂h_t (T, B, H) and ∂L/∂h_T (B, H)."""
    dhs = np.zeros((T, B, H)) if dhs is None else np.asarray(dhs, dtype=np.float64)
    dh_T = np.zeros((B, H)) if dh_T is None else np.asarray(dh_T, dtype=np.float64)
    return dhs, dh_T
