"""rnnkit.reference: the NumPy forward pass and hand-written BPTT, checked against independent oracles.

(a) forward == rnnkit.nn.cells with the same weights (and the cells' autograd gradients == the hand BPTT);
(b) hand BPTT == torch autograd through torch.nn.RNNCell / LSTMCell / GRUCell, and through plain autograd loops
    written below from the equations (for hardtanh/sigmoid Elman and the reset-before GRU, which torch.nn lacks);
(c) hand BPTT == central finite differences of the reference's own loss.
"lstm-proj" is the LSTM with projections (proj_size P = H, cell width H + 1); its torch.nn oracle is
torch.nn.LSTM(proj_size=P) run one step at a time, torch.nn.LSTMCell having no projection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from rnnkit import reference as ref

CELLS = ["rnn-tanh", "rnn-relu", "rnn-hardtanh", "rnn-sigmoid", "lstm", "lstm-proj", "gru", "gru-before"]
TORCH_NN_CELLS = ["rnn-tanh", "rnn-relu", "lstm", "lstm-proj", "gru"]
GATES = {"lstm": 4, "lstm-proj": 4, "gru": 3, "gru-before": 3}
FAST = settings(max_examples=10, deadline=None)
SIZES = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(2, 4))
SEEDS = st.integers(0, 2**32 - 1)


@dataclass
class Problem:
    cell: str
    params: dict
    head: dict
    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray | None
    targets: np.ndarray


def make_problem(cell, sizes, seed, bias=True) -> Problem:
    """Random weights, inputs and targets; T, B, I, H, K = sizes (K classes)."""
    T, B, I, H, K = sizes
    rng = np.random.default_rng(seed)
    G = GATES.get(cell, 1)
    C = H + 1 if cell == "lstm-proj" else H  # the gates' width; h has H features (= proj_size for lstm-proj)
    params = {"weight_ih": rng.normal(0, 0.7, (G * C, I)), "weight_hh": rng.normal(0, 0.7, (G * C, H))}
    if bias:
        params |= {"bias_ih": rng.normal(0, 0.5, G * C), "bias_hh": rng.normal(0, 0.5, G * C)}
    if cell == "lstm-proj":
        params["weight_hr"] = rng.normal(0, 0.7, (H, C))
    head = {"weight": rng.normal(size=(K, H)), "bias": rng.normal(size=K)}
    c0 = rng.normal(size=(B, C)) if is_lstm(cell) else None
    return Problem(cell, params, head, rng.normal(size=(T, B, I)), rng.normal(0, 0.5, (B, H)), c0,
                   rng.integers(0, K, size=B))


def is_lstm(cell: str) -> bool:
    return cell.startswith("lstm")


def reference_grads(p: Problem) -> ref.SeqToOneGrads:
    name = "lstm" if is_lstm(p.cell) else p.cell  # the reference LSTM projects when params hold weight_hr
    return ref.seq_to_one_loss_and_grads(name, p.params, p.head, p.x, p.h0, p.targets, c0=p.c0)


# ---- torch oracles: each factory takes the cell's weights (torch leaves) and returns step(x_t, state) -------


def torch_nn_step(cell, weights):
    """torch.nn's own cell, called with our weights through torch.func.functional_call."""
    H, I = weights["weight_hh"].shape[1], weights["weight_ih"].shape[1]
    bias = "bias_ih" in weights
    if cell == "lstm-proj":
        module = torch.nn.LSTM(I, weights["weight_hr"].shape[1], bias=bias, proj_size=H).double()
        layer_weights = {k + "_l0": v for k, v in weights.items()}

        def step(x_t, state):
            _, (h, c) = functional_call(module, layer_weights, (x_t[None], (state[0][None], state[1][None])))
            return h[0], c[0]

        return step
    if cell == "lstm":
        module = torch.nn.LSTMCell(I, H, bias=bias)
    elif cell == "gru":
        module = torch.nn.GRUCell(I, H, bias=bias)
    else:
        module = torch.nn.RNNCell(I, H, bias=bias, nonlinearity=cell.removeprefix("rnn-"))
    module = module.double()
    return lambda x_t, state: functional_call(module, weights, (x_t, state))


def plain_step(cell, weights):
    """The cell equations written plainly in torch, for autograd to differentiate."""
    U, W = weights["weight_ih"], weights["weight_hh"]
    b_ih, b_hh = weights.get("bias_ih", 0.0), weights.get("bias_hh", 0.0)
    phi = {"rnn-tanh": torch.tanh, "rnn-relu": torch.relu, "rnn-sigmoid": torch.sigmoid,
           "rnn-hardtanh": lambda a: torch.clamp(a, -1.0, 1.0)}

    def elman(x, h):
        return phi[cell](x @ U.T + b_ih + h @ W.T + b_hh)

    def lstm(x, state):
        h, c = state
        i, f, g, o = (x @ U.T + b_ih + h @ W.T + b_hh).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        m = torch.sigmoid(o) * torch.tanh(c)
        return (m @ weights["weight_hr"].T if "weight_hr" in weights else m), c

    def gru(x, h):
        H = h.shape[1]
        ux_r, ux_z, ux_n = (x @ U.T + b_ih).chunk(3, dim=1)
        W_r, W_z, W_n = W[:H], W[H : 2 * H], W[2 * H :]
        b_hr, b_hz, b_hn = (b_hh[:H], b_hh[H : 2 * H], b_hh[2 * H :]) if torch.is_tensor(b_hh) else (0.0,) * 3
        r = torch.sigmoid(ux_r + h @ W_r.T + b_hr)
        z = torch.sigmoid(ux_z + h @ W_z.T + b_hz)
        if cell == "gru":
            n = torch.tanh(ux_n + r * (h @ W_n.T + b_hn))
        else:
            n = torch.tanh(ux_n + (r * h) @ W_n.T + b_hn)
        return (1 - z) * n + z * h

    return lstm if is_lstm(cell) else gru if cell.startswith("gru") else elman


def rnnkit_step(cell, weights):
    """The cell under test in rnnkit.nn.cells, called with our weights."""
    cells = pytest.importorskip("rnnkit.nn.cells")
    H, I = weights["weight_hh"].shape[1], weights["weight_ih"].shape[1]
    bias = "bias_ih" in weights
    if is_lstm(cell):
        proj = weights["weight_hr"].shape[0] if "weight_hr" in weights else 0
        hidden = weights["weight_hr"].shape[1] if proj else H
        module = cells.LSTMCell(I, hidden, bias=bias, proj_size=proj).double()
        return lambda x_t, state: functional_call(module, weights, (x_t, cells.LSTMState(*state)))
    if cell.startswith("gru"):
        module = cells.GRUCell(I, H, bias=bias, reset="after" if cell == "gru" else "before")
    else:
        module = cells.ElmanCell(I, H, bias=bias, nonlinearity=cell.removeprefix("rnn-"))
    module = module.double()
    return lambda x_t, state: functional_call(module, weights, (x_t, state))


def leaves(p: Problem) -> dict:
    def leaf(a):
        return None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True)

    return {"cell": {k: leaf(v) for k, v in p.params.items()}, "head": {k: leaf(v) for k, v in p.head.items()},
            "x": leaf(p.x), "h0": leaf(p.h0), "c0": leaf(p.c0)}


def unroll(step_factory, p: Problem, leaf: dict):
    """Run step_factory's cell over x from (h0[, c0]); return hs (T, B, H) and the final state."""
    step = step_factory(p.cell, leaf["cell"])
    state = (leaf["h0"], leaf["c0"]) if is_lstm(p.cell) else leaf["h0"]
    hs = []
    for x_t in leaf["x"].unbind(0):
        state = step(x_t, state)
        hs.append(state[0] if is_lstm(p.cell) else state)
    return torch.stack(hs), state


def autograd_seq_to_one(step_factory, p: Problem):
    """The oracle for seq_to_one_loss_and_grads: loss = cross_entropy(V h_T + c, y), then loss.backward()."""
    leaf = leaves(p)
    hs, _ = unroll(step_factory, p, leaf)
    loss = F.cross_entropy(F.linear(hs[-1], leaf["head"]["weight"], leaf["head"]["bias"]),
                           torch.as_tensor(p.targets))
    loss.backward()
    return loss.item(), leaf


def assert_close(actual, expected, what, rtol=1e-6, atol=1e-12):
    expected = expected.detach().numpy() if torch.is_tensor(expected) else expected
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def assert_grads_match(out: ref.SeqToOneGrads, loss: float, leaf: dict):
    assert_close(out.loss, loss, "loss")
    assert set(out.cell) == set(leaf["cell"]) and set(out.head) == set(leaf["head"])
    for group in ("cell", "head"):
        for name, t in leaf[group].items():
            assert_close(getattr(out, group)[name], t.grad, f"d loss / d {group}.{name}")
    for name in ("x", "h0", "c0"):
        if leaf[name] is not None:
            assert_close(getattr(out, name), leaf[name].grad, f"d loss / d {name}")
    assert (out.c0 is None) == (leaf["c0"] is None)


# ---- (b) hand-written BPTT == torch autograd ----------------------------------------------------------------


@pytest.mark.parametrize("cell", TORCH_NN_CELLS)
@FAST
@given(sizes=SIZES, seed=SEEDS, bias=st.booleans())
def test_bptt_matches_autograd_through_torch_nn(cell, sizes, seed, bias):
    p = make_problem(cell, sizes, seed, bias)
    assert_grads_match(reference_grads(p), *autograd_seq_to_one(torch_nn_step, p))


@pytest.mark.parametrize("cell", CELLS)
@FAST
@given(sizes=SIZES, seed=SEEDS, bias=st.booleans())
def test_bptt_matches_autograd_through_plain_equations(cell, sizes, seed, bias):
    p = make_problem(cell, sizes, seed, bias)
    assert_grads_match(reference_grads(p), *autograd_seq_to_one(plain_step, p))


@pytest.mark.parametrize("cell", CELLS)
@FAST
@given(sizes=SIZES, seed=SEEDS)
def test_bptt_with_errors_at_every_step_matches_autograd(cell, sizes, seed):
    """dhs (a loss at every step) and dh_T, dc_T (a loss on the final state) all enter the backward pass."""
    p = make_problem(cell, sizes, seed)
    T, B, _, H, _ = sizes
    rng = np.random.default_rng(seed + 1)
    dhs, dh_T = rng.normal(size=(T, B, H)), rng.normal(size=(B, H))
    dc_T = None if p.c0 is None else rng.normal(size=p.c0.shape)

    leaf = leaves(p)
    oracle = torch_nn_step if cell in TORCH_NN_CELLS else plain_step
    hs, state = unroll(oracle, p, leaf)
    h_T = state[0] if is_lstm(cell) else state
    loss = (hs * torch.as_tensor(dhs)).sum() + (h_T * torch.as_tensor(dh_T)).sum()
    if is_lstm(cell):
        loss = loss + (state[1] * torch.as_tensor(dc_T)).sum()
    loss.backward()

    if is_lstm(cell):
        _, cache = ref.lstm_forward(p.params, p.x, p.h0, p.c0)
        grads, dx, dh0, dc0 = ref.lstm_backward(p.params, cache, dhs, dh_T, dc_T)
        assert_close(dc0, leaf["c0"].grad, "dc0")
    elif cell.startswith("gru"):
        _, cache = ref.gru_forward(p.params, p.x, p.h0, reset="after" if cell == "gru" else "before")
        grads, dx, dh0 = ref.gru_backward(p.params, cache, dhs, dh_T)
    else:
        _, cache = ref.elman_forward(p.params, p.x, p.h0, nonlinearity=cell.removeprefix("rnn-"))
        grads, dx, dh0 = ref.elman_backward(p.params, cache, dhs, dh_T)
    for name, t in leaf["cell"].items():
        assert_close(grads[name], t.grad, name)
    assert_close(dx, leaf["x"].grad, "dx")
    assert_close(dh0, leaf["h0"].grad, "dh0")


# ---- (c) hand-written BPTT == central finite differences ------------------------------------------------------


def pre_activation_distance_to_kinks(p: Problem) -> float:
    """How close any Elman pre-activation comes to a kink of relu (0) or hardtanh (±1)."""
    if p.cell not in ("rnn-relu", "rnn-hardtanh"):
        return np.inf
    _, cache = ref.elman_forward(p.params, p.x, p.h0, nonlinearity=p.cell.removeprefix("rnn-"))
    kinks = [0.0] if p.cell == "rnn-relu" else [-1.0, 1.0]
    return min(np.abs(cache["a"] - k).min() for k in kinks)


@pytest.mark.parametrize("cell", CELLS)
@FAST
@given(sizes=SIZES, seed=SEEDS)
def test_bptt_matches_finite_differences(cell, sizes, seed):
    p = make_problem(cell, sizes, seed)
    eps = 1e-6
    assume(pre_activation_distance_to_kinks(p) > 1e-3)  # a difference quotient across a kink is no derivative
    out = reference_grads(p)
    rng = np.random.default_rng(seed + 2)
    arrays = {f"cell.{k}": (p.params[k], out.cell[k]) for k in p.params}
    arrays |= {f"head.{k}": (p.head[k], out.head[k]) for k in p.head}
    arrays |= {"x": (p.x, out.x), "h0": (p.h0, out.h0)}
    if is_lstm(cell):
        arrays["c0"] = (p.c0, out.c0)
    for name, (array, grad) in arrays.items():
        for _ in range(3):  # a few randomly chosen entries of every weight and input
            idx = tuple(rng.integers(0, n) for n in array.shape)
            saved = array[idx]
            array[idx] = saved + eps
            loss_plus = reference_grads(p).loss
            array[idx] = saved - eps
            loss_minus = reference_grads(p).loss
            array[idx] = saved
            numeric = (loss_plus - loss_minus) / (2 * eps)
            assert_close(grad[idx], numeric, f"d loss / d {name}{list(idx)}", rtol=1e-5, atol=1e-8)


# ---- (a) reference forward == rnnkit.nn.cells --------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@FAST
@given(sizes=SIZES, seed=SEEDS, bias=st.booleans())
def test_forward_matches_rnnkit_cells(cell, sizes, seed, bias):
    p = make_problem(cell, sizes, seed, bias)
    with torch.no_grad():
        hs, state = unroll(rnnkit_step, p, leaves(p))
    if is_lstm(cell):
        expected, cache = ref.lstm_forward(p.params, p.x, p.h0, p.c0)
        assert_close(state[1], cache["cs"][-1], "c_T", rtol=1e-12)
    elif cell.startswith("gru"):
        expected, _ = ref.gru_forward(p.params, p.x, p.h0, reset="after" if cell == "gru" else "before")
    else:
        expected, _ = ref.elman_forward(p.params, p.x, p.h0, nonlinearity=cell.removeprefix("rnn-"))
    assert_close(hs, expected, "h_1..h_T", rtol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@FAST
@given(sizes=SIZES, seed=SEEDS)
def test_rnnkit_cell_gradients_match_bptt(cell, sizes, seed):
    p = make_problem(cell, sizes, seed)
    assert_grads_match(reference_grads(p), *autograd_seq_to_one(rnnkit_step, p))


# ---- errors speak the user's language ------------------------------------------------------------------


def test_bad_shapes_and_names_are_reported():
    p = make_problem("gru", (3, 2, 4, 5, 3), seed=0)
    with pytest.raises(ValueError, match=r"weight_hh of shape \(15, 5\)"):
        ref.gru_forward(p.params | {"weight_hh": np.zeros((15, 4))}, p.x, p.h0)
    with pytest.raises(ValueError, match=r"expected x of shape \(T, B, I\)"):
        ref.gru_forward(p.params, p.x[0], p.h0)
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        ref.elman_forward(p.params, p.x, p.h0, nonlinearity="gelu")
    with pytest.raises(ValueError, match="unknown cell"):
        ref.seq_to_one_loss_and_grads("lstm2", p.params, p.head, p.x, p.h0, p.targets)
    with pytest.raises(ValueError, match="targets"):
        ref.softmax_loss_forward(p.head, p.h0, np.array([0, 7]))
    q = make_problem("lstm-proj", (3, 2, 4, 2, 3), seed=0)  # h (B, 2), c (B, 3)
    with pytest.raises(ValueError, match=r"weight_hr of shape \(2, 3\)"):
        ref.lstm_forward(q.params | {"weight_hr": np.zeros((3, 2))}, q.x, q.h0, q.c0)
    with pytest.raises(ValueError, match=r"c0 of shape \(B=2, H\)"):
        ref.lstm_forward(q.params, q.x, q.h0, q.c0[:1])
