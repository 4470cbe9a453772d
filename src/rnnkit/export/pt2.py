"""`rnnkit export RUN --format pt2`: the same programs as the ONNX export, as torch.export ExportedPrograms.

Each ONNX graph of a task (rnnkit.export.tasks lists them) gets a twin ``NAME.pt2`` with the same inputs, in
the same order, and the same outputs (a tuple in the graph's output order), with the same symbolic dims
(B, T, S, W, C: any size). model.json is the ONNX export's, with the files renamed.

What makes a recurrent model exportable with symbolic T is the time loop. rnnkit's layers pack the batch by
the values of ``lengths`` (fused path) or loop over T in Python (loop path): both are data-dependent, and
torch.export stops there. For the export every ``Recurrent`` in a copy of the model runs ``scan_forward``
instead, a torch higher-order ``scan`` over time with the same masking the ONNX graphs use:

    ux      = U x + b_ih for all T steps (cell.project), then per step:
    state_t = alive_t ? cell.step(ux_t, state_{t-1}) : state_{t-1}      (carried after a sequence's end)
    out_t   = alive_t ? h_t : 0                                          (padded outputs are zero)

with the reverse direction read within each sequence's own length (rnnkit.nn.unroll.reverse_padded) and the
stack's skips as the layer has them. Every cell's own ``step`` runs in the loop, so every cell kind exports.
The rest of each task's program is the model's own methods (logits, predict, encode, decode_step), except
where they are data-dependent themselves (the tagger's character encoder indexes the real words by a mask:
here it runs over every word and zeroes the padding, as the ONNX graph does).
"""

from __future__ import annotations

import copy
import types

import torch
from torch import Tensor

from rnnkit.export.layers import is_lstm
from rnnkit.nn.recurrent import Recurrent
from rnnkit.nn.state import LSTMState, map_state
from rnnkit.nn.unroll import reverse_padded


def _parts(state) -> tuple:
    return tuple(state) if isinstance(state, tuple) else (state,)


def scan_forward(self: Recurrent, input: Tensor, state=None, lengths: Tensor | None = None, *, hx=None):
    """Recurrent.forward for torch.export: (output, state) as the layer gives them (padded input, batch_first
    as the layer's; no PackedSequence, no unbatched input), with a scan over time."""
    from torch._higher_order_ops.scan import scan

    x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
    T, B = x.shape[0], x.shape[1]
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.int64)
    lengths = lengths.to(torch.int64)
    state = self._initial_state(state if state is not None else hx, B, x)
    cells = self._bind(self.all_weights)
    alive = (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)
    D, finals = self.num_directions, []
    for k in range(self.num_layers):
        outs = []
        for d in range(D):
            i = k * D + d
            cell = cells[i]

            def body(carry, xs, cell=cell):
                ux_t, alive_t = xs
                new = _parts(cell.step(ux_t, _state(carry)))
                new = tuple(torch.where(alive_t, n, c) for n, c in zip(new, carry))
                return new, torch.where(alive_t, new[0], torch.zeros_like(new[0]))

            ux = cell.project(reverse_padded(x, lengths) if d else x)
            final, out = scan(body, _parts(map_state(state, lambda s, i=i: s[i])), (ux, alive))
            outs.append(reverse_padded(out, lengths) if d else out)
            finals.append(final)
        out = outs[0] if D == 1 else torch.cat(outs, dim=-1)
        if k > 0 and self.skip:
            out = self._skip(out, x, k)
        x = out
    stacked = [torch.stack([f[j] for f in finals]) for j in range(len(finals[0]))]  # (L·D, B, ·) per part
    return (x.transpose(0, 1) if self.batch_first else x), _state(stacked)


def scanned(model):
    """A copy of ``model`` in eval mode whose every Recurrent runs scan_forward."""
    model = copy.deepcopy(model).eval()
    for m in model.modules():
        if isinstance(m, Recurrent):
            m.forward = types.MethodType(scan_forward, m)
    return model


class Program(torch.nn.Module):
    """fn(model, *inputs) -> tuple of outputs, as a module over the model (its weights are the program's)."""

    def __init__(self, model, fn):
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, *inputs):
        return tuple(self.fn(self.model, *inputs))


# ---- the programs, one per ONNX graph, inputs and outputs in the graph's order ---------------------------------
def _classify(model, tokens, lengths):
    logits = model.logits(tokens, lengths)
    return logits, torch.softmax(logits, dim=-1)


def _tag(model, words, lengths, chars=None, char_lengths=None):
    x = model.embedding(words)  # (B, T, E)
    if model.chars is not None:
        n = char_lengths.reshape(-1).clamp_min(1)  # padding words: one (masked) step, then zeroed
        _, (h_n, _) = model.chars.rnn(model.chars.embedding(chars.flatten(0, 1)), lengths=n)  # every word of B·T
        # back to (B, T, 2 H_c) by char_lengths' own shape (by the words' shape, torch.export would keep a guard
        # B != B·T from the two scans' batch sizes, which refuses one-word sentences)
        words_chars = torch.cat([h_n[0], h_n[1]], dim=1).reshape(char_lengths.shape[0], char_lengths.shape[1], -1)
        live = (torch.arange(words.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)  # (B, T, 1)
        x = torch.cat([x, words_chars * live], dim=2)
    h, _ = model.rnn(x, lengths=lengths)
    return (model.out(h),)


def _forecast(model, values, *extra):
    c, extra = model.config, list(extra)
    start = extra.pop(0) if c.features else None
    series = extra.pop(0) if model.embed is not None else None
    q = model.predict(values, start, series)  # (B, H, Q) in the data's units
    return q[..., c.point_index], q


def _window_nll(logits, tokens, lengths):
    """Σ_{t < length-1} −log p(tokens[t+1] | tokens[..t]) per row (B,), as the ONNX graph's nll."""
    # tokens[t+1] by a roll, not by slicing to T - 1 steps: torch.export would then need T >= 3
    following = torch.roll(tokens, -1, dims=1)  # (B, T); the last column wraps round and is masked
    picked = torch.log_softmax(logits, dim=-1).gather(2, following.unsqueeze(2)).squeeze(2)  # (B, T)
    mask = torch.arange(tokens.shape[1]).unsqueeze(0) < (lengths - 1).unsqueeze(1)
    return -torch.where(mask, picked, torch.zeros_like(picked)).sum(1)


def _lm_window(model, tokens, lengths, *state):
    out, final = model.rnn(model.embedding(tokens), _state(state), lengths=lengths)
    logits = model.decoder(out)
    return (logits, *_parts(final), _window_nll(logits, tokens, lengths))


def _lm_step(model, token, *state):
    out, new = model.rnn(model.embedding(token).unsqueeze(1), _state(state))
    return (model.decoder(out[:, 0]), *_parts(new))


def _state(parts):
    """The layer's state from its parts: (h, c) -> LSTMState, (h,) -> h (the inverse of _parts)."""
    return LSTMState(*parts) if len(parts) == 2 else parts[0]


def _nplm_logits(model, context, ids):
    n1 = model.config.context
    full = torch.cat([context, ids], dim=1)  # (B, n-1 + T)
    index = torch.arange(ids.shape[1]).unsqueeze(1) + torch.arange(n1).unsqueeze(0)  # (T, n-1)
    x = model.embedding(full[:, index]).flatten(2)  # (B, T, (n-1)·m)
    logits = model.output(torch.tanh(model.hidden(x)))  # b + U tanh(d + H x)
    if model.direct is not None:
        logits = logits + model.direct(x)
    return logits, full


def _nplm_window(model, tokens, lengths, context):
    logits, full = _nplm_logits(model, context, tokens)
    last = lengths.unsqueeze(1) + torch.arange(model.config.context).unsqueeze(0)  # each row's own last n-1
    return logits, full.gather(1, last), _window_nll(logits, tokens, lengths)


def _nplm_step(model, token, context):
    logits, full = _nplm_logits(model, context, token.unsqueeze(1))
    return logits[:, 0], full[:, 1:]


def _encoder(model, *inputs):
    memory, init = model.encode(inputs[0], None if model.config.one_to_seq else inputs[1])
    out = list(_parts(init.rnn))
    if init.feed is not None:
        out.append(init.feed)
    if model.attention is not None:
        out += [memory.values, memory.prepared, memory.mask]
    return out


def _decoder_step(model, y_prev, *rest):
    from rnnkit.tasks.seq2seq import DecoderState, Memory

    rest = list(rest)
    n = 2 if is_lstm(model.decoder.cells[0]) else 1  # h, c (as the ONNX graph's inputs)
    rnn, rest = _state(rest[:n]), rest[n:]
    feed = rest.pop(0) if model.config.input_feeding and model.attention is not None else None
    memory = Memory(*rest) if model.attention is not None else Memory(None, None, None)
    logits, state, weights = model.decode_step(y_prev, DecoderState(rnn, feed), memory)
    out = [logits, *_parts(state.rnn)]
    if feed is not None:
        out.append(state.feed)
    if weights is not None:
        out.append(weights)
    return out


def programs(model, task: str) -> dict:
    """{graph name: fn(model, *inputs)} of a task, the names of rnnkit.export.tasks' graphs."""
    if task == "lm":
        if hasattr(model, "rnn"):
            return {"model": _lm_window, "step": _lm_step}
        return {"model": _nplm_window, "step": _nplm_step}
    return {"classify": {"model": _classify}, "tag": {"model": _tag}, "forecast": {"model": _forecast},
            "seq2seq": {"encoder": _encoder, "decoder_step": _decoder_step}}[task]


# ---- export --------------------------------------------------------------------------------------------------
_SIZES = {"B": 3, "T": 5, "S": 4, "C": 6}  # example sizes (>= 2: torch.export specialises sizes 0 and 1)
_DTYPES = {"float32": torch.float32, "int64": torch.int64, "bool": torch.bool}


def example(io: list[dict], sizes: dict, known: dict) -> list[Tensor]:
    """Inputs shaped as the ONNX graph's (a named dim -> its example size; an unnamed one, None, from the
    output of that name of an earlier program: the decoder's keys): zeros (ids 0 are valid everywhere),
    lengths 2, masks True. Only the shapes matter: torch.export does not read the values."""
    out = []
    for spec in io:
        shape = [sizes.get(d, 5) if isinstance(d, str) else (known[spec["name"]].shape[k] if d is None else d)
                 for k, d in enumerate(spec["shape"])]
        t = torch.zeros(shape, dtype=_DTYPES[spec["dtype"]])
        if spec["name"].endswith("lengths"):
            t = t + 2  # within every example size
        if spec["dtype"] == "bool":
            t = t.logical_not()
        out.append(t)
    return out


def _export(program, args: list, inputs: list[dict]):
    """torch.export with one Dim per dim name (B, T, ...: shared by the inputs, so that the tracer knows that the
    words and their characters have the same B and T), from 1 up; where a program needs more than that (a
    forecast window: W > 1, W a multiple of the patch), Dim.AUTO lets torch.export find the range."""
    names = {d for spec in inputs for d in spec["shape"] if isinstance(d, str)}
    for make in (lambda n: torch.export.Dim(n, min=1), lambda n: torch.export.Dim.AUTO):
        dim = {n: make(n) for n in sorted(names)}
        shapes = tuple({k: dim[d] for k, d in enumerate(spec["shape"]) if isinstance(d, str)} for spec in inputs)
        try:
            return torch.export.export(program, tuple(args), dynamic_shapes=(shapes,))
        except torch._dynamo.exc.UserError:  # a constraint violation: the named range does not hold
            continue
    raise AssertionError("unreachable: Dim.AUTO finds a range")


def export_programs(run, task: str, graphs: dict, meta: dict) -> dict:
    """{name: torch.export.ExportedProgram} with the ONNX graphs' inputs, outputs and symbolic dims."""
    model = scanned(run.model)
    sizes = dict(_SIZES)
    if task == "forecast":
        sizes["W"] = run.config["data"]["window"]
    fns = programs(model, task)
    out, known = {}, {}
    for name in graphs:
        inputs = meta["graphs"][name]["inputs"]
        args = example(inputs, sizes, known)
        program = Program(model, fns[name])
        with torch.no_grad():
            out[name] = _export(program, args, inputs)
            results = fns[name](model, *args)
        known.update(zip((o["name"] for o in meta["graphs"][name]["outputs"]), results))
    return out
