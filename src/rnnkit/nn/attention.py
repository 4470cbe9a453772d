"""Attention: score every source state s_j against the decoder state s_t, normalise, interpolate.

Notation (the lectures'): s_t the decoder (query) state, s_j the encoder (key/value) states j = 1..S,

    z_tj = score(s_t, s_j)                         one score per source position
    α_tj = exp(z_tj) / Σ_{k valid} exp(z_tk)       softmax over the NON-PADDING positions only (α = 0 on padding)
    c_t  = Σ_j α_tj s_j                            the context: an interpolation of the encoder states

Shapes: B batch, T query steps, S source positions, H_q query size, H_k key size, A the hidden size of the
feed-forward scores. ``attn(query, keys, mask)`` takes query (B, H_q) — one decoder step — or (B, T, H_q) —
all steps of a teacher-forced target at once — and keys (B, S, H_k), mask (B, S) bool (True = a real token,
every row needs at least one); it returns ``(context, weights)`` of shapes (B, H_k), (B, S) or (B, T, H_k),
(B, T, S).

The key-side half of a score does not depend on t: ``attn.prepare(keys)`` computes it once per source sentence
(e.g. W_k s_j for the additive score) and ``attn(query, keys, mask, prepared)`` reuses it at every step.

Scores (one class each; `make_attention(name, ...)` builds one by name):

    "additive"          z_j = vᵀ tanh(W [s_t; s_j] + b)              Bahdanau et al. 2015 ("concat")
    "additive-product"  z_j = vᵀ tanh(W [s_t; s_j; s_t ⊙ s_j] + b)   feed-forward with a product feature
    "dot"               z_j = s_t · s_j                               Luong et al. 2015
    "cosine"            z_j = β s_t · s_j / (‖s_t‖ ‖s_j‖)             β = exp(γ) learned, γ = 0 at init
    "bilinear"          z_j = s_tᵀ W s_j                              Luong et al. 2015 ("general")
    "hard"              α = one_hot(argmax_j z_j) with the additive z  (straight-through gradient)
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

ATTENTIONS = ("additive", "additive-product", "dot", "cosine", "bilinear", "hard")


def masked_softmax(z: Tensor, mask: Tensor | None) -> Tensor:
    """softmax of z (..., S) over the positions where mask (B, S) is True; exactly 0 elsewhere.

    z may carry extra dims between B and S (z (B, T, S) with mask (B, S))."""
    if mask is None:
        return torch.softmax(z, dim=-1)
    mask = _broadcast_mask(mask, z)
    return torch.softmax(z.masked_fill(~mask, float("-inf")), dim=-1)


def _broadcast_mask(mask: Tensor, z: Tensor) -> Tensor:
    return mask.view(mask.shape[0], *([1] * (z.dim() - 2)), mask.shape[-1])


def context(weights: Tensor, values: Tensor) -> Tensor:
    """c = Σ_j α_j s_j: weights (B, S) or (B, T, S), values (B, S, H_k) -> (B, H_k) or (B, T, H_k)."""
    if weights.dim() == 2:
        return torch.bmm(weights.unsqueeze(1), values).squeeze(1)
    return torch.bmm(weights, values)


class Attention(nn.Module):
    """Base class: a subclass writes `score(query, prepared) -> z`; normalisation and context are shared."""

    def __init__(self, query_size: int, key_size: int):
        super().__init__()
        if query_size <= 0 or key_size <= 0:
            raise ValueError(f"query_size and key_size must be > 0, got {query_size}, {key_size}")
        self.query_size, self.key_size = query_size, key_size

    def prepare(self, keys: Tensor) -> Tensor:
        """The part of the score that depends only on the keys (B, S, H_k); computed once per source."""
        return keys

    def score(self, query: Tensor, prepared: Tensor) -> Tensor:
        """z: query (B, T, H_q), prepared keys (B, S, ·) -> (B, T, S)."""
        raise NotImplementedError

    def normalize(self, z: Tensor, mask: Tensor | None) -> Tensor:
        return masked_softmax(z, mask)

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor | None = None,
                prepared: Tensor | None = None) -> tuple[Tensor, Tensor]:
        one_step = query.dim() == 2
        q = query.unsqueeze(1) if one_step else query  # (B, T, H_q)
        z = self.score(q, self.prepare(keys) if prepared is None else prepared)  # (B, T, S)
        weights = self.normalize(z, mask)
        if one_step:
            weights = weights.squeeze(1)  # (B, S)
        return context(weights, keys), weights

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}"


def _check_equal_sizes(name: str, query_size: int, key_size: int) -> None:
    if query_size != key_size:
        raise ValueError(f"{name} attention needs query_size == key_size, got {query_size} and {key_size} "
                         "(project the keys first, or use 'additive' / 'bilinear')")


class AdditiveAttention(Attention):
    """Bahdanau's feed-forward score z_j = vᵀ tanh(W [s_t; s_j] + b).

    W = [W_q W_k] is split by columns, so W [s_t; s_j] = W_q s_t + W_k s_j and W_k s_j (+ b) is prepared
    once per source. Parameters: ``query`` (W_q, A × H_q), ``key`` (W_k, A × H_k, and b), ``v`` (A)."""

    def __init__(self, query_size: int, key_size: int, hidden_size: int | None = None):
        super().__init__(query_size, key_size)
        self.hidden_size = hidden_size or query_size
        self.query = nn.Linear(query_size, self.hidden_size, bias=False)
        self.key = nn.Linear(key_size, self.hidden_size)
        self.v = nn.Parameter(torch.empty(self.hidden_size).uniform_(-1, 1) / math.sqrt(self.hidden_size))

    def prepare(self, keys: Tensor) -> Tensor:
        return self.key(keys)  # W_k s_j + b  (B, S, A)

    def score(self, query: Tensor, prepared: Tensor) -> Tensor:
        a = torch.tanh(self.query(query).unsqueeze(2) + prepared.unsqueeze(1))  # (B, T, S, A)
        return a @ self.v  # (B, T, S)


class AdditiveProductAttention(AdditiveAttention):
    """Feed-forward score with a product feature: z_j = vᵀ tanh(W [s_t; s_j; s_t ⊙ s_j] + b)
    = vᵀ tanh(W_q s_t + W_k s_j + W_p (s_t ⊙ s_j) + b); needs H_q == H_k. Extra parameter: ``product`` (W_p)."""

    def __init__(self, query_size: int, key_size: int, hidden_size: int | None = None):
        _check_equal_sizes("additive-product", query_size, key_size)
        super().__init__(query_size, key_size, hidden_size)
        self.product = nn.Linear(query_size, self.hidden_size, bias=False)

    def prepare(self, keys: Tensor) -> Tensor:
        return torch.cat([self.key(keys), keys], dim=-1)  # [W_k s_j + b; s_j]  (B, S, A + H_k)

    def score(self, query: Tensor, prepared: Tensor) -> Tensor:
        wk, keys = prepared[..., : self.hidden_size], prepared[..., self.hidden_size:]
        prod = query.unsqueeze(2) * keys.unsqueeze(1)  # s_t ⊙ s_j  (B, T, S, H)
        a = torch.tanh(self.query(query).unsqueeze(2) + wk.unsqueeze(1) + self.product(prod))  # (B, T, S, A)
        return a @ self.v


class DotAttention(Attention):
    """Luong's dot score z_j = s_t · s_j (no parameters; needs H_q == H_k)."""

    def __init__(self, query_size: int, key_size: int):
        _check_equal_sizes("dot", query_size, key_size)
        super().__init__(query_size, key_size)

    def score(self, query: Tensor, prepared: Tensor) -> Tensor:
        return torch.bmm(query, prepared.transpose(1, 2))  # (B, T, S)


class CosineAttention(Attention):
    """Cosine score z_j = β s_t · s_j / (‖s_t‖ ‖s_j‖), needs H_q == H_k.

    β = exp(γ) is one learned scalar with γ = 0 at initialisation, i.e. the plain cosine at the start. Without
    it the weights could never be sharper than e^1 : e^-1 between the best and the worst position (Graves et
    al. 2014 add the same "key strength" β to their cosine addressing)."""

    def __init__(self, query_size: int, key_size: int, eps: float = 1e-8):
        _check_equal_sizes("cosine", query_size, key_size)
        super().__init__(query_size, key_size)
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.eps = eps

    def prepare(self, keys: Tensor) -> Tensor:
        return keys / keys.norm(dim=-1, keepdim=True).clamp_min(self.eps)

    def score(self, query: Tensor, prepared: Tensor) -> Tensor:
        q = query / query.norm(dim=-1, keepdim=True).clamp_min(self.eps)
        return self.log_scale.exp() * torch.bmm(q, prepared.transpose(1, 2))


class BilinearAttention(Attention):
    """Luong's "general" score z_j = s_tᵀ W s_j, W (H_q × H_k); W s_j is prepared once per source."""

    def __init__(self, query_size: int, key_size: int):
        super().__init__(query_size, key_size)
        self.weight = nn.Parameter(torch.empty(query_size, key_size))
        nn.init.xavier_uniform_(self.weight)

    def prepare(self, keys: Tensor) -> Tensor:
        return keys @ self.weight.t()  # W s_j  (B, S, H_q)

    def score(self, query: Tensor, prepared: Tensor) -> Tensor:
        return torch.bmm(query, prepared.transpose(1, 2))


class HardAttention(AdditiveAttention):
    """Hard attention: the context is the single most relevant source state, c = s_{j*},
    j* = argmax_{j valid} z_j with Bahdanau's additive score z_j.

    Training uses the straight-through estimator (Bengio et al. 2013): the forward pass uses the one-hot
    α^hard, the backward pass the gradient of the soft weights α^soft = softmax(z):

        α = α^hard + α^soft − stopgrad(α^soft)

    (its value is exactly α^hard; no sampling, no REINFORCE). Weights are 0 on padding."""

    def normalize(self, z: Tensor, mask: Tensor | None) -> Tensor:
        soft = masked_softmax(z, mask)
        # one_hot(argmax) by comparison with the positions: F.one_hot's num_classes would freeze S in torch.export
        positions = torch.arange(soft.shape[-1], device=soft.device)
        hard = (positions == soft.argmax(dim=-1, keepdim=True)).to(soft.dtype)
        # hard + (soft - soft): the bracket is exactly 0, so the value is exactly the one-hot (hard + soft - soft
        # in that order rounds: 1 + 0.3 - 0.3 != 1 in floating point)
        return hard + (soft - soft.detach()) if torch.is_grad_enabled() and soft.requires_grad else hard


_CLASSES = {
    "additive": AdditiveAttention,
    "additive-product": AdditiveProductAttention,
    "dot": DotAttention,
    "cosine": CosineAttention,
    "bilinear": BilinearAttention,
    "hard": HardAttention,
}
NEEDS_EQUAL_SIZES = ("additive-product", "dot", "cosine")


def make_attention(name: str, query_size: int, key_size: int, hidden_size: int | None = None) -> Attention:
    """The attention called `name` (one of ATTENTIONS); `hidden_size` (A) only for the feed-forward scores."""
    if name not in _CLASSES:
        raise ValueError(f"unknown attention {name!r}; expected one of {', '.join(ATTENTIONS)}")
    cls = _CLASSES[name]
    if issubclass(cls, AdditiveAttention):
        return cls(query_size, key_size, hidden_size)
    return cls(query_size, key_size)
