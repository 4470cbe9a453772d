"""What every next-token model shares (the recurrent LMs of `rnnkit.tasks.lm` and Bengio's NPLM of
`rnnkit.tasks.nplm`): the output type, the loss convention, the metrics and the task object.

Loss (Zaremba et al. 2014): the batch loss is the NLL summed over the T time steps of a window and averaged
over the B rows; the reported metrics are per token: loss = nll / tokens, ppl = exp(loss), bpc = loss / ln 2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit.data import EOS, LEVELS, Vocab
from rnnkit.data.prepared import stream_tokens
from rnnkit.data.tokenizers import FROM_LEVEL, Tokenizer

LN2 = math.log(2.0)


@dataclass
class LMOutput:
    """What a language model's forward returns (the Trainer <-> task contract)."""

    loss: torch.Tensor  # scalar: sum over time of token NLL, mean over batch rows
    logits: torch.Tensor  # (B, T, V)
    state: Any  # recurrent state to carry to the next window
    stats: dict  # {"nll": summed token NLL, "tokens": number of predicted tokens}


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Zaremba convention: sum over (B, T) of -log p(target), divided by B. Also returns summable stats."""
    b, t, v = logits.shape
    nll = F.cross_entropy(logits.reshape(b * t, v).float(), targets.reshape(b * t), reduction="sum")
    stats = {"nll": nll.detach(), "tokens": b * t}
    return nll / b, stats


def summarize_lm(totals: dict, level: str) -> dict:
    """Summed stats -> per-token loss (nats), and ppl (word level) or bpc (char level)."""
    tokens = float(totals["tokens"])
    loss = float(totals["nll"]) / max(tokens, 1.0)
    metrics = {"loss": loss}
    if level == "char":
        metrics["bpc"] = loss / LN2
    else:
        metrics["ppl"] = math.exp(min(loss, 700.0))
    return metrics


class LMTask:
    """What the Trainer needs to know about language modelling: how to report summed stats."""

    name = "lm"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(self, vocab: Vocab, level: str, tokenizer: Tokenizer | None = None):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        self.vocab = vocab
        self.level = level
        self.tokenizer = tokenizer or Tokenizer(FROM_LEVEL[level])

    def summarize(self, totals: dict) -> dict:
        return summarize_lm(totals, self.level)

    def tokenize(self, text: str) -> list[str]:
        """Text -> the run's token stream (characters; or each line's tokens and <eos>)."""
        return stream_tokens(text, self.tokenizer)

    def detokenize(self, tokens: list[str]) -> str:
        """Tokens -> text: characters joined; else each <eos> ends a line, whose tokens the tokenizer joins."""
        if self.level == "char":
            return "".join(tokens)
        lines, line = [], []
        for tok in tokens:
            if tok == EOS:
                lines.append(self.tokenizer.decode(line))
                line = []
            else:
                line.append(tok)
        lines.append(self.tokenizer.decode(line))
        return "\n".join(lines)

    def tokenizer_files(self) -> dict:
        return {self.tokenizer.file: self.tokenizer} if self.tokenizer.subword else {}

    def to_dict(self) -> dict:
        return {"name": self.name, "level": self.level, "tokenizer": self.tokenizer.to_dict()}
