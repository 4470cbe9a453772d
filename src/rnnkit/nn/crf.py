"""Linear-chain conditional random field (Lafferty et al. 2001; as a tagger head: Lample et al. 2016).

For emission scores P (B, T, K) — P[t, j] the score of tag j at word t, e.g. a BiLSTM's projection — and
transition scores A (K, K) — A[i, j] the score of tag j following tag i — a tag sequence y_1..y_n has score

    s(x, y) = π_{y_1} + Σ_{t=1..n} P[t, y_t] + Σ_{t=2..n} A[y_{t-1}, y_t] + ε_{y_n}

with optional start scores π (K,) and end scores ε (K,), and probability p(y | x) = exp s(x, y) / Z(x),
Z(x) = Σ_{y'} exp s(x, y'). The partition function is computed in log space by the forward algorithm

    α_1[j] = π_j + P[1, j]
    α_t[j] = P[t, j] + logsumexp_i (α_{t-1}[i] + A[i, j])
    log Z  = logsumexp_j (α_n[j] + ε_j)

and the best path y* = argmax_y s(x, y) by the Viterbi algorithm (max in place of logsumexp, with
back-pointers). The training loss is the negative log-likelihood −log p(y | x) = log Z − s(x, y).

Variable lengths: `mask` (B, T) is True at the real words of each sequence and must be a prefix (its
first column all True), i.e. `mask[b, t] = t < lengths[b]`; padded steps change nothing.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class CRF(nn.Module):
    """A linear-chain CRF over `num_tags` tags: `nll`, `log_partition`, `score`, `decode` (Viterbi).

    Args:
        num_tags: K.
        start_end: learn start scores π and end scores ε (otherwise both are 0).

    Parameters: `transitions` (K, K) = A (row: previous tag, column: next tag); `start`, `end` (K,).
    """

    def __init__(self, num_tags: int, start_end: bool = True):
        super().__init__()
        if num_tags <= 0:
            raise ValueError(f"num_tags must be > 0, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        if start_end:
            self.start = nn.Parameter(torch.empty(num_tags))
            self.end = nn.Parameter(torch.empty(num_tags))
        else:
            self.register_parameter("start", None)
            self.register_parameter("end", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, start_end={self.start is not None}"

    def _check(self, emissions: Tensor, mask: Tensor | None) -> Tensor:
        if emissions.dim() != 3 or emissions.shape[-1] != self.num_tags:
            raise ValueError(f"emissions must be (B, T, {self.num_tags}), got {tuple(emissions.shape)}")
        B, T, _ = emissions.shape
        if mask is None:
            return torch.ones(B, T, dtype=torch.bool, device=emissions.device)
        if mask.shape != (B, T):
            raise ValueError(f"mask must be (B, T) = {(B, T)}, got {tuple(mask.shape)}")
        if T and not bool(mask[:, 0].all()):
            raise ValueError("mask: every sequence needs at least one step (mask[:, 0] must be all True)")
        return mask.bool()

    def _start_end(self, like: Tensor) -> tuple[Tensor, Tensor]:
        if self.start is None:
            zero = like.new_zeros(self.num_tags)
            return zero, zero
        return self.start, self.end

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """s(x, y) of the tag sequences `tags` (B, T) -> (B,)."""
        mask = self._check(emissions, mask)
        start, end = self._start_end(emissions)
        m = mask.to(emissions.dtype)
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T): P[t, y_t]
        trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1): A[y_{t-1}, y_t]
        last = tags.gather(1, (mask.sum(1, keepdim=True) - 1)).squeeze(1)  # y_n at each own length
        return start[tags[:, 0]] + (emit * m).sum(1) + (trans * m[:, 1:]).sum(1) + end[last]

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """log Z(x) by the forward algorithm -> (B,)."""
        mask = self._check(emissions, mask)
        start, end = self._start_end(emissions)
        steps, keep = emissions.unbind(1), mask.unbind(1)
        alpha = start + steps[0]  # (B, K)
        A = self.transitions.unsqueeze(0)  # (1, K, K)
        for p_t, m_t in zip(steps[1:], keep[1:]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + A, dim=1) + p_t  # (B, K): over the previous tag i
            alpha = torch.where(m_t.unsqueeze(1), nxt, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """−log p(y | x) = log Z(x) − s(x, y) per sequence -> (B,)."""
        return self.log_partition(emissions, mask) - self.score(emissions, tags, mask)

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Viterbi: the best tag sequences (B, T) (padded steps repeat the last tag) and their scores (B,)."""
        mask = self._check(emissions, mask)
        start, end = self._start_end(emissions)
        B, T, K = emissions.shape
        steps, keep = emissions.unbind(1), mask.unbind(1)
        delta = start + steps[0]  # (B, K)
        A = self.transitions.unsqueeze(0)
        same = torch.arange(K, device=emissions.device).expand(B, K)
        pointers = []
        for p_t, m_t in zip(steps[1:], keep[1:]):
            best, arg = (delta.unsqueeze(2) + A).max(dim=1)  # (B, K): best previous tag for each tag j
            m = m_t.unsqueeze(1)
            delta = torch.where(m, best + p_t, delta)
            pointers.append(torch.where(m, arg, same))  # padded step: stay on the same tag
        scores, tag = (delta + end).max(dim=1)
        path = [tag]
        for arg in reversed(pointers):
            tag = arg.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        return torch.stack(path[::-1], dim=1), scores
