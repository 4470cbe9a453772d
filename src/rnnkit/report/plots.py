"""The report's figures (matplotlib, Agg backend: no display needed), each from metrics.jsonl records.

Every function takes the records it needs and a PNG path, writes the figure and returns the path, or returns
None when the run has nothing to plot (e.g. no diagnostics were recorded).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def of_kind(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r.get("split") == "diagnostics" and r.get("kind") == kind]


def update_losses(records: list[dict]) -> tuple[list[int], list[float]]:
    """(steps, losses) of every update recorded by the "updates" diagnostics."""
    steps, losses = [], []
    for r in of_kind(records, "updates"):
        steps += r["diagnostics"]["updates.step"]
        losses += r["diagnostics"]["updates.loss"]
    return steps, losses


def loss_curves(records: list[dict], path) -> Path | None:
    """Training loss per update (when recorded), running and per-epoch training loss, validation loss."""
    plt = _pyplot()
    epochs = {s: [(r["step"], r["metrics"]["loss"]) for r in records if r.get("split") == s and "loss" in
                  r.get("metrics", {})] for s in ("train", "valid", "train_running")}
    steps, losses = update_losses(records)
    if not steps and not any(epochs.values()):
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    if steps:
        ax.plot(steps, losses, color="0.75", lw=0.8, label="training loss per update")
    for split, style in (("train_running", ":"), ("train", "-o"), ("valid", "-s")):
        if epochs[split]:
            x, y = zip(*epochs[split])
            ax.plot(x, y, style, ms=3, label={"train_running": "training (running)", "train": "training (epoch)",
                                              "valid": "validation"}[split])
    ax.set_xlabel("update")
    ax.set_ylabel("loss")
    if all(v > 0 for _, v in epochs["train"] + epochs["valid"]) and all(v > 0 for v in losses):
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _series(probes: list[dict], key: str) -> tuple[list[int], np.ndarray] | None:
    rows = [(r["step"], r["diagnostics"][key]) for r in probes if key in r["diagnostics"]]
    if not rows:
        return None
    width = min(len(v) for _, v in rows)
    return [s for s, _ in rows], np.array([v[:width] for _, v in rows], dtype=float)


def gradient_flow_heatmap(records: list[dict], key: str, path, title: str | None = None, ax=None) -> Path | None:
    """log10 of a per-time-step norm (e.g. grad_flow.rnn.l0.dL_dh): time step k across, training step down."""
    data = _series(of_kind(records, "probe"), key)
    if data is None:
        return None
    plt = _pyplot()
    steps, values = data
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(7, 3.8))
    logs = np.log10(np.maximum(values, 1e-300))
    logs = np.maximum(logs, logs.max() - 12)  # 12 decades are enough to see a gradient vanish
    image = ax.imshow(logs, aspect="auto", cmap="viridis", interpolation="nearest",
                      extent=(0.5, values.shape[1] + 0.5, len(steps) - 0.5, -0.5))
    ticks = np.linspace(0, len(steps) - 1, min(len(steps), 6)).round().astype(int)
    ax.set_yticks(ticks, [str(steps[i]) for i in ticks])
    ax.set_xlabel("time step k")
    ax.set_ylabel("training update")
    ax.set_title(title or key)
    ax.figure.colorbar(image, ax=ax, label="log10 norm")
    return _save(ax.figure, path) if own else None


def jacobian_lines(records: list[dict], key: str, path) -> Path | None:
    """‖∂h_T/∂h_k‖ against k for the first, middle and last probes (log scale)."""
    data = _series(of_kind(records, "probe"), key)
    if data is None:
        return None
    plt = _pyplot()
    steps, values = data
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i in sorted({0, len(steps) // 2, len(steps) - 1}):
        ax.semilogy(np.arange(1, values.shape[1] + 1), np.maximum(values[i], 1e-30), label=f"update {steps[i]}")
    ax.set_xlabel("time step k")
    ax.set_ylabel("‖∂h_T/∂h_k‖₂")
    ax.set_title(key)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def scalar_lines(records: list[dict], kind: str, keys: list[str], path, ylabel: str, log: bool = False,
                 strip: str = "") -> Path | None:
    """Several scalar diagnostics (e.g. every gates.*.saturated key) against the training update."""
    rows = of_kind(records, kind)
    if not rows or not keys:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for key in keys:
        pts = [(r["step"], r["diagnostics"][key]) for r in rows if key in r["diagnostics"]]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, "-o", ms=2, label=key.replace(strip, ""))
    ax.set_xlabel("training update")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def clipping(records: list[dict], path) -> Path | None:
    """Gradient norm of every update before and after clipping, and the clipping rate per record."""
    rows = of_kind(records, "updates")
    if not rows:
        return None
    plt = _pyplot()
    d = {k: sum((r["diagnostics"][f"updates.{k}"] for r in rows), []) for k in ("step", "grad_norm",
                                                                               "grad_norm_clipped")}
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=(3, 1.3))
    ax.semilogy(d["step"], np.maximum(d["grad_norm"], 1e-30), lw=0.8, label="before clipping")
    ax.semilogy(d["step"], np.maximum(d["grad_norm_clipped"], 1e-30), lw=0.8, label="after clipping")
    ax.set_ylabel("‖g‖₂")
    ax.legend()
    ax.grid(alpha=0.3)
    ax2.plot([r["step"] for r in rows], [r["diagnostics"]["updates.clip_rate"] for r in rows], "-o", ms=2)
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_ylabel("clip rate")
    ax2.set_xlabel("update")
    ax2.grid(alpha=0.3)
    return _save(fig, path)


def read_records(run_dir) -> list[dict]:
    """RUN_DIR/metrics.jsonl, every record checked (rnnkit.report.records)."""
    from rnnkit.report.records import read_records as checked

    return checked(run_dir)


def gradient_flow_comparison(runs: dict[str, str], path, key: str = "dL_dh") -> Path:
    """Side-by-side gradient-flow heatmaps of several runs (e.g. {"rnn-tanh": dir1, "lstm": dir2})."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 3.8), squeeze=False)
    for ax, (label, run_dir) in zip(axes[0], runs.items()):
        records = read_records(run_dir)
        keys = sorted({k for r in of_kind(records, "probe") for k in r["diagnostics"]
                       if k.startswith("grad_flow.") and k.endswith(f".{key}")})
        if keys:
            gradient_flow_heatmap(records, keys[0], None, title=f"{label}: log10 ‖∂L/∂h_k‖", ax=ax)
    return _save(fig, path)
