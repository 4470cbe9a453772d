"""Kill -9 soak of a real `rnnkit train` process: SIGKILL it at random moments, resume, repeat (issue 12).

    python bench/kill_soak.py                      # 24 kills, prints the table of docs/robustness.md
    python bench/kill_soak.py --kills 4 --json     # the short version tests/test_kill_soak.py runs

A reference run trains uninterrupted. Then the same command (same seed) is started and killed with SIGKILL
again and again (--kills-per-run times; then the run may finish, and a new one starts), each time by one of
four triggers, in the turn of TRIGGERS:

    first-write  the moment a temporary file of the first checkpoint appears in the staging directory of a
                 run that has none yet (a kill before the run is moved into place); the first kill of a run
    startup      a random moment in the process's first seconds (imports, data, maybe the first checkpoint)
    write        the moment a new temporary file of checkpoint.safetensors, trainer_state.json, weights or
                 best.safetensors appears in the run directory (a kill *during* a checkpoint write)
    training     a random moment after the process's first progress in the run directory (a new checkpoint
                 or metrics record: training under way)

After each kill the run directory, if it exists, must load (rnnkit.tasks.driver.load_run: config.json,
vocabularies and every tensor checked); a run directory that existed and then is gone or does not load is a
lost run. The next start is `rnnkit train classify --resume RUN_DIR` when RUN_DIR exists, else the first
command again (a kill before the first checkpoint leaves no run: by design nothing is moved into place
before it). Every finished run is compared with the reference. At the end: kills; kills that hit a write
(a temporary checkpoint file that was not there at the start existed just before the SIGKILL), and of those
in the staging directory; lost and unloadable runs; whether every finished run's per-epoch losses and final
weights equal the reference's; temporary files the kills left behind.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIGGERS = ("first-write", "startup", "write", "training", "write", "training")  # in turn, for each run


def write_data(folder: Path, rows: int, vocab: int, seed: int) -> tuple[Path, Path]:
    """A learnable text-classification TSV: the label says whether word w0 comes before word w1."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(2, vocab)]

    def example() -> str:
        tokens = rng.sample(words, rng.randint(4, 12))
        i, j = sorted(rng.sample(range(len(tokens) + 2), 2))
        first, second = ("w0", "w1") if rng.random() < 0.5 else ("w1", "w0")
        tokens.insert(i, first)
        tokens.insert(j, second)
        return f"{' '.join(tokens)}\t{'before' if first == 'w0' else 'after'}\n"

    train, valid = folder / "train.tsv", folder / "valid.tsv"
    train.write_text("".join(example() for _ in range(rows)), encoding="utf-8")
    valid.write_text("".join(example() for _ in range(rows // 5)), encoding="utf-8")
    return train, valid


def train_argv(train: Path, valid: Path, run: Path, a) -> list[str]:
    return ["train", "classify", "--data", str(train), "--valid", str(valid), "--emb", str(a.emb),
            "--hidden", str(a.hidden), "--epochs", str(a.epochs), "--batch-size", str(a.batch_size),
            "--checkpoint-every", str(a.checkpoint_every), "--dropout", "0.3", "--seed", str(a.seed),
            "--quiet", "--out", str(run)]


def start(argv: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    code = "import sys; from rnnkit.cli import main; sys.exit(main(sys.argv[1:]))"  # what the `rnnkit` script runs
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


CHECKPOINT_FILES = ("checkpoint.safetensors", "trainer_state.json", "weights.safetensors", "best.safetensors")


def temp_files(run: Path, names=CHECKPOINT_FILES) -> list[Path]:
    """Temporary files of an atomic write (`.NAME.XXXX.tmp`) of one of NAMES, in the run or in its staging
    directory beside it: a write in progress, or one a kill interrupted."""
    found = []
    for d in [run, *run.parent.glob(f".{run.name}.partial-*")]:
        try:  # a staging directory is renamed into RUN when its start commits: it may vanish while we look
            found += [p for name in names for p in d.glob(f".{name}.*.tmp")]
        except FileNotFoundError:
            continue
    return found


def _mark(run: Path) -> tuple:
    """What changes when a process makes progress in RUN: size and time of its checkpoint and metrics."""
    files = [run / name for name in ("checkpoint.safetensors", "metrics.jsonl")]
    return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists())


def _new_write(run: Path, before: set, staging: bool) -> bool:
    new = set(temp_files(run)) - before
    return any((p.parent != run) == staging for p in new)


def wait_and_kill(proc: subprocess.Popen, run: Path, trigger: str, rng: random.Random, a) -> tuple[str, bool]:
    """Kill PROC by TRIGGER; returns ('killed', whether a checkpoint write was in progress: a temporary file
    that was not there when the process started existed just before the SIGKILL), or ('finished', False)
    when the process ended first."""
    before, mark = set(temp_files(run)), _mark(run)
    staging = trigger == "first-write" and not run.is_dir()
    now = time.monotonic()
    deadline, moment = now + a.patience, now + rng.uniform(0.0, a.startup) if trigger == "startup" else None
    while proc.poll() is None and time.monotonic() < deadline:
        if trigger in ("write", "first-write") and _new_write(run, before, staging):
            break
        if trigger == "training" and moment is None and _mark(run) != mark:
            moment = time.monotonic() + rng.uniform(0.0, a.window)
        if moment is not None and time.monotonic() >= moment:
            break
        time.sleep(0.0005)
    if proc.poll() is not None:
        return "finished", False
    writing = bool(set(temp_files(run)) - before)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return "killed", writing


def loads(run: Path) -> str | None:
    """None if RUN loads (config, vocabularies, every tensor checked), else the error."""
    from rnnkit.tasks.driver import load_run

    try:
        load_run(run)
    except Exception as e:  # noqa: BLE001 - any failure to load is what the soak counts
        return f"{type(e).__name__}: {e}"
    return None


def epoch_records(run: Path) -> list[tuple]:
    from rnnkit.train.progress import read_metrics

    return [(r["epoch"], r["step"], r["split"], r["metrics"]) for r in read_metrics(run)
            if r["split"] in ("train", "valid")]


def same_weights(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    x, y = load_file(str(a / "weights.safetensors")), load_file(str(b / "weights.safetensors"))
    return x.keys() == y.keys() and all(bool((x[k] == y[k]).all()) for k in x)


def soak(a) -> dict:
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    train, valid = write_data(work, a.rows, a.vocab, a.seed)
    rng = random.Random(a.seed)
    reference = work / "reference"
    t0 = time.monotonic()
    ref = start(train_argv(train, valid, reference, a))
    if ref.wait() != 0:
        raise SystemExit(f"the reference run failed: {ref.stderr.read()}")
    ref_seconds = time.monotonic() - t0
    ref_records = epoch_records(reference)
    result = {"kills": 0, "by_trigger": dict.fromkeys(TRIGGERS, 0), "during_write": 0, "in_staging": 0, "lost": 0,
              "unloadable": 0, "runs": 0, "runs_equal": 0, "starts": 0, "resumes": 0, "refused": [], "errors": [],
              "reference_seconds": round(ref_seconds, 1), "reference_final": ref_records[-2:]}
    n = 0
    while result["kills"] < a.kills or n == 0:
        run, existed, k = work / f"cut-{n}", False, 0
        while True:
            existed = existed or run.is_dir()
            resume = run.is_dir()
            argv = ["train", "classify", "--resume", str(run), "--quiet"] if resume else \
                train_argv(train, valid, run, a)
            result["resumes" if resume else "starts"] += 1
            proc = start(argv)
            trigger = TRIGGERS[k % len(TRIGGERS)]
            outcome, writing = ("finished", False) if result["kills"] >= a.kills or k >= a.kills_per_run else \
                wait_and_kill(proc, run, trigger, rng, a)
            if outcome == "finished":
                code = proc.wait()
                err = proc.stderr.read().strip()
                if code != 0:
                    result["refused"].append(f"{' '.join(argv[:4])}: exit {code}: {err[-300:]}")
                    break
                break
            result["kills"] += 1
            k += 1
            result["by_trigger"][trigger] += 1
            result["during_write"] += writing
            result["in_staging"] += writing and not resume and not run.is_dir()
            if existed and not run.is_dir():
                result["lost"] += 1
                result["errors"].append(f"kill {result['kills']}: {run} is gone")
            elif run.is_dir():
                error = loads(run)
                if error:
                    result["unloadable"] += 1
                    result["errors"].append(f"kill {result['kills']} ({trigger}): {error[:300]}")
        result["runs"] += 1
        if run.is_dir() and loads(run) is None and epoch_records(run) == ref_records and same_weights(run, reference):
            result["runs_equal"] += 1
        else:
            result["errors"].append(f"{run}: finished run differs from the reference (or does not load)")
        result["final"] = epoch_records(run)[-2:] if run.is_dir() else None
        n += 1
    result["leftover_staging_dirs"] = len(list(work.glob(".cut-*.partial-*")))
    left = [p.name for i in range(n) for p in (work / f"cut-{i}").glob(".*.tmp")]
    result["leftover_temp_files"] = {name: sum(p.startswith(f".{name}.") for p in left)
                                     for name in sorted({p.split(".")[1] + "." + p.split(".")[2] for p in left})}
    return result


def table(r: dict, command: str) -> str:
    (_, _, _, train), (_, _, _, valid) = r["reference_final"]
    final = r.get("final") or [(0, 0, "", {}), (0, 0, "", {})]
    by = " / ".join(str(r["by_trigger"][t]) for t in ("first-write", "startup", "write", "training"))
    rows = [
        "| kills (trigger: first-write / startup / write / training) | kills during a checkpoint write (in staging) | "
        "lost runs | unloadable runs | runs finished = reference | final train loss, killed vs reference | "
        "final valid loss, killed vs reference |",
        "|---|---:|---:|---:|---:|---|---|",
        f"| {r['kills']} ({by}) | {r['during_write']} ({r['in_staging']}) | {r['lost']} | {r['unloadable']} | "
        f"{r['runs_equal']} of {r['runs']} | "
        f"{final[0][3].get('loss')!r} vs {train['loss']!r} | {final[1][3].get('loss')!r} vs {valid['loss']!r} |",
    ]
    return f"`{command}`\n\n" + "\n".join(rows) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=24)
    p.add_argument("--kills-per-run", type=int, default=6, help="then the run finishes and a new one starts")
    p.add_argument("--rows", type=int, default=1200, help="training examples")
    p.add_argument("--vocab", type=int, default=3000, help="distinct words (a larger embedding: longer writes)")
    p.add_argument("--emb", type=int, default=64)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--checkpoint-every", type=int, default=3, help="batches between checkpoints")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--startup", type=float, default=4.0, help="startup kills: uniform in [0, this] seconds")
    p.add_argument("--window", type=float, default=1.5, help="training kills: uniform in [0, this] s after start")
    p.add_argument("--patience", type=float, default=60.0, help="give up waiting for a trigger after this")
    p.add_argument("--workdir", default=None, help="where the runs go (default: a new temporary folder)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    a = p.parse_args(argv)
    if a.workdir is None:
        import tempfile

        a.workdir = tempfile.mkdtemp(prefix="kill_soak-")
    t0 = time.monotonic()
    r = soak(a)
    r["seconds"] = round(time.monotonic() - t0, 1)
    if a.json:
        print(json.dumps(r))
    else:
        print(table(r, "python bench/kill_soak.py " + " ".join(argv if argv is not None else sys.argv[1:])))
        print(f"{r['starts']} fresh starts, {r['resumes']} resumes, {r['seconds']} s; reference run "
              f"{r['reference_seconds']} s; leftover staging dirs {r['leftover_staging_dirs']}, leftover temp "
              f"files {r['leftover_temp_files']}")
        for line in r["errors"] + r["refused"]:
            print("  ", line)
    ok = r["lost"] == 0 and r["unloadable"] == 0 and r["runs_equal"] == r["runs"] and not r["refused"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
