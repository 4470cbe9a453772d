"""rnnkit.nn.linear_scan: h_t = a_t ⊙ h_{t-1} + b_t, sequential and parallel (Hillis-Steele), against a plain
autograd loop, finite differences (gradcheck) and closed forms at T = 16,384."""

import importlib
import math

import pytest
import torch

from rnnkit.nn import linear_scan

METHODS = ["sequential", "parallel"]


def loop(a, b, h0):
    """The oracle: the recurrence written out, autograd through every step."""
    h, hs = (torch.zeros_like(b[0]) if h0 is None else h0), []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        hs.append(h)
    return torch.stack(hs)


def _inputs(T, shape, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(T, *shape, generator=gen, dtype=dtype) * 1.2 - 0.1  # some a outside (0, 1) too
    b = torch.randn(T, *shape, generator=gen, dtype=dtype)
    h0 = torch.randn(shape, generator=gen, dtype=dtype)
    return a, b, h0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("T,shape", [(1, (3,)), (2, (2, 3)), (5, ()), (37, (4, 3)), (64, (2, 1, 3))])
@pytest.mark.parametrize("with_h0", [True, False])
def test_values_and_gradients_equal_a_plain_loop(method, T, shape, with_h0):
    a, b, h0 = (t.requires_grad_() for t in _inputs(T, shape))
    h0 = h0 if with_h0 else None
    weights = torch.randn(T, *shape, dtype=torch.float64)
    results = []
    for fn in (lambda: linear_scan(a, b, h0, method=method), lambda: loop(a, b, h0)):
        h = fn()
        leaves = [a, b] + ([h0] if with_h0 else [])
        results.append([h, *torch.autograd.grad((h * weights).sum(), leaves)])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_gradients_match_finite_differences(method):
    a, b, h0 = (t.requires_grad_() for t in _inputs(9, (2, 3), seed=1))
    assert torch.autograd.gradcheck(lambda a, b, h0: linear_scan(a, b, h0, method=method), (a, b, h0))
    assert torch.autograd.gradcheck(lambda a, b: linear_scan(a, b, method=method), (a, b))


def test_only_the_inputs_that_need_a_gradient_get_one():
    a, b, h0 = _inputs(6, (3,))
    b.requires_grad_()
    weights = torch.randn(6, 3, dtype=torch.float64)
    (got,) = torch.autograd.grad((linear_scan(a, b, h0) * weights).sum(), b)
    (want,) = torch.autograd.grad((loop(a, b, h0) * weights).sum(), b)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert a.grad is None and h0.grad is None


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("c", [1e-6, 0.5, 0.9999])
def test_long_sequence_matches_the_closed_form_in_float32(method, c):
    """a_t = c, b_t = d: h_t = c^t h_0 + d (1 − c^t) / (1 − c), T = 16,384; no overflow, no NaN, float32 rounding only.
    Backward from e_T = 1 alone: ∂L/∂b_t = c^{T−t}, ∂L/∂a_t = c^{T−t} h_{t−1}, ∂L/∂h_0 = c^T."""
    T, d, h0_value = 16384, 0.75, -2.0
    a = torch.full((T, 4), c, dtype=torch.float32, requires_grad=True)
    b = torch.full((T, 4), d, dtype=torch.float32, requires_grad=True)
    h0 = torch.full((4,), h0_value, dtype=torch.float32, requires_grad=True)
    h = linear_scan(a, b, h0, method=method)
    h[-1].sum().backward()
    c = float(a[0, 0].detach())  # c as float32 holds it (0.9999 is 0.99989998...)
    t = torch.arange(1, T + 1, dtype=torch.float64)
    power = c ** t  # c^t, underflows to 0 for long t: that is its value
    want = power * h0_value + d * (1 - power) / (1 - c)
    h_prev = torch.cat([torch.tensor([h0_value], dtype=torch.float64), want[:-1]])
    back = c ** (T - t)  # ∂h_T/∂b_t = c^{T−t}
    got = {"h": h.detach(), "b": b.grad, "a": a.grad}
    assert all(torch.isfinite(v).all() for v in got.values())
    for name, want_v in (("h", want), ("b", back), ("a", back * h_prev)):
        err = (got[name][:, 0].double() - want_v).abs().max() / want_v.abs().max()
        assert float(err) <= 1e-4, name  # float32 rounding, accumulated over the steps it remembers
    assert abs(float(h0.grad[0]) - c ** T) <= 1e-4 * c ** T + 1e-30


def test_parallel_equals_sequential_on_long_random_sequences():
    gen = torch.Generator().manual_seed(3)
    T = 5000
    a = torch.rand(T, 2, 8, generator=gen)  # a ∈ (0, 1)
    b = torch.randn(T, 2, 8, generator=gen)
    h0 = torch.randn(2, 8, generator=gen)
    exact = loop(a.double(), b.double(), h0.double())
    for method in METHODS:
        got = linear_scan(a, b, h0, method=method)
        assert float((got.double() - exact).abs().max()) <= 1e-5 * float(exact.abs().max())


def test_default_method_is_sequential_on_cpu(monkeypatch):
    module = importlib.import_module("rnnkit.nn.linear_scan")  # (rnnkit.nn.linear_scan the attribute is the function)
    calls = []
    real = module.scan_into
    monkeypatch.setattr(module, "scan_into", lambda *args, **kw: calls.append(args[4]) or real(*args, **kw))
    a, b, h0 = _inputs(4, (2,))
    linear_scan(a, b, h0)
    assert calls == ["sequential"]


def test_bad_arguments_say_what_was_expected():
    a, b, h0 = _inputs(4, (2, 3))
    with pytest.raises(ValueError, match=r"same shape \(T, \.\.\.\), got \(4, 2, 3\) and \(4, 2\)"):
        linear_scan(a, b[..., 0])
    with pytest.raises(ValueError, match=r"h0 must have the shape of one step, \(2, 3\), got \(3,\)"):
        linear_scan(a, b, h0[0])
    with pytest.raises(ValueError, match="T = 0"):
        linear_scan(a[:0], b[:0])
    with pytest.raises(ValueError, match="method must be one of sequential, parallel"):
        linear_scan(a, b, method="blelloch")
    with pytest.raises(TypeError, match="share a dtype"):
        linear_scan(a, b.float())


def test_double_backward_is_refused():
    a, b, h0 = (t.requires_grad_() for t in _inputs(4, (2,)))
    h = linear_scan(a, b, h0)
    with pytest.raises(RuntimeError, match="cannot differentiate twice"):
        torch.autograd.grad((h ** 2).sum(), a, create_graph=True)
    assert math.isfinite(float(torch.autograd.grad((h ** 2).sum(), a)[0].sum()))
