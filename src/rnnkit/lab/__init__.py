"""rnnkit.lab: the lectures' long-range problems, to watch vanishing/exploding gradients and their fixes.

>>> from rnnkit.lab import LabDataConfig, LabModelConfig, fit
>>> from rnnkit.train import TrainConfig
>>> result = fit("runs/adding", LabDataConfig("adding", length=100), LabModelConfig("adding", cell="irnn"),
...              TrainConfig(epochs=20, optimizer="adam", lr=1e-3, clip=1.0), diagnostics_every=50)  # doctest: +SKIP
>>> print(result.line("adding"))       # test mse 0.0021 (baseline 0.1667: predict 1: MSE 1/6)  # doctest: +SKIP
"""
from rnnkit.lab.generators import (
    LabBatch,
    SyntheticBatches,
    adding,
    copy_memory,
    digits_batches,
    larger_stream,
    load_digits_sequences,
    permutation,
    sum_over_time,
)
from rnnkit.lab.tasks import (
    PROBLEMS,
    LabDataConfig,
    LabModel,
    LabModelConfig,
    LabResult,
    LabTask,
    Problem,
    fit,
    get_problem,
)

__all__ = [
    "PROBLEMS", "LabBatch", "LabDataConfig", "LabModel", "LabModelConfig", "LabResult", "LabTask", "Problem",
    "SyntheticBatches", "adding", "copy_memory", "digits_batches", "fit", "get_problem", "larger_stream",
    "load_digits_sequences", "permutation", "sum_over_time",
]
