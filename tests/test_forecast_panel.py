"""Many series: the long and M4 wide readers (typed, file:line:column errors, gaps), one global model over
every series (sampling, skipped short series, scaling that extrapolates, quantiles), predict for every series,
and runs from before per-window scaling."""
import csv
import gzip
import io
import json

import numpy as np
import pytest
import torch
from _cli_errors import one_error_line

from rnnkit.cli import main
from rnnkit.data import DataError
from rnnkit.data.panel import detect_format, read_long, read_panel, read_wide
from rnnkit.tasks import forecast as fc
from rnnkit.tasks import forecast_metrics as m4
from rnnkit.train import TrainConfig


def quick(epochs=2, lr=1e-2, **kw):
    return TrainConfig(epochs=epochs, optimizer="adam", lr=lr, clip=1.0, progress=False, tensorboard=False, **kw)


def wide_text(series: dict) -> str:
    width = max(len(v) for v in series.values())
    rows = [",".join(f'"V{i}"' for i in range(1, width + 2))]
    for sid, v in series.items():
        rows.append(",".join([f'"{sid}"', *(f'"{float(x)!r}"' for x in v), *['""'] * (width - len(v))]))
    return "\n".join(rows) + "\n"


def seasonal(n, level, period=6, seed=0, trend=0.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    wave = 1 + 0.3 * np.sin(2 * np.pi * t / period)
    return np.round((level + trend * t) * wave + rng.normal(0, 0.02 * level, n), 4)


# ---- readers ----------------------------------------------------------------------------------------------------


def test_wide_ragged_rows_and_gzip(tmp_path):
    a, b = [1.0, 2.0, 3.0, 4.0], [5.0, 6.0]
    path = tmp_path / "w.csv.gz"
    path.write_bytes(gzip.compress(wide_text({"H1": a, "H2": b}).encode()))
    assert detect_format(path) == "wide"
    p = read_panel(path)
    assert p.ids == ["H1", "H2"] and p.time_kind == "index"
    np.testing.assert_array_equal(p.values[0][:, 0], a)
    np.testing.assert_array_equal(p.values[1][:, 0], b)


@pytest.mark.parametrize("row, fragment", [
    ('"H1","1","x","3"', 'w.csv:2:3: V3: expected a number, found \'x\''),
    ('"H1","1","","3"', "w.csv:2:3: V3: expected a number, found a missing value"),
    ('"H1","1","inf"', "w.csv:2:3: V3: expected a finite number"),
    ('"H1","1","2","3","4"', "w.csv:2: expected at most 4 fields"),
    ('"","1"', "w.csv:2:1: V1: expected a series id"),
    ('"H1","1"\n"H1","2"', "w.csv:3:1: V1: expected a new series id, found 'H1' again (first on line 2)"),
])
def test_wide_errors_name_file_line_column(tmp_path, row, fragment):
    path = tmp_path / "w.csv"
    path.write_text('"V1","V2","V3","V4"\n' + row + "\n")
    with pytest.raises(DataError, match=None) as e:
        read_wide(path)
    assert fragment in str(e.value)


def test_wide_interpolates_an_inner_gap(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text('"V1","V2","V3","V4"\n"H1","1","","3"\n')
    np.testing.assert_array_equal(read_wide(path, "interpolate").values[0][:, 0], [1, 2, 3])


def long_csv(tmp_path, rows, header="unique_id,ds,y,price"):
    path = tmp_path / "long.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_long_interleaved_ids_covariates_and_calendar(tmp_path):
    rows = ["a,2020-01-01 00:00,1,10", "b,2020-01-01 00:00,5,50", "a,2020-01-01 01:00,2,20",
            "b,2020-01-01 01:00,6,60", "a,2020-01-01 02:00,3,30"]
    path = long_csv(tmp_path, rows)
    assert detect_format(path) == "long"
    p = read_panel(path, covariates=["price"])
    assert p.ids == ["a", "b"] and p.columns == ["y", "price"] and p.time_kind == "datetime"
    np.testing.assert_array_equal(p.values[0], [[1, 10], [2, 20], [3, 30]])
    np.testing.assert_array_equal(p.values[1], [[5, 50], [6, 60]])
    assert fc.future_stamps(p, 2)[0] == ["2020-01-01 03:00", "2020-01-01 04:00"]
    assert fc.season_phase(p.times[0][2], "datetime", 24) == 2  # hour of day
    assert fc.season_phase(p.times[0][0], "datetime", 168) == 2 * 24  # 2020-01-01 is a Wednesday


@pytest.mark.parametrize("rows, fragment", [
    (["a,1,1,0", "a,1,2,0"], "long.csv:3:2: ds: expected a time after '1' (line 2) for series 'a', found a duplicated"),
    (["a,2,1,0", "a,1,2,0"], "long.csv:3:2: ds: expected a time after '2' (line 2) for series 'a', found an earlier"),
    (["a,1,1,0", "a,2,x,0"], "long.csv:3:3: y: expected a number, found 'x'"),
    (["a,1,1,0", "a,2,2,0", "a,3,3,0", "a,5,5,0"], "long.csv:5:2: ds: expected the step after '3' for series 'a', "
                                                   "found '5' (1 missing steps); use --missing interpolate"),
    (["a,1,1,0", "a,monday,2,0"], "long.csv:3:2: ds: expected a time stamp like the first row, found 'monday'"),
    (["a,1,1"], "long.csv:2: expected 4 fields"),
])
def test_long_errors(tmp_path, rows, fragment):
    with pytest.raises(DataError) as e:
        read_long(long_csv(tmp_path, rows))
    assert fragment in str(e.value)


def test_long_gap_interpolated(tmp_path):
    p = read_long(long_csv(tmp_path, ["a,1,1,0", "a,2,2,0", "a,3,3,0", "a,6,9,0"]), missing="interpolate")
    np.testing.assert_allclose(p.values[0][:, 0], [1, 2, 3, 5, 7, 9])
    assert p.times[0] == [1, 2, 3, 4, 5, 6]


def test_cli_bad_long_file_is_one_line(tmp_path, capsys):
    path = long_csv(tmp_path, ["a,1,1,0", "a,1,2,0"])
    one_error_line(capsys, ["train", "forecast", "--data", str(path), "--out", str(tmp_path / "r")],
                   f"{path}:3:2: ds: expected a time after")


# ---- the global model ---------------------------------------------------------------------------------------------


def write_wide(tmp_path, series, name="w.csv"):
    path = tmp_path / name
    path.write_text(wide_text(series))
    return path


def test_short_series_are_skipped_and_reported(tmp_path):
    path = write_wide(tmp_path, {"A": list(seasonal(60, 10)), "short": [1.0] * 10, "B": list(seasonal(50, 20))})
    data = fc.ForecastDataConfig(path=str(path), window=12, horizon=4, season=6, holdout="horizon")
    prep = fc.prepare(data)
    assert prep.skipped == ["short"] and prep.ids == ["A", "B"]
    origins = prep.windows["train"].origins
    sid = prep.pool.series[origins]
    assert set(sid) == {0, 1}
    # series A: rows 0..55 train (60 - H), origins 11 .. 51; series B starts at row 60 of the pool
    np.testing.assert_array_equal(origins[sid == 0], np.arange(11, 52))
    np.testing.assert_array_equal(origins[sid == 1] - 60, np.arange(11, 42))
    with pytest.raises(DataError, match="in every one of the 3 series"):
        fc.prepare(fc.ForecastDataConfig(path=str(path), window=100, horizon=4, season=6, holdout="horizon"))


def test_windows_per_series_draws_k_from_every_series_each_epoch(tmp_path):
    path = write_wide(tmp_path, {"A": list(seasonal(200, 10)), "B": list(seasonal(40, 20))})
    prep = fc.prepare(fc.ForecastDataConfig(path=str(path), window=8, horizon=2, season=6, holdout="horizon"))
    batches = prep.windows["train"].batches(4, True, seed=1, per_series=5)
    for epoch in (0, 1):
        got = torch.cat([batches.get(i, epoch).series for i in range(len(batches))])
        assert sorted(got.tolist()) == [0] * 5 + [1] * 5
    a = [batches.get(i, 0).values for i in range(len(batches))]
    b = [batches.get(i, 1).values for i in range(len(batches))]
    assert any(not torch.equal(x, y) for x, y in zip(a, b))  # drawn anew each epoch
    same = prep.windows["train"].batches(4, True, seed=1, per_series=5)
    assert all(torch.equal(same.get(i, 1).values, b[i]) for i in range(len(batches)))  # deterministic by seed


def model(scaling="revin", quantiles=(0.1, 0.5, 0.9), **kw):
    config = fc.ForecastModelConfig(scaling=scaling, quantiles=list(quantiles), hidden=8, inputs=1, horizon=5,
                                    window=12, season=6, num_series=3, **kw)
    torch.manual_seed(0)
    return fc.Forecaster(config, fc.Normalizer(["y"], [3.0], [2.0]))


def test_quantiles_are_monotone_and_pinball_matches_numpy():
    m = model(embedding=2)
    x = torch.randn(16, 12, 1) * 5 + 3
    with torch.no_grad():
        q = m.predict(x, torch.arange(16), torch.arange(16) % 3 - 1)
    assert q.shape == (16, 5, 3) and bool((q.diff(dim=-1) >= 0).all())
    y = torch.randn(16, 5)
    d = y.numpy()[..., None] - q.detach().numpy()
    tau = np.array([0.1, 0.5, 0.9])
    ref = np.maximum(tau * d, (tau - 1) * d).mean()
    assert float(fc.pinball_loss(q, y, [0.1, 0.5, 0.9])) == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("scaling, difference", [("revin", 0), ("mean_abs", 0), ("revin", 1), ("mean_abs", 6)])
def test_per_window_scaling_is_equivariant(scaling, difference):
    """RevIN: f(a·x + b) = a·f(x) + b (a > 0); mean-abs: f(a·x) = a·f(x): a level never seen in training is
    forecast like the training levels, which a global z-normalisation cannot do. With differencing too."""
    m = model(scaling, difference=difference)
    x = torch.rand(4, 12, 1) + 1.0
    start = torch.tensor([0, 1, 2, 3])
    base = m.predict(x, start).detach()
    shift = 0.0 if scaling == "mean_abs" else 500.0
    np.testing.assert_allclose(m.predict(x * 7.0 + shift, start).detach(), base * 7.0 + shift, rtol=1e-4)


def test_highway_starts_as_seasonal_naive():
    m = model(quantiles=())
    torch.nn.init.zeros_(m.head.weight)
    torch.nn.init.zeros_(m.head.bias)
    x = torch.randn(3, 12, 1) * 4 + 10
    y = m.predict(x)[..., 0].detach().numpy()
    ref = np.stack([m4.seasonal_naive(v[:, 0].numpy(), 5, 6) for v in x])
    np.testing.assert_allclose(y, ref, rtol=1e-5)


@pytest.mark.parametrize("k, transform", [(1, "none"), (2, "log"), (6, "none")])
def test_differencing_with_a_zero_network_is_naive_plus_the_window_drift(k, transform):
    """difference k, head zeroed (the highway starts at zero): the point forecast is the lag-k seasonal naive
    forecast plus ⌈h/k⌉ times the window's mean lag-k difference, in the transformed units. k = 1 is
    Hyndman's drift method, y_t + h·(y_t − y_{t−W+1}) / (W − 1). H = 5: k = 2 reaches ⌈5/2⌉ = 3 lags."""
    m = model(difference=k, transform=transform)
    assert not m.linear.weight.any()
    torch.nn.init.zeros_(m.head.weight)
    torch.nn.init.zeros_(m.head.bias)
    x = torch.rand(3, 12, 1, dtype=torch.float64).float() * 4 + 10
    with torch.no_grad():
        y = m.predict(x)[..., m.config.point_index].numpy()
    u = x[..., 0].double().numpy()
    u = np.log(u) if transform == "log" else u
    h = np.arange(1, 6)
    if k == 1:
        ref = u[:, -1:] + h * (u[:, -1:] - u[:, :1]) / 11
    else:
        drift = (u[:, k:] - u[:, :-k]).mean(1, keepdims=True)
        ref = np.stack([m4.seasonal_naive(v, 5, k) for v in u]) + np.ceil(h / k) * drift
    np.testing.assert_allclose(y, np.exp(ref) if transform == "log" else ref, rtol=1e-5)
    with pytest.raises(ValueError, match="difference 12 must be smaller than the window, got window 12"):
        model(difference=12)
    with pytest.raises(ValueError, match="difference needs a per-window scaling"):
        model("global", difference=1)
    with pytest.raises(ValueError, match="embedding 0, patch 1 and difference 0"):
        model(strategy="autoregressive", difference=1)


def test_patched_model_equals_torch_lstm_over_the_segments():
    """patch P: an oracle built from torch.nn.LSTM (the model's weights, loaded by name) run over the W/P
    segments of the per-step features [scaled y, sin, cos], each segment the P steps' features in time order."""
    m = model(quantiles=(), highway=False, patch=4)
    lstm = torch.nn.LSTM(3 * 4, 8, batch_first=True)
    lstm.load_state_dict(m.rnn.state_dict())
    x, start = torch.rand(3, 12, 1) * 5 + 2, torch.tensor([0, 2, 5])
    y = x[..., 0]
    a, s = y.mean(1, keepdim=True), y.std(1, keepdim=True, unbiased=False)
    angle = (start[:, None] + torch.arange(12)) % 6 * (2 * np.pi / 6)
    steps = torch.stack([(y - a) / s, torch.sin(angle), torch.cos(angle)], -1)  # (B, W, 3)
    segments = torch.stack([torch.cat([steps[:, 4 * j + i] for i in range(4)], -1) for j in range(3)], 1)
    with torch.no_grad():
        out, _ = lstm(segments)
        ref = m.head(out[:, -1]) * s + a
        np.testing.assert_allclose(m.predict(x, start)[..., 0], ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="patch 5 must divide the window, got window 12"):
        model(patch=5)
    with pytest.raises(ValueError, match="embedding 0, patch 1 and difference 0"):
        model(strategy="autoregressive", patch=4)


@pytest.mark.parametrize("options", [{}, {"difference": 12, "transform": "log"}])
def test_default_model_beats_seasonal_naive_on_a_trend_it_never_saw(tmp_path, options):
    """The issue's case: a rising trend with growing seasonal swings; the test part's level lies above every
    training value. Default options (RevIN, quantiles, highway), and seasonal differences of the log, against
    seasonal naive on the same origins."""
    y = seasonal(300, 20, period=12, seed=5, trend=0.5)
    rows = ["t,y"] + [f"{i},{float(v)!r}" for i, v in enumerate(y)]
    path = tmp_path / "trend.csv"
    path.write_text("\n".join(rows) + "\n")
    data = fc.ForecastDataConfig(path=str(path), target="y", horizon=12, window=24)
    fc.fit(tmp_path / "run", data, options, quick(15, lr=3e-3))
    m = fc.evaluate(fc.load_run(tmp_path / "run"), parts=("test",))["test"]
    assert y[-60:].min() > y[:210].max() * 0.6 and m["mae"] < m["snaive_mae"], m
    assert 0.5 < m["coverage"] <= 1.0


def test_holdout_scores_equal_m4_score_of_forecast_panel(tmp_path):
    series = {f"S{k}": list(seasonal(70 + 5 * k, 10 * (k + 1), seed=k)) for k in range(3)}
    path = write_wide(tmp_path, series)
    data = fc.ForecastDataConfig(path=str(path), window=12, horizon=4, season=6, holdout="horizon", batch_size=8)
    fc.fit(tmp_path / "run", data, {"hidden": 8, "embedding": 2}, quick(2))
    run = fc.load_run(tmp_path / "run")
    assert run.task.series == ["S0", "S1", "S2"]
    scores = fc.holdout_scores(run, "valid")
    panel = read_wide(path)
    cut = [v[:-4] for v in panel.values]
    q = fc.forecast_panel(run, type(panel)(panel.path, ["y"], panel.ids, cut), 4)
    ref = m4.score([v[:, 0] for v in cut], q[..., 1], [v[-4:, 0] for v in panel.values], 6, list(q), [0.1, 0.5, 0.9])
    for k, v in ref.items():
        assert scores[k] == pytest.approx(v, rel=1e-9), k


# ---- predict ------------------------------------------------------------------------------------------------------


def test_cli_predict_wide_and_long(tmp_path, capsys):
    series = {"H1": list(seasonal(60, 10)), "H2": list(seasonal(45, 30, seed=1))}
    path = write_wide(tmp_path, series)
    run = tmp_path / "run"
    assert main(["train", "forecast", "--data", str(path), "--window", "12", "--horizon", "4", "--season", "6",
                 "--holdout", "horizon", "--epochs", "2", "--hidden", "8", "--quiet", "--out", str(run)]) == 0
    out = tmp_path / "f.csv"
    assert main(["predict", str(run), "--input", str(path), "--out", str(out)]) == 0
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["id", "F1", "F2", "F3", "F4"] and [r[0] for r in rows[1:]] == ["H1", "H2"]
    loaded = fc.load_run(run)
    q = fc.forecast_panel(loaded, read_wide(path))
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in rows[1:]], q[..., 1], rtol=1e-5)
    lower = list(csv.reader(io.StringIO((tmp_path / "f.q0.1.csv").read_text())))
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in lower[1:]], q[..., 0], rtol=1e-5)
    long = tmp_path / "long.csv"  # times from 0: season position t mod m, as the wide file's step index
    long.write_text("unique_id,ds,y\n" + "".join(f"{sid},{t},{float(v)!r}\n" for sid, vs in series.items()
                                                 for t, v in enumerate(vs)))
    capsys.readouterr()
    assert main(["predict", str(run), "--input", str(long), "--format", "long"]) == 0
    got = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert got[0] == ["unique_id", "ds", "y", "y_q0.1", "y_q0.5", "y_q0.9"]
    assert [r[:2] for r in got[1:]] == [["H1", str(t)] for t in range(60, 64)] + [["H2", str(t)] for t in range(45, 49)]
    np.testing.assert_allclose([float(r[2]) for r in got[1:5]], q[0, :, 1], rtol=1e-5)


def test_predict_ensemble_is_the_median_of_the_runs(tmp_path, capsys):
    """`--ensemble`: level by level, the median of three seeds' forecasts (NumPy's median of each run's own
    forecast_panel); a run with other quantile levels is refused in one line."""
    path = write_wide(tmp_path, {"H1": list(seasonal(60, 10)), "H2": list(seasonal(45, 30, seed=1))})
    base = ["train", "forecast", "--data", str(path), "--window", "12", "--horizon", "4", "--season", "6",
            "--holdout", "horizon", "--epochs", "1", "--hidden", "8", "--quiet"]
    for seed in (0, 1, 2):
        assert main([*base, "--seed", str(seed), "--out", str(tmp_path / f"r{seed}")]) == 0
    assert main([*base, "--quantiles", "0.2,0.5,0.8", "--out", str(tmp_path / "other")]) == 0
    out = tmp_path / "f.csv"
    runs = [str(tmp_path / f"r{seed}") for seed in (0, 1, 2)]
    assert main(["predict", runs[0], "--ensemble", ",".join(runs[1:]), "--input", str(path), "--out", str(out)]) == 0
    each = np.stack([fc.forecast_panel(fc.load_run(r), read_wide(path)) for r in runs])  # (3, S, H, Q)
    assert not np.allclose(each[0], each[1])
    got = [[float(v) for v in r[1:]] for r in list(csv.reader(io.StringIO(out.read_text())))[1:]]
    np.testing.assert_allclose(got, np.median(each, 0)[..., 1], rtol=1e-5)
    upper = list(csv.reader(io.StringIO((tmp_path / "f.q0.9.csv").read_text())))[1:]
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in upper], np.median(each, 0)[..., 2], rtol=1e-5)
    capsys.readouterr()
    one_error_line(capsys, ["predict", runs[0], "--ensemble", str(tmp_path / "other"), "--input", str(path)],
                   "other: expected the quantile levels and horizon ([0.1, 0.5, 0.9], 4) of the first run, found "
                   "([0.2, 0.5, 0.8], 4)")


def test_a_run_from_before_per_window_scaling_loads_as_it_was_trained(tmp_path):
    """config.json written before scaling/quantiles existed: it loads as scaling=global, a point forecast."""
    y = seasonal(100, 10)
    path = tmp_path / "s.csv"
    path.write_text("t,y\n" + "".join(f"{i},{float(v)!r}\n" for i, v in enumerate(y)))
    data = fc.ForecastDataConfig(path=str(path), target="y", window=8, horizon=2, season=6)
    legacy = {"scaling": "global", "quantiles": [], "season_features": False, "highway": False, "hidden": 8}
    fc.fit(tmp_path / "run", data, legacy, quick(2))
    before = fc.predict(fc.load_run(tmp_path / "run"), data.read())[1]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    for key in ("scaling", "quantiles", "season_features", "highway", "transform", "boxcox_lambda", "embedding",
                "window", "season", "num_series"):
        config["model"].pop(key)
    for key in ("format", "id_column", "holdout", "windows_per_series"):
        config["data"].pop(key)
    config["task"].pop("series")
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    run = fc.load_run(tmp_path / "run")
    assert run.model.config.scaling == "global" and run.model.config.quantiles == []
    np.testing.assert_allclose(fc.predict(run, data.read())[1], before, rtol=1e-6)
    # the oracle of the old model: z-normalise with normalizer.json, forecast, de-normalise
    norm = run.normalizer
    z = torch.as_tensor(norm.apply(data.read().values[-8:]), dtype=torch.float32)[None]
    with torch.no_grad():
        old = run.model.forecast(z)[0].numpy() * norm.std[0] + norm.mean[0]
    np.testing.assert_allclose(before, old, rtol=1e-5)


@pytest.mark.parametrize("options", [
    {"quantiles": [0.5, 0.9], "scaling": "mean_abs", "transform": "log"},
    {"quantiles": [0.05, 0.25, 0.5, 0.75], "embedding": 3, "transform": "boxcox", "boxcox_lambda": 0.3},
    {"quantiles": [], "scaling": "global", "highway": False},
    {"patch": 4, "transform": "log"},
    {"patch": 3, "embedding": 2, "quantiles": [0.25, 0.5]},
    {"difference": 1, "quantiles": [0.1, 0.5, 0.9]},
    {"difference": 6, "transform": "log", "scaling": "mean_abs", "patch": 4, "quantiles": []},
])
def test_onnx_export_equals_predict_for_every_option(tmp_path, options):
    pytest.importorskip("onnxruntime")
    from test_export import exported, session

    series = {f"S{k}": list(seasonal(60, 10 * (k + 1), seed=k)) for k in range(3)}
    path = write_wide(tmp_path, series)
    data = fc.ForecastDataConfig(path=str(path), window=12, horizon=4, season=6, holdout="horizon", batch_size=8)
    fc.fit(tmp_path / "run", data, {"hidden": 8, **options}, quick(1))
    run = fc.load_run(tmp_path / "run")
    sess = session(exported(run, tmp_path)[0] / "model.onnx")
    names = {i.name for i in sess.get_inputs()}
    rng = np.random.default_rng(0)
    values = rng.uniform(5, 40, (5, 12, 1)).astype(np.float32)
    start, sid = rng.integers(0, 6, 5), np.array([0, 1, 2, -1, 1])
    feeds = {"values": values, "start": start, "series": sid}
    y, q = sess.run(["forecast", "quantiles"], {k: v for k, v in feeds.items() if k in names})
    with torch.no_grad():
        ref = run.model.predict(torch.as_tensor(values), torch.as_tensor(start), torch.as_tensor(sid)).numpy()
    np.testing.assert_allclose(q, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ref[..., run.model.config.point_index], rtol=1e-4, atol=1e-4)
    assert bool((np.diff(q, axis=-1) >= 0).all())


def test_cli_bad_model_options_are_one_line(tmp_path, capsys):
    path = write_wide(tmp_path, {"A": list(seasonal(60, 10)), "B": list(-seasonal(60, 10))})
    base = ["train", "forecast", "--data", str(path), "--window", "12", "--horizon", "2", "--season", "6",
            "--epochs", "1", "--out", str(tmp_path / "r")]
    one_error_line(capsys, [*base, "--quantiles", "0.9,0.1,1.5"], "quantiles must be distinct levels in (0, 1)",
                   "--quantiles")
    one_error_line(capsys, [*base, "--transform", "log"], "--transform log: expected a target > 0, found -")
    one_error_line(capsys, [*base, "--patch", "5"], "patch 5 must divide the window, got window 12", "--patch")
    one_error_line(capsys, [*base, "--difference", "12"], "difference 12 must be smaller than the window, got "
                   "window 12", "--difference")
    one_error_line(capsys, [*base, "--difference", "1", "--scaling", "global"],
                   "difference needs a per-window scaling (revin or mean_abs)")
    assert not (tmp_path / "r").exists()
    assert main([*base, "--quantiles", "none", "--quiet"]) == 0
    assert fc.load_run(tmp_path / "r").model.config.quantiles == []


def test_resume_of_a_sampled_panel_run_continues_exactly(tmp_path):
    path = write_wide(tmp_path, {f"S{k}": list(seasonal(50 + 10 * k, 5 * (k + 1), seed=k)) for k in range(3)})
    data = fc.ForecastDataConfig(path=str(path), window=12, horizon=3, season=6, holdout="horizon", batch_size=8,
                                 windows_per_series=6)
    whole = fc.fit(tmp_path / "a", data, {"hidden": 8, "embedding": 2}, quick(4))
    fc.fit(tmp_path / "b", data, {"hidden": 8, "embedding": 2}, quick(2))
    assert fc.resume(tmp_path / "b", epochs=4) == whole
