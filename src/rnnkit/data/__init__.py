"""Data: one vocabulary class, text readers, batching (the `Batches` protocol of docs/dev/contracts.md)."""
from rnnkit.data.batching import PaddedBatches, pad
from rnnkit.data.streams import LMBatch, LMStream, RollingWindows, batchify
from rnnkit.data.text import LEVELS, DataError, bundled_path, detokenize, read_text, tokenize
from rnnkit.data.vocab import BOS, EOS, PAD, UNK, Vocab

__all__ = [
    "BOS", "EOS", "LEVELS", "PAD", "UNK", "DataError", "LMBatch", "LMStream", "PaddedBatches", "RollingWindows",
    "Vocab", "batchify", "bundled_path", "detokenize", "pad", "read_text", "tokenize",
]
