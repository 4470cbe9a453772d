"""Reversing sequences of length 10–20: every attention kind vs. no attention, same data, same budget.

    python bench/seq2seq_reverse.py --threads 1 --out /tmp/seq2seq/reverse

Data: random sequences over an alphabet of 10 symbols, lengths uniform in 10..20; 8,000 training pairs,
500 test pairs (a different seed). Model: bi-GRU encoder + GRU decoder, emb 32, hidden --hidden (default 64),
one layer, input feeding with --input-feeding, Adam lr --lr (2e-3) halved every epoch from epoch --decay-start
(default 14), batch 32, --epochs epochs. Reported: exact-match rate of greedy decoding on the test pairs (all,
lengths 10–12, lengths 18–20), and CPU seconds of training.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

ALPHABET = "abcdefghij"
KINDS = ["additive", "additive-product", "dot", "cosine", "bilinear", "hard", "none"]


def write_pairs(folder: Path, name: str, n: int, seed: int) -> tuple[Path, Path, list[str], list[str]]:
    rng = random.Random(seed)
    src = [" ".join(rng.choice(ALPHABET) for _ in range(rng.randint(10, 20))) for _ in range(n)]
    tgt = [" ".join(reversed(s.split())) for s in src]
    paths = folder / f"{name}.src", folder / f"{name}.tgt"
    paths[0].write_text("\n".join(src) + "\n")
    paths[1].write_text("\n".join(tgt) + "\n")
    return *paths, src, tgt


def exact(run, src, tgt) -> dict:
    from rnnkit.tasks.decode import translate

    hits = [(len(s.split()), o.text == t) for s, t, o in zip(src, tgt, translate(run, src, beam=1))]
    rate = lambda rows: sum(h for _, h in rows) / max(len(rows), 1)  # noqa: E731
    return {"exact": rate(hits), "exact_10_12": rate([r for r in hits if r[0] <= 12]),
            "exact_18_20": rate([r for r in hits if r[0] >= 18])}


def main(argv=None) -> int:
    from rnnkit.tasks import seq2seq
    from rnnkit.train import TrainConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/seq2seq/reverse"))
    p.add_argument("--attention", nargs="+", default=KINDS)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--input-feeding", action="store_true", help="Luong input feeding in the decoder")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--decay-start", type=int, default=14, help="first epoch whose learning rate is halved")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    train_src, train_tgt, _, _ = write_pairs(args.out, "train", 8000, 0)
    _, _, test_src, test_tgt = write_pairs(args.out, "test", 500, 1)
    data = seq2seq.Seq2SeqData(src=str(train_src), tgt=str(train_tgt), batch_size=32)
    config = TrainConfig(epochs=args.epochs, optimizer="adam", lr=args.lr, lr_schedule="step",
                         lr_decay_start=args.decay_start, lr_factor=0.5, device="cpu", progress=False,
                         tensorboard=False)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.epochs} epochs, hidden {args.hidden}, "
          f"lr {args.lr}, input feeding {'on' if args.input_feeding else 'off'}, "
          f"lr halved from epoch {args.decay_start}", flush=True)
    print("| attention | exact (all) | exact, lengths 10-12 | exact, lengths 18-20 | CPU s | wall s |", flush=True)
    print("| --- | ---: | ---: | ---: | ---: | ---: |", flush=True)
    for kind in args.attention:
        cpu, wall = time.process_time(), time.perf_counter()
        seq2seq.fit(args.out / kind, data, config, emb=32, hidden=args.hidden, attention=kind,
                    input_feeding=args.input_feeding, overwrite=True)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        row = {"attention": kind, **exact(seq2seq.load_run(args.out / kind), test_src, test_tgt),
               "cpu_s": cpu, "wall_s": wall}
        with open(args.out / "results.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"| {kind} | {row['exact']:.3f} | {row['exact_10_12']:.3f} | {row['exact_18_20']:.3f} | {cpu:.0f} | "
              f"{wall:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
