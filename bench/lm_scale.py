"""Language models on corpora larger than memory: `rnnkit prepare lm` throughput and peak memory, and training
from the memory map vs. from the text in memory, one run.

    flock /tmp/rnnkit-bench.lock python bench/lm_scale.py --sizes 10 100 --out /tmp/lm_scale

Corpora: WikiText-2's training text (/work/shared/data/wikitext-2) repeated with its lines shuffled (a fresh
seeded order per copy) until it holds --sizes million whitespace tokens (<eos> per line included). Per size:

    prepare   `rnnkit prepare lm --data corpus.txt --valid small_valid.txt` (whitespace words, one core):
              MB/s of text, peak RSS (VmHWM) and peak anonymous RSS (RssAnon, i.e. without the file pages of
              the map and of the text) of the process, sampled every 20 ms;
    train     `rnnkit train lm --prepared DIR` for --train-seconds (2-layer LSTM, --hidden, batch 32, bptt 35,
              1 thread): training tokens/s from metrics.jsonl, peak RSS and peak RssAnon.

Baselines in the same run: the same training from the text in memory (`--data corpus.txt`, the path every
rnnkit version had) on the smallest corpus, and on PTB both ways (`--data ptb.train.txt` vs `--prepared`).
The validation text is the first --valid-lines lines of WikiText-2's valid split (kept small so that the
time goes to training). Every figure is printed as a Markdown row and appended to OUT/results.jsonl.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path("/work/shared/data")


def rk(*args: str) -> list[str]:
    """`rnnkit ARGS` with this checkout's sources."""
    return [sys.executable, "-c", "import sys; from rnnkit.cli import main; sys.exit(main())", *args]


def measure(cmd: list[str], threads: int = 1) -> dict:
    """Run CMD; wall seconds, peak VmHWM and peak RssAnon (MB) sampled from /proc every 20 ms."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak_anon = peak_hwm = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            break
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        peak_anon = max(peak_anon, int(fields.get("RssAnon", "0 kB").split()[0]))
        peak_hwm = max(peak_hwm, int(fields.get("VmHWM", "0 kB").split()[0]))
        time.sleep(0.02)
    out = proc.communicate()[0]
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{out[-2000:]}")
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_hwm / 1024, "peak_anon_mb": peak_anon / 1024,
            "output": out}


def build_corpus(path: Path, million_tokens: float, seed: int = 0) -> int:
    """WikiText-2 train lines, reshuffled per copy, until `million_tokens` (words + one <eos> per line)."""
    lines = gzip.open(DATA / "wikitext-2" / "train.txt.gz", "rt", encoding="utf-8").read().splitlines()
    sizes = [len(line.split()) + 1 if line.strip() else 0 for line in lines]
    target, n, rng = int(million_tokens * 1e6), 0, random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        while n < target:
            order = list(range(len(lines)))
            rng.shuffle(order)
            for i in order:
                f.write(lines[i] + "\n")
                n += sizes[i]
                if n >= target:
                    break
    return n


def train(args, name: str, source: list[str]) -> dict:
    run = args.out / "runs" / name
    cmd = rk("train", "lm", *source, "--level", "word", "--cell", "lstm", "--layers", "2", "--hidden", str(args.hidden),
             "--batch-size", "32", "--bptt", "35", "--epochs", "1", "--max-minutes", str(args.train_seconds / 60),
             "--optimizer", "sgd", "--lr", "1", "--clip", "5", "--out", str(run), "--overwrite", "--device", "cpu",
             "--quiet")
    r = measure(cmd, threads=1)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    r["tokens_per_second"] = next(x["tokens_per_second"] for x in records if x["split"] == "train")
    r["steps"] = next(x["step"] for x in records if x["split"] == "train")
    return r


def row(out: Path, **values) -> None:
    values.pop("output", None)
    with open(out / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(values) + "\n")
    cells = [f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
             for v in values.values()]
    print("| " + " | ".join(cells) + " |", flush=True)


def ptb_rows(args, valid: Path) -> None:
    """PTB's training text, trained from the text in memory and from the map: the same tokens/s expected."""
    ptb = args.out / "ptb.train.txt"
    ptb.write_bytes(gzip.open(DATA / "ptb" / "ptb.train.txt.gz").read())
    r = train(args, "ptb_text", ["--data", str(ptb), "--valid", str(valid)])
    row(args.out, what="PTB train from text (baseline)", tokens=0.93, mb=ptb.stat().st_size / 1e6,
        seconds=r["seconds"], rate=r["tokens_per_second"], rss=r["peak_rss_mb"], anon=r["peak_anon_mb"])
    prep = args.out / "ptb_prepared"
    measure(rk("prepare", "lm", "--data", str(ptb), "--valid", str(valid), "--out", str(prep), "--overwrite"))
    r = train(args, "ptb_map", ["--prepared", str(prep)])
    row(args.out, what="PTB train from the map", tokens=0.93, mb=ptb.stat().st_size / 1e6, seconds=r["seconds"],
        rate=r["tokens_per_second"], rss=r["peak_rss_mb"], anon=r["peak_anon_mb"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=float, nargs="+", default=[10, 100], help="corpus sizes, million tokens")
    p.add_argument("--out", type=Path, default=Path("/tmp/lm_scale"))
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--train-seconds", type=float, default=60.0)
    p.add_argument("--valid-lines", type=int, default=400)
    p.add_argument("--keep", action="store_true", help="keep the corpora and prepared directories")
    p.add_argument("--no-baselines", action="store_true", help="skip the PTB rows and the in-memory row")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    valid = args.out / "valid_small.txt"
    valid.write_text("\n".join(gzip.open(DATA / "wikitext-2" / "valid.txt.gz", "rt", encoding="utf-8")
                               .read().splitlines()[: args.valid_lines]) + "\n", encoding="utf-8")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    print("| what | corpus M tokens | text MB | seconds | MB/s or tokens/s | peak RSS MB | peak RssAnon MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
    if not args.no_baselines:
        ptb_rows(args, valid)
    for i, size in enumerate(args.sizes):
        corpus = args.out / f"corpus_{size:g}M.txt"
        n = build_corpus(corpus, size)
        mb = corpus.stat().st_size / 1e6
        prep = args.out / f"prepared_{size:g}M"
        r = measure(rk("prepare", "lm", "--data", str(corpus), "--valid", str(valid), "--out", str(prep),
                       "--overwrite"))
        own = json.loads((prep / "meta.json").read_text())["seconds"]  # the pass itself, not the interpreter start
        row(args.out, what=f"prepare (whitespace; {r['seconds']:.1f} s with start-up)", tokens=n / 1e6, mb=mb,
            seconds=own, rate=mb / own, rss=r["peak_rss_mb"], anon=r["peak_anon_mb"])
        r = train(args, f"map_{size:g}M", ["--prepared", str(prep)])
        row(args.out, what="train from the map", tokens=n / 1e6, mb=mb, seconds=r["seconds"],
            rate=r["tokens_per_second"], rss=r["peak_rss_mb"], anon=r["peak_anon_mb"])
        if i == 0 and not args.no_baselines:
            r = train(args, f"text_{size:g}M", ["--data", str(corpus), "--valid", str(valid)])
            row(args.out, what="train from the text in memory (baseline)", tokens=n / 1e6, mb=mb,
                seconds=r["seconds"], rate=r["tokens_per_second"], rss=r["peak_rss_mb"], anon=r["peak_anon_mb"])
        if not args.keep:
            corpus.unlink()
            for f in prep.iterdir():
                f.unlink()
            prep.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
