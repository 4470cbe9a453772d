"""rnnkit export: onnxruntime == rnnkit (atol 1e-5) for every task and cell kind, on padded batches whose sizes
and lengths vary (each row equal to that sequence run alone), on the fused and the loop path; onnx.checker;
model.json is enough to run a model without rnnkit; the CLI and its one-line errors.

Also the tiny trained runs (one epoch, seconds) that tests/test_serve*.py and test_playground.py share.
"""
import dataclasses
import json
import random
import subprocess
import sys

import numpy as np
import onnx  # the export extra (make test installs it)
import onnxruntime as ort
import pytest
import torch
from _cli_errors import one_error_line

from rnnkit import CELLS, Recurrent
from rnnkit.cli import main
from rnnkit.export import export, export_run, load
from rnnkit.export import runtime as rt
from rnnkit.tasks import classify, forecast, lm, seq2seq, tag
from rnnkit.train import TrainConfig

ATOL = 1e-5
WORDS = [f"w{i}" for i in range(12)]


def quick(epochs: int = 1) -> TrainConfig:
    return TrainConfig(epochs=epochs, optimizer="adam", lr=1e-2, clip=5.0, progress=False, tensorboard=False,
                       device="cpu", log_every=0, seed=0)


def sentences(n: int, seed: int, low: int = 1, high: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(WORDS) for _ in range(rng.randint(low, high))] for _ in range(n)]


# ---- tiny trained runs, one per task ------------------------------------------------------------------------
def make_classify(tmp, **model):
    rows = [f"{' '.join(s)}\t{'pos' if 'w1' in s else 'neg'}\n" for s in sentences(60, 0)]
    (tmp / "train.tsv").write_text("".join(rows))
    data = classify.ClassifyDataConfig(train=str(tmp / "train.tsv"), batch_size=16)
    corpus = classify.load_corpus(data)
    options = {"hidden": 8, "emb": 6, "attention_size": 5, **model}
    config = classify.ClassifierConfig(vocab_size=len(corpus.task.vocab), num_classes=2, **options)
    classify.fit(tmp / "classify", data, config, quick(), corpus)
    return tmp / "classify"


def write_conllu(path, sents):
    rows = []
    for k, words in enumerate(sents):
        rows.append(f"# sent_id = {k}\n")
        rows += [f"{i}\t{w}\t{w}\t{'ABC'[int(w[1:]) % 3]}\t_\t_\t0\tdep\t_\t_\n" for i, w in enumerate(words, 1)]
        rows.append("\n")
    path.write_text("".join(rows))
    return path


def make_tag(tmp, crf=True, chars=True):
    train = write_conllu(tmp / "train.conllu", sentences(40, 1))
    data = tag.TagDataConfig(train=str(train), valid=str(train), chars=chars, batch_size=10)
    corpus = tag.load_corpus(data)
    config = tag.model_config_for(corpus, emb=6, hidden=8, char_emb=4, char_hidden=5, dropout=0.0, crf=crf)
    tag.fit(tmp / "tag", data, config, quick(), corpus)
    return tmp / "tag"


def make_forecast(tmp, strategy="direct"):
    t = np.arange(150)
    y = np.round(10 + 5 * np.sin(t * 2 * np.pi / 12) + np.random.default_rng(0).normal(0, 1, 150), 3)
    x = np.round(np.cos(t / 5.0), 3)
    rows = ["t,y,x"] + [f"{i},{float(y[i])!r},{float(x[i])!r}" for i in t]
    (tmp / "series.csv").write_text("\n".join(rows) + "\n")
    data = forecast.ForecastDataConfig(path=str(tmp / "series.csv"), target="y", covariates=["x"], window=8,
                                       horizon=3, season=12, batch_size=16)
    forecast.fit(tmp / f"forecast-{strategy}", data, forecast.ForecastModelConfig(strategy=strategy, hidden=8),
                 quick())
    return tmp / f"forecast-{strategy}"


def make_lm(tmp, nplm=False):
    text = "".join(random.Random(2).choice("abcdefgh \n") for _ in range(3000))
    (tmp / "text.txt").write_text(text)
    data = lm.LMDataConfig(train=str(tmp / "text.txt"), level="char", batch_size=8, bptt=16)
    corpus = data.load()
    if nplm:
        config = lm.config_from_dict({"model": "nplm", "vocab_size": len(corpus.vocab), "context": 3, "emb": 6,
                                      "hidden": 10})
    else:
        config = lm.RNNLMConfig(vocab_size=len(corpus.vocab), cell="lstm", layers=2, hidden=12, emb=12)
    name = "nplm" if nplm else "lm"
    lm.fit(tmp / name, data, config, quick(), corpus)
    return tmp / name


def make_seq2seq(tmp, **model):
    rng = random.Random(3)
    src = [[rng.choice(WORDS) for _ in range(rng.randint(2, 6))] for _ in range(120)]
    (tmp / "src.txt").write_text("".join(" ".join(s) + "\n" for s in src))
    (tmp / "tgt.txt").write_text("".join(" ".join(reversed(s)) + "\n" for s in src))
    data = seq2seq.Seq2SeqData(src=str(tmp / "src.txt"), tgt=str(tmp / "tgt.txt"), batch_size=16)
    options = {"emb": 8, "hidden": 10, "cell": "gru", "attention": "additive", **model}
    seq2seq.fit(tmp / "seq2seq", data, quick(), **options)
    return tmp / "seq2seq"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    return {"classify": make_classify(tmp, layers=2, bidirectional=True), "tag": make_tag(tmp),
            "forecast": make_forecast(tmp), "lm": make_lm(tmp), "seq2seq": make_seq2seq(tmp)}


# ---- helpers ------------------------------------------------------------------------------------------------
def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def set_path(model, fused: bool):
    for m in model.modules():
        if isinstance(m, Recurrent):
            m.use_fused = fused
    return model


def with_model(run, model):
    torch.manual_seed(0)
    return dataclasses.replace(run, model=model.eval())


def exported(run, tmp_path, name="onnx"):
    out = export_run(run, tmp_path / name)
    meta = json.loads((out / "model.json").read_text())
    for g in meta["graphs"].values():
        onnx.checker.check_model(onnx.load(out / g["file"]), full_check=True)
    return out, meta


def padded(rows, pad=0):
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full((len(rows), lengths.max()), pad, dtype=np.int64)
    for b, r in enumerate(rows):
        out[b, : len(r)] = r
    return out, lengths


def random_ids(rng, n_rows, vocab, low, high, first=2):
    """Token rows of random lengths; padding positions hold random ids too (only the lengths keep them out)."""
    return [list(rng.integers(first, vocab, rng.integers(low, high + 1))) for _ in range(n_rows)]


def garbage_pad(ids, lengths, rng, vocab, first=2):
    ids = ids.copy()
    for b, n in enumerate(lengths):
        ids[b, n:] = rng.integers(first, vocab, ids.shape[1] - n)
    return ids


BATCHES = [(1, 1, 1), (5, 1, 9), (3, 4, 4)]  # (B, shortest, longest)


# ---- the layer alone ----------------------------------------------------------------------------------------
LAYERS = [dict(cell=c, bidirectional=bi) for c in CELLS for bi in (False, True)] + [
    dict(cell="lstm", bidirectional=True, proj_size=3), dict(cell="ln-lstm", bidirectional=False, proj_size=3),
    dict(cell="gru", bidirectional=True, skip="highway"), dict(cell="rnn-tanh", bidirectional=False, skip="residual")
] + [dict(cell=c, bidirectional=True, bias=False) for c in ("lstm", "gru", "rnn-relu")]


@pytest.mark.parametrize("options", LAYERS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_recurrent_layer_with_lengths_equals_each_sequence_alone(options):
    """Recurrent (2 layers) in ONNX with a lengths input == rnnkit on the padded batch (fused and loop paths)
    == rnnkit on each sequence alone, outputs and final states, initial state given."""
    from rnnkit.export.graph import FLOAT, INT64, Graph
    from rnnkit.export.layers import recurrent

    torch.manual_seed(0)
    layer = Recurrent(input_size=3, hidden_size=5, num_layers=2, **options).eval()
    lstm = options["cell"] in ("lstm", "ln-lstm")
    g = Graph("layer")
    x, lengths = g.input("x", FLOAT, ["T", "B", 3]), g.input("lengths", INT64, ["B"])
    state = [g.input(n, FLOAT, 3) for n in (["h0", "c0"] if lstm else ["h0"])]
    out, final = recurrent(g, layer, x, lengths, state)
    for i, v in enumerate([out, *final]):
        g.output(v, f"y{i}", FLOAT, 3)
    sess = ort.InferenceSession(g.model().SerializeToString(), providers=["CPUExecutionProvider"])
    D, P = layer.num_directions, options.get("proj_size") or 5
    for lens in ([1], [9, 2, 5, 1], [4, 4, 4]):
        T, B = max(lens), len(lens)
        xs, L = torch.randn(T, B, 3), torch.tensor(lens)
        s0 = (torch.randn(2 * D, B, P), torch.randn(2 * D, B, 5)) if lstm else (torch.randn(2 * D, B, 5),)
        feeds = {"x": xs.numpy(), "lengths": L.numpy(), **dict(zip(["h0", "c0"], (s.numpy() for s in s0)))}
        got = sess.run(None, feeds)
        for fused in (True, False):
            layer.use_fused = fused
            with torch.no_grad():
                out, s = layer(xs, s0 if lstm else s0[0], lengths=L)
            for a, r in zip(got, [out, *(s if lstm else (s,))]):
                np.testing.assert_allclose(a, r.numpy(), atol=ATOL, rtol=0)
        if not options["bidirectional"]:  # the one-step graph (LM step, decoder) == the layer on one step
            check_stack_step(layer, xs[0], s0, lstm)
        for b, n in enumerate(lens):
            with torch.no_grad():
                out, s = layer(xs[:n, b: b + 1], tuple(t[:, b: b + 1] for t in s0) if lstm else s0[0][:, b: b + 1])
            np.testing.assert_allclose(got[0][:n, b], out[:, 0].numpy(), atol=ATOL, rtol=0)
            if not options.get("skip"):  # (a skip adds the layer's input, also at padded steps, as rnnkit does)
                np.testing.assert_allclose(got[0][n:, b], 0.0)  # padded outputs are zero
            for a, r in zip(got[1:], s if lstm else (s,)):
                np.testing.assert_allclose(a[:, b], r[:, 0].numpy(), atol=ATOL, rtol=0)


@pytest.mark.parametrize("cell, op", [("lstm", "LSTM"), ("gru", "GRU"), ("rnn-tanh", "RNN"), ("rnn-relu", "RNN"),
                                      ("gru-before", "Scan"), ("ln-lstm", "Scan"), ("rnn-hardtanh", "Scan")])
def test_cells_with_an_onnx_twin_export_as_onnxs_own_operator(cell, op):
    """LSTM / GRU (reset after) / Elman tanh|ReLU become one ONNX RNN operator per layer (onnxruntime's fused
    kernel); the rest a Scan. (That both compute rnnkit's numbers is the test above.)"""
    from rnnkit.export.graph import FLOAT, INT64, Graph
    from rnnkit.export.layers import recurrent

    layer = Recurrent(cell, 3, 5, num_layers=2, bidirectional=True).eval()
    g = Graph("layer")
    out, _ = recurrent(g, layer, g.input("x", FLOAT, ["T", "B", 3]), g.input("lengths", INT64, ["B"]))
    ops = [node.op_type for node in g.nodes]
    assert ops.count(op) == (4 if op == "Scan" else 2) and (op == "Scan" or "Scan" not in ops), ops  # 2 layers
    projected = Recurrent("lstm", 3, 5, proj_size=2).eval()  # ONNX's LSTM has no projections: a Scan
    g = Graph("layer")
    recurrent(g, projected, g.input("x", FLOAT, ["T", "B", 3]))
    assert "Scan" in [node.op_type for node in g.nodes] and "LSTM" not in [node.op_type for node in g.nodes]


def check_stack_step(layer, x, s0, lstm):
    from rnnkit.export.graph import FLOAT, Graph
    from rnnkit.export.layers import stack_step

    g = Graph("step")
    names = ["h", "c"] if lstm else ["h"]
    h, new = stack_step(g, layer, g.input("x", FLOAT, 2), [g.input(n, FLOAT, 3) for n in names])
    for i, v in enumerate([h, *new]):
        g.output(v, f"y{i}", FLOAT, 2 if i == 0 else 3)
    sess = ort.InferenceSession(g.model().SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x.numpy(), **{n: t.numpy() for n, t in zip(names, s0)}})
    with torch.no_grad():
        out, s = layer(x[None], s0 if lstm else s0[0])
    for a, r in zip(got, [out[0], *(s if lstm else (s,))]):
        np.testing.assert_allclose(a, r.numpy(), atol=ATOL, rtol=0)


# ---- classify ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", list(CELLS))
def test_classify_every_cell_kind(runs, tmp_path, cell):
    run = load(runs["classify"])
    config = dataclasses.replace(run.model.config, cell=cell, layers=2, bidirectional=True, pooling="last")
    check_classify(with_model(run, classify.RNNClassifier(config)), tmp_path)


@pytest.mark.parametrize("pooling,bidirectional", [("mean", False), ("max", True), ("attention", True),
                                                   ("last", False)])
def test_classify_every_pooling(runs, tmp_path, pooling, bidirectional):
    run = load(runs["classify"])
    config = dataclasses.replace(run.model.config, cell="gru", layers=1, bidirectional=bidirectional,
                                 pooling=pooling)
    check_classify(with_model(run, classify.RNNClassifier(config)), tmp_path)


def test_classify_trained_run(runs, tmp_path):
    check_classify(load(runs["classify"]), tmp_path)


def check_classify(run, tmp_path):
    out, meta = exported(run, tmp_path)
    sess = session(out / "model.onnx")
    V, rng = len(meta["vocab"]["tokens"]), np.random.default_rng(0)
    for B, low, high in BATCHES:
        ids, lengths = padded(random_ids(rng, B, V, low, high))
        ids = garbage_pad(ids, lengths, rng, V)
        logits, probs = sess.run(["logits", "probs"], {"tokens": ids, "lengths": lengths})
        for fused in (True, False):
            model = set_path(run.model, fused)
            with torch.no_grad():
                batched = model.logits(torch.as_tensor(ids), torch.as_tensor(lengths)).numpy()
                alone = np.concatenate([model.logits(torch.as_tensor(ids[b: b + 1, :n]), torch.tensor([n])).numpy()
                                        for b, n in enumerate(lengths)])
            np.testing.assert_allclose(logits, batched, atol=ATOL, rtol=0)
            np.testing.assert_allclose(logits, alone, atol=ATOL, rtol=0)
        np.testing.assert_allclose(probs, torch.softmax(torch.as_tensor(alone), -1).numpy(), atol=ATOL, rtol=0)


# ---- tag -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", list(CELLS))
def test_tag_every_cell_kind(runs, tmp_path, cell):
    run = load(runs["tag"])
    config = dataclasses.replace(run.model.config, cell=cell, layers=2)
    check_tag(with_model(run, tag.Tagger(config)), tmp_path)


def test_tag_trained_run_with_viterbi_beside_it(runs, tmp_path):
    run = load(runs["tag"])
    assert run.model.crf is not None and run.model.chars is not None
    check_tag(run, tmp_path)


def check_tag(run, tmp_path):
    out, meta = exported(run, tmp_path)
    sess = session(out / "model.onnx")
    rng = np.random.default_rng(1)
    for B, low, high in BATCHES:
        words = [[str(w) for w in rng.choice(WORDS + ["unseen", "x" * 45], rng.integers(low, high + 1))]
                 for _ in range(B)]
        batch = tag.collate(tag.encode([tag.Sentence(w, None, 0) for w in words], run.task))
        feeds = {"words": batch.words.numpy(), "lengths": batch.lengths.numpy()}
        if run.model.chars is not None:
            feeds.update(chars=batch.chars.numpy(), char_lengths=batch.char_lengths.numpy())
        (emissions,) = sess.run(["emissions"], feeds)
        for fused in (True, False):
            model = set_path(run.model, fused)
            with torch.no_grad():
                ref = model.emissions(batch).numpy()
            for b, n in enumerate(batch.lengths.tolist()):
                np.testing.assert_allclose(emissions[b, :n], ref[b, :n], atol=ATOL, rtol=0)
        if meta["crf"] is not None:  # the NumPy Viterbi beside the graph == rnnkit's CRF decode
            crf = meta["crf"]
            paths = rt.viterbi(emissions, batch.lengths.numpy(), crf["transitions"], crf["start"], crf["end"])
            assert [[meta["tags"][k] for k in p] for p in paths] == tag.predict(run, words)


# ---- forecast ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell,strategy", [(c, "direct") for c in CELLS] + [
    ("lstm", "autoregressive"), ("gru-before", "autoregressive"), ("rnn-relu", "autoregressive")])
def test_forecast_every_cell_kind(runs, tmp_path, cell, strategy):
    run = load(runs["forecast"])
    config = dataclasses.replace(run.model.config, cell=cell, layers=2, strategy=strategy)
    check_forecast(with_model(run, forecast.Forecaster(config, run.normalizer)), tmp_path)


def test_forecast_trained_run(runs, tmp_path):
    check_forecast(load(runs["forecast"]), tmp_path)


def check_forecast(run, tmp_path):
    """ONNX == Forecaster.predict (torch): the point forecast and every quantile, with the season position and
    the series index as inputs when the model uses them."""
    out, meta = exported(run, tmp_path)
    sess = session(out / "model.onnx")
    names = {i.name for i in sess.get_inputs()}
    rng = np.random.default_rng(2)
    norm, c = run.normalizer, run.model.config
    sizes = ((1, 8), (4, 8), (2, 8)) if run.model.linear is not None else ((1, 8), (4, 3), (2, 13))
    for B, W in sizes:
        values = (np.asarray(norm.mean) + rng.normal(size=(B, W, 2)) * np.asarray(norm.std)).astype(np.float32)
        start, series = rng.integers(0, 50, B), rng.integers(-1, 1, B)
        feeds = {"values": values, "start": start, "series": series}
        y, q = sess.run(["forecast", "quantiles"], {k: v for k, v in feeds.items() if k in names})
        for fused in (True, False):
            model = set_path(run.model, fused)
            with torch.no_grad():
                ref = model.predict(torch.as_tensor(values), torch.as_tensor(start), torch.as_tensor(series)).numpy()
            tol = ATOL * max(1.0, float(np.abs(ref).max()))
            np.testing.assert_allclose(q, ref, atol=tol, rtol=0)
            np.testing.assert_allclose(y, ref[..., c.point_index], atol=tol, rtol=0)


# ---- lm ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", list(CELLS))
def test_lm_every_cell_kind(runs, tmp_path, cell):
    run = load(runs["lm"])
    config = dataclasses.replace(run.model.config, cell=cell, init_range=0.3)
    check_lm(with_model(run, lm.RNNLM(config)), tmp_path)


def test_lm_trained_run_tied(runs, tmp_path):
    run = load(runs["lm"])
    check_lm(run, tmp_path)
    config = dataclasses.replace(run.model.config, tied=True)
    check_lm(with_model(run, lm.RNNLM(config)), tmp_path)


def _states(sess_inputs, state):
    return dict(zip(sess_inputs, state if isinstance(state, tuple) else (state,)))


def check_lm(run, tmp_path):
    out, meta = exported(run, tmp_path)
    window, step = session(out / "model.onnx"), session(out / "step.onnx")
    names = meta["state"]["names"]
    L, H = run.model.config.layers, run.model.config.hidden
    V, rng = len(meta["vocab"]["tokens"]), np.random.default_rng(3)
    for B, low, high in BATCHES:
        ids, lengths = padded(random_ids(rng, B, V, low, high, first=0))
        ids = garbage_pad(ids, lengths, rng, V, first=0)
        h0 = rng.normal(size=(len(names), L, B, H)).astype(np.float32) * 0.5
        feeds = {"tokens": ids, "lengths": lengths, **{n + "0": h0[i] for i, n in enumerate(names)}}
        logits, *final, nll = window.run(None, feeds)
        for fused in (True, False):
            model = set_path(run.model, fused)
            for b, n in enumerate(lengths):  # each row alone, from its own initial state
                s0 = tuple(torch.as_tensor(h0[i][:, b: b + 1]) for i in range(len(names)))
                with torch.no_grad():
                    ref, s = model.step(torch.as_tensor(ids[b: b + 1, :n]), s0 if len(names) == 2 else s0[0])
                np.testing.assert_allclose(logits[b, :n], ref[0].numpy(), atol=ATOL, rtol=0)
                for f, r in zip(final, s if isinstance(s, tuple) else (s,)):
                    np.testing.assert_allclose(f[:, b], r[:, 0].numpy(), atol=ATOL, rtol=0)
                logp = torch.log_softmax(ref[0, :-1], -1).gather(1, torch.as_tensor(ids[b, 1:n])[:, None])
                assert nll[b] == pytest.approx(-float(logp.sum()), abs=1e-4)
        # the step model: three steps from the window's final state == the torch step with the carried state
        state = {n: f for n, f in zip(names, final)}
        ref_state = tuple(torch.as_tensor(f) for f in final)
        for _ in range(3):
            token = rng.integers(0, V, B)
            logits1, *new = step.run(None, {"token": token, **state})
            with torch.no_grad():
                ref, ref_state = run.model.step(torch.as_tensor(token)[:, None],
                                                ref_state if len(names) == 2 else ref_state[0])
            ref_state = ref_state if isinstance(ref_state, tuple) else (ref_state,)
            np.testing.assert_allclose(logits1, ref[:, 0].numpy(), atol=ATOL, rtol=0)
            for a, r in zip(new, ref_state):
                np.testing.assert_allclose(a, r.numpy(), atol=ATOL, rtol=0)
            state = dict(zip(names, new))


@pytest.mark.parametrize("direct", [True, False])
def test_lm_nplm_window_and_step(runs, tmp_path, direct):
    """Bengio et al.'s NPLM: its state is the previous n-1 token ids; per row == the torch model alone."""
    run = load(runs["lm"])
    V = run.model.config.vocab_size
    config = lm.config_from_dict({"model": "nplm", "vocab_size": V, "context": 3, "emb": 5, "hidden": 7,
                                  "direct": direct})
    run = with_model(run, lm.build_model(config))
    out, meta = exported(run, tmp_path)
    window, step = session(out / "model.onnx"), session(out / "step.onnx")
    assert meta["state"]["names"] == ["context"] and meta["state"]["dtype"] == "int64"
    rng = np.random.default_rng(5)
    for B, low, high in BATCHES:
        ids, lengths = padded(random_ids(rng, B, V, low, high, first=0))
        ids = garbage_pad(ids, lengths, rng, V, first=0)
        context = rng.integers(0, V + 1, (B, 3))
        logits, context_n, nll = window.run(None, {"tokens": ids, "lengths": lengths, "context0": context})
        for b, n in enumerate(lengths):
            with torch.no_grad():
                ref, ref_ctx = run.model.step(torch.as_tensor(ids[b: b + 1, :n]), torch.as_tensor(context[b: b + 1]))
            np.testing.assert_allclose(logits[b, :n], ref[0].numpy(), atol=ATOL, rtol=0)
            assert context_n[b].tolist() == ref_ctx[0].tolist()
            logp = torch.log_softmax(ref[0, :-1], -1).gather(1, torch.as_tensor(ids[b, 1:n])[:, None])
            assert nll[b] == pytest.approx(-float(logp.sum()), abs=1e-4)
        token = rng.integers(0, V, B)
        logits1, context1 = step.run(None, {"token": token, "context": context_n})
        with torch.no_grad():
            ref, ref_ctx = run.model.step(torch.as_tensor(token)[:, None], torch.as_tensor(context_n))
        np.testing.assert_allclose(logits1, ref[:, 0].numpy(), atol=ATOL, rtol=0)
        assert context1.tolist() == ref_ctx.tolist()


# ---- seq2seq -------------------------------------------------------------------------------------------------
S2S_CASES = [{"cell": cell} for cell in CELLS] + [
    {"attention": a, "cell": "lstm", "layers": 2} for a in ("additive-product", "dot", "cosine", "bilinear", "hard")
] + [{"attention": "none"}, {"input_feeding": True, "cell": "lstm"}, {"bidirectional": False, "attention": "dot"}]


@pytest.mark.parametrize("options", S2S_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_seq2seq_greedy_and_beam_over_onnxruntime(runs, tmp_path, options):
    run = load(runs["seq2seq"])
    config = dataclasses.replace(run.model.config, **options)
    run = with_model(run, seq2seq.Seq2Seq(config))
    with torch.no_grad():  # a random model's outputs are near-uniform: sharpen them (no near-ties in the beam)
        run.model.out.weight.mul_(4.0)
    check_seq2seq(run, tmp_path, beams=(1,) if list(options) == ["cell"] else (1, 3))  # the search is cell-blind


def test_seq2seq_trained_run(runs, tmp_path):
    check_seq2seq(load(runs["seq2seq"]), tmp_path)


@pytest.mark.parametrize("cell,attention", [("gru", "additive"), ("lstm", "dot"), ("lstm", "none")])
def test_seq2seq_one_to_sequence(runs, tmp_path, cell, attention):
    """feature vector -> sequence: the encoder graph takes `features` (B, F); searches equal rnnkit's."""
    from rnnkit.tasks import decode

    run = load(runs["seq2seq"])
    config = dataclasses.replace(run.model.config, src_vocab_size=0, feature_size=5, cell=cell, attention=attention,
                                 layers=2)
    task = seq2seq.Seq2SeqTask(None, run.task.tgt_vocab, run.task.level, run.task.lowercase, run.task.max_len)
    run = dataclasses.replace(with_model(run, seq2seq.Seq2Seq(config)), task=task)
    with torch.no_grad():
        run.model.out.weight.mul_(4.0)
        run.model.out.bias[rt.EOS_ID] -= 3.0
    out, meta = exported(run, tmp_path)
    assert meta["one_to_seq"] and [i["name"] for i in meta["graphs"]["encoder"]["inputs"]] == ["features"]
    enc, step = session(out / "encoder.onnx"), session(out / "decoder_step.onnx")
    features = np.random.default_rng(6).normal(size=(3, 5)).astype(np.float32)
    ones = np.ones(3, dtype=np.int64)
    for beam in (1, 3):
        ours = rt.greedy(enc, step, {"features": features}, ones) if beam == 1 else rt.beam_search(
            enc, step, {"features": features}, ones, beam=beam)
        f, L = torch.as_tensor(features), torch.as_tensor(ones)
        ref = decode.greedy(run.model, f, L) if beam == 1 else decode.beam_search(run.model, f, L, beam=beam)
        assert sum(len(r.tokens) for r in ref) > 3  # real outputs, not only <eos>
        for o, r in zip(ours, ref):
            assert o["tokens"] == r.tokens and o["score"] == pytest.approx(r.score, abs=1e-4)
            if r.attention is not None:
                np.testing.assert_allclose(o["attention"], r.attention, atol=ATOL, rtol=0)


def check_seq2seq(run, tmp_path, beams=(1, 3)):
    from rnnkit.tasks import decode

    with torch.no_grad():  # <eos> less likely: outputs of several tokens, some cut by the length bound
        run.model.out.bias[rt.EOS_ID] -= 3.0
    out, meta = exported(run, tmp_path)
    enc, step = session(out / "encoder.onnx"), session(out / "decoder_step.onnx")
    V, rng = len(meta["src_vocab"]["tokens"]), np.random.default_rng(4)
    produced = 0
    for B, low, high in ((1, 1, 1), (4, 2, 7)):
        src, lengths = padded(random_ids(rng, B, V, low, high, first=4))
        src = garbage_pad(src, lengths, rng, V, first=4)
        inputs = {"src": src, "src_lengths": lengths}
        s, L = torch.as_tensor(src), torch.as_tensor(lengths)
        # one decoder step: logits, state and attention
        state = rt.Decoder(enc, step).encode(inputs)
        y = rng.integers(4, len(meta["tgt_vocab"]["tokens"]), B)
        logits, new, alpha = rt.Decoder(enc, step).step(y, state)
        with torch.no_grad():
            memory, init = run.model.encode(s, L)
            ref_logits, ref_state, ref_alpha = run.model.decode_step(torch.as_tensor(y), init, memory)
        np.testing.assert_allclose(logits, ref_logits.numpy(), atol=ATOL, rtol=0)
        if ref_alpha is not None:
            np.testing.assert_allclose(alpha, ref_alpha.numpy(), atol=ATOL, rtol=0)
        # whole searches: the same tokens, scores and attention as rnnkit.tasks.decode
        for beam in beams:
            ours = (rt.greedy(enc, step, inputs, lengths) if beam == 1 else rt.beam_search(enc, step, inputs, lengths,
                                                                                         beam=beam))
            ref = decode.greedy(run.model, s, L) if beam == 1 else decode.beam_search(run.model, s, L, beam=beam)
            produced += sum(len(r.tokens) for r in ref)
            for o, r in zip(ours, ref):
                assert o["tokens"] == r.tokens
                assert o["score"] == pytest.approx(r.score, abs=1e-4)
                if r.attention is not None:
                    np.testing.assert_allclose(o["attention"], r.attention, atol=ATOL, rtol=0)
    assert produced >= 10  # real outputs, not only <eos>


# ---- model.json, the shipped runtime, the CLI ----------------------------------------------------------------
def test_docs_example_runs_with_only_onnxruntime_numpy_json(runs, tmp_path):
    """docs/export.md's first example in a fresh Python with torch and rnnkit made unimportable: its output
    equals rnnkit's predict_proba on the same texts."""
    from pathlib import Path

    out = export(runs["classify"], tmp_path / "ship")
    doc = (Path(__file__).parents[1] / "docs" / "export.md").read_text()
    code = doc.split("```python\n")[1].split("```")[0]
    script = tmp_path / "example.py"
    script.write_text("import sys; sys.modules['torch'] = None; sys.modules['rnnkit'] = None\n" + code)
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    texts = ["a gripping , funny film", "dull"]
    probs = classify.predict_proba(load(runs["classify"]), [t.split() for t in texts]).numpy()
    labels = load(runs["classify"]).task.labels
    for line, p in zip(done.stdout.strip().splitlines(), probs):
        assert line.startswith(labels[int(p.argmax())] + " ")
        shown = json.loads(line.split(" ", 1)[1].rsplit("}", 1)[0].replace("'", '"') + "}")
        assert shown == pytest.approx(dict(zip(labels, map(float, p))), abs=6e-4)  # printed to 3 decimals


def test_model_json_contents(runs, tmp_path):
    import rnnkit

    meta = json.loads((export(runs["forecast"], tmp_path / "f") / "model.json").read_text())
    run = load(runs["forecast"])
    assert meta["task"] == "forecast" and meta["versions"]["rnnkit"] == rnnkit.__version__
    assert meta["versions"]["opset"] == 17 and meta["normalizer"] == run.normalizer.to_dict()
    values, start = meta["graphs"]["model"]["inputs"]  # the default model has season features: a start input
    assert values == {"name": "values", "dtype": "float32", "shape": ["B", "W", 2]}
    assert start == {"name": "start", "dtype": "int64", "shape": ["B"]}
    H, Q = run.model.config.horizon, len(run.model.config.quantiles)
    assert meta["graphs"]["model"]["outputs"] == [{"name": "forecast", "dtype": "float32", "shape": ["B", H]},
                                                  {"name": "quantiles", "dtype": "float32", "shape": ["B", H, Q]}]
    meta = json.loads((export(runs["tag"], tmp_path / "t") / "model.json").read_text())
    crf = load(runs["tag"]).model.crf
    assert np.array_equal(np.asarray(meta["crf"]["transitions"], dtype=np.float32), crf.transitions.detach().numpy())
    assert {i["name"] for i in meta["graphs"]["model"]["inputs"]} == {"words", "lengths", "chars", "char_lengths"}


def test_cli_export_replaces_an_earlier_export_and_refuses_other_dirs(runs, tmp_path, capsys):
    out = tmp_path / "lm-onnx"
    assert main(["export", str(runs["lm"]), "--format", "onnx", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.onnx", "rnnkit_runtime.py", "step.onnx"]
    assert str(out) in capsys.readouterr().out
    assert main(["export", str(runs["lm"]), "--out", str(out)]) == 0  # an earlier export: replaced
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    one_error_line(capsys, ["export", str(runs["lm"]), "--out", str(tmp_path / "other")], "not an earlier export")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_cli_errors_are_one_line(runs, tmp_path, capsys):
    one_error_line(capsys, ["export", str(tmp_path / "nope")], "not a run directory")
    one_error_line(capsys, ["export", str(runs["lm"]), "--format", "tflite"], "expected one of onnx, pt2")
    tree_run = tmp_path / "tree"
    tree_run.mkdir()
    (tree_run / "config.json").write_text(json.dumps({"task": {"name": "tree"}}))
    one_error_line(capsys, ["export", str(tree_run)], "not exportable")


def test_without_the_extra_one_line_install_hint(runs, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    one_error_line(capsys, ["export", str(runs["lm"])], "pip install 'rnnkit[export]'")
