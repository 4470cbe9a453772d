"""Sampling text from a language model, one token at a time, with the state carried step to step.

Any model with `step(ids (B, T), state) -> (logits (B, T, V), state)` works (RNNLM, NPLM). The priming
text is read once (one forward over the whole prime); after that each step feeds only the token just
drawn together with the carried state, so the cost per token is constant (the prefix is never re-run).

Next-token distribution, in this order (as in HF transformers):
    greedy:       x = argmax_v logits[v]
    temperature:  p = softmax(logits / tau)
    top-k:        keep the k most probable tokens
    top-p:        keep the smallest set of most probable tokens whose probability sums to >= p (nucleus)
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


def filter_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """logits (B, V) with every entry below the row's k-th largest set to -inf (ties at the k-th kept)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def filter_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: token j (in order of decreasing probability) is kept when the probability of the
    tokens before it is < p, so the most probable token is always kept."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = torch.cumsum(probs, dim=-1) - probs  # mass of the strictly more probable tokens
    remove_sorted = before >= p
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


@dataclass
class SamplingOptions:
    temperature: float = 1.0
    top_k: int = 0  # 0 = no top-k filter
    top_p: float = 1.0  # 1 = no nucleus filter
    greedy: bool = False

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


def next_tokens(logits: torch.Tensor, options: SamplingOptions, generator: torch.Generator | None = None):
    """Draw one token per row of logits (B, V) -> (B,)."""
    if options.greedy:
        return logits.argmax(dim=-1)
    scaled = filter_top_p(filter_top_k(logits.float() / options.temperature, options.top_k), options.top_p)
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@dataclass
class Step:
    """One generation step: the logits the token was drawn from (B, V) and the token (B,)."""

    logits: torch.Tensor
    token: torch.Tensor


@torch.no_grad()
def generate_steps(model, prime_ids: list[int], length: int, num_samples: int = 1,
                   options: SamplingOptions | None = None, seed: int | None = None) -> Iterator[Step]:
    """Yield `length` steps for `num_samples` samples drawn in parallel from the same prime.

    The model is put in eval mode by the caller (`sample_text` does it)."""
    if not prime_ids:
        raise ValueError("generation needs at least one priming token")
    options = options or SamplingOptions()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    ids = torch.tensor([prime_ids] * num_samples, dtype=torch.long, device=device)  # (N, P)
    logits, state = model.step(ids, None)  # the prime, read once
    last = logits[:, -1]  # (N, V)
    for _ in range(length):
        token = next_tokens(last, options, generator)
        yield Step(logits=last, token=token)
        logits, state = model.step(token[:, None], state)  # one step, carried state
        last = logits[:, -1]


def generate(model, prime_ids: list[int], length: int, num_samples: int = 1,
             options: SamplingOptions | None = None, seed: int | None = None) -> torch.Tensor:
    """Token indices (num_samples, length) drawn after the prime."""
    tokens = [s.token for s in generate_steps(model, prime_ids, length, num_samples, options, seed)]
    if not tokens:
        return torch.empty(num_samples, 0, dtype=torch.long)
    return torch.stack(tokens, dim=1)
