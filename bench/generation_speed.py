"""Sampling speed from a 2 x 512 character LSTM: rnnkit.generate vs. two plain-PyTorch loops, same run.

- rnnkit: `rnnkit.generate.generate` on an RNNLM (state carried step to step);
- naive: nn.LSTM re-run on the whole prefix at every step (cost grows with the length: O(T^2));
- carried: nn.LSTM fed one token per step with its state carried (the right way, by hand).

Prints characters per second for each (one sample and a batch of samples), with the same weights
(the naive and carried loops load rnnkit's state_dict, so all three draw the same text for a seed).

    python bench/generation_speed.py --length 500 --batch 16
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from rnnkit.generate import SamplingOptions, generate
from rnnkit.tasks.lm import RNNLM, RNNLMConfig


class TorchLM(nn.Module):
    def __init__(self, vocab: int, hidden: int, layers: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.rnn = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        h, state = self.rnn(self.embedding(x), state)
        return self.decoder(h), state


def draw(logits, gen):
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)  # (B, 1)


@torch.no_grad()
def naive(model, prime, length, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    seq = torch.tensor([prime] * batch)
    for _ in range(length):
        logits, _ = model(seq)  # the whole prefix, every step
        seq = torch.cat([seq, draw(logits[:, -1], gen)], 1)
    return seq[:, len(prime):]


@torch.no_grad()
def carried(model, prime, length, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    logits, state = model(torch.tensor([prime] * batch))
    out = []
    for _ in range(length):
        token = draw(logits[:, -1], gen)
        out.append(token)
        logits, state = model(token, state)
    return torch.cat(out, 1)


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--length", type=int, default=500)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ours = RNNLM(RNNLMConfig(vocab_size=args.vocab, cell="lstm", layers=2, hidden=args.hidden,
                             emb=args.hidden)).eval()
    theirs = TorchLM(args.vocab, args.hidden, 2).eval()
    theirs.load_state_dict(ours.state_dict())  # same names: embedding / rnn.weight_ih_l0 ... / decoder
    prime = [1, 2, 3, 4, 5]
    print(f"2 x {args.hidden} LSTM, vocabulary {args.vocab}, {args.length} tokens after a 5-token prime, "
          f"threads {torch.get_num_threads()}")
    print("| samples | rnnkit chars/s | carried nn.LSTM chars/s | naive re-run chars/s | time rnnkit / carried |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    generate(ours, prime, 5), carried(theirs, prime, 5, 1, 0)  # warm-up
    for batch in (1, args.batch):
        a, ta = timed(generate, ours, prime, args.length, batch, SamplingOptions(), 7)
        b, tb = timed(carried, theirs, prime, args.length, batch, 7)
        c, tc = timed(naive, theirs, prime, args.length, batch, 7)
        assert torch.equal(b, c), "carried and naive loops must draw the same tokens"
        n = args.length * batch
        print(f"| {batch} | {n / ta:,.0f} | {n / tb:,.0f} | {n / tc:,.0f} | {ta / tb:.2f} |")


if __name__ == "__main__":
    main()
