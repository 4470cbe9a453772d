"""Quality at equal CPU time: character LM on tiny Shakespeare, minGRU stack vs LSTM vs a small transformer.

    flock /tmp/rnnkit-bench.lock .venv/bin/python bench/char_quality.py --minutes 4 --threads 1
    .venv/bin/python bench/char_quality.py --models mingru --minutes 0.2     # smoke run

Every model gets the same budget of *CPU* seconds (time.process_time, one thread: the machine is shared, so wall
time would charge a model for other people's load), the same data and the same protocol:
- data: /work/shared/data/tinyshakespeare/input.txt, first 90% train, last 10% validation (char-rnn's split);
- training: random windows of --context characters, batch --batch, Adam, gradient norm clip 1, no state carried
  between windows (a transformer cannot carry one; all models see the same context);
- validation: every non-overlapping window of --context characters of the validation text, each read from a
  fresh state, loss on every position; bits/char = mean cross-entropy / ln 2. Evaluation is not charged.

Models (widths chosen so each is a typical laptop-CPU size, not parameter-matched):
    mingru       embedding 128 -> rnnkit.Recurrent("mingru", 128, 384, num_layers=3, skip="residual") -> linear
    lstm         embedding 128 -> rnnkit.LSTM(128, 256, num_layers=2) (torch's fused kernel) -> linear
    transformer  GPT-style: token + learned position embeddings, 4 pre-LN blocks (4 heads, width 128, MLP 512),
                 causal scaled_dot_product_attention, tied output, written here in plain PyTorch
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import rnnkit

DATA = Path("/work/shared/data/tinyshakespeare/input.txt")


class CharRNN(nn.Module):
    def __init__(self, vocab: int, rnn: nn.Module, width: int):
        super().__init__()
        self.embed, self.rnn, self.head = nn.Embedding(vocab, 128), rnn, nn.Linear(width, vocab)

    def forward(self, ids):  # (B, T) -> (B, T, V)
        h, _ = self.rnn(self.embed(ids))
        return self.head(h)


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x):  # (B, T, C)
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    def __init__(self, vocab: int, context: int, width: int = 128, layers: int = 4, heads: int = 4):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, ids):
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.ln(x) @ self.tok.weight.t()  # tied output embedding


def build(name: str, vocab: int, context: int) -> tuple[nn.Module, float]:
    """The model and its learning rate."""
    if name == "mingru":
        return CharRNN(vocab, rnnkit.Recurrent("mingru", 128, 384, num_layers=3, skip="residual",
                                               batch_first=True), 384), 3e-3
    if name == "lstm":
        return CharRNN(vocab, rnnkit.LSTM(128, 256, num_layers=2, batch_first=True), 256), 2e-3
    if name == "transformer":
        return Transformer(vocab, context), 1e-3
    raise SystemExit(f"unknown model {name!r}; expected mingru, lstm or transformer")


@torch.no_grad()
def evaluate(model: nn.Module, valid: torch.Tensor, context: int, batch: int = 64) -> float:
    """bits/char over all non-overlapping windows of the validation text (fresh state per window)."""
    model.eval()
    n = (len(valid) - 1) // context
    inputs = valid[: n * context].view(n, context)
    targets = valid[1 : n * context + 1].view(n, context)
    total = 0.0
    for i in range(0, n, batch):
        logits = model(inputs[i : i + batch])
        total += float(F.cross_entropy(logits.flatten(0, 1), targets[i : i + batch].flatten(), reduction="sum"))
    model.train()
    return total / (n * context) / math.log(2)


def train(name: str, train_ids, valid_ids, vocab: int, args) -> dict:
    torch.manual_seed(args.seed)
    model, lr = build(name, vocab, args.context)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(args.seed)
    budget, used, steps, curve = args.minutes * 60, 0.0, 0, []
    next_eval = budget / args.evals
    while used < budget:
        start = time.process_time()
        starts = torch.randint(0, len(train_ids) - args.context - 1, (args.batch,), generator=gen)
        window = torch.stack([train_ids[s : s + args.context + 1] for s in starts.tolist()])
        logits = model(window[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        used += time.process_time() - start
        steps += 1
        if used >= next_eval or used >= budget:
            train_bpc = float(loss.detach()) / math.log(2)
            curve.append({"cpu_s": round(used, 1), "steps": steps, "train_bpc": round(train_bpc, 4),
                          "valid_bpc": round(evaluate(model, valid_ids, args.context), 4)})
            print(f"  {name}: {curve[-1]}", flush=True)
            next_eval += budget / args.evals
    params = sum(p.numel() for p in model.parameters())
    return {"model": name, "params": params, "steps": steps, "cpu_s": round(used, 1), "lr": lr,
            "valid_bpc": curve[-1]["valid_bpc"], "curve": curve}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["mingru", "lstm", "transformer"])
    p.add_argument("--minutes", type=float, default=10.0, help="CPU minutes of training per model")
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--evals", type=int, default=4, help="validation points along the budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="append one JSON line per model here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    text = DATA.read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {c: k for k, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = int(0.9 * len(ids))
    train_ids, valid_ids = ids[:split], ids[split:]
    print(f"# bench/char_quality.py: tiny Shakespeare {len(train_ids):,} train / {len(valid_ids):,} valid chars, "
          f"V={len(chars)}; {args.minutes} CPU-min each, {torch.get_num_threads()} thread(s), context "
          f"{args.context}, batch {args.batch}, torch {torch.__version__}")
    rows = []
    for name in args.models:
        result = train(name, train_ids, valid_ids, len(chars), args)
        rows.append(result)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as f:
                f.write(json.dumps(result) + "\n")
    print("| model | parameters | updates | CPU s | valid bits/char |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['steps']} | {r['cpu_s']} | {r['valid_bpc']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
