"""char-rnn's default model on tiny Shakespeare: validation nats/char against wall time.

Karpathy's char-rnn defaults: 2 x 128 LSTM, sequence length 50, batch 50, RMSProp lr 2e-3 with decay 0.97
per epoch after epoch 10, gradient clip 5, 90% / 10% train/validation split. (char-rnn clips each gradient
entry at 5 with the loss averaged over time; rnnkit sums over time, so a norm clip of 5 is used here.)

    python bench/charrnn.py --data ../shared/data/tinyshakespeare/input.txt --epochs 10 --threads 2
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from rnnkit.tasks import lm
from rnnkit.train import TrainConfig


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="tiny Shakespeare input.txt (default: the bundled copy)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--optimizer", default="rmsprop")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = lm.LMDataConfig(train=args.data, level="char", batch_size=50, bptt=50, eval_batch_size=50)
    corpus = data.load()
    model = lm.RNNLMConfig(vocab_size=len(corpus.vocab), cell="lstm", layers=2, hidden=128, emb=128,
                           init_range=0.08)
    train = TrainConfig(epochs=args.epochs, optimizer=args.optimizer, lr=args.lr, clip=5.0, device=args.device,
                        lr_schedule="step", lr_factor=0.97, lr_decay_start=10, progress=False,
                        tensorboard=False, log_every=0, max_minutes=args.max_minutes)
    print(f"tiny Shakespeare: {len(corpus.train):,} train / {len(corpus.valid):,} valid chars; "
          f"2 x 128 LSTM, seq 50, batch 50, {args.optimizer} lr {args.lr}; threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as run_dir:
        lm.fit(run_dir, data, model, train, corpus, overwrite=True)
        records = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    print("| epoch | wall time (s) | train nats/char | valid nats/char | valid bits/char |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    train_loss = {r["epoch"]: r["metrics"]["loss"] for r in records if r["split"] == "train"}
    for r in records:
        if r["split"] == "valid":
            m = r["metrics"]
            print(f"| {r['epoch']} | {r['time']:.0f} | {train_loss[r['epoch']]:.3f} | {m['loss']:.3f} | "
                  f"{m['bpc']:.3f} |")


if __name__ == "__main__":
    main()
