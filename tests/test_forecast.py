"""rnnkit.tasks.forecast: metrics and baselines against NumPy oracles, no leakage from the future, learning a
noiseless sine (seq->one, direct and autoregressive seq->seq), and the CLI round trip."""
import csv
import dataclasses
import io

import numpy as np
import pytest
import torch
from _cli_errors import one_error_line

from rnnkit.cli import main
from rnnkit.data.series import read_series
from rnnkit.tasks import forecast as fc
from rnnkit.train import TrainConfig, update_config_json


def quick(epochs=2, **kw):
    return TrainConfig(epochs=epochs, optimizer="adam", lr=1e-2, clip=1.0, progress=False, tensorboard=False, **kw)


def write_csv(path, y, x=None):
    rows = ["t,y" + (",x" if x is not None else "")]
    rows += [f"{i},{float(v)!r}" + (f",{float(x[i])!r}" if x is not None else "") for i, v in enumerate(y)]
    path.write_text("\n".join(rows) + "\n")
    return path


def noisy_series(n=120, seed=0):
    rng = np.random.default_rng(seed)
    return np.round(10 + 5 * np.sin(np.arange(n) * 2 * np.pi / 12) + rng.normal(0, 1, n), 3)


# ---- metrics and baselines --------------------------------------------------------------------------------


def test_hand_computed_metrics():
    y = np.array([1.0, 3.0, 2.0, 5.0])
    assert fc.naive_scale(y, 1) == pytest.approx((2 + 1 + 3) / 3)
    assert fc.naive_scale(y, 2) == pytest.approx((1 + 2) / 2)
    m = fc.error_metrics(np.array([1.0, -2.0, 3.0]), scale=2.0)
    assert m == pytest.approx({"mae": 2.0, "rmse": np.sqrt(14 / 3), "mase": 1.0})


def test_baselines_against_loops():
    rng = np.random.default_rng(1)
    y = rng.normal(size=60)
    origins, horizon, m = np.array([10, 17, 40]), 7, 3
    naive = fc.naive_forecast(y, origins, horizon)
    snaive = fc.seasonal_naive_forecast(y, origins, horizon, m)
    for i, t in enumerate(origins):
        for h in range(1, horizon + 1):
            j = t + h
            while j > t:  # step back whole seasons until observed
                j -= m
            assert naive[i, h - 1] == y[t] and snaive[i, h - 1] == y[j]


def test_seasonal_naive_is_perfect_on_a_periodic_series():
    y = np.tile([3.0, 1.0, 4.0, 1.0, 5.0], 10)  # period m = 5
    origins = np.arange(4, 30)
    truth = y[origins[:, None] + np.arange(1, 13)]  # horizons 1..12 (> 2 periods)
    assert np.array_equal(fc.seasonal_naive_forecast(y, origins, 12, 5), truth)
    assert np.abs(fc.naive_forecast(y, origins, 12) - truth).mean() > 1.0


def test_task_metrics_equal_numpy_over_every_origin(tmp_path):
    """evaluate() (windows -> batches -> summed stats -> summarize) == NumPy formulas over forecasts made one
    origin at a time by predict() on the series cut at that origin."""
    y = noisy_series()
    path = write_csv(tmp_path / "s.csv", y)
    W, H, m = 6, 3, 12
    data = fc.ForecastDataConfig(path=str(path), target="y", window=W, horizon=H, season=m, batch_size=8)
    fc.fit(tmp_path / "run", data, fc.ForecastModelConfig(strategy="autoregressive", hidden=8), quick())
    run = fc.load_run(tmp_path / "run")
    metrics = fc.evaluate(run, parts=("test",))["test"]
    series = read_series(path, "y")
    n_train, n_valid = 84, 12  # 70% and 10% of 120
    origins = range(n_train + n_valid - 1, len(y) - H)
    forecasts = np.array([fc.predict(run, _cut(series, t + 1), H)[1] for t in origins])
    truth = np.array([y[t + 1: t + 1 + H] for t in origins])
    naive = np.array([[y[t]] * H for t in origins])
    snaive = np.array([[y[t + h - m] for h in range(1, H + 1)] for t in origins])
    s1 = np.mean(np.abs(np.diff(y[:n_train])))
    sm = np.mean(np.abs(y[m:n_train] - y[: n_train - m]))
    assert metrics["windows"] == len(origins) == 24 - H + 1
    for prefix, guess in (("", forecasts), ("naive_", naive), ("snaive_", snaive)):
        err = truth - guess
        expected = {"mae": np.abs(err).mean(), "rmse": np.sqrt((err ** 2).mean()),
                    "mase": np.abs(err).mean() / s1, "smase": np.abs(err).mean() / sm}
        for k, v in expected.items():
            assert metrics[prefix + k] == pytest.approx(v, rel=1e-5), prefix + k


def _cut(series, n):
    return dataclasses.replace(series, times=series.times[:n], values=series.values[:n], _parsed=series._parsed[:n])


# ---- no leakage -------------------------------------------------------------------------------------------------


def test_split_and_normaliser_never_read_the_future(tmp_path):
    rng = np.random.default_rng(2)
    y, x = noisy_series(100), rng.normal(size=100)
    future = np.arange(100) >= 70  # valid + test rows
    y2, x2 = np.where(future, y * 100 + 1e3, y), np.where(future, -x * 50, x)
    data = fc.ForecastDataConfig(path=str(write_csv(tmp_path / "a.csv", y, x)), target="y", covariates=["x"],
                                 window=5, horizon=2, season=4, batch_size=8)
    other = dataclasses.replace(data, path=str(write_csv(tmp_path / "b.csv", y2, x2)))
    a, b = fc.prepare(data), fc.prepare(other)
    assert a.split == b.split == fc.Split(70, 10, 20)
    values = np.stack([y, x], 1)[:70]
    np.testing.assert_allclose(a.normalizer.mean, values.mean(0))  # oracle: NumPy on the training rows
    np.testing.assert_allclose(a.normalizer.std, values.std(0))
    assert a.normalizer == b.normalizer and a.task.to_dict() == b.task.to_dict()
    wa, wb = a.windows["train"], b.windows["train"]
    assert wa.origins.max() + 2 <= 69  # every training target is a training row
    batch_a, batch_b = wa.collate(list(wa.origins)), wb.collate(list(wb.origins))
    for f in dataclasses.fields(batch_a):
        assert torch.equal(getattr(batch_a, f.name), getattr(batch_b, f.name)), f.name
    ha = fc.fit(tmp_path / "ra", data, fc.ForecastModelConfig(hidden=8), quick())
    hb = fc.fit(tmp_path / "rb", other, fc.ForecastModelConfig(hidden=8), quick())
    assert [e["train"] for e in ha] == [e["train"] for e in hb]  # same seed, same training data: same run
    assert ha[-1]["valid"]["mae"] != hb[-1]["valid"]["mae"]


# ---- learning -------------------------------------------------------------------------------------------------


def sine_csv(tmp_path, n=240, period=16):
    return write_csv(tmp_path / "sine.csv", np.sin(2 * np.pi * (np.arange(n) % period) / period))


@pytest.mark.parametrize("strategy, horizon, cell", [("direct", 1, "lstm"), ("direct", 4, "gru"),
                                                     ("autoregressive", 4, "lstm")])
def test_forecaster_beats_naive_on_a_noiseless_sine(tmp_path, strategy, horizon, cell):
    data = fc.ForecastDataConfig(path=str(sine_csv(tmp_path)), target="y", window=16, horizon=horizon,
                                 season=16, batch_size=16)
    fc.fit(tmp_path / "run", data, fc.ForecastModelConfig(strategy=strategy, cell=cell, hidden=16), quick(12))
    m = fc.evaluate(fc.load_run(tmp_path / "run"), parts=("test",))["test"]
    assert m["mae"] < 0.1 * m["naive_mae"], m
    assert m["snaive_mae"] < 1e-12 and "snaive_smase" not in m  # exactly periodic: seasonal naive is perfect


def test_covariates_are_used(tmp_path):
    """y_{t+1} = x_t with x white noise: only the covariate makes y predictable."""
    x = np.random.default_rng(3).uniform(-1, 1, 200)
    y = np.concatenate([[0.0], x[:-1]])
    data = fc.ForecastDataConfig(path=str(write_csv(tmp_path / "s.csv", y, x)), target="y", covariates=["x"],
                                 window=4, batch_size=16)
    fc.fit(tmp_path / "run", data, fc.ForecastModelConfig(hidden=16, scaling="global"), quick(10))
    m = fc.evaluate(fc.load_run(tmp_path / "run"), parts=("test",))["test"]
    assert m["mae"] < 0.2 * m["naive_mae"], m


# ---- the model -------------------------------------------------------------------------------------------------


def test_autoregressive_rollout_equals_rerunning_the_prefix():
    torch.manual_seed(0)
    norm = fc.Normalizer(["y", "x"], [0.0, 0.0], [1.0, 1.0])
    model = fc.Forecaster(fc.ForecastModelConfig(strategy="autoregressive", cell="gru", layers=2, hidden=8,
                                                 inputs=2, horizon=5), norm).eval()
    inputs = torch.randn(3, 7, 2)
    with torch.no_grad():
        fast = model.forecast(inputs, 9)
        x, slow = inputs, []
        for _ in range(9):  # oracle: the whole (growing) sequence through the layer, no carried state
            z = model.head(model.rnn(x)[0][:, -1])
            slow.append(z[:, 0])
            x = torch.cat([x, z[:, None]], 1)
    torch.testing.assert_close(fast, torch.stack(slow, 1), rtol=1e-5, atol=1e-6)


def test_direct_model_refuses_a_longer_horizon():
    norm = fc.Normalizer(["y"], [0.0], [1.0])
    model = fc.Forecaster(fc.ForecastModelConfig(inputs=1, horizon=2), norm)
    with pytest.raises(ValueError, match="at most the 2 steps"):
        model.forecast(torch.zeros(1, 4, 1), 3)


def test_resume_continues_exactly(tmp_path):
    data = fc.ForecastDataConfig(path=str(write_csv(tmp_path / "s.csv", noisy_series(80))), target="y",
                                 window=4, batch_size=8)
    whole = fc.fit(tmp_path / "a", data, fc.ForecastModelConfig(hidden=8), quick(4))
    fc.fit(tmp_path / "b", data, fc.ForecastModelConfig(hidden=8), quick(2))
    update_config_json(tmp_path / "b", "train", quick(4).to_dict())
    assert fc.resume(tmp_path / "b") == whole


# ---- command line -----------------------------------------------------------------------------------------------


def test_cli_train_predict_eval_round_trip(tmp_path, capsys):
    path = write_csv(tmp_path / "s.csv", noisy_series(90))
    run, out = tmp_path / "run", tmp_path / "out.csv"
    assert main(["train", "forecast", "--data", str(path), "--target", "y", "--window", "6", "--horizon", "2",
                 "--strategy", "autoregressive", "--season", "12", "--epochs", "2", "--hidden", "8",
                 "--out", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "test: " in printed and "naive" in printed and "seasonal(12)" in printed
    assert main(["predict", str(run), "--input", str(path), "--horizon", "5", "--output", str(out)]) == 0
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["t", "y"] and [r[0] for r in rows[1:]] == ["90", "91", "92", "93", "94"]
    times, values = fc.predict(fc.load_run(run), read_series(path, "y"), 5)
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], values, rtol=1e-5)
    capsys.readouterr()
    assert main(["predict", str(run), "--input", str(path)]) == 0  # default: the trained horizon, to stdout
    assert capsys.readouterr().out.splitlines()[1:] == [",".join(r) for r in rows[1:3]]
    assert main(["eval", str(run)]) == 0
    assert "valid: " in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    path = write_csv(tmp_path / "s.csv", noisy_series(60))
    sales = tmp_path / "sales.csv"
    sales.write_text("t,sales\n" + "".join(f"{i},{i}\n" for i in range(60)))
    one_error_line(capsys, ["train", "forecast", "--data", str(sales), "--out", str(tmp_path / "r1")],
                   "expected a column named 'y'")  # --target defaults to y (the long format's name)
    one_error_line(capsys, ["train", "forecast", "--data", str(path), "--target", "sales"],
                   f"{path}:1: expected a column named 'sales'")
    one_error_line(capsys, ["train", "forecast", "--data", str(path), "--target", "y", "--window", "50",
                            "--out", str(tmp_path / "r0")], "expected at least 51 training rows", "found 42")
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(path), "--target", "y", "--window", "4", "--epochs", "1",
                 "--hidden", "4", "--out", str(run)]) == 0
    capsys.readouterr()
    other = tmp_path / "o.csv"
    other.write_text("t,z\n0,1\n")
    one_error_line(capsys, ["predict", str(run), "--input", str(other)], f"{other}:1: expected a column named 'y'")
    one_error_line(capsys, ["predict", str(run), "--input", str(path), "--horizon", "3"], "at most the 1 steps")
    short = write_csv(tmp_path / "short.csv", [1.0, 2.0])
    one_error_line(capsys, ["predict", str(run), "--input", str(short)], "expected at least 4 rows", "found 2")
