"""The drop-in contract, side by side with torch.nn: rnnkit.RNN / LSTM / GRU and rnnkit.RNNCell / LSTMCell / GRUCell
built with the same arguments as torch.nn's, loaded with torch's weights, and compared on everything a user can
observe — parameter names, shapes and order; outputs, final states and gradients for batched, batch_first,
unbatched, PackedSequence (sorted or not) and empty-batch inputs, with and without a state, in float32 and
float64, on both of our paths; warnings; the exception type of each mistake; the state type; parametrizations;
and what torch.jit.script / jit.trace / export / compile make of each module.

Deliberate differences (ours is a clearer error where torch's is an accident of its code) are in DIFFERENCES
and tested as such: ours raises the documented type, torch raises something.
"""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
import torch.utils._pytree as pytree
from torch.nn.utils import parametrizations, parametrize
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence

import rnnkit

pytestmark = pytest.mark.usefixtures("float64_seeded")

I, H = 3, 5
LAYERS = {"RNN": (torch.nn.RNN, rnnkit.RNN), "LSTM": (torch.nn.LSTM, rnnkit.LSTM), "GRU": (torch.nn.GRU, rnnkit.GRU)}
CONFIGS = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2, "bidirectional": True}),
    ("RNN", {"bias": False, "batch_first": True}),
    ("LSTM", {}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"proj_size": 2}),
    ("LSTM", {"proj_size": 3, "num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("LSTM", {"proj_size": 2, "bias": False, "num_layers": 2}),
    ("GRU", {}),
    ("GRU", {"num_layers": 3, "bidirectional": True, "bias": False}),
    ("GRU", {"batch_first": True}),
]
IDS = [f"{kind}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for kind, kw in CONFIGS]


def build(kind, *args, **kwargs):
    """(ours, theirs) with the same arguments, ours holding torch's freshly initialised weights."""
    theirs = LAYERS[kind][0](*args, **kwargs)
    ours = LAYERS[kind][1](*args, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def raised(fn):
    """The exception type fn raises (None if it returns)."""
    try:
        fn()
    except Exception as e:  # the type is the result under test
        return type(e)
    return None


def flat(result):
    """(output, state) → a list of tensors; a PackedSequence gives its data."""
    out, state = result
    out = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
    return [out, *(state if isinstance(state, tuple) else (state,))]


def weighted_sum(tensors):
    """A fixed, non-symmetric weighting of every entry, so gradients see all of them."""
    return sum((t * torch.linspace(-1, 1, t.numel(), dtype=t.dtype).view_as(t)).sum() for t in tensors)


def assert_same(ours_result, theirs_result):
    for a, b in zip(flat(ours_result), flat(theirs_result), strict=True):
        torch.testing.assert_close(a, b)


# -- construction -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, kwargs", CONFIGS, ids=IDS)
def test_parameters_have_torch_names_shapes_and_order(kind, kwargs):
    ours, theirs = build(kind, I, H, **kwargs)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    assert [[w.shape for w in ws] for ws in ours.all_weights] == [[w.shape for w in ws] for ws in theirs.all_weights]
    for name in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
                 "proj_size"):
        if hasattr(ours, name) or name != "proj_size":
            assert getattr(ours, name) == getattr(theirs, name), name


@pytest.mark.parametrize("kind, kwargs", CONFIGS, ids=IDS)
def test_our_checkpoint_loads_into_torch_nn(kind, kwargs):
    ours = LAYERS[kind][1](I, H, **kwargs)
    theirs = LAYERS[kind][0](I, H, **kwargs)
    theirs.load_state_dict(ours.state_dict())  # strict: the same names, shapes, nothing more
    x = torch.randn(4, 2, I)
    assert_same(ours(x), theirs(x))


def test_positional_arguments_mean_what_they_mean_in_torch():
    ours, theirs = build("LSTM", I, H, 2, False, True, 0.0, True, 2)  # ..., bias, batch_first, dropout, bidir, proj
    assert (ours.bias, ours.batch_first, ours.bidirectional, ours.proj_size) == (False, True, True, 2)
    x = torch.randn(2, 4, I)
    assert_same(ours(x), theirs(x))
    ours, theirs = build("RNN", I, H, 1, "relu", False)  # RNN's 4th argument is the nonlinearity
    assert_same(ours(x), theirs(x))


BAD_ARGS = [
    ("LSTM", (0, H), {}), ("LSTM", (-1, H), {}), ("LSTM", (3.0, H), {}), ("LSTM", (I, 0), {}),
    ("LSTM", (I, 5.0), {}), ("LSTM", (I, H, 0), {}), ("LSTM", (I, H, 2.0), {}),
    ("LSTM", (I, H), {"bias": 0}), ("LSTM", (I, H), {"bias": None}), ("LSTM", (I, H), {"batch_first": "False"}),
    ("LSTM", (I, H), {"batch_first": 1}), ("LSTM", (I, H), {"dropout": -0.1}), ("LSTM", (I, H), {"dropout": 1.5}),
    ("LSTM", (I, H), {"dropout": True}), ("LSTM", (I, H), {"dropout": "0.1"}), ("LSTM", (I, H), {"proj_size": -1}),
    ("LSTM", (I, H), {"proj_size": H}), ("LSTM", (I, H), {"proj_size": H + 1}), ("LSTM", (I, H), {"proj_size": 2.0}),
    ("LSTM", (I, H), {"foo": 1}), ("GRU", (I, H), {"proj_size": 2}), ("GRU", (I, H), {"bias": 1}),
    ("GRU", (I, -2), {}), ("RNN", (I, H), {"nonlinearity": "gelu"}), ("RNN", (I, H), {"batch_first": None}),
]


@pytest.mark.parametrize("kind, args, kwargs", BAD_ARGS)
def test_bad_constructor_arguments_raise_what_torch_raises(kind, args, kwargs):
    expected = raised(lambda: LAYERS[kind][0](*args, **kwargs))
    assert expected is not None
    assert raised(lambda: LAYERS[kind][1](*args, **kwargs)) is expected


@pytest.mark.parametrize("kwargs", [{"dropout": 1}, {"dropout": 0.5}, {"dropout": 0}, {"dropout": 1, "num_layers": 2}])
def test_dropout_bounds_and_warning_are_torchs(kwargs):
    """dropout=1 is accepted (torch zeroes the between-layer connection); one layer with dropout > 0 warns."""
    with warnings.catch_warnings(record=True) as theirs_warnings:
        warnings.simplefilter("always")
        theirs = torch.nn.LSTM(I, H, **kwargs)
    with warnings.catch_warnings(record=True) as ours_warnings:
        warnings.simplefilter("always")
        ours = rnnkit.LSTM(I, H, **kwargs)
    assert [w.category for w in ours_warnings] == [w.category for w in theirs_warnings]
    assert ours.dropout == theirs.dropout
    if kwargs.get("num_layers") == 2:  # dropout=1 in training: layer 1 sees zeros in both
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn(4, 2, I)
        assert_same(ours.train()(x), theirs.train()(x))


# -- forward: every input form, with and without a state, two dtypes, both paths ------------------------------------
def make_input(form: str, batch_first: bool, dtype):
    """(input, batch size or None for unbatched) for one input form; T = 4."""
    if form == "unbatched":
        return torch.randn(4, I, dtype=dtype), None
    if form.startswith("packed"):
        seqs = [torch.randn(n, I, dtype=dtype) for n in ((4, 3, 1) if form == "packed" else (2, 4, 1))]
        return pack_sequence(seqs, enforce_sorted=form == "packed"), 3
    B = 0 if form == "empty-batch" else 3
    x = torch.randn(4, B, I, dtype=dtype)
    return (x.transpose(0, 1).contiguous() if batch_first else x), B


def make_state(kind, kwargs, B, dtype):
    rows = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    shape = (rows,) if B is None else (rows, B)
    h = torch.randn(*shape, kwargs.get("proj_size") or H, dtype=dtype)
    return (h, torch.randn(*shape, H, dtype=dtype)) if kind == "LSTM" else h


@pytest.mark.parametrize("kind, kwargs", CONFIGS, ids=IDS)
@pytest.mark.parametrize("form", ["batched", "unbatched", "packed", "packed-unsorted", "empty-batch"])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_gradients_equal_torch(kind, kwargs, form, with_state, dtype):
    ours, theirs = build(kind, I, H, **kwargs)
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    x, B = make_input(form, kwargs.get("batch_first", False), dtype)
    state = make_state(kind, kwargs, B, dtype) if with_state else None
    expected = theirs(x, state)
    expected_grads = None
    if dtype == torch.float64 and form != "empty-batch":
        expected_grads = torch.autograd.grad(weighted_sum(flat(expected)), list(theirs.parameters()))
    for fused in (True, False):
        ours.use_fused = fused
        got = ours(x, state)
        assert type(got[0]) is type(expected[0])
        assert_same(got, expected)
        if expected_grads is not None:
            grads = torch.autograd.grad(weighted_sum(flat(got)), list(ours.parameters()))
            for a, b in zip(grads, expected_grads, strict=True):
                torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_the_state_keyword_is_torchs_hx(kind):
    ours, theirs = build(kind, I, H)
    x = torch.randn(4, 2, I)
    state = make_state(kind, {}, 2, torch.float64)
    assert_same(ours(x, hx=state), theirs(x, hx=state))


# -- errors: the same exception type as torch.nn for the same mistake ---------------------------------------------
def _state(kind, rows, B, h, c=H, dims=3, dtype=torch.float64):
    shape = (rows, B) if dims == 3 else (rows,)
    hx = torch.zeros(*shape, h, dtype=dtype)
    return (hx, torch.zeros(*shape, c, dtype=dtype)) if kind == "LSTM" else hx


MISTAKES = {
    "1-D input": lambda kind, h: ((torch.randn(I),), {}),
    "4-D input": lambda kind, h: ((torch.randn(1, 4, 2, I),), {}),
    "input size": lambda kind, h: ((torch.randn(4, 2, I + 1),), {}),
    "unbatched input size": lambda kind, h: ((torch.randn(4, I - 1),), {}),
    "input dtype": lambda kind, h: ((torch.randn(4, 2, I, dtype=torch.float32),), {}),
    "no time steps": lambda kind, h: ((torch.randn(0, 2, I),), {}),
    "no time steps unbatched": lambda kind, h: ((torch.randn(0, I),), {}),
    "state batch": lambda kind, h: ((torch.randn(4, 2, I), _state(kind, 1, 3, h)), {}),
    "state layers": lambda kind, h: ((torch.randn(4, 2, I), _state(kind, 2, 2, h)), {}),
    "state size": lambda kind, h: ((torch.randn(4, 2, I), _state(kind, 1, 2, h + 1)), {}),
    "cell state size": lambda kind, h: ((torch.randn(4, 2, I), _state(kind, 1, 2, h, c=H + 1)), {}),
    "2-D state, batched input": lambda kind, h: ((torch.randn(4, 2, I), _state(kind, 1, None, h, dims=2)), {}),
    "3-D state, unbatched input": lambda kind, h: ((torch.randn(4, I), _state(kind, 1, 1, h)), {}),
    "state dtype": lambda kind, h: ((torch.randn(4, 2, I), _state(kind, 1, 2, h, dtype=torch.float32)), {}),
    "packed state batch": lambda kind, h: ((pack_sequence([torch.randn(3, I), torch.randn(2, I)]),
                                            _state(kind, 1, 3, h)), {}),
    "packed input size": lambda kind, h: ((pack_sequence([torch.randn(3, I + 1), torch.randn(2, I + 1)]),), {}),
}


MISTAKE_CASES = [pytest.param(kind, kwargs, mistake, id=f"{mistake}-{name}")
                 for (kind, kwargs), name in zip(CONFIGS, IDS) if not kwargs.get("bidirectional")
                 for mistake in MISTAKES if kind == "LSTM" or mistake != "cell state size"]


@pytest.mark.parametrize("kind, kwargs, mistake", MISTAKE_CASES)
def test_mistakes_raise_what_torch_raises(kind, kwargs, mistake):
    kwargs = {k: v for k, v in kwargs.items() if k != "num_layers"}  # one layer: the state-rows cases need it
    ours, theirs = build(kind, I, H, **kwargs)
    args, kw = MISTAKES[mistake](kind, kwargs.get("proj_size") or H)
    if kwargs.get("batch_first") and isinstance(args[0], torch.Tensor) and args[0].dim() == 3:
        args = (args[0].transpose(0, 1), *args[1:])  # the cases are written (T, B, I)
    expected = raised(lambda: theirs(*args, **kw))
    assert expected is not None, f"torch.nn accepts {mistake}"
    for fused in (True, False):
        ours.use_fused = fused
        assert raised(lambda: ours(*args, **kw)) is expected, f"{mistake}, fused={fused}"


def test_messages_say_what_torchs_say():
    ours = rnnkit.LSTM(I, H)
    with pytest.raises(ValueError, match="LSTM: Expected input to be 2D or 3D, got 4D instead"):
        ours(torch.randn(1, 4, 2, I))
    with pytest.raises(RuntimeError, match=f"input.size\\(-1\\) must be equal to input_size. Expected {I}, got 4"):
        ours(torch.randn(4, 2, 4))
    with pytest.raises(ValueError, match=r"RNN input dtype \(torch.float32\) does not match weight dtype \(torch.f"):
        ours(torch.randn(4, 2, I, dtype=torch.float32))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size \(1, 2, 5\), got \[1, 2, 6\]"):
        ours(torch.randn(4, 2, I), (torch.zeros(1, 2, H), torch.zeros(1, 2, H + 1)))
    with pytest.raises(RuntimeError, match="For batched 3-D input, hx and cx should also be 3-D"):
        ours(torch.randn(4, 2, I), (torch.zeros(2, H), torch.zeros(2, H)))
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        rnnkit.LSTM(I, H, proj_size=H)
    with pytest.raises(TypeError, match="bias should be of type bool, got: int"):
        rnnkit.GRU(I, H, bias=0)


DIFFERENCES = {  # mistake -> (our exception type, why torch's differs)
    "a tensor as an LSTM state": (TypeError, "torch: IndexError from indexing hx[1]"),
    "a pair as a GRU state": (TypeError, "torch: AttributeError from calling .dim() on a tuple"),
    "a list as input": (TypeError, "torch: AttributeError from calling .dim() on a list"),
    "packed LSTM input of the wrong dtype": (ValueError, "torch.nn.LSTM skips its dtype check for packed input "
                                             "(RuntimeError from its matmul); GRU and RNN raise this ValueError"),
}


@pytest.mark.parametrize("mistake", list(DIFFERENCES))
def test_deliberate_differences_raise_a_clear_error(mistake):
    kind = "GRU" if "GRU" in mistake else "LSTM"
    ours, theirs = build(kind, I, H)
    x = torch.randn(4, 2, I)
    call = {
        "a tensor as an LSTM state": lambda m: m(x, torch.zeros(1, 2, H)),
        "a pair as a GRU state": lambda m: m(x, (torch.zeros(1, 2, H), torch.zeros(1, 2, H))),
        "a list as input": lambda m: m([x]),
        "packed LSTM input of the wrong dtype": lambda m: m(pack_sequence([x[:, 0].float(), x[:3, 1].float()])),
    }[mistake]
    assert raised(lambda: call(theirs)) is not None
    assert raised(lambda: call(ours)) is DIFFERENCES[mistake][0]


# -- the LSTM state: a tuple, as torch's, with names ---------------------------------------------------------------
def test_lstm_state_is_a_drop_in_for_torchs_tuple():
    ours, theirs = build("LSTM", I, H, num_layers=2, proj_size=2)
    x = torch.randn(4, 2, I)
    _, state = ours(x)
    _, expected = theirs(x)
    assert isinstance(state, tuple) and len(state) == 2
    h, c = state
    torch.testing.assert_close(h, expected[0])
    torch.testing.assert_close(state[-1], expected[-1])
    assert state.h is state[0] and state.c is state[1]
    rebuilt = type(state)(t * 2 for t in state)  # what generic code (and torch's own tests) do
    assert type(rebuilt) is type(state)
    torch.testing.assert_close(rebuilt.c, expected[1] * 2)
    leaves, spec = pytree.tree_flatten(state)
    for a, b in zip(leaves, pytree.tree_leaves(expected), strict=True):
        torch.testing.assert_close(a, b)
    assert type(pytree.tree_unflatten(leaves, spec)) is type(state)
    assert type(pytree.tree_map(torch.neg, state)) is type(state)
    back = pickle.loads(pickle.dumps(state))
    assert type(back) is type(state) and torch.equal(back.c, state.c)
    assert_same(ours(x, tuple(expected)), theirs(x, expected))  # a plain tuple goes in as well
    assert_same(ours(x, state), theirs(x, tuple(state)))  # and ours goes into torch


def test_lstm_state_through_torch_compile():
    ours, theirs = build("LSTM", I, H, num_layers=2)

    def two_chunks(x):
        out, state = ours(x[:2])
        state = type(state)(t.tanh() for t in state)
        h, c = state
        out2, state = ours(x[2:], rnnkit.LSTMState(h, c))
        return out2, state

    x = torch.randn(5, 2, I)
    got = torch.compile(two_chunks, backend="eager", fullgraph=True)(x)
    _, hc = theirs(x[:2])
    expected = theirs(x[2:], tuple(t.tanh() for t in hc))
    assert type(got[1]) is rnnkit.LSTMState
    assert_same(got, expected)


# -- parametrizations on every weight -------------------------------------------------------------------------------
PARAMETRIZE = {
    "weight_norm": lambda m, name: parametrizations.weight_norm(m, name),
    "spectral_norm": lambda m, name: parametrizations.spectral_norm(m, name),
    "orthogonal": lambda m, name: parametrizations.orthogonal(m, name),
    "legacy weight_norm": lambda m, name: torch.nn.utils.weight_norm(m, name),
}
PARAM_CONFIGS = [("RNN", {"num_layers": 2}), ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 2}),
                 ("GRU", {"bidirectional": True})]


@pytest.mark.parametrize("kind, kwargs", PARAM_CONFIGS, ids=[k for k, _ in PARAM_CONFIGS])
@pytest.mark.parametrize("how", list(PARAMETRIZE))
def test_parametrizations_on_every_weight_match_torch(kind, kwargs, how):
    ours, theirs = build(kind, I, H, **kwargs)
    names = [n for n, _ in theirs.named_parameters() if n.startswith("weight") or how == "weight_norm"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.nn.utils.weight_norm is deprecated
        for module in (theirs, ours):
            torch.manual_seed(1)  # spectral_norm draws its power-iteration vectors
            for name in names:
                PARAMETRIZE[how](module, name)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    x = torch.randn(4, 2, I)
    for fused in (True, False):
        ours.use_fused = fused
        with parametrize.cached():  # one power iteration per forward in both (torch.nn reads weights twice)
            expected, got = theirs(x), ours(x)
            assert_same(got, expected)
            grads = torch.autograd.grad(weighted_sum(flat(got)), list(ours.parameters()))
            expected_grads = torch.autograd.grad(weighted_sum(flat(expected)), list(theirs.parameters()))
        for a, b in zip(grads, expected_grads, strict=True):
            torch.testing.assert_close(a, b)


def test_parametrized_layer_state_dict_round_trips_with_torch():
    ours, theirs = build("LSTM", I, H, proj_size=2)
    for module in (theirs, ours):
        parametrizations.weight_norm(module, "weight_hr_l0")
    with torch.no_grad():
        theirs.parametrizations.weight_hr_l0.original0.mul_(1.5)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 2, I)
    assert_same(ours(x), theirs(x))


# -- cells -----------------------------------------------------------------------------------------------------
CELLS = {"RNNCell": (torch.nn.RNNCell, rnnkit.RNNCell), "LSTMCell": (torch.nn.LSTMCell, rnnkit.LSTMCell),
         "GRUCell": (torch.nn.GRUCell, rnnkit.GRUCell)}
CELL_CONFIGS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu", "bias": False}), ("LSTMCell", {}),
                ("LSTMCell", {"bias": False}), ("GRUCell", {}), ("GRUCell", {"bias": False})]
CELL_IDS = [f"{k}-{'-'.join(f'{a}={b}' for a, b in kw.items()) or 'default'}" for k, kw in CELL_CONFIGS]


def build_cell(kind, *args, **kwargs):
    theirs = CELLS[kind][0](*args, **kwargs)
    ours = CELLS[kind][1](*args, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def cell_state(kind, B, dtype=torch.float64):
    shape = (H,) if B is None else (B, H)
    h = torch.randn(shape, dtype=dtype)
    return (h, torch.randn(shape, dtype=dtype)) if kind == "LSTMCell" else h


def cell_flat(result):
    return list(result) if isinstance(result, tuple) else [result]


@pytest.mark.parametrize("kind, kwargs", CELL_CONFIGS, ids=CELL_IDS)
@pytest.mark.parametrize("B", [3, None, 0], ids=["batched", "unbatched", "empty-batch"])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cells_equal_torch_cells(kind, kwargs, B, with_state, dtype):
    ours, theirs = build_cell(kind, I, H, **kwargs)
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    x = torch.randn(I, dtype=dtype) if B is None else torch.randn(B, I, dtype=dtype)
    hx = cell_state(kind, B, dtype) if with_state else None
    got, expected = ours(x, hx), theirs(x, hx)
    assert isinstance(got, tuple) == isinstance(expected, tuple)
    for a, b in zip(cell_flat(got), cell_flat(expected), strict=True):
        torch.testing.assert_close(a, b)
    if dtype == torch.float64 and B != 0:
        grads = torch.autograd.grad(weighted_sum(cell_flat(got)), list(ours.parameters()))
        expected_grads = torch.autograd.grad(weighted_sum(cell_flat(expected)), list(theirs.parameters()))
        for a, b in zip(grads, expected_grads, strict=True):
            torch.testing.assert_close(a, b)


def test_cells_take_torchs_positional_arguments():
    ours, theirs = build_cell("RNNCell", I, H, False, "relu", "cpu", torch.float32)
    assert ours.weight_ih.dtype == torch.float32 and ours.bias_ih is None and ours.nonlinearity == "relu"
    x = torch.randn(2, I, dtype=torch.float32)
    torch.testing.assert_close(ours(x), theirs(x))
    ours, theirs = build_cell("LSTMCell", I, H, True, None, torch.float32)
    torch.testing.assert_close(ours(x)[1], theirs(x)[1])


CELL_MISTAKES = {
    "0-D input": lambda kind: (torch.tensor(1.0), None),
    "3-D input": lambda kind: (torch.randn(1, 2, I), None),
    "input size": lambda kind: (torch.randn(2, I + 1), None),
    "input dtype": lambda kind: (torch.randn(2, I, dtype=torch.float32), None),
    "state batch": lambda kind: (torch.randn(2, I), cell_state(kind, 3)),
    "state size": lambda kind: (torch.randn(2, I), cell_state(kind, 2)[0][:, :-1] if kind == "LSTMCell"
                                else cell_state(kind, 2)[:, :-1]),
    "1-D state, batched input": lambda kind: (torch.randn(2, I), cell_state(kind, None)),
    "2-D state, unbatched input": lambda kind: (torch.randn(I), cell_state(kind, 1)),
    "state dtype": lambda kind: (torch.randn(2, I), cell_state(kind, 2, torch.float32)),
}


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("mistake", list(CELL_MISTAKES))
def test_cell_mistakes_raise_what_torch_raises(kind, mistake):
    ours, theirs = build_cell(kind, I, H)
    ours, theirs = ours.double(), theirs.double()
    x, hx = CELL_MISTAKES[mistake](kind)
    if mistake == "state size" and kind == "LSTMCell":
        hx = (hx, hx)
    expected = raised(lambda: theirs(x, hx))
    assert expected is not None, f"torch.nn accepts {mistake}"
    assert raised(lambda: ours(x, hx)) is expected


@pytest.mark.parametrize("args", [(0, H), (I, 0), (I, -1), (3.0, H), (I, 5.0)])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_constructor_sizes_like_torch(kind, args):
    assert raised(lambda: CELLS[kind][1](*args)) is raised(lambda: CELLS[kind][0](*args))


# -- compilers: jit.script, jit.trace, export, compile -----------------------------------------------------------
def _script_outcome(module, x):
    """("ok", outputs) if torch.jit.script(module) runs on x, else ("error", exception type)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok", torch.jit.script(module)(x)
    except Exception as e:  # the outcome is what is compared
        return "error", type(e)


@pytest.mark.parametrize("kind, kwargs", CONFIGS[:6], ids=IDS[:6])
def test_jit_script_of_a_layer_does_what_it_does_for_torch(kind, kwargs):
    """Where torch.jit.script(torch.nn.LSTM) works, ours works and agrees; where it fails (torch 2.13 scripts the
    layers into modules without forward), ours fails the same way."""
    ours, theirs = build(kind, I, H, **kwargs)
    x = torch.randn(4, 2, I)
    got, expected = _script_outcome(ours, x), _script_outcome(theirs, x)
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert_same(got[1], expected[1])
    else:
        assert got[1] is expected[1]


@pytest.mark.parametrize("kind, kwargs", CELL_CONFIGS, ids=CELL_IDS)
def test_jit_script_of_a_cell_equals_torch_and_shares_parameters(kind, kwargs):
    ours, theirs = build_cell(kind, I, H, **kwargs)
    x = torch.randn(2, I)
    scripted = torch.jit.script(ours)
    for a, b in zip(cell_flat(scripted(x)), cell_flat(torch.jit.script(theirs)(x)), strict=True):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        ours.weight_ih.mul_(2.0)  # the scripted cell reads our parameters, not a copy
        theirs.weight_ih.mul_(2.0)
    for a, b in zip(cell_flat(scripted(x)), cell_flat(theirs(x)), strict=True):
        torch.testing.assert_close(a, b)


def test_jit_script_refuses_what_torch_nn_cannot_compute():
    with pytest.raises(RuntimeError, match="no torch.nn equivalent"):
        torch.jit.script(rnnkit.GRUCell(I, H, reset="before"))


EXPORT = [0, 1, 3, 6, 8, 9]  # a sample of CONFIGS: every kind, stacked + bidirectional, projections


@pytest.mark.parametrize("kind, kwargs", [CONFIGS[i] for i in EXPORT], ids=[IDS[i] for i in EXPORT])
def test_export_equals_torch(kind, kwargs):
    ours, theirs = build(kind, I, H, **kwargs)
    x = torch.randn(4, 2, I)
    expected = theirs(x)
    for fused in (True, False):
        ours.use_fused = fused
        program = torch.export.export(ours, (x,))
        assert_same(program.module()(x), expected)


@pytest.mark.parametrize("make", [lambda: rnnkit.GRU(I, H, 2, reset="before"),
                                  lambda: rnnkit.LSTM(I, H, cell="ln-lstm", proj_size=2, bidirectional=True)],
                         ids=["gru-before", "ln-lstm-proj"])
def test_export_of_loop_only_layers_equals_eager(make):
    """Cells torch.nn lacks export too (the tracer runs python_scan; eager runs the fast scan or python_scan)."""
    layer = make()
    x = torch.randn(4, 2, I)
    assert_same(torch.export.export(layer, (x,)).module()(x), layer(x))


@pytest.mark.parametrize("kind, kwargs", CONFIGS[:6], ids=IDS[:6])
def test_jit_trace_equals_torch(kind, kwargs):
    """The fused path traces to one kernel call (any T and B later); the loop path traces its T steps."""
    ours, theirs = build(kind, I, H, **kwargs)
    x, longer = torch.randn(4, 2, I), torch.randn(6, 3, I)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python conditions
        traced = torch.jit.trace(ours, (x,), check_trace=False)
        ours.use_fused = False
        traced_loop = torch.jit.trace(ours, (x,), check_trace=False)
    assert_same(traced(x), theirs(x))
    assert_same(traced(longer), theirs(longer))
    assert_same(traced_loop(x), theirs(x))


@pytest.mark.parametrize("kind, kwargs", CONFIGS[:6], ids=IDS[:6])
def test_torch_compile_fullgraph_equals_torch(kind, kwargs):
    ours, theirs = build(kind, I, H, **kwargs)
    x = torch.randn(4, 2, I)
    for fused in (True, False):
        ours.use_fused = fused
        compiled = torch.compile(ours, backend="eager", fullgraph=True)
        assert_same(compiled(x), theirs(x))
        torch._dynamo.reset()


def test_unbatched_packed_and_lengths_agree_for_projections():
    """rnnkit's own lengths= on a padded batch == torch.nn.LSTM(proj_size) on the same PackedSequence."""
    ours, theirs = build("LSTM", I, H, num_layers=2, bidirectional=True, proj_size=2)
    x, lengths = torch.randn(5, 3, I), torch.tensor([5, 2, 4])
    expected = theirs(pack_padded_sequence(x, lengths, enforce_sorted=False))
    padded, _ = torch.nn.utils.rnn.pad_packed_sequence(expected[0], total_length=5)
    for fused in (True, False):
        ours.use_fused = fused
        out, state = ours(x, lengths=lengths)
        torch.testing.assert_close(out, padded)
        for a, b in zip(state, expected[1], strict=True):
            torch.testing.assert_close(a, b)
