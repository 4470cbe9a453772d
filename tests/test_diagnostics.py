"""rnnkit.diagnostics against independent computations: autograd on a hand-written unroll (‖∂L/∂h_k‖),
torch.autograd.functional.jacobian (‖∂h_T/∂h_k‖), numpy.linalg (spectra), the cell equations in NumPy (gates),
a gradient of known size (clipping), and units forced dead (ReLU)."""
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from rnnkit import GRU, RNN
from rnnkit.data import LMStream
from rnnkit.diagnostics import UpdateDiagnostics, default_callbacks, probe, recurrent_spectra
from rnnkit.lab import LabBatch, LabDataConfig, LabModel, LabModelConfig, SyntheticBatches, adding, fit, larger_stream
from rnnkit.tasks.lm import RNNLM, LMTask, RNNLMConfig
from rnnkit.train import TrainConfig, Trainer


def _lab_model(problem, cell, hidden, layers=1):
    return LabModel(LabModelConfig(problem, cell=cell, hidden=hidden, layers=layers))


def _weights(model, k):
    r = model.rnn
    return (getattr(r, f"weight_ih_l{k}"), getattr(r, f"weight_hh_l{k}"), getattr(r, f"bias_ih_l{k}"),
            getattr(r, f"bias_hh_l{k}"))


def _torch_lstm_cell(model, k):
    cell = nn.LSTMCell(1, 1)
    w_ih, w_hh, b_ih, b_hh = _weights(model, k)
    cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh = w_ih, w_hh, b_ih, b_hh  # shared parameters
    return cell


def test_dL_dh_of_a_tanh_rnn_equals_autograd_on_a_hand_written_unroll(float64_seeded):
    model = _lab_model("adding", "rnn-tanh", 5)
    batch = SyntheticBatches(adding, 6, 4, 1).get(0, 0)
    U, W, b_ih, b_hh = _weights(model, 0)
    h, hs = torch.zeros(4, 5), []
    for t in range(6):
        h = torch.tanh(batch.inputs[:, t] @ U.T + h @ W.T + b_ih + b_hh)
        h.retain_grad()
        hs.append(h)
    loss = ((model.head(h).squeeze(-1) - batch.targets) ** 2).mean()
    loss.backward()
    expected = [float(h.grad.norm()) for h in hs]
    model.zero_grad()
    got = probe(model, batch)["grad_flow.rnn.l0.dL_dh"]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())  # probe leaves .grad alone
    assert got[0] < got[-1]  # the sensitivity decays going back in time at this init


def test_dL_dh_and_dL_dc_of_a_two_layer_lstm_equal_autograd_with_torch_cells(float64_seeded):
    model = _lab_model("larger", "lstm", 4, layers=2)
    batch = SyntheticBatches(larger_stream, 5, 3, 1).get(0, 0)
    x = batch.inputs.transpose(0, 1)  # (T, B, 2)
    kept = {}
    for k in range(2):
        cell, h, c, outs = _torch_lstm_cell(model, k), torch.zeros(3, 4), torch.zeros(3, 4), []
        for t in range(5):
            h, c = cell(x[t], (h, c))
            h.retain_grad()
            c.retain_grad()
            kept.setdefault(k, []).append((h, c))
            outs.append(h)
        x = torch.stack(outs)
    loss = nn.functional.cross_entropy(model.head(x[-1]), batch.targets)
    loss.backward()
    got = probe(model, batch, jacobian=False)
    for k in range(2):
        np.testing.assert_allclose(got[f"grad_flow.rnn.l{k}.dL_dh"], [float(h.grad.norm()) for h, _ in kept[k]],
                                   rtol=1e-9)
        np.testing.assert_allclose(got[f"grad_flow.rnn.l{k}.dL_dc"], [float(c.grad.norm()) for _, c in kept[k]],
                                   rtol=1e-9)


@pytest.mark.parametrize("cell", ["rnn-tanh", "lstm", "gru"])
def test_jacobian_product_norms_equal_torch_autograd_functional_jacobian(float64_seeded, cell):
    model = _lab_model("adding", cell, 4)
    with torch.no_grad():  # larger recurrent weights: norms that neither vanish nor stay at 1 in 7 steps
        model.rnn.weight_hh_l0.mul_(3.0)
    T, B = 7, 3
    batch = SyntheticBatches(adding, T, B, 1).get(0, 0)
    step = _step_fn(model, cell)
    ux = batch.inputs.transpose(0, 1)
    states = []  # state after each step, without graph
    with torch.no_grad():
        s = (torch.zeros(B, 4), torch.zeros(B, 4)) if cell == "lstm" else torch.zeros(B, 4)
        for t in range(T):
            s = step(ux[t], s)
            states.append(s)
    expected = []
    for k in range(T):
        norms = []
        for j in range(B):
            def h_T(h_k, k=k, j=j):  # run steps k+1..T from the state at step k (c_k fixed for the LSTM)
                s = (h_k[None], states[k][1][j : j + 1]) if cell == "lstm" else h_k[None]
                for t in range(k + 1, T):
                    s = step(ux[t, j : j + 1], s)
                return (s[0] if cell == "lstm" else s)[0]

            h_k = (states[k][0] if cell == "lstm" else states[k])[j]
            J = torch.autograd.functional.jacobian(h_T, h_k)
            norms.append(np.linalg.norm(J.numpy(), 2))
        expected.append(np.mean(norms))
    got = probe(model, batch, jacobian=True, jacobian_examples=B)["grad_flow.rnn.l0.jacobian"]
    np.testing.assert_allclose(got, expected, rtol=1e-8)
    assert got[-1] == pytest.approx(1.0) and abs(got[0] - 1.0) > 0.05


def _step_fn(model, cell):
    U, W, b_ih, b_hh = _weights(model, 0)
    if cell == "rnn-tanh":
        return lambda x, h: torch.tanh(x @ U.T + h @ W.T + b_ih + b_hh)
    if cell == "lstm":
        torch_cell = _torch_lstm_cell(model, 0)
        return lambda x, s: torch_cell(x, s)
    torch_cell = nn.GRUCell(2, 4)
    torch_cell.weight_ih, torch_cell.weight_hh, torch_cell.bias_ih, torch_cell.bias_hh = U, W, b_ih, b_hh
    return lambda x, h: torch_cell(x, h)


def test_spectra_equal_numpy_eigvals_and_svd():
    torch.manual_seed(0)
    model = nn.ModuleDict({"lstm": nn.LSTM(3, 5, num_layers=2), "gru": GRU(3, 4),
                           "rnn": RNN(3, 6, nonlinearity="relu")})
    got = recurrent_spectra(model)
    blocks = {"lstm.weight_hh_l0": "ifgo", "lstm.weight_hh_l1": "ifgo", "gru.weight_hh_l0": "rzn",
              "rnn.weight_hh_l0": ["W"]}
    assert len(got) == 2 * sum(len(g) for g in blocks.values())
    for name, gates in blocks.items():
        W = dict(model.named_parameters())[name].detach().numpy().astype(np.float64)
        H = W.shape[1]
        for g, gate in enumerate(gates):
            block = W[g * H : (g + 1) * H]
            assert got[f"spectral.{name}.{gate}.radius"] == pytest.approx(np.abs(np.linalg.eigvals(block)).max(),
                                                                          rel=1e-6)
            assert got[f"spectral.{name}.{gate}.sigma_max"] == pytest.approx(
                np.linalg.svd(block, compute_uv=False)[0], rel=1e-6)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _numpy_gates(model, x, cell):
    """The cell equations in NumPy: every gate's value at every step, (T, B, H) each."""
    U, W, b_ih, b_hh = (p.detach().numpy().astype(np.float64) for p in _weights(model, 0))
    B, T, _ = x.shape
    H = W.shape[1]
    h, c, out = np.zeros((B, H)), np.zeros((B, H)), {}
    for t in range(T):
        if cell == "lstm":
            a = x[:, t] @ U.T + b_ih + h @ W.T + b_hh
            gates = {"i": _sigmoid(a[:, :H]), "f": _sigmoid(a[:, H : 2 * H]), "g": np.tanh(a[:, 2 * H : 3 * H]),
                     "o": _sigmoid(a[:, 3 * H :])}
            c = gates["f"] * c + gates["i"] * gates["g"]
            h = gates["o"] * np.tanh(c)
        else:  # GRU, reset after (torch.nn)
            ax, ah = x[:, t] @ U.T + b_ih, h @ W.T + b_hh
            r, z = _sigmoid(ax[:, :H] + ah[:, :H]), _sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
            n = np.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :])
            gates = {"r": r, "z": z, "n": n}
            h = (1 - z) * n + z * h
        for k, v in gates.items():
            out.setdefault(k, []).append(v)
    return {k: np.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gate_statistics_equal_a_direct_computation_from_the_cell_equations(float64_seeded, cell):
    model = _lab_model("larger", cell, 6)
    with torch.no_grad():
        for p in model.rnn.parameters():
            p.mul_(4.0)  # large weights: some gates saturate
    batch = SyntheticBatches(larger_stream, 9, 8, 1).get(0, 0)
    got = probe(model, batch, jacobian=False)
    gates = _numpy_gates(model, batch.inputs.numpy(), cell)
    saturated_somewhere = 0.0
    for name, values in gates.items():
        if name in ("g", "n"):
            sat = (np.abs(values) > 0.9).mean()
        else:
            sat = ((values < 0.05) | (values > 0.95)).mean()
        assert got[f"gates.rnn.l0.{name}.mean"] == pytest.approx(values.mean(), rel=1e-9, abs=1e-12)
        assert got[f"gates.rnn.l0.{name}.saturated"] == pytest.approx(sat, abs=1e-12)
        saturated_somewhere += sat
    assert saturated_somewhere > 0  # the comparison is not 0 == 0


def test_dead_relus_are_the_units_that_never_fire(float64_seeded):
    model = _lab_model("sum", "irnn", 6)
    with torch.no_grad():
        for p in (model.rnn.weight_ih_l0, model.rnn.weight_hh_l0):
            p[:2] = 0.0
        model.rnn.bias_ih_l0[:2] = -1.0  # units 0 and 1: relu(-1) = 0 always
        model.rnn.bias_ih_l0[2:] = 50.0  # the others: always positive
    got = probe(model, LabBatch(torch.randn(4, 5, 1), torch.zeros(4)))
    assert got["relu.rnn.l0.dead"] == pytest.approx(2 / 6)
    assert got["relu.rnn.l0.zero"] == pytest.approx(2 / 6)


@dataclass
class _Out:
    loss: torch.Tensor
    state: object
    stats: dict


class _Linear(nn.Module):
    """loss = c · Σ w: the gradient is c · 1, of norm 2|c| for 4 weights."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(4))

    def forward(self, batch, state=None):
        loss = batch * self.w.sum()
        return _Out(loss, None, {"loss": loss.detach(), "n": 1})


class _Scalars:
    carries_state = False

    def __init__(self, values):
        self.values = values

    def __len__(self):
        return len(self.values)

    def get(self, i, epoch):
        return torch.tensor(self.values[i])

    def shard(self, rank, world_size):
        return self


class _SumTask:
    @staticmethod
    def summarize(totals):
        return {"loss": totals["loss"] / totals["n"]}


def test_clipping_rate_and_norms_with_a_known_huge_gradient(tmp_path):
    config = TrainConfig(epochs=1, optimizer="sgd", lr=1e-9, clip=1.0, device="cpu", progress=False,
                         tensorboard=False, log_every=0)
    trainer = Trainer(_Linear(), _SumTask(), _Scalars([1e6, 0.1, 1e6, 0.1, 0.1]), None, config, tmp_path,
                      callbacks=[UpdateDiagnostics(every=2)])
    trainer.fit()
    records = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    updates = [r["diagnostics"] for r in records if r.get("kind") == "updates"]
    assert [u["updates.step"] for u in updates] == [[1, 2], [3, 4], [5]]  # every 2 steps, and at the epoch's end
    norms = sum((u["updates.grad_norm"] for u in updates), [])
    np.testing.assert_allclose(norms, [2e6, 0.2, 2e6, 0.2, 0.2], rtol=1e-6)
    np.testing.assert_allclose(sum((u["updates.grad_norm_clipped"] for u in updates), []), [1, 0.2, 1, 0.2, 0.2],
                               rtol=1e-5)
    assert sum((u["updates.clipped"] for u in updates), []) == [1, 0, 1, 0, 0]
    assert [u["updates.clip_rate"] for u in updates] == [0.5, 0.5, 0.0]
    train = [r for r in records if r["split"] == "train"][0]
    assert train["clipped"] == pytest.approx(2 / 5)  # the Trainer's own epoch figure agrees


def test_diagnostics_do_not_change_training(tmp_path):
    data = LabDataConfig("adding", length=6, batch_size=8, batches_per_epoch=6, valid_size=16, test_size=16)
    train = TrainConfig(epochs=1, optimizer="adam", lr=1e-2, device="cpu", progress=False, tensorboard=False)
    model = LabModelConfig("adding", cell="gru", hidden=8)
    plain = fit(None, data, model, train)
    watched = fit(tmp_path, data, model, train, diagnostics_every=1)
    assert plain.test == watched.test and plain.history[0]["train"] == watched.history[0]["train"]
    records = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in records if r["split"] == "diagnostics"]
    assert kinds.count("probe") == 6 and kinds.count("spectra") == 6 and kinds.count("updates") == 6


def test_callbacks_work_on_a_two_layer_language_model(tmp_path):
    torch.manual_seed(0)
    stream = torch.randint(0, 7, (400,))
    train = LMStream(stream, 4, 12)
    model = RNNLM(RNNLMConfig(vocab_size=7, cell="lstm", layers=2, hidden=8, emb=8))
    config = TrainConfig(epochs=1, device="cpu", progress=False, tensorboard=False, log_every=0)
    with Trainer(model, LMTask(None, "char"), train, None, config, tmp_path,
                 callbacks=default_callbacks(train.get(0, 0), every=3)) as trainer:
        trainer.fit()
    probes = [r for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())
              if r.get("kind") == "probe"]
    steps = len(train)
    assert [r["step"] for r in probes] == [1] + list(range(3, steps + 1, 3))
    d = probes[-1]["diagnostics"]
    for layer in ("l0", "l1"):
        assert len(d[f"grad_flow.rnn.{layer}.dL_dh"]) == 12 and len(d[f"grad_flow.rnn.{layer}.jacobian"]) == 12
        assert 0.0 <= d[f"gates.rnn.{layer}.f.saturated"] <= 1.0
    assert all(math.isfinite(v) for v in d["grad_flow.rnn.l1.dL_dh"])


def test_a_model_without_rnnkit_layers_gets_spectra_and_an_empty_probe():
    class TorchLSTMModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(2, 3, batch_first=True)

        def forward(self, batch, state=None):
            h, _ = self.lstm(batch)
            return _Out(h.pow(2).mean(), None, {})

    model = TorchLSTMModel()
    assert probe(model, torch.randn(2, 5, 2)) == {}
    assert sorted(recurrent_spectra(model)) == sorted(f"spectral.lstm.weight_hh_l0.{g}.{k}" for g in "ifgo"
                                                      for k in ("radius", "sigma_max"))


def _lm_data():
    stream = torch.randint(0, 7, (400,), generator=torch.Generator().manual_seed(1))
    return LMStream(stream[:300], 4, 12), LMStream(stream[300:], 2, 12)


def _lm_run(run_dir, **trainer_args):
    torch.manual_seed(0)
    train, valid = _lm_data()
    model = RNNLM(RNNLMConfig(vocab_size=7, cell="gru", layers=1, hidden=8, emb=8))
    config = TrainConfig(epochs=2, optimizer="adam", lr=1e-2, device="cpu", progress=False, tensorboard=False,
                         log_every=0, **trainer_args.pop("config", {}))
    with Trainer(model, LMTask(None, "char"), train, valid, config, run_dir, **trainer_args) as trainer:
        history = trainer.fit()
    records = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    timing = ("time", "tokens_per_second")  # wall-clock figures differ from run to run
    return history, [{k: v for k, v in r.items() if k not in timing} for r in records]


def test_diagnostics_every_attaches_the_same_callbacks_a_user_would_and_changes_no_number(tmp_path):
    plain, plain_records = _lm_run(tmp_path / "plain")
    probe_batch = _lm_data()[1].get(0, 0)  # the Trainer probes the first validation batch
    by_hand, hand_records = _lm_run(tmp_path / "hand", callbacks=default_callbacks(probe_batch, every=4))
    auto, auto_records = _lm_run(tmp_path / "auto", config={"diagnostics_every": 4})
    assert plain == by_hand == auto  # the probe runs outside the optimization: same losses, same metrics
    diagnostics = [r for r in auto_records if r["split"] == "diagnostics"]
    assert {r["kind"] for r in diagnostics} == {"probe", "spectra", "updates"}
    key = lambda r: (r["step"], r.get("kind", ""), r["split"])  # noqa: E731 (callback order is not a contract)
    assert sorted(auto_records, key=key) == sorted(hand_records, key=key)
    assert [r for r in auto_records if r["split"] != "diagnostics"] == plain_records
