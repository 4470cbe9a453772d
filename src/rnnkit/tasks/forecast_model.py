"""The forecasting network: per-window scaling -> Recurrent(cell) -> a head of H steps x Q quantiles.

Inputs: the last W observations x_{t−W+1..t} ∈ R^C in the data's units (column 0 the target y), the season
position of the window's first step, and the series' index (for the optional learned embedding).

1. Target transform (optional): g(y) = log y, or Box-Cox (y^λ − 1) / λ (y > 0 for both).
   Differencing (optional, `difference` k ≥ 1): the network sees d_j = u_j − u_{j−k} of u = g(y) (0 at the
   window's first k steps, which have no lag inside the window) and forecasts the change from the reference
   r_h = u_{t+h−k·c_h}, the last observed value at the same phase, over c_h = ⌈h/k⌉ lag-k steps (k = 1: the
   last value; k = m: the seasonal naive forecast). Below, "the target" is then d, and step 6 adds r_h + c_h·a:
   with a zero network the forecast is the (seasonal) naive one plus the window's mean drift (for k = 1,
   Hyndman's drift method: u_t + h·(u_t − u_{t−W+1}) / (W − 1)).
2. Scaling, per window, of the (transformed, differenced) target u = g(y) (d with differencing; its last
   W − k values):
     "revin":    a = mean(u_{t−W+1..t}), s = std(u_{t−W+1..t})       (Kim et al. 2022, RevIN)
     "mean_abs": a = 0,                  s = mean |u_{t−W+1..t}|     (Salinas et al. 2020, DeepAR)
     "global":   a, s = the training rows' mean and std (fitted once; cannot extrapolate a new level)
   ũ = (u − a) / s; covariates always use the training rows' mean and std (normalizer.json). Global scaling
   is of levels: it cannot be combined with differencing.
   A window with s ≈ 0 (constant) gets s = 1e-3 · (|a| + 1).
3. Features, per step: [ũ, covariates, sin 2πp/m, cos 2πp/m (season position p, when m > 1), e_series
   (learned embedding, optional)].
4. h_j = Recurrent(cell)(f_j, h_{j−1}), L layers, over f_j = the features of step j, or with `patch` P > 1 the
   concatenated features of the W/P segments of P steps (SegRNN, Lin et al. 2023): f_j = [features of steps
   jP .. jP + P − 1], so a two-week hourly window (W = 336, P = 24) takes 14 recurrent steps, one per day.
5. "direct": Q scaled quantiles per horizon step from V h_t + b, made monotone by construction: with p the
   level nearest 0.5 (levels sorted ascending), q̃_p = z_p, q̃_j = q̃_{j−1} + softplus(z_j) above it and
   q̃_j = q̃_{j+1} − softplus(z_j) below it;
   plus, with `highway`, a linear map of the W scaled target values onto the H steps, added to every
   quantile (LSTNet's autoregressive highway), initialised to the seasonal naive forecast ũ_{t+h} =
   ũ_{t+h−m⌈h/m⌉} (naive when W < m): training starts from seasonal naive and learns corrections to it
   (with differencing it starts at zero: the reference of step 1 is already the naive forecast).
   "autoregressive": ũ_{t+1} (and the next covariates) from V h_t + b, fed back H − 1 times (point only).
6. Output: g⁻¹(q̃ · s + a), in the data's units, (B, H, Q), with differencing g⁻¹(q̃ · s + c_h·a + r_h); with no
   quantiles Q = 1 (a point forecast).

Loss (in the scaled space, so every series weighs the same): the mean pinball loss over steps and
levels, ρ_τ(u, q) = max(τ(u − q), (τ − 1)(u − q)); with no quantiles the mean squared error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import opt
from rnnkit.tasks import forecast_metrics as m4
from rnnkit.tasks.driver import cell_names

STRATEGIES = ("direct", "autoregressive")
SCALINGS = ("revin", "mean_abs", "global")
TRANSFORMS = ("none", "log", "boxcox")
# config.json model keys of runs written before per-window scaling: their meaning when absent
LEGACY_MODEL = {"scaling": "global", "quantiles": [], "season_features": False, "highway": False,
                "transform": "none"}


@dataclass
class ForecastModelConfig:
    """The network; `inputs` (C), `horizon` (H), `season` (m) and `num_series` come from the data."""

    strategy: str = field(default="direct", metadata=opt(
        "direct: one head emits H values (x quantiles); autoregressive: point predictions fed back for H steps "
        "(no quantiles, highway or season features)", choices=STRATEGIES))
    cell: str = field(default="lstm", metadata=opt("recurrent cell", choices=cell_names))
    layers: int = field(default=1, metadata=opt("stacked recurrent layers"))
    hidden: int = field(default=32, metadata=opt("hidden units"))
    dropout: float = field(default=0.0, metadata=opt("between layers and before the head"))
    scaling: str = field(default="revin", metadata=opt(
        "target scaling: revin (each window's mean/std), mean_abs (DeepAR: each window's mean |y|), global "
        "(the training rows' mean/std)", choices=SCALINGS))
    transform: str = field(default="none", metadata=opt("target transform before scaling (y > 0)",
                                                        choices=TRANSFORMS))
    boxcox_lambda: float = field(default=0.5, metadata=opt("λ of --transform boxcox"))
    quantiles: list[float] | None = field(default_factory=lambda: [0.1, 0.5, 0.9], metadata=opt(
        "quantile levels of the output, pinball loss (none or empty: a point forecast, squared error)"))
    season_features: bool = field(default=True, metadata=opt("sin/cos of the season position as inputs"))
    highway: bool = field(default=True, metadata=opt("add a linear forecast from the scaled window (LSTNet)"))
    embedding: int = field(default=0, metadata=opt("size of a learned per-series embedding (0: none)"))
    difference: int = field(default=0, metadata=opt(
        "k: model the lag-k differences u_t - u_(t-k) of the (transformed) target and forecast the change from the "
        "last value at the same phase (1: first differences, the season m: seasonal differences; 0: none)"))
    patch: int = field(default=1, metadata=opt(
        "P: steps per recurrent input; the window enters the network as W/P segments of P steps, each one vector "
        "(SegRNN): a long window in few recurrent steps (W a multiple of P; 1: one step per input)"))
    inputs: int = field(default=0, metadata=opt(cli=False))
    horizon: int = field(default=0, metadata=opt(cli=False))
    window: int = field(default=0, metadata=opt(cli=False))
    season: int = field(default=0, metadata=opt(cli=False))  # 0 and 1: none
    num_series: int = field(default=0, metadata=opt(cli=False))

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {self.scaling!r}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {self.transform!r}")
        for name in ("layers", "hidden"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        self.quantiles = sorted(float(q) for q in (self.quantiles or []))
        if any(not 0 < q < 1 for q in self.quantiles) or len(set(self.quantiles)) != len(self.quantiles):
            raise ValueError(f"quantiles must be distinct levels in (0, 1), got {self.quantiles}")
        if self.embedding < 0:
            raise ValueError(f"embedding must be >= 0, got {self.embedding}")
        if self.difference < 0:
            raise ValueError(f"difference must be >= 0 (0: none), got {self.difference}")
        if self.difference and self.window > 0 and self.difference >= self.window:
            raise ValueError(f"difference {self.difference} must be smaller than the window, got window "
                             f"{self.window}")
        if self.difference and self.scaling == "global":
            raise ValueError("difference needs a per-window scaling (revin or mean_abs): the global scaling is "
                             "fitted on levels, not on differences")
        if self.patch <= 0:
            raise ValueError(f"patch must be > 0, got {self.patch}")
        if self.window > 0 and self.window % self.patch:
            raise ValueError(f"patch {self.patch} must divide the window, got window {self.window}")
        if self.strategy == "autoregressive":  # a point forecast from the values alone
            if self.embedding or self.patch > 1 or self.difference:
                raise ValueError("strategy autoregressive feeds back the values one step at a time: use it with "
                                 "embedding 0, patch 1 and difference 0")
            self.quantiles, self.highway, self.season_features = [], False, False

    @property
    def point_index(self) -> int:
        """The output column used as the point forecast: the quantile nearest 0.5 (0 with no quantiles)."""
        if not self.quantiles:
            return 0
        return min(range(len(self.quantiles)), key=lambda j: abs(self.quantiles[j] - 0.5))

    @property
    def features(self) -> int:
        return 2 if self.season_features and self.season > 1 else 0


class Forecaster(nn.Module):
    """See the module docstring. `mean`, `std`: the training rows' target mean / std (global scaling);
    `col_mean`, `col_std`: every column's (covariates). Buffers from normalizer.json, not weights."""

    def __init__(self, config: ForecastModelConfig, normalizer):
        super().__init__()
        from rnnkit import Recurrent

        c = self.config = config
        if c.inputs <= 0 or c.horizon <= 0:
            raise ValueError(f"inputs and horizon must be > 0, got {c.inputs} and {c.horizon}")
        size = (c.inputs + c.features + c.embedding) * c.patch
        self.rnn = Recurrent(c.cell, size, c.hidden, num_layers=c.layers, batch_first=True,
                             dropout=c.dropout if c.layers > 1 else 0.0)
        self.drop = nn.Dropout(c.dropout)
        q = max(len(c.quantiles), 1)
        self.head = nn.Linear(c.hidden, c.horizon * q if c.strategy == "direct" else c.inputs)
        self.embed = nn.Embedding(max(c.num_series, 1), c.embedding) if c.embedding else None
        self.linear = nn.Linear(c.window, c.horizon) if c.highway and c.window > 0 else None
        if self.linear is not None:  # starts as the seasonal naive forecast (naive when W < m) ...
            with torch.no_grad():
                self.head.weight.mul_(0.1)  # ... plus a small correction from the network
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)
            m = c.season if 1 < c.season <= c.window else 1
            if not c.difference:  # with differencing the zero map is already the naive forecast
                with torch.no_grad():
                    for h in range(c.horizon):
                        self.linear.weight[h, c.window - m + h % m] = 1.0
        f32 = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
        self.register_buffer("mean", f32(normalizer.mean[0]), persistent=False)
        self.register_buffer("std", f32(normalizer.std[0]), persistent=False)
        self.register_buffer("col_mean", f32(normalizer.mean), persistent=False)
        self.register_buffer("col_std", f32(normalizer.std), persistent=False)

    # ---- transform and scaling --------------------------------------------------------------------------

    def transform(self, y: torch.Tensor) -> torch.Tensor:
        if self.config.transform == "log":
            return torch.log(y.clamp_min(1e-12))
        if self.config.transform == "boxcox":
            lam = self.config.boxcox_lambda
            return torch.log(y.clamp_min(1e-12)) if lam == 0 else (y.clamp_min(0) ** lam - 1) / lam
        return y

    def untransform(self, u: torch.Tensor) -> torch.Tensor:
        if self.config.transform == "log":
            return torch.exp(u.clamp(max=80.0))
        if self.config.transform == "boxcox":
            lam = self.config.boxcox_lambda
            return torch.exp(u.clamp(max=80.0)) if lam == 0 else (lam * u + 1).clamp_min(0) ** (1 / lam)
        return u

    def location_scale(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, s), each (B, 1), of the transformed target window u (B, W)."""
        if self.config.scaling == "global":
            return self.mean.expand(u.shape[0], 1), self.std.expand(u.shape[0], 1)
        if self.config.scaling == "revin":
            a = u.mean(1, keepdim=True)
            s = u.std(1, keepdim=True, unbiased=False) if u.shape[1] > 1 else torch.zeros_like(a)
        else:
            a = torch.zeros_like(u[:, :1])
            s = u.abs().mean(1, keepdim=True)
        floor = 1e-3 * (a.abs() + 1)
        return a, torch.where(s > floor, s, floor)

    def encode(self, values: torch.Tensor, start: torch.Tensor | None = None,
               series: torch.Tensor | None = None):
        """values (B, W, C) in the data's units -> (features (B, W, F), the outputs' location (B, 1), or (B, H)
        with differencing: r_h + c_h·a, and the scale s (B, 1)); outputs in the transformed units = z·s + location."""
        c = self.config
        u = self.transform(values[..., 0])
        k = c.difference
        if not k:
            a, s = self.location_scale(u)
            cols, location = [((u - a) / s)[..., None]], a
        else:  # d_j = u_j − u_{j−k}, scaled by its own location and scale; 0 at the first k steps
            d = u[:, k:] - u[:, :-k]
            a, s = self.location_scale(d)
            cols = [torch.cat([torch.zeros_like(u[:, :k]), (d - a) / s], 1)[..., None]]
            phase, lags = self.reference_steps(u.shape[1], u.device)
            location = u[:, phase] + lags * a  # (B, H): r_h + c_h·a
        if c.inputs > 1:
            cols.append((values[..., 1:] - self.col_mean[1:]) / self.col_std[1:])
        B, W = u.shape
        if c.features:
            start = torch.zeros(B, dtype=torch.long, device=values.device) if start is None else start
            angle = (start[:, None] + torch.arange(W, device=values.device)) % c.season * (2 * math.pi / c.season)
            cols += [torch.sin(angle)[..., None], torch.cos(angle)[..., None]]
        if self.embed is not None:
            e = self.embedding_of(series, B, values.device)
            cols.append(e[:, None, :].expand(B, W, c.embedding))
        return torch.cat(cols, -1), location, s

    def reference_steps(self, window: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Differencing by k: for h = 1..H, the window index of the reference r_h (W − k + (h − 1) mod k) and
        the number of lag-k steps c_h = ⌈h/k⌉ between it and step h, each (H,)."""
        k, h = self.config.difference, torch.arange(self.config.horizon, device=device)
        return window - k + h % k, (h // k + 1).to(torch.float32)

    def embedding_of(self, series: torch.Tensor | None, batch: int, device) -> torch.Tensor:
        """(B, E): the series' embeddings; index −1 (or no index): the mean embedding (an unseen series)."""
        mean = self.embed.weight.mean(0, keepdim=True)
        if series is None:
            return mean.expand(batch, -1)
        known = self.embed(series.clamp_min(0))
        return torch.where((series >= 0)[:, None], known, mean)

    # ---- forward ---------------------------------------------------------------------------------------------

    def scaled_quantiles(self, x: torch.Tensor) -> torch.Tensor:
        """features (B, W, F) -> scaled outputs (B, H, Q) of the direct head (monotone in Q)."""
        c = self.config
        out, _ = self.rnn(self.segments(x))
        z = self.head(self.drop(out[:, -1])).view(x.shape[0], c.horizon, -1)  # (B, H, Q)
        if z.shape[-1] > 1:  # the point level, and softplus steps away from it on both sides
            p = c.point_index
            centre = z[..., p:p + 1]
            down = centre - F.softplus(z[..., :p]).flip(-1).cumsum(-1).flip(-1)
            up = centre + F.softplus(z[..., p + 1:]).cumsum(-1)
            z = torch.cat([down, centre, up], -1)
        if self.linear is not None:
            z = z + self.linear(x[..., 0])[..., None]
        return z

    def segments(self, x: torch.Tensor) -> torch.Tensor:
        """features (B, W, F) -> (B, W/P, P·F): segment j holds steps jP .. jP + P − 1 (P = 1: x itself)."""
        P = self.config.patch
        return x if P == 1 else x.reshape(x.shape[0], x.shape[1] // P, P * x.shape[2])

    def forecast(self, inputs: torch.Tensor, horizon: int | None = None) -> torch.Tensor:
        """inputs (B, W, F) scaled features -> the scaled target's next `horizon` values (B, horizon): the point
        forecast (direct: the point quantile; autoregressive: predictions fed back)."""
        horizon = horizon or self.config.horizon
        if self.config.strategy == "direct":
            if horizon > self.config.horizon:
                raise ValueError(f"a direct model forecasts at most the {self.config.horizon} steps it was "
                                 f"trained for, asked for {horizon}; train with --horizon {horizon} or use "
                                 "--strategy autoregressive")
            return self.scaled_quantiles(inputs)[:, :horizon, self.config.point_index]
        out, state = self.rnn(inputs)
        steps = [self.head(out[:, -1])]  # ẑ_{t+1}, (B, C)
        for _ in range(horizon - 1):
            out, state = self.rnn(steps[-1][:, None], state)  # feed the prediction back
            steps.append(self.head(out[:, -1]))
        return torch.stack(steps, 1)[..., 0]  # (B, horizon)

    def predict(self, values: torch.Tensor, start: torch.Tensor | None = None, series: torch.Tensor | None = None,
                horizon: int | None = None) -> torch.Tensor:
        """values (B, W, C) in the data's units -> (B, horizon, Q) forecasts in the data's units (Q = 1 with no
        quantiles; column `config.point_index` is the point forecast)."""
        x, a, s = self.encode(values, start, series)
        if self.config.strategy == "direct" and (horizon or self.config.horizon) <= self.config.horizon:
            z = self.scaled_quantiles(x)[:, :horizon or self.config.horizon]
        else:
            z = self.forecast(x, horizon)[..., None]
        return self.untransform(z * s[..., None] + a[:, :z.shape[1], None])

    def forward(self, batch, state=None) -> ForecastOutput:
        """The Trainer's contract: loss, the point forecast (B, H) and the summed stats of the metrics."""
        loss, q = self.loss(batch)
        c = self.config
        stats = {"loss_sum": loss.detach() * batch.target.numel(), "loss_n": batch.target.numel(),
                 **_stats(batch, q.detach(), c.point_index, c.quantiles)}
        return ForecastOutput(loss, q[..., c.point_index], None, stats)

    def loss(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(training loss, point forecast (B, H) in the data's units) of a ForecastBatch."""
        c = self.config
        x, a, s = self.encode(batch.values, batch.start, batch.series)
        truth = (self.transform(batch.target) - a) / s  # (B, H) scaled
        if c.strategy == "autoregressive" and self.training:
            future = self.scale_future(batch.future, a, s)  # (B, H, C)
            out, _ = self.rnn(torch.cat([x, future[:, :-1]], 1))  # teacher forcing over W + H − 1 steps
            pred = self.head(self.drop(out))
            loss = F.mse_loss(pred, torch.cat([x[:, 1:], future], 1))
            z = pred[:, -c.horizon:, :1]
        elif c.strategy == "autoregressive":
            z = self.forecast(x, batch.target.shape[1])[..., None]
            loss = F.mse_loss(z[..., 0], truth)
        else:
            z = self.scaled_quantiles(x)
            loss = pinball_loss(z, truth, c.quantiles) if c.quantiles else F.mse_loss(z[..., 0], truth)
        return loss, self.untransform(z * s[..., None] + a[..., None])

    def scale_future(self, future: torch.Tensor, a, s) -> torch.Tensor:
        cols = [((self.transform(future[..., 0]) - a) / s)[..., None]]
        if self.config.inputs > 1:
            cols.append((future[..., 1:] - self.col_mean[1:]) / self.col_std[1:])
        return torch.cat(cols, -1)


@dataclass
class ForecastOutput:
    loss: torch.Tensor  # scalar: pinball (or squared error) of scaled values
    forecast: torch.Tensor  # (B, H) point forecast in the data's units
    state: None
    stats: dict


def _stats(batch, q: torch.Tensor, point: int, levels: list[float]) -> dict:
    """Summed errors of the model's point forecast and of both baselines (see the module docstring)."""
    n = batch.target.numel()
    s1, sm = batch.scale[:, :1], batch.scale[:, 1:]
    stats = {"n": n, "n1": float((s1 > 0).sum()) * batch.target.shape[1],
             "nm": float((sm > 0).sum()) * batch.target.shape[1]}
    inv = lambda s: torch.where(s > 0, 1 / s.clamp_min(1e-30), torch.zeros_like(s))  # noqa: E731
    for prefix, guess in (("", q[..., point]), ("naive_", batch.naive), ("snaive_", batch.snaive)):
        err = batch.target - guess
        stats[prefix + "ae"] = err.abs().sum()
        stats[prefix + "se"] = (err ** 2).sum()
        stats[prefix + "sae1"] = (err.abs() * inv(s1)).sum()
        stats[prefix + "saem"] = (err.abs() * inv(sm)).sum()
        den = batch.target.abs() + guess.abs()
        stats[prefix + "ape"] = torch.where(den > 0, 200 * err.abs() / den.clamp_min(1e-30), 0 * den).sum()
    if levels:
        pair = m4.interval_of(levels)
        if pair is not None:
            lo, up = q[..., pair[0]], q[..., pair[1]]
            stats["covered"] = ((batch.target >= lo) & (batch.target <= up)).sum()
        tau = torch.tensor(levels)
        d = batch.target[..., None] - q
        stats["pinball"] = (torch.maximum(tau * d, (tau - 1) * d).mean(-1) * inv(sm)).sum()
    return stats


def pinball_loss(q: torch.Tensor, y: torch.Tensor, levels) -> torch.Tensor:
    """Mean over batch, steps and levels of ρ_τ(y − q): q (B, H, Q), y (B, H)."""
    tau = torch.tensor(levels, dtype=q.dtype, device=q.device)
    d = y[..., None] - q
    return torch.maximum(tau * d, (tau - 1) * d).mean()
