"""rnnkit.tasks.forecast_metrics (M4's definitions) against hand-computed cases and closed forms."""
import numpy as np
import pytest

from rnnkit.tasks import forecast_metrics as m4


def test_smape_and_mase_by_hand():
    y, f = np.array([1.0, 2.0]), np.array([2.0, 2.0])
    assert m4.smape(y, f) == pytest.approx(200 / 2 * (1 / 3 + 0))
    assert m4.smape(np.zeros(2), np.zeros(2)) == 0.0  # 0/0 counts 0
    x = np.array([1.0, 3.0, 2.0, 5.0])  # lag-1 naive scale: (2 + 1 + 3) / 3 = 2; lag 2: (1 + 2) / 2
    assert m4.naive_scale(x, 1) == pytest.approx(2.0) and m4.naive_scale(x, 2) == pytest.approx(1.5)
    assert m4.mase(x, np.array([4.0, 6.0]), np.array([5.0, 5.0]), 1) == pytest.approx(1 / 2)
    assert m4.mase(x, np.array([4.0, 6.0]), np.array([5.0, 5.0]), 2) == pytest.approx(1 / 1.5)


def test_acf_against_its_formula():
    x = np.random.default_rng(0).normal(size=50).cumsum()
    d = x - x.mean()
    for k in (1, 5, 12):
        assert m4.acf(x, k) == pytest.approx(np.sum(d[:-k] * d[k:]) / np.sum(d * d))


def test_seasonality_test_by_its_definition():
    rng = np.random.default_rng(1)
    t = np.arange(120)
    seasonal = 10 + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.1, 120)
    noise = rng.normal(size=120)
    for x, expected in ((seasonal, True), (noise, False)):
        r = [m4.acf(x, k) for k in range(1, 13)]
        limit = 1.645 * np.sqrt((1 + 2 * sum(v * v for v in r[:11])) / 120)
        assert (abs(r[11]) > limit) == expected == m4.is_seasonal(x, 12)
    assert not m4.is_seasonal(seasonal[:35], 12)  # fewer than 3 seasons: never seasonal
    assert not m4.is_seasonal(seasonal, 1)


@pytest.mark.parametrize("m", [4, 5])  # the even (2 x m) and the odd centred moving average
def test_decomposition_recovers_the_seasonal_factors_of_a_constant_level(m):
    factors = np.linspace(0.7, 1.3, m)
    factors /= factors.mean()
    x = 50 * np.tile(factors, 8)  # a constant level: the moving average is exactly 50
    np.testing.assert_allclose(m4.seasonal_indices(x, m), factors, rtol=1e-12)
    shifted = x[1:]  # positions count from the series' start
    np.testing.assert_allclose(m4.seasonal_indices(shifted, m), np.roll(factors, -1), rtol=1e-12)


def test_decomposition_by_hand_small_case():
    """m = 2: trend_t = (x_{t-1} / 2 + x_t + x_{t+1} / 2) / 2; indices = mean ratio per position, normalised."""
    x = np.array([2.0, 4.0, 2.0, 6.0, 2.0, 4.0])
    trend = np.array([np.nan, 3.0, 3.5, 4.0, 3.5, np.nan])
    ratio = x / trend
    fig = np.array([np.nanmean(ratio[0::2]), np.nanmean(ratio[1::2])])
    np.testing.assert_allclose(m4.seasonal_indices(x, 2), fig / fig.mean())


def test_naive2():
    factors = np.array([0.8, 1.2, 1.0, 1.0])
    x = 20 * np.tile(factors, 6) + np.r_[np.zeros(23), 4.0]  # seasonal; the last value off its pattern
    assert m4.is_seasonal(x, 4)
    fig = m4.seasonal_indices(x, 4)
    expected = x[-1] / fig[23 % 4] * fig[np.arange(24, 30) % 4]
    np.testing.assert_allclose(m4.naive2(x, 6, 4), expected)
    noise = np.random.default_rng(3).normal(10, 1, 40)
    np.testing.assert_array_equal(m4.naive2(noise, 3, 4), [noise[-1]] * 3)  # not seasonal: naive
    np.testing.assert_array_equal(m4.naive2(x, 3, 1), [x[-1]] * 3)


def test_seasonal_naive():
    x = np.arange(10.0)
    np.testing.assert_array_equal(m4.seasonal_naive(x, 5, 3), [7, 8, 9, 7, 8])
    np.testing.assert_array_equal(m4.seasonal_naive(x, 2, 1), [9, 9])


def test_pinball_msis_and_interval_by_hand():
    y = np.array([1.0, 5.0])
    q = np.array([[0.0, 2.0], [6.0, 7.0]])  # levels 0.1, 0.9
    # y=1: d = 1, -1 -> 0.1 * 1, 0.1 * 1; y=5: d = -1, -2 -> 0.9 * 1, 0.1 * 2
    assert m4.pinball(y, q, [0.1, 0.9]) == pytest.approx((0.1 + 0.1 + 0.9 + 0.2) / 4)
    x = np.array([0.0, 2.0, 4.0])  # scale 2
    # widths 2, 1; y=5 below L=6 by 1: penalty 2 / 0.2 * 1 = 10
    assert m4.msis(x, y, q[:, 0], q[:, 1], 1, 0.2) == pytest.approx(((2 + 0) + (1 + 10)) / 2 / 2)
    assert m4.interval_of([0.1, 0.5, 0.9]) == (0, 2)
    assert m4.interval_of([0.05, 0.1, 0.5, 0.9, 0.95]) == (0, 4)
    assert m4.interval_of([0.5]) is None


def test_score_averages_per_series_and_naive2_has_owa_one():
    rng = np.random.default_rng(4)
    xs = [rng.normal(10, 1, 30) + np.arange(30) * k for k in (0.0, 0.5)]
    ys = [rng.normal(10, 1, 4) for _ in xs]
    fs = [np.full(4, 10.0), np.full(4, 12.0)]
    s = m4.score(xs, fs, ys, 1)
    assert s["smape"] == pytest.approx(np.mean([m4.smape(y, f) for y, f in zip(ys, fs)]))
    assert s["mase"] == pytest.approx(np.mean([m4.mase(x, y, f, 1) for x, y, f in zip(xs, ys, fs)]))
    n2 = m4.score(xs, [m4.naive2(x, 4, 1) for x in xs], ys, 1)
    assert n2["owa"] == pytest.approx(1.0)
    qs = [np.stack([f - 1, f, f + 1], 1) for f in fs]
    s = m4.score(xs, fs, ys, 1, qs, [0.1, 0.5, 0.9])
    inside = np.mean([np.mean((y >= f - 1) & (y <= f + 1)) for y, f in zip(ys, fs)])
    assert s["coverage"] == pytest.approx(inside)
    assert s["scaled_crps"] == pytest.approx(2 * s["scaled_pinball"])


def test_a_constant_series_has_no_mase_and_is_left_out_of_the_mean():
    xs = [np.full(10, 3.0), np.arange(10.0)]
    ys = [np.full(2, 4.0), np.array([10.0, 11.0])]
    fs = [np.full(2, 3.0), np.array([9.0, 9.0])]
    assert np.isnan(m4.mase(xs[0], ys[0], fs[0], 1))
    s = m4.score(xs, fs, ys, 1)
    assert s["mase"] == pytest.approx(1.5)  # the second series only: mean |e| = 1.5, scale 1
    assert s["smape"] == pytest.approx(np.mean([m4.smape(y, f) for y, f in zip(ys, fs)]))
