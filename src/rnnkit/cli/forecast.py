"""`rnnkit train forecast`, and `rnnkit predict` / `rnnkit eval` for forecasting runs.

Parses arguments and calls the library (`rnnkit.tasks.forecast`, `rnnkit.data.series`).
"""
from __future__ import annotations

import sys

from rnnkit.cli.common import add_train_options, cell_names, positive_int, print_history, train_config


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def register(train_sub, sub) -> None:
    p = train_sub.add_parser("forecast", help="train a time-series forecaster (windows of W steps -> H steps)")
    p.add_argument("--data", help="CSV file: a header, a time column, value columns (required unless --resume)")
    p.add_argument("--target", help="the column to forecast (required unless --resume)")
    p.add_argument("--covariates", type=_names, default=[], help="comma-separated extra input columns")
    p.add_argument("--time", default=None, help="the time column (default: the first column)")
    p.add_argument("--missing", choices=["error", "interpolate"], default="error",
                   help="empty/NA values: an error, or filled by linear interpolation")
    p.add_argument("--window", type=positive_int, default=24, help="W: past steps the model sees")
    p.add_argument("--horizon", type=positive_int, default=1, help="H: future steps to forecast")
    p.add_argument("--strategy", choices=["direct", "autoregressive"], default="direct",
                   help="direct: one head emits H values; autoregressive: predictions fed back for H steps")
    p.add_argument("--season", type=positive_int, default=None,
                   help="period m of the seasonal-naive baseline and sMASE (default: from the time axis: 12 for "
                        "monthly, 7 daily, 24 hourly, else 1)")
    p.add_argument("--train-fraction", type=float, default=0.7, help="first part of the rows: training")
    p.add_argument("--valid-fraction", type=float, default=0.1, help="next part: validation; the rest: test")
    p.add_argument("--cell", choices=cell_names(), default="lstm")
    p.add_argument("--layers", type=positive_int, default=1)
    p.add_argument("--hidden", type=positive_int, default=32)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch CPU threads (default 1: fastest for these small models)")
    add_train_options(p, epochs=50, lr=3e-3, clip=1.0, batch_size=16, out="runs/forecast",
                      clip_help="max gradient norm (loss: mean squared error of normalised values)")
    p.set_defaults(run=run_train_forecast)


def run_train_forecast(args) -> int:
    import torch

    from rnnkit.cli.common import UsageError
    from rnnkit.tasks import forecast as fc

    torch.set_num_threads(args.threads)
    if args.resume:
        print_history(fc.resume(args.resume))
        return _report(fc.load_run(args.resume))
    if not args.data or not args.target:
        raise UsageError("rnnkit train forecast: error: --data and --target are required")
    data = fc.ForecastDataConfig(path=args.data, target=args.target, covariates=args.covariates, time=args.time,
                                 missing=args.missing, window=args.window, horizon=args.horizon,
                                 season=args.season, train_fraction=args.train_fraction,
                                 valid_fraction=args.valid_fraction, batch_size=args.batch_size)
    model = fc.ForecastModelConfig(strategy=args.strategy, cell=args.cell, layers=args.layers, hidden=args.hidden,
                                   dropout=args.dropout)
    series = data.read()
    prep = fc.prepare(data, series)  # checks the split before anything is printed or written
    print(f"data: {args.data}: {len(series)} rows (train {prep.split.train}, valid {prep.split.valid}, test "
          f"{prep.split.test}), target {series.target!r}, covariates {series.covariates}, season {prep.season}",
          file=sys.stderr)
    print_history(fc.fit(args.out, data, model, train_config(args), series))
    print(f"run saved in {args.out}", file=sys.stderr)
    return _report(fc.load_run(args.out))


def _report(run, path=None) -> int:
    from rnnkit.tasks import forecast as fc

    label = f"{run.model.config.cell} ({run.model.config.strategy})"
    for part, metrics in fc.evaluate(run, path=path).items():
        print(f"{part}: {int(metrics['windows'])} forecast origins x horizon {run.data.horizon}")
        print(fc.table(metrics, run.task.season, label))
    return 0


def add_predict_args(p) -> None:
    """`rnnkit predict RUN_DIR --input series.csv [--horizon H] [--output out.csv]`."""
    p.add_argument("--input", required=True, help="CSV with the run's time, target and covariate columns")
    p.add_argument("--horizon", type=positive_int, default=None,
                   help="steps to forecast after the last row (default: the trained horizon)")
    p.add_argument("--output", default=None, help="write the forecast CSV here instead of printing it")
    p.add_argument("--weights", choices=["best", "last"], default="best")


def predict(args) -> int:
    from rnnkit.data.series import write_series_csv
    from rnnkit.tasks import forecast as fc

    run = fc.load_run(args.run_dir, weights=args.weights)
    series = run.data.read(args.input)
    times, values = fc.predict(run, series, args.horizon)
    text = write_series_csv(args.output, series.time_column, times, {series.target: values})
    if args.output is None:
        sys.stdout.write(text)
    else:
        print(f"{len(times)} forecast values written to {args.output}", file=sys.stderr)
    return 0


def add_eval_args(p) -> None:
    """`rnnkit eval RUN_DIR [--data series.csv]`: model vs naive vs seasonal naive on the valid and test parts."""
    p.add_argument("--data", default=None, help="a CSV in the training format (default: the training file), "
                   "split with the run's fractions")


def evaluate(args) -> int:
    from rnnkit.tasks import forecast as fc

    return _report(fc.load_run(args.run_dir), args.data)
