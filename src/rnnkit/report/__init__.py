"""rnnkit.report: `rnnkit report RUN_DIR` → RUN_DIR/report.html (self-contained) and RUN_DIR/report/*.png.

>>> from rnnkit.report import build_report
>>> build_report("runs/adding")          # PosixPath('runs/adding/report.html')  # doctest: +SKIP
"""
from rnnkit.report.hints import MESSAGES, lr_hint
from rnnkit.report.html import build_report

__all__ = ["MESSAGES", "build_report", "lr_hint"]
