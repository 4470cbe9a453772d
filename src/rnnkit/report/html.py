"""`build_report(RUN_DIR)`: RUN_DIR/report.html, one self-contained page (PNG figures embedded as base64 data
URIs, also written next to it under RUN_DIR/report/), from the plain files of any run directory:

    config.json              the task, model and training configuration (shown as a table)
    metrics.jsonl            loss curves (+ the learning-rate hint), and when the run recorded rnnkit.diagnostics:
                             gradient flow over time × training, Jacobian products, gate saturation, spectral radius
                             and σ_max, gradient norms before/after clipping with the clipping rate, dead ReLUs
    results.json             final metrics (rnnkit lab writes it)
    attention*.png           attention maps (e.g. `rnnkit translate ... --plot-attention RUN_DIR/attention.png`)
    samples*.txt, predictions*.txt / *.tsv     samples or predictions (the first lines)
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from rnnkit.data import DataError
from rnnkit.report import plots
from rnnkit.report.hints import MESSAGES, lr_hint
from rnnkit.report.records import read_records
from rnnkit.train.checkpoint import atomic_write_bytes

TEXT_PATTERNS = ("samples*.txt", "predictions*.txt", "predictions*.tsv")
MAX_TEXT_LINES = 40


def build_report(run_dir, out=None) -> Path:
    """Write the report of RUN_DIR and return the path of the page (default RUN_DIR/report.html)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: run directory not found (expected the --out of `rnnkit train` or `rnnkit lab`)")
    if not (run_dir / "metrics.jsonl").exists() and not (run_dir / "config.json").exists():
        raise DataError(f"{run_dir}: expected metrics.jsonl or config.json in a run directory, found neither")
    config = _read_json(run_dir / "config.json")
    records = read_records(run_dir)
    out = Path(out) if out is not None else run_dir / "report.html"
    figures = out.with_suffix("")  # RUN_DIR/report/: the PNGs, also embedded in the page
    sections = [_summary(config, _read_json(run_dir / "results.json"), records)]
    sections += _training_sections(records, figures)
    diagnostics, absent = _diagnostic_sections(records, figures)
    sections += diagnostics
    attention = _attention_sections(run_dir)
    if not attention:
        absent.append(("attention maps", "none — no attention*.png in the run directory (e.g. `rnnkit translate "
                       "RUN_DIR ... --plot-attention RUN_DIR/attention.png`)"))
    sections += attention
    sections += _text_sections(run_dir)
    sections.append(_absent_section(absent))
    title = f"rnnkit report: {run_dir.resolve().name}"
    page = _PAGE.format(title=html.escape(title), body="\n".join(s for s in sections if s))
    atomic_write_bytes(out, page.encode("utf-8"))
    return out


def _read_json(path: Path) -> dict:
    """A run's JSON file as an object ({} when absent); anything else is one DataError naming the file."""
    if not path.is_file():
        return {}
    from rnnkit.data.text import read_json

    value = read_json(path, "a JSON object")
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def _img(path: Path | None, alt: str) -> str:
    if path is None:
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>' \
           f'{html.escape(alt)}</figcaption></figure>'


def _table(rows: list[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _fmt(v) -> str:
    return f"{v:.5g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, (dict, list)) else str(v)


def _summary(config: dict, results: dict, records: list[dict]) -> str:
    parts = ["<h2>Run</h2>"]
    for section in ("task", "model", "data"):
        if isinstance(config.get(section), dict):
            parts.append(f"<h3>{section}</h3>" + _table(list(config[section].items())))
    last = {s: r["metrics"] for r in records for s in ("train", "valid") if r.get("split") == s}
    rows = [(f"{s} {k}", v) for s, m in last.items() for k, v in m.items()]
    for key in ("test", "baseline"):
        rows += [(f"{key} {k}", v) for k, v in results.get(key, {}).items()]
    if rows:
        parts.append("<h3>final metrics</h3>" + _table(rows))
    return "\n".join(parts)


def _training_sections(records: list[dict], figures: Path) -> list[str]:
    path = plots.loss_curves(records, figures / "loss.png")
    if path is None:
        return []
    _, losses = plots.update_losses(records)
    if not losses:
        losses = [r["metrics"]["loss"] for r in records if r.get("split") in ("train_running", "train")
                  and "loss" in r.get("metrics", {})]
    verdict = lr_hint(losses)
    hint = f'<p class="hint"><b>Learning-rate hint ({verdict}):</b> {html.escape(MESSAGES[verdict])}</p>'
    return ["<h2>Loss</h2>", hint, _img(path, "training and validation loss")]


def _keys(records: list[dict], kind: str, prefix: str, suffix: str = "") -> list[str]:
    return sorted({k for r in plots.of_kind(records, kind) for k, v in r["diagnostics"].items()
                   if k.startswith(prefix) and k.endswith(suffix)})


NOT_RECORDED = "not recorded — train with --diagnostics-every N (TrainConfig.diagnostics_every)"


def _last(records: list[dict], kind: str) -> dict | None:
    rows = plots.of_kind(records, kind)
    return rows[-1] if rows else None


def _values_table(record: dict, keys: list[str], strip: str) -> str:
    caption = f"<p>At update {record['step']}:</p>"
    return caption + _table([(k.replace(strip, ""), record["diagnostics"][k]) for k in keys
                             if k in record["diagnostics"]])


def _diagnostic_sections(records: list[dict], figures: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """The diagnostics' sections, and (section, why it is absent) for each one missing."""
    out, absent = [], []
    recorded = {kind: bool(plots.of_kind(records, kind)) for kind in ("probe", "spectra", "updates")}
    if not any(recorded.values()):
        return [], [(name, NOT_RECORDED) for name in ("gradient flow through time", "gates", "recurrent matrices",
                                                      "gradient norm and clipping")]
    notes = [r["diagnostics"].get("note") for r in plots.of_kind(records, "note")]
    no_layer = next((n for n in notes if isinstance(n, str)), None)
    probe = _last(records, "probe")
    flow = _keys(records, "probe", "grad_flow.", ".dL_dh") + _keys(records, "probe", "grad_flow.", ".dL_dc")
    if flow:
        out.append("<h2>Gradient flow through time</h2><p>‖∂L/∂h_k‖ on the probe batch at every time step k "
                   "(across) and training update (down), log10 scale: dark on the left means the loss is "
                   "insensitive to early steps (vanishing gradients).</p>")
        rows = [(f"{k}: k=1 / k=T", f"{probe['diagnostics'][k][0]:.5g} / {probe['diagnostics'][k][-1]:.5g}")
                for k in flow if probe["diagnostics"].get(k)]
        out.append(f"<p>At update {probe['step']}:</p>" + _table(rows))
        out += [_img(plots.gradient_flow_heatmap(records, k, figures / f"{k}.png"), k) for k in flow]
    no_flow = ("not recorded — " + no_layer.split(", so ")[0].removeprefix("diagnostics: ")) if no_layer else \
        "not recorded — the probe found no rnnkit Recurrent layer in the model"
    if not flow:
        absent.append(("gradient flow through time", no_flow))
    for key in _keys(records, "probe", "grad_flow.", ".jacobian"):
        out.append(_img(plots.jacobian_lines(records, key, figures / f"{key}.png"), f"{key}: ‖∂h_T/∂h_k‖₂"))
    sat = _keys(records, "probe", "gates.", ".saturated")
    if sat:
        means = _keys(records, "probe", "gates.", ".mean")
        out.append("<h2>Gates</h2><p>Fraction of gate activations saturated (&lt; 0.05 or &gt; 0.95; tanh "
                   "candidates |·| &gt; 0.9), and mean activations.</p>")
        out.append(_values_table(probe, sat + means, "gates."))
        out.append(_img(plots.scalar_lines(records, "probe", sat, figures / "gates_saturated.png",
                                           "fraction saturated", strip="gates."), "gate saturation"))
        out.append(_img(plots.scalar_lines(records, "probe", means, figures / "gates_mean.png", "mean activation",
                                           strip="gates."), "gate means"))
    elif flow:
        absent.append(("gates", "none — the recurrent cells have no gates (Elman RNNs)"))
    else:
        absent.append(("gates", no_flow))
    relu = _keys(records, "probe", "relu.")
    if relu:
        out.append("<h2>ReLU units</h2>" + _values_table(probe, relu, "relu.") + _img(plots.scalar_lines(
            records, "probe", relu, figures / "relu.png", "fraction", strip="relu."), "dead ReLUs"))
    spectra = _keys(records, "spectra", "spectral.")
    if spectra:
        out.append("<h2>Recurrent matrices</h2><p>Spectral radius ρ and largest singular value σ_max of each "
                   "gate block of W (ρ &gt; 1 is needed for exploding gradients; σ_max·max|φ'| &lt; 1 makes "
                   "them vanish).</p>")
        out.append(_values_table(_last(records, "spectra"), spectra, "spectral."))
        for which in ("radius", "sigma_max"):
            keys = [k for k in spectra if k.endswith("." + which)]
            out.append(_img(plots.scalar_lines(records, "spectra", keys, figures / f"spectral_{which}.png", which,
                                               strip="spectral."), f"spectral {which}"))
    else:
        absent.append(("recurrent matrices", "none — the model has no recurrent weight matrix (weight_hh*)"
                       if recorded["spectra"] else NOT_RECORDED))
    clip = plots.clipping(records, figures / "clipping.png")
    if clip is not None:
        out.append("<h2>Gradient norm and clipping</h2>" + _clipping_table(records) +
                   _img(clip, "gradient norm before/after clipping"))
    else:
        absent.append(("gradient norm and clipping", NOT_RECORDED))
    return out, absent


def _clipping_table(records: list[dict]) -> str:
    rows = plots.of_kind(records, "updates")
    clipped = [c for r in rows for c in r["diagnostics"]["updates.clipped"]]
    norms = [g for r in rows for g in r["diagnostics"]["updates.grad_norm"]]
    if not norms:
        return ""
    return _table([("updates", len(norms)), ("clipped", sum(clipped)), ("clip rate", sum(clipped) / len(norms)),
                   ("mean ‖g‖ before clipping", sum(norms) / len(norms)), ("max ‖g‖ before clipping", max(norms))])


def _absent_section(absent: list[tuple[str, str]]) -> str:
    if not absent:
        return ""
    items = "".join(f"<li>{html.escape(name)}: {html.escape(why)}</li>" for name, why in absent)
    return f'<h2>Not in this report</h2><ul class="absent">{items}</ul>'


def _attention_sections(run_dir: Path) -> list[str]:
    images = sorted(run_dir.glob("attention*.png"))
    if not images:
        return []
    return ["<h2>Attention</h2>"] + [_img(p, p.name) for p in images]


def _text_sections(run_dir: Path) -> list[str]:
    files = sorted({p for pattern in TEXT_PATTERNS for p in run_dir.glob(pattern)})
    out = []
    for path in files:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        more = f"\n... ({len(lines) - MAX_TEXT_LINES} more lines)" if len(lines) > MAX_TEXT_LINES else ""
        out.append(f"<h2>{html.escape(path.name)}</h2><pre>{html.escape(chr(10).join(lines[:MAX_TEXT_LINES]) + more)}"
                   "</pre>")
    return out


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }} th, td {{ border: 1px solid #ccc; padding: 2px 8px; }}
th {{ text-align: left; background: #f4f4f4; }} img {{ max-width: 100%; }} figure {{ margin: 1em 0; }}
figcaption {{ color: #666; font-size: 0.85em; }} .hint {{ background: #fff7d6; padding: 0.5em; }}
pre {{ background: #f7f7f7; padding: 0.5em; overflow-x: auto; }}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""
