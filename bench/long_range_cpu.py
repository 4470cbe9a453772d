"""Long-range problems at equal CPU time (issue 16): minGRU vs LSTM vs GRU on adding and copy at T = 1,000 and
5,000, and on sequential pixel digits at T = 784.

    flock /tmp/rnnkit-bench.lock .venv/bin/python bench/long_range_cpu.py --problems adding copy \\
        --lengths 1000 5000 --cells mingru lstm gru --minutes 2.5 --jobs 2 --json runs.jsonl
    .venv/bin/python bench/long_range_cpu.py --problems digits784 --cells mingru lstm gru --minutes 2.5
    .venv/bin/python bench/long_range_cpu.py --problems adding --lengths 100 --minutes 0.1   # smoke run
    .venv/bin/python bench/long_range_cpu.py --table runs.jsonl                              # the recorded runs

Every run trains rnnkit.lab's model (one Recurrent layer of --hidden units and a linear head, rnnkit.lab.LabModel)
with Adam and gradient-norm clipping 1 for the same budget of *process CPU seconds* (time.process_time, one
thread per process: the machine is shared, wall time would charge a run for other people's load); evaluation at
the end is not charged. It reports how many updates fitted in the budget and the held-out metric next to the
problem's trivial baseline:

    adding     fresh sequences every batch (rnnkit.lab.adding); test MSE on 500 held-out sequences (the lab's
               "valid" stream) vs 1/6 (always predict 1)
    copy       copy memory (rnnkit.lab.copy_memory, T + 20 steps); cross-entropy per step vs 10 ln 8 / (T + 20)
               (the memoryless predictor) and accuracy on the 10 recalled symbols vs 1/8
    digits784  there is no MNIST on this machine: scikit-learn's bundled 8x8 digits (1797 images,
               sklearn.datasets.load_digits) upsampled bilinearly to 28x28 and read pixel by pixel, T = 784;
               the lab's seeded 70/10/20 split, accuracy on the 10% validation part (179 images) vs the majority
               class of the training part. NOT MNIST: the images carry 64 pixels of information.
    digits64   the same images at their own 8x8 resolution, T = 64 (rnnkit lab digits)
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from pathlib import Path

from long_range import run_jobs  # bench/ is on sys.path when run

EVAL_SEQUENCES = 500


def _digits(problem: str, batch_size: int, seed: int):
    """(train, valid) batches of the lab's digits split, and the transform to T = 784 (or None for T = 64)."""
    import torch.nn.functional as F

    from rnnkit.lab import LabBatch, digits_batches

    train, valid, _ = digits_batches(batch_size, seed=seed)  # the 20% test part is not used

    def upsample(batch):
        x = batch.inputs.view(-1, 1, 8, 8)
        x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
        return LabBatch(x.reshape(-1, 784, 1), batch.targets)

    return train, valid, (upsample if problem == "digits784" else None)


def _majority_accuracy(train, valid) -> float:
    counts = Counter(int(y) for i in range(len(train)) for y in train.get(i, 0).targets)
    top = counts.most_common(1)[0][0]
    ys = [int(y) for i in range(len(valid)) for y in valid.get(i, 0).targets]
    return sum(y == top for y in ys) / len(ys)


def run_one(job: dict) -> dict:
    import torch

    from rnnkit.lab import LabModelConfig, LabTask, SyntheticBatches, get_problem
    from rnnkit.lab.tasks import build_model

    torch.set_num_threads(1)
    name, T = job["problem"], job["length"]
    lab_name = "digits" if name.startswith("digits") else name
    transform = None
    if lab_name == "digits":
        train, valid, transform = _digits(name, job["batch_size"], job["seed"])
        T = 784 if transform else 64
        baseline = {"accuracy": _majority_accuracy(train, valid)}
    else:
        generate = get_problem(name).generate
        train = SyntheticBatches(generate, T, job["batch_size"], 10**9, job["seed"], "train")
        valid = SyntheticBatches(generate, T, 100, EVAL_SEQUENCES // 100, job["seed"], "valid")
        baseline = get_problem(name).baseline(T)
    model = build_model(LabModelConfig(lab_name, cell=job["cell"], hidden=job["hidden"]), job["seed"])
    opt = torch.optim.Adam(model.parameters(), lr=job["lr"])
    budget, used, updates, wall = job["minutes"] * 60, 0.0, 0, time.perf_counter()
    while used < budget:
        start = time.process_time()
        batch = train.get(updates % len(train), updates // len(train))
        batch = transform(batch) if transform else batch
        loss = model(batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        used += time.process_time() - start
        updates += 1
    train_loss = float(loss.detach())
    model.eval()
    totals: dict = {}
    with torch.no_grad():
        for i in range(len(valid)):
            batch = valid.get(i, 0)
            for k, v in model(transform(batch) if transform else batch).stats.items():
                totals[k] = totals.get(k, 0) + float(v)
    metric = LabTask(lab_name, T).summarize(totals)
    return dict(job, length=T, updates=updates, cpu_s=round(used, 1), wall_s=round(time.perf_counter() - wall, 1),
                train_loss=round(train_loss, 5), valid={k: round(v, 5) for k, v in metric.items()},
                baseline={k: round(v, 5) for k, v in baseline.items()})


def table(records: list[dict]) -> str:
    rows = ["| problem | T | cell | CPU s | updates | held-out metric | trivial baseline | train loss (last batch) |",
            "|---|---:|---|---:|---:|---|---|---:|"]
    order = {"mingru": 0, "lstm": 1, "gru": 2}
    for r in sorted(records, key=lambda r: (r["problem"], r["length"], order.get(r["cell"], 9))):
        key = "mse" if r["problem"] == "adding" else ("loss" if r["problem"] == "copy" else "accuracy")
        metric = f"{key} {r['valid'][key]:.4f}"
        base = f"{key} {r['baseline'][key]:.4f}"
        if r["problem"] == "copy":
            metric += f", recall acc {r['valid']['accuracy']:.3f}"
            base += f", acc {r['baseline']['accuracy']:.3f}"
        rows.append(f"| {r['problem']} | {r['length']} | {r['cell']} | {r['cpu_s']:.0f} | {r['updates']} | {metric} "
                    f"| {base} | {r['train_loss']:.4f} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problems", nargs="+", default=["adding", "copy"],
                   choices=["adding", "copy", "digits784", "digits64"])
    p.add_argument("--lengths", type=int, nargs="+", default=[1000, 5000], help="T of adding / copy")
    p.add_argument("--cells", nargs="+", default=["mingru", "lstm", "gru"])
    p.add_argument("--minutes", type=float, default=2.5, help="CPU minutes of training per run")
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes, one thread each)")
    p.add_argument("--json", default=None, help="append one JSON line per finished run here")
    p.add_argument("--table", nargs="+", metavar="JSONL", help="only print the table of recorded runs")
    args = p.parse_args(argv)
    if args.table:
        records = [json.loads(ln) for path in args.table for ln in Path(path).read_text().splitlines() if ln.strip()]
        print(table(records))
        return 0
    jobs = []
    for problem, cell in itertools.product(args.problems, args.cells):
        lengths = args.lengths if problem in ("adding", "copy") else [0]
        jobs += [{"problem": problem, "length": T, "cell": cell, "minutes": args.minutes, "hidden": args.hidden,
                  "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed} for T in lengths]
    print(f"# bench/long_range_cpu.py: {len(jobs)} runs, {args.jobs} at a time, 1 thread each, "
          f"{args.minutes} CPU-min each", flush=True)
    records = run_jobs(run_one, jobs, args.jobs, args.json)
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
