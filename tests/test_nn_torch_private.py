"""Every private torch entry point rnnkit calls (rnnkit.nn._torch_private) exists and computes what its public
equivalent computes: a torch upgrade that moves or changes one fails here, by name."""

import pytest
import torch

from rnnkit.nn import _torch_private

pytestmark = pytest.mark.usefixtures("float64_seeded")

MODULES = {"lstm": (torch.nn.LSTM, {}), "gru": (torch.nn.GRU, {}),
           "rnn_tanh": (torch.nn.RNN, {"nonlinearity": "tanh"}), "rnn_relu": (torch.nn.RNN, {"nonlinearity": "relu"})}


@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("packed", [False, True])
def test_fused_kernel_equals_the_torch_nn_module(name, packed):
    """_VF.<kind>(input, hx, weights, ...) == torch.nn.<Module>.forward, padded and packed, 2 layers, both ways."""
    cls, kwargs = MODULES[name]
    module = cls(3, 4, num_layers=2, bidirectional=True, **kwargs)
    kernel = _torch_private.fused_kernel(name)
    x = torch.randn(5, 3, 3)
    h0 = torch.randn(4, 3, 4)
    hx = (h0, h0 * 0.5) if name == "lstm" else h0
    weights = [p for layer in module.all_weights for p in layer]
    args = (weights, True, 2, 0.0, False, True)
    if packed:
        data = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor([5, 4, 2]))
        got = kernel(data.data, data.batch_sizes, hx, *args)
        expected = module(data, hx)
        torch.testing.assert_close(got[0], expected[0].data)
    else:
        got = kernel(x, hx, *args, False)
        expected = module(x, hx)
        torch.testing.assert_close(got[0], expected[0])
    finals = expected[1] if name == "lstm" else (expected[1],)
    for a, b in zip(got[1:], finals):
        torch.testing.assert_close(a, b)


def test_lstm_kernel_with_projections_equals_torch_nn_lstm():
    module = torch.nn.LSTM(3, 5, proj_size=2)
    x, h0, c0 = torch.randn(4, 2, 3), torch.randn(1, 2, 2), torch.randn(1, 2, 5)
    got = _torch_private.fused_kernel("lstm")(x, (h0, c0), module._flat_weights, True, 1, 0.0, False, False, False)
    out, (h, c) = module(x, (h0, c0))
    for a, b in zip(got, (out, h, c)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("rows", [1, 7])
def test_onednn_linear_equals_matmul(rows):
    """_reorder_linear_weight + _linear_pointwise (float32, CPU) == x @ W^T, packed and unpacked."""
    x, W = torch.randn(rows, 6, dtype=torch.float32), torch.randn(8, 6, dtype=torch.float32)
    torch.testing.assert_close(_torch_private.onednn_linear(x, _torch_private.onednn_pack(W, rows)), x @ W.t())
    torch.testing.assert_close(_torch_private.onednn_linear(x, W), x @ W.t())


def test_onednn_is_available_on_this_build():
    """ONEDNN says exactly whether both entry points exist (the fast scans fall back to torch.mm otherwise)."""
    assert _torch_private.ONEDNN == (torch.backends.mkldnn.is_available()
                                     and hasattr(torch.ops.mkldnn, "_linear_pointwise")
                                     and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))
    assert torch.backends.mkldnn.is_available()  # the CPU wheels rnnkit supports ship oneDNN
