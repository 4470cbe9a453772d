"""rnnkit.data.series: CSV time series (time column, target, covariates), errors as file:line, future stamps."""
import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data import DataError
from rnnkit.data.series import default_season, read_series, write_series_csv

# the first rows of the real formats (/work/shared/data/timeseries): quoted header (statsmodels), YYYY-MM (sktime)
SUNSPOTS = '"YEAR","SUNACTIVITY"\n1700,5\n1701,11\n1702,16\n1703,23\n1704,36\n1705,58\n'
AIRLINE = "Date,Passengers\n1949-01,112\n1949-02,118\n1949-03,132\n1949-04,129\n1949-05,121\n"
MONTHLY = "YEAR,MONTH,SUNACTIVITY\n1749,1,58.0\n1749,2,62.6\n1749,3,70.0\n1749,4,55.7\n"


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_real_formats(tmp_path):
    s = read_series(write(tmp_path, SUNSPOTS), "SUNACTIVITY")
    assert s.time_column == "YEAR" and s.columns == ["SUNACTIVITY"] and s.time_kind == "int"
    assert s.times == ["1700", "1701", "1702", "1703", "1704", "1705"]
    np.testing.assert_array_equal(s.values[:, 0], [5, 11, 16, 23, 36, 58])
    assert s.future_times(3) == ["1706", "1707", "1708"]
    a = read_series(write(tmp_path, AIRLINE), "Passengers")
    assert a.time_kind == "month" and a.future_times(9)[-2:] == ["1950-01", "1950-02"]
    assert default_season(a) == 12 and default_season(s) == 1
    m = read_series(write(tmp_path, MONTHLY), "SUNACTIVITY", time="YEAR,MONTH")  # year and month columns
    np.testing.assert_array_equal(m.values[:, 0], [58.0, 62.6, 70.0, 55.7])
    assert m.times[:2] == ["1749-01", "1749-02"] and m.future_times(1) == ["1749-05"] and default_season(m) == 12
    with pytest.raises(DataError, match=r"s\.csv:3: expected a time after '1749'"):
        read_series(write(tmp_path, MONTHLY), "SUNACTIVITY")  # the year alone repeats


def test_target_and_covariates_by_name_in_given_order(tmp_path):
    path = write(tmp_path, "t,a,b,c\n0,1,2,3\n1,4,5,6\n2,7,8,9\n")
    s = read_series(path, "c", covariates=["a"], time="t")
    np.testing.assert_array_equal(s.values, [[3, 1], [6, 4], [9, 7]])  # column b is ignored
    s = read_series(path, "b", covariates=["c", "a"], time="t")
    np.testing.assert_array_equal(s.values[0], [2, 3, 1])


def test_future_time_stamps(tmp_path):
    # numbers: the most common step (one irregular gap does not change it); floats keep a clean format
    assert read_series(write(tmp_path, "t,y\n0,1\n2,1\n4,1\n5,1\n7,1\n"), "y").future_times(2) == ["9", "11"]
    assert read_series(write(tmp_path, "t,y\n0.1,1\n0.2,1\n0.3,1\n"), "y").future_times(2) == ["0.4", "0.5"]
    daily = read_series(write(tmp_path, "d,y\n2020-02-27,1\n2020-02-28,2\n2020-02-29,3\n"), "y")
    assert daily.future_times(2) == ["2020-03-01", "2020-03-02"] and default_season(daily) == 7
    month_ends = read_series(write(tmp_path, "d,y\n2020-10-15,1\n2020-11-15,2\n2020-12-15,3\n"), "y")
    assert month_ends.future_times(2) == ["2021-01-15", "2021-02-15"] and default_season(month_ends) == 12
    quarterly = read_series(write(tmp_path, "d,y\n2020-01,1\n2020-04,2\n2020-07,3\n"), "y")
    assert quarterly.future_times(2) == ["2020-10", "2021-01"] and default_season(quarterly) == 4
    hourly = read_series(write(tmp_path, "t,y\n2020-01-01 22:00,1\n2020-01-01T23:00,2\n"), "y")
    assert hourly.future_times(2) == ["2020-01-02 00:00", "2020-01-02 01:00"] and default_season(hourly) == 24


def test_missing_values_policy(tmp_path):
    path = write(tmp_path, "t,y,x\n0,1,5\n1,NA,6\n2,,7\n3,4,\n4,10,8\n")
    with pytest.raises(DataError, match=r"s\.csv:3: expected a number in column 'y', found a missing value"):
        read_series(path, "y", ["x"])
    s = read_series(path, "y", ["x"], missing="interpolate")
    np.testing.assert_allclose(s.values[:, 0], [1, 2, 3, 4, 10])  # linear in the row index
    np.testing.assert_allclose(s.values[:, 1], [5, 6, 7, 7.5, 8])
    edges = read_series(write(tmp_path, "t,y\n0,\n1,3\n2,5\n3,?\n"), "y", missing="interpolate")
    np.testing.assert_allclose(edges.values[:, 0], [3, 3, 5, 5])  # before the first / after the last: that value
    with pytest.raises(DataError, match=r"expected at least one value in column 'y', found none"):
        read_series(write(tmp_path, "t,y\n0,\n1,NA\n"), "y", missing="interpolate")


@pytest.mark.parametrize("text, line, fragment", [
    ("t,y\n0,1\n1,abc\n", 3, "expected a number in column 'y', found 'abc'"),
    ("t,y\n0,1\n1,2,3\n", 3, "expected 2 ','-separated columns (as in the header), found 3"),
    ("t,y\n0,1\n1\n", 3, "expected 2 ','-separated columns (as in the header), found 1"),
    ("t,y\n0,1\n1,2\n1,3\n", 4, "expected a time after '1' (times must strictly increase), found '1'"),
    ("t,y\n5,1\n4,2\n", 3, "expected a time after '5' (times must strictly increase), found '4'"),
    ("t,y\n0,1\nmonday,2\n", 3, "expected a time stamp: a number"),
    ("t,y\n2020-01,1\n2021,2\n", 3, "expected a time stamp of the same kind as the first row's ('2020-01')"),
    ("t,y\n2020-13,1\n", 2, "expected a time stamp"),
    ("t,y\n0,inf\n", 2, "expected a finite number in column 'y', found 'inf'"),
    ("t,y\n", 2, "expected at least one data row after the header, found none"),
    ("t,y\n0,1\n", 1, "expected a column named 'sales' in the header, found columns 't', 'y'"),
])
def test_bad_files_name_file_and_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    target = "sales" if "sales" in fragment else "y"
    with pytest.raises(DataError) as e:
        read_series(path, target)
    assert str(e.value).startswith(f"{path}:{line}: ") and fragment in str(e.value), str(e.value)


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_series(write(tmp_path, "\n"), "y")


def test_write_series_csv_round_trip(tmp_path):
    path = tmp_path / "out.csv"
    text = write_series_csv(path, "YEAR", ["2009", "2010"], {"SUNACTIVITY": np.array([1.5, 2.25])})
    assert text == "YEAR,SUNACTIVITY\n2009,1.5\n2010,2.25\n" and path.read_text() == text
    s = read_series(path, "SUNACTIVITY")
    np.testing.assert_array_equal(s.values[:, 0], [1.5, 2.25])
    text = write_series_csv(None, "YEAR,MONTH", ["2009-07", "2009-12"], {"SUNACTIVITY": [1.0, 2.0]})
    assert text == "YEAR,MONTH,SUNACTIVITY\n2009,7,1\n2009,12,2\n"  # the monthly file's own layout


@pytest.mark.parametrize("text, fragment", [
    ("YEAR,SUNACTIVITY\n1700,5\n1701,x\n", "s.csv:3: expected a number in column 'SUNACTIVITY', found 'x'"),
    ("YEAR,SUNACTIVITY\n1700,5\n1701,6,7\n", "s.csv:3: expected 2 ','-separated columns"),
    ("YEAR,SUNACTIVITY\n1701,5\n1700,6\n", "s.csv:3: expected a time after '1701'"),
    ("", "s.csv: file is empty"),
])
def test_cli_one_line_exit_2(tmp_path, capsys, text, fragment):
    path = write(tmp_path, text)
    code = main(["train", "forecast", "--data", str(path), "--target", "SUNACTIVITY", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "r").exists()
