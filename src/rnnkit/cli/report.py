"""`rnnkit report RUN_DIR`: an HTML page of a run's curves and diagnostics (rnnkit.report)."""
from __future__ import annotations


def register(train_sub, sub) -> None:
    p = sub.add_parser("report", help="write RUN_DIR/report.html: loss curves, gradient flow, gates, spectra, "
                       "clipping, attention maps, predictions")
    p.add_argument("run_dir", help="a run directory (rnnkit train ... --out, rnnkit lab ... --out)")
    p.add_argument("--output", default=None, help="the page to write (default: RUN_DIR/report.html)")
    p.set_defaults(run=run_report)


def run_report(args) -> int:
    from rnnkit.report import build_report

    path = build_report(args.run_dir, args.output)
    print(f"wrote {path}")
    return 0
