"""The main job (`rnnkit demo`, `make demo`): a character-level LSTM on the bundled tiny Shakespeare,
trained for a few minutes on CPU, then its validation bits per character and a 300-character sample.

The budget is a deadline (TrainConfig.max_minutes), checked after every step: up to 4 full epochs (the lr
halved for the last one), and when the minutes run out first the epoch ends there, is evaluated once and
checkpointed, and training stops. So the demo ends within its budget plus one evaluation however loaded the
machine is; a slower machine trains on fewer windows.

Equivalent to

    rnnkit train lm --level char --cell lstm --layers 2 --hidden 256 --emb 64 --bptt 64 --batch-size 32 \
        --init-range 0.08 --optimizer adam --lr 3e-3 --clip 5 --lr-schedule step --lr-factor 0.5 \
        --lr-decay-start 3 --epochs 4 --max-minutes 3 --out runs/demo   # (and eval batch size 64)
    rnnkit sample runs/demo --prime "ROMEO:" --length 300 --temperature 0.8 --seed 0
"""
from __future__ import annotations

import time

from rnnkit.generate import SamplingOptions
from rnnkit.tasks import lm
from rnnkit.train import TrainConfig


def run_demo(run_dir="runs/demo", minutes: float = 3.0, epochs: int = 4, seed: int = 0) -> dict:
    """Train, evaluate the best checkpoint on the held-back 10% of the text, sample. Returns the numbers."""
    data = lm.LMDataConfig(level="char", batch_size=32, bptt=64, eval_batch_size=64)
    corpus = data.load()
    model_config = lm.RNNLMConfig(vocab_size=len(corpus.vocab), cell="lstm", layers=2, hidden=256, emb=64,
                                  dropout=0.0, init_range=0.08)
    train = TrainConfig(epochs=epochs, optimizer="adam", lr=3e-3, clip=5.0, seed=seed, device="cpu",
                        lr_schedule="step", lr_factor=0.5, lr_decay_start=epochs - 1, max_minutes=minutes,
                        log_every=50)
    start = time.perf_counter()
    history = lm.fit(run_dir, data, model_config, train, corpus, overwrite=True)  # `make demo` again: a new demo
    train_minutes = (time.perf_counter() - start) / 60
    best = min((h["valid"] for h in history), key=lambda m: m["loss"])
    run = lm.load_run(run_dir)
    sample = lm.sample_text(run, "ROMEO:", 300, 1, SamplingOptions(temperature=0.8), seed=seed)[0]
    serve = f"rnnkit serve {run_dir}"  # the playground of this run: http://127.0.0.1:8000/ (the CLI prints it last)
    return {"valid_loss": best["loss"], "valid_bpc": best["bpc"], "train_minutes": train_minutes,
            "stopped": history[-1].get("stopped"), "history": history, "sample": sample, "serve": serve}
