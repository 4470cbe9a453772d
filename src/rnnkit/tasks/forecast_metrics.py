"""Forecast accuracy with the M4 competition's definitions (Makridakis, Spiliotis & Assimakopoulos 2020), in NumPy.

For one series with in-sample values x_1 .. x_n, a forecast ŷ_1 .. ŷ_h of the next values y_1 .. y_h and the
seasonal period m (m = 1: none):

    sMAPE = (200 / h) Σ |y_t − ŷ_t| / (|y_t| + |ŷ_t|)
    MASE  = (1 / h) Σ |y_t − ŷ_t| / s_m,           s_m = 1 / (n − m) Σ_{t=m+1}^{n} |x_t − x_{t−m}|
    OWA   = ½ (sMAPE / sMAPE(Naive2) + MASE / MASE(Naive2))      (of the means over all series)
    MSIS  = (1 / h) Σ [(U_t − L_t) + (2/α)(L_t − y_t)·1{y_t < L_t} + (2/α)(y_t − U_t)·1{y_t > U_t}] / s_m
            for a (1 − α) interval [L, U] (M4: α = 0.05; an 80% interval from quantiles 0.1 / 0.9: α = 0.2)

Naive2 (M4's benchmark): when the 90% autocorrelation test finds seasonality (n >= 3m and
|r_m| > 1.645 · sqrt((1 + 2 Σ_{k<m} r_k²) / n), r_k the sample autocorrelation), the series is divided by the
seasonal indices of a classical multiplicative decomposition (R's `decompose(type = "multiplicative")`:
centred moving average of order m, the mean ratio per season position, normalised to mean 1); the naive
forecast of the adjusted series is multiplied back by the last m indices, repeated.

Quantile forecasts: pinball loss ρ_τ(y, q) = max(τ (y − q), (τ − 1)(y − q)); the CRPS is approximated by
2 · mean over the quantile levels of ρ_τ (exact in the limit of many evenly spread levels); both are also
given scaled by s_m, like MASE.
"""
from __future__ import annotations

import numpy as np

TCRIT_90 = 1.645  # one-sided 95% / two-sided 90% normal quantile: M4's seasonality test


def naive_scale(y: np.ndarray, lag: int = 1) -> float:
    """s_lag = mean |y_t − y_{t−lag}| over the in-sample series y (the MASE denominator)."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) <= lag:
        raise ValueError(f"the training part needs more than {lag} values for a lag-{lag} naive scale, "
                         f"found {len(y)}")
    return float(np.mean(np.abs(y[lag:] - y[:-lag])))


def smape(y: np.ndarray, f: np.ndarray) -> float:
    """M4's sMAPE in percent (0..200); a step with y = ŷ = 0 counts 0."""
    y, f = np.asarray(y, np.float64), np.asarray(f, np.float64)
    den = np.abs(y) + np.abs(f)
    return float(np.mean(np.where(den > 0, 200.0 * np.abs(y - f) / np.where(den > 0, den, 1.0), 0.0)))


def mase(x: np.ndarray, y: np.ndarray, f: np.ndarray, m: int = 1) -> float:
    """NaN when the in-sample scale is 0 (a constant, or exactly m-periodic, series); `score` leaves it out."""
    scale = naive_scale(x, m)
    mae = float(np.mean(np.abs(np.asarray(y, np.float64) - np.asarray(f, np.float64))))
    return mae / scale if scale > 0 else float("nan")


def acf(x: np.ndarray, k: int) -> float:
    """Sample autocorrelation at lag k (R's `acf`): Σ (x_t − x̄)(x_{t+k} − x̄) / Σ (x_t − x̄)²."""
    x = np.asarray(x, np.float64) - np.mean(x)
    den = float(np.dot(x, x))
    return float(np.dot(x[:-k], x[k:])) / den if den > 0 and 0 < k < len(x) else 0.0


def is_seasonal(x: np.ndarray, m: int) -> bool:
    """M4's 90% autocorrelation test (see the module docstring)."""
    if m <= 1 or len(x) < 3 * m:
        return False
    r = [acf(x, k) for k in range(1, m + 1)]
    limit = TCRIT_90 * np.sqrt((1 + 2 * np.sum(np.square(r[:-1]))) / len(x))
    return abs(r[-1]) > limit


def seasonal_indices(x: np.ndarray, m: int) -> np.ndarray:
    """(m,) the seasonal figure of R's decompose(x, "multiplicative") by position from the series' start."""
    x = np.asarray(x, np.float64)
    n = len(x)
    weights = np.full(m + 1, 1.0 / m) if m % 2 == 0 else np.full(m, 1.0 / m)
    if m % 2 == 0:
        weights[0] = weights[-1] = 0.5 / m
    half = len(weights) // 2
    trend = np.full(n, np.nan)
    trend[half: n - half] = np.convolve(x, weights, mode="valid")
    ratio = x / trend
    figure = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
    return figure / figure.mean()


def naive2(x: np.ndarray, h: int, m: int) -> np.ndarray:
    """M4's Naive2 forecast of the next h values."""
    x = np.asarray(x, np.float64)
    if not is_seasonal(x, m):
        return np.full(h, x[-1])
    figure = seasonal_indices(x, m)
    season = figure[np.arange(len(x)) % m]
    future = figure[(len(x) + np.arange(h)) % m]  # = the last m indices, repeated
    return x[-1] / season[-1] * future


def seasonal_naive_forecast(y: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(len(origins), H): ŷ_{t+h} = y_{t+h−m⌈h/m⌉}, the last observed value of the same season."""
    h = np.arange(1, horizon + 1)
    back = h - season * np.ceil(h / season).astype(int)  # in (−m, 0]
    return np.asarray(y)[np.asarray(origins)[:, None] + back[None, :]]


def seasonal_naive(x: np.ndarray, h: int, m: int) -> np.ndarray:
    """ŷ_{n+k} = x_{n+k−m⌈k/m⌉}: the seasonal-naive forecast from the end of x."""
    x = np.asarray(x, np.float64)
    return seasonal_naive_forecast(x, [len(x) - 1], h, m)[0]


def pinball(y: np.ndarray, q: np.ndarray, levels) -> float:
    """Mean pinball loss of quantile forecasts q (h, Q) at `levels` (Q,) for y (h,)."""
    d = np.asarray(y, np.float64)[:, None] - np.asarray(q, np.float64)
    tau = np.asarray(levels, np.float64)[None, :]
    return float(np.mean(np.maximum(tau * d, (tau - 1) * d)))


def msis(x, y, lower, upper, m: int, alpha: float) -> float:
    y, lo, up = (np.asarray(a, np.float64) for a in (y, lower, upper))
    penalty = (up - lo) + 2 / alpha * (lo - y) * (y < lo) + 2 / alpha * (y - up) * (y > up)
    scale = naive_scale(x, m)
    return float(np.mean(penalty)) / scale if scale > 0 else float("nan")


def interval_of(levels) -> tuple[int, int] | None:
    """Indices of the outermost quantile pair (τ, 1 − τ) among `levels`, or None."""
    levels = [round(float(t), 6) for t in levels]
    for t in sorted(levels):
        if t < 0.5 and round(1 - t, 6) in levels:
            return levels.index(t), levels.index(round(1 - t, 6))
    return None


def score(series, forecasts, actuals, m: int, quantiles=None, levels=()) -> dict:
    """Mean per-series sMAPE, MASE, and with Naive2's: OWA; with quantile forecasts (list of (h, Q)) at
    `levels`: coverage and MSIS of the outermost interval, scaled pinball and the approximate scaled CRPS.
    `series`: the in-sample values of every series; `forecasts`, `actuals`: their (h,) arrays."""
    rows = {"smape": [], "mase": [], "naive2_smape": [], "naive2_mase": []}
    for x, f, y in zip(series, forecasts, actuals):
        n2 = naive2(x, len(y), m)
        rows["smape"].append(smape(y, f))
        rows["mase"].append(mase(x, y, f, m))
        rows["naive2_smape"].append(smape(y, n2))
        rows["naive2_mase"].append(mase(x, y, n2, m))
    out = {k: _mean(v) for k, v in rows.items()}
    out["owa"] = owa(out["smape"], out["mase"], out["naive2_smape"], out["naive2_mase"])
    if quantiles is not None and len(levels):
        out.update(interval_scores(series, quantiles, actuals, m, levels))
    return out


def owa(s, m, s_naive2, m_naive2) -> float:
    return 0.5 * (s / s_naive2 + m / m_naive2) if s_naive2 > 0 and m_naive2 > 0 else float("nan")


def interval_scores(series, quantiles, actuals, m: int, levels) -> dict:
    pair = interval_of(levels)
    rows = {"scaled_pinball": [], "scaled_crps": []}
    if pair is not None:
        rows.update(coverage=[], msis=[])
    for x, q, y in zip(series, quantiles, actuals):
        q = np.asarray(q, np.float64)
        scale = naive_scale(x, m) or float("nan")
        loss = pinball(y, q, levels)
        rows["scaled_pinball"].append(loss / scale)
        rows["scaled_crps"].append(2 * loss / scale)
        if pair is not None:
            lo, up = q[:, pair[0]], q[:, pair[1]]
            alpha = 1 - (levels[pair[1]] - levels[pair[0]])
            rows["coverage"].append(float(np.mean((y >= lo) & (y <= up))))
            rows["msis"].append(msis(x, y, lo, up, m, alpha))
    return {k: _mean(v) for k, v in rows.items()}


def _mean(values) -> float:
    """The mean over the series that have the metric (a series with a zero in-sample scale has no MASE)."""
    v = np.asarray(values, np.float64)
    return float(v[~np.isnan(v)].mean()) if (~np.isnan(v)).any() else float("nan")
