"""The lectures' learning-rate hints, read off a loss curve.

    flat     the loss does not move (relative change < 5% and little fluctuation): nothing is being learned;
             at a trivial baseline this is the vanishing-gradient picture (try a gated cell, identity
             initialisation, or a larger learning rate);
    jagged   the curve goes up and down (it rises in more than 35% of its steps and its total variation is more
             than 3× its net decrease): the learning rate is too high, lower it;
    linear   it decreases along a straight line (R² of a line fit > 0.97) and has not begun to flatten (the
             second half's slope is more than 60% of the first half's): the learning rate is too low, raise it;
    ok       fast decrease, then flattening: the rate looks right.

The curve is first averaged into at most ``bins`` consecutive bins, so minibatch noise alone does not read as
"jagged".
"""
from __future__ import annotations

import numpy as np

MESSAGES = {
    "flat": "The loss is flat: nothing is being learned. At a trivial baseline this is the vanishing-gradient "
            "picture; try a gated cell (LSTM/GRU), identity initialisation (IRNN) or a larger learning rate.",
    "jagged": "The loss curve is jagged (it goes up and down): the learning rate is probably too high; "
              "lower it (e.g. by 3x) or clip the gradients.",
    "linear": "The loss falls along a straight line and has not started to flatten: the learning rate is "
              "probably too low; raise it (e.g. by 3x).",
    "ok": "The loss falls quickly and then flattens: the learning rate looks reasonable.",
    "short": "Too few points on the loss curve for a learning-rate hint.",
}


def binned(values, bins: int = 50) -> np.ndarray:
    """Means of at most ``bins`` consecutive chunks of ``values`` (non-finite values dropped)."""
    y = np.asarray(values, dtype=float)
    y = y[np.isfinite(y)]
    if len(y) <= bins:
        return y
    return np.array([chunk.mean() for chunk in np.array_split(y, bins)])


def lr_hint(losses, bins: int = 50) -> str:
    """One of "flat", "jagged", "linear", "ok" or "short" for a loss curve (see the module docstring)."""
    y = binned(losses, bins)
    if len(y) < 8:
        return "short"
    d = np.diff(y)
    scale = max(abs(float(y[0])), 1e-12)
    net = float(y[0] - y[-1])
    if abs(net) / scale < 0.05 and float(np.std(d)) / scale < 0.05:
        return "flat"
    if float((d > 0).mean()) > 0.35 and float(np.abs(d).sum()) > 3 * max(net, 1e-12):
        return "jagged"
    t = np.arange(len(y), dtype=float)
    slope, intercept = np.polyfit(t, y, 1)
    r2 = 1.0 - float(np.var(y - (intercept + slope * t))) / max(float(np.var(y)), 1e-300)
    half = len(y) // 2
    s1 = np.polyfit(t[:half], y[:half], 1)[0]
    s2 = np.polyfit(t[half:], y[half:], 1)[0]
    if slope < 0 and r2 > 0.97 and s1 < 0 and s2 < 0 and s2 / s1 > 0.6:
        return "linear"
    return "ok"
