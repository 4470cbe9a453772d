"""PaddedBatches: every example exactly once per epoch, buckets reduce padding, seeded order, shards."""
import numpy as np
import pytest
import torch

from rnnkit.data import PaddedBatches, pad


def make_examples(n=157, seed=0):
    rng = np.random.default_rng(seed)
    return [list(range(1, int(k) + 1)) for k in rng.integers(1, 40, size=n)]


def ids_of(batch):
    """collate used in these tests: the example ids (first token is unique per example)."""
    return batch


def collect(batches, epoch):
    return [batches.get(i, epoch) for i in range(len(batches))]


def test_pad_matches_a_manual_fill():
    out, lengths = pad([[1, 2, 3], [4], [5, 6]], value=-1)
    assert out.tolist() == [[1, 2, 3], [4, -1, -1], [5, 6, -1]]
    assert lengths.tolist() == [3, 1, 2]
    vec, _ = pad([torch.ones(2, 4), torch.zeros(1, 4)])  # trailing feature dimensions are kept
    assert vec.shape == (2, 2, 4) and vec[1, 1].abs().sum() == 0


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_example_once_per_epoch(shuffle):
    examples = [[i] * (1 + i % 13) for i in range(157)]
    batches = PaddedBatches(examples, ids_of, batch_size=8, shuffle=shuffle, pool=4)
    for epoch in (0, 1):
        seen = [ex[0] for b in collect(batches, epoch) for ex in b]
        assert sorted(seen) == list(range(157))
        assert all(len(b) <= 8 for b in collect(batches, epoch))


def test_bucketing_reduces_padding_against_plain_shuffling():
    examples = make_examples()
    padding = {}
    for pool in (1, 50):
        batches = PaddedBatches(examples, ids_of, batch_size=8, pool=pool, seed=3)
        padding[pool] = sum(max(map(len, b)) * len(b) - sum(map(len, b)) for b in collect(batches, 0))
    assert padding[50] < padding[1] / 4


def test_order_is_seeded_by_seed_and_epoch():
    examples = make_examples()
    a = PaddedBatches(examples, ids_of, batch_size=8, seed=1)
    b = PaddedBatches(examples, ids_of, batch_size=8, seed=1)
    assert collect(a, 2) == collect(b, 2)  # same seed and epoch: same batches
    assert collect(a, 2) != collect(a, 3)  # another epoch: another order
    assert collect(a, 2) != collect(PaddedBatches(examples, ids_of, batch_size=8, seed=2), 2)


def test_evaluation_order_is_sorted_by_length_and_fixed():
    examples = make_examples()
    batches = PaddedBatches(examples, ids_of, batch_size=8, shuffle=False)
    lengths = [len(ex) for b in collect(batches, 0) for ex in b]
    assert lengths == sorted(lengths) and collect(batches, 0) == collect(batches, 5)


def test_shards_are_disjoint_and_equal_in_size():
    examples = [[i] for i in range(101)]
    batches = PaddedBatches(examples, ids_of, batch_size=4, seed=0)
    shards = [batches.shard(r, 3) for r in range(3)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == len(batches) // 3
    seen = [ex[0] for s in shards for b in collect(s, 1) for ex in b]
    assert len(seen) == len(set(seen))
    whole = {ex[0] for b in collect(batches, 1)[: 3 * len(shards[0])] for ex in b}
    assert set(seen) == whole


def test_bad_arguments():
    with pytest.raises(ValueError, match="no examples"):
        PaddedBatches([], ids_of, batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        PaddedBatches([[1]], ids_of, batch_size=0)
    with pytest.raises(IndexError):
        PaddedBatches([[1]], ids_of, batch_size=4).get(1)
