"""Language models on corpora larger than memory: `rnnkit prepare lm` throughput and peak memory, and training
from the memory map vs. from the text in memory, one run.

    flock /tmp/rnnkit-bench.lock python bench/lm_scale.py --sizes 10 100 500 --out /tmp/lm_scale

Corpora: WikiText-2's training text (/work/shared/data/wikitext-2) repeated with its lines shuffled (a fresh
seeded order per copy) until it holds --sizes million whitespace tokens (<eos> per line included). Rows:

    tokenizers  `rnnkit prepare lm --tokenizer KIND` on the first --kinds-mb MB of the smallest corpus, for
                every kind, and words and characters through the Python path (str.split / list(text) and a
                dict lookup per token: the implementation before rnnkit.data.word_ids; baseline, same run);
    prepare     per size: `rnnkit prepare lm --data corpus.txt --valid small_valid.txt` (whitespace words, one
                process), and the Python str.split path up to --python-max million tokens (baseline);
    train       per size: `rnnkit train lm --prepared DIR` for --train-seconds (2-layer LSTM, --hidden, batch 32,
                bptt 35, 1 thread); on the smallest corpus also `--data corpus.txt` read into memory (the
                path before on-the-fly preparing; baseline) and `--data corpus.txt` prepared on the fly.

MB/s = text MB / the pass's own time (meta.json `seconds`, wall; `cpu_seconds`, the process's CPU time of the
pass: the one-core figure on a shared machine); the interpreter's start-up is excluded. Peak RSS = VmHWM,
peak RssAnon = anonymous memory (RSS without file pages: the page cache of the map and of the text), both
sampled every 20 ms. `--ptb` adds PTB trained from the text and from the map. Every figure is printed as a
Markdown row and appended to OUT/results.jsonl.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
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
            if n + sum(sizes) < target:  # a whole copy
                f.write("\n".join(lines[i] for i in order) + "\n")
                n += sum(sizes)
                continue
            for i in order:
                f.write(lines[i] + "\n")
                n += sizes[i]
                if n >= target:
                    break
    return n


def head(src: Path, dst: Path, mb: float) -> float:
    """The first `mb` MB of SRC (cut at a line end) as DST; its size in MB."""
    with open(src, "rb") as f:
        data = f.read(int(mb * 1e6))
    dst.write_bytes(data[: data.rfind(b"\n") + 1])
    return dst.stat().st_size / 1e6


def prepare(args, corpus: Path, out: Path, kind: str = "whitespace", python_words: bool = False,
) -> dict:
    """`rnnkit prepare lm` (python_words: with rnnkit.data.word_ids switched off: str.split / list(text) and a
    dict lookup per token, the implementation before it)."""
    cmd = rk("prepare", "lm", "--data", str(corpus), "--valid", str(args.valid), "--out", str(out), "--overwrite",
             "--tokenizer", kind)
    if python_words:
        cmd[2] = "import sys, rnnkit.data.prepared as p; p.numpy_path = lambda *a: None; " + cmd[2].split("; ", 1)[1]
    r = measure(cmd)
    meta = json.loads((out / "meta.json").read_text())
    r.update(own=meta["seconds"], cpu=meta["cpu_seconds"])
    return r


def prepare_row(args, what: str, tokens: float, mb: float, r: dict) -> None:
    row(args.out, what=what, tokens=tokens, mb=mb, seconds=r["own"], rate=mb / r["own"], cpu_seconds=r["cpu"],
        cpu_rate=mb / r["cpu"], rss=r["peak_rss_mb"], anon=r["peak_anon_mb"])


def remove(*paths: Path) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def train(args, name: str, source: list[str], in_memory: bool = False) -> dict:
    """`rnnkit train lm` (in_memory: with PREPARE_ABOVE raised, so --data is read into memory as before)."""
    run = args.out / "runs" / name
    cmd = rk("train", "lm", *source, "--level", "word", "--cell", "lstm", "--layers", "2", "--hidden", str(args.hidden),
             "--batch-size", "32", "--bptt", "35", "--epochs", "1", "--max-minutes", str(args.train_seconds / 60),
             "--optimizer", "sgd", "--lr", "1", "--clip", "5", "--out", str(run), "--overwrite", "--device", "cpu",
             "--quiet")
    if in_memory:
        cmd[2] = "import sys, rnnkit.tasks.lm as m; m.PREPARE_ABOVE = 1 << 62; " + cmd[2].split("; ", 1)[1]
    r = measure(cmd, threads=1)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    r["tokens_per_second"] = next(x["tokens_per_second"] for x in records if x["split"] == "train")
    r["steps"] = next(x["step"] for x in records if x["split"] == "train")
    remove(run)
    return r


def row(out: Path, **values) -> None:
    values.pop("output", None)
    values["load"] = round(os.getloadavg()[0], 2)
    with open(out / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(values) + "\n")
    cells = [f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
             for v in values.values()]
    print("| " + " | ".join(cells) + " |", flush=True)


def train_row(args, what: str, tokens: float, mb: float, r: dict) -> None:
    row(args.out, what=what, tokens=tokens, mb=mb, seconds=r["seconds"], rate=r["tokens_per_second"], cpu_seconds="",
        cpu_rate="", rss=r["peak_rss_mb"], anon=r["peak_anon_mb"])


def ptb_rows(args) -> None:
    """PTB's training text, trained from the text in memory and from the map: the same tokens/s expected."""
    ptb = args.out / "ptb.train.txt"
    ptb.write_bytes(gzip.open(DATA / "ptb" / "ptb.train.txt.gz").read())
    mb = ptb.stat().st_size / 1e6
    train_row(args, "PTB train from the text in memory", 0.93, mb,
              train(args, "ptb_text", ["--data", str(ptb), "--valid", str(args.valid)]))
    prep = args.out / "ptb_prepared"
    prepare(args, ptb, prep)
    train_row(args, "PTB train from the map", 0.93, mb, train(args, "ptb_map", ["--prepared", str(prep)]))
    remove(ptb, prep)


def kind_rows(args, corpus: Path) -> None:
    """Every tokenizer's prepare MB/s on the first --kinds-mb MB of CORPUS."""
    part = args.out / "kinds.txt"
    mb = head(corpus, part, args.kinds_mb)
    for kind, python_words in (("whitespace", True), ("whitespace", False), ("char", True), ("char", False),
                               ("moses", False), ("sentencepiece-bpe", False), ("sentencepiece-unigram", False)):
        out = args.out / f"kinds_{kind}"
        r = prepare(args, part, out, kind, python_words)  # subword: at most 8000 pieces (the default)
        tokens = json.loads((out / "meta.json").read_text())["train"]["tokens"] / 1e6
        label = f"{kind}, Python path (baseline)" if python_words else kind
        prepare_row(args, f"prepare {label}", tokens, mb, r)
        remove(out)
    remove(part)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=float, nargs="+", default=[10, 100], help="corpus sizes, million tokens")
    p.add_argument("--out", type=Path, default=Path("/tmp/lm_scale"))
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--train-seconds", type=float, default=60.0)
    p.add_argument("--valid-lines", type=int, default=400)
    p.add_argument("--kinds-mb", type=float, default=5.0, help="text for the every-tokenizer rows (0: none)")
    p.add_argument("--python-max", type=float, default=100, help="largest size with the str.split baseline row")
    p.add_argument("--ptb", action="store_true", help="add the PTB rows (text vs. map)")
    p.add_argument("--no-baselines", action="store_true", help="skip the in-memory and on-the-fly training rows")
    p.add_argument("--keep", action="store_true", help="keep the corpora and prepared directories")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.valid = args.out / "valid_small.txt"
    args.valid.write_text("\n".join(gzip.open(DATA / "wikitext-2" / "valid.txt.gz", "rt", encoding="utf-8")
                                    .read().splitlines()[: args.valid_lines]) + "\n", encoding="utf-8")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    print("| what | corpus M tokens | text MB | seconds | MB/s or tokens/s | CPU s | MB/s of CPU | peak RSS MB | "
          "peak RssAnon MB | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
    if args.ptb:
        ptb_rows(args)
    for i, size in enumerate(args.sizes):
        corpus = args.out / f"corpus_{size:g}M.txt"
        n = build_corpus(corpus, size)
        mb = corpus.stat().st_size / 1e6
        if i == 0 and args.kinds_mb > 0:
            kind_rows(args, corpus)
        prep = args.out / f"prepared_{size:g}M"
        if size <= args.python_max:
            prepare_row(args, "prepare whitespace, Python path (baseline)", n / 1e6, mb,
                        prepare(args, corpus, prep, python_words=True))
        prepare_row(args, "prepare whitespace", n / 1e6, mb, prepare(args, corpus, prep))
        train_row(args, "train from the map", n / 1e6, mb, train(args, f"map_{size:g}M", ["--prepared", str(prep)]))
        if i == 0 and not args.no_baselines:
            source = ["--data", str(corpus), "--valid", str(args.valid)]
            train_row(args, "train --data, read into memory (baseline)", n / 1e6, mb,
                      train(args, f"text_{size:g}M", source, in_memory=True))
            train_row(args, "train --data, prepared on the fly", n / 1e6, mb, train(args, f"fly_{size:g}M", source))
        if not args.keep:
            remove(corpus, prep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
