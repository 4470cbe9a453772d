"""Long-range bench: the lectures' claim on the adding problem (and copy memory), measured.

Adding problem at T = 150 and 300, 100 hidden units: tanh RNN, IRNN (ReLU + identity init, Le et al. 2015),
LSTM (forget bias 1) and GRU, each with and without gradient clipping, the same budget of updates, several
seeds. Expected: the tanh RNN stays at the 1/6 baseline; IRNN and LSTM go well below it. Prints one line per
run as it finishes (appended to --json as JSON lines, so a run that is cut short keeps what it measured),
then a markdown table: mean test MSE over seeds, each seed's, how many seeds beat 0.01, and the baseline.

    python bench/long_range.py --lengths 150 --updates 4000 --seeds 0 1 2 --jobs 2 --threads 1
    python bench/long_range.py --problem copy --lengths 100 --cells rnn-tanh lstm gru --clip 1
    python bench/long_range.py --lengths 1000 --cells mingru lstm gru --clip 1 --seeds 0 --updates 1000  # issue 16
    python bench/long_range.py --flow docs/img --lengths 150 --updates 2000   # gradient-flow plots only
    python bench/long_range.py --table runs.jsonl more.jsonl                   # the table of recorded runs
"""
from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

CELLS = ("rnn-tanh", "irnn", "lstm", "gru")
ORDER = CELLS + ("mingru", "minlstm")  # the table's row order (--cells takes any name of rnnkit.nn.CELLS)


def run_one(job: dict) -> dict:
    """Train one configuration; returns its record (test metric, validation curve, seconds)."""
    import torch

    from rnnkit.lab import LabDataConfig, LabModelConfig, fit
    from rnnkit.train import TrainConfig

    torch.set_num_threads(job["threads"])
    clip = job["clip"]
    epochs = job["updates"] // job["batches_per_epoch"]
    train = TrainConfig(epochs=epochs, optimizer=job.get("optimizer", "adam"), lr=job["lr"],
                        momentum=job.get("momentum", 0.0), clip=clip if clip > 0 else 1.0,
                        clip_mode="norm" if clip > 0 else "none", seed=job["seed"], device=job["device"],
                        progress=False, tensorboard=False, log_every=0)
    data = LabDataConfig(job["problem"], length=job["length"], batch_size=job["batch_size"],
                         batches_per_epoch=job["batches_per_epoch"], valid_size=1000, test_size=2000,
                         seed=1000 + job["seed"])
    model = LabModelConfig(job["problem"], cell=job["cell"], hidden=job["hidden"])
    start = time.perf_counter()
    result = fit(job.get("run_dir"), data, model, train, diagnostics_every=job.get("diagnostics_every", 0),
                 overwrite=True)
    key = "mse" if job["problem"] == "adding" else "loss"
    curve = [round(h["valid"][key], 5) for h in result.history]
    return dict(job, test=result.test, baseline=result.baseline, valid_curve=curve,
                seconds=round(time.perf_counter() - start, 1))


def jobs_from(args) -> list[dict]:
    jobs = []
    for length, cell, clip, seed in itertools.product(args.lengths, args.cells, args.clip, args.seeds):
        lr = dict(args.lr_cell).get(cell, args.lr)
        jobs.append({"problem": args.problem, "length": length, "cell": cell, "clip": clip, "seed": seed, "lr": lr,
                     "updates": args.updates, "batches_per_epoch": args.batches_per_epoch, "hidden": args.hidden,
                     "batch_size": args.batch_size, "device": args.device, "threads": args.threads,
                     "optimizer": args.optimizer, "momentum": args.momentum})
    return jobs


def table(records: list[dict], problem: str) -> str:
    """Markdown: one row per (T, cell, clip), statistics over seeds."""
    key = "mse" if problem == "adding" else "loss"
    groups: dict[tuple, list[dict]] = {}
    for r in records:  # runs of one setting (optimizer, lr, budget included) share a row
        setting = (r.get("optimizer", "adam"), r["lr"], r.get("momentum", 0.0), r["updates"], r["batch_size"])
        groups.setdefault((r["length"], r["cell"], r["clip"]) + setting, []).append(r)
    head = (f"| T | cell | clip | lr | updates | seeds | mean test {key} | per seed | seeds < 0.01 | baseline "
            "| s/run |\n|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for (length, cell, clip, *_), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], ORDER.index(kv[0][1])
                                                                               if kv[0][1] in ORDER else 9, kv[0][2:])):
        rs = sorted(rs, key=lambda r: r["seed"])
        vals = [r["test"][key] for r in rs]
        opt, mom = rs[0].get("optimizer", "adam"), rs[0].get("momentum", 0.0)
        lr = f"{rs[0]['lr']:g}" if opt == "adam" else f"{opt} {rs[0]['lr']:g}" + (f" m{mom:g}" if mom else "")
        rows.append(f"| {length} | {cell} | {clip if clip > 0 else 'none'} | {lr} | {rs[0]['updates']} "
                    f"| {len(rs)} | {statistics.mean(vals):.4f} | {' '.join(f'{v:.4f}' for v in vals)} | "
                    f"{sum(v < 0.01 for v in vals)}/{len(vals)} | {rs[0]['baseline'][key]:.4f} | "
                    f"{statistics.mean(r['seconds'] for r in rs):.0f} |")
    return "\n".join(rows)


def flow_plots(args) -> None:
    """Train the tanh RNN and the LSTM with diagnostics, and plot their gradient flow side by side."""
    from rnnkit.report.plots import gradient_flow_comparison

    out = Path(args.flow)
    runs = {}
    for cell in ("rnn-tanh", "lstm"):
        job = jobs_from(argparse.Namespace(**{**vars(args), "cells": [cell], "clip": [args.clip[0]],
                                              "seeds": [args.seeds[0]], "lengths": [args.lengths[0]]}))[0]
        job["run_dir"] = str(Path(args.runs) / f"flow-{cell}")
        job["diagnostics_every"] = max(1, args.updates // 40)
        record = run_one(job)
        print(json.dumps(record), flush=True)
        runs[cell] = job["run_dir"]
    path = gradient_flow_comparison(runs, out / f"gradient_flow_T{args.lengths[0]}.png")
    print(f"wrote {path}")



def run_jobs(run_one, jobs: list[dict], processes: int, json_path: str | None) -> list[dict]:
    """Run `run_one(job)` for every job in a spawned pool (one fresh process per job), printing each record as a
    JSON line when it arrives and appending it to `json_path` if given; the records, in the order they finished."""
    records = []
    with mp.get_context("spawn").Pool(processes, maxtasksperchild=1) as pool:
        for record in pool.imap_unordered(run_one, jobs):
            records.append(record)
            line = json.dumps(record)
            print(line, flush=True)
            if json_path:
                with open(json_path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
    return records

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problem", choices=["adding", "copy"], default="adding")
    p.add_argument("--lengths", type=int, nargs="+", default=[150, 300])
    p.add_argument("--cells", nargs="+", default=list(CELLS))
    p.add_argument("--clip", type=float, nargs="+", default=[1.0, 0.0], help="max gradient norms; 0 = no clipping")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--updates", type=int, default=4000, help="optimizer updates per run (the same for every cell)")
    p.add_argument("--batches-per-epoch", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd", "rmsprop"])
    p.add_argument("--momentum", type=float, default=0.0, help="SGD / RMSprop momentum (0 = plain SGD)")
    p.add_argument("--lr", type=float, default=1e-3, help="the optimizer's learning rate")
    p.add_argument("--lr-cell", nargs="*", default=[], type=lambda s: (s.split("=")[0], float(s.split("=")[1])),
                   help="per-cell learning rates, e.g. irnn=1e-4")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    p.add_argument("--json", default=None, help="append one JSON line per finished run to this file")
    p.add_argument("--flow", default=None, help="only make the gradient-flow plots (tanh RNN vs LSTM) here")
    p.add_argument("--runs", default="runs/long_range", help="run directories of --flow")
    p.add_argument("--table", nargs="+", metavar="JSONL", help="only print the table of runs recorded by --json")
    args = p.parse_args(argv)
    if args.table:
        records = [json.loads(ln) for path in args.table for ln in Path(path).read_text().splitlines() if ln.strip()]
        print(table(records, records[0]["problem"]))
        return 0
    if args.flow:
        flow_plots(args)
        return 0
    jobs = jobs_from(args)
    print(f"{len(jobs)} runs, {args.jobs} at a time, {args.threads} thread(s) each, device {args.device}",
          file=sys.stderr)
    records = run_jobs(run_one, jobs, args.jobs, args.json)
    print(table(records, args.problem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
