"""Forecasting data: series -> chronological parts -> forecast origins -> batches of windows.

Every series i (y_1 .. y_{N_i}, plus covariates) is split on its own: holdout="fraction" gives its first
`train_fraction` rows to training, the next `valid_fraction` to validation, the rest to test;
holdout="horizon" keeps its last H rows for validation (M4's convention) and trains on the rest. A forecast
origin t sees x_{t−W+1} .. x_t and is scored on y_{t+1} .. y_{t+H}; it belongs to the part that holds
y_{t+1} and y_{t+H}, and needs max(W, m) rows of history (m: the season). A series with no training origin
is skipped and reported by id. The normaliser (covariates; the target under scaling="global") and each
series' MASE scales are fitted on training rows only.

Training batches draw windows from every series: all origins of all series each epoch (shuffled), or, with
`windows_per_series` k, k origins of every series drawn anew each epoch (so a long series does not
outweigh a short one).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from rnnkit.config import opt
from rnnkit.data import DataError, PaddedBatches
from rnnkit.data.panel import FORMATS, Panel, read_panel
from rnnkit.data.series import Series, default_season
from rnnkit.tasks.forecast_metrics import naive_scale, seasonal_naive_forecast  # noqa: F401 (re-exported)
from rnnkit.train import atomic_write_json

HOLDOUTS = ("fraction", "horizon")


# ---- baselines and scales ------------------------------------------------------------------------------------


def naive_forecast(y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(len(origins), H): ŷ_{t+h} = y_t."""
    return np.repeat(np.asarray(y)[origins][:, None], horizon, axis=1)


def error_metrics(errors: np.ndarray, scale: float) -> dict:
    """MAE, RMSE and MASE (MAE / scale) of an array of forecast errors."""
    e = np.abs(np.asarray(errors, dtype=np.float64))
    mae = float(e.mean())
    return {"mae": mae, "rmse": float(np.sqrt((e ** 2).mean())), "mase": mae / scale}


def season_phase(first, kind: str, m: int) -> int:
    """The season position (0 .. m − 1) of a series' first time stamp: the calendar when the stamps have one
    (hour of day for m = 24, hour of week for 168, day of week for 7, month for 12, quarter for 4, ISO week
    for 52; an integer time modulo m), else 0 (the step index from the series' start)."""
    if m <= 1 or first is None:
        return 0
    if kind == "int":
        return int(first) % m
    if kind == "month":
        return {12: first % 12, 4: (first % 12) // 3}.get(m, 0)
    if kind in ("date", "datetime"):
        t = first
        hour = t.hour if isinstance(t, dt.datetime) else 0
        table = {24: hour, 168: t.weekday() * 24 + hour, 7: t.weekday(), 12: t.month - 1, 4: (t.month - 1) // 3,
                 52: (t.isocalendar()[1] - 1) % 52}
        return table.get(m, 0)
    return 0


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
    values: torch.Tensor  # (B, W, C) observations up to the origin, in the data's units
    future: torch.Tensor  # (B, H, C) the true future of every column (teacher forcing), data's units
    target: torch.Tensor  # (B, H) the target's true future in the data's units
    naive: torch.Tensor  # (B, H) naive forecasts
    snaive: torch.Tensor  # (B, H) seasonal-naive forecasts
    start: torch.Tensor  # (B,) int64 season position of the window's first step
    series: torch.Tensor  # (B,) int64 series index
    scale: torch.Tensor  # (B, 2) the series' in-sample naive scales s_1 and s_m (0: none)


@dataclass
class Pool:
    """Every kept series end to end: values (N, C), and per row its series index and season position."""

    values: np.ndarray
    series: np.ndarray  # (N,) int64
    phase: np.ndarray  # (N,) int64
    scales: np.ndarray  # (S, 2): s_1, s_m of each series' training rows


class Windows:
    """The examples of one part: global row indices of forecast origins; `collate` cuts their windows."""

    def __init__(self, pool: Pool, origins: np.ndarray, window: int, horizon: int, season: int):
        self.pool = pool
        self.v = torch.as_tensor(pool.values, dtype=torch.float32)
        self.origins = np.asarray(origins, dtype=np.int64)
        self.window, self.horizon, self.season = window, horizon, season

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, i: int) -> int:
        return int(self.origins[i])

    def collate(self, origins: list[int]) -> ForecastBatch:
        t = np.asarray(origins, dtype=np.int64)
        y = self.pool.values[:, 0]
        past = torch.as_tensor(t[:, None] + np.arange(1 - self.window, 1))  # (B, W)
        ahead = torch.as_tensor(t[:, None] + np.arange(1, self.horizon + 1))  # (B, H)
        f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        sid = self.pool.series[t]
        return ForecastBatch(self.v[past], self.v[ahead], f32(y[ahead.numpy()]),
                             f32(naive_forecast(y, t, self.horizon)),
                             f32(seasonal_naive_forecast(y, t, self.horizon, self.season)),
                             torch.as_tensor(self.pool.phase[t - self.window + 1]), torch.as_tensor(sid),
                             f32(self.pool.scales[sid]))

    def batches(self, batch_size: int, shuffle: bool, seed: int = 0, per_series: int = 0):
        if per_series:
            return SampledBatches(self, per_series, batch_size, seed)
        return PaddedBatches(self, self.collate, batch_size, shuffle=shuffle, seed=seed, length=lambda _: 1)


class SampledBatches:
    """Each epoch, k origins of every series (all of a series with fewer), drawn with rng(seed, epoch) and
    shuffled into batches: the Batches protocol of the Trainer (len, get(i, epoch))."""

    carries_state = False

    def __init__(self, windows: Windows, k: int, batch_size: int, seed: int):
        self.windows, self.k, self.batch_size, self.seed = windows, k, batch_size, seed
        sid = windows.pool.series[windows.origins]
        self.groups = [np.flatnonzero(sid == s) for s in np.unique(sid)]
        self.size = sum(min(len(g), k) for g in self.groups)
        self._cache: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        if self._cache is None or self._cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            picked = np.concatenate([g if len(g) <= self.k else rng.choice(g, self.k, replace=False)
                                     for g in self.groups])
            self._cache = (epoch, rng.permutation(picked))
        return self._cache[1]

    def get(self, i: int, epoch: int = 0) -> ForecastBatch:
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        chosen = self.order(epoch)[i * self.batch_size: (i + 1) * self.batch_size]
        return self.windows.collate(list(self.windows.origins[chosen]))

    def shard(self, rank: int, world_size: int):
        from rnnkit.data.batching import _ShardedBatches

        return _ShardedBatches(self, rank, world_size)


# ---- the data config and preparation --------------------------------------------------------------------------


@dataclass
class ForecastDataConfig:
    """Where the series come from, how they are split and windowed (saved as config.json["data"])."""

    path: str = field(metadata=opt("CSV file (.gz too): one series, long (unique_id, ds, y) or M4 wide",
                                   flag="--data"))
    target: str = field(default="y", metadata=opt("the column to forecast (one-series CSV, long format)"))
    covariates: list[str] = field(default_factory=list, metadata=opt("comma-separated extra input columns"))
    time: str | None = field(default=None, metadata=opt("the time column (none: the first column; long: ds)"))
    format: str = field(default="auto", metadata=opt(
        "auto (long when the header has unique_id, wide when it is V1,V2,...), csv, long or wide",
        choices=FORMATS))
    id_column: str = field(default="unique_id", metadata=opt("the series id column of the long format"))
    missing: str = field(default="error", metadata=opt(
        "empty/NA values and gaps in time: an error, or filled by linear interpolation",
        choices=("error", "interpolate")))
    window: int = field(default=24, metadata=opt("W: past steps the model sees"))
    horizon: int = field(default=1, metadata=opt("H: future steps to forecast"))
    season: int | None = field(default=None, metadata=opt(
        "period m of the seasonal-naive baseline, sMASE and the season features (none: from the time axis: 12 "
        "monthly, 7 daily, 24 hourly, else 1)"))
    holdout: str = field(default="fraction", metadata=opt(
        "fraction: each series split by the fractions; horizon: the last H of each series validate (M4)",
        choices=HOLDOUTS))
    train_fraction: float = field(default=0.7, metadata=opt("first part of the rows: training"))
    valid_fraction: float = field(default=0.1, metadata=opt("next part: validation; the rest: test"))
    batch_size: int = field(default=16, metadata=opt("windows per training batch"))
    windows_per_series: int = field(default=0, metadata=opt(
        "training windows drawn from every series each epoch (0: every window of every series)"))

    def __post_init__(self):
        self.covariates = list(self.covariates)
        for name in ("window", "horizon", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.season is not None and self.season <= 0:
            raise ValueError(f"season must be > 0, got {self.season}")
        if self.windows_per_series < 0:
            raise ValueError(f"windows_per_series must be >= 0, got {self.windows_per_series}")
        if self.holdout not in HOLDOUTS:
            raise ValueError(f"holdout must be one of {HOLDOUTS}, got {self.holdout!r}")
        Split.of(100, self.train_fraction, self.valid_fraction)  # validates the fractions

    def read(self, path=None) -> Series:
        """The one-series CSV (the format of runs before panels); see read_panel for every format."""
        panel = self.read_panel(path)
        if panel.series is None:
            raise DataError(f"{path or self.path}: expected a one-series CSV, found the {self.format} format")
        return panel.series

    def read_panel(self, path=None) -> Panel:
        return read_panel(path or self.path, self.format, self.target, self.covariates, self.time, self.id_column,
                          self.missing)


@dataclass
class Prepared:
    """The series split, normalised and cut into windows: everything fit/evaluate need."""

    panel: Panel
    split: Split  # of the one series (a panel: summed over the kept series)
    season: int
    normalizer: Normalizer
    task: object  # ForecastTask
    windows: dict  # part -> Windows (parts with no origin are absent)
    splits: list  # per kept series
    kept: list  # indices into panel.ids of the series that have a training window
    skipped: list  # ids of series too short for one training window
    pool: Pool | None = None

    @property
    def series(self) -> Series | None:
        return self.panel.series

    @property
    def ids(self) -> list[str]:
        return [self.panel.ids[i] for i in self.kept]


def split_of(n: int, data: ForecastDataConfig) -> Split:
    if data.holdout == "horizon":
        valid = min(data.horizon, n)
        return Split(n - valid, valid, 0)
    return Split.of(n, data.train_fraction, data.valid_fraction)


def panel_season(panel: Panel) -> int:
    if panel.series is not None:
        return default_season(panel.series)
    if panel.times and panel.times[0] and panel.time_kind != "index":
        probe = Series(panel.path, "ds", panel.columns, panel.stamps[0], panel.values[0], panel.time_kind,
                       list(panel.times[0]))
        return default_season(probe)
    return 1


def prepare(data: ForecastDataConfig, task_factory, panel: Panel | None = None,
            normalizer: Normalizer | None = None) -> Prepared:
    """Split every series chronologically, skip those with no training window, fit the normaliser and the MASE
    scales on training rows only, and cut the windows of every part."""
    if isinstance(panel, Series):
        s = panel
        panel = Panel(s.path, list(s.columns), [s.target], [s.values], [list(s._parsed)], s.time_kind, [s.times], s)
    panel = panel or data.read_panel()
    season = data.season or panel_season(panel)
    need = max(data.window, season) + data.horizon
    splits = [split_of(len(v), data) for v in panel.values]
    kept = [i for i, sp in enumerate(splits) if sp.train >= need]
    skipped = [panel.ids[i] for i, sp in enumerate(splits) if sp.train < need]
    if not kept:
        sp, n = splits[0], len(panel.values[0])
        what = f"{data.train_fraction:.0%} of {n} rows" if data.holdout == "fraction" else f"{n} rows − horizon"
        raise DataError(f"{panel.path}: expected at least {need} training rows (max(window {data.window}, season "
                        f"{season}) + horizon {data.horizon}), found {sp.train} ({what})"
                        + (f" in every one of the {len(panel.ids)} series" if len(panel.ids) > 1 else ""))
    train_rows = np.concatenate([panel.values[i][: splits[i].train] for i in kept])
    normalizer = normalizer or Normalizer.fit(train_rows, panel.columns)
    scales = np.array([[naive_scale(panel.values[i][: splits[i].train, 0], lag) for lag in (1, season)]
                       for i in kept])
    kinds = panel.time_kind
    phases, sids, origins = [], [], {"train": [], "valid": [], "test": []}
    offset = 0
    for k, i in enumerate(kept):
        n = len(panel.values[i])
        first = panel.times[i][0] if panel.times else None
        phases.append((season_phase(first, kinds, season) + np.arange(n)) % season)
        sids.append(np.full(n, k, dtype=np.int64))
        for part in origins:
            origins[part].append(offset + origins_for(splits[i].rows(part), data.window, data.horizon, season))
        offset += n
    pool = Pool(np.concatenate([panel.values[i] for i in kept]), np.concatenate(sids), np.concatenate(phases),
                scales)
    windows = {}
    for part, o in origins.items():
        o = np.concatenate(o)
        if len(o):
            windows[part] = Windows(pool, o, data.window, data.horizon, season)
    total = Split(*(sum(getattr(splits[i], f) for i in kept) for f in ("train", "valid", "test")))
    task = task_factory(season, float(scales[:, 0].mean()), float(scales[:, 1].mean()))
    return Prepared(panel, splits[kept[0]] if len(panel.ids) == 1 else total, season, normalizer, task, windows,
                    [splits[i] for i in kept], kept, skipped, pool)
