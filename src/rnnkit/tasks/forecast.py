"""Time-series forecasting: from the last W observations, predict the next H values of a target series.

Data (`rnnkit.data.series`): y_1 .. y_N, the target, plus optional covariates: x_t ∈ R^C (column 0 = y_t).
Split chronologically: the first `train_fraction` of the rows train, the next `valid_fraction` validate,
the rest tests. Each column is normalised, z_t = (x_t − μ) / σ, with μ, σ fitted on the TRAINING ROWS
ONLY (no leakage; saved in normalizer.json). A forecast origin t sees z_{t−W+1} .. z_t and is scored on
y_{t+1} .. y_{t+H}; it belongs to the split that holds y_{t+1} and y_{t+H} (its inputs may reach back into
earlier splits: they are the past).

Model: h_t = Recurrent(cell)(z_t, h_{t−1}) (any rnnkit cell, L layers), then a linear head:
  - "direct" (seq→seq in one shot; seq→one for H = 1): ŷ_{t+1..t+H} = V h_t + b, one head emits H values;
  - "autoregressive": ẑ_{t+1} = V h_t + b predicts the next step of every column (target and covariates);
    in training the true z are fed (teacher forcing) over the window of W + H − 1 steps and every position
    is scored; in evaluation and prediction the model's own ẑ_{t+k} is fed back for k = 1 .. H − 1.
Loss: mean squared error of the normalised values (mean over batch, horizon and, for "autoregressive"
training, columns).

Metrics (on the target, in the data's units, over every origin and horizon step of a split):
  MAE = mean |y − ŷ|,  RMSE = sqrt(mean (y − ŷ)²),
  MASE = MAE / s_1 and sMASE = MAE / s_m (Hyndman & Koehler 2006), with the in-sample naive scales of the
  training part s_k = 1/(n − k) Σ_{t=k+1}^{n} |y_t − y_{t−k}|.
Always next to the two baselines, on exactly the same origins and horizons:
  naive ŷ_{t+h} = y_t;  seasonal naive ŷ_{t+h} = y_{t+h−m⌈h/m⌉} (the value one period before, period m).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import from_dict, opt
from rnnkit.data import DataError, PaddedBatches
from rnnkit.data.series import Series, default_season, read_series
from rnnkit.tasks import driver
from rnnkit.tasks.driver import cell_names, model_from, sized_config
from rnnkit.tasks.runs import LoadedRun, task_field
from rnnkit.train import TrainConfig, atomic_write_json, read_json
from rnnkit.train import evaluate as evaluate_batches

STRATEGIES = ("direct", "autoregressive")
METHODS = ("model", "naive", "snaive")  # stat / metric prefixes: "" (the model), "naive_", "snaive_"


# ---- metrics and baselines (NumPy; the oracles of the tests are written independently) ----------------


def naive_scale(y: np.ndarray, lag: int = 1) -> float:
    """s_lag = mean |y_t − y_{t−lag}| over the in-sample series y (the MASE denominator)."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) <= lag:
        raise ValueError(f"the training part needs more than {lag} values for a lag-{lag} naive scale, "
                         f"found {len(y)}")
    return float(np.mean(np.abs(y[lag:] - y[:-lag])))


def naive_forecast(y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(len(origins), H): ŷ_{t+h} = y_t."""
    return np.repeat(np.asarray(y)[origins][:, None], horizon, axis=1)


def seasonal_naive_forecast(y: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(len(origins), H): ŷ_{t+h} = y_{t+h−m⌈h/m⌉}, the last observed value of the same season."""
    h = np.arange(1, horizon + 1)
    back = h - season * np.ceil(h / season).astype(int)  # in (−m, 0]
    return np.asarray(y)[np.asarray(origins)[:, None] + back[None, :]]


def error_metrics(errors: np.ndarray, scale: float) -> dict:
    """MAE, RMSE and MASE (MAE / scale) of an array of forecast errors."""
    e = np.abs(np.asarray(errors, dtype=np.float64))
    mae = float(e.mean())
    return {"mae": mae, "rmse": float(np.sqrt((e ** 2).mean())), "mase": mae / scale}


# ---- normalisation and splits ----------------------------------------------------------------------------


@dataclass
class Normalizer:
    """z = (x − mean) / std per column; fitted on the training rows only. A constant column gets std 1."""

    columns: list[str]
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, values: np.ndarray, columns: list[str]) -> Normalizer:
        std = values.std(axis=0)
        return cls(list(columns), values.mean(axis=0).tolist(), np.where(std > 0, std, 1.0).tolist())

    def apply(self, values: np.ndarray) -> np.ndarray:
        return (values - np.asarray(self.mean)) / np.asarray(self.std)

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path) -> None:
        atomic_write_json(path, self.to_dict())


@dataclass
class Split:
    """Row counts of the chronological split: rows [0, train), [train, train + valid), [train + valid, N)."""

    train: int
    valid: int
    test: int

    @classmethod
    def of(cls, n: int, train_fraction: float, valid_fraction: float) -> Split:
        if not 0 < train_fraction <= 1 or valid_fraction < 0 or train_fraction + valid_fraction > 1 + 1e-9:
            raise ValueError(f"expected 0 < train_fraction <= 1, valid_fraction >= 0 and a sum <= 1; got "
                             f"{train_fraction} and {valid_fraction}")
        n_train = int(round(n * train_fraction))
        n_valid = min(int(round(n * valid_fraction)), n - n_train)
        return cls(n_train, n_valid, n - n_train - n_valid)

    def rows(self, part: str) -> tuple[int, int]:
        start = {"train": 0, "valid": self.train, "test": self.train + self.valid}[part]
        return start, start + getattr(self, part)


def origins_for(rows: tuple[int, int], window: int, horizon: int, season: int) -> np.ndarray:
    """Forecast origins t whose targets y_{t+1} .. y_{t+H} all lie in rows [a, b) and that have W inputs and a
    full season of history: max(a − 1, W − 1, m − 1) <= t <= b − 1 − H."""
    a, b = rows
    first = max(a - 1, window - 1, season - 1)
    return np.arange(first, b - horizon, dtype=np.int64)


# ---- batches -------------------------------------------------------------------------------------------------


@dataclass
class ForecastBatch:
    inputs: torch.Tensor  # (B, W, C) normalised observations up to the origin
    future: torch.Tensor  # (B, H, C) normalised true future (teacher forcing, loss)
    target: torch.Tensor  # (B, H) the target's true future in the data's units
    naive: torch.Tensor  # (B, H) naive forecasts
    snaive: torch.Tensor  # (B, H) seasonal-naive forecasts


class Windows:
    """The examples of one split: its forecast origins; `collate` cuts their windows out of the series."""

    def __init__(self, z: np.ndarray, y: np.ndarray, origins: np.ndarray, window: int, horizon: int, season: int):
        self.z = torch.as_tensor(z, dtype=torch.float32)  # (N, C)
        self.y = np.asarray(y, dtype=np.float64)
        self.origins = origins
        self.window, self.horizon, self.season = window, horizon, season

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, i: int) -> int:
        return int(self.origins[i])

    def collate(self, origins: list[int]) -> ForecastBatch:
        t = np.asarray(origins)
        past = torch.as_tensor(t[:, None] + np.arange(1 - self.window, 1))  # (B, W)
        ahead = torch.as_tensor(t[:, None] + np.arange(1, self.horizon + 1))  # (B, H)
        f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        return ForecastBatch(self.z[past], self.z[ahead], f32(self.y[ahead.numpy()]),
                             f32(naive_forecast(self.y, t, self.horizon)),
                             f32(seasonal_naive_forecast(self.y, t, self.horizon, self.season)))

    def batches(self, batch_size: int, shuffle: bool, seed: int = 0) -> PaddedBatches:
        return PaddedBatches(self, self.collate, batch_size, shuffle=shuffle, seed=seed, length=lambda _: 1)


# ---- model ------------------------------------------------------------------------------------------------


@dataclass
class ForecastModelConfig:
    """The network; `inputs` (C) and `horizon` (H) come from the data."""

    strategy: str = field(default="direct", metadata=opt(
        "direct: one head emits H values; autoregressive: predictions fed back for H steps", choices=STRATEGIES))
    cell: str = field(default="lstm", metadata=opt("recurrent cell", choices=cell_names))
    layers: int = field(default=1, metadata=opt("stacked recurrent layers"))
    hidden: int = field(default=32, metadata=opt("hidden units"))
    dropout: float = field(default=0.0, metadata=opt("between layers and before the head"))
    inputs: int = field(default=0, metadata=opt(cli=False))
    horizon: int = field(default=0, metadata=opt(cli=False))

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        for name in ("layers", "hidden"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class ForecastOutput:
    loss: torch.Tensor  # scalar: mean squared error of normalised values
    forecast: torch.Tensor  # (B, H) in the data's units
    state: None
    stats: dict


class Forecaster(nn.Module):
    """Recurrent(cell) over the window -> linear head (see the module docstring for both strategies)."""

    def __init__(self, config: ForecastModelConfig, normalizer: Normalizer):
        super().__init__()
        from rnnkit import Recurrent

        c = self.config = config
        if c.inputs <= 0 or c.horizon <= 0:
            raise ValueError(f"inputs and horizon must be > 0, got {c.inputs} and {c.horizon}")
        self.rnn = Recurrent(c.cell, c.inputs, c.hidden, num_layers=c.layers, batch_first=True,
                             dropout=c.dropout if c.layers > 1 else 0.0)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, c.horizon if c.strategy == "direct" else c.inputs)
        self.register_buffer("mean", torch.tensor(normalizer.mean[0], dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(normalizer.std[0], dtype=torch.float32), persistent=False)

    def forecast(self, inputs: torch.Tensor, horizon: int | None = None) -> torch.Tensor:
        """inputs (B, W, C) normalised -> the target's next `horizon` values, normalised, (B, horizon)."""
        horizon = horizon or self.config.horizon
        out, state = self.rnn(inputs)  # (B, W, H)
        if self.config.strategy == "direct":
            if horizon > self.config.horizon:
                raise ValueError(f"a direct model forecasts at most the {self.config.horizon} steps it was "
                                 f"trained for, asked for {horizon}; train with --horizon {horizon} or use "
                                 "--strategy autoregressive")
            return self.head(self.drop(out[:, -1]))[:, :horizon]
        steps = [self.head(out[:, -1])]  # ẑ_{t+1}, (B, C)
        for _ in range(horizon - 1):
            out, state = self.rnn(steps[-1][:, None], state)  # feed the prediction back
            steps.append(self.head(out[:, -1]))
        return torch.stack(steps, 1)[..., 0]  # (B, horizon)

    def forward(self, batch: ForecastBatch, state=None) -> ForecastOutput:
        if self.config.strategy == "autoregressive" and self.training:
            x = torch.cat([batch.inputs, batch.future[:, :-1]], 1)  # (B, W + H − 1, C), teacher forcing
            out, _ = self.rnn(x)
            pred = self.head(self.drop(out))  # (B, W + H − 1, C): ẑ of the next step everywhere
            truth = torch.cat([batch.inputs[:, 1:], batch.future], 1)
            loss = F.mse_loss(pred, truth)
            z_hat = pred[:, -batch.future.shape[1]:, 0]  # one-step-ahead forecasts of the horizon
        else:
            z_hat = self.forecast(batch.inputs, batch.future.shape[1])
            loss = F.mse_loss(z_hat, batch.future[..., 0])
        y_hat = z_hat * self.std + self.mean
        stats = {"loss_sum": loss.detach() * z_hat.numel(), "loss_n": z_hat.numel(), "n": batch.target.numel()}
        for prefix, guess in (("", y_hat.detach()), ("naive_", batch.naive), ("snaive_", batch.snaive)):
            err = batch.target - guess
            stats[prefix + "ae"] = err.abs().sum()
            stats[prefix + "se"] = (err ** 2).sum()
        return ForecastOutput(loss, y_hat, None, stats)


# ---- the task ------------------------------------------------------------------------------------------------


class ForecastTask:
    """Summed stats -> loss, MAE, RMSE, MASE, sMASE of the model and of both baselines."""

    name = "forecast"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(self, season: int, scale: float, seasonal_scale: float):
        self.season, self.scale, self.seasonal_scale = season, scale, seasonal_scale
        self.normalizer: Normalizer | None = None  # a trained run's (set when it is loaded)

    def summarize(self, totals: dict) -> dict:
        n = max(float(totals.get("n", 0.0)), 1.0)
        metrics = {"loss": float(totals["loss_sum"]) / max(float(totals["loss_n"]), 1.0)}
        for prefix in ("", "naive_", "snaive_"):
            mae = float(totals[prefix + "ae"]) / n
            metrics.update({prefix + "mae": mae, prefix + "rmse": math.sqrt(float(totals[prefix + "se"]) / n)})
            for name, scale in (("mase", self.scale), ("smase", self.seasonal_scale)):
                if scale > 0:  # a constant (or, for sMASE, exactly periodic) training part has no scale
                    metrics[prefix + name] = mae / scale
        return metrics

    def to_dict(self) -> dict:
        return {"name": self.name, "season": self.season, "scale": self.scale, "seasonal_scale": self.seasonal_scale}

    @classmethod
    def from_dict(cls, d: dict) -> ForecastTask:
        return cls(int(d["season"]), float(d["scale"]), float(d["seasonal_scale"]))


# ---- data preparation -------------------------------------------------------------------------------------


@dataclass
class ForecastDataConfig:
    """Where the series comes from, how it is split and windowed (saved as config.json["data"])."""

    path: str = field(metadata=opt("CSV file: a header, a time column, value columns", flag="--data"))
    target: str = field(metadata=opt("the column to forecast"))
    covariates: list[str] = field(default_factory=list, metadata=opt("comma-separated extra input columns"))
    time: str | None = field(default=None, metadata=opt("the time column (none: the first column)"))
    missing: str = field(default="error", metadata=opt(
        "empty/NA values: an error, or filled by linear interpolation", choices=("error", "interpolate")))
    window: int = field(default=24, metadata=opt("W: past steps the model sees"))
    horizon: int = field(default=1, metadata=opt("H: future steps to forecast"))
    season: int | None = field(default=None, metadata=opt(
        "period m of the seasonal-naive baseline and sMASE (none: from the time axis: 12 monthly, 7 daily, "
        "24 hourly, else 1)"))
    train_fraction: float = field(default=0.7, metadata=opt("first part of the rows: training"))
    valid_fraction: float = field(default=0.1, metadata=opt("next part: validation; the rest: test"))
    batch_size: int = field(default=16, metadata=opt("windows per training batch"))

    def __post_init__(self):
        self.covariates = list(self.covariates)
        for name in ("window", "horizon", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.season is not None and self.season <= 0:
            raise ValueError(f"season must be > 0, got {self.season}")
        Split.of(100, self.train_fraction, self.valid_fraction)  # validates the fractions

    def read(self, path=None) -> Series:
        return read_series(path or self.path, self.target, self.covariates, self.time, self.missing)


@dataclass
class Prepared:
    """A series split, normalised and cut into windows: everything fit/evaluate need."""

    series: Series
    split: Split
    season: int
    normalizer: Normalizer
    task: ForecastTask
    windows: dict  # part -> Windows (parts with no origin are absent)


def prepare(data: ForecastDataConfig, series: Series | None = None, normalizer: Normalizer | None = None,
            ) -> Prepared:
    """Split chronologically, fit the normaliser and the MASE scales on the training rows only, and cut the
    windows of every part. A given `normalizer` (a trained run's) is used instead of fitting one."""
    series = series or data.read()
    split = Split.of(len(series), data.train_fraction, data.valid_fraction)
    season = data.season or default_season(series)
    need = max(data.window, season) + data.horizon
    if split.train < need:
        raise DataError(f"{series.path}: expected at least {need} training rows (max(window {data.window}, season "
                        f"{season}) + horizon {data.horizon}), found {split.train} ({data.train_fraction:.0%} of "
                        f"{len(series)} rows)")
    train_values = series.values[: split.train]
    normalizer = normalizer or Normalizer.fit(train_values, series.columns)
    y = series.values[:, 0]
    task = ForecastTask(season, naive_scale(train_values[:, 0], 1), naive_scale(train_values[:, 0], season))
    z = normalizer.apply(series.values)
    windows = {}
    for part in ("train", "valid", "test"):
        origins = origins_for(split.rows(part), data.window, data.horizon, season)
        if len(origins):
            windows[part] = Windows(z, y, origins, data.window, data.horizon, season)
    return Prepared(series, split, season, normalizer, task, windows)


# ---- the lifecycle: what forecasting tells the driver (rnnkit.tasks.driver) -------------------------------


@dataclass
class TrainForecaster(TrainConfig):
    """The Trainer's options with the forecaster's defaults (small models, many epochs, clip 1)."""

    epochs: int = field(default=50, metadata=opt("passes over the training windows"))
    lr: float | None = field(default=3e-3, metadata=opt("learning rate"))
    clip: float = field(default=1.0, metadata=opt("max gradient norm (the loss is a mean squared error)"))


def _batches(prep: Prepared, data: ForecastDataConfig, seed: int):
    train = prep.windows.get("train")
    if train is None:
        raise DataError(f"{prep.series.path}: the training part has no complete window (window {data.window}, "
                        f"horizon {data.horizon}, season {prep.season}); use a smaller window or more rows")
    valid = prep.windows.get("valid")
    return train.batches(data.batch_size, True, seed), None if valid is None else valid.batches(256, False)


class ForecastSpec:
    name, description = "forecast", "a forecasting run"
    data_config, model_config, train_config = ForecastDataConfig, ForecastModelConfig, TrainForecaster
    path_fields = ("path",)
    extra_sections = ("split",)

    def prepare(self, data: ForecastDataConfig, task: ForecastTask | None = None) -> Prepared:
        return prepare(data, normalizer=None if task is None else task.normalizer)

    def model_config_for(self, prep: Prepared, options: dict) -> ForecastModelConfig:
        return sized_config(ForecastModelConfig, options, inputs=len(prep.series.columns),
                            horizon=prep.windows["train"].horizon if "train" in prep.windows else 1)

    def build_model(self, config: ForecastModelConfig, prep: Prepared) -> Forecaster:
        return Forecaster(config, prep.normalizer)

    def batches(self, prep: Prepared, data: ForecastDataConfig, seed: int):
        return _batches(prep, data, seed)

    def run_files(self, prep: Prepared, config: ForecastModelConfig) -> tuple[dict, dict]:
        """normalizer.json; config.json's task (season, MASE scales) and split."""
        return {"normalizer.json": prep.normalizer}, {"task": prep.task.to_dict(), "split": asdict(prep.split)}

    def load(self, run_dir: Path, config: dict) -> tuple[Forecaster, ForecastTask]:
        model_config = model_from(self, run_dir, config)
        normalizer = from_dict(Normalizer, read_json(run_dir / "normalizer.json"), str(run_dir / "normalizer.json"))
        if len(normalizer.columns) != model_config.inputs or len(normalizer.mean) != len(normalizer.columns) or \
                len(normalizer.std) != len(normalizer.columns):
            raise DataError(f"{run_dir / 'normalizer.json'}: expected columns, mean and std of "
                            f"{model_config.inputs} entries each (config.json's model.inputs), found "
                            f"{len(normalizer.columns)}, {len(normalizer.mean)}, {len(normalizer.std)}")
        number = (int, float)
        task = ForecastTask(task_field(config, run_dir, "season", int), task_field(config, run_dir, "scale", number),
                            task_field(config, run_dir, "seasonal_scale", number))
        task.normalizer = normalizer
        return Forecaster(model_config, normalizer), task


SPEC = ForecastSpec()


@dataclass
class LoadedForecaster(LoadedRun):
    """model (Forecaster), task (ForecastTask), config, and the training rows' normalizer."""

    @property
    def normalizer(self) -> Normalizer:
        return self.task.normalizer

    @property
    def data(self) -> ForecastDataConfig:
        return from_dict(ForecastDataConfig, self.config["data"], "config.json: data")


def load_run(run_dir, weights: str = "best", device: str = "cpu") -> LoadedForecaster:
    """Rebuild a trained forecaster from RUN_DIR: config.json, normalizer.json and best.safetensors
    (weights="last": weights.safetensors). No pickle, no user code."""
    return driver.load_run(run_dir, weights, device, SPEC, LoadedForecaster)


def fit(run_dir, data: ForecastDataConfig, model_config: ForecastModelConfig | dict, train: TrainConfig,
        series: Series | None = None, overwrite: bool = False, callbacks=()) -> list[dict]:
    """Train a forecaster into RUN_DIR with the shared Trainer; returns its history (one dict per epoch)."""
    prep = prepare(data, series)
    return driver.fit(SPEC, run_dir, data, model_config, train, overwrite=overwrite, prepared=prep,
                      callbacks=callbacks)


def resume(run_dir, epochs: int | None = None, **train_changes) -> list[dict]:
    """Continue the run saved in RUN_DIR exactly where its last checkpoint stopped."""
    return driver.resume(run_dir, SPEC, epochs, **train_changes)


def evaluate(run: LoadedForecaster, parts=("valid", "test"), path=None) -> dict:
    """{part: metrics} of a trained run on the chronological split of its data file (or of `path`, split
    and windowed the same way, normalised with the run's saved normaliser); parts with no window are left out."""
    data = run.data if path is None else replace(run.data, path=str(path))
    prep = prepare(data, normalizer=run.normalizer)
    out = {}
    for part in parts:
        if part in prep.windows:
            out[part] = evaluate_batches(run.model, prep.task, prep.windows[part].batches(256, False))
            out[part]["windows"] = float(len(prep.windows[part]))
    return out


def predict(run: LoadedForecaster, series: Series, horizon: int | None = None) -> tuple[list[str], np.ndarray]:
    """The next `horizon` (default: the trained H) values of the target after the end of `series`, with their
    time stamps: (times, values (horizon,))."""
    w = run.data.window
    if len(series) < w:
        raise DataError(f"{series.path}: expected at least {w} rows (the model's window), found {len(series)}")
    horizon = horizon or run.model.config.horizon
    z = torch.as_tensor(run.normalizer.apply(series.values[-w:]), dtype=torch.float32)[None]  # (1, W, C)
    device = next(run.model.parameters()).device
    with torch.no_grad():
        z_hat = run.model.eval().forecast(z.to(device), horizon)[0]
    values = (z_hat.double().cpu() * run.normalizer.std[0] + run.normalizer.mean[0]).numpy()
    return series.future_times(horizon), values


def table(metrics: dict, season: int, label: str = "model") -> str:
    """Model and baselines side by side: one row per method, columns MAE, RMSE, MASE, sMASE(m)."""
    head = f"{'':<24}{'MAE':>10}{'RMSE':>10}{'MASE':>9}{f'sMASE({season})':>11}"
    rows = [head]
    for prefix, name in (("", label), ("naive_", "naive"), ("snaive_", f"seasonal({season})")):
        m = metrics
        cells = [f"{m[prefix + k]:.4g}" if prefix + k in m else "-" for k in ("mae", "rmse", "mase", "smase")]
        rows.append(f"{name:<24}{cells[0]:>10}{cells[1]:>10}{cells[2]:>9}{cells[3]:>11}")
    return "\n".join(rows)
