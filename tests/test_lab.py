"""rnnkit.lab: generators against their definitions, baselines against their closed forms on large samples,
the Batches protocol, and an LSTM that beats the adding problem's 1/6 baseline within seconds."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.cli import main
from rnnkit.lab import (
    LabDataConfig,
    LabModel,
    LabModelConfig,
    LabTask,
    SyntheticBatches,
    adding,
    copy_memory,
    digits_batches,
    fit,
    larger_stream,
    load_digits_sequences,
    permutation,
    sum_over_time,
)
from rnnkit.train import TrainConfig


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("T", [2, 3, 17, 150])
def test_adding_has_exactly_two_marks_one_per_half_and_the_target_is_their_sum(T):
    x, y = adding(500, T, gen())
    values, marks = x[..., 0].numpy(), x[..., 1].numpy()
    assert x.shape == (500, T, 2) and y.shape == (500,)
    assert set(np.unique(marks)) <= {0.0, 1.0} and (marks.sum(1) == 2).all()
    half = math.ceil(T / 2)
    assert (marks[:, :half].sum(1) == 1).all() and (marks[:, half:].sum(1) == 1).all()
    assert ((values >= 0) & (values < 1)).all()
    expected = [values[b, marks[b] == 1].sum() for b in range(500)]
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6)


def test_adding_baseline_is_one_sixth_on_a_large_sample():
    _, y = adding(200_000, 20, gen(1))
    mse = float(((y - 1.0) ** 2).mean())
    assert abs(mse - 1 / 6) < 3 * 0.0006  # std error of the mean of (y-1)^2 ≈ sqrt(Var)/sqrt(n) ≈ 0.0003


@pytest.mark.parametrize("T", [1, 5, 100])
def test_copy_memory_layout(T):
    x, y = copy_memory(64, T, gen())
    assert x.shape == y.shape == (64, T + 20)
    data = x[:, :10]
    assert ((data >= 1) & (data <= 8)).all()
    assert (x[:, 10 : 10 + T - 1] == 0).all()  # T - 1 blanks
    assert (x[:, 10 + T - 1] == 9).all()  # the delimiter
    assert (x[:, T + 10 :] == 0).all()  # blanks while the answer is expected
    assert (y[:, : T + 10] == 0).all() and torch.equal(y[:, T + 10 :], data)


def test_copy_memory_baseline_is_the_memoryless_cross_entropy():
    T = 30
    _, y = copy_memory(20_000, T, gen(2))
    # the memoryless strategy: blank for sure during the first T + 10 steps, then uniform over the 8 symbols
    log_p = torch.full((T + 20, 10), -1e9)
    log_p[: T + 10, 0] = 0.0
    log_p[T + 10 :, 1:9] = math.log(1 / 8)
    ce = F.nll_loss(log_p.expand(len(y), -1, -1).reshape(-1, 10), y.reshape(-1))
    assert float(ce) == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-6)
    assert LabTask("copy", T).baseline["loss"] == pytest.approx(10 * math.log(8) / (T + 20))


def test_sum_and_larger_match_their_definitions_and_baselines():
    x, y = sum_over_time(100_000, 25, gen(3))
    np.testing.assert_allclose(y.numpy(), x.numpy().sum(axis=(1, 2)) / 5.0, rtol=1e-5, atol=1e-5)
    assert float((y**2).mean()) == pytest.approx(1.0, abs=0.02)  # predicting 0: MSE = Var = 1
    x, y = larger_stream(100_000, 9, gen(4))
    totals = x.sum(1)
    assert torch.equal(y, (totals[:, 1] > totals[:, 0]).long())
    assert float(y.float().mean()) == pytest.approx(0.5, abs=0.01)
    assert LabTask("larger", 9).baseline == {"loss": pytest.approx(math.log(2)), "accuracy": 0.5}


def test_digits_are_the_sklearn_pixels_in_order_or_one_fixed_permutation():
    from sklearn.datasets import load_digits

    raw = load_digits()
    x, y = load_digits_sequences()
    assert x.shape == (1797, 64, 1) and torch.equal(y, torch.tensor(raw.target))
    np.testing.assert_allclose(x[..., 0].numpy(), raw.data / 16.0, rtol=1e-6)
    xp, _ = load_digits_sequences(permute=True, seed=3)
    perm = permutation(64, 3)
    assert sorted(perm.tolist()) == list(range(64)) and perm.tolist() != list(range(64))
    assert torch.equal(xp[..., 0], x[..., 0][:, perm])  # the same permutation for every example
    train, valid, test = digits_batches(32, seed=0)
    sizes = [sum(b.get(i, 0).targets.shape[0] for i in range(len(b))) for b in (train, valid, test)]
    assert sizes == [1797 - 359 - 179, 179, 359]


def test_synthetic_batches_are_reproducible_independent_and_shard_into_the_whole():
    b = SyntheticBatches(adding, 12, 8, 6, seed=5)
    assert torch.equal(b.get(3, 1).inputs, b.get(3, 1).inputs)
    assert not torch.equal(b.get(3, 1).inputs, b.get(3, 2).inputs)  # a new epoch, new examples
    other = SyntheticBatches(adding, 12, 8, 6, seed=5, stream="test")
    assert not torch.equal(b.get(0, 0).inputs, other.get(0, 0).inputs)  # test never equals train
    shards = [b.shard(r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [2, 2, 2]
    got = sorted(float(s.get(i, 0).targets.sum()) for s in shards for i in range(len(s)))
    assert got == sorted(float(b.get(i, 0).targets.sum()) for i in range(6))


def test_summaries_are_the_mse_and_the_accuracy_of_the_predictions():
    torch.manual_seed(0)
    model = LabModel(LabModelConfig("adding", cell="gru", hidden=8))
    batch = SyntheticBatches(adding, 7, 32, 1).get(0, 0)
    out = model(batch)
    assert LabTask("adding", 7).summarize(out.stats)["mse"] == pytest.approx(
        float(((out.prediction.detach() - batch.targets) ** 2).mean()), rel=1e-6)
    model = LabModel(LabModelConfig("larger", cell="lstm", hidden=8))
    batch = SyntheticBatches(larger_stream, 7, 32, 1).get(0, 0)
    out = model(batch)
    metrics = LabTask("larger", 7).summarize(out.stats)
    assert metrics["accuracy"] == float((out.prediction.argmax(-1) == batch.targets).float().mean())
    assert metrics["loss"] == pytest.approx(float(F.cross_entropy(out.prediction.detach(), batch.targets)), rel=1e-6)


def _small_adding_run(run_dir, seed=0, epochs=3, cell="lstm"):
    data = LabDataConfig("adding", length=10, batch_size=50, batches_per_epoch=100, valid_size=500, test_size=1000)
    train = TrainConfig(epochs=epochs, optimizer="adam", lr=1e-2, clip=1.0, seed=seed, device="cpu", progress=False,
                        tensorboard=False)
    return fit(run_dir, data, LabModelConfig("adding", cell=cell, hidden=32), train)


def test_an_lstm_beats_the_adding_baseline_at_small_T(tmp_path):
    result = _small_adding_run(tmp_path / "run")
    assert result.baseline["mse"] == pytest.approx(1 / 6)
    assert result.test["mse"] < 0.2 * (1 / 6), result.history  # well below predicting 1
    assert "(baseline 0.1667" in result.line("adding")
    lines = (tmp_path / "run" / "predictions.txt").read_text().splitlines()
    assert len(lines) == 11 and all(" -> " in ln for ln in lines[1:])  # a header, then 10 test examples


def test_same_seed_same_results():
    a = _small_adding_run(None, seed=4, epochs=1)
    b = _small_adding_run(None, seed=4, epochs=1)
    assert a.test == b.test and a.history[0]["train"] == b.history[0]["train"]


def test_cli_lab_prints_the_metric_against_the_baseline(tmp_path, capsys):
    code = main(["lab", "larger", "--length", "5", "--cell", "gru", "--hidden", "8", "--epochs", "1",
                 "--batches-per-epoch", "5", "--valid-size", "50", "--test-size", "50", "--diagnostics-every", "2",
                 "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("test accuracy ") and "(baseline 0.5000: coin flip" in out
    assert (tmp_path / "run" / "metrics.jsonl").is_file()


@pytest.mark.parametrize("argv, message", [
    (["lab", "nope"], "invalid choice: 'nope'"),
    (["lab", "adding", "--cell", "transformer"], "invalid choice: 'transformer'"),
    (["lab", "adding", "--length", "0"], "length must be > 0, got 0 (--length)"),
    (["lab", "adding", "--diagnostics-every", "-1"], "expected >= 0, got -1 (--diagnostics-every)"),
])
def test_cli_lab_errors_are_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
