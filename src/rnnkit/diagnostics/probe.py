"""What happens inside the recurrent layers on a probe batch: gradient flow through time, Jacobian products,
gate activity and dead ReLUs.

For every rnnkit `Recurrent` layer of a model, the probe runs the model's forward once with the layer on its
loop path and a recording time loop (`Recurrent.scan_override`), which keeps each state h_1..h_T (and c_t for
LSTMs) and each gate activation. From them (notation of the lectures, L = the model's ``out.loss``):

    ‖∂L/∂h_k‖              the total derivative of the loss w.r.t. the state at step k, through every later
                           step (BPTT's δ_k), Frobenius norm over the probe batch. "The sensitivity decays over
                           time": for a tanh RNN it shrinks geometrically as k moves away from where the loss is.
    ‖∂h_T/∂h_k‖₂          the product of the step Jacobians J_T J_{T-1} ... J_{k+1}, J_t = ∂h_t/∂h_{t-1}
                           (for an Elman RNN J_t = diag(φ'(a_t)) W), largest singular value, averaged over the
                           first ``jacobian_examples`` probe examples. For LSTMs c_k is held fixed (a partial
                           derivative w.r.t. h_k; the memory path c is what keeps the LSTM's products alive).
    gates                  LSTM i, f, o and GRU r, z (sigmoids): mean activation and the fraction saturated,
                           i.e. < 0.05 or > 0.95; the candidates c̃ ("g") and n (tanh): mean and the fraction with
                           |value| > 0.9 (the same thresholds on the (1 + tanh)/2 scale). minGRU z and minLSTM
                           f, i and i_norm = i/(f + i) (the weight of h̃ in h_t; rnnkit.nn.minimal): sigmoids, read
                           from x_t alone; their candidate g(·) is unbounded and not reported.
    ReLU units (irnn, rnn-relu): "dead" = fraction of hidden units that are 0 for every probe example and step;
                           "zero" = fraction of all activations that are 0.

Keys (plain floats or lists of T floats, time in the input's order), with P = "<module>.l<layer>[_reverse]"
(<module> is the layer's name in the model, e.g. "rnn"; "rnn" too when the model is the layer itself):

    grad_flow.P.dL_dh   [T]        grad_flow.P.dL_dc   [T] (LSTMs)        grad_flow.P.jacobian   [T]
    gates.P.<gate>.mean            gates.P.<gate>.saturated               relu.P.dead    relu.P.zero
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.nn.cells import ElmanCell, GRUCell, LayerNormLSTMCell, LSTMCell, LSTMState, map_state
from rnnkit.nn.minimal import MinGRUCell, MinLSTMCell
from rnnkit.nn.recurrent import Recurrent

SIGMOID_GATES = {"i", "f", "o", "r", "z", "i_norm"}
LOW, HIGH, TANH_SATURATED = 0.05, 0.95, 0.9


def gate_activations(cell, ux: Tensor, state) -> dict[str, Tensor]:
    """The gate values of one step of ``cell`` from U x_t + b_ih (``ux``) and the previous state: LSTM
    (i, f, g, o), GRU (r, z, n), minGRU (z), minLSTM (f, i, i_norm); {} for Elman cells."""
    if isinstance(cell, MinGRUCell):
        return {"z": cell.mix(ux)[0]}
    if isinstance(cell, MinLSTMCell):
        a_f, a_i, _ = ux.chunk(3, dim=-1)
        return {"f": torch.sigmoid(a_f), "i": torch.sigmoid(a_i), "i_norm": cell.mix(ux)[0]}
    if isinstance(cell, LSTMCell):
        h = state.h
        if isinstance(cell, LayerNormLSTMCell):
            wh = cell._ln(F.linear(h, cell.weight_hh), cell.ln_hh_weight)
            wh = wh if cell.bias_hh is None else wh + cell.bias_hh
        else:
            wh = cell.recurrent(h)
        i, f, g, o = (ux + wh).chunk(4, dim=-1)
        return {"i": torch.sigmoid(i), "f": torch.sigmoid(f), "g": torch.tanh(g), "o": torch.sigmoid(o)}
    if isinstance(cell, GRUCell):
        H = cell.hidden_size
        ux_r, ux_z, ux_n = ux.chunk(3, dim=-1)
        b = cell.bias_hh
        wr, wz = F.linear(state, cell.weight_hh[: 2 * H], None if b is None else b[: 2 * H]).chunk(2, dim=-1)
        r, z = torch.sigmoid(ux_r + wr), torch.sigmoid(ux_z + wz)
        b_n = None if b is None else b[2 * H :]
        inner = r * F.linear(state, cell.weight_hh[2 * H :], b_n) if cell.reset == "after" else \
            F.linear(r * state, cell.weight_hh[2 * H :], b_n)
        return {"r": r, "z": z, "n": torch.tanh(ux_n + inner)}
    return {}


class Recorder:
    """A time loop for `Recurrent.scan_override`: the same recurrence as `python_scan`, keeping every state
    and gate activation. ``calls`` has one entry per (layer, direction) in the order the layer runs them."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, cell, ux: Tensor, state, alive: Tensor | None = None):
        states, outputs, gates = [], [], []
        for t, ux_t in enumerate(ux.unbind(0)):
            with torch.no_grad():
                gates.append(gate_activations(cell, ux_t, state))
            new = cell.step(ux_t, state)
            if alive is not None and not bool(alive[t].all()):
                keep = alive[t].unsqueeze(1)
                new = map_state(new, lambda n, s, keep=keep: torch.where(keep, n, s), state)
            states.append(new)
            outputs.append(cell.output(new))
            state = new
        out = torch.stack(outputs)  # (T, B, H)
        if alive is not None:
            out = out * alive.unsqueeze(2).to(out.dtype)
        self.calls.append({"cell": cell, "states": states, "gates": gates})
        return out, state


def recurrent_layers(model: nn.Module) -> list[tuple[str, Recurrent]]:
    """(name, layer) for every rnnkit `Recurrent` in ``model`` ("rnn" when the model is a layer itself)."""
    return [(name or "rnn", m) for name, m in model.named_modules() if isinstance(m, Recurrent)]


@contextmanager
def recording(model: nn.Module):
    """Within the block, every `Recurrent` of ``model`` runs its loop path with a `Recorder`; yields
    {layer name: (layer, recorder)}. The layers' settings are restored afterwards."""
    layers = recurrent_layers(model)
    saved = [(m.use_fused, m.scan_override) for _, m in layers]
    recorders = {}
    for name, m in layers:
        recorders[name] = (m, Recorder())
        m.use_fused, m.scan_override = False, recorders[name][1]
    try:
        yield recorders
    finally:
        for (_, m), (fused, scan) in zip(layers, saved):
            m.use_fused, m.scan_override = fused, scan


def _prefix(name: str, layer: Recurrent, index: int) -> str:
    D = layer.num_directions
    return f"{name}.l{index // D}" + ("_reverse" if index % D else "")


def probe(model: nn.Module, batch, jacobian: bool = True, jacobian_examples: int = 4) -> dict:
    """Gradient flow, Jacobian-product norms, gate statistics and dead ReLUs of ``model`` on ``batch`` (keys in
    the module docstring). Runs in eval mode (no dropout); leaves the parameters' ``.grad`` untouched."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), recording(model) as recorders:
            out = model(batch)
            calls = [(_prefix(name, layer, i), layer, call) for name, (layer, rec) in recorders.items()
                     for i, call in enumerate(rec.calls)]
            result = _gradient_flow(out.loss, calls, retain=jacobian) if calls else {}  # {}: no rnnkit layer
            if jacobian:
                for prefix, _, call in calls:
                    result[f"grad_flow.{prefix}.jacobian"] = _in_input_order(
                        jacobian_norms(call["states"], jacobian_examples), prefix)
    finally:
        model.train(was_training)
    for prefix, _, call in calls:
        result.update(gate_statistics(call["gates"], prefix))
        if isinstance(call["cell"], ElmanCell) and call["cell"].nonlinearity == "relu":
            result.update(relu_statistics(call["states"], prefix))
    return result


def _in_input_order(values: list[float], prefix: str) -> list[float]:
    """A reverse direction records its steps backwards: put them back in the input's time order."""
    return values[::-1] if prefix.endswith("_reverse") else values


def _hidden(state) -> Tensor:
    return state.h if isinstance(state, LSTMState) else state


def _gradient_flow(loss: Tensor, calls: list, retain: bool) -> dict:
    """‖∂L/∂h_k‖ (and ‖∂L/∂c_k‖) for every recorded step, by autograd w.r.t. the kept state tensors."""
    tensors, slots = [], []
    for prefix, _, call in calls:
        for s in call["states"]:
            parts = (("h", s.h), ("c", s.c)) if isinstance(s, LSTMState) else (("h", s),)
            for which, tensor in parts:
                tensors.append(tensor)
                slots.append((prefix, which))
    grads = torch.autograd.grad(loss, tensors, retain_graph=retain, allow_unused=True)
    result: dict[str, list] = {}
    for (prefix, which), g in zip(slots, grads):
        key = f"grad_flow.{prefix}.dL_d{which}"
        result.setdefault(key, []).append(0.0 if g is None else float(g.norm()))
    return {k: _in_input_order(v, k.split(".", 1)[1].rsplit(".", 1)[0]) for k, v in result.items()}


def jacobian_norms(states: list, examples: int = 4, chunk: int = 16) -> list[float]:
    """[mean over the first ``examples`` rows of ‖∂h_T/∂h_k‖₂ for k = 1..T] from recorded states (with graph).

    Row i of every ∂h_T/∂h_k comes from one backward pass of h_T[:, i]; ``chunk`` rows run together
    (batched backward), and only the first ``examples`` rows of the batch are kept."""
    hs = [_hidden(s) for s in states]
    h_T = hs[-1]
    H = h_T.shape[1]
    b = min(examples, h_T.shape[0])
    kept: list[list[Tensor]] = [[] for _ in hs]  # per step k: chunks of rows (rows, b, H_in)
    for start in range(0, H, chunk):
        units = torch.arange(start, min(start + chunk, H), device=h_T.device)
        seed = torch.zeros(len(units), *h_T.shape, dtype=h_T.dtype, device=h_T.device)
        seed[torch.arange(len(units)), :b, units] = 1.0  # pass j backpropagates h_T[:b, units[j]]
        grads = _batched_grad(h_T, hs, seed)
        for k, g in enumerate(grads):
            kept[k].append(torch.zeros(len(units), b, H, dtype=h_T.dtype) if g is None else g[:, :b].cpu())
    norms = []
    for parts in kept:
        jac = torch.cat(parts).permute(1, 0, 2)  # (b, H_out, H_in): example j's ∂h_T/∂h_k
        norms.append(float(torch.linalg.matrix_norm(jac.double(), ord=2).mean()))
    return norms


def _batched_grad(output: Tensor, inputs: list[Tensor], seeds: Tensor) -> list:
    """Vector-Jacobian products of ``output`` for each seed in ``seeds`` (n, *output.shape): [(n, *input)]."""
    try:
        return list(torch.autograd.grad(output, inputs, grad_outputs=seeds, retain_graph=True,
                                        is_grads_batched=True, allow_unused=True))
    except RuntimeError:  # an op without a batching rule: one backward pass per seed
        each = [torch.autograd.grad(output, inputs, grad_outputs=s, retain_graph=True, allow_unused=True)
                for s in seeds]
        return [None if each[0][k] is None else torch.stack([e[k] for e in each]) for k in range(len(inputs))]


def gate_statistics(gates: list[dict], prefix: str) -> dict[str, float]:
    """Mean and saturated fraction of each gate over all probe examples, steps and units."""
    if not gates or not gates[0]:
        return {}
    result = {}
    for name in gates[0]:
        values = torch.stack([g[name] for g in gates]).double()  # (T, B, H)
        if name in SIGMOID_GATES:
            saturated = (values < LOW) | (values > HIGH)
        else:
            saturated = values.abs() > TANH_SATURATED
        result[f"gates.{prefix}.{name}.mean"] = float(values.mean())
        result[f"gates.{prefix}.{name}.saturated"] = float(saturated.double().mean())
    return result


def relu_statistics(states: list, prefix: str) -> dict[str, float]:
    """Dead units (0 on every probe example and step) and the fraction of zero activations."""
    h = torch.stack([_hidden(s).detach() for s in states])  # (T, B, H)
    zero = h == 0
    return {f"relu.{prefix}.dead": float(zero.all(dim=1).all(dim=0).double().mean()),
            f"relu.{prefix}.zero": float(zero.double().mean())}
