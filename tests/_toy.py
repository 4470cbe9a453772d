"""A tiny next-token task for the Trainer's tests: a generated token stream, an LSTM LM, stateful batches.

It follows docs/dev/contracts.md ("Trainer") exactly as a real task does, so the tests exercise truncated
BPTT (state carried across windows), dropout (RNG state on resume) and sharding (DDP).

Also a script, so tests can run (and SIGKILL, and resume) training in a subprocess or under torchrun:
    python tests/_toy.py RUN_DIR [--resume] [--epochs N] [--sleep S] [--checkpoint-every K] [--dropout P]
                         [--crash-at EPOCH:BATCH] [--optimizer NAME] [--lr LR] [--batch-size B]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

# torch.nn.LSTM, not rnnkit.LSTM: these tests are about the Trainer, and must not fail (or slow down) when
# the layers change. rnnkit.LSTM is a drop-in replacement, so a task using it trains the same way.
_LSTM = nn.LSTM


def make_stream(n: int, vocab: int, seed: int) -> torch.Tensor:
    """A learnable token stream: a random sparse Markov chain (each token has 2 likely successors)."""
    g = torch.Generator().manual_seed(seed)
    succ = torch.randint(0, vocab, (vocab, 2), generator=g)
    tokens = [0]
    choices = torch.randint(0, 2, (n,), generator=g)
    noise = torch.rand(n, generator=g)
    rand_tok = torch.randint(0, vocab, (n,), generator=g)
    for t in range(1, n):
        nxt = int(succ[tokens[-1], int(choices[t])]) if noise[t] > 0.1 else int(rand_tok[t])
        tokens.append(nxt)
    return torch.tensor(tokens, dtype=torch.long)


class StreamBatches:
    """The stream cut into B columns and windows of ``bptt`` steps (like pytorch/examples' batchify).

    Batch i is ``(x, y)``, both (B, T), y = x shifted by one token. ``carries_state`` is True.
    """

    carries_state = True

    def __init__(self, stream: torch.Tensor, batch_size: int, bptt: int, sleep: float = 0.0) -> None:
        cols = (stream.numel() - 1) // batch_size
        self.x = stream[: cols * batch_size].view(batch_size, cols)
        self.y = stream[1 : cols * batch_size + 1].view(batch_size, cols)
        self.bptt, self.sleep = bptt, sleep

    @classmethod
    def _from(cls, x: torch.Tensor, y: torch.Tensor, bptt: int, sleep: float) -> StreamBatches:
        obj = cls.__new__(cls)
        obj.x, obj.y, obj.bptt, obj.sleep = x, y, bptt, sleep
        return obj

    def __len__(self) -> int:
        return math.ceil(self.x.shape[1] / self.bptt)

    def get(self, i: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"StreamBatches: batch {i} out of range 0..{len(self) - 1}")
        if self.sleep:
            time.sleep(self.sleep)
        s = slice(i * self.bptt, (i + 1) * self.bptt)
        return self.x[:, s], self.y[:, s]

    def shard(self, rank: int, world_size: int) -> StreamBatches:
        if self.x.shape[0] % world_size:
            raise ValueError(f"StreamBatches: {self.x.shape[0]} columns do not split into {world_size} shards")
        k = self.x.shape[0] // world_size
        rows = slice(rank * k, (rank + 1) * k)
        return StreamBatches._from(self.x[rows], self.y[rows], self.bptt, self.sleep)


class Crash(Exception):
    """Raised by :class:`CrashingBatches`: a simulated crash in the middle of an epoch."""


class CrashingBatches:
    """Wraps Batches and raises :class:`Crash` once, when batch ``i`` of ``epoch`` is requested."""

    def __init__(self, inner, epoch: int, i: int) -> None:
        self.inner, self.at, self.carries_state = inner, (epoch, i), inner.carries_state

    def __len__(self) -> int:
        return len(self.inner)

    def get(self, i: int, epoch: int):
        if (epoch, i) == self.at:
            self.at = None
            raise Crash(f"simulated crash at epoch {epoch}, batch {i}")
        return self.inner.get(i, epoch)

    def shard(self, rank: int, world_size: int) -> CrashingBatches:
        return CrashingBatches(self.inner.shard(rank, world_size), *self.at)


@dataclass
class Output:
    loss: torch.Tensor
    state: object
    stats: dict


class ToyLM(nn.Module):
    """embedding -> LSTM -> dropout -> linear; loss = NLL summed over time, averaged over the batch."""

    def __init__(self, vocab: int = 8, hidden: int = 16, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = _LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, batch, state=None) -> Output:
        x, y = batch
        h, state = self.rnn(self.embed(x), state)  # (B, T, H)
        logits = self.head(self.drop(h))  # (B, T, V)
        nll = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")
        return Output(loss=nll / x.shape[0], state=state, stats={"nll": nll.detach(), "tokens": y.numel()})


class ToyTask:
    monitor = "loss"
    monitor_mode = "min"

    @staticmethod
    def summarize(totals: dict) -> dict:
        loss = totals["nll"] / totals["tokens"]
        return {"loss": loss, "ppl": math.exp(min(loss, 700.0)), "tokens": totals["tokens"]}


def build(seed: int = 0, n: int = 1201, batch_size: int = 4, bptt: int = 10, dropout: float = 0.0,
          sleep: float = 0.0, hidden: int = 16):
    """(model, task, train batches, valid batches) with the model initialized from ``seed``."""
    torch.manual_seed(seed)
    model = ToyLM(hidden=hidden, dropout=dropout)
    stream = make_stream(n, 8, seed=1234)
    cut = int(n * 0.8)
    train = StreamBatches(stream[:cut], batch_size, bptt, sleep)
    valid = StreamBatches(stream[cut:], batch_size, bptt)
    return model, ToyTask(), train, valid


def main(argv: list[str]) -> int:
    from rnnkit.train import TrainConfig, Trainer

    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--stream-length", type=int, default=1201)
    p.add_argument("--crash-at", default=None, help="EPOCH:BATCH (0-based): raise there, once")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    model, task, train, valid = build(dropout=a.dropout, sleep=a.sleep, batch_size=a.batch_size,
                                      n=a.stream_length)
    if a.crash_at:
        epoch, i = (int(v) for v in a.crash_at.split(":"))
        train = CrashingBatches(train, epoch, i)
    config = TrainConfig(epochs=a.epochs, optimizer=a.optimizer, lr=a.lr, momentum=0.0, device="cpu",
                         checkpoint_every=a.checkpoint_every, log_every=1, progress=False, tensorboard=False,
                         seed=7)
    with Trainer(model, task, train, valid, config, a.run_dir) as trainer:
        trainer.fit(resume=a.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
