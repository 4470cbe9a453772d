"""minGRU / minLSTM (rnnkit.nn.minimal): the CPU scan == the parallel scan == the step form (python_scan) == the
NumPy reference with its hand-written BPTT, in float64 to 1e-10; finite differences; T = 16,384; padding."""

import numpy as np
import pytest
import torch

from rnnkit import Recurrent
from rnnkit import reference as ref
from rnnkit.nn import MinGRUCell, MinLSTMCell
from rnnkit.nn.minimal import g, parallel_min_scan, sequential_min_scan
from rnnkit.nn.unroll import python_scan

NAMES = ["mingru", "minlstm"]
# every scan from the inputs x: the CPU scan projects them itself, the others get U x + b
SCANS = {"cpu": sequential_min_scan,
         "cpu from U x + b": lambda c, x, *a: sequential_min_scan(c, c.project(x), *a, projected=True),
         "parallel": lambda c, x, *a: parallel_min_scan(c, c.project(x), *a),
         "parallel/sequential": lambda c, x, *a: parallel_min_scan(c, c.project(x), *a, method="sequential"),
         "step form": lambda c, x, *a: python_scan(c, c.project(x), *a)}

pytestmark = pytest.mark.usefixtures("float64_seeded")


def _cell(name, I=3, H=4, scale=1.5):
    cell = Recurrent(name, I, H).cells[0]
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0, scale)  # large pre-activations: both branches of g, saturated gates
    return cell


def _params(cell):
    return {"weight_ih": cell.weight_ih.detach().numpy(), "bias_ih": cell.bias_ih.detach().numpy()}


def _alive(T, lengths):
    return torch.arange(T).unsqueeze(1) < torch.as_tensor(lengths).unsqueeze(0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("padded", [False, True])
def test_every_scan_equals_the_numpy_reference(name, padded):
    """Outputs, final state and ∂L/∂(x, h0, U, b) of each scan == minimal_forward / minimal_backward."""
    cell = _cell(name)
    T, B = 9, 4
    x = torch.randn(T, B, 3)
    h0 = torch.randn(B, 4)
    lengths = [9, 4, 1, 6] if padded else [T] * B
    alive = _alive(T, lengths) if padded else None
    d_out, d_final = torch.randn(T, B, 4), torch.randn(B, 4)
    mask = _alive(T, lengths).double().numpy()
    hs, cache = ref.minimal_forward(name, _params(cell), x.numpy(), h0.numpy(), mask=mask)
    # the layer's outputs are zero at padded steps, so only real steps receive d_out
    grads, dx, dh0 = ref.minimal_backward(_params(cell), cache, dhs=d_out.numpy() * mask[..., None],
                                          dh_T=d_final.numpy())
    want_out = hs * mask[..., None]
    for scan_name, scan in SCANS.items():
        xs, s0 = x.clone().requires_grad_(), h0.clone().requires_grad_()
        out, final = scan(cell, xs, s0, alive)
        loss = (out * d_out).sum() + (final * d_final).sum()
        got = torch.autograd.grad(loss, [xs, s0, cell.weight_ih, cell.bias_ih])
        np.testing.assert_allclose(out.detach().numpy(), want_out, rtol=0, atol=1e-10, err_msg=scan_name)
        np.testing.assert_allclose(final.detach().numpy(), hs[-1], rtol=0, atol=1e-10, err_msg=scan_name)
        for a, b in zip(got, (dx, dh0, grads["weight_ih"], grads["bias_ih"])):
            np.testing.assert_allclose(a.numpy(), b, rtol=1e-10, atol=1e-10, err_msg=scan_name)


def test_reference_bptt_matches_finite_differences():
    rng = np.random.default_rng(0)
    for name, G in (("mingru", 2), ("minlstm", 3)):
        params = {"weight_ih": rng.normal(0, 1.5, (G * 3, 2)), "bias_ih": rng.normal(0, 1.0, G * 3)}
        x, h0, w = rng.normal(size=(5, 2, 2)), rng.normal(size=(2, 3)), rng.normal(size=(5, 2, 3))
        mask = np.array([[1, 1], [1, 1], [1, 0], [1, 0], [0, 0]], dtype=float)

        def loss(p, x=x, h0=h0, name=name, w=w, mask=mask):
            return float((ref.minimal_forward(name, p, x, h0, mask)[0] * w * mask[..., None]).sum())

        _, cache = ref.minimal_forward(name, params, x, h0, mask)
        grads, dx, dh0 = ref.minimal_backward(params, cache, dhs=w * mask[..., None])
        eps = 1e-6
        for key in params:
            numeric = np.zeros_like(params[key])
            for idx in np.ndindex(params[key].shape):
                plus, minus = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
                plus[key][idx] += eps
                minus[key][idx] -= eps
                numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
            np.testing.assert_allclose(grads[key], numeric, rtol=1e-6, atol=1e-7)
        numeric_h0 = np.zeros_like(h0)
        for idx in np.ndindex(h0.shape):
            plus, minus = h0.copy(), h0.copy()
            plus[idx] += eps
            minus[idx] -= eps
            numeric_h0[idx] = (loss(params, h0=plus) - loss(params, h0=minus)) / (2 * eps)
        np.testing.assert_allclose(dh0, numeric_h0, rtol=1e-6, atol=1e-7)


def test_reference_equations_spelled_out():
    """One step by hand: minGRU h = (1 − σ(a_z)) h0 + σ(a_z) g(a_h); minLSTM h = f/(f+i) h0 + i/(f+i) g(a_h)."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    a_z, a_h, a_f, a_i, h0 = 0.3, -0.7, -1.2, 0.4, 0.25
    gru, _ = ref.minimal_forward("mingru", {"weight_ih": np.array([[a_z], [a_h]])}, np.ones((1, 1, 1)),
                                 np.full((1, 1), h0))
    assert abs(gru[0, 0, 0] - ((1 - sig(a_z)) * h0 + sig(a_z) * sig(a_h))) < 1e-15  # a_h < 0: g = σ
    lstm, _ = ref.minimal_forward("minlstm", {"weight_ih": np.array([[a_f], [a_i], [-a_h]])}, np.ones((1, 1, 1)),
                                  np.full((1, 1), h0))
    f, i = sig(a_f), sig(a_i)
    assert abs(lstm[0, 0, 0] - (f / (f + i) * h0 + i / (f + i) * (-a_h + 0.5))) < 1e-15  # −a_h ≥ 0: g = x + 0.5
    x = torch.tensor([-3.0, -1e-3, 0.0, 1e-3, 2.0])
    torch.testing.assert_close(g(x), torch.tensor([torch.sigmoid(torch.tensor(-3.0)), torch.sigmoid(
        torch.tensor(-1e-3)), 0.5, 0.501, 2.5]))


@pytest.mark.parametrize("name", NAMES)
def test_cpu_scan_gradients_match_finite_differences(name):
    """∂ of the CPU scan w.r.t. x, h0, U and b (gradcheck perturbs the cell's own parameters in place)."""
    cell = _cell(name, I=2, H=3)
    alive = _alive(4, [4, 2])
    x = torch.randn(4, 2, 2, requires_grad=True)
    h0 = torch.randn(2, 3, requires_grad=True)
    inputs = (x, h0, cell.weight_ih, cell.bias_ih)
    assert torch.autograd.gradcheck(lambda u, h, *_: sequential_min_scan(cell, u, h, alive), inputs)
    assert torch.autograd.gradcheck(lambda u, h, *_: sequential_min_scan(cell, u, h), inputs)


def test_cpu_scan_chunks_are_seamless(monkeypatch):
    """The CPU scan works in chunks of time steps (GEMM, gates and scan per chunk; ∂L/∂U summed over chunks);
    chunk boundaries (1 and 2 steps per chunk here, vs one chunk) change nothing."""
    from rnnkit.nn import minimal

    for name in NAMES:
        cell = _cell(name)
        x, h0 = torch.randn(7, 2, 3, requires_grad=True), torch.randn(2, 4, requires_grad=True)
        results = []
        for rows in (1, 5, minimal.CHUNK_ROWS):
            monkeypatch.setattr(minimal, "CHUNK_ROWS", rows)
            out, final = sequential_min_scan(cell, x, h0, _alive(7, [7, 3]))
            loss = (out * torch.arange(4.0)).sum() + final.sum() * 2
            results.append([out, final, *torch.autograd.grad(loss, [x, h0, cell.weight_ih, cell.bias_ih])])
        for other in results[:2]:
            for a, b in zip(other, results[2]):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_step_form_carries_the_state_and_equals_the_layer(name):
    """Generation: cell(x_t, h) one step at a time == the layer over the sequence; two windows with the state
    carried == one forward (the given h0 is used as is, not mapped through g)."""
    layer = Recurrent(name, 3, 4, num_layers=2)
    x, h0 = torch.randn(10, 2, 3), torch.randn(2, 2, 4)
    out, h_n = layer(x, h0)
    first, h_mid = layer(x[:6], h0)
    second, h_end = layer(x[6:], h_mid)
    torch.testing.assert_close(torch.cat([first, second]), out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_end, h_n, rtol=1e-12, atol=1e-12)
    h = list(h0)
    for t in range(10):
        inp = x[t]
        for k, cell in enumerate(layer.cells):
            h[k] = cell(inp, h[k])
            inp = h[k]
        torch.testing.assert_close(inp, out[t], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_sixteen_thousand_steps_in_float32(name):
    """T = 16,384 in float32: finite, equal to the float64 run to float32 rounding, and bounded (h_t is a convex
    combination of h_{t-1} and h̃_t)."""
    layer = Recurrent(name, 2, 8)
    x = torch.randn(16384, 2, 2)
    with torch.no_grad():
        want, _ = layer(x)
    layer32 = Recurrent(name, 2, 8, dtype=torch.float32)
    layer32.load_state_dict({k: v.float() for k, v in layer.state_dict().items()})
    x32 = x.float().requires_grad_()
    got, h_n = layer32(x32)
    got.sum().backward()
    assert torch.isfinite(got).all() and torch.isfinite(x32.grad).all()
    assert float((got.detach().double() - want).abs().max()) <= 1e-4 * float(want.abs().max())
    h_tilde = g(layer.cells[0].project(x)[..., -8:]).detach()
    assert float(got.detach().min()) >= min(0.0, float(h_tilde.min())) - 1e-5
    assert float(got.detach().max()) <= float(h_tilde.max()) + 1e-5


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options", [dict(num_layers=2, bidirectional=True), dict(num_layers=3, skip="residual")],
                         ids=["bidirectional", "residual"])
def test_padded_batch_equals_each_sequence_alone_values_and_gradients(name, options):
    layer = Recurrent(name, 3, 4, **options)
    T, lengths = 7, [3, 7, 1, 5]
    x = torch.randn(T, 4, 3, requires_grad=True)
    D, L = layer.num_directions, layer.num_layers
    h0 = torch.randn(L * D, 4, 4)
    weights = torch.randn(T, 4, D * 4)
    out, h_n = layer(x, h0, lengths=torch.tensor(lengths))
    loss = (out * weights).sum() + h_n.sum()
    grads = torch.autograd.grad(loss, [x, *layer.parameters()])
    total = [torch.zeros_like(p) for p in layer.parameters()]
    for b, n in enumerate(lengths):
        xb = x[:n, b : b + 1].detach().requires_grad_()
        alone, alone_h = layer(xb, h0[:, b : b + 1])
        torch.testing.assert_close(out[:n, b : b + 1], alone, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(h_n[:, b : b + 1], alone_h, rtol=1e-10, atol=1e-12)
        if not options.get("skip"):
            assert float(out[n:, b].detach().abs().sum()) == 0.0  # padded outputs are zero
        loss_b = (alone * weights[:n, b : b + 1]).sum() + alone_h.sum()
        gx, *gp = torch.autograd.grad(loss_b, [xb, *layer.parameters()])
        torch.testing.assert_close(grads[0][:n, b : b + 1], gx, rtol=1e-10, atol=1e-12)
        assert float(grads[0][n:, b].abs().sum()) == 0.0  # padding gets no gradient
        total = [t + g_ for t, g_ in zip(total, gp)]
    for a, b in zip(grads[1:], total):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_cells_have_no_recurrent_weights_and_the_documented_layout():
    layer = Recurrent("minlstm", 3, 4, num_layers=2, bidirectional=True)
    assert sorted(layer.state_dict()) == sorted(f"{w}_l{k}{s}" for w in ("weight_ih", "bias_ih") for k in (0, 1)
                                                for s in ("", "_reverse"))
    assert layer.weight_ih_l1.shape == (12, 8)
    assert MinGRUCell(3, 4).weight_ih.shape == (8, 3) and MinGRUCell(3, 4).weight_hh is None
    assert MinLSTMCell(3, 4, bias=False).bias_ih is None
    assert layer.path == "loop: MinLSTMCell has no fused kernel"  # the linear scan runs: no python_scan note


def test_dropout_between_layers_is_seeded_and_off_in_eval():
    layer = Recurrent("mingru", 3, 4, num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3)
    torch.manual_seed(1)
    a, _ = layer(x)
    torch.manual_seed(1)
    b, _ = layer(x)
    torch.testing.assert_close(a, b)
    layer.eval()
    c, _ = layer(x)
    layer.dropout = 0.0
    d, _ = layer(x)
    torch.testing.assert_close(c, d)
    assert float((a - c).abs().max()) > 0  # dropout acted in training mode


def test_minlstm_normalised_gate_survives_underflow():
    """Both gates' pre-activations far below σ's float32 range: i/(f + i) would be 0/0; the scan falls back to
    σ(log σ(a_i) − log σ(a_f)) and stays finite and equal to the step form."""
    cell = MinLSTMCell(1, 2).float()
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.bias_ih.copy_(torch.tensor([-120.0, -121.0, -119.0, -118.0, 0.5, 1.0]))
    x = torch.zeros(3, 1, 1, dtype=torch.float32)
    h0 = torch.ones(1, 2, dtype=torch.float32)
    out, _ = sequential_min_scan(cell, x, h0)
    want, _ = python_scan(cell, cell.project(x), h0)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, want)
    z = torch.sigmoid(torch.tensor([1.0, 3.0]))  # i' → σ(a_i − a_f) as both gates underflow
    want_h1 = (h0[0] + z * (torch.tensor([1.0, 1.5]) - h0[0])).float()
    torch.testing.assert_close(out[0, 0], want_h1)
