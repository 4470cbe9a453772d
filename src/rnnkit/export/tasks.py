"""One ONNX graph (or two) per task, built from a loaded run's model; shapes B, T, S symbolic.

    classify  model.onnx     tokens (B, T), lengths (B,)             -> logits, probs (B, K)
    tag       model.onnx     words (B, T), lengths (B,) [, chars (B, T, C), char_lengths (B, T)]
                                                                      -> emissions (B, T, K)   (+ CRF in model.json)
    forecast  model.onnx     values (B, W, C) in the data's units [, start (B,), series (B,)]
                                                                      -> forecast (B, H), quantiles (B, H, Q)
    lm        model.onnx     tokens (B, T), lengths (B,), h0 [, c0] (L, B, H)
                                                                      -> logits (B, T, V), h_n [, c_n], nll (B,)
              step.onnx      token (B,), h [, c] (L, B, H)            -> logits (B, V), h_next [, c_next]
    seq2seq   encoder.onnx   src (B, S), src_lengths (B,)  (one→sequence: features (B, F))
                                                                      -> h0 [, c0], [feed,] [memory, keys, src_mask]
              decoder_step.onnx  y_prev (B,), h [, c], [feed,] [memory, keys, src_mask]
                                                                      -> logits (B, V), h_next [, c_next], [feed_next,]
                                                                         [attention (B, S)]
"""

from __future__ import annotations

import numpy as np

from rnnkit.export.graph import BOOL, FLOAT, INT64, Graph, NotExportable
from rnnkit.export.layers import alive_masks, is_lstm, recurrent, stack_step

BIG = 2 ** 62  # "to the end" for Slice


def _time_major(g: Graph, x: str) -> str:
    return g.op("Transpose", x, perm=[1, 0, 2])


def _embed(g: Graph, embedding, ids: str) -> str:
    return g.op("Gather", g.weight(embedding.weight), ids)


def _state_names(cell, suffix: str = "") -> list[str]:
    return ["h" + suffix, "c" + suffix] if is_lstm(cell) else ["h" + suffix]


# ---- classify -----------------------------------------------------------------------------------------------
def classify(model) -> dict:
    c = model.config
    g = Graph("rnnkit_classify")
    tokens, lengths = g.input("tokens", INT64, ["B", "T"]), g.input("lengths", INT64, ["B"])
    h, state = recurrent(g, model.rnn, _time_major(g, _embed(g, model.embedding, tokens)), lengths)  # (T, B, D·H)
    D = 2 if c.bidirectional else 1
    if c.pooling == "last":  # the last layer's rows of h_n: forward at length - 1, backward at 0
        last = g.op("Slice", state[0], g.ints(-D), g.ints(BIG), g.ints(0))  # (D, B, H)
        s = g.op("Reshape", g.op("Transpose", last, perm=[1, 0, 2]), g.ints(0, -1))  # (B, D·H)
    else:
        alive, live = alive_masks(g, lengths, g.dim(tokens, 1))  # (T, B, 1)
        if c.pooling == "mean":
            total = g.op("ReduceSum", h, g.ints(0), keepdims=0)
            s = g.op("Div", total, g.op("Unsqueeze", g.op("Cast", lengths, to=FLOAT), g.ints(1)))
        elif c.pooling == "max":
            s = g.op("ReduceMax", g.op("Where", alive, h, g.const(float("-inf"))), axes=[0], keepdims=0)
        else:  # α = softmax over the real steps of vᵀ tanh(W h_t + b)
            att = model.attention
            z = g.op("MatMul", g.op("Tanh", g.linear(h, att.proj)), g.weight(att.v.weight, transpose=True))
            alpha = g.op("Softmax", g.op("Where", alive, z, g.const(float("-inf"))), axis=0)  # (T, B, 1)
            s = g.op("ReduceSum", g.op("Mul", alpha, h), g.ints(0), keepdims=0)
    logits = g.linear(s, model.head)
    g.output(logits, "logits", FLOAT, ["B", c.num_classes])
    g.output(g.op("Softmax", logits, axis=-1), "probs", FLOAT, ["B", c.num_classes])
    return {"model": g.model("rnnkit classify: p(label | tokens)")}


# ---- tag ----------------------------------------------------------------------------------------------------
def tag(model) -> dict:
    c = model.config
    g = Graph("rnnkit_tag")
    words, lengths = g.input("words", INT64, ["B", "T"]), g.input("lengths", INT64, ["B"])
    x = _embed(g, model.embedding, words)  # (B, T, E)
    if model.chars is not None:
        chars = g.input("chars", INT64, ["B", "T", "C"])
        char_lengths = g.input("char_lengths", INT64, ["B", "T"])
        flat = g.op("Reshape", chars, g.op("Concat", g.ints(-1), g.dim(chars, 2), axis=0))  # (N, C), N = B·T
        n_chars = g.op("Max", g.op("Reshape", char_lengths, g.ints(-1)), g.const(1, dtype="int64"))  # (N,)
        _, (h_n, _) = recurrent(g, model.chars.rnn, _time_major(g, _embed(g, model.chars.embedding, flat)), n_chars)
        words_chars = g.op("Reshape", g.op("Transpose", h_n, perm=[1, 0, 2]),  # (N, 2 H_c) = [→h ; ←h]
                           g.op("Concat", g.dim(words, 0), g.dim(words, 1), g.ints(2 * c.char_hidden), axis=0))
        _, word_live = alive_masks(g, lengths, g.dim(words, 1))  # (T, B, 1): padding words get zeros
        x = g.op("Concat", x, g.op("Mul", words_chars, g.op("Transpose", word_live, perm=[1, 0, 2])), axis=2)
    h, _ = recurrent(g, model.rnn, _time_major(g, x), lengths)  # (T, B, 2H)
    emissions = g.linear(_time_major(g, h), model.out)
    g.output(emissions, "emissions", FLOAT, ["B", "T", len(c.tags)])
    return {"model": g.model("rnnkit tag: emission scores per word")}


# ---- forecast -----------------------------------------------------------------------------------------------
def forecast(model, normalizer) -> dict:
    """``normalizer``: the run's (rnnkit.tasks.forecast.Normalizer). The graph is Forecaster.predict: target
    transform and per-window scaling (or the global normalisation), season features from ``start`` (B,) int64,
    the series embedding from ``series`` (B,) int64 (−1: an unseen series), the network, the monotone quantile
    head and the highway, then back to the data's units: ``forecast`` (B, H) and ``quantiles`` (B, H, Q)."""
    c = model.config
    g = Graph("rnnkit_forecast")
    values = g.input("values", FLOAT, ["B", "W", c.inputs])
    u = _transform(g, c, g.op("Gather", values, g.const(0, dtype="int64"), axis=2))  # (B, W)
    level, k = u, c.difference
    if k:  # the lag-k differences d_j = u_j − u_{j−k} (j ≥ k) are what is scaled
        u = g.op("Sub", g.op("Slice", u, g.ints(k), g.ints(BIG), g.ints(1)),
                 g.op("Slice", u, g.ints(0), g.ints(-k), g.ints(1)))
    if c.scaling == "global":
        a, s = g.const(float(model.mean)), g.const(float(model.std))
    else:
        if c.scaling == "revin":
            a = g.op("ReduceMean", u, axes=[1], keepdims=1)  # (B, 1)
            s = g.op("Sqrt", g.op("ReduceMean", g.op("Mul", *[g.op("Sub", u, a)] * 2), axes=[1], keepdims=1))
        else:
            a = g.op("Mul", g.op("ReduceMean", u, axes=[1], keepdims=1), g.const(0.0))
            s = g.op("ReduceMean", g.op("Abs", u), axes=[1], keepdims=1)
        floor = g.op("Mul", g.op("Add", g.op("Abs", a), g.const(1.0)), g.const(1e-3))
        s = g.op("Where", g.op("Greater", s, floor), s, floor)
    scaled = g.op("Div", g.op("Sub", u, a), s)  # (B, W), or (B, W − k): then 0 at the first k steps
    if k:
        zeros = g.op("Mul", g.op("Slice", level, g.ints(0), g.ints(k), g.ints(1)), g.const(0.0))
        scaled = g.op("Concat", zeros, scaled, axis=1)
    cols = [g.op("Unsqueeze", scaled, g.ints(2))]
    if c.inputs > 1:
        rest = g.op("Slice", values, g.ints(1), g.ints(BIG), g.ints(2))
        cols.append(g.op("Div", g.op("Sub", rest, g.const(normalizer.mean[1:])), g.const(normalizer.std[1:])))
    if c.features:
        start = g.input("start", INT64, ["B"])
        steps = g.op("Range", g.const(0, dtype="int64"), g.op("Squeeze", g.dim(values, 1), g.ints(0)),
                     g.const(1, dtype="int64"))
        pos = g.op("Mod", g.op("Add", g.op("Unsqueeze", start, g.ints(1)), steps), g.const(c.season, dtype="int64"))
        angle = g.op("Mul", g.op("Cast", pos, to=FLOAT), g.const(2 * np.pi / c.season))
        cols += [g.op("Unsqueeze", g.op(f, angle), g.ints(2)) for f in ("Sin", "Cos")]
    if model.embed is not None:
        series = g.input("series", INT64, ["B"])
        table = g.weight(model.embed.weight)
        known = g.op("Gather", table, g.op("Max", series, g.const(0, dtype="int64")))  # (B, E)
        mean = g.const(model.embed.weight.detach().mean(0, keepdim=True).numpy())
        e = g.op("Where", g.op("Unsqueeze", g.op("GreaterOrEqual", series, g.const(0, dtype="int64")), g.ints(1)),
                 known, mean)
        expand = g.op("Concat", g.dim(values, 0), g.dim(values, 1), g.ints(c.embedding), axis=0)
        cols.append(g.op("Expand", g.op("Unsqueeze", e, g.ints(1)), expand))
    x = g.op("Concat", *cols, axis=2) if len(cols) > 1 else cols[0]  # (B, W, F)
    if c.patch > 1:  # W/P segments of P steps: (B, W/P, P·F)
        x = g.op("Reshape", x, g.ints(0, -1, c.patch * (c.inputs + c.features + c.embedding)))
    out, state = recurrent(g, model.rnn, _time_major(g, x))  # (W, B, H)
    last = g.op("Gather", out, g.const(-1, dtype="int64"), axis=0)  # (B, H)
    Q = max(len(c.quantiles), 1)
    if c.strategy == "direct":
        z = g.op("Reshape", g.linear(last, model.head), g.ints(0, c.horizon, Q))  # (B, H, Q)
        if Q > 1:  # q_p = z_p; softplus steps away from it on both sides
            p, axis = c.point_index, g.const(2, dtype="int64")
            parts = g.split(z, [n for n in (p, 1, Q - p - 1) if n], axis=2)
            centre = parts[1] if p else parts[0]
            pieces = [centre]
            if p:
                pieces.insert(0, g.op("Sub", centre, g.op("CumSum", g.op("Softplus", parts[0]), axis, reverse=1)))
            if Q - p - 1:
                pieces.append(g.op("Add", centre, g.op("CumSum", g.op("Softplus", parts[-1]), axis)))
            z = g.op("Concat", *pieces, axis=2)
        if model.linear is not None:
            z = g.op("Add", z, g.op("Unsqueeze", g.linear(scaled, model.linear), g.ints(2)))
    else:  # feed ẑ_{t+k} back for k = 1 .. H − 1
        steps = [g.linear(last, model.head)]  # (B, C)
        for _ in range(c.horizon - 1):
            h, state = stack_step(g, model.rnn, steps[-1], state)
            steps.append(g.linear(h, model.head))
        z = g.op("Unsqueeze", g.op("Concat", *(g.op("Slice", s_, g.ints(0), g.ints(1), g.ints(1)) for s_ in steps),
                                   axis=1), g.ints(2))
    a3, s3 = (g.op("Unsqueeze", v, g.ints(2)) if c.scaling != "global" else v for v in (a, s))
    if k:  # location r_h + c_h·a: r_h = u at index −k + (h − 1) mod k of the window, c_h = ⌈h/k⌉
        phase, lags = model.reference_steps(c.window)
        ref = g.op("Gather", level, g.const((phase - c.window).numpy(), dtype="int64"), axis=1)  # (B, H)
        a3 = g.op("Add", g.op("Mul", a3, g.const(lags.numpy()[:, None])), g.op("Unsqueeze", ref, g.ints(2)))
    q = _untransform(g, c, g.op("Add", g.op("Mul", z, s3), a3))  # (B, H, Q)
    point = g.op("Gather", q, g.const(c.point_index, dtype="int64"), axis=2)
    g.output(point, "forecast", FLOAT, ["B", c.horizon])
    g.output(q, "quantiles", FLOAT, ["B", c.horizon, Q])
    return {"model": g.model("rnnkit forecast: the next horizon values of the target (and quantiles)")}


def _transform(g: Graph, c, y: str) -> str:
    if c.transform == "none":
        return y
    clamped = g.op("Max", y, g.const(1e-12))
    if c.transform == "log" or c.boxcox_lambda == 0:
        return g.op("Log", clamped)
    lam = c.boxcox_lambda
    return g.op("Div", g.op("Sub", g.op("Pow", clamped, g.const(lam)), g.const(1.0)), g.const(lam))


def _untransform(g: Graph, c, u: str) -> str:
    if c.transform == "none":
        return u
    if c.transform == "log" or c.boxcox_lambda == 0:
        return g.op("Exp", g.op("Min", u, g.const(80.0)))
    lam = c.boxcox_lambda
    base = g.op("Max", g.op("Add", g.op("Mul", u, g.const(lam)), g.const(1.0)), g.const(0.0))
    return g.op("Pow", base, g.const(1 / lam))


# ---- lm -----------------------------------------------------------------------------------------------------
def lm(model) -> dict:
    if not hasattr(model, "rnn"):
        return nplm(model)
    c, cell = model.config, model.rnn.cells[0]
    L, H = c.layers, c.hidden
    names = _state_names(cell)
    # the window model: read (and score) whole windows with the state in and out
    g = Graph("rnnkit_lm_window")
    tokens, lengths = g.input("tokens", INT64, ["B", "T"]), g.input("lengths", INT64, ["B"])
    state = [g.input(n + "0", FLOAT, [L, "B", H]) for n in names]
    out, final = recurrent(g, model.rnn, _time_major(g, _embed(g, model.embedding, tokens)), lengths, state)
    logits = g.linear(_time_major(g, out), model.decoder)  # (B, T, V)
    g.output(logits, "logits", FLOAT, ["B", "T", c.vocab_size])
    for n, f in zip(names, final):
        g.output(f, n + "_n", FLOAT, [L, "B", H])
    g.output(_window_nll(g, logits, tokens, lengths), "nll", FLOAT, ["B"])
    window = g.model("rnnkit lm: logits of a window, the state after each row's own length, and the NLL "
                     "of tokens[1:length] given their prefixes")
    # the step model: one token per row, the state in and out
    g = Graph("rnnkit_lm_step")
    token = g.input("token", INT64, ["B"])
    state = [g.input(n, FLOAT, [L, "B", H]) for n in names]
    h, new = stack_step(g, model.rnn, _embed(g, model.embedding, token), state)
    g.output(g.linear(h, model.decoder), "logits", FLOAT, ["B", c.vocab_size])
    for n, s in zip(names, new):
        g.output(s, n + "_next", FLOAT, [L, "B", H])
    return {"model": window, "step": g.model("rnnkit lm: one step, logits of the next token and the new state")}


def nplm(model) -> dict:
    """Bengio et al.'s NPLM: its state is the n-1 previous token ids (B, n-1), int64 (boundary id: V)."""
    c = model.config
    n1 = c.context

    def logits_of(g: Graph, context: str, ids: str) -> tuple[str, str]:
        full = g.op("Concat", context, ids, axis=1)  # (B, n-1 + T)
        t = g.op("Range", g.const(0, dtype="int64"), g.op("Squeeze", g.dim(ids, 1), g.ints(0)),
                 g.const(1, dtype="int64"))
        index = g.op("Add", g.op("Unsqueeze", t, g.ints(1)), g.const(np.arange(n1)[None, :], dtype="int64"))
        windows = g.op("Gather", full, index, axis=1)  # (B, T, n-1): window t = full[t .. t+n-2]
        e = g.op("Gather", g.weight(model.embedding.weight), windows)  # (B, T, n-1, m)
        x = g.op("Reshape", e, g.ints(0, 0, n1 * c.emb))
        logits = g.linear(g.op("Tanh", g.linear(x, model.hidden)), model.output)  # b + U tanh(d + H x)
        if model.direct is not None:
            logits = g.op("Add", logits, g.op("MatMul", x, g.weight(model.direct.weight, transpose=True)))
        return logits, full

    g = Graph("rnnkit_nplm_window")
    tokens, lengths = g.input("tokens", INT64, ["B", "T"]), g.input("lengths", INT64, ["B"])
    context = g.input("context0", INT64, ["B", n1])
    logits, full = logits_of(g, context, tokens)
    last = g.op("Add", g.op("Unsqueeze", lengths, g.ints(1)), g.const(np.arange(n1)[None, :], dtype="int64"))
    g.output(logits, "logits", FLOAT, ["B", "T", c.vocab_size])
    g.output(g.op("GatherElements", full, last, axis=1), "context_n", INT64, ["B", n1])  # own last n-1 tokens
    g.output(_window_nll(g, logits, tokens, lengths), "nll", FLOAT, ["B"])
    window = g.model("rnnkit nplm: logits of a window, the context after each row's length, the NLL")
    g = Graph("rnnkit_nplm_step")
    token = g.input("token", INT64, ["B"])
    context = g.input("context", INT64, ["B", n1])
    logits, full = logits_of(g, context, g.op("Unsqueeze", token, g.ints(1)))
    g.output(g.op("Squeeze", logits, g.ints(1)), "logits", FLOAT, ["B", c.vocab_size])
    g.output(g.op("Slice", full, g.ints(1), g.ints(BIG), g.ints(1)), "context_next", INT64, ["B", n1])
    return {"model": window, "step": g.model("rnnkit nplm: one step")}


def _window_nll(g: Graph, logits: str, tokens: str, lengths: str) -> str:
    """Σ_{t < length-1} −log p(tokens[t+1] | tokens[..t]) per row (B,)."""
    logp = g.op("Slice", g.op("LogSoftmax", logits, axis=-1), g.ints(0), g.ints(-1), g.ints(1))  # (B, T-1, V)
    nxt = g.op("Unsqueeze", g.op("Slice", tokens, g.ints(1), g.ints(BIG), g.ints(1)), g.ints(2))  # (B, T-1, 1)
    picked = g.op("Squeeze", g.op("GatherElements", logp, nxt, axis=2), g.ints(2))  # (B, T-1)
    alive, _ = alive_masks(g, g.op("Sub", lengths, g.const(1, dtype="int64")), g.op("Sub", g.dim(tokens, 1),
                                                                                        g.ints(1)))
    mask = g.op("Transpose", g.op("Squeeze", alive, g.ints(2)), perm=[1, 0])  # (B, T-1)
    return g.op("Neg", g.op("ReduceSum", g.op("Where", mask, picked, g.const(0.0)), g.ints(1), keepdims=0))


# ---- seq2seq ------------------------------------------------------------------------------------------------
def seq2seq(model) -> dict:
    return {"encoder": _encoder(model), "decoder_step": _decoder_step(model)}


def _memory_names(model) -> list[str]:
    return [] if model.attention is None else ["memory", "keys", "src_mask"]


def _encoder(model):
    c = model.config
    L, H, D = c.layers, c.hidden, (2 if c.bidirectional else 1)
    lstm = c.cell in ("lstm", "ln-lstm")
    g = Graph("rnnkit_seq2seq_encoder")
    if c.one_to_seq:
        v = g.input("features", FLOAT, ["B", c.feature_size])
        P = 2 if lstm else 1
        parts = g.op("Reshape", g.op("Tanh", g.linear(v, model.bridge)), g.ints(0, L, P, H))  # (B, L, P, H)
        parts = g.op("Transpose", parts, perm=[2, 1, 0, 3])  # (P, L, B, H)
        init = [g.op("Gather", parts, g.const(p, dtype="int64"), axis=0) for p in range(P)]
        if model.attention is not None:
            values = g.op("Unsqueeze", g.linear(v, model.feature_memory), g.ints(1))  # (B, 1, H)
            true = g.onnx.numpy_helper.from_array(np.ones(1, dtype=bool))
            mask = g.op("ConstantOfShape", g.op("Concat", g.dim(v, 0), g.ints(1), axis=0), value=true)  # (B, 1)
    else:
        src, lengths = g.input("src", INT64, ["B", "S"]), g.input("src_lengths", INT64, ["B"])
        out, h_n = recurrent(g, model.encoder, _time_major(g, _embed(g, model.src_embedding, src)), lengths)
        # [h_S^fwd ; h_1^bwd] per layer: (L·D, B, H) -> (L, B, D·H)
        last = [g.op("Reshape", g.op("Transpose", g.op("Reshape", s, g.ints(L, D, -1, H)), perm=[0, 2, 1, 3]),
                     g.ints(L, -1, D * H)) for s in h_n]
        if lstm:  # h and c through the same bridge layer: [W_h; W_c] [h_S; h_1]
            init = [g.op("Tanh", g.op("Slice", g.linear(last[0], model.bridge), g.ints(0), g.ints(H), g.ints(-1))),
                    g.op("Tanh", g.op("Slice", g.linear(last[1], model.bridge), g.ints(H), g.ints(BIG),
                                      g.ints(-1)))]
        else:
            init = [g.op("Tanh", g.linear(last[0], model.bridge))]
        if model.attention is not None:
            values = _time_major(g, out)  # (B, S, D·H)
            if model.memory_proj is not None:
                values = g.linear(values, model.memory_proj)
            alive, _ = alive_masks(g, lengths, g.dim(src, 1))  # (S, B, 1)
            mask = g.op("Transpose", g.op("Squeeze", alive, g.ints(2)), perm=[1, 0])  # (B, S)
    for name, s in zip(_state_names(model.decoder.cells[0]), init):
        g.output(s, name + "0", FLOAT, [L, "B", H])
    if c.input_feeding and model.attention is not None:
        g.output(g.zeros(g.dim(init[0], 1), g.ints(H)), "feed0", FLOAT, ["B", H])
    if model.attention is not None:
        g.output(values, "memory", FLOAT, ["B", "S", model.attention.key_size])
        g.output(_prepare(g, model.attention, values), "keys", FLOAT, ["B", "S", None])
        g.output(mask, "src_mask", BOOL, ["B", "S"])
    return g.model("rnnkit seq2seq encoder: the decoder's initial state and the attention memory")


def _prepare(g: Graph, att, values: str) -> str:
    """attention.prepare(values): the key-side half of the score, once per source."""
    kind = type(att).__name__
    if kind in ("AdditiveAttention", "HardAttention"):
        return g.linear(values, att.key)  # W_k s_j + b
    if kind == "AdditiveProductAttention":
        return g.op("Concat", g.linear(values, att.key), values, axis=-1)
    if kind == "DotAttention":
        return g.op("Identity", values)
    if kind == "CosineAttention":
        norm = g.op("ReduceL2", values, axes=[-1], keepdims=1)
        return g.op("Div", values, g.op("Max", norm, g.const(att.eps)))
    if kind == "BilinearAttention":
        return g.op("MatMul", values, g.weight(att.weight, transpose=True))
    raise NotExportable(f"attention {kind} has no ONNX translation")


def _score(g: Graph, att, q: str, keys: str) -> str:
    """z (B, S) for one decoder step q (B, H_q) against the prepared keys (B, S, ·)."""
    kind = type(att).__name__
    if kind in ("AdditiveAttention", "HardAttention", "AdditiveProductAttention"):
        A = att.hidden_size
        wq = g.op("Unsqueeze", g.op("MatMul", q, g.weight(att.query.weight, transpose=True)), g.ints(1))  # (B,1,A)
        if kind == "AdditiveProductAttention":
            wk = g.op("Slice", keys, g.ints(0), g.ints(A), g.ints(-1))
            k = g.op("Slice", keys, g.ints(A), g.ints(BIG), g.ints(-1))
            prod = g.op("Mul", g.op("Unsqueeze", q, g.ints(1)), k)  # s_t ⊙ s_j (B, S, H)
            a = g.op("Add", g.op("Add", wq, wk), g.op("MatMul", prod, g.weight(att.product.weight, transpose=True)))
        else:
            a = g.op("Add", wq, keys)
        return g.op("MatMul", g.op("Tanh", a), g.weight(att.v))  # (B, S)
    if kind == "CosineAttention":
        norm = g.op("ReduceL2", q, axes=[-1], keepdims=1)
        q = g.op("Div", q, g.op("Max", norm, g.const(att.eps)))
        z = g.op("Squeeze", g.op("MatMul", keys, g.op("Unsqueeze", q, g.ints(2))), g.ints(2))
        return g.op("Mul", z, g.op("Exp", g.weight(att.log_scale)))
    # dot, bilinear: z_j = s_t · (prepared s_j)
    return g.op("Squeeze", g.op("MatMul", keys, g.op("Unsqueeze", q, g.ints(2))), g.ints(2))


def _decoder_step(model):
    c = model.config
    L, H = c.layers, c.hidden
    att = model.attention
    names = _state_names(model.decoder.cells[0])
    feeding = c.input_feeding and att is not None
    g = Graph("rnnkit_seq2seq_decoder_step")
    y = g.input("y_prev", INT64, ["B"])
    state = [g.input(n, FLOAT, [L, "B", H]) for n in names]
    feed = g.input("feed", FLOAT, ["B", H]) if feeding else None
    if att is not None:
        memory = g.input("memory", FLOAT, ["B", "S", att.key_size])
        keys = g.input("keys", FLOAT, ["B", "S", None])
        mask = g.input("src_mask", BOOL, ["B", "S"])
    e = _embed(g, model.tgt_embedding, y)  # (B, E)
    if feeding:
        e = g.op("Concat", e, feed, axis=-1)
    s, new = stack_step(g, model.decoder, e, state)  # (B, H)
    out = s
    if att is not None:
        z = g.op("Where", mask, _score(g, att, s, keys), g.const(float("-inf")))
        alpha = g.op("Softmax", z, axis=-1)  # (B, S), 0 on padding
        if type(att).__name__ == "HardAttention":  # one_hot(argmax_j α_j) (evaluation: no straight-through)
            best = g.op("ArgMax", alpha, axis=-1, keepdims=1)  # (B, 1)
            positions = g.op("Range", g.const(0, dtype="int64"), g.op("Squeeze", g.dim(alpha, 1), g.ints(0)),
                             g.const(1, dtype="int64"))
            alpha = g.op("Cast", g.op("Equal", g.op("Unsqueeze", positions, g.ints(0)), best), to=FLOAT)
        ctx = g.op("Squeeze", g.op("MatMul", g.op("Unsqueeze", alpha, g.ints(1)), memory), g.ints(1))  # (B, H_k)
        out = g.op("Tanh", g.linear(g.op("Concat", ctx, s, axis=-1), model.combine))  # h̃_t
    g.output(g.linear(out, model.out), "logits", FLOAT, ["B", c.tgt_vocab_size])
    for n, s_new in zip(names, new):
        g.output(s_new, n + "_next", FLOAT, [L, "B", H])
    if feeding:
        g.output(out, "feed_next", FLOAT, ["B", H])
    if att is not None:
        g.output(alpha, "attention", FLOAT, ["B", "S"])
    return g.model("rnnkit seq2seq decoder: one step with attention")


BUILDERS = {"classify": classify, "tag": tag, "forecast": forecast, "lm": lm, "seq2seq": seq2seq}
