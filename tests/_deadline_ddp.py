"""Run under torchrun (2 processes): each rank's fake clock ticks at its own pace (rank r: 1 + 9r seconds per
batch), max_minutes=1. The slower rank passes the deadline first; every rank must stop at that same step.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/_deadline_ddp.py RUN_DIR
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from _clock import FakeClock, Ticking, fit_with_clock  # noqa: E402
from _toy import build  # noqa: E402

from rnnkit.train import TrainConfig, Trainer  # noqa: E402


def main(run_dir: str) -> None:
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    clock = FakeClock()
    model, task, train, valid = build(seed=0)
    config = TrainConfig(epochs=3, optimizer="sgd", lr=0.5, device="cpu", progress=False, tensorboard=False,
                         log_every=0, max_minutes=1.0)
    with Trainer(model, task, Ticking(train, clock, 1.0 + 9.0 * rank), valid, config, run_dir) as trainer:
        history = fit_with_clock(trainer, clock)
    out = Path(run_dir) / f"rank{rank}.json"
    out.write_text(json.dumps({"steps": [h["step"] for h in history], "stopped": history[-1].get("stopped")}))


if __name__ == "__main__":
    main(sys.argv[1])
