"""rnnkit.nn in ONNX: every cell's step, the time loop (an ONNX Scan), stacking, both directions, lengths.

The graphs are written from the cells' equations (rnnkit.nn.cells), not traced: a trace would freeze the
sequence length and the padding pattern of the example batch (the failure of packed LSTMs in the peers'
exports). Here T and B stay symbolic and the lengths are a graph input:

    ux      = U x + b_ih for all T steps (one MatMul), then per step in the Scan body:
    state_t = alive_t ? step(ux_t, state_{t-1}) : state_{t-1}      (carried after a sequence's own end)
    out_t   = alive_t ? h_t : 0                                     (padded outputs are zero)

The reverse direction reads each sequence backwards within its own length (ONNX ReverseSequence, the same as
rnnkit.nn.recurrent.reverse_padded). The fused and the loop path of rnnkit compute these same equations, so
one translation serves both; the tests compare onnxruntime with rnnkit on each path.

Cells with an exact ONNX twin — Elman tanh/ReLU, the LSTM without projections, the GRU with the reset after
the matmul (``linear_before_reset=1``) — become ONNX's own RNN / LSTM / GRU operator instead of a Scan, with the
lengths as its ``sequence_lens`` (outputs past a sequence's end are zero, the final state is taken at its own
last step, the reverse direction reads each sequence backwards within its length: the same semantics).
onnxruntime runs those operators as one fused kernel per layer, where a Scan pays a subgraph call per step.
Only the gate order differs: ONNX's LSTM is (i, o, f, c), torch's (i, f, g, o); ONNX's GRU (z, r, h), torch's
(r, z, n).
"""

from __future__ import annotations

from rnnkit.export.graph import BOOL, FLOAT, Graph, NotExportable
from rnnkit.nn.cells import ElmanCell, GRUCell, LayerNormLSTMCell, LSTMCell
from rnnkit.nn.minimal import MinGRUCell, MinLSTMCell

_PHI = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}


def _bias(g: Graph, x: str, bias) -> str:
    return x if bias is None else g.op("Add", x, g.weight(bias))


def _layer_norm(g: Graph, x: str, gain, shift, eps: float) -> str:
    args = [x, g.weight(gain)] + ([g.weight(shift)] if shift is not None else [])
    return g.op("LayerNormalization", *args, axis=-1, epsilon=eps)


def is_lstm(cell) -> bool:
    return isinstance(cell, LSTMCell)


def project(g: Graph, cell, x: str) -> str:
    """U x + b_ih (LN(U x; α_x) + b_ih for the layer-norm LSTM), x (..., I) -> (..., G·H)."""
    ux = g.op("MatMul", x, g.weight(cell.weight_ih, transpose=True))
    if type(cell) is LayerNormLSTMCell:
        ux = _layer_norm(g, ux, cell.ln_ih_weight, None, cell.eps)
    return _bias(g, ux, cell.bias_ih)


def step(g: Graph, cell, ux: str, state: list[str]) -> list[str]:
    """One step of ``cell``: ux_t (B, G·H) and the state [h] or [h, c] (B, H each) -> the new state."""
    kind, H = type(cell), cell.hidden_size
    if kind is ElmanCell:
        (h,) = state
        a = g.op("Add", ux, _bias(g, g.op("MatMul", h, g.weight(cell.weight_hh, transpose=True)), cell.bias_hh))
        if cell.nonlinearity == "hardtanh":
            return [g.op("Clip", a, g.const(-1.0), g.const(1.0))]
        return [g.op(_PHI[cell.nonlinearity], a)]
    if kind in (LSTMCell, LayerNormLSTMCell):
        h, c = state
        wh = g.op("MatMul", h, g.weight(cell.weight_hh, transpose=True))
        if kind is LayerNormLSTMCell:
            wh = _layer_norm(g, wh, cell.ln_hh_weight, None, cell.eps)
        i, f, c_tilde, o = g.split(g.op("Add", ux, _bias(g, wh, cell.bias_hh)), [H] * 4)
        i, f, c_tilde, o = g.op("Sigmoid", i), g.op("Sigmoid", f), g.op("Tanh", c_tilde), g.op("Sigmoid", o)
        c = g.op("Add", g.op("Mul", f, c), g.op("Mul", i, c_tilde))  # c_t = f ⊙ c_{t-1} + i ⊙ c̃
        squash = _layer_norm(g, c, cell.ln_c_weight, cell.ln_c_bias, cell.eps) if kind is LayerNormLSTMCell else c
        h = g.op("Mul", o, g.op("Tanh", squash))  # h_t = o ⊙ tanh(c_t)
        if getattr(cell, "proj_size", 0):  # with projections: h_t = W_hr (o ⊙ tanh(c_t))
            h = g.op("MatMul", h, g.weight(cell.weight_hr, transpose=True))
        return [h, c]
    if kind is GRUCell:
        return [_gru_step(g, cell, ux, state[0])]
    if kind in (MinGRUCell, MinLSTMCell):
        return [_min_step(g, cell, ux, state[0])]
    raise NotExportable(f"cell {kind.__name__} has no ONNX translation (known: Elman, LSTM, layer-norm LSTM, GRU, "
                        "minGRU, minLSTM)")


def _min_step(g: Graph, cell, ux: str, h: str) -> str:
    """minGRU / minLSTM (rnnkit.nn.minimal): h_t = h_{t-1} + z ⊙ (h̃ − h_{t-1}), h̃ = g(a_h) = max(a_h + 0.5, σ(a_h))
    (the same function as the paper's two-branch g); minLSTM's z = i/(f + i) = σ(log σ(a_i) − log σ(a_f)), with
    log σ(a) = −softplus(−a)."""
    H = cell.hidden_size
    if type(cell) is MinGRUCell:
        a_z, a_h = g.split(ux, [H, H])
        z = g.op("Sigmoid", a_z)
    else:
        a_f, a_i, a_h = g.split(ux, [H, H, H])
        log_f, log_i = (g.op("Softplus", g.op("Neg", a)) for a in (a_f, a_i))  # −log σ(a)
        z = g.op("Sigmoid", g.op("Sub", log_f, log_i))  # σ(log i − log f)
    h_tilde = g.op("Max", g.op("Add", a_h, g.const(0.5)), g.op("Sigmoid", a_h))
    return g.op("Add", h, g.op("Mul", z, g.op("Sub", h_tilde, h)))


def _gru_step(g: Graph, cell: GRUCell, ux: str, h: str) -> str:
    H = cell.hidden_size
    ux_r, ux_z, ux_n = g.split(ux, [H] * 3)
    if cell.reset == "after":  # n = tanh(U_n x + b_in + r ⊙ (W_n h + b_hn))
        wh_r, wh_z, wh_n = g.split(_bias(g, g.op("MatMul", h, g.weight(cell.weight_hh, transpose=True)),
                                         cell.bias_hh), [H] * 3)
        r = g.op("Sigmoid", g.op("Add", ux_r, wh_r))
        z = g.op("Sigmoid", g.op("Add", ux_z, wh_z))
        n = g.op("Tanh", g.op("Add", ux_n, g.op("Mul", r, wh_n)))
    else:  # n = tanh(U_n x + b_in + W_n (r ⊙ h) + b_hn)
        W, b = cell.weight_hh, cell.bias_hh
        wh_rz = g.op("MatMul", h, g.weight(W[: 2 * H], transpose=True))
        wh_r, wh_z = g.split(wh_rz if b is None else g.op("Add", wh_rz, g.weight(b[: 2 * H])), [H, H])
        r = g.op("Sigmoid", g.op("Add", ux_r, wh_r))
        z = g.op("Sigmoid", g.op("Add", ux_z, wh_z))
        wn = g.op("MatMul", g.op("Mul", r, h), g.weight(W[2 * H:], transpose=True))
        n = g.op("Tanh", g.op("Add", ux_n, wn if b is None else g.op("Add", wn, g.weight(b[2 * H:]))))
    return g.op("Add", n, g.op("Mul", z, g.op("Sub", h, n)))  # (1 − z) ⊙ n + z ⊙ h_{t-1}


def _scan(g: Graph, cell, ux: str, state: list[str], alive: tuple[str, str] | None) -> tuple[str, list[str]]:
    """The time loop over ux (T, B, G·H) from ``state``: outputs (T, B, H) and the final state."""
    body = g.body(g.fresh("step"))
    s_in = [body.input(body.fresh("s"), FLOAT, 2) for _ in state]
    ux_t = body.input(body.fresh("ux_t"), FLOAT, 2)
    new = step(body, cell, ux_t, s_in)
    if alive is not None:
        alive_t = body.input(body.fresh("alive_t"), BOOL, 2)  # (B, 1)
        live_t = body.input(body.fresh("live_t"), FLOAT, 2)  # the same as 1.0 / 0.0
        new = [body.op("Where", alive_t, n, s) for n, s in zip(new, s_in)]
        out_t = body.op("Mul", new[0], live_t)
    else:
        out_t = new[0]
    for s in new:
        body.output(s, body.fresh("s_out"), FLOAT, 2)
    body.output(out_t, body.fresh("out_t"), FLOAT, 2)
    scans = [ux] + (list(alive) if alive is not None else [])
    *final, out = g.op("Scan", *state, *scans, outputs=len(state) + 1, body=body.graph(),
                       num_scan_inputs=len(scans))
    return out, final


def alive_masks(g: Graph, lengths: str, T: str) -> tuple[str, str]:
    """alive (T, B, 1) bool = t < lengths[b], and the same as float."""
    t = g.op("Range", g.const(0, dtype="int64"), g.op("Squeeze", T, g.ints(0)), g.const(1, dtype="int64"))
    alive = g.op("Less", g.op("Unsqueeze", t, g.ints(1, 2)), g.op("Unsqueeze", lengths, g.ints(0, 2)))
    return alive, g.op("Cast", alive, to=FLOAT)


def _reverse(g: Graph, x: str, lengths: str | None) -> str:
    if lengths is None:
        return g.op("Slice", x, g.ints(-1), g.ints(-(2 ** 62)), g.ints(0), g.ints(-1))
    return g.op("ReverseSequence", x, lengths, batch_axis=1, time_axis=0)


def _native_twin(cell) -> str | None:
    """The ONNX operator computing exactly ``cell``'s step, or None (then the layer is a Scan)."""
    kind = type(cell)
    if kind is ElmanCell and cell.nonlinearity in ("tanh", "relu"):
        return "RNN"
    if kind is LSTMCell and not getattr(cell, "proj_size", 0):
        return "LSTM"
    if kind is GRUCell and cell.reset == "after":
        return "GRU"
    return None


_ONNX_ORDER = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}  # ONNX's gate blocks, as indices of torch's


def _native(g: Graph, op: str, cells, x: str, s0: list[str] | None, lengths: str | None):
    """One layer (both directions at once) as ONNX's RNN/LSTM/GRU operator: x (T, B, I) -> (T, B, D·H), final
    state [h] / [h, c] (D, B, H). ``s0``: the initial state (D, B, H) each, or None for zeros."""
    import numpy as np

    H, D = cells[0].hidden_size, len(cells)

    def stacked(name):  # (D, G·H, ·) in ONNX's gate order
        parts = [getattr(c, name).detach().float().cpu().numpy() for c in cells]
        return np.stack([np.concatenate([p[i * H:(i + 1) * H] for i in _ONNX_ORDER[op]]) for p in parts])

    inputs = [x, g.const(stacked("weight_ih"), "W"), g.const(stacked("weight_hh"), "R")]
    if cells[0].bias_ih is not None:
        inputs.append(g.const(np.concatenate([stacked("bias_ih"), stacked("bias_hh")], axis=1), "B"))
    else:
        inputs.append("")
    inputs.append(g.op("Cast", lengths, to=6) if lengths is not None else "")  # sequence_lens: int32
    inputs += s0 if s0 is not None else []
    while inputs[-1] == "":  # trailing optional inputs are left out
        inputs.pop()
    attrs = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
    if op == "RNN":
        attrs["activations"] = [{"tanh": "Tanh", "relu": "Relu"}[cells[0].nonlinearity]] * D
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    y, *final = g.op(op, *inputs, outputs=3 if op == "LSTM" else 2, **attrs)  # y (T, D, B, H)
    y = g.op("Transpose", y, perm=[0, 2, 1, 3])  # (T, B, D, H)
    out = g.op("Reshape", y, g.ints(0, 0, D * H))
    return out, final


def recurrent(g: Graph, layer, x: str, lengths: str | None = None, state: list[str] | None = None):
    """rnnkit.nn.Recurrent (eval mode) on x (T, B, I) -> output (T, B, D·H), final state [h_n] or [h_n, c_n]
    (L·D, B, H), at each sequence's own last step. ``state``: initial [h_0] / [h_0, c_0] (L·D, B, H), or zeros."""
    cells, D = layer.cells, layer.num_directions
    T, B = g.dim(x, 0), g.dim(x, 1)
    masks = None if lengths is None else alive_masks(g, lengths, T)
    n_state = 2 if is_lstm(cells[0]) else 1
    finals = [[] for _ in range(n_state)]
    for k in range(layer.num_layers):
        op = _native_twin(cells[k * D])
        if op is not None:
            s0 = None if state is None else [g.op("Slice", s, g.ints(k * D), g.ints((k + 1) * D), g.ints(0))
                                             for s in state]
            out, fin = _native(g, op, cells[k * D:(k + 1) * D], x, s0, lengths)
            for part, f in zip(finals, fin):
                part.append(f)
            x = _skip(g, layer, out, x, k) if k > 0 and layer.skip else out
            continue
        outs = []
        for d in range(D):
            row = k * D + d
            if state is None:
                sizes = [getattr(layer, "proj_size", 0) or layer.hidden_size, layer.hidden_size][:n_state]
                s0 = [g.zeros(B, g.ints(size)) for size in sizes]
            else:
                s0 = [g.op("Gather", s, g.const(row, dtype="int64"), axis=0) for s in state]
            xin = _reverse(g, x, lengths) if d else x
            out, fin = _scan(g, cells[row], project(g, cells[row], xin), s0, masks)
            outs.append(_reverse(g, out, lengths) if d else out)
            for part, f in zip(finals, fin):
                part.append(g.op("Unsqueeze", f, g.ints(0)))
        out = outs[0] if D == 1 else g.op("Concat", *outs, axis=-1)
        x = _skip(g, layer, out, x, k) if k > 0 and layer.skip else out
    return x, [p[0] if len(p) == 1 else g.op("Concat", *p, axis=0) for p in finals]


def _skip(g: Graph, layer, out: str, x: str, k: int) -> str:
    """Between stacked layers k >= 1: residual out + x, or highway g ⊙ out + (1 − g) ⊙ x, g = σ(W_g x + b_g)."""
    if layer.skip == "residual":
        return g.op("Add", out, x)
    weight, bias = getattr(layer, f"highway_weight_l{k}"), getattr(layer, f"highway_bias_l{k}")
    gate = g.op("Sigmoid", g.op("Add", g.op("MatMul", x, g.weight(weight, transpose=True)), g.weight(bias)))
    return g.op("Add", g.op("Mul", gate, out), g.op("Mul", g.op("Sub", g.const(1.0), gate), x))


def stack_step(g: Graph, layer, x: str, state: list[str]) -> tuple[str, list[str]]:
    """One time step of a unidirectional stack without a loop: x (B, I), state (L, B, H) each ->
    the last layer's h (B, H) and the new state (L, B, H) each. The LM step model and the seq2seq decoder."""
    if layer.bidirectional:
        raise NotExportable("a one-step model of a bidirectional layer does not exist (it reads the future)")
    news = [[] for _ in state]
    for k, cell in enumerate(layer.cells):
        s_k = [g.op("Gather", s, g.const(k, dtype="int64"), axis=0) for s in state]
        new = step(g, cell, project(g, cell, x), s_k)
        x = _skip(g, layer, new[0], x, k) if k > 0 and layer.skip else new[0]
        for part, n in zip(news, new):
            part.append(g.op("Unsqueeze", n, g.ints(0)))
    return x, [p[0] if len(p) == 1 else g.op("Concat", *p, axis=0) for p in news]
