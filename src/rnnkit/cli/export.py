"""`rnnkit export RUN_DIR --format onnx|pt2 [--out DIR]`: the run's model as ONNX graphs (or torch.export programs)
+ model.json (rnnkit.export)."""
from __future__ import annotations


def register(train_sub, sub) -> None:
    p = sub.add_parser("export", help="export a trained run for use without rnnkit (ONNX graphs + model.json)",
                       description="Write DIR/model.onnx (and step.onnx, encoder.onnx, ... per task), DIR/model.json "
                       "(vocabularies, labels, normaliser, input/output names) and DIR/rnnkit_runtime.py (NumPy "
                       "Viterbi and beam search). See docs/export.md.")
    p.add_argument("run_dir", help="a run directory written by `rnnkit train`")
    p.add_argument("--format", default="onnx", help="onnx (onnxruntime and any ONNX runtime), or pt2 (torch.export "
                   "ExportedPrograms of the same graphs, NAME.pt2)")
    p.add_argument("--out", default=None, help="the directory to write (default: RUN_DIR/FORMAT); an earlier export "
                   "there is replaced")
    p.add_argument("--weights", choices=["best", "last"], default="best")
    p.set_defaults(run=run_export)


def run_export(args) -> int:
    from rnnkit.export import export

    out = export(args.run_dir, args.out, args.format, args.weights)
    names = sorted(p.name for p in out.iterdir())
    print(f"wrote {out}: {', '.join(names)}")
    return 0
