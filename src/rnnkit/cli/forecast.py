"""`rnnkit train forecast`, and `rnnkit predict` / `rnnkit eval` for forecasting runs.

Parses arguments and calls the library (`rnnkit.tasks.forecast`, `rnnkit.data.series`).
"""
from __future__ import annotations

import sys
from dataclasses import replace

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
    panel = prep.panel
    if panel.series is not None:
        return (f"data: {panel.path}: {len(panel.values[0])} rows (train {prep.split.train}, valid "
                f"{prep.split.valid}, test {prep.split.test}), target {panel.columns[0]!r}, covariates "
                f"{panel.columns[1:]}, season {prep.season}")
    line = (f"data: {panel.path}: {len(prep.kept)} series, {sum(len(v) for v in panel.values)} rows (train "
            f"{prep.split.train}, valid {prep.split.valid}, test {prep.split.test}), columns {panel.columns}, "
            f"season {prep.season}")
    if prep.skipped:
        shown = ", ".join(prep.skipped[:10]) + (f", ... ({len(prep.skipped)} in all)" if len(prep.skipped) > 10 else "")
        line += f"\nskipped (too short for one training window): {shown}"
    return line


def _report(run, path=None) -> int:
    """The model next to the naive and seasonal-naive baselines on the valid and test parts, then M4's
    metrics of one forecast per series from the end of its training part."""
    from rnnkit.data import DataError
    from rnnkit.tasks import forecast as fc

    label = f"{run.model.config.cell} ({run.model.config.strategy})"
    for part, metrics in fc.evaluate(run, path=path).items():
        print(f"{part}: {int(metrics['windows'])} forecast origins x horizon {run.data.horizon}")
        print(fc.table(metrics, run.task.season, label))
    try:
        s = fc.holdout_scores(run, "valid", path)
    except DataError:
        return 0  # no series has a whole horizon of validation rows
    extra = "".join(f", {k} {s[k]:.4g}" for k in ("coverage", "msis", "scaled_crps") if k in s)
    print(f"valid, one forecast per series ({int(s['series'])} series, M4 definitions, m = {run.task.season}): "
          f"sMAPE {s['smape']:.4g}, MASE {s['mase']:.4g}, OWA {s['owa']:.4g} (Naive2 sMAPE "
          f"{s['naive2_smape']:.4g}, MASE {s['naive2_mase']:.4g}){extra}")
    return 0


def add_predict_args(p) -> None:
    """`rnnkit predict RUN_DIR --input FILE [--format wide|long|csv] [--horizon H] [--out FILE]`."""
    p.add_argument("--input", required=True, help="the series to forecast, in the run's format (a one-series CSV "
                   "with its columns, long unique_id/ds/y, or M4 wide)")
    p.add_argument("--format", choices=["auto", "csv", "long", "wide"], default=None,
                   help="the input's format (default: the run's --format); the output is written the same way")
    p.add_argument("--horizon", type=positive_int, default=None,
                   help="steps to forecast after the last row (default: the trained horizon)")
    p.add_argument("--out", "--output", dest="output", default=None,
                   help="write the forecast CSV here instead of printing it (wide: point forecasts; each "
                   "quantile level τ also goes to OUT with .qτ before the suffix)")
    p.add_argument("--weights", choices=["best", "last"], default="best")
    p.add_argument("--ensemble", default=None, metavar="RUN_DIR,...",
                   help="more runs of the same horizon and quantiles (e.g. other seeds): the forecast is the median "
                   "over RUN_DIR and these, level by level")


def predict(args) -> int:
    from pathlib import Path

    from rnnkit.data import DataError
    from rnnkit.data.panel import detect_format, write_long, write_wide
    from rnnkit.data.series import write_series_csv
    from rnnkit.tasks import forecast as fc

    run = fc.load_run(args.run_dir, weights=args.weights)
    data = run.data
    fmt = args.format or data.format
    fmt = detect_format(args.input) if fmt == "auto" else fmt
    panel = replace(data, format=fmt).read_panel(args.input)
    if panel.series is not None and len(panel.values[0]) < data.window:
        raise DataError(f"{args.input}: expected at least {data.window} rows (the model's window), found "
                        f"{len(panel.values[0])}")
    others = [d for d in (args.ensemble or "").split(",") if d]
    runs = [run, *(fc.load_run(d, weights=args.weights) for d in others)]
    q = fc.forecast_ensemble(runs, panel, args.horizon, names=[str(args.run_dir), *others])  # (S, H, Q)
    point, levels = q[..., fc.point_column(run)], fc.levels(run)
    names = {f"{panel.columns[0]}_q{t:g}": [row[:, j] for row in q] for j, t in enumerate(levels)}
    stamps = fc.future_stamps(panel, q.shape[1])
    if fmt == "wide":
        text = write_wide(args.output, panel.ids, point)
        if args.output is not None:
            out = Path(args.output)
            for j, t in enumerate(levels):
                write_wide(out.with_name(f"{out.stem}.q{t:g}{out.suffix}"), panel.ids, q[..., j])
    elif fmt == "long":
        text = write_long(args.output, panel.ids, stamps, {panel.columns[0]: list(point), **names})
    else:
        text = write_series_csv(args.output, panel.series.time_column, stamps[0],
                                {panel.columns[0]: point[0], **{k: v[0] for k, v in names.items()}})
    if args.output is None:
        sys.stdout.write(text)
    else:
        print(f"{len(panel.ids)} series x {q.shape[1]} forecast steps written to {args.output}", file=sys.stderr)
    return 0


def add_eval_args(p) -> None:
    """`rnnkit eval RUN_DIR [--data series.csv]`: model vs naive vs seasonal naive on the valid and test parts."""
    p.add_argument("--data", default=None, help="a CSV in the training format (default: the training file), "
                   "split with the run's fractions")


def evaluate(args) -> int:
    from rnnkit.tasks import forecast as fc

    return _report(fc.load_run(args.run_dir), args.data)
