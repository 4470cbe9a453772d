"""Cells against independent oracles: torch.nn's cells, the equations written out plainly, finite differences."""

import pytest
import torch
from torch.autograd import gradcheck

from rnnkit.nn import ElmanCell, GRUCell, LayerNormLSTMCell, LSTMCell, LSTMState, detach_state

B, I, H = 3, 4, 5


pytestmark = pytest.mark.usefixtures("float64_seeded")


def _grads(module, *tensors):
    return [p.grad.clone() for p in module.parameters()] + [t.grad.clone() for t in tensors]


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: ElmanCell(I, H, nonlinearity="tanh"), lambda: torch.nn.RNNCell(I, H, nonlinearity="tanh")),
        (lambda: ElmanCell(I, H, nonlinearity="relu"), lambda: torch.nn.RNNCell(I, H, nonlinearity="relu")),
        (lambda: LSTMCell(I, H), lambda: torch.nn.LSTMCell(I, H)),
        (lambda: GRUCell(I, H, reset="after"), lambda: torch.nn.GRUCell(I, H)),
        (lambda: ElmanCell(I, H, bias=False), lambda: torch.nn.RNNCell(I, H, bias=False)),
    ],
)
def test_cell_matches_torch_nn_cell_forward_and_backward(ours, theirs):
    ref, cell = theirs(), ours()
    cell.load_state_dict(ref.state_dict())  # same names, same layout
    x = torch.randn(B, I, requires_grad=True)
    h0 = torch.randn(B, H, requires_grad=True)
    lstm = isinstance(cell, LSTMCell)
    c0 = torch.randn(B, H, requires_grad=True)
    state = (h0, c0) if lstm else h0
    expected = ref(x, state)
    got = cell(x, state)
    expected_h = expected[0] if lstm else expected
    got_h = got.h if lstm else got
    torch.testing.assert_close(got_h, expected_h, rtol=0, atol=1e-12)
    (expected_h.sum() + (expected[1].sum() if lstm else 0)).backward()
    want = _grads(ref, x, h0)
    for t in (x, h0, c0):
        t.grad = None
    (got_h.sum() + (got.c.sum() if lstm else 0)).backward()
    for g, w in zip(_grads(cell, x, h0), want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def _split(cell, k):
    """Gate block k of U, W, b_ih, b_hh."""
    rows = slice(k * H, (k + 1) * H)
    return cell.weight_ih[rows], cell.weight_hh[rows], cell.bias_ih[rows], cell.bias_hh[rows]


def _gru_by_hand(cell, x, h, lecture=False):
    """The GRU equations written out; ``lecture`` uses z' = σ(−a_z) = 1 − z and h = (1 − z')h_prev + z' n."""
    (Ur, Wr, br, cr), (Uz, Wz, bz, cz), (Un, Wn, bn, cn) = (_split(cell, k) for k in range(3))
    r = torch.sigmoid(x @ Ur.T + br + h @ Wr.T + cr)
    a_z = x @ Uz.T + bz + h @ Wz.T + cz
    if cell.reset == "before":
        n = torch.tanh(x @ Un.T + bn + (r * h) @ Wn.T + cn)
    else:
        n = torch.tanh(x @ Un.T + bn + r * (h @ Wn.T + cn))
    if lecture:
        z_lecture = torch.sigmoid(-a_z)
        return (1 - z_lecture) * h + z_lecture * n
    z = torch.sigmoid(a_z)
    return (1 - z) * n + z * h


@pytest.mark.parametrize("reset", ["before", "after"])
@pytest.mark.parametrize("lecture", [False, True])
def test_gru_both_forms_and_both_conventions(reset, lecture):
    cell = GRUCell(I, H, reset=reset)
    x, h = torch.randn(B, I), torch.randn(B, H)
    torch.testing.assert_close(cell(x, h), _gru_by_hand(cell, x, h, lecture))


def test_gru_forms_differ():
    before, after = GRUCell(I, H, reset="before"), GRUCell(I, H, reset="after")
    after.load_state_dict(before.state_dict())  # interchangeable state_dicts ...
    x, h = torch.randn(B, I), torch.randn(B, H)
    assert (before(x, h) - after(x, h)).abs().max() > 1e-3  # ... for different models


@pytest.mark.parametrize(
    "phi, fn", [("hardtanh", lambda a: a.clamp(-1, 1)), ("sigmoid", lambda a: 1 / (1 + (-a).exp()))]
)
def test_elman_other_nonlinearities(phi, fn):
    cell = ElmanCell(I, H, nonlinearity=phi)
    x, h = torch.randn(B, I) * 3, torch.randn(B, H)
    expected = fn(x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh)
    torch.testing.assert_close(cell(x, h), expected)


def test_layer_norm_lstm_follows_ba_et_al():
    cell = LayerNormLSTMCell(I, H)
    with torch.no_grad():
        for p in (cell.ln_ih_weight, cell.ln_hh_weight, cell.ln_c_weight, cell.ln_c_bias):
            p.normal_()
    x, h, c = torch.randn(B, I), torch.randn(B, H), torch.randn(B, H)

    def ln(a, gain, shift=0.0):
        mu, var = a.mean(-1, keepdim=True), a.var(-1, unbiased=False, keepdim=True)
        return gain * (a - mu) / torch.sqrt(var + 1e-5) + shift

    pre = ln(x @ cell.weight_ih.T, cell.ln_ih_weight) + ln(h @ cell.weight_hh.T, cell.ln_hh_weight)
    i, f, g, o = (pre + cell.bias_ih + cell.bias_hh).chunk(4, -1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(ln(c_new, cell.ln_c_weight, cell.ln_c_bias))
    got = cell(x, LSTMState(h, c))
    torch.testing.assert_close(got.c, c_new)
    torch.testing.assert_close(got.h, h_new)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ElmanCell(I, H, nonlinearity="sigmoid"),
        lambda: LSTMCell(I, H),
        lambda: GRUCell(I, H, reset="before"),
        lambda: GRUCell(I, H, reset="after"),
        lambda: LayerNormLSTMCell(I, H),
    ],
)
def test_cell_gradients_match_finite_differences(make):
    cell = make()
    names = [n for n, _ in cell.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in cell.parameters())
    x, h = torch.randn(2, I, requires_grad=True), torch.randn(2, H, requires_grad=True)
    lstm = isinstance(cell, LSTMCell)

    def f(x, h, *ps):
        out = torch.func.functional_call(cell, dict(zip(names, ps)), (x, (h, h * 0.5) if lstm else h))
        return tuple(out) if lstm else out

    assert gradcheck(f, (x, h, *params), eps=1e-6, atol=1e-6)


def test_unbatched_step_equals_batch_of_one():
    cell = LSTMCell(I, H)
    x, h, c = torch.randn(I), torch.randn(H), torch.randn(H)
    single = cell(x, (h, c))
    batched = cell(x[None], (h[None], c[None]))
    torch.testing.assert_close(single.h, batched.h[0])
    torch.testing.assert_close(single.c, batched.c[0])


def test_cell_shape_error_names_expected_and_found():
    with pytest.raises(RuntimeError, match=r"got 7 expected 4 \(input must be \(B, 4\) or \(4,\)\)"):
        LSTMCell(I, H)(torch.randn(3, 7))
    with pytest.raises(ValueError, match="reset must be"):
        GRUCell(I, H, reset="sideways")
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        ElmanCell(I, H, nonlinearity="swish")


def test_detach_state_cuts_the_graph_and_keeps_values():
    h = torch.randn(B, H, requires_grad=True)
    state = LSTMState(h * 2, h * 3)
    cut = detach_state(state)
    assert isinstance(cut, LSTMState) and not cut.h.requires_grad and not cut.c.requires_grad
    torch.testing.assert_close(cut.c, state.c)
    assert detach_state(None) is None
    assert not detach_state(h * 2).requires_grad


def test_state_of_plain_tuple_is_accepted():
    cell = LSTMCell(I, H)
    x, h, c = torch.randn(B, I), torch.randn(B, H), torch.randn(B, H)
    torch.testing.assert_close(cell(x, (h, c)).h, cell(x, LSTMState(h, c)).h)


def test_projected_lstm_cell_follows_its_equations():
    """h_t = W_hr (o ⊙ tanh(c_t)): the plain cell's step, then the projection (Sak et al. 2014)."""
    cell = LSTMCell(I, H, proj_size=2)
    assert tuple(cell.weight_hh.shape) == (4 * H, 2) and tuple(cell.weight_hr.shape) == (2, H)
    x, h, c = torch.randn(B, I), torch.randn(B, 2), torch.randn(B, H)
    i, f, g, o = (x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = (torch.sigmoid(o) * torch.tanh(c_new)) @ cell.weight_hr.T
    got = cell(x, (h, c))
    torch.testing.assert_close(got.h, h_new)
    torch.testing.assert_close(got.c, c_new)
    zero = cell(x)
    assert zero.h.shape == (B, 2) and zero.c.shape == (B, H)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        LSTMCell(I, H, proj_size=H)


def test_lstm_state_builds_like_a_named_tuple_and_like_a_tuple():
    h, c = torch.randn(B, H), torch.randn(B, H)
    for state in (LSTMState(h, c), LSTMState(h=h, c=c), LSTMState([h, c]), LSTMState(iter((h, c)))):
        assert state.h is h and state.c is c and tuple(state) == (h, c)
    assert LSTMState._make([h, c]).c is c and LSTMState(h, c)._replace(c=h).c is h
    with pytest.raises(TypeError):
        LSTMState(h)  # one tensor is not an (h, c) pair (and is not unbound into rows)


def test_cells_take_device_and_dtype():
    cell = GRUCell(I, H, True, "cpu", torch.float32, reset="before")
    assert {p.dtype for p in cell.parameters()} == {torch.float32}
    assert LayerNormLSTMCell(I, H, dtype=torch.float32).ln_c_weight.dtype == torch.float32
