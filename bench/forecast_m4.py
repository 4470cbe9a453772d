"""M4 Hourly and Weekly: one global rnnkit forecaster vs seasonal naive, Naive2, ETS, Theta and NeuralForecast's
LSTM, all in one run; plus the co2 dev check (statsmodels' bundled data) of the default options.

Protocol: validation = the last H values of every training series (H = 48 hourly, 13 weekly); every method
sees only the values before them. M4's metrics (rnnkit.tasks.forecast_metrics): sMAPE, MASE (in-sample
seasonal-naive scale, m = 24 hourly, m = 1 weekly as M4 scores it), OWA vs Naive2, and for the quantile
forecasts the coverage and MSIS of the 80% interval (quantiles 0.1 / 0.9; MSIS with α = 0.2). ETS and Theta
come from statsforecast (AutoETS, AutoTheta; bench-only dependencies), NeuralForecast's LSTM is trained with
the same horizon, input window and a comparable wall-time budget (max_steps).

    flock /tmp/rnnkit-bench.lock python bench/forecast_m4.py --threads 2 --json m4.json
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext

import numpy as np
import torch

from rnnkit.data.panel import Panel, read_wide
from rnnkit.tasks import forecast as fc
from rnnkit.tasks import forecast_metrics as m4
from rnnkit.train import TrainConfig

DATA = "/work/shared/data/m4"
FREQS = {  # H, m of MASE / Naive2 (M4's), m of the seasonal-naive row; rnnkit's recipe (each a command-line option)
    "hourly": dict(file="Hourly-train.csv.gz", h=48, m=24, season=24, window=336, patch=24, model_season=24,
                   hidden=128, transform="log", ensemble=6, jobs=2, cell="gru", lr_schedule="plateau",
                   early_stopping=10, per_series=32),
    "weekly": dict(file="Weekly-train.csv.gz", h=13, m=1, season=52, window=52, patch=1, model_season=1,
                   hidden=64, transform="none", ensemble=1, jobs=1, cell="lstm", lr_schedule="none", early_stopping=0,
                   per_series=16),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--freqs", default="hourly,weekly")
    p.add_argument("--rows", default="snaive,naive2,ets,theta,nf_lstm,rnnkit", help="methods to run")
    p.add_argument("--minutes", default="5,3", help="training budget of each neural model, per frequency")
    p.add_argument("--epochs", type=int, default=200, help="rnnkit epochs cap (the budget usually stops first)")
    p.add_argument("--hidden", type=int, default=0, help="rnnkit's hidden units (0: the frequency's, FREQS)")
    p.add_argument("--cell", default=None, help="rnnkit's cell (default: the frequency's, FREQS)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--per-series", type=int, default=0,
                   help="rnnkit windows per series per epoch (0: the frequency's, FREQS)")
    p.add_argument("--embedding", type=int, default=0)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--window", type=int, default=0, help="rnnkit's window (0: the frequency's, FREQS)")
    p.add_argument("--patch", type=int, default=0, help="rnnkit's patch (0: the frequency's, FREQS)")
    p.add_argument("--ensemble", type=int, default=0,
                   help="rnnkit runs (seeds), the median of their quantiles (0: the frequency's, FREQS)")
    p.add_argument("--lr-schedule", default=None, help="rnnkit's (default: the frequency's, FREQS)")
    p.add_argument("--lr-patience", type=int, default=1)
    p.add_argument("--early-stopping", type=int, default=None,
                   help="rnnkit: stop after N epochs without improvement (default: the frequency's, FREQS)")
    p.add_argument("--scaling", default="revin")
    p.add_argument("--transform", default=None, help="rnnkit's transform (default: the frequency's, FREQS)")
    p.add_argument("--difference", type=int, default=0, help="rnnkit: model the lag-k differences (0: none)")
    p.add_argument("--nf-steps", type=int, default=0, help="NeuralForecast max_steps (0: from the budget)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--jobs", type=int, default=0,
                   help="rnnkit ensemble members trained at once, in processes (0: the frequency's, FREQS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--co2", action="store_true", help="also the co2 dev check")
    p.add_argument("--co2-only", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--limit", type=int, default=0, help="only the first N series (a smoke test)")
    return p.parse_args(argv)


def holdout(panel: Panel, h: int) -> tuple[list, list]:
    return [v[:-h, 0] for v in panel.values], [v[-h:, 0] for v in panel.values]


def row(name, insample, forecasts, actuals, m, seconds, quantiles=None, levels=()) -> dict:
    s = m4.score(insample, forecasts, actuals, m, quantiles, levels)
    s.update(method=name, seconds=seconds)
    return s


def baselines(freq, panel, cfg, rows) -> list[dict]:
    x, y = holdout(panel, cfg["h"])
    out = []
    if "snaive" in rows:
        t = time.time()
        f = [m4.seasonal_naive(v, cfg["h"], cfg["season"] if len(v) >= cfg["season"] else 1) for v in x]
        out.append(row(f"seasonal naive ({cfg['season']})", x, f, y, cfg["m"], time.time() - t))
    if "naive2" in rows:
        t = time.time()
        out.append(row("Naive2", x, [m4.naive2(v, cfg["h"], cfg["m"]) for v in x], y, cfg["m"], time.time() - t))
    for name in ("ets", "theta"):
        if name in rows:
            out.append(statsforecast_row(name, x, y, cfg))
    return out


def crosscheck(x, m) -> dict:
    """rnnkit's decomposition indices and ACF against statsmodels' (seasonal_decompose, acf) on every series."""
    from statsmodels.tsa.seasonal import seasonal_decompose
    from statsmodels.tsa.stattools import acf

    out = {"indices": 0.0, "acf": 0.0, "seasonal": 0}
    for v in x:
        ref = seasonal_decompose(v, model="multiplicative", period=m).seasonal[:m]
        out["indices"] = max(out["indices"], float(np.abs(m4.seasonal_indices(v, m) - ref).max()))
        r = acf(v, nlags=m, fft=False)[1:]
        out["acf"] = max(out["acf"], max(abs(m4.acf(v, k) - r[k - 1]) for k in range(1, m + 1)))
        out["seasonal"] += int(m4.is_seasonal(v, m))
    return out


def long_frame(ids, x):
    import pandas as pd

    return pd.DataFrame({"unique_id": np.repeat(ids, [len(v) for v in x]),
                         "ds": np.concatenate([np.arange(1, len(v) + 1) for v in x]), "y": np.concatenate(x)})


def statsforecast_row(name, x, y, cfg) -> dict:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta

    ids = [f"s{i}" for i in range(len(x))]
    season = cfg["m"] if cfg["m"] > 1 else 1
    model = AutoETS(season_length=season) if name == "ets" else AutoTheta(season_length=season)
    t = time.time()
    sf = StatsForecast(models=[model], freq=1, n_jobs=1)
    fcst = sf.forecast(df=long_frame(ids, x), h=cfg["h"])
    col = [c for c in fcst.columns if c not in ("unique_id", "ds")][0]
    fcst = fcst.reset_index() if "unique_id" not in fcst.columns else fcst
    by = {k: g[col].to_numpy() for k, g in fcst.groupby("unique_id")}
    return row(f"{'ETS (AutoETS)' if name == 'ets' else 'Theta (AutoTheta)'}, statsforecast", x,
               [by[i] for i in ids], y, cfg["m"], time.time() - t)


def nf_lstm_row(x, y, cfg, args, budget_steps, minutes) -> dict:
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MQLoss
    from neuralforecast.models import LSTM

    ids = [f"s{i}" for i in range(len(x))]
    # NeuralForecast's own defaults (2 x 128 encoder and decoder, robust scaler, lr 1e-3, 32 series x 128
    # windows per step) with the same horizon, input window, quantile levels and wall-time budget
    model = LSTM(h=cfg["h"], input_size=cfg["window"], max_steps=budget_steps, loss=MQLoss(level=[80]),
                 random_seed=args.seed, enable_progress_bar=False, enable_model_summary=False, logger=False,
                 enable_checkpointing=False, accelerator="cpu", max_time={"minutes": minutes})
    nf = NeuralForecast(models=[model], freq=1)
    t = time.time()
    nf.fit(df=long_frame(ids, x))
    pred = nf.predict()
    pred = pred.reset_index() if "unique_id" not in pred.columns else pred
    seconds = time.time() - t
    cols = {c: c for c in pred.columns if c.startswith("LSTM")}
    med = next(c for c in cols if "median" in c)
    lo, hi = next(c for c in cols if "lo-80" in c), next(c for c in cols if "hi-80" in c)
    g = {k: v for k, v in pred.groupby("unique_id")}
    point = [g[i][med].to_numpy() for i in ids]
    q = [np.stack([g[i][lo].to_numpy(), g[i][med].to_numpy(), g[i][hi].to_numpy()], 1) for i in ids]
    return row(f"NeuralForecast LSTM (<= {budget_steps} steps or {minutes:g} min, MQLoss 80%)", x, point, y,
               cfg["m"], seconds, q,
               [0.1, 0.5, 0.9])


def write_m4(path, ids, series) -> str:
    """A wide M4 file (ragged rows) of the target columns `series`."""
    width = max(len(v) for v in series)
    with open(path, "w") as f:
        f.write(",".join(f'"V{i}"' for i in range(1, width + 2)) + "\n")
        for sid, v in zip(ids, series):
            f.write(",".join([f'"{sid}"', *(f'"{x:.10g}"' for x in v), *['""'] * (width - len(v))]) + "\n")
    return path


def fit_member(run_dir, data, model, train, threads) -> tuple[int, int]:
    """One ensemble member (in a worker process with --jobs): (epochs run, best epoch)."""
    torch.set_num_threads(threads)
    history = fc.fit(run_dir, data, model, train)
    return len(history), min(history, key=lambda e: e["valid"]["loss"])["epoch"]


def rnnkit_row(freq, cfg, args, tmp, minutes, panel) -> dict:
    """Trained on every series less its last 2H values; the H before the last H (the previous fold) validate
    (best epoch, lr schedule, and every option tuned on them); then one forecast per series from the end of
    the training series (all but the last H) is scored on the last H, the reported validation, which no part
    of training or tuning saw. With --ensemble k: k runs (seeds seed .. seed + k − 1; each stops early or
    at its share of the budget left: minutes left / runs left), the median of their quantiles; with --jobs J,
    J runs at a time in worker processes, --threads // J threads each."""
    h = cfg["h"]
    x, y = holdout(panel, h)
    path = write_m4(f"{tmp}/{freq}-train.csv", panel.ids, x)
    window, patch, hidden = args.window or cfg["window"], args.patch or cfg["patch"], args.hidden or cfg["hidden"]
    transform, k = args.transform or cfg["transform"], args.ensemble or cfg["ensemble"]
    schedule, cell = args.lr_schedule or cfg["lr_schedule"], args.cell or cfg["cell"]
    patience = cfg["early_stopping"] if args.early_stopping is None else args.early_stopping
    data = fc.ForecastDataConfig(path=path, format="wide", window=window, horizon=h, season=cfg["model_season"],
                                 holdout="horizon", batch_size=args.batch_size,
                                 windows_per_series=args.per_series or cfg["per_series"])
    model = fc.ForecastModelConfig(cell=cell, hidden=hidden, layers=args.layers, dropout=args.dropout,
                                   scaling=args.scaling, transform=transform, embedding=args.embedding, patch=patch,
                                   difference=args.difference)
    t = time.time()
    cut = Panel(path, ["y"], panel.ids, [v[:, None] for v in x])
    jobs = max(1, min(args.jobs or cfg["jobs"], k))
    waves = [range(w, min(w + jobs, k)) for w in range(0, k, jobs)]
    epochs = []
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) if jobs > 1 else nullcontext() as pool:
        for w, wave in enumerate(waves):  # each run stops early or at its share of the budget left
            left = minutes - (time.time() - t) / 60
            members = [(f"{tmp}/{freq}-{j}", data, model,
                        TrainConfig(epochs=args.epochs, optimizer="adam", lr=args.lr, clip=1.0, seed=args.seed + j,
                                    progress=False, tensorboard=False, max_minutes=max(left / (len(waves) - w), 0.05),
                                    quiet=True, lr_schedule=schedule, lr_factor=0.5, lr_patience=args.lr_patience,
                                    early_stopping=patience), max(1, args.threads // jobs)) for j in wave]
            epochs += pool.map(fit_member, *zip(*members)) if pool else [fit_member(*m) for m in members]
    runs = [fc.load_run(f"{tmp}/{freq}-{j}") for j in range(k)]
    seconds = time.time() - t
    levels, point = fc.levels(runs[0]), fc.point_column(runs[0])

    parts = {False: (x, y), True: ([v[:-h] for v in x], [v[-h:] for v in x])}  # validation; previous fold
    fold_ends = [len(v) - h for v in x]

    def scores(q, fold: bool = False):
        insample, actual = parts[fold]
        return m4.score(insample, q[..., point], actual, cfg["m"], list(q) if levels else None, levels)

    now = fc.forecast_ensemble(runs, cut, h)  # from the end of x; and from h steps before it
    before = fc.forecast_ensemble(runs, cut, h, fold_ends)
    s, fold = scores(now), scores(before, fold=True)
    s["previous_fold"] = {key: fold[key] for key in ("smape", "mase", "owa", "coverage", "msis") if key in fold}
    if k > 1:  # information: each member alone, and the mean instead of the median of the members
        now_k = np.stack([fc.forecast_panel(run, cut, h) for run in runs])
        before_k = np.stack([fc.forecast_panel(run, cut, h, fold_ends) for run in runs])
        s["members_owa"] = [(scores(b, fold=True)["owa"], scores(n)["owa"]) for b, n in zip(before_k, now_k)]
        s["mean_ensemble_owa"] = (scores(before_k.mean(0), fold=True)["owa"], scores(now_k.mean(0))["owa"])
        print(f"members (previous fold, validation) OWA: {[(round(a, 3), round(b, 3)) for a, b in s['members_owa']]}"
              f"; mean of members: {tuple(round(v, 3) for v in s['mean_ensemble_owa'])}", flush=True)
    tag = (f"{transform}, " if transform != "none" else "") + (f"lag-{args.difference} differences, "
                                                               if args.difference else "")
    s.update(method=f"rnnkit {cell} {args.layers}x{hidden} ({tag}{args.scaling}, W {window}, P {patch}, "
             f"{k} run{'s' if k > 1 else ''}{f' ({jobs} at a time)' if jobs > 1 else ''} in {minutes:g} min, "
             f"epochs/best {epochs})", seconds=seconds)
    return s


def co2_check(args, tmp) -> list[dict]:
    """Monthly mean co2 (Mauna Loa, statsmodels), default options vs seasonal naive on the last 20%."""
    import statsmodels.datasets.co2 as co2

    frame = co2.load_pandas().data["co2"].resample("MS").mean().interpolate()
    path = f"{tmp}/co2.csv"
    with open(path, "w") as f:
        f.write("month,co2\n" + "".join(f"{d:%Y-%m},{v:.4f}\n" for d, v in frame.items()))
    out = []
    for extra in ({}, {"horizon": 12}):
        data = fc.ForecastDataConfig(path=path, target="co2", **extra)
        t = time.time()
        fc.fit(f"{tmp}/co2-{len(extra)}", data, {}, fc.TrainForecaster(progress=False, tensorboard=False, quiet=True))
        m = fc.evaluate(fc.load_run(f"{tmp}/co2-{len(extra)}"), parts=("test",))["test"]
        out.append({"method": f"co2 monthly, defaults{' --horizon 12' if extra else ''}", "mae": m["mae"],
                    "snaive_mae": m["snaive_mae"], "naive_mae": m["naive_mae"], "mase": m["mase"],
                    "snaive_mase": m["snaive_mase"], "coverage": m.get("coverage"), "seconds": time.time() - t,
                    "rows": len(frame)})
    return out


def show(r: dict) -> str:
    keys = ("smape", "mase", "owa", "coverage", "msis", "seconds")
    fold = r.get("previous_fold")
    tail = f"| previous fold: owa {fold['owa']:.3f} coverage {fold.get('coverage', float('nan')):.3f}" if fold else ""
    return f"{r['method']:<70}" + "".join(f"{k} {r[k]:8.3f}  " for k in keys if r.get(k) is not None) + tail


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    rows = args.rows.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.co2 or args.co2_only:
            results["co2"] = co2_check(args, tmp)
            for r in results["co2"]:
                print(r, flush=True)
        budgets = [float(v) for v in args.minutes.split(",")]
        for k, freq in enumerate([] if args.co2_only else args.freqs.split(",")):
            cfg, minutes = FREQS[freq], budgets[min(k, len(budgets) - 1)]
            panel = read_wide(f"{DATA}/{cfg['file']}")
            if args.limit:
                panel.ids, panel.values = panel.ids[: args.limit], panel.values[: args.limit]
            print(f"{freq}: {len(panel)} series, H {cfg['h']}, MASE/Naive2 m {cfg['m']}", flush=True)
            if cfg["m"] > 1 and "naive2" in rows:
                check = crosscheck(holdout(panel, cfg["h"])[0], cfg["m"])
                print(f"Naive2 cross-check vs statsmodels: max |indices diff| {check['indices']:.3g}, max |acf "
                      f"diff| {check['acf']:.3g}; {check['seasonal']} of {len(panel)} series seasonal", flush=True)
                results[f"{freq}_naive2_check"] = check
            out = baselines(freq, panel, cfg, rows)
            for r in out:
                print(show(r), flush=True)
            if "rnnkit" in rows:
                r = rnnkit_row(freq, cfg, args, tmp, minutes, panel)
                out.append(r)
                print(show(r), flush=True)
            if "nf_lstm" in rows:
                x, y = holdout(panel, cfg["h"])
                r = nf_lstm_row(x, y, cfg, args, args.nf_steps or 100000, minutes)
                out.append(r)
                print(show(r), flush=True)
            results[freq] = out
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
