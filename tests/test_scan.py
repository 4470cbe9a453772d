"""The hand-written BPTT scans (rnnkit.nn.scan) against python_scan (autograd through every step) and finite
differences: outputs, final states and every gradient, with and without padding, stacked and bidirectional."""

import pytest
import torch

from rnnkit.nn import CELLS, GRUCell, LSTMCell, LSTMState, Recurrent, RecurrentCell
from rnnkit.nn.recurrent import python_scan
from rnnkit.nn.scan import fast_scan_for

NAMES = list(CELLS)  # every named cell has a fast scan


pytestmark = pytest.mark.usefixtures("float64_seeded")


def _perturb(module, scale=0.3):
    """Move every parameter off its init (layer-norm gains start at exactly 1, biases at 0)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


def _weighted(parts):
    """A fixed, non-symmetric weighting of every output, so gradients see all of them."""
    return sum((p * torch.linspace(-1, 1, p.numel()).view_as(p)).sum() for p in parts)


def _run(layer, fast, x, state, lengths):
    layer.use_fast_scan = fast
    out, final = layer(x, state, lengths=lengths)
    parts = [out, *(final if isinstance(final, tuple) else (final,))]
    inputs = [x, *(() if state is None else state if isinstance(state, tuple) else (state,)), *layer.parameters()]
    return parts, torch.autograd.grad(_weighted(parts), inputs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("padded", [False, True])
def test_fast_scan_equals_python_scan_stacked_bidirectional(name, padded):
    layer = Recurrent(name, 3, 5, num_layers=2, bidirectional=True, bias=name not in ("rnn-sigmoid", "gru", "ln-lstm"))
    layer.use_fused = False
    _perturb(layer)
    T, B = 7, 4
    x = torch.randn(T, B, 3, requires_grad=True)
    h0 = torch.randn(4, B, 5, requires_grad=True)
    state = LSTMState(h0, torch.randn(4, B, 5, requires_grad=True)) if isinstance(layer.cells[0], LSTMCell) else h0
    lengths = torch.tensor([7, 3, 1, 5]) if padded else None
    assert layer.path == "loop: use_fused=False"  # no python_scan note: the fast scan runs
    want, want_grads = _run(layer, False, x, state, lengths)
    got, got_grads = _run(layer, True, x, state, lengths)
    for a, b in zip(got + list(got_grads), want + list(want_grads)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def _cell_and_state(name, B=3, H=4, I=2):
    cell = Recurrent(name, I, H).cells[0]
    _perturb(cell)
    h = torch.randn(B, H, requires_grad=True)
    state = LSTMState(h, torch.randn(B, H, requires_grad=True)) if isinstance(cell, LSTMCell) else h
    return cell, state


@pytest.mark.parametrize("name", NAMES)
def test_any_alive_mask_freezes_state_and_zeroes_outputs_like_python_scan(name):
    """Masks need not be a prefix (the layer only makes prefixes): dead steps in the middle, a never-alive row."""
    cell, state = _cell_and_state(name)
    ux = torch.randn(6, 3, cell.gates * cell.hidden_size, requires_grad=True)
    alive = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 0]], dtype=torch.bool)
    results = []
    for scan in (python_scan, fast_scan_for(cell)):
        out, final = scan(cell, ux, state, alive)
        parts = [out, *(final if isinstance(final, tuple) else (final,))]
        inputs = [ux, *(state if isinstance(state, tuple) else (state,)), *cell.parameters()]
        results.append(parts + list(torch.autograd.grad(_weighted(parts), inputs, allow_unused=True)))
    for a, b in zip(*results):
        if a is None or b is None:  # weight_ih, bias_ih: not used by the scan itself
            assert a is None and b is None
            continue
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


class _Scanned(torch.nn.Module):
    """The fast scan of one cell as a module, so that torch.func.functional_call can swap its parameters."""

    def __init__(self, cell, alive):
        super().__init__()
        self.cell, self.alive, self.scan = cell, alive, fast_scan_for(cell)

    def forward(self, ux, state):
        out, final = self.scan(self.cell, ux, state, self.alive)
        return out, *(final if isinstance(final, tuple) else (final,))


@pytest.mark.parametrize("name", ["rnn-tanh", "rnn-hardtanh", "lstm", "ln-lstm", "gru", "gru-before"])
def test_fast_scan_gradients_match_finite_differences(name):
    cell, state = _cell_and_state(name, B=2, H=3)
    module = _Scanned(cell, alive=torch.tensor([[1, 1], [1, 0], [1, 0]], dtype=torch.bool))
    names = [n for n, _ in module.named_parameters()]
    ux = torch.randn(3, 2, cell.gates * 3, requires_grad=True)
    tensors = tuple(state) if isinstance(state, tuple) else (state,)
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())

    def f(ux, *rest):
        s = LSTMState(*rest[:2]) if len(tensors) == 2 else rest[0]
        return torch.func.functional_call(module, dict(zip(names, rest[len(tensors):])), (ux, s))

    assert torch.autograd.gradcheck(f, (ux, *tensors, *params), eps=1e-6, atol=1e-6, fast_mode=True)


def test_frozen_recurrent_weights_get_no_gradient():
    layer = Recurrent("gru-before", 3, 4)
    layer.weight_hh_l0.requires_grad_(False)
    out, _ = layer(torch.randn(5, 2, 3))
    out.sum().backward()
    assert layer.weight_hh_l0.grad is None and layer.bias_hh_l0.grad is not None


def test_double_backward_is_refused():
    """Asked for a graph of the gradient (create_graph=True), the fast scan refuses at once, rather than giving
    second derivatives that silently miss its own backward pass (what gradgradcheck would then see)."""
    cell, h = _cell_and_state("gru-before")
    ux = torch.randn(4, 3, 12, requires_grad=True)
    out, _ = fast_scan_for(cell)(cell, ux, h)
    with pytest.raises(RuntimeError, match="cannot differentiate twice.*use_fast_scan = False"):
        torch.autograd.grad((out**2).sum(), ux, create_graph=True)
    (g,) = torch.autograd.grad((out**2).sum(), ux)  # first order as usual
    assert g.abs().sum() > 0


def test_python_scan_has_second_derivatives():
    """use_fast_scan=False gives the loop path a double backward (torch.autograd.gradgradcheck)."""
    layer = Recurrent("gru-before", 2, 3)
    layer.use_fast_scan = False
    x = torch.randn(3, 2, 2, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: layer(x)[0], (x,), fast_mode=True)


@pytest.mark.parametrize("name", NAMES)
def test_float32_is_as_accurate_as_python_scan(name):
    """float32 on CPU runs the per-step matmuls through oneDNN (scan.ONEDNN): compared with the float64 result,
    its error is float32 rounding, of the size python_scan's own float32 error (~1e-6 of the largest value)."""
    layer = Recurrent(name, 8, 16)
    layer.use_fused = False
    _perturb(layer)
    x = torch.randn(20, 5, 8, requires_grad=True)
    lengths = torch.tensor([20, 3, 17, 1, 9])
    truth, truth_grads = _run(layer, False, x, None, lengths)
    layer.float()
    x32 = x.detach().float().requires_grad_()
    for fast in (False, True):
        got, got_grads = _run(layer, fast, x32, None, lengths)
        for a, b in zip(got + list(got_grads), truth + list(truth_grads)):
            assert (a.double() - b).abs().max() <= 1e-5 * b.abs().max()


class OwnCell(RecurrentCell):
    """A cell rnnkit does not know: h_t = tanh(U x_t + W h_{t-1} + b) / 2."""

    def step(self, ux, h):
        return torch.tanh(ux + self.recurrent(h)) / 2


def test_python_scan_is_named_in_the_path():
    layer = Recurrent("gru-before", 3, 4)
    assert layer.path == "loop: GRU with reset='before' has no fused kernel"
    layer.use_fast_scan = False
    assert layer.path == "loop: GRU with reset='before' has no fused kernel (python_scan: use_fast_scan=False)"
    assert Recurrent("lstm", 3, 4).path == "fused"
    assert Recurrent(OwnCell, 3, 4).path == "loop: OwnCell has no fused kernel (python_scan: no fast scan for OwnCell)"


def test_subclasses_with_their_own_step_get_python_scan():
    class HalfGRU(GRUCell):
        def step(self, ux, h):
            return super().step(ux, h) / 2

    assert fast_scan_for(HalfGRU(3, 4, reset="before")) is None
    assert fast_scan_for(GRUCell(3, 4, reset="before")) is not None
