"""`rnnkit export --format pt2`: torch.export programs with the ONNX graphs' inputs and outputs.

Oracles: the layer alone against rnnkit's own forward (fused and loop paths, every cell kind and layer option);
every task's programs against onnxruntime on the ONNX export of the same run (itself checked against rnnkit in
test_export.py), on batches whose size and lengths differ from the export's example, padding filled with
random ids; seq2seq greedy and beam search over the pt2 programs (rnnkit_runtime.Program) against
rnnkit.tasks.decode. Every program is saved and loaded back with torch.export before it runs."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from _cli_errors import one_error_line
from test_export import ATOL, LAYERS, garbage_pad, make_lm, padded, random_ids, session, set_path, with_model

from rnnkit import CELLS, Recurrent
from rnnkit.cli import main
from rnnkit.export import export_run, load
from rnnkit.export import runtime as rt
from rnnkit.export.pt2 import Program, scanned
from rnnkit.tasks import classify, decode, forecast, seq2seq, tag


def both(run, tmp_path):
    """(onnx dir, pt2 dir, model.json of the pt2 export) of one loaded run."""
    onnx_dir = export_run(run, tmp_path / "onnx")
    pt2_dir = export_run(run, tmp_path / "pt2", format="pt2")
    return onnx_dir, pt2_dir, json.loads((pt2_dir / "model.json").read_text())


def check_against_onnx(onnx_dir, pt2_dir, meta, name, feeds):
    """Every output of program NAME (loaded from its .pt2) == onnxruntime's, on FEEDS."""
    spec = meta["graphs"][name]
    want = session(onnx_dir / f"{name}.onnx").run(None, feeds)
    got = rt.Program(name, pt2_dir).run(None, feeds)
    assert spec["file"] == f"{name}.pt2" and len(got) == len(want) == len(spec["outputs"])
    for o, w, g in zip(spec["outputs"], want, got):
        assert g.shape == w.shape, o["name"]
        tol = ATOL * max(1.0, float(np.abs(w).max())) if w.dtype == np.float32 else 0
        np.testing.assert_allclose(g, w, atol=tol, rtol=0, err_msg=o["name"])
    return dict(zip((o["name"] for o in spec["outputs"]), got))


def ids_and_lengths(rng, B, V, low, high, first=2):
    ids, lengths = padded(random_ids(rng, B, V, low, high, first))
    return garbage_pad(ids, lengths, rng, V, first), lengths


BATCHES = [(1, 1, 1), (5, 1, 9), (2, 6, 6)]  # (B, shortest, longest): the export's example is B 3, T 5


# ---- the layer alone ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("options", LAYERS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_scan_forward_equals_the_layer_on_both_paths(options):
    """scan_forward (what the programs run) == Recurrent.forward, fused and loop paths: outputs and final state
    of a padded batch with an initial state, 2 layers, batch_first, every cell kind and layer option."""
    torch.manual_seed(0)
    layer = Recurrent(input_size=4, hidden_size=5, num_layers=2, batch_first=True, **options).eval()
    x, lengths = torch.randn(5, 6, 4), torch.tensor([6, 1, 4, 6, 2])
    rows = 2 * (2 if options["bidirectional"] else 1)
    h0 = torch.randn(rows, 5, layer.output_size)
    state = (h0, torch.randn(rows, 5, 5)) if options["cell"] in ("lstm", "ln-lstm") else h0
    with torch.no_grad():
        out, final = scanned(layer)(x, state, lengths=lengths)
        for fused in (True, False):
            ref_out, ref_final = set_path(layer, fused)(x, state, lengths=lengths)
            np.testing.assert_allclose(out, ref_out, atol=ATOL, rtol=0)
            for a, b in zip(final if isinstance(final, tuple) else (final,),
                            ref_final if isinstance(ref_final, tuple) else (ref_final,)):
                np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


@pytest.mark.parametrize("cell", list(CELLS))
def test_every_cell_kind_exports_with_symbolic_batch_and_time(cell):
    """One layer of each cell kind through torch.export (B, T symbolic; example B 3, T 5) == the layer itself
    on batches of other sizes and lengths, B and T of 1 included."""
    torch.manual_seed(0)
    layer = Recurrent(cell, input_size=4, hidden_size=5, batch_first=True).eval()
    dims = ({0: torch.export.Dim("B", min=1), 1: torch.export.Dim("T", min=1)}, {0: torch.export.Dim("B", min=1)})
    program = torch.export.export(Program(scanned(layer), lambda m, x, n: (m(x, lengths=n)[0],)),
                                  (torch.randn(3, 5, 4), torch.tensor([5, 2, 3])), dynamic_shapes=(dims,))
    for x, lengths in ((torch.randn(1, 1, 4), torch.tensor([1])), (torch.randn(6, 9, 4), torch.tensor([9, 1, 4, 9, 2]
                                                                                                     + [7]))):
        with torch.no_grad():
            (got,) = program.module()(x, lengths)
            ref, _ = layer(x, lengths=lengths)
        np.testing.assert_allclose(got, ref, atol=ATOL, rtol=0)


# ---- the tasks ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from test_export import make_classify, make_forecast, make_seq2seq, make_tag

    tmp = tmp_path_factory.mktemp("pt2-runs")
    return {"classify": make_classify(tmp, layers=2, bidirectional=True), "tag": make_tag(tmp),
            "forecast": make_forecast(tmp), "lm": make_lm(tmp), "nplm": make_lm(tmp, nplm=True),
            "seq2seq": make_seq2seq(tmp)}


CLASSIFY = [{"cell": "lstm", "pooling": "last"}, {"cell": "minlstm", "pooling": "max"},
            {"cell": "gru-before", "pooling": "attention", "layers": 1}]  # 2 layers x 2 directions unless said


@pytest.mark.parametrize("options", CLASSIFY, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_classify(runs, tmp_path, options):
    run = load(runs["classify"])
    run = with_model(run, classify.RNNClassifier(dataclasses.replace(run.model.config, **options)))
    onnx_dir, pt2_dir, meta = both(run, tmp_path)
    rng, V = np.random.default_rng(0), run.model.embedding.num_embeddings
    for B, low, high in BATCHES:
        ids, lengths = ids_and_lengths(rng, B, V, low, high)
        got = check_against_onnx(onnx_dir, pt2_dir, meta, "model", {"tokens": ids, "lengths": lengths})
        with torch.no_grad():  # and rnnkit itself, each sequence alone
            alone = np.concatenate([run.model.logits(torch.as_tensor(ids[b: b + 1, :n]), torch.tensor([n])).numpy()
                                    for b, n in enumerate(lengths)])
        np.testing.assert_allclose(got["logits"], alone, atol=ATOL, rtol=0)


@pytest.mark.parametrize("cell", ["gru-before"])
def test_tag_with_characters(runs, tmp_path, cell):
    run = load(runs["tag"])
    run = with_model(run, tag.Tagger(dataclasses.replace(run.model.config, cell=cell, layers=1)))
    onnx_dir, pt2_dir, meta = both(run, tmp_path)
    rng = np.random.default_rng(1)
    V, VC = run.model.embedding.num_embeddings, run.model.chars.embedding.num_embeddings
    for B, low, high in BATCHES:
        words, lengths = ids_and_lengths(rng, B, V, low, high)
        C = int(rng.integers(1, 8))
        chars = rng.integers(2, VC, (B, words.shape[1], C))
        char_lengths = rng.integers(1, C + 1, words.shape)
        char_lengths[np.arange(words.shape[1])[None, :] >= lengths[:, None]] = 0  # padding words: 0
        got = check_against_onnx(onnx_dir, pt2_dir, meta, "model", {"words": words, "lengths": lengths,
                                                                    "chars": chars, "char_lengths": char_lengths})
        crf = meta["crf"]  # and the tags rnnkit_runtime's Viterbi reads from them
        ours = rt.viterbi(got["emissions"], lengths, crf["transitions"], crf["start"], crf["end"])
        with torch.no_grad():
            batch = tag.TagBatch(torch.as_tensor(words), torch.zeros_like(torch.as_tensor(words)),
                                 torch.as_tensor(lengths), torch.as_tensor(chars), torch.as_tensor(char_lengths))
            mask = torch.arange(words.shape[1])[None, :] < torch.as_tensor(lengths)[:, None]
            ref = run.model.decode(run.model.emissions(batch), mask)
        assert ours == [ref[b, :n].tolist() for b, n in enumerate(lengths)]


@pytest.mark.parametrize("cell,strategy", [("ln-lstm", "direct"), ("lstm", "autoregressive")])
def test_forecast(runs, tmp_path, cell, strategy):
    run = load(runs["forecast"])
    config = dataclasses.replace(run.model.config, cell=cell, layers=1, strategy=strategy)
    run = with_model(run, forecast.Forecaster(config, run.normalizer))
    onnx_dir, pt2_dir, meta = both(run, tmp_path)
    rng, norm = np.random.default_rng(2), run.normalizer
    names = [i["name"] for i in meta["graphs"]["model"]["inputs"]]
    for B, W in ((1, 8), (4, 8), (2, 8)) if run.model.linear is not None else ((1, 8), (4, 3), (2, 13)):
        values = (np.asarray(norm.mean) + rng.normal(size=(B, W, 2)) * np.asarray(norm.std)).astype(np.float32)
        feeds = {"values": values, "start": rng.integers(0, 50, B), "series": rng.integers(-1, 1, B)}
        got = check_against_onnx(onnx_dir, pt2_dir, meta, "model", {k: v for k, v in feeds.items() if k in names})
        with torch.no_grad():
            ref = run.model.predict(*(torch.as_tensor(feeds[k]) for k in names)).numpy()
        np.testing.assert_allclose(got["quantiles"], ref, atol=ATOL * max(1.0, float(np.abs(ref).max())), rtol=0)


@pytest.mark.parametrize("name", ["lm", "nplm"])
def test_lm_window_and_step(runs, tmp_path, name):
    run = load(runs[name])
    onnx_dir, pt2_dir, meta = both(run, tmp_path)
    rng, c = np.random.default_rng(3), run.model.config
    V = c.vocab_size
    for B, low, high in BATCHES:
        tokens, lengths = ids_and_lengths(rng, B, V, low, high, first=0)
        if name == "lm":
            state = {n: (rng.normal(size=(c.layers, B, c.hidden)) * 0.5).astype(np.float32) for n in ("h", "c")}
            window = {"tokens": tokens, "lengths": lengths, "h0": state["h"], "c0": state["c"]}
        else:
            state = {"context": rng.integers(0, V + 1, (B, c.context))}
            window = {"tokens": tokens, "lengths": lengths, "context0": state["context"]}
        check_against_onnx(onnx_dir, pt2_dir, meta, "model", window)
        check_against_onnx(onnx_dir, pt2_dir, meta, "step", {"token": tokens[:, 0], **state})


S2S = [{"cell": "lstm", "attention": "dot", "input_feeding": True},
       {"cell": "gru", "attention": "hard", "bidirectional": False}]


@pytest.mark.parametrize("options", S2S, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_seq2seq_steps_and_searches(runs, tmp_path, options):
    run = load(runs["seq2seq"])
    run = with_model(run, seq2seq.Seq2Seq(dataclasses.replace(run.model.config, **options)))
    with torch.no_grad():  # <eos> less likely: outputs of several tokens
        run.model.out.bias[rt.EOS_ID] -= 3.0
    onnx_dir, pt2_dir, meta = both(run, tmp_path)
    rng = np.random.default_rng(4)
    V, VT = run.model.src_embedding.num_embeddings, run.model.tgt_embedding.num_embeddings
    enc, step = rt.Program("encoder", pt2_dir), rt.Program("decoder_step", pt2_dir)
    for B, low, high in ((1, 1, 1), (4, 2, 7)):
        src, lengths = ids_and_lengths(rng, B, V, low, high, first=4)
        inputs = {"src": src, "src_lengths": lengths}
        memory = check_against_onnx(onnx_dir, pt2_dir, meta, "encoder", inputs)
        feeds = {k.removesuffix("0"): v for k, v in memory.items()}
        check_against_onnx(onnx_dir, pt2_dir, meta, "decoder_step", {"y_prev": rng.integers(4, VT, B), **feeds})
        s, L = torch.as_tensor(src), torch.as_tensor(lengths)
        for beam in (1, 3):
            ours = rt.greedy(enc, step, inputs, lengths) if beam == 1 else rt.beam_search(enc, step, inputs, lengths,
                                                                                        beam=beam)
            ref = decode.greedy(run.model, s, L) if beam == 1 else decode.beam_search(run.model, s, L, beam=beam)
            for o, r in zip(ours, ref):
                assert o["tokens"] == r.tokens and o["score"] == pytest.approx(r.score, abs=1e-4)


def test_docs_example_runs_with_torch_alone(runs, tmp_path):
    """docs/export.md's pt2 example in a fresh Python with rnnkit made unimportable: its output equals rnnkit's
    predict_proba on the same texts."""
    import subprocess
    import sys
    from pathlib import Path

    out = export_run(load(runs["classify"]), tmp_path / "ship", format="pt2")
    doc = (Path(__file__).parents[1] / "docs" / "export.md").read_text()
    code = doc.split("## `--format pt2`")[1].split("```python\n")[1].split("```")[0]
    script = tmp_path / "example.py"
    script.write_text("import sys; sys.modules['rnnkit'] = None\n" + code)
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run = load(runs["classify"])
    texts = ["a gripping , funny film", "dull"]
    probs = classify.predict_proba(run, [t.split() for t in texts]).numpy()
    for line, p in zip(done.stdout.strip().splitlines(), probs):
        assert line.startswith(run.task.labels[int(p.argmax())] + " ")
        shown = json.loads(line.split(" ", 1)[1].rsplit("}", 1)[0].replace("'", '"') + "}")
        assert shown == pytest.approx(dict(zip(run.task.labels, map(float, p))), abs=6e-4)  # 3 decimals


# ---- the CLI ------------------------------------------------------------------------------------------------
def test_cli_pt2_writes_programs_beside_model_json(runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", str(runs["nplm"]), "--format", "pt2", "--out", str(out)]) == 0
    assert "step.pt2" in capsys.readouterr().out
    meta = json.loads((out / "model.json").read_text())
    assert meta["format"] == "rnnkit.pt2/1" and sorted(g["file"] for g in meta["graphs"].values()) == [
        "model.pt2", "step.pt2"]
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.pt2", "rnnkit_runtime.py", "step.pt2"]
    tree_run = tmp_path / "tree"
    tree_run.mkdir()
    (tree_run / "config.json").write_text(json.dumps({"task": {"name": "tree"}}))
    one_error_line(capsys, ["export", str(tree_run), "--format", "pt2"], "not exportable to pt2")
