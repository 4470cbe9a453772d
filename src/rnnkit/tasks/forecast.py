"""Time-series forecasting: one global model for many series; from the last W observations of a series,
the next H values of its target (and quantiles).

Data (`rnnkit.data.panel`): one series (a CSV with a time column), many series in the long format
(unique_id, ds, y + covariates) or M4's wide format. Parts, origins and batches: `rnnkit.tasks.forecast_data`.
Model (per-window scaling, season features, series embedding, quantile head): `rnnkit.tasks.forecast_model`.

Metrics of `evaluate` (on the target, in the data's units, over every origin and horizon step of a part):
  MAE = mean |y − ŷ|,  RMSE = sqrt(mean (y − ŷ)²),  sMAPE = mean 200 |y − ŷ| / (|y| + |ŷ|),
  MASE = mean |y − ŷ| / s_1 and sMASE = mean |y − ŷ| / s_m (Hyndman & Koehler 2006), each error divided by
  its own series' in-sample naive scale of the training part, s_k = 1/(n − k) Σ_{t=k+1}^{n} |y_t − y_{t−k}|;
  with quantiles: coverage of the outermost interval (τ, 1 − τ) and the mean pinball loss / s_m.
Always next to the two baselines, on exactly the same origins and horizons:
  naive ŷ_{t+h} = y_t;  seasonal naive ŷ_{t+h} = y_{t+h−m⌈h/m⌉} (the value one period before, period m).
`holdout_scores`: M4's own metrics (sMAPE, MASE, OWA vs Naive2, MSIS; `forecast_metrics`) of one forecast
per series from the end of its training part.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from rnnkit.config import from_dict, opt
from rnnkit.data import DataError
from rnnkit.data.panel import Panel
from rnnkit.data.series import Series, future_times
from rnnkit.tasks import driver
from rnnkit.tasks import forecast_metrics as m4
from rnnkit.tasks.driver import model_from, sized_config
from rnnkit.tasks.forecast_data import (  # noqa: F401 - the task's public names
    ForecastBatch,
    ForecastDataConfig,
    Normalizer,
    Prepared,
    Split,
    Windows,
    error_metrics,
    naive_forecast,
    naive_scale,
    origins_for,
    season_phase,
    seasonal_naive_forecast,
    split_of,
)
from rnnkit.tasks.forecast_data import prepare as _prepare
from rnnkit.tasks.forecast_model import (  # noqa: F401
    LEGACY_MODEL,
    SCALINGS,
    STRATEGIES,
    Forecaster,
    ForecastModelConfig,
    ForecastOutput,
    pinball_loss,
)
from rnnkit.tasks.runs import LoadedRun, task_field
from rnnkit.train import TrainConfig, read_json
from rnnkit.train import evaluate as evaluate_batches

METHODS = ("model", "naive", "snaive")  # stat / metric prefixes: "" (the model), "naive_", "snaive_"


# ---- the task ------------------------------------------------------------------------------------------------


class ForecastTask:
    """Summed stats -> loss, MAE, RMSE, sMAPE, MASE, sMASE of the model and of both baselines (+ coverage and
    scaled pinball of quantile models)."""

    name = "forecast"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(self, season: int, scale: float, seasonal_scale: float, series: list[str] | None = None):
        self.season, self.scale, self.seasonal_scale = season, scale, seasonal_scale
        self.series = list(series or [])  # the training series' ids (embedding rows), when embedded
        self.normalizer: Normalizer | None = None  # a trained run's (set when it is loaded)

    def summarize(self, totals: dict) -> dict:
        n = max(float(totals.get("n", 0.0)), 1.0)
        metrics = {"loss": float(totals["loss_sum"]) / max(float(totals["loss_n"]), 1.0)}
        for prefix in ("", "naive_", "snaive_"):
            mae = float(totals[prefix + "ae"]) / n
            metrics.update({prefix + "mae": mae, prefix + "rmse": math.sqrt(float(totals[prefix + "se"]) / n),
                            prefix + "smape": float(totals[prefix + "ape"]) / n})
            for name, key, count in (("mase", "sae1", "n1"), ("smase", "saem", "nm")):
                if float(totals.get(count, 0)) > 0:  # a constant (or exactly periodic) training part has no scale
                    metrics[prefix + name] = float(totals[prefix + key]) / float(totals[count])
        if "covered" in totals:
            metrics["coverage"] = float(totals["covered"]) / n
        if "pinball" in totals and float(totals.get("nm", 0)) > 0:
            metrics["scaled_pinball"] = float(totals["pinball"]) / float(totals["nm"])
        return metrics

    def to_dict(self) -> dict:
        return {"name": self.name, "season": self.season, "scale": self.scale, "seasonal_scale": self.seasonal_scale,
                "series": self.series}

    @classmethod
    def from_dict(cls, d: dict) -> ForecastTask:
        return cls(int(d["season"]), float(d["scale"]), float(d["seasonal_scale"]), d.get("series"))


def prepare(data: ForecastDataConfig, series: Series | Panel | None = None,
            normalizer: Normalizer | None = None) -> Prepared:
    """Read (unless given), split, normalise and window the data (see rnnkit.tasks.forecast_data)."""
    return _prepare(data, ForecastTask, series, normalizer)


# ---- the lifecycle: what forecasting tells the driver (rnnkit.tasks.driver) -------------------------------


@dataclass
class TrainForecaster(TrainConfig):
    """The Trainer's options with the forecaster's defaults (small models, many epochs, clip 1)."""

    epochs: int = field(default=50, metadata=opt("passes over the training windows"))
    lr: float | None = field(default=3e-3, metadata=opt("learning rate"))
    clip: float = field(default=1.0, metadata=opt("max gradient norm"))


def _batches(prep: Prepared, data: ForecastDataConfig, seed: int):
    train = prep.windows.get("train")
    if train is None:
        raise DataError(f"{prep.panel.path}: the training part has no complete window (window {data.window}, "
                        f"horizon {data.horizon}, season {prep.season}); use a smaller window or more rows")
    valid = prep.windows.get("valid")
    return (train.batches(data.batch_size, True, seed, data.windows_per_series),
            None if valid is None else valid.batches(256, False))


class ForecastSpec:
    name, description = "forecast", "a forecasting run"
    data_config, model_config, train_config = ForecastDataConfig, ForecastModelConfig, TrainForecaster
    path_fields = ("path",)
    extra_sections = ("split",)

    def prepare(self, data: ForecastDataConfig, task: ForecastTask | None = None) -> Prepared:
        return prepare(data, normalizer=None if task is None else task.normalizer)

    def model_config_for(self, prep: Prepared, options: dict) -> ForecastModelConfig:
        horizon = prep.windows["train"].horizon if "train" in prep.windows else 1
        window = prep.windows["train"].window if "train" in prep.windows else 1
        config = sized_config(ForecastModelConfig, options, inputs=len(prep.panel.columns), horizon=horizon,
                              window=window, season=prep.season, num_series=len(prep.kept))
        low = float(prep.pool.values[:, 0].min())
        if config.transform != "none" and low <= 0:
            raise DataError(f"{prep.panel.path}: --transform {config.transform}: expected a target > 0, found {low:g}")
        return config

    def build_model(self, config: ForecastModelConfig, prep: Prepared) -> Forecaster:
        return Forecaster(config, prep.normalizer)

    def batches(self, prep: Prepared, data: ForecastDataConfig, seed: int):
        return _batches(prep, data, seed)

    def run_files(self, prep: Prepared, config: ForecastModelConfig) -> tuple[dict, dict]:
        """normalizer.json; config.json's task (season, MASE scales, embedded series' ids) and split."""
        if config.embedding:
            prep.task.series = prep.ids
        return {"normalizer.json": prep.normalizer}, {"task": prep.task.to_dict(), "split": asdict(prep.split)}

    def load(self, run_dir, config: dict) -> tuple[Forecaster, ForecastTask]:
        if isinstance(config.get("model"), dict) and "scaling" not in config["model"]:
            config = {**config, "model": {**LEGACY_MODEL, **config["model"]}}  # a run from before scaling
        model_config = model_from(self, run_dir, config)
        normalizer = from_dict(Normalizer, read_json(run_dir / "normalizer.json"), str(run_dir / "normalizer.json"))
        if len(normalizer.columns) != model_config.inputs or len(normalizer.mean) != len(normalizer.columns) or \
                len(normalizer.std) != len(normalizer.columns):
            raise DataError(f"{run_dir / 'normalizer.json'}: expected columns, mean and std of "
                            f"{model_config.inputs} entries each (config.json's model.inputs), found "
                            f"{len(normalizer.columns)}, {len(normalizer.mean)}, {len(normalizer.std)}")
        number = (int, float)
        task = ForecastTask(task_field(config, run_dir, "season", int), task_field(config, run_dir, "scale", number),
                            task_field(config, run_dir, "seasonal_scale", number),
                            task_field(config, run_dir, "series", list, []))
        if model_config.embedding and len(task.series) != model_config.num_series:
            raise DataError(f"{run_dir / 'config.json'}: task.series: expected the ids of the "
                            f"{model_config.num_series} embedded series, found {len(task.series)}")
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
    (weights="last": weights.safetensors). No pickle, no user code. A run written before per-window scaling
    loads as scaling="global" without quantiles (what it was trained as)."""
    return driver.load_run(run_dir, weights, device, SPEC, LoadedForecaster)


def fit(run_dir, data: ForecastDataConfig, model_config: ForecastModelConfig | dict, train: TrainConfig,
        series: Series | Panel | None = None, overwrite: bool = False, callbacks=()) -> list[dict]:
    """Train a forecaster into RUN_DIR with the shared Trainer; returns its history (one dict per epoch)."""
    prep = prepare(data, series)
    return driver.fit(SPEC, run_dir, data, model_config, train, overwrite=overwrite, prepared=prep,
                      callbacks=callbacks)


def resume(run_dir, epochs: int | None = None, **train_changes) -> list[dict]:
    """Continue the run saved in RUN_DIR exactly where its last checkpoint stopped."""
    return driver.resume(run_dir, SPEC, epochs, **train_changes)


def evaluate(run: LoadedForecaster, parts=("valid", "test"), path=None) -> dict:
    """{part: metrics} of a trained run on the chronological parts of its data file (or of `path`, split and
    windowed the same way, normalised with the run's saved normaliser); parts with no window are left out."""
    data = run.data if path is None else replace(run.data, path=str(path))
    prep = prepare(data, normalizer=run.normalizer)
    out = {}
    for part in parts:
        if part in prep.windows:
            out[part] = evaluate_batches(run.model, prep.task, prep.windows[part].batches(256, False))
            out[part]["windows"] = float(len(prep.windows[part]))
    return out


# ---- forecasting whole series ---------------------------------------------------------------------------------


def forecast_panel(run: LoadedForecaster, panel: Panel, horizon: int | None = None, ends=None) -> np.ndarray:
    """(S, horizon, Q) forecasts after the end of every series of `panel` (or after row `ends[i]` of series i),
    in the data's units; Q = the run's quantile levels (1: a point forecast). A series shorter than the window
    is left-padded with its first value."""
    model, W = run.model.eval(), run.data.window
    horizon = horizon or model.config.horizon
    m = model.config.season if model.config.features else run.task.season
    index = {sid: k for k, sid in enumerate(run.task.series)}
    device = next(model.parameters()).device
    windows, starts, sids = [], [], []
    for i, v in enumerate(panel.values):
        n = len(v) if ends is None else int(ends[i])
        w = v[max(0, n - W): n]
        if len(w) < W:
            w = np.concatenate([np.repeat(w[:1], W - len(w), 0), w])
        first = panel.times[i][0] if panel.times else None
        windows.append(w)
        starts.append((season_phase(first, panel.time_kind, m) + n - W) % m)
        sids.append(index.get(panel.ids[i], -1))
    out = []
    with torch.no_grad():
        for a in range(0, len(windows), 512):
            x = torch.as_tensor(np.stack(windows[a: a + 512]), dtype=torch.float32, device=device)
            start = torch.as_tensor(starts[a: a + 512], device=device)
            series = torch.as_tensor(sids[a: a + 512], device=device)
            out.append(model.predict(x, start, series, horizon).double().cpu().numpy())
    return np.concatenate(out)


def forecast_ensemble(runs: list[LoadedForecaster], panel: Panel, horizon: int | None = None, ends=None,
                      names: list[str] | None = None) -> np.ndarray:
    """The median over `runs` (e.g. seeds of one recipe; N-BEATS and ES-RNN ensemble so) of their
    forecast_panel forecasts, (S, horizon, Q), level by level: a median of monotone quantile vectors is
    monotone. Every run must have the first one's quantile levels and horizon (`names`: the runs, for the
    message)."""
    key = lambda run: (levels(run), run.model.config.horizon)  # noqa: E731
    for k, run in enumerate(runs[1:], 1):
        if key(run) != key(runs[0]):
            name = names[k] if names else f"run {k}"
            raise DataError(f"{name}: expected the quantile levels and horizon {key(runs[0])} of the first run, "
                            f"found {key(run)}")
    return np.median(np.stack([forecast_panel(run, panel, horizon, ends) for run in runs]), 0)


def predict(run: LoadedForecaster, series: Series, horizon: int | None = None) -> tuple[list[str], np.ndarray]:
    """The next `horizon` (default: the trained H) point forecasts of the target after the end of a one-series
    `series`, with their time stamps: (times, values (horizon,))."""
    w = run.data.window
    if len(series) < w:
        raise DataError(f"{series.path}: expected at least {w} rows (the model's window), found {len(series)}")
    panel = Panel(series.path, list(series.columns), [series.target], [series.values], [list(series._parsed)],
                  series.time_kind, [series.times], series)
    q = forecast_panel(run, panel, horizon)[0]
    return series.future_times(len(q)), q[:, point_column(run)]


def point_column(run: LoadedForecaster) -> int:
    c = run.model.config
    return c.point_index if c.quantiles else 0


def levels(run: LoadedForecaster) -> list[float]:
    return list(run.model.config.quantiles)


def future_stamps(panel: Panel, horizon: int) -> list[list[str]]:
    """Each series' next `horizon` time stamps (its most common step); a wide panel: step numbers N+1 ..."""
    if panel.time_kind == "index" or not panel.times:
        return [[str(len(v) + k) for k in range(1, horizon + 1)] for v in panel.values]
    return [future_times(t, panel.time_kind, horizon) for t in panel.times]


def holdout_scores(run: LoadedForecaster, part: str = "valid", path=None, season: int | None = None) -> dict:
    """M4's metrics (rnnkit.tasks.forecast_metrics.score) of one forecast per series (those too short to train
    on too: left-padded) from the end of the rows before `part` ("valid": the training part; "test": training
    + validation), scored on the first H rows of `part`; `season`: the m of MASE / Naive2 (default: the
    run's)."""
    data = run.data if path is None else replace(run.data, path=str(path))
    prep = prepare(data, normalizer=run.normalizer)
    H = run.model.config.horizon
    panel = prep.panel
    m = season or prep.season
    splits = [split_of(len(v), data) for v in panel.values]  # every series, the skipped short ones too
    chosen = [i for i, sp in enumerate(splits) if getattr(sp, part) >= H and sp.rows(part)[0] > m]
    if not chosen:
        raise DataError(f"{panel.path}: no series has {H} rows in its {part} part")
    ends = [splits[i].rows(part)[0] for i in chosen]
    sub = Panel(panel.path, panel.columns, [panel.ids[i] for i in chosen], [panel.values[i] for i in chosen],
                [panel.times[i] for i in chosen] if panel.times else None, panel.time_kind)
    q = forecast_panel(run, sub, H, ends)
    insample = [v[:e, 0] for v, e in zip(sub.values, ends)]
    actual = [v[e: e + H, 0] for v, e in zip(sub.values, ends)]
    point = q[..., point_column(run)]
    scores = m4.score(insample, point, actual, m, list(q) if levels(run) else None, levels(run))
    scores["series"] = float(len(chosen))
    return scores


def table(metrics: dict, season: int, label: str = "model") -> str:
    """Model and baselines side by side: one row per method, columns MAE, RMSE, sMAPE, MASE, sMASE(m)."""
    head = f"{'':<24}{'MAE':>10}{'RMSE':>10}{'sMAPE':>8}{'MASE':>9}{f'sMASE({season})':>11}"
    rows = [head]
    for prefix, name in (("", label), ("naive_", "naive"), ("snaive_", f"seasonal({season})")):
        m = metrics
        cells = [f"{m[prefix + k]:.4g}" if prefix + k in m else "-" for k in ("mae", "rmse", "smape", "mase", "smase")]
        rows.append(f"{name:<24}{cells[0]:>10}{cells[1]:>10}{cells[2]:>8}{cells[3]:>9}{cells[4]:>11}")
    if "coverage" in metrics:
        rows.append(f"interval coverage {metrics['coverage']:.3f}, scaled pinball {metrics['scaled_pinball']:.4g}")
    return "\n".join(rows)
