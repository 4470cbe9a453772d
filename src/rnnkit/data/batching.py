"""Batches of variable-length examples (classification, tagging, seq2seq, trees): the `Batches` protocol
of docs/dev/contracts.md for data that is *not* one contiguous stream (`carries_state = False`).

Bucketing by length (torchtext's BucketIterator, OpenNMT's pool batching): each epoch the examples are
shuffled (seeded by `seed` and the epoch, so exact resume can restart at batch i), cut into pools of
`pool` * batch_size examples, each pool is sorted by length and cut into batches, and the batch order is
shuffled. Batches then hold sequences of similar length (little padding) while the data order still
changes from epoch to epoch. Without shuffling (evaluation) all examples are sorted by length once.

A task supplies `collate(list_of_examples) -> batch` (a tensor, dataclass of tensors, ... anything the
Trainer can move to a device); `pad` builds the usual (B, T) tensor and the lengths.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch


def pad(sequences: Sequence[Sequence[int]] | Sequence[torch.Tensor], value: int = 0,
        dtype: torch.dtype = torch.long) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences of lengths T_b -> (B, T_max) tensor filled with `value` past each length, and lengths (B,)."""
    tensors = [s if isinstance(s, torch.Tensor) else torch.tensor(list(s), dtype=dtype) for s in sequences]
    lengths = torch.tensor([len(t) for t in tensors], dtype=torch.long)
    width = int(lengths.max()) if len(tensors) else 0
    out = torch.full((len(tensors), width, *tensors[0].shape[1:]) if tensors else (0, 0), value,
                     dtype=tensors[0].dtype if tensors else dtype)
    for b, t in enumerate(tensors):
        out[b, : len(t)] = t
    return out, lengths


class PaddedBatches:
    """Examples grouped into batches by length; `get(i, epoch)` returns `collate([examples of batch i])`.

    Args:
        examples: the dataset (any sequence; each item is passed to `collate` and to `length`).
        collate: builds one batch from a list of examples.
        batch_size: examples per batch (the last batch of each pool may be smaller).
        shuffle: reshuffle every epoch (training); False keeps one length-sorted order (evaluation).
        seed: with the epoch, seeds the shuffle (same seed and epoch -> same batches).
        length: an example's length for bucketing (default `len`).
        pool: pool size in batches for bucketing (1 = no bucketing, plain shuffled batches).
    """

    carries_state = False

    def __init__(self, examples: Sequence, collate: Callable[[list], Any], batch_size: int, shuffle: bool = True,
                 seed: int = 0, length: Callable[[Any], int] = len, pool: int = 50):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if pool <= 0:
            raise ValueError(f"pool must be > 0, got {pool}")
        if len(examples) == 0:
            raise ValueError("PaddedBatches: no examples")
        self.examples = examples
        self.collate = collate
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = pool
        self.lengths = np.array([length(e) for e in examples])
        self._epoch_cache: tuple[int, list[np.ndarray]] | None = None
        self._num = sum(math.ceil(len(p) / batch_size) for p in self._pools(np.arange(len(examples))))

    def _pools(self, order: np.ndarray) -> list[np.ndarray]:
        size = self.batch_size * self.pool
        return [order[i: i + size] for i in range(0, len(order), size)]

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The example indices of every batch of `epoch`, in batch order."""
        if self._epoch_cache is not None and self._epoch_cache[0] == epoch:
            return self._epoch_cache[1]
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            pools = self._pools(rng.permutation(len(self.examples)))
        else:
            rng = None
            pools = [np.arange(len(self.examples))]
        batches = []
        for p in pools:
            p = p[np.argsort(self.lengths[p], kind="stable")]
            batches += [p[i: i + self.batch_size] for i in range(0, len(p), self.batch_size)]
        if rng is not None:
            batches = [batches[j] for j in rng.permutation(len(batches))]
        self._epoch_cache = (epoch, batches)
        return batches

    def __len__(self) -> int:
        return self._num if self.shuffle else math.ceil(len(self.examples) / self.batch_size)

    def get(self, i: int, epoch: int = 0) -> Any:
        batches = self.batch_indices(epoch if self.shuffle else 0)
        if not 0 <= i < len(batches):
            raise IndexError(f"batch {i} out of range for {len(batches)} batches")
        return self.collate([self.examples[j] for j in batches[i]])

    def shard(self, rank: int, world_size: int) -> _ShardedBatches:
        """Batches rank, rank + W, ... of each epoch; every process gets len // W of them (the last
        len % W batches of an epoch are skipped so that DistributedDataParallel processes stay in step)."""
        return _ShardedBatches(self, rank, world_size)


class _ShardedBatches:
    carries_state = False

    def __init__(self, batches: PaddedBatches, rank: int, world_size: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for {world_size} processes")
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __len__(self) -> int:
        return len(self.batches) // self.world_size

    def get(self, i: int, epoch: int = 0) -> Any:
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        return self.batches.get(i * self.world_size + self.rank, epoch)

    def shard(self, rank: int, world_size: int):
        raise ValueError("these batches are already sharded")
