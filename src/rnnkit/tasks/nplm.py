"""Bengio et al. (2003) "A Neural Probabilistic Language Model": the feed-forward, Markovian baseline.

The next token depends only on the n-1 previous ones (an n-gram model with learned features):

    x_t = [C(w_{t-n+1}); ...; C(w_{t-1})]          concatenated embeddings, ((n-1) m,)
    y_t = softmax(b + W x_t + U tanh(d + H x_t))   W: the optional direct connections

Streams: the model reads the same contiguous `LMStream` windows as the recurrent LMs. Its "state" is
the last n-1 token indices of the previous window (a (B, n-1) integer tensor, nothing to backpropagate),
so predictions at the start of a window see their true context and the Trainer, `step` and generation
treat it like any recurrent model. Before the start of a stream the context is a learned boundary
embedding (index V of the embedding table).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from rnnkit.config import opt
from rnnkit.data import LMBatch
from rnnkit.tasks.next_token import LMOutput, lm_loss


@dataclass
class NPLMConfig:
    """Configuration of `NPLM`, saved as JSON in the run directory (`rnnkit train lm --model nplm`)."""

    vocab_size: int = field(metadata=opt(cli=False))
    context: int = field(default=4, metadata=opt("nplm: n - 1, the number of previous tokens seen"))
    emb: int | None = 60  # m
    hidden: int = 100  # h
    direct: bool = field(default=True, metadata=opt("nplm: the direct embedding -> output connections W"))
    dropout: float = 0.0
    init_range: float = 0.1
    model: str = "nplm"

    def __post_init__(self):
        if self.emb is None:
            self.emb = 60
        for name in ("vocab_size", "context", "emb", "hidden"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class NPLM(nn.Module):
    """Feed-forward n-gram neural language model (Bengio et al. 2003)."""

    def __init__(self, config: NPLMConfig):
        super().__init__()
        self.config = c = config
        self.boundary = c.vocab_size  # the embedding row used before the start of the stream
        self.embedding = nn.Embedding(c.vocab_size + 1, c.emb)  # C
        self.hidden = nn.Linear(c.context * c.emb, c.hidden)  # H, d
        self.output = nn.Linear(c.hidden, c.vocab_size)  # U, b
        self.direct = nn.Linear(c.context * c.emb, c.vocab_size, bias=False) if c.direct else None  # W
        self.drop = nn.Dropout(c.dropout)
        if c.init_range > 0:
            for p in self.parameters():
                nn.init.uniform_(p, -c.init_range, c.init_range)

    def initial_state(self, batch_size: int, device=None) -> torch.Tensor:
        return torch.full((batch_size, self.config.context), self.boundary, dtype=torch.long, device=device)

    def step(self, ids: torch.Tensor, state=None) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, T) -> logits (B, T, V) and the new state: the last n-1 tokens seen, (B, n-1)."""
        b, t = ids.shape
        n1 = self.config.context
        if state is None:
            state = self.initial_state(b, ids.device)
        full = torch.cat([state, ids], dim=1)  # (B, n-1 + T)
        windows = full.unfold(1, n1, 1)[:, :t]  # (B, T, n-1): window t = tokens t .. t+n-2 of `full`
        x = self.drop(self.embedding(windows).reshape(b, t, n1 * self.config.emb))  # (B, T, (n-1) m)
        logits = self.output(self.drop(torch.tanh(self.hidden(x))))  # b + U tanh(d + H x)
        if self.direct is not None:
            logits = logits + self.direct(x)  # + W x
        return logits, full[:, -n1:]

    def forward(self, batch: LMBatch, state=None) -> LMOutput:
        logits, state = self.step(batch.inputs, state)
        loss, stats = lm_loss(logits, batch.targets)
        return LMOutput(loss=loss, logits=logits, state=state, stats=stats)
