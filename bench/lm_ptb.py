"""Zaremba et al. (2014) small LSTM on Penn Treebank: rnnkit vs. a plain-PyTorch baseline, same run.

Configuration (the paper's "small", non-regularized): 2 x 200 LSTM, embeddings 200, BPTT 20, batch 20,
every parameter ~ U(-0.1, 0.1), SGD lr 1 on the loss summed over time and averaged over the batch,
lr halved after each epoch from epoch 5 on, 13 epochs, gradient norm clipped at 5.
Paper: valid 120.7, test 114.5 perplexity.

Both runs read the same batches (rnnkit.data.LMStream); the baseline is torch.nn.Embedding + nn.LSTM +
nn.Linear and a hand-written TBPTT loop. Per epoch, the script prints validation perplexity and wall time
(training + validation) of each, and the ratio rnnkit / baseline; at the end the total wall-time ratio and
the total CPU-time (process time) ratio, which other processes on a shared machine disturb less.

    python bench/lm_ptb.py --data ../shared/data/ptb                 # the full 13 epochs
    python bench/lm_ptb.py --data ../shared/data/ptb --epochs 1 --max-batches 200   # a quick check
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from rnnkit.data import RollingWindows
from rnnkit.tasks import lm
from rnnkit.train import TrainConfig, Trainer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder with ptb.train.txt(.gz) and ptb.valid.txt(.gz)")
    p.add_argument("--epochs", type=int, default=13)
    p.add_argument("--max-batches", type=int, default=0, help="train on only this many windows per epoch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--only", choices=["rnnkit", "baseline"], default=None)
    p.add_argument("--run-dir", default=None, help="keep rnnkit's run directory here (metrics.jsonl per epoch)")
    return p.parse_args(argv)


def find(folder: Path, name: str) -> str:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.exists():
            return str(candidate)
    raise SystemExit(f"{folder}: expected {name} or {name}.gz")


def zaremba_small(epochs: int, device: str) -> TrainConfig:
    return TrainConfig(epochs=epochs, optimizer="sgd", lr=1.0, clip=5.0, lr_schedule="step", lr_factor=0.5,
                       lr_decay_start=4, device=device, progress=False, tensorboard=False, log_every=0)


def run_rnnkit(data: lm.LMDataConfig, corpus, epochs: int, max_batches: int, device: str,
               keep_dir: str | None = None) -> list[dict]:
    config = lm.RNNLMConfig(vocab_size=len(corpus.vocab), cell="lstm", layers=2, hidden=200, emb=200,
                            init_range=0.1)
    torch.manual_seed(0)
    model = lm.build_model(config)
    train, valid = data.batches(corpus)
    if max_batches:
        train = RollingWindows(train, max_batches)
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = keep_dir or tmp
        with Trainer(model, lm.LMTask(corpus.vocab, "word"), train, valid, zaremba_small(epochs, device),
                        run_dir) as trainer:
            trainer.fit()
        cpu = time.process_time() - cpu
        records = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    valid_records = [r for r in records if r["split"] == "valid"]
    times = [r["time"] for r in valid_records]
    out = [{"ppl": r["metrics"]["ppl"], "seconds": t - (times[i - 1] if i else 0.0)}
           for i, (r, t) in enumerate(zip(valid_records, times))]
    out[-1]["cpu_total"] = cpu
    return out


class BaselineLM(nn.Module):
    def __init__(self, vocab: int, size: int = 200, layers: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, size)
        self.lstm = nn.LSTM(size, size, layers, batch_first=True)
        self.decoder = nn.Linear(size, vocab)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, x, hidden=None):
        h, hidden = self.lstm(self.embedding(x), hidden)
        return self.decoder(h), hidden


def baseline_epoch(model, batches, lr: float, device) -> None:
    model.train()
    hidden = None
    for i in range(len(batches)):
        b = batches.get(i, 0)
        x, y = b.inputs.to(device), b.targets.to(device)
        if hidden is not None:
            hidden = tuple(h.detach() for h in hidden)
        logits, hidden = model(x, hidden)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                           reduction="sum") / x.shape[0]
        model.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)


@torch.no_grad()
def baseline_ppl(model, batches, device) -> float:
    model.eval()
    nll, tokens, hidden = 0.0, 0, None
    for i in range(len(batches)):
        b = batches.get(i, 0)
        logits, hidden = model(b.inputs.to(device), hidden)
        nll += float(nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 b.targets.to(device).reshape(-1), reduction="sum"))
        tokens += b.targets.numel()
    return math.exp(nll / tokens)


def run_baseline(data: lm.LMDataConfig, corpus, epochs: int, max_batches: int, device: str) -> list[dict]:
    torch.manual_seed(0)
    model = BaselineLM(len(corpus.vocab)).to(device)
    train, valid = data.batches(corpus)
    if max_batches:
        train = RollingWindows(train, max_batches)
    out = []
    cpu = time.process_time()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        lr = 1.0 * 0.5 ** max(0, epoch - 4)
        baseline_epoch(model, _EpochView(train, epoch - 1), lr, device)
        ppl = baseline_ppl(model, valid, device)
        out.append({"ppl": ppl, "seconds": time.perf_counter() - start})
    out[-1]["cpu_total"] = time.process_time() - cpu
    return out


class _EpochView:
    """batches.get(i, epoch) with the epoch fixed, for the baseline loop."""

    def __init__(self, batches, epoch):
        self.batches, self.epoch = batches, epoch

    def __len__(self):
        return len(self.batches)

    def get(self, i, _epoch=0):
        return self.batches.get(i, self.epoch)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.data)
    data = lm.LMDataConfig(train=find(folder, "ptb.train.txt"), valid=find(folder, "ptb.valid.txt"),
                           level="word", batch_size=20, bptt=20, eval_batch_size=20)
    corpus = data.load()
    print(f"PTB: {len(corpus.train):,} train / {len(corpus.valid):,} valid tokens, vocabulary {len(corpus.vocab):,};"
          f" device {args.device}, threads {torch.get_num_threads()}")
    ours = (run_rnnkit(data, corpus, args.epochs, args.max_batches, args.device, args.run_dir)
            if args.only != "baseline" else [])
    base = run_baseline(data, corpus, args.epochs, args.max_batches, args.device) if args.only != "rnnkit" else []
    print("| epoch | rnnkit valid ppl | rnnkit s | baseline valid ppl | baseline s | time ratio |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for e in range(max(len(ours), len(base))):
        a = ours[e] if e < len(ours) else {"ppl": float("nan"), "seconds": float("nan")}
        b = base[e] if e < len(base) else {"ppl": float("nan"), "seconds": float("nan")}
        print(f"| {e + 1} | {a['ppl']:.1f} | {a['seconds']:.1f} | {b['ppl']:.1f} | {b['seconds']:.1f} | "
              f"{a['seconds'] / b['seconds']:.3f} |")
    if ours and base:
        ratio = sum(r["seconds"] for r in ours) / sum(r["seconds"] for r in base)
        cpu_ratio = ours[-1]["cpu_total"] / base[-1]["cpu_total"]
        print(f"total CPU time ratio rnnkit / baseline: {cpu_ratio:.3f} (process time: less sensitive to other "
              f"processes on a shared machine than wall time)")
        print(f"total time ratio rnnkit / baseline: {ratio:.3f} (goal <= 1.05); "
              f"final valid ppl rnnkit {ours[-1]['ppl']:.1f}, baseline {base[-1]['ppl']:.1f} (paper 120.7)")


if __name__ == "__main__":
    main()
