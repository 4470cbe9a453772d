"""Trainer behaviour against independent oracles: a hand-written PyTorch loop, torch's own LR scheduler,
an uninterrupted run (for resume), the paper's schedules."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from _clock import FakeClock, Ticking, fit_with_clock
from _toy import Crash, CrashingBatches, ToyLM, build

from rnnkit.train import TrainConfig, Trainer, TrainingDiverged, load_weights
from rnnkit.train.checkpoint import load_checkpoint
from rnnkit.train.progress import read_metrics


def config(**overrides) -> TrainConfig:
    base = dict(epochs=2, optimizer="sgd", lr=0.5, device="cpu", progress=False, tensorboard=False, log_every=0,
                seed=3)
    base.update(overrides)
    return TrainConfig(**base)


def params_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def hand_loop(model, train, epochs, opt, clip_mode, clip):
    """Truncated BPTT written out in plain PyTorch: carry the state, detach it, reset it every epoch."""
    norms = []
    for epoch in range(epochs):
        state = None
        for i in range(len(train)):
            out = model(train.get(i, epoch), state)
            opt.zero_grad()
            out.loss.backward()
            norms.append(float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])))
            if clip_mode == "norm":
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            elif clip_mode == "value":
                torch.nn.utils.clip_grad_value_(model.parameters(), clip)
            opt.step()
            state = tuple(s.detach() for s in out.state)
    return norms


@pytest.mark.parametrize("clip_mode,clip", [("norm", 1.0), ("value", 0.05), ("none", 5.0)])
def test_tbptt_and_clipping_match_a_hand_written_loop(tmp_path, clip_mode, clip):
    model, task, train, valid = build(seed=0)
    oracle = copy.deepcopy(model)
    history = Trainer(model, task, train, valid, config(momentum=0.9, clip_mode=clip_mode, clip=clip),
                      tmp_path).fit()
    norms = hand_loop(oracle, train, 2, torch.optim.SGD(oracle.parameters(), lr=0.5, momentum=0.9), clip_mode, clip)
    assert params_equal(model, oracle)
    train_records = [r for r in read_metrics(tmp_path) if r["split"] == "train"]
    n = len(train)
    for epoch, record in enumerate(train_records):
        epoch_norms = norms[epoch * n : (epoch + 1) * n]
        assert record["grad_norm"] == pytest.approx(sum(epoch_norms) / n, rel=1e-6)
        if clip_mode == "norm":
            assert record["clipped"] == pytest.approx(sum(x > clip for x in epoch_norms) / n)
    if clip_mode == "none":
        assert all(r["clipped"] == 0 for r in train_records)
    else:
        assert train_records[0]["clipped"] > 0  # the settings above do clip, so the check has teeth
    assert len(history) == 2


def test_evaluate_equals_mean_token_nll_with_carried_state(tmp_path):
    model, task, train, valid = build(seed=1)
    trainer = Trainer(model, task, train, valid, config(epochs=0), tmp_path)
    metrics = trainer.evaluate(valid)
    x, y = valid.x, valid.y  # the whole validation stream in one forward == windows with the state carried
    with torch.no_grad():
        h, _ = model.rnn(model.embed(x))
        nll = torch.nn.functional.cross_entropy(model.head(h).flatten(0, 1), y.flatten(), reduction="mean")
    assert metrics["loss"] == pytest.approx(float(nll), rel=1e-5)
    assert metrics["ppl"] == pytest.approx(math.exp(float(nll)), rel=1e-5)


def test_same_seed_same_losses_different_seed_different_losses(tmp_path):
    def run(seed, sub):
        model, task, train, valid = build(seed=0, dropout=0.3)
        return Trainer(model, task, train, valid, config(optimizer="adam", lr=0.01, seed=seed), tmp_path / sub).fit()

    a, b, c = run(5, "a"), run(5, "b"), run(6, "c")
    assert [h["train"] for h in a] == [h["train"] for h in b]
    assert [h["valid"] for h in a] == [h["valid"] for h in b]
    assert a[0]["train"] != c[0]["train"]  # the seed drives dropout


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad"])
def test_resume_mid_epoch_reaches_the_same_losses_and_weights(tmp_path, optimizer):
    cfg = config(epochs=3, optimizer=optimizer, lr=0.01 if optimizer != "sgd" else 0.5, momentum=0.5 * (
        optimizer in ("sgd", "rmsprop")), checkpoint_every=5, lr_schedule="plateau", log_every=3)
    model, task, train, valid = build(seed=0, dropout=0.3)
    full = Trainer(model, task, train, valid, cfg, tmp_path / "full").fit()

    model2, task, train, valid = build(seed=0, dropout=0.3)
    with pytest.raises(Crash):
        Trainer(model2, task, CrashingBatches(train, 1, 13), valid, cfg, tmp_path / "cut").fit()
    saved = load_checkpoint(tmp_path / "cut" / "checkpoint.safetensors")
    assert (saved["epoch"], saved["next_batch"]) == (1, 10)  # the last mid-epoch checkpoint before batch 13

    fresh = ToyLM(dropout=0.3)  # different initial weights: everything must come from the checkpoint
    resumed = Trainer(fresh, task, train, valid, cfg, tmp_path / "cut").fit(resume=True)
    assert resumed == full
    assert params_equal(fresh, model)
    full_log = [(r["split"], r["step"], r["metrics"]) for r in read_metrics(tmp_path / "full")]
    cut_log = [(r["split"], r["step"], r["metrics"]) for r in read_metrics(tmp_path / "cut")]
    assert cut_log == full_log  # no duplicated or missing records after the resume


def test_nan_loss_stops_with_the_position_and_keeps_the_last_good_checkpoint(tmp_path):
    class NaNAt(ToyLM):
        calls = 0

        def forward(self, batch, state=None):
            out = super().forward(batch, state)
            if self.training:
                NaNAt.calls += 1
                if NaNAt.calls == n + 6:  # epoch 2, batch index 5
                    out.loss = out.loss * float("nan")
            return out

    _, task, train, valid = build(seed=0)
    n = len(train)
    torch.manual_seed(0)
    model = NaNAt()
    with pytest.raises(TrainingDiverged) as err:
        Trainer(model, task, train, valid, config(epochs=3), tmp_path / "nan").fit()
    assert (err.value.epoch, err.value.batch) == (2, 5)
    assert "epoch 2, batch 5" in str(err.value) and "checkpoint.safetensors" in str(err.value)

    reference, task, train, valid = build(seed=0)
    Trainer(reference, task, train, valid, config(epochs=1), tmp_path / "one").fit()
    kept = ToyLM()
    load_weights(tmp_path / "nan" / "weights.safetensors", kept)
    assert params_equal(kept, reference)  # the epoch-1 weights, untouched by the NaN step
    assert load_checkpoint(tmp_path / "nan" / "checkpoint.safetensors")["epoch"] == 1


class ConstantMonitor:
    """A task whose monitored metric never improves after the first epoch."""

    monitor, monitor_mode = "score", "min"

    @staticmethod
    def summarize(totals):
        return {"loss": totals["nll"] / totals["tokens"], "score": 1.0}


def test_plateau_schedule_matches_torch_reduce_lr_on_plateau(tmp_path):
    model, _, train, valid = build(seed=0)
    cfg = config(epochs=7, lr=0.1, lr_schedule="plateau", lr_factor=0.5, lr_patience=1)
    history = Trainer(model, ConstantMonitor(), train, valid, cfg, tmp_path).fit()
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    expected = []
    for _ in range(7):
        expected.append(opt.param_groups[0]["lr"])
        sched.step(1.0)
    assert [h["lr"] for h in history] == pytest.approx(expected)
    assert expected[-1] < 0.1  # it did decay


def test_step_schedule_is_zarembas_halving_after_epoch_4(tmp_path):
    model, task, train, valid = build(seed=0, n=201)
    cfg = config(epochs=7, lr=1.0, lr_schedule="step", lr_factor=0.5, lr_decay_start=4)
    history = Trainer(model, task, train, valid, cfg, tmp_path).fit()
    assert [h["lr"] for h in history] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    model, _, train, valid = build(seed=0, n=201)
    history = Trainer(model, ConstantMonitor(), train, valid, config(epochs=10, early_stopping=2), tmp_path).fit()
    assert [h["improved"] for h in history] == [True, False, False]
    best, last = ToyLM(), ToyLM()
    load_weights(tmp_path / "best.safetensors", best)
    load_weights(tmp_path / "weights.safetensors", last)
    assert not params_equal(best, last)  # best = epoch 1, last = epoch 3


def test_best_checkpoint_follows_the_monitored_validation_metric(tmp_path):
    model, task, train, valid = build(seed=0)
    history = Trainer(model, task, train, valid, config(epochs=3, optimizer="adam", lr=0.01), tmp_path).fit()
    best_epoch = min(history, key=lambda h: h["valid"]["loss"])["epoch"]
    trainer = Trainer(ToyLM(), task, train, valid, config(epochs=0), None)
    load_weights(tmp_path / "best.safetensors", trainer.model)
    assert trainer.evaluate(valid)["loss"] == pytest.approx(history[best_epoch - 1]["valid"]["loss"], rel=1e-6)


def test_metrics_jsonl_has_one_train_and_valid_record_per_epoch_matching_history(tmp_path):
    model, task, train, valid = build(seed=0)
    history = Trainer(model, task, train, valid, config(epochs=2, log_every=4), tmp_path).fit()
    records = read_metrics(tmp_path)
    for split in ("train", "valid"):
        per_epoch = [r for r in records if r["split"] == split]
        assert [r["metrics"] for r in per_epoch] == [h[split] for h in history]
        assert [r["step"] for r in per_epoch] == [h["step"] for h in history]
    running = [r for r in records if r["split"] == "train_running"]
    assert [r["step"] for r in running] == list(range(4, history[-1]["step"] + 1, 4))
    assert all(r["tokens_per_second"] > 0 for r in running)


def test_bad_inputs_are_rejected_with_what_was_expected(tmp_path):
    model, task, train, valid = build(seed=0)
    with pytest.raises(TypeError, match="Batches protocol"):
        Trainer(model, task, [1, 2, 3], valid, config(), tmp_path)
    with pytest.raises(TypeError, match="summarize"):
        Trainer(model, object(), train, valid, config(), tmp_path)
    with pytest.raises(ValueError, match="task.monitor is 'bpc'"):
        bad = type("T", (), {"monitor": "bpc", "summarize": staticmethod(lambda t: {"loss": 1.0})})()
        Trainer(model, bad, train, valid, config(epochs=1), tmp_path / "m").fit()
    with pytest.raises(Exception, match="no checkpoint to resume from"):
        Trainer(model, task, train, valid, config(), tmp_path / "empty").fit(resume=True)
    with pytest.raises(ValueError, match="train_batches has no batch"):
        Trainer(model, task, build(n=3)[2], valid, config(), tmp_path)


def test_resuming_with_a_changed_optimization_setting_warns(tmp_path):
    model, task, train, valid = build(seed=0, n=201)
    Trainer(model, task, train, valid, config(epochs=1), tmp_path).fit()
    with pytest.warns(UserWarning, match=r"lr: 0.5 -> 0.25"):
        Trainer(model, task, train, valid, config(epochs=2, lr=0.25), tmp_path).fit(resume=True)


class ShuffledPairs:
    """Non-sequential data (a classification task): each epoch a new order; no state is carried."""

    carries_state = False

    def __init__(self, x, y, batch_size, seed=0):
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def get(self, i, epoch):
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.seed + epoch))
        idx = order[i * self.batch_size : (i + 1) * self.batch_size]
        return {"x": self.x[idx], "y": self.y[idx]}

    def shard(self, rank, world_size):
        return ShuffledPairs(self.x[rank::world_size], self.y[rank::world_size], self.batch_size, self.seed)


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))

    def forward(self, batch):  # no `state` argument: the Trainer must not pass one
        logits = self.net(batch["x"])
        loss = torch.nn.functional.cross_entropy(logits, batch["y"])
        correct = (logits.argmax(-1) == batch["y"]).sum()
        return type("Out", (), {"loss": loss, "state": None,
                                "stats": {"loss_sum": loss.detach() * len(batch["y"]), "correct": correct,
                                          "n": len(batch["y"])}})()


class Accuracy:
    monitor, monitor_mode = "accuracy", "max"

    @staticmethod
    def summarize(t):
        return {"loss": t["loss_sum"] / t["n"], "accuracy": t["correct"] / t["n"]}


def test_non_sequential_task_matches_a_hand_loop_and_keeps_the_max_accuracy_as_best(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(90, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()
    train, valid = ShuffledPairs(x[:60], y[:60], 16), ShuffledPairs(x[60:], y[60:], 16)
    torch.manual_seed(0)
    model = Classifier()
    oracle = copy.deepcopy(model)
    cfg = config(epochs=6, optimizer="adam", lr=0.05, weight_decay=1e-3, clip_mode="value", clip=0.5)
    history = Trainer(model, Accuracy(), train, valid, cfg, tmp_path).fit()

    opt = torch.optim.Adam(oracle.parameters(), lr=0.05, weight_decay=1e-3)
    for epoch in range(6):
        for i in range(len(train)):
            opt.zero_grad()
            oracle(train.get(i, epoch)).loss.backward()
            torch.nn.utils.clip_grad_value_(oracle.parameters(), 0.5)
            opt.step()
    assert params_equal(model, oracle)
    accuracies = [h["valid"]["accuracy"] for h in history]
    running_max = [max(accuracies[: i + 1]) for i in range(len(accuracies))]
    assert [h["improved"] for h in history] == [
        i == 0 or accuracies[i] > running_max[i - 1] for i in range(len(accuracies))]
    best = Classifier()
    load_weights(tmp_path / "best.safetensors", best)
    trainer = Trainer(best, Accuracy(), train, valid, config(epochs=0), None)
    assert trainer.evaluate(valid)["accuracy"] == max(accuracies)


# ---- max_minutes: a deadline checked after every step (a fake clock: batches advance it, nothing is timed)

def test_deadline_ends_the_epoch_after_the_step_that_passes_it_then_evaluates_and_checkpoints(tmp_path):
    clock = FakeClock()
    model, task, train, valid = build(seed=0)
    n = len(train)  # 24 batches per epoch, 10 s each on the fake clock: 60 s pass at step 6
    history = fit_with_clock(Trainer(model, task, Ticking(train, clock, 10.0), valid,
                                     config(epochs=3, max_minutes=1.0), tmp_path), clock)
    assert n > 6 and len(history) == 1
    assert (history[0]["step"], history[0]["stopped"]) == (6, "deadline")
    assert history[0]["train"]["tokens"] == 6 * 4 * 10  # the epoch's metrics cover exactly the 6 batches

    # oracle: the same run told to train on only the first 6 batches, without any deadline
    model2, task, train2, valid2 = build(seed=0)
    short = Trainer(model2, task, Ticking(train2, FakeClock(), 0.0, limit=6), valid2, config(epochs=1), None).fit()
    assert history[0]["train"] == short[0]["train"] and history[0]["valid"] == short[0]["valid"]
    assert params_equal(model, model2)

    # evaluated once, checkpointed at step 6, and the log says why it stopped
    records = read_metrics(tmp_path)
    assert [r["split"] for r in records] == ["train", "valid"]
    assert records[0]["stopped"] == "deadline" and records[0]["step"] == 6
    saved = ToyLM()
    load_weights(tmp_path / "weights.safetensors", saved)
    assert params_equal(saved, model)
    state = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert (state["step"], state["stopped"]) == (6, True)
    # a stopped run stays stopped: resuming trains nothing more
    again = fit_with_clock(Trainer(ToyLM(), task, Ticking(train, clock, 10.0), valid,
                                   config(epochs=3, max_minutes=1.0), tmp_path), clock, resume=True)
    assert again == history


def test_deadline_passed_during_an_evaluation_stops_before_the_next_epoch():
    clock = FakeClock()
    model, task, train, valid = build(seed=0)
    # training an epoch: 24 x 1 s; evaluating: 6 x 10 s -> 84 s after epoch 1, past the 60 s deadline
    trainer = Trainer(model, task, Ticking(train, clock, 1.0), Ticking(valid, clock, 10.0),
                      config(epochs=3, max_minutes=1.0), None)
    history = fit_with_clock(trainer, clock)
    assert [h["step"] for h in history] == [len(train)]
    assert history[-1]["stopped"] == "deadline" and trainer.stop_reason == "deadline"


def test_no_deadline_or_one_never_reached_trains_every_epoch_unchanged(tmp_path):
    runs = []
    for minutes in (None, 1e6):
        clock = FakeClock()
        model, task, train, valid = build(seed=0)
        runs.append(fit_with_clock(Trainer(model, task, Ticking(train, clock, 10.0), valid,
                                           config(epochs=2, max_minutes=minutes), None), clock))
    assert runs[0] == runs[1] and len(runs[0]) == 2 and all("stopped" not in h for h in runs[0])


def test_a_resumed_run_counts_the_training_time_already_spent(tmp_path):
    clock = FakeClock()
    model, task, train, valid = build(seed=0)
    ticking = Ticking(train, clock, 10.0)
    fit_with_clock(Trainer(model, task, ticking, valid, config(epochs=1), tmp_path), clock)  # 240 s
    clock.now += 3600.0  # time between the two processes is not training time
    trainer = Trainer(ToyLM(), task, ticking, valid, config(epochs=3, max_minutes=5.0), tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # epochs and max_minutes are free to change on resume
        history = fit_with_clock(trainer, clock, resume=True)
    # 240 s spent + 6 steps x 10 s = the 300 s deadline, in epoch 2
    assert [h["step"] for h in history] == [24, 30] and history[-1]["stopped"] == "deadline"


def test_max_minutes_and_diagnostics_every_are_validated():
    for bad in (0, -1.0, float("nan"), float("inf"), "3", True):
        with pytest.raises(ValueError, match="max_minutes"):
            TrainConfig(max_minutes=bad)
    for bad in (-1, 1.5, "10"):
        with pytest.raises(ValueError, match="diagnostics_every"):
            TrainConfig(diagnostics_every=bad)
    with pytest.raises(ValueError, match="quiet"):
        TrainConfig(quiet="yes")


def test_under_ddp_every_rank_stops_at_the_step_where_the_first_rank_passes_the_deadline(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root / "src"), OMP_NUM_THREADS="1")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(root / "tests" / "_deadline_ddp.py"), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # rank 1's clock passes 60 s after 6 batches (10 s each); rank 0's (1 s each) would not before step 60
    assert ranks[0] == ranks[1] == {"steps": [6], "stopped": "deadline"}
    assert json.loads((tmp_path / "trainer_state.json").read_text())["step"] == 6
