"""minGRU on rnnkit's linear scan vs torch.nn.GRU / LSTM, the log-space minGRU and its own GEMM floor (issue 16).

    flock /tmp/rnnkit-bench.lock .venv/bin/python bench/parallel_scan.py --threads 1
    .venv/bin/python bench/parallel_scan.py --lengths 128 512 --repeats 3 --threads 1     # a shorter run
    .venv/bin/python bench/parallel_scan.py --quick                                        # smoke run

Each case times one training step of a layer with I = H = 256, B = 16: ``out, _ = layer(x)``, ``out.backward(g)``
with x (T, B, I) requiring grad and a fixed random g. Medians of interleaved repeats (bench/_timing.py), all
candidates measured in the same run:

    minGRU       rnnkit.Recurrent("mingru"): one (T·B, I) x (I, 2H) GEMM, then the CPU linear scan
    GRU, LSTM    torch.nn.GRU / torch.nn.LSTM (oneDNN's fused kernels)
    log-space    the same minGRU written the log-space way (Heinsen 2023; the paper's parallel listing):
                 log-coefficients cumsum'd, values logcumsumexp'd along time, on the same weights
    GEMM floor   the minGRU's projection alone, F.linear(x, U, b) (the (z, h̃) GEMMs), forward + backward
    minLSTM      rnnkit.Recurrent("minlstm") (info);  HS parallel: the minGRU with linear_scan(method="parallel")
                 on the CPU (info: the GPU path's algorithm run where it does not pay)

Goals (issue 16, T = 2048): GRU / minGRU >= 3.5, minGRU / floor <= 1.5, log-space / minGRU >= 5, time linear in T.
"""

from __future__ import annotations

import argparse
import resource
import sys

import torch
import torch.nn.functional as F
from _timing import add_common_args, apply_threads, compare, machine_line  # bench/ is on sys.path when run

from rnnkit import Recurrent
from rnnkit.nn.minimal import parallel_min_scan

B, H = 16, 256


def log_g(x: torch.Tensor) -> torch.Tensor:
    """log g(x): log(x + 0.5) for x ≥ 0, log σ(x) = −softplus(−x) for x < 0 (the paper's listing)."""
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


class LogSpaceMinGRU(torch.nn.Module):
    """minGRU in log space (Feng et al. 2024, appendix; Heinsen 2023's scan), time-major, weights of ``layer``."""

    def __init__(self, layer: Recurrent):
        super().__init__()
        self.weight, self.bias = layer.weight_ih_l0, layer.bias_ih_l0

    def forward(self, x: torch.Tensor):
        k, a_h = F.linear(x, self.weight, self.bias).chunk(2, dim=-1)  # (T, B, H) each
        log_z, log_coeffs = -F.softplus(-k), -F.softplus(k)  # log z, log (1 − z)
        log_values = log_z + log_g(a_h)  # log (z ⊙ h̃)
        # h_0 = 0: log h_0 = −inf contributes nothing, so the scan starts at the first step
        a_star = torch.cumsum(log_coeffs, dim=0)
        log_h = a_star + torch.logcumsumexp(log_values - a_star, dim=0)
        return log_h.exp(), None


class Floor(torch.nn.Module):
    """The minGRU's input projection alone: U x + b, (T, B, 2H)."""

    def __init__(self, layer: Recurrent):
        super().__init__()
        self.weight, self.bias = layer.weight_ih_l0, layer.bias_ih_l0

    def forward(self, x):
        return F.linear(x, self.weight, self.bias), None


class HillisSteele(torch.nn.Module):
    def __init__(self, layer: Recurrent):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        cell = self.layer.cells[0]
        return parallel_min_scan(cell, cell.project(x), x.new_zeros(x.shape[1], H))


def train_step(layer, x, grads):
    def run():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = layer(x)
        out.backward(grads[out.shape[-1]])

    return run


def cpu_split(fn, T: int) -> tuple[float, float, float]:
    """One call of ``fn``: (user µs, system µs, page faults) per time step, from getrusage. On a shared machine
    the process's own CPU time is what its code costs; the system part is mostly first-touch page faults."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return ((after.ru_utime - before.ru_utime) / T * 1e6, (after.ru_stime - before.ru_stime) / T * 1e6,
            (after.ru_minflt - before.ru_minflt) / T)


def check_equal(ours, log_space, x) -> float:
    """max |h_minGRU − h_log-space| / max |h|: both compute the same model."""
    with torch.no_grad():
        a, _ = ours(x)
        b, _ = log_space(x)
    return float((a - b).abs().max() / a.abs().max())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048, 8192])
    parser.add_argument("--quick", action="store_true", help="smoke run: T = 16, 64; one repeat")
    parser.add_argument("--no-info", action="store_true", help="leave out the info rows (minLSTM, HS parallel)")
    parser.add_argument("--long-repeats", type=int, default=2, help="timed repeats at T >= 8192 (each ~1 min)")
    add_common_args(parser, repeats=5)
    args = parser.parse_args(argv)
    threads = apply_threads(args.threads)
    lengths, repeats = ([16, 64], 1) if args.quick else (args.lengths, args.repeats)
    torch.manual_seed(0)
    ours = Recurrent("mingru", H, H)
    cands = {"minGRU": ours, "GRU": torch.nn.GRU(H, H), "LSTM": torch.nn.LSTM(H, H),
             "log-space": LogSpaceMinGRU(ours), "GEMM floor": Floor(ours), "minLSTM": Recurrent("minlstm", H, H),
             "HS parallel": HillisSteele(ours)}
    if args.no_info:
        del cands["minLSTM"], cands["HS parallel"]
    print(f"# bench/parallel_scan.py: {machine_line()} (threads={threads}); B={B}, I=H={H}, forward+backward, "
          f"medians of {repeats} interleaved repeats ({args.long_repeats} at T >= 8192) after {args.warmup} "
          "warm-up round(s); seconds per training step")
    print(f"# minGRU == log-space minGRU (relative max difference at T=64): "
          f"{check_equal(ours, cands['log-space'], torch.randn(64, B, H)):.1e}")
    print("| T | minGRU | GEMM floor | GRU | LSTM | log-space | minLSTM | HS parallel | GRU/minGRU | LSTM/minGRU "
          "| log-space/minGRU | minGRU/floor | minGRU µs/step | floor µs/step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    splits = []
    for T in lengths:
        x = torch.randn(T, B, H, requires_grad=True)
        grads = {H: torch.randn(T, B, H), 2 * H: torch.randn(T, B, 2 * H)}
        n = repeats if T < 8192 else max(1, min(repeats, args.long_repeats))
        t = compare({name: train_step(m, x, grads) for name, m in cands.items()}, repeats=n, warmup=1)
        m = t["minGRU"]
        info = " | ".join(f"{t[k]:.4f}" if k in t else "—" for k in ("minLSTM", "HS parallel"))
        print(f"| {T} | {m:.4f} | {t['GEMM floor']:.4f} | {t['GRU']:.3f} | {t['LSTM']:.3f} | {t['log-space']:.3f} "
              f"| {info} | {t['GRU'] / m:.1f}x | {t['LSTM'] / m:.1f}x "
              f"| {t['log-space'] / m:.1f}x | {m / t['GEMM floor']:.2f} | {m / T * 1e6:.0f} "
              f"| {t['GEMM floor'] / T * 1e6:.0f} |", flush=True)
        fns = {k: train_step(cands[k], x, grads) for k in ("minGRU", "GEMM floor")}
        splits.append((T, {k: min((cpu_split(f, T) for _ in range(2)), key=lambda v: v[0] + v[1])
                           for k, f in fns.items()}))
    print("\n# process CPU time per step of one training step (the lesser of 2 calls): user / system µs, page faults")
    print("| T | minGRU user | minGRU sys | minGRU faults | floor user | floor sys | floor faults | user ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for T, sp in splits:
        m, f = sp["minGRU"], sp["GEMM floor"]
        print(f"| {T} | {m[0]:.0f} | {m[1]:.0f} | {m[2]:.1f} | {f[0]:.0f} | {f[1]:.0f} | {f[2]:.1f} "
              f"| {m[0] / f[0]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
