"""Seeded generators of the lectures' long-range problems, and the `Batches` that serve them to the Trainer.

Every generator takes ``n`` (examples), ``length`` (T, the dependency range) and a ``torch.Generator`` and
returns ``(inputs, targets)``:

adding (Hochreiter & Schmidhuber 1997; Le et al. 2015)
    x_t = (v_t, m_t), v_t ~ U(0, 1), m_t ∈ {0, 1} with exactly two marks: one among the first ⌈T/2⌉ steps and
    one among the others.  y = Σ_t m_t v_t (the sum of the two marked values).            inputs (n, T, 2)
    Baseline: always predicting 1 gives MSE = Var(v_a + v_b) = 2 · 1/12 = 1/6 ≈ 0.167.
copy (copy memory, Arjovsky et al. 2016)
    symbols 0 = blank, 1..8 = data, 9 = delimiter. Input: 10 data symbols, T − 1 blanks, the delimiter, 10
    blanks (T + 20 steps). Target: T + 10 blanks, then the 10 data symbols.         inputs, targets (n, T + 20)
    Baseline (memoryless: blanks for sure, then uniform over the 8 symbols): CE per step = 10 ln 8 / (T + 20).
sum (the lectures' "sum of the inputs over time")
    x_t ~ N(0, 1), y = (1/√T) Σ_t x_t.                                                   inputs (n, T, 1)
    Baseline: predicting the mean 0 gives MSE = Var(y) = 1.
larger ("which of two input streams has the larger total")
    x_t = (a_t, b_t) ~ N(0, I), y = 1 if Σ_t b_t > Σ_t a_t else 0.                       inputs (n, T, 2)
    Baseline: a coin flip, CE = ln 2 ≈ 0.693, accuracy 1/2.
digits (pixel-by-pixel classification of scikit-learn's 8×8 digits, T = 64; `load_digits`)
    x_t = pixel t / 16 in row-major order (or a seeded fixed permutation of the 64 positions), y ∈ 0..9.
    Baseline: a uniform guess, CE = ln 10 ≈ 2.303, accuracy 1/10.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.data import PaddedBatches

SYMBOLS, BLANK, DELIMITER, COPY_LEN = 10, 0, 9, 10
STREAMS = {"train": 0, "valid": 1, "test": 2}


@dataclass
class LabBatch:
    """inputs (B, T, I) float, or (B, T) symbols for copy; targets (B,) or (B, T) for copy."""

    inputs: torch.Tensor
    targets: torch.Tensor


def adding(n: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if length < 2:
        raise ValueError(f"adding: the length must be >= 2 (two marked positions), got {length}")
    half = math.ceil(length / 2)
    values = torch.rand(n, length, generator=generator)
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, length, (n,), generator=generator)  # half < length for length >= 2
    marks = torch.zeros(n, length)
    rows = torch.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    return torch.stack([values, marks], dim=-1), (values * marks).sum(1)


def copy_memory(n: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if length < 1:
        raise ValueError(f"copy: the length (blanks before the delimiter + 1) must be >= 1, got {length}")
    data = torch.randint(1, DELIMITER, (n, COPY_LEN), generator=generator)
    x = torch.full((n, length + 2 * COPY_LEN), BLANK, dtype=torch.long)
    y = torch.full_like(x, BLANK)
    x[:, :COPY_LEN] = data
    x[:, COPY_LEN + length - 1] = DELIMITER
    y[:, -COPY_LEN:] = data
    return x, y


def sum_over_time(n: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, length, 1, generator=generator)
    return x, x.sum(dim=(1, 2)) / math.sqrt(length)


def larger_stream(n: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, length, 2, generator=generator)
    totals = x.sum(1)
    return x, (totals[:, 1] > totals[:, 0]).long()


def load_digits_sequences(permute: bool = False, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 8×8 digits as sequences (1797, 64, 1) in [0, 1] and labels (1797,)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits task needs scikit-learn: pip install 'rnnkit[lab]'") from None
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0  # (N, 64), row-major pixels
    if permute:
        x = x[:, permutation(64, seed)]
    return x.unsqueeze(-1), torch.tensor(digits.target, dtype=torch.long)


def permutation(size: int, seed: int) -> torch.Tensor:
    """The fixed pixel order of the permuted task (the same for every example, seeded)."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(10_000 + seed))


def batch_seed(*parts: int) -> int:
    """A 63-bit seed from (seed, stream, epoch, index): independent streams with no collisions in practice."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint64)[0] >> 1)


class SyntheticBatches:
    """Fresh examples for every batch: batch i of epoch e is generated from (seed, stream, e, i) alone, so
    any batch can be rebuilt (exact resume) and the three streams (train/valid/test) never share a batch.
    Evaluation uses epoch 0, i.e. one fixed set. Implements the Batches protocol (docs/dev/contracts.md)."""

    carries_state = False

    def __init__(self, generate: Callable, length: int, batch_size: int, num_batches: int, seed: int = 0,
                 stream: str = "train", offset: int = 0, stride: int = 1):
        if batch_size <= 0 or num_batches <= 0:
            raise ValueError(f"batch_size and num_batches must be > 0, got {batch_size} and {num_batches}")
        self.generate, self.length, self.batch_size, self.num_batches = generate, length, batch_size, num_batches
        self.seed, self.stream, self.offset, self.stride = seed, stream, offset, stride

    def __len__(self) -> int:
        return len(range(self.offset, self.num_batches, self.stride))

    def get(self, i: int, epoch: int) -> LabBatch:
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range 0..{len(self) - 1}")
        index = self.offset + i * self.stride
        g = torch.Generator().manual_seed(batch_seed(self.seed, STREAMS[self.stream], epoch, index))
        return LabBatch(*self.generate(self.batch_size, self.length, g))

    def shard(self, rank: int, world_size: int) -> SyntheticBatches:
        return SyntheticBatches(self.generate, self.length, self.batch_size, self.num_batches, self.seed,
                                self.stream, self.offset + rank * self.stride, self.stride * world_size)


def _collate(examples: list) -> LabBatch:
    return LabBatch(torch.stack([x for x, _ in examples]), torch.stack([y for _, y in examples]))


def digits_batches(batch_size: int, permute: bool = False, seed: int = 0, eval_batch_size: int = 256,
                   ) -> tuple[PaddedBatches, PaddedBatches, PaddedBatches]:
    """Train / valid / test batches of the 8×8 digits (70% / 10% / 20%, split by a seeded shuffle)."""
    x, y = load_digits_sequences(permute, seed)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)).tolist()
    n_test, n_valid = len(y) // 5, len(y) // 10
    parts = order[n_test + n_valid :], order[n_test : n_test + n_valid], order[:n_test]
    examples = [[(x[i], y[i]) for i in part] for part in parts]
    return (PaddedBatches(examples[0], _collate, batch_size, shuffle=True, seed=seed, pool=1),
            PaddedBatches(examples[1], _collate, eval_batch_size, shuffle=False),
            PaddedBatches(examples[2], _collate, eval_batch_size, shuffle=False))
