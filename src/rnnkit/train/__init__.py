"""rnnkit.train: one Trainer for every task (optimization, TBPTT, checkpoints, logging, DDP).

The Trainer needs from a task only what docs/dev/contracts.md ("Trainer") lists: a model whose
``forward(batch, state=None)`` returns an object with ``loss``, ``state`` and ``stats``; ``Batches`` objects
(``len``, ``get(i, epoch)``, ``carries_state``, ``shard``); and ``task.summarize(totals)`` /
``task.monitor`` / ``task.monitor_mode``.

>>> from rnnkit.train import Trainer, TrainConfig
>>> trainer = Trainer(model, task, train_batches, valid_batches, TrainConfig(epochs=3), "runs/demo")  # doctest: +SKIP
>>> history = trainer.fit()            # or trainer.fit(resume=True) to continue an interrupted run  # doctest: +SKIP
>>> trainer.evaluate(test_batches)     # {"loss": ..., "ppl": ...}  # doctest: +SKIP
"""

from rnnkit.nn.state import detach_tree, move_to
from rnnkit.train.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    atomic_write_json,
    load_weights,
    read_json,
    save_weights,
    update_config_json,
)
from rnnkit.train.config import TrainConfig
from rnnkit.train.trainer import Trainer, TrainingDiverged, evaluate, seed_everything

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "atomic_write_bytes",
    "atomic_write_json",
    "detach_tree",
    "evaluate",
    "load_weights",
    "move_to",
    "read_json",
    "save_weights",
    "seed_everything",
    "update_config_json",
]
