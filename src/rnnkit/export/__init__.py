"""Export a trained run for use outside rnnkit: ONNX graphs + model.json (+ a NumPy runtime for search/Viterbi).

    rnnkit export RUN_DIR --format onnx [--out DIR]          # or, in Python:
    from rnnkit.export import export;  export("runs/sst", "runs/sst/onnx")

DIR gets one or two .onnx files (rnnkit.export.tasks lists them per task), ``model.json`` (everything needed
to prepare inputs and read outputs: vocabularies, labels, normaliser, CRF scores, input/output names and
shapes, versions) and ``rnnkit_runtime.py`` (NumPy-only Viterbi, greedy and beam search). The graphs keep the
batch size and the sequence lengths symbolic; a ``lengths`` input gives every row of a padded batch exactly
its own result. docs/export.md has a complete example with onnxruntime, numpy and json only.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from rnnkit.export.graph import OPSET, NotExportable, require_onnx

FORMAT = "rnnkit.onnx/1"
FORMATS = ("onnx", "pt2")  # pt2: torch.export ExportedPrograms of the same graphs (rnnkit.export.pt2)
TREE = ("tree runs are not exportable to ONNX: the network's shape is each sentence's parse tree, a "
        "data-dependent recursion that an ONNX graph can only express through a hand-written tree interpreter")
TREE_PT2 = ("tree runs are not exportable to pt2: the network's shape is each sentence's parse tree, a "
            "data-dependent recursion that torch.export cannot trace into one program")
_LOADERS = {"classify": "classify", "tag": "tag", "forecast": "forecast", "lm": "lm", "seq2seq": "seq2seq",
            "tree": "tree"}


def task_of(run_dir) -> str:
    """The task that wrote RUN_DIR (config.json's task.name); one clear error when there is none."""
    from rnnkit.cli import run_task_name
    from rnnkit.data import DataError

    task = run_task_name(run_dir)
    if task not in _LOADERS:
        raise DataError(f"{Path(run_dir) / 'config.json'}: unknown task {task!r}")
    return task


def load(run_dir, weights: str = "best"):
    """The run in RUN_DIR, loaded by its task's own `load_run` (safetensors + JSON only, no code)."""
    import importlib

    task = task_of(run_dir)
    return importlib.import_module(f"rnnkit.tasks.{_LOADERS[task]}").load_run(run_dir, weights=weights)


def export(run_dir, out=None, format: str = "onnx", weights: str = "best") -> Path:
    """Export the run in RUN_DIR to OUT (default RUN_DIR/onnx, or RUN_DIR/pt2); returns OUT."""
    from rnnkit.cli.common import UsageError

    require_onnx()
    if format not in FORMATS:
        raise UsageError(f"--format {format}: expected one of {', '.join(FORMATS)}")
    if task_of(run_dir) == "tree":
        raise UsageError(TREE if format == "onnx" else TREE_PT2)
    run = load(run_dir, weights)
    out = Path(out) if out is not None else Path(run_dir) / format
    return export_run(run, out, source=str(Path(run_dir).resolve()), weights=weights, format=format)


def export_run(run, out, source: str | None = None, weights: str = "best", format: str = "onnx") -> Path:
    """Export a loaded run (`rnnkit.tasks.<task>.load_run`) to the directory OUT, replacing an earlier export
    there; written to a temporary directory first and renamed, so OUT is never half-written. ``format``
    "pt2": the same graphs as torch.export programs, NAME.pt2 (rnnkit.export.pt2), with the same model.json."""
    from rnnkit.cli.common import UsageError

    onnx = require_onnx()
    if format not in FORMATS:
        raise UsageError(f"format {format!r}: expected one of {', '.join(FORMATS)}")
    task = run.task.name if hasattr(run.task, "name") else run.config["task"]["name"]
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "model.json").is_file():
        raise UsageError(f"{out}: exists and is not an earlier export (no model.json); choose another --out")
    graphs = build(run, task)
    meta = describe(run, task, graphs, source, weights)
    programs = {}
    if format == "pt2":
        from rnnkit.export.pt2 import export_programs

        programs = export_programs(run, task, graphs, meta)
        meta["format"] = "rnnkit.pt2/1"
        for name, graph in meta["graphs"].items():
            graph["file"] = f"{name}.pt2"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary directory
        if format == "pt2":
            import torch

            for name, program in programs.items():
                torch.export.save(program, tmp / f"{name}.pt2")
        else:
            for name, model in graphs.items():
                onnx.checker.check_model(model, full_check=True)
                onnx.save(model, tmp / f"{name}.onnx")
        (tmp / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
        for name, tokenizer in _tokenizer_files(run).items():  # sentencepiece models, named in model.json
            tokenizer.save(tmp / name)
        shutil.copyfile(Path(__file__).with_name("runtime.py"), tmp / "rnnkit_runtime.py")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def build(run, task: str) -> dict:
    """{graph name: onnx.ModelProto} of a loaded run; NotExportable -> a one-line UsageError."""
    from rnnkit.cli.common import UsageError
    from rnnkit.export import tasks

    if task == "tree":
        raise UsageError(TREE)
    try:
        if task == "forecast":
            return tasks.forecast(run.model, run.normalizer)
        return tasks.BUILDERS[task](run.model)
    except NotExportable as e:
        raise UsageError(f"{task} run not exportable to ONNX: {e}") from None


def _io(values) -> list[dict]:
    types = {1: "float32", 7: "int64", 9: "bool"}
    out = []
    for v in values:
        t = v.type.tensor_type
        shape = [d.dim_param or (d.dim_value if d.HasField("dim_value") else None) for d in t.shape.dim]
        out.append({"name": v.name, "dtype": types[t.elem_type], "shape": shape})
    return out


def _versions() -> dict:
    import onnx
    import torch

    import rnnkit

    versions = {"rnnkit": rnnkit.__version__, "torch": torch.__version__, "onnx": onnx.__version__,
                "opset": OPSET}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return versions


def describe(run, task: str, graphs: dict, source: str | None, weights: str) -> dict:
    """model.json: what an application needs besides the graphs."""
    meta = {"format": FORMAT, "task": task, "versions": _versions(), "source": source, "weights": weights,
            "graphs": {name: {"file": f"{name}.onnx", "inputs": _io(m.graph.input), "outputs": _io(m.graph.output)}
                       for name, m in graphs.items()},
            "model": run.config.get("model"), "preprocessing": {}}
    meta.update(_TASK_META[task](run))
    return meta


def _classify_meta(run) -> dict:
    t = run.task
    return {"labels": t.labels, "vocab": {"tokens": t.vocab.itos, "unk": t.vocab.stoi[t.vocab.unk], "pad": 0},
            "tokenizer": t.tokenizer.to_dict(),
            "preprocessing": {"split": t.tokenizer.kind, "lower": t.lower, "unknown": "the unk id",
                              "padding": "pad id after each row's length; lengths >= 1"}}


def _tag_meta(run) -> dict:
    from rnnkit.tasks.tag import MAX_WORD_CHARS

    t, crf = run.task, run.model.crf
    chars = None if t.chars is None else {"tokens": t.chars.itos, "unk": t.chars.stoi[t.chars.unk], "pad": 0}
    meta = {"tags": t.tags.itos, "vocab": {"tokens": t.words.itos, "unk": t.words.stoi[t.words.unk], "pad": 0},
            "chars": chars, "crf": None,
            "preprocessing": {"lower": t.lower, "max_word_chars": MAX_WORD_CHARS,
                              "long_words": "first and last max_word_chars/2 characters (not lowered)",
                              "decode": "argmax over the tags" if crf is None else "rnnkit_runtime.viterbi"}}
    if crf is not None:
        meta["crf"] = {"transitions": crf.transitions.tolist(),
                       "start": None if crf.start is None else crf.start.tolist(),
                       "end": None if crf.end is None else crf.end.tolist()}
    return meta


def _forecast_meta(run) -> dict:
    d = run.config["data"]
    return {"normalizer": run.normalizer.to_dict(), "target": d.get("target"), "covariates": d.get("covariates"),
            "window": d.get("window"), "horizon": run.model.config.horizon, "strategy": run.model.config.strategy,
            "preprocessing": {"values": "the last `window` rows, columns in normalizer.columns order, "
                                        "in the data's units (normalised inside the graph)"}}


def _tokenizer_files(run) -> dict:
    files = getattr(run.task, "tokenizer_files", None)
    return files() if callable(files) else {}


def _lm_meta(run) -> dict:
    t, c = run.task, run.model.config
    if not hasattr(run.model, "rnn"):  # NPLM: the state is the n-1 previous token ids
        state = {"names": ["context"], "shape": ["B", c.context], "dtype": "int64",
                 "initial": f"the boundary id {c.vocab_size} everywhere"}
    else:
        state = {"names": ["h", "c"] if c.cell in ("lstm", "ln-lstm") else ["h"], "shape": [c.layers, "B", c.hidden],
                 "dtype": "float32", "initial": "zeros"}
    tokens = "characters" if t.level == "char" else f"{t.tokenizer.kind} tokens of each line, then <eos>"
    return {"vocab": {"tokens": t.vocab.itos, "unk": t.vocab.stoi[t.vocab.unk]}, "level": t.level, "state": state,
            "tokenizer": t.tokenizer.to_dict(), "preprocessing": {"tokens": tokens}}


def _seq2seq_meta(run) -> dict:
    t, c = run.task, run.model.config
    vocab = lambda v: None if v is None else {"tokens": v.itos}  # noqa: E731
    return {"src_vocab": vocab(t.src_vocab), "tgt_vocab": vocab(t.tgt_vocab), "level": t.level,
            "lowercase": t.lowercase, "max_len": t.max_len, "one_to_seq": t.src_vocab is None,
            "tokenizer": {"src": t.src_tokenizer.to_dict(), "tgt": t.tgt_tokenizer.to_dict(), "joint": t.joint},
            "specials": {"pad": 0, "unk": 1, "bos": 2, "eos": 3}, "attention": c.attention,
            "preprocessing": {"src": "tokens of tokenizer.src (a sentencepiece model: its file in this directory), "
                                     "unknown -> 1, padded with 0, no <bos>/<eos>",
                              "search": "rnnkit_runtime.greedy / beam_search"}}


_TASK_META = {"classify": _classify_meta, "tag": _tag_meta, "forecast": _forecast_meta, "lm": _lm_meta,
              "seq2seq": _seq2seq_meta}
