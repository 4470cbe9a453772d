"""Contiguous token streams for language models (the `Batches` protocol of docs/dev/contracts.md).

Layout (pytorch/examples word_language_model, char-rnn): the token stream x_0 .. x_{N-1} is cut into
B equal columns, column b holding tokens b*M .. (b+1)*M - 1 with M = N // B (the N - B*M leftover tokens
are dropped). Batch i is the window of `bptt` steps starting at step s = i*bptt of every column:

    inputs[b, t]  = stream[b*M + s + t]          t = 0 .. T-1,  T = min(bptt, M - 1 - s)
    targets[b, t] = stream[b*M + s + t + 1]

so batch i+1 continues batch i in every row: the recurrent state at the end of batch i is the right
initial state for batch i+1 (truncated BPTT; `carries_state = True`).

`MappedLMStream` gives the same batches from a memory-mapped token array (`rnnkit prepare lm`): a window
reads only its B slices of the map, so memory does not grow with the corpus; `make_stream` picks the class
from the array's type (a torch tensor: LMStream; a NumPy array or memmap: MappedLMStream).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class LMBatch:
    """inputs and targets: (B, T) token indices; targets[:, t] is the token after inputs[:, t]."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> LMBatch:
        return LMBatch(self.inputs.to(device, non_blocking=non_blocking),
                       self.targets.to(device, non_blocking=non_blocking))

    @property
    def num_tokens(self) -> int:
        return self.targets.numel()


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N,) stream -> (B, M) columns, M = N // B; row b is the contiguous slice [b*M, (b+1)*M)."""
    if ids.dim() != 1:
        raise ValueError(f"batchify: expected a 1-D token stream, got shape {tuple(ids.shape)}")
    m = ids.numel() // batch_size
    return ids[: m * batch_size].view(batch_size, m)


class LMStream:
    """Windows of `bptt` steps over B parallel columns of one token stream.

    Args:
        ids: (N,) int64 token indices of the whole text.
        batch_size: B, the number of columns (over all processes; see `shard`).
        bptt: T, the window length (truncated-BPTT length).
    """

    carries_state = True

    def __init__(self, ids: torch.Tensor, batch_size: int, bptt: int):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if bptt <= 0:
            raise ValueError(f"bptt must be > 0, got {bptt}")
        ids = torch.as_tensor(ids, dtype=torch.long)
        if ids.numel() // batch_size < 2:
            raise ValueError(f"a stream of {ids.numel()} tokens is too short for batch size {batch_size}: "
                             f"each of the {batch_size} columns needs at least 2 tokens")
        self.ids = ids
        self.batch_size = batch_size
        self.bptt = bptt
        self.columns = batchify(ids, batch_size)  # (B, M)

    @property
    def num_steps(self) -> int:
        """M - 1: the number of (input, target) steps in each column."""
        return self.columns.shape[1] - 1

    @property
    def num_tokens(self) -> int:
        """Number of predicted tokens in one epoch: B * (M - 1)."""
        return self.columns.shape[0] * self.num_steps

    def __len__(self) -> int:
        return math.ceil(self.num_steps / self.bptt)

    def get(self, i: int, epoch: int = 0) -> LMBatch:
        """Batch i (the same in every epoch: a stream has one order)."""
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        s = i * self.bptt
        t = min(self.bptt, self.num_steps - s)
        return LMBatch(self.columns[:, s: s + t], self.columns[:, s + 1: s + 1 + t])

    def __iter__(self):
        return (self.get(i) for i in range(len(self)))

    def shard(self, rank: int, world_size: int) -> LMStream:
        """This process's columns: rows rank*B/W .. (rank+1)*B/W - 1. Every shard has the same
        number of batches, so DistributedDataParallel processes stay in step."""
        if self.batch_size % world_size:
            raise ValueError(f"batch size {self.batch_size} is not divisible by {world_size} processes")
        per = self.batch_size // world_size
        part = _Shard(self.columns[rank * per: (rank + 1) * per], self.bptt)
        return part


class _Shard(LMStream):
    """An LMStream over given columns (no re-batchifying)."""

    def __init__(self, columns: torch.Tensor, bptt: int):
        self.columns = columns
        self.batch_size = columns.shape[0]
        self.bptt = bptt
        self.ids = columns.reshape(-1)


class MappedLMStream(LMStream):
    """LMStream's windows read from a 1-D NumPy array or memmap of token ids (any integer dtype) without
    copying it: column b is the slice [b*M, (b+1)*M) of the array, batch i its steps s .. s+T (see the module
    docstring). `shard` keeps disjoint columns per process, as LMStream does."""

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int, _rows: range | None = None,
                 _m: int | None = None):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if bptt <= 0:
            raise ValueError(f"bptt must be > 0, got {bptt}")
        if ids.ndim != 1:
            raise ValueError(f"expected a 1-D token array, got shape {ids.shape}")
        m = _m if _m is not None else len(ids) // batch_size
        if m < 2:
            raise ValueError(f"a stream of {len(ids)} tokens is too short for batch size {batch_size}: "
                             f"each of the {batch_size} columns needs at least 2 tokens")
        self.array, self.bptt, self.m = ids, bptt, m
        self.rows = _rows if _rows is not None else range(batch_size)
        self.batch_size = len(self.rows)
        self._starts = np.asarray(self.rows, dtype=np.int64) * m  # (B,) offset of each column in the array

    @property
    def num_steps(self) -> int:
        return self.m - 1

    @property
    def num_tokens(self) -> int:
        return self.batch_size * self.num_steps

    def window(self, s: int, t: int) -> torch.Tensor:
        """(B, t + 1) int64: steps s .. s + t of every column."""
        a = self.array
        rows = [a[o + s: o + s + t + 1] for o in self._starts.tolist()]
        return torch.from_numpy(np.stack(rows).astype(np.int64))

    def get(self, i: int, epoch: int = 0) -> LMBatch:
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        s = i * self.bptt
        t = min(self.bptt, self.num_steps - s)
        w = self.window(s, t)
        return LMBatch(w[:, :-1], w[:, 1:])

    def shard(self, rank: int, world_size: int) -> MappedLMStream:
        if self.batch_size % world_size:
            raise ValueError(f"batch size {self.batch_size} is not divisible by {world_size} processes")
        per = self.batch_size // world_size
        return MappedLMStream(self.array, per, self.bptt, self.rows[rank * per: (rank + 1) * per], self.m)


def make_stream(ids, batch_size: int, bptt: int) -> LMStream:
    """LMStream over a torch tensor; MappedLMStream over a NumPy array or memmap (same batches)."""
    if isinstance(ids, np.ndarray):
        return MappedLMStream(ids, batch_size, bptt)
    return LMStream(ids, batch_size, bptt)


class RollingWindows:
    """`n` consecutive windows of a stream per epoch, each epoch continuing where the previous one stopped
    (wrapping around at the end): a full stream trained for a fixed number of steps, e.g. under a time
    budget. Same Batches protocol as LMStream."""

    carries_state = True

    def __init__(self, stream: LMStream, n: int):
        if n <= 0:
            raise ValueError(f"number of windows per epoch must be > 0, got {n}")
        self.stream = stream
        self.n = n

    def __len__(self) -> int:
        return self.n

    def get(self, i: int, epoch: int = 0) -> LMBatch:
        if not 0 <= i < self.n:
            raise IndexError(f"batch {i} out of range for {self.n} batches")
        return self.stream.get((epoch * self.n + i) % len(self.stream), epoch)

    def shard(self, rank: int, world_size: int) -> RollingWindows:
        return RollingWindows(self.stream.shard(rank, world_size), self.n)
