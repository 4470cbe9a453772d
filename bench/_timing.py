"""Shared timing helper for bench/ scripts: medians of interleaved repeats, robust on a noisy shared machine.

    times = compare({"ours": run_ours, "torch": run_torch}, repeats=7, warmup=1)   # seconds, medians

The candidates are run round-robin (ours, torch, ours, torch, ...) rather than one block after the other, so a
burst of load from another process on the machine slows both sides of a ratio instead of one of them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch


def time_once(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, run interleaved: ``warmup`` untimed rounds, then ``repeats``."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(time_once(fn))
    return {name: statistics.median(s) for name, s in samples.items()}


def add_common_args(parser: argparse.ArgumentParser, repeats: int = 7) -> None:
    """--repeats, --warmup, --threads: the options every bench script takes."""
    parser.add_argument("--repeats", type=int, default=repeats, help="timed repeats per case (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads if asked; return the number in use."""
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def machine_line() -> str:
    """One line saying what the numbers were measured on."""
    import os
    import platform

    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
            f"{platform.machine()}, Python {platform.python_version()}")
