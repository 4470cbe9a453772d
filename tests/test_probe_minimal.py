"""The probe's gate statistics for minGRU / minLSTM (rnnkit.diagnostics.probe) == the gates computed by hand in
NumPy from the layer's weights (z = σ(U_z x + b_z); f, i = σ(U_f x + b_f), σ(U_i x + b_i), i_norm = i/(f + i)),
layer 1 from the NumPy reference's layer-0 states."""
import numpy as np
import pytest
import torch

from rnnkit import reference as ref
from rnnkit.diagnostics import probe
from rnnkit.lab import LabModel, LabModelConfig, SyntheticBatches, larger_stream


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _hand_gates(name, U, b, x):
    """Gates of every step (T·B·H values each) from U (G·H, I), b and x (B, T, I)."""
    a = x @ U.T + b
    H = U.shape[0] // (2 if name == "mingru" else 3)
    if name == "mingru":
        return {"z": _sigmoid(a[..., :H])}
    f, i = _sigmoid(a[..., :H]), _sigmoid(a[..., H : 2 * H])
    return {"f": f, "i": i, "i_norm": i / (f + i)}


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_min_cell_gate_statistics_equal_gates_computed_by_hand(float64_seeded, name):
    model = LabModel(LabModelConfig("larger", cell=name, hidden=6, layers=2))
    with torch.no_grad():
        for p in model.rnn.parameters():
            p.mul_(4.0)  # large weights: some gates saturate
    batch = SyntheticBatches(larger_stream, 9, 8, 1).get(0, 0)
    got = probe(model, batch, jacobian=False)
    r = model.rnn
    x = batch.inputs.numpy()  # (B, T, I)
    params0 = {"weight_ih": r.weight_ih_l0.detach().numpy(), "bias_ih": r.bias_ih_l0.detach().numpy()}
    hs0, _ = ref.minimal_forward(name, params0, x.transpose(1, 0, 2), np.zeros((x.shape[0], 6)))  # (T, B, H)
    inputs = {0: x, 1: hs0.transpose(1, 0, 2)}
    saturated_somewhere = 0.0
    for k in (0, 1):
        U, b = getattr(r, f"weight_ih_l{k}").detach().numpy(), getattr(r, f"bias_ih_l{k}").detach().numpy()
        gates = _hand_gates(name, U, b, inputs[k])
        assert sorted(k_ for k_ in got if k_.startswith(f"gates.rnn.l{k}.")) == sorted(
            f"gates.rnn.l{k}.{g}.{s}" for g in gates for s in ("mean", "saturated"))
        for gate, values in gates.items():
            sat = ((values < 0.05) | (values > 0.95)).mean()
            assert got[f"gates.rnn.l{k}.{gate}.mean"] == pytest.approx(values.mean(), rel=1e-9, abs=1e-12)
            assert got[f"gates.rnn.l{k}.{gate}.saturated"] == pytest.approx(sat, abs=1e-12)
            saturated_somewhere += sat
    assert saturated_somewhere > 0  # the comparison is not 0 == 0
    assert len(got["grad_flow.rnn.l1.dL_dh"]) == 9  # the probe's gradient flow runs for min cells too
