"""Gradient clipping against the lectures' closed forms."""

import math

import pytest
import torch

from rnnkit.nn import clip_grad_norm, clip_grad_value


def _params(*grads):
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros_like(g))
        p.grad = g.clone()
        params.append(p)
    return params


def test_clip_by_norm_rescales_all_gradients_together():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([[0.0], [4.0]])  # global norm 5
    params = _params(a, b)
    norm = clip_grad_norm(params, max_norm=1.0)
    assert math.isclose(float(norm), 5.0, rel_tol=1e-6)  # the norm before clipping
    torch.testing.assert_close(params[0].grad, a / 5.0, rtol=1e-5, atol=0)  # g ← g·V_max/‖g‖
    torch.testing.assert_close(params[1].grad, b / 5.0, rtol=1e-5, atol=0)


def test_clip_by_norm_leaves_small_gradients_alone():
    params = _params(torch.tensor([0.3, -0.4]))
    assert math.isclose(float(clip_grad_norm(params, max_norm=1.0)), 0.5, rel_tol=1e-6)
    torch.testing.assert_close(params[0].grad, torch.tensor([0.3, -0.4]))


def test_clip_by_value_clamps_each_entry_and_returns_the_largest():
    params = _params(torch.tensor([-7.0, 0.5, 2.0]), torch.tensor([3.0]))
    largest = clip_grad_value(params, 1.0)
    assert float(largest) == 7.0
    torch.testing.assert_close(params[0].grad, torch.tensor([-1.0, 0.5, 1.0]))
    torch.testing.assert_close(params[1].grad, torch.tensor([1.0]))


@pytest.mark.parametrize("fn", [clip_grad_norm, clip_grad_value])
def test_non_positive_threshold_is_rejected(fn):
    with pytest.raises(ValueError, match="must be positive"):
        fn(_params(torch.ones(2)), 0.0)
