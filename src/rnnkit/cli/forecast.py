"""`rnnkit train forecast`, and `rnnkit predict` / `rnnkit eval` for forecasting runs.

Parses arguments and calls the library (`rnnkit.tasks.forecast`, `rnnkit.data.series`).
"""
from __future__ import annotations

import sys

from rnnkit.cli.common import add_train_command, positive_int, run_train


def register(train_sub, sub) -> None:
    from rnnkit.tasks.forecast import SPEC

    p = add_train_command(train_sub, SPEC, help="train a time-series forecaster (windows of W steps -> H steps)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch CPU threads (default 1: fastest for these small models)")
    p.set_defaults(run=run_train_forecast)


def run_train_forecast(args) -> int:
    import torch

    from rnnkit.tasks import forecast as fc

    torch.set_num_threads(args.threads)
    return run_train(args, fc.SPEC, _describe, lambda run_dir: _report(fc.load_run(run_dir)))


def _describe(prep) -> str:
    return (f"data: {prep.series.path}: {len(prep.series)} rows (train {prep.split.train}, valid {prep.split.valid},"
            f" test {prep.split.test}), target {prep.series.target!r}, covariates {prep.series.covariates}, "
            f"season {prep.season}")


def _report(run, path=None) -> int:
    """The model next to the naive and seasonal-naive baselines on the valid and test parts."""
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
