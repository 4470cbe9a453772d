"""Yearly sunspots (1700-2008): an rnnkit forecaster vs. the naive and seasonal-naive (period 11) baselines.

Protocol (decided before looking at any test number):
  - chronological split 70 / 10 / 20 (216 / 31 / 62 years): the last 20% is the test part;
  - for each horizon H (1 and a multi-step one, default 5), a small grid (cell x window, and for H > 1 the
    direct and autoregressive strategies) is trained with 3 seeds; the best checkpoint of each run is picked
    by validation loss and the configuration by the median validation MASE: the validation part only;
  - the chosen configuration is then evaluated ONCE on the test part: MAE, RMSE, MASE (scale: in-sample
    one-step naive MAE of the training part) and sMASE(11), median over the 3 seeds, next to the naive and
    seasonal-naive baselines on exactly the same forecast origins and horizons (rnnkit.tasks.forecast.evaluate).

    python bench/forecast_sunspots.py --data ../shared/data/timeseries/sunspots_yearly.csv --threads 1
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time

import torch

from rnnkit.tasks import forecast as fc
from rnnkit.train import TrainConfig


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="sunspots_yearly.csv (columns YEAR, SUNACTIVITY)")
    p.add_argument("--horizons", default="1,5", help="comma-separated forecast horizons")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--cells", default="lstm,gru")
    p.add_argument("--windows", default="11,22")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--season", type=int, default=11)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write every number to this file")
    return p.parse_args(argv)


def run_config(args, horizon: int, strategy: str, cell: str, window: int, seed: int, out_dir: str) -> dict:
    data = fc.ForecastDataConfig(path=args.data, target="SUNACTIVITY", window=window, horizon=horizon,
                                 season=args.season, batch_size=args.batch_size)
    # the model this benchmark was measured with (before per-window scaling and quantiles became the defaults)
    model = fc.ForecastModelConfig(strategy=strategy, cell=cell, hidden=args.hidden, scaling="global", quantiles=[],
                                   season_features=False, highway=False)
    train = TrainConfig(epochs=args.epochs, optimizer="adam", lr=args.lr, clip=1.0, seed=seed, progress=False,
                        tensorboard=False)
    run_dir = f"{out_dir}/h{horizon}-{strategy}-{cell}-w{window}-s{seed}"
    fc.fit(run_dir, data, model, train, overwrite=True)
    return fc.evaluate(fc.load_run(run_dir))  # best checkpoint by validation loss


def median(results: list[dict], part: str, key: str) -> float:
    return statistics.median(r[part][key] for r in results)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    report = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out_dir:
        for horizon in [int(h) for h in args.horizons.split(",")]:
            strategies = ["direct"] if horizon == 1 else ["direct", "autoregressive"]
            grid = {}
            for strategy, cell, window in itertools.product(strategies, args.cells.split(","),
                                                            [int(w) for w in args.windows.split(",")]):
                results = [run_config(args, horizon, strategy, cell, window, s, out_dir) for s in seeds]
                grid[(strategy, cell, window)] = results
                print(f"H={horizon} {strategy:<14} {cell:<4} W={window:<3} valid MASE (median of {len(seeds)}): "
                      f"{median(results, 'valid', 'mase'):.3f}  [{time.perf_counter() - start:.0f} s]", flush=True)
            best = min(grid, key=lambda k: median(grid[k], "valid", "mase"))
            report[horizon] = summarize(best, grid[best], horizon, args.season)
    print_tables(report, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({str(h): r for h, r in report.items()}, f, indent=2)
    return 0


def summarize(best: tuple, results: list[dict], horizon: int, season: int) -> dict:
    strategy, cell, window = best
    out = {"strategy": strategy, "cell": cell, "window": window, "horizon": horizon, "season": season,
           "test_windows": int(results[0]["test"]["windows"])}
    for part in ("valid", "test"):
        out[part] = {k: median(results, part, k) for k in results[0][part] if k != "windows"}
        out[part + "_per_seed_mase"] = [r[part]["mase"] for r in results]
    return out


def print_tables(report: dict, args) -> None:
    print(f"\nyearly sunspots, test = last 20% ({args.data}); median of seeds {args.seeds}; torch threads "
          f"{args.threads}")
    print("| H | method | MAE | RMSE | MASE | sMASE(11) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for h, r in report.items():
        t = r["test"]
        label = f"{r['cell']} {r['strategy']} W={r['window']}"
        for prefix, name in (("", label), ("naive_", "naive"), ("snaive_", f"seasonal naive ({r['season']})")):
            print(f"| {h} | {name} | {t[prefix + 'mae']:.2f} | {t[prefix + 'rmse']:.2f} | "
                  f"{t[prefix + 'mase']:.3f} | {t[prefix + 'smase']:.3f} |")
        verdict = "beats" if t["mase"] < t["snaive_mase"] else "does NOT beat"
        print(f"<!-- H={h}: model {verdict} seasonal naive on test MASE ({t['mase']:.3f} vs "
              f"{t['snaive_mase']:.3f}); per-seed test MASE {[round(x, 3) for x in r['test_per_seed_mase']]}; "
              f"valid MASE {r['valid']['mase']:.3f} -->")


if __name__ == "__main__":
    raise SystemExit(main())
