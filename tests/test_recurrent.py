"""Layers against independent oracles: torch.nn (both ways), a manual loop over the cell, each sequence alone."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit.nn import CELLS, LSTMState, Recurrent, reverse_padded
from rnnkit.nn.recurrent import _lengths_of

FUSABLE = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn-tanh": torch.nn.RNN, "rnn-relu": torch.nn.RNN}
LOOP_ONLY = ["rnn-hardtanh", "rnn-sigmoid", "gru-before", "ln-lstm", "irnn"]


pytestmark = pytest.mark.usefixtures("float64_seeded")


def _torch_twin(name, layer):
    kwargs = {"nonlinearity": name.split("-")[1]} if name.startswith("rnn") else {}
    return FUSABLE[name](layer.input_size, layer.hidden_size, layer.num_layers, bias=layer.bias,
                         batch_first=layer.batch_first, bidirectional=layer.bidirectional, **kwargs)


def _h(state):
    return state.h if isinstance(state, tuple) else state


def _flat(out, state):
    parts = [out] + (list(state) if isinstance(state, tuple) else [state])
    return parts


def _loss(parts):
    """A fixed, non-symmetric weighting of every output, so gradients see all of them."""
    return sum((p * torch.linspace(-1, 1, p.numel()).view_as(p)).sum() for p in parts)


def _grads_of(module, loss, *extra):
    params = list(module.parameters())
    return torch.autograd.grad(loss, params + list(extra))


def _random_lengths(T, B):
    lengths = torch.randint(1, T + 1, (B,))
    lengths[0] = T
    return lengths


# -- torch.nn parity (e) ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FUSABLE))
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_torch_state_dict_loads_and_gives_the_same_outputs_and_gradients(name, bidirectional, batch_first):
    ours = Recurrent(name, 3, 4, num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    theirs = _torch_twin(name, ours)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(5, 6, 3, requires_grad=True)
    D = 2 if bidirectional else 1
    h0 = torch.randn(2 * D, 5 if batch_first else 6, 4)
    state = (h0, h0 * 0.5) if name == "lstm" else h0
    for fused in (True, False):
        ours.use_fused = fused
        got, expected = ours(x, state), theirs(x, state)
        for a, b in zip(_flat(*got), _flat(*expected)):
            torch.testing.assert_close(a, b)
        for a, b in zip(_grads_of(ours, _loss(_flat(*got)), x), _grads_of(theirs, _loss(_flat(*expected)), x)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", list(FUSABLE))
def test_our_state_dict_loads_into_torch_nn(name):
    ours = Recurrent(name, 3, 4, num_layers=2, bidirectional=True, init="orthogonal")
    theirs = _torch_twin(name, ours)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(7, 2, 3)
    for a, b in zip(_flat(*ours(x)), _flat(*theirs(x))):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", list(FUSABLE))
def test_packed_sequence_in_packed_sequence_out_like_torch(name):
    ours = Recurrent(name, 3, 4, num_layers=2, bidirectional=True)
    theirs = _torch_twin(name, ours)
    ours.load_state_dict(theirs.state_dict())
    x, lengths = torch.randn(6, 4, 3), torch.tensor([3, 6, 1, 4])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    for fused in (True, False):
        ours.use_fused = fused
        (out, state), (want, want_state) = ours(packed), theirs(packed)
        torch.testing.assert_close(out.data, want.data)
        assert torch.equal(out.batch_sizes, want.batch_sizes)
        assert torch.equal(out.unsorted_indices, want.unsorted_indices)
        torch.testing.assert_close(_h(state), want_state[0] if name == "lstm" else want_state)


def test_training_dropout_consumes_the_rng_like_torch_nn():
    ours = rnnkit.LSTM(3, 4, num_layers=3, dropout=0.5)
    theirs = torch.nn.LSTM(3, 4, num_layers=3, dropout=0.5)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(5, 2, 3)
    torch.manual_seed(7)
    want = theirs(x)[0]
    torch.manual_seed(7)
    torch.testing.assert_close(ours(x)[0], want)


# -- fused path == loop path (d), any shape ---------------------------------------------------------------------
@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(list(FUSABLE)),
    T=st.integers(1, 6), B=st.integers(1, 4), I=st.integers(1, 4), H=st.integers(1, 4),
    layers=st.integers(1, 2), bidirectional=st.booleans(), padded=st.booleans(), seed=st.integers(0, 99),
)
def test_fused_and_loop_paths_agree(name, T, B, I, H, layers, bidirectional, padded, seed):
    torch.manual_seed(seed)
    layer = Recurrent(name, I, H, num_layers=layers, bidirectional=bidirectional)
    x = torch.randn(T, B, I, requires_grad=True)
    lengths = _random_lengths(T, B) if padded else None
    results = []
    for fused in (True, False):
        layer.use_fused = fused
        assert layer.path == ("fused" if fused else "loop: use_fused=False")
        parts = _flat(*layer(x, lengths=lengths))
        results.append((parts, _grads_of(layer, _loss(parts), x)))
    for a, b in zip(results[0][0] + list(results[0][1]), results[1][0] + list(results[1][1])):
        torch.testing.assert_close(a, b)


# -- layer == a manual loop over the cell ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CELLS))
def test_layer_equals_a_manual_loop_over_its_cells(name):
    layer = Recurrent(name, 3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 3)
    out, state = layer(x)
    cells = layer.cells
    inputs, finals = x, []
    for k in range(2):
        directions = []
        for d in range(2):
            cell, s, outs = cells[2 * k + d], None, []
            steps = range(5) if d == 0 else reversed(range(5))
            for t in steps:
                s = cell(inputs[t], s)
                outs.append(_h(s))
            directions.append(torch.stack(outs if d == 0 else outs[::-1]))
            finals.append(s)
        inputs = torch.cat(directions, dim=-1)
    torch.testing.assert_close(out, inputs)
    torch.testing.assert_close(_h(state), torch.stack([_h(s) for s in finals]))


# -- variable lengths (f) --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lstm", "gru", "rnn-relu"] + LOOP_ONLY)
def test_padded_batch_equals_each_sequence_alone(name):
    layer = Recurrent(name, 3, 4, num_layers=2, bidirectional=True)
    T, lengths = 6, torch.tensor([2, 6, 4, 1])
    x = torch.randn(T, 4, 3)
    h0 = torch.randn(4, 4, 4)
    state0 = LSTMState(h0, -h0) if "lstm" in name else h0
    out, state = layer(x, state0, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        s0 = type(state0)(*(s[:, b : b + 1] for s in state0)) if isinstance(state0, tuple) else state0[:, b : b + 1]
        alone, alone_state = layer(x[:n, b : b + 1], s0)
        torch.testing.assert_close(out[:n, b : b + 1], alone)
        assert out[n:, b].abs().max() == 0 if n < T else True  # padded outputs are zero
        for got, want in zip(_flat(None, state)[1:], _flat(None, alone_state)[1:]):
            torch.testing.assert_close(got[:, b : b + 1], want)


def test_bidirectional_final_state_is_not_the_last_output():
    layer = rnnkit.GRU(3, 4, bidirectional=True)
    lengths = torch.tensor([5, 3])
    out, h_n = layer(torch.randn(5, 2, 3), lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(h_n[0, b], out[n - 1, b, :4])  # forward: at its own last step
        torch.testing.assert_close(h_n[1, b], out[0, b, 4:])  # reverse: after reading back to t = 0


def test_reverse_padded_reverses_within_each_length():
    x = torch.arange(12.0).view(4, 3, 1)
    got = reverse_padded(x, torch.tensor([4, 2, 1]))[:, :, 0]
    col = x[:, :, 0]
    torch.testing.assert_close(got[:, 0], col[:, 0].flip(0))
    torch.testing.assert_close(got[:, 1], torch.stack([col[1, 1], col[0, 1], col[2, 1], col[3, 1]]))
    torch.testing.assert_close(got[:, 2], col[:, 2])


def test_lengths_of_packed_sequence():
    lengths = torch.tensor([3, 5, 1, 5])
    packed = pack_padded_sequence(torch.zeros(5, 4, 1), lengths, enforce_sorted=False)
    torch.testing.assert_close(_lengths_of(packed), lengths[packed.sorted_indices])
    assert pad_packed_sequence(packed)[1].tolist() == lengths.tolist()


# -- truncated BPTT: chunks carrying the state == one long forward ------------------------------------------------
@pytest.mark.parametrize("name", ["lstm", "gru-before", "ln-lstm"])
def test_chunks_carrying_state_equal_one_forward(name):
    layer = Recurrent(name, 3, 4, num_layers=2)
    x = torch.randn(9, 2, 3)
    whole, whole_state = layer(x)
    state, outs = None, []
    for chunk in x.split(4):
        out, state = layer(chunk, rnnkit.nn.detach_state(state))
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs), whole)
    torch.testing.assert_close(_h(state), _h(whole_state))


# -- gradients of the loop path: finite differences -----------------------------------------------------------
@pytest.mark.parametrize("name", ["gru-before", "ln-lstm", "rnn-sigmoid"])
def test_loop_path_gradients_match_finite_differences(name):
    layer = Recurrent(name, 2, 3, num_layers=2, bidirectional=True, skip="highway")
    names = [n for n, _ in layer.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())
    x = torch.randn(4, 2, 2, requires_grad=True)
    lengths = torch.tensor([4, 2])

    def f(x, *ps):
        out, state = torch.func.functional_call(layer, dict(zip(names, ps)), (x,), {"lengths": lengths})
        return out, _h(state)

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6, fast_mode=True)


# -- between-layer extras -----------------------------------------------------------------------------------------
def _single_layers(stack, name):
    """Single-layer stacks carrying the weights of each layer of ``stack``."""
    singles = []
    for k in range(stack.num_layers):
        single = Recurrent(name, stack.input_size if k == 0 else stack.hidden_size, stack.hidden_size)
        single.load_state_dict({n.replace(f"_l{k}", "_l0"): p for n, p in stack.state_dict().items()
                                if n.endswith(f"_l{k}") and not n.startswith("highway")})
        singles.append(single)
    return singles


@pytest.mark.parametrize("name", ["lstm", "gru-before"])
def test_residual_and_highway_follow_their_equations(name):
    for skip in ("residual", "highway"):
        stack = Recurrent(name, 4, 4, num_layers=3, skip=skip)
        x = torch.randn(5, 2, 4)
        h = _single_layers(stack, name)[0](x)[0]
        for k, single in enumerate(_single_layers(stack, name)[1:], start=1):
            f = single(h)[0]
            if skip == "residual":
                h = f + h
            else:
                g = torch.sigmoid(h @ getattr(stack, f"highway_weight_l{k}").T + getattr(stack, f"highway_bias_l{k}"))
                h = g * f + (1 - g) * h
        torch.testing.assert_close(stack(x)[0], h)


def test_variational_dropout_uses_one_mask_per_sequence():
    layer = Recurrent("lstm", 3, 6, num_layers=2, dropout=0.5, variational=True)
    dropped = layer._between_layers(torch.ones(20, 4, 6), k=1)
    assert torch.equal(dropped, dropped[:1].expand_as(dropped))  # the same mask at every step
    kept = (dropped != 0).double().mean()
    assert 0.2 < kept < 0.8 and set(dropped.unique().tolist()) <= {0.0, 2.0}  # inverted dropout scaling 1/(1-p)
    step = Recurrent("lstm", 3, 6, num_layers=2, dropout=0.5)._between_layers(torch.ones(20, 4, 6), k=1)
    assert not torch.equal(step, step[:1].expand_as(step))  # standard dropout: a new mask each step
    layer.eval()
    torch.testing.assert_close(layer._between_layers(torch.ones(3, 2, 6), k=1), torch.ones(3, 2, 6))


def test_paths_are_named():
    assert rnnkit.LSTM(3, 4).path == "fused"
    assert rnnkit.GRU(3, 4, reset="before").path == "loop: GRU with reset='before' has no fused kernel"
    assert rnnkit.RNN(3, 4, nonlinearity="sigmoid").path == "loop: Elman RNN with sigmoid has no fused kernel"
    assert rnnkit.LSTM(3, 4, cell="ln-lstm").path == "loop: layer-norm LSTM has no fused kernel"
    assert Recurrent("lstm", 3, 4, 2, skip="residual").path == "fused per layer: residual skip"
    assert Recurrent("gru", 3, 4, 2, dropout=0.2, variational=True).path == "fused per layer: variational dropout"


def test_per_layer_fused_equals_loop_with_skips():
    layer = Recurrent("gru", 4, 4, num_layers=3, skip="highway", bidirectional=False)
    x = torch.randn(6, 3, 4)
    lengths = torch.tensor([6, 1, 3])
    fused = layer(x, lengths=lengths)
    layer.use_fused = False
    looped = layer(x, lengths=lengths)
    torch.testing.assert_close(fused[0], looped[0])
    torch.testing.assert_close(fused[1], looped[1])


# -- initialisers: closed forms ---------------------------------------------------------------------------------------
def test_identity_init_is_irnn():
    layer = Recurrent("irnn", 3, 5)
    torch.testing.assert_close(layer.weight_hh_l0, torch.eye(5))
    assert layer.bias_ih_l0.abs().max() == 0 and layer.bias_hh_l0.abs().max() == 0
    assert layer.weight_ih_l0.std() < 0.01


def test_orthogonal_init_gives_orthogonal_gate_blocks():
    layer = rnnkit.LSTM(3, 5, init="orthogonal")
    for k in range(4):
        W = layer.weight_hh_l0[k * 5 : (k + 1) * 5]
        torch.testing.assert_close(W.T @ W, torch.eye(5))


def test_uniform_init_and_forget_bias():
    layer = rnnkit.LSTM(3, 50, num_layers=2, init="uniform(0.05)", forget_bias=1.0)
    for k in range(2):
        b = getattr(layer, f"bias_ih_l{k}") + getattr(layer, f"bias_hh_l{k}")
        torch.testing.assert_close(b[50:100], torch.ones(50))  # the forget block (i, f, g, o)
        w = getattr(layer, f"weight_hh_l{k}")
        assert w.abs().max() <= 0.05 and w.abs().max() > 0.045
    default = rnnkit.LSTM(3, 50, forget_bias=None)
    assert default.weight_hh_l0.abs().max() <= 50**-0.5


# -- shapes and errors -------------------------------------------------------------------------------------------------
def test_unbatched_input_equals_batch_of_one():
    layer = rnnkit.LSTM(3, 4, num_layers=2)
    x = torch.randn(5, 3)
    out, (h, c) = layer(x)
    out1, (h1, c1) = layer(x[:, None])
    torch.testing.assert_close(out, out1[:, 0])
    torch.testing.assert_close(h, h1[:, 0])


def test_shape_errors_say_what_was_expected():
    """torch.nn's exception types (tests/test_torch_contract.py compares them side by side), our wording."""
    layer = rnnkit.LSTM(32, 8)
    with pytest.raises(RuntimeError, match=r"input must be \(T, B, 32\) with batch_first=False, got \(8, 5, 31\)"):
        layer(torch.randn(8, 5, 31))
    with pytest.raises(RuntimeError, match=r"input must be \(B, T, 32\) with batch_first=True, got \(5, 8, 31\)"):
        rnnkit.LSTM(32, 8, batch_first=True)(torch.randn(5, 8, 31))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 5, 8\), got \[2, 5, 8\]"):
        layer(torch.randn(8, 5, 32), (torch.zeros(2, 5, 8), torch.zeros(2, 5, 8)))
    with pytest.raises(TypeError, match="pair"):
        layer(torch.randn(8, 5, 32), torch.zeros(1, 5, 8))


@pytest.mark.parametrize("lengths", [[0, 3], [3, 9], [3], [1.5, 2.0]])
def test_bad_lengths_are_value_errors(lengths):
    with pytest.raises(ValueError, match="lengths"):
        rnnkit.GRU(2, 3)(torch.randn(3, 2, 2), lengths=torch.tensor(lengths))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"cell": "lsmt"}, "unknown cell 'lsmt'"), ({"skip": "dense"}, "skip must be"), ({"dropout": 1.5}, "dropout"),
     ({"init": "uniform(-1)"}, "init must be"), ({"init": "xavier"}, "init must be")],
)
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Recurrent(**{"cell": "lstm", "input_size": 2, "hidden_size": 3, **kwargs})


def test_module_moves_keep_cells_bound_to_the_layer_parameters():
    layer = rnnkit.GRU(2, 3, reset="before")
    layer.float()  # replaces parameter data; the cells must see the new tensors
    out = layer(torch.randn(4, 1, 2, dtype=torch.float32))[0]
    assert out.dtype == torch.float32
    import copy

    twin = copy.deepcopy(layer)
    with torch.no_grad():
        twin.weight_hh_l0.zero_()
    assert twin.cells[0].weight_hh is twin.weight_hh_l0 and layer.weight_hh_l0.abs().sum() > 0


# -- the plan: a value computed once per configuration -----------------------------------------------------------
def test_the_plan_is_a_frozen_value_computed_when_options_change():
    import dataclasses

    from rnnkit.nn import Kind

    layer = Recurrent("gru", 3, 4, num_layers=2)
    plan = layer.plan
    assert (plan.kind, plan.reason) == (Kind.FUSED, "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.kind = Kind.LOOP
    layer(torch.randn(3, 2, 3))
    assert layer.plan is plan  # a forward does not recompute it
    layer.use_fused = False
    assert (layer.plan.kind, layer.plan.reason) == (Kind.LOOP, "use_fused=False") and layer.path == layer.plan.path
    layer.use_fused, layer.dropout, layer.variational = True, 0.3, True
    assert (layer.plan.kind, layer.plan.reason) == (Kind.FUSED_PER_LAYER, "variational dropout")
    assert layer.plan.scans == ()  # no time loop on a fused path
    loop = Recurrent("gru-before", 3, 4, num_layers=2, bidirectional=True).plan
    assert len(loop.scans) == 4 and all(s is not None for s in loop.scans)  # the fast scan for each cell


def test_forward_dispatches_on_the_plan_kind():
    """Replacing the plan (not the display string) is what changes the path a forward takes."""
    from rnnkit.nn.plan import Kind, Plan

    layer = Recurrent("lstm", 3, 4)
    x = torch.randn(4, 2, 3)
    fused = layer(x)
    calls = []

    def recording_scan(cell, ux, state, alive):
        calls.append(ux.shape)
        return rnnkit.nn.python_scan(cell, ux, state, alive)

    layer.__dict__["_plan"] = Plan(Kind.LOOP, "test", (recording_scan,))
    looped = layer(x)
    assert calls == [(4, 2, 16)]
    for a, b in zip(_flat(*fused), _flat(*looped)):
        torch.testing.assert_close(a, b)


# -- LSTM with projections ----------------------------------------------------------------------------------------
@settings(max_examples=10, deadline=None)
@given(T=st.integers(1, 5), B=st.integers(1, 4), H=st.integers(2, 5), layers=st.integers(1, 2),
       bidirectional=st.booleans(), padded=st.booleans(), seed=st.integers(0, 99))
def test_projected_lstm_fused_and_loop_paths_agree(T, B, H, layers, bidirectional, padded, seed):
    torch.manual_seed(seed)
    layer = rnnkit.LSTM(3, H, layers, bidirectional=bidirectional, proj_size=H - 1)
    x = torch.randn(T, B, 3, requires_grad=True)
    lengths = _random_lengths(T, B) if padded else None
    results = []
    for fused in (True, False):
        layer.use_fused = fused
        parts = _flat(*layer(x, lengths=lengths))
        results.append((parts, _grads_of(layer, _loss(parts), x)))
    assert results[0][0][1].shape[-1] == H - 1 and results[0][0][2].shape[-1] == H  # h (.., P), c (.., H)
    for a, b in zip(results[0][0] + list(results[0][1]), results[1][0] + list(results[1][1])):
        torch.testing.assert_close(a, b)


def test_projected_lstm_paths_are_named():
    layer = rnnkit.LSTM(3, 4, proj_size=2)
    assert layer.path == "fused"
    layer.use_fused = False
    assert layer.path == "loop: use_fused=False (python_scan: no fast scan for LSTM with projections)"
    assert rnnkit.LSTM(3, 4, cell="ln-lstm", proj_size=2).path == (
        "loop: layer-norm LSTM with projections has no fused kernel "
        "(python_scan: no fast scan for layer-norm LSTM with projections)")


@pytest.mark.parametrize("skip", ["residual", "highway"])
def test_projected_lstm_with_skips_fused_per_layer_equals_loop(skip):
    layer = rnnkit.LSTM(3, 5, num_layers=3, proj_size=3, bidirectional=True, skip=skip)
    assert layer.path == f"fused per layer: {skip} skip"
    x, lengths = torch.randn(6, 3, 3), torch.tensor([6, 2, 4])
    fused = _flat(*layer(x, lengths=lengths))
    layer.use_fused = False
    for a, b in zip(fused, _flat(*layer(x, lengths=lengths))):
        torch.testing.assert_close(a, b)


def test_projected_layer_norm_lstm_gradients_match_finite_differences():
    layer = rnnkit.LSTM(2, 3, num_layers=2, bidirectional=True, cell="ln-lstm", proj_size=2)
    names = [n for n, _ in layer.named_parameters()]
    assert "weight_hr_l1_reverse" in names and tuple(layer.weight_hh_l0.shape) == (12, 2)
    params = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())
    x, lengths = torch.randn(4, 2, 2, requires_grad=True), torch.tensor([4, 3])

    def f(x, *ps):
        out, state = torch.func.functional_call(layer, dict(zip(names, ps)), (x,), {"lengths": lengths})
        return out, *state

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6, fast_mode=True)


def test_projected_lstm_chunks_carrying_state_equal_one_forward():
    layer = rnnkit.LSTM(3, 4, num_layers=2, proj_size=2)
    x = torch.randn(7, 2, 3)
    whole, (h, c) = layer(x)
    out1, state = layer(x[:3])
    out2, (h2, c2) = layer(x[3:], rnnkit.nn.detach_state(state))
    torch.testing.assert_close(torch.cat([out1, out2]), whole)
    torch.testing.assert_close((h2, c2), (h, c))


def test_proj_size_only_for_lstm_cells():
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        Recurrent("gru-before", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="build your own cell"):
        Recurrent(lambda i, h, b: rnnkit.nn.LSTMCell(i, h, b), 3, 4, proj_size=2)


# -- parametrized weights on the loop-only cells (torch.nn has no twin to compare with) -------------------------
@pytest.mark.parametrize("name", ["gru-before", "ln-lstm", "rnn-sigmoid"])
def test_parametrized_weights_reach_the_loop_path(name):
    """weight_norm on every weight == a plain layer holding the normalised weights, outputs and gradients."""
    from torch.nn.utils import parametrizations

    layer = Recurrent(name, 3, 4, num_layers=2, bidirectional=True)
    plain = Recurrent(name, 3, 4, num_layers=2, bidirectional=True)
    weights = [n for n, _ in layer.named_parameters() if n.startswith("weight")]
    for n in weights:
        parametrizations.weight_norm(layer, n)
        with torch.no_grad():
            getattr(layer.parametrizations, n).original0.mul_(1.7)  # g no longer the norm of v: a new weight
    with torch.no_grad():
        for n, p in plain.named_parameters():
            p.copy_(getattr(layer, n))
    x, lengths = torch.randn(5, 2, 3), torch.tensor([5, 3])
    got, want = _flat(*layer(x, lengths=lengths)), _flat(*plain(x, lengths=lengths))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    g_v = torch.autograd.grad(_loss(got), [getattr(layer.parametrizations, n).original1 for n in weights])
    g_w = torch.autograd.grad(_loss(want), [getattr(plain, n) for n in weights])
    for n, gv, gw in zip(weights, g_v, g_w):  # chain rule through w = g v / |v|, by autograd on the formula
        v = getattr(layer.parametrizations, n).original1.detach().requires_grad_()
        g = getattr(layer.parametrizations, n).original0.detach()
        (expected,) = torch.autograd.grad(torch._weight_norm(v, g, 0), v, gw)
        torch.testing.assert_close(gv, expected)
