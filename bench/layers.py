"""Forward+backward time of rnnkit's layers against torch.nn and a naive per-step loop, in one run.

    .venv/bin/python bench/layers.py                  # all four shapes, 7 interleaved repeats, medians
    .venv/bin/python bench/layers.py --shapes 0,1 --repeats 11 --threads 2
    .venv/bin/python bench/layers.py --quick          # smoke run: T capped at 8, one repeat

Each case times one training step: zero the gradients, ``out, _ = layer(x)``, ``out.backward(g)`` with x (T, B, I)
requiring grad (as after an embedding) and a fixed random g. Ratios compare medians measured in the same run,
with the two sides interleaved (see bench/_timing.py), so machine load mostly cancels out of them.

Rows and targets (issue 2):
    fused   rnnkit LSTM / GRU / RNN(tanh) vs torch.nn       speed = torch / rnnkit           >= 0.95
    loop    GRU reset="before", layer-norm LSTM vs torch.nn  time  = rnnkit / torch           <= 1.5 (big shapes)
    naive   per-step nn.LSTMCell loop on x[t] vs loop cells  speedup = naive / rnnkit          >= 3   (big shapes)
    info    the same loop cells with python_scan (autograd through every step), and rnnkit LSTM/GRU/RNN forced
            onto the loop path (use_fused=False), for comparison only.
    proj    LSTM with projections (proj_size = H/2, issue 17) vs torch.nn.LSTM(proj_size=H/2)  speed >= 0.95;
            and the same layer on the loop path (python_scan: no fast scan has projections yet), info only.
"""

from __future__ import annotations

import argparse
import sys

import torch
from _timing import add_common_args, apply_threads, compare, machine_line  # bench/ is on sys.path when run
from torch import nn

import rnnkit

SHAPES = [(100, 64, 256, 512), (35, 20, 200, 200), (50, 32, 128, 128), (200, 1, 64, 64)]
BIG = SHAPES[:2]  # "the two larger shapes" of the targets


class NaiveLSTM(nn.Module):
    """Typical user code: an nn.LSTMCell called once per step on x[t], outputs appended to a list."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size)

    def forward(self, x):
        h = c = x.new_zeros(x.shape[1], self.cell.hidden_size)
        outs = []
        for t in range(x.shape[0]):
            h, c = self.cell(x[t], (h, c))
            outs.append(h)
        return torch.stack(outs), (h, c)


def train_step(layer: nn.Module, x: torch.Tensor, g: torch.Tensor):
    """A closure running one forward+backward of ``layer`` on x with output gradient g."""

    def run():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = layer(x)
        out.backward(g)

    return run


def build(I: int, H: int) -> dict[str, nn.Module]:
    """Every layer timed, by name; rnnkit layers load the torch.nn twin's weights (same numbers, same init)."""
    layers = {
        "torch LSTM": nn.LSTM(I, H), "torch GRU": nn.GRU(I, H), "torch RNN": nn.RNN(I, H),
        "naive LSTMCell loop": NaiveLSTM(I, H),
        "LSTM": rnnkit.LSTM(I, H), "GRU": rnnkit.GRU(I, H), "RNN tanh": rnnkit.RNN(I, H),
        "GRU reset=before": rnnkit.GRU(I, H, reset="before"), "LN-LSTM": rnnkit.LSTM(I, H, cell="ln-lstm"),
        "GRU reset=before, python_scan": rnnkit.GRU(I, H, reset="before"),
        "LN-LSTM, python_scan": rnnkit.LSTM(I, H, cell="ln-lstm"),
        "LSTM, use_fused=False": rnnkit.LSTM(I, H), "GRU, use_fused=False": rnnkit.GRU(I, H),
        "RNN tanh, use_fused=False": rnnkit.RNN(I, H),
        "torch LSTM proj": nn.LSTM(I, H, proj_size=H // 2), "LSTM proj": rnnkit.LSTM(I, H, proj_size=H // 2),
        "LSTM proj, use_fused=False": rnnkit.LSTM(I, H, proj_size=H // 2),
    }
    for name in ("LSTM proj", "LSTM proj, use_fused=False"):
        layers[name].load_state_dict(layers["torch LSTM proj"].state_dict())
    for name in ("LSTM", "GRU", "RNN tanh", "LSTM, use_fused=False", "GRU, use_fused=False",
                 "RNN tanh, use_fused=False"):
        layers[name].load_state_dict(layers["torch " + name.split(",")[0].split()[0]].state_dict())
    for name, layer in layers.items():
        if "python_scan" in name:
            layer.use_fast_scan = False
        if "use_fused=False" in name:
            layer.use_fused = False
    return layers


# (kind, ours, baseline, ratio as "speed" = base/ours or "time" = ours/base, target, big shapes only)
ROWS = [
    ("fused", "LSTM", "torch LSTM", "speed", 0.95, False),
    ("fused", "GRU", "torch GRU", "speed", 0.95, False),
    ("fused", "RNN tanh", "torch RNN", "speed", 0.95, False),
    ("loop", "GRU reset=before", "torch GRU", "time", 1.5, True),
    ("loop", "LN-LSTM", "torch LSTM", "time", 1.5, True),
    ("naive", "GRU reset=before", "naive LSTMCell loop", "speed", 3.0, True),
    ("naive", "LN-LSTM", "naive LSTMCell loop", "speed", 3.0, True),
    ("info", "GRU reset=before, python_scan", "torch GRU", "time", None, False),
    ("info", "LN-LSTM, python_scan", "torch LSTM", "time", None, False),
    ("info", "LSTM, use_fused=False", "torch LSTM", "time", None, False),
    ("info", "GRU, use_fused=False", "torch GRU", "time", None, False),
    ("info", "RNN tanh, use_fused=False", "torch RNN", "time", None, False),
    ("proj", "LSTM proj", "torch LSTM proj", "speed", 0.95, False),
    ("info", "LSTM proj, use_fused=False", "torch LSTM proj", "time", None, False),
]


def bench_shape(shape, repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds of every layer at one (T, B, I, H), all interleaved in one round-robin."""
    T, B, I, H = shape
    torch.manual_seed(0)
    layers = build(I, H)
    x = torch.randn(T, B, I, requires_grad=True)
    g, g_proj = torch.randn(T, B, H), torch.randn(T, B, H // 2)  # output gradients: (T, B, H) or (T, B, P)
    steps = {name: train_step(layer, x, g_proj if "proj" in name else g) for name, layer in layers.items()}
    return compare(steps, repeats, warmup)


def verdict(ratio: float, kind: str, target: float | None, applies: bool) -> str:
    if target is None or not applies:
        return ""
    ok = ratio >= target if kind == "speed" else ratio <= target
    return "ok" if ok else "MISS"


def table(results: dict[tuple, dict[str, float]]) -> list[str]:
    """Markdown rows: shape, group, case, ms, baseline, ms, ratio, target, verdict."""
    lines = ["| T, B, I, H | group | rnnkit case | ms | baseline | ms | ratio | target | |",
             "|---|---|---|---:|---|---:|---:|---|---|"]
    for shape, times in results.items():
        for group, ours, base, kind, target, big_only in ROWS:
            t_ours, t_base = times[ours], times[base]
            ratio = t_base / t_ours if kind == "speed" else t_ours / t_base
            label = "speed" if kind == "speed" else "time"
            want = "" if target is None else (f">= {target}x" if kind == "speed" else f"<= {target}x")
            if target is not None and big_only:
                want += " (big)"
            ok = verdict(ratio, kind, target, shape in BIG or not big_only)
            lines.append(f"| {', '.join(map(str, shape))} | {group} | {ours} | {1e3 * t_ours:.1f} | {base} | "
                         f"{1e3 * t_base:.1f} | {ratio:.2f}x {label} | {want} | {ok} |")
    return lines


def parse_shapes(text: str | None) -> list[tuple[int, ...]]:
    """'0,1' (indices into SHAPES) or '100x64x256x512,35x20x200x200'."""
    if not text:
        return SHAPES
    shapes = []
    for part in text.split(","):
        if "x" in part:
            shapes.append(tuple(int(v) for v in part.split("x")))
        else:
            shapes.append(SHAPES[int(part)])
    for s in shapes:
        if len(s) != 4:
            raise SystemExit(f"--shapes: expected T x B x I x H (4 numbers), got {s}")
    return shapes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--shapes", help="subset: indices 0-3 of the standard shapes, or TxBxIxH, comma-separated")
    parser.add_argument("--quick", action="store_true", help="smoke run: T capped at 8, one repeat, no warm-up")
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    shapes = parse_shapes(args.shapes)
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    if args.quick:
        shapes = [(min(T, 8), B, I, H) for T, B, I, H in shapes]
    print(f"# {machine_line()}; {repeats} repeats (median), {warmup} warm-up; forward+backward per step")
    results = {}
    for shape in shapes:
        results[shape] = bench_shape(shape, repeats, warmup)
        print(f"# done {shape}", file=sys.stderr, flush=True)
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
