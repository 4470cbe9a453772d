"""Attention scores against direct NumPy computations of the lecture formulas; masking; hard attention."""
import numpy as np
import pytest
import torch

from rnnkit.nn.attention import (
    ATTENTIONS,
    AdditiveAttention,
    HardAttention,
    make_attention,
    masked_softmax,
)

B, S, HQ, HK, A = 3, 5, 4, 6, 7
LENGTHS = np.array([5, 2, 3])


def _np(t):
    return t.detach().numpy()


def numpy_scores(name, attn, q, k):
    """z (B, T, S) straight from the formulas, looping over b, t, j (no broadcasting tricks)."""
    Bq, T, _ = q.shape
    z = np.zeros((Bq, T, k.shape[1]))
    for b in range(Bq):
        for t in range(T):
            for j in range(k.shape[1]):
                st, sj = q[b, t], k[b, j]
                if name in ("additive", "hard"):
                    W = np.concatenate([_np(attn.query.weight), _np(attn.key.weight)], axis=1)
                    z[b, t, j] = _np(attn.v) @ np.tanh(W @ np.concatenate([st, sj]) + _np(attn.key.bias))
                elif name == "additive-product":
                    W = np.concatenate([_np(attn.query.weight), _np(attn.key.weight), _np(attn.product.weight)], 1)
                    z[b, t, j] = _np(attn.v) @ np.tanh(W @ np.concatenate([st, sj, st * sj]) + _np(attn.key.bias))
                elif name == "dot":
                    z[b, t, j] = st @ sj
                elif name == "cosine":
                    beta = np.exp(_np(attn.log_scale))
                    z[b, t, j] = beta * st @ sj / (np.linalg.norm(st) * np.linalg.norm(sj))
                elif name == "bilinear":
                    z[b, t, j] = st @ _np(attn.weight) @ sj
    return z


def numpy_attention(name, z, k, lengths):
    alpha = np.zeros_like(z)
    for b in range(z.shape[0]):
        n = lengths[b]
        for t in range(z.shape[1]):
            if name == "hard":
                alpha[b, t, np.argmax(z[b, t, :n])] = 1.0
            else:
                e = np.exp(z[b, t, :n] - z[b, t, :n].max())
                alpha[b, t, :n] = e / e.sum()
    return alpha, np.einsum("bts,bsh->bth", alpha, k)


def build(name, seed=0):
    torch.manual_seed(seed)
    key_size = HQ if name in ("additive-product", "dot", "cosine") else HK
    attn = make_attention(name, HQ, key_size, A)
    if name == "cosine":
        with torch.no_grad():
            attn.log_scale.fill_(0.7)  # the learned sharpness β = e^0.7, not only its initial value 1
    return attn, key_size


@pytest.mark.parametrize("name", ATTENTIONS)
@pytest.mark.parametrize("steps", [None, 4])
def test_scores_match_numpy(float64_seeded, name, steps):
    attn, key_size = build(name)
    q = torch.randn(B, HQ) if steps is None else torch.randn(B, steps, HQ)
    k = torch.randn(B, S, key_size)
    mask = torch.arange(S)[None, :] < torch.tensor(LENGTHS)[:, None]
    ctx, w = attn(q, k, mask)
    q3 = _np(q)[:, None] if steps is None else _np(q)
    z = numpy_scores(name, attn, q3, _np(k))
    alpha, c = numpy_attention(name, z, _np(k), LENGTHS)
    if steps is None:
        alpha, c = alpha[:, 0], c[:, 0]
    np.testing.assert_allclose(_np(w), alpha, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(ctx), c, rtol=1e-10, atol=1e-12)
    assert np.allclose(_np(w).sum(-1), 1.0, atol=1e-12)
    pad = ~mask if steps is None else (~mask)[:, None, :].expand(B, steps, S)
    assert (w[pad] == 0).all()  # exactly zero, not merely small


@pytest.mark.parametrize("name", ATTENTIONS)
def test_padding_keys_do_not_matter(float64_seeded, name):
    attn, key_size = build(name)
    q, k = torch.randn(B, HQ), torch.randn(B, S, key_size)
    mask = torch.arange(S)[None, :] < torch.tensor(LENGTHS)[:, None]
    k2 = k.clone()
    k2[~mask] = 100.0 * torch.randn(int((~mask).sum()), key_size)
    c1, w1 = attn(q, k, mask)
    c2, w2 = attn(q, k2, mask)
    assert torch.equal(w1, w2) and torch.allclose(c1, c2, atol=1e-12)


@pytest.mark.parametrize("name", ATTENTIONS)
def test_prepared_keys_reused(float64_seeded, name):
    attn, key_size = build(name)
    q, k = torch.randn(B, HQ), torch.randn(B, S, key_size)
    c1, w1 = attn(q, k)
    c2, w2 = attn(q, k, prepared=attn.prepare(k))
    assert torch.allclose(w1, w2, atol=1e-14) and torch.allclose(c1, c2, atol=1e-14)


def test_hard_attention_straight_through(float64_seeded):
    """Forward: the one-hot argmax alignment; backward w.r.t. the query: the soft (additive) gradient."""
    hard = HardAttention(HQ, HK, A)
    soft = AdditiveAttention(HQ, HK, A)
    soft.load_state_dict(hard.state_dict())
    q, k = torch.randn(B, HQ, requires_grad=True), torch.randn(B, S, HK)
    mask = torch.arange(S)[None, :] < torch.tensor(LENGTHS)[:, None]
    g = torch.randn(B, HK)
    c_hard, w_hard = hard(q, k, mask)
    (grad_hard,) = torch.autograd.grad((c_hard * g).sum(), q)
    c_soft, w_soft = soft(q, k, mask)
    (grad_soft,) = torch.autograd.grad((c_soft * g).sum(), q)
    best = w_soft.argmax(-1)
    assert torch.equal(w_hard, torch.nn.functional.one_hot(best, S).double())
    assert torch.allclose(c_hard, k[torch.arange(B), best])
    assert torch.allclose(grad_hard, grad_soft, atol=1e-12) and grad_hard.abs().sum() > 0


def test_masked_softmax_rows():
    z = torch.tensor([[1.0, 2.0, 3.0], [5.0, -1.0, 9.0]])
    mask = torch.tensor([[True, True, False], [False, True, True]])
    w = masked_softmax(z, mask)
    e = np.exp([1.0, 2.0])
    np.testing.assert_allclose(w[0].numpy(), [e[0] / e.sum(), e[1] / e.sum(), 0.0], rtol=1e-6)
    assert w[1, 0] == 0 and torch.isclose(w[1].sum(), torch.tensor(1.0))


def test_factory_errors():
    with pytest.raises(ValueError, match="unknown attention 'luong'.*additive"):
        make_attention("luong", 4, 4)
    with pytest.raises(ValueError, match="query_size == key_size, got 4 and 6"):
        make_attention("dot", 4, 6)
