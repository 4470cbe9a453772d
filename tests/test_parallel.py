"""Parallel text and one→sequence vectors: tokenisation, .gz, empty lines, truncation, errors with file:line."""
import gzip

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data import DataError
from rnnkit.data.parallel import read_lines, read_parallel, read_vectors, read_vectors_and_targets, tokenize_line

# the first lines of Multi30k's train.de / train.en (the real format: raw, untokenised, one caption per line)
DE = ("Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.\n"
      "Mehrere Männer mit Schutzhelmen bedienen ein Antriebsradsystem.\n"
      "Ein kleines Mädchen klettert in ein Spielhaus aus Holz.\n")
EN = ("Two young, White males are outside near many bushes.\n"
      "Several men in hard hats are operating a giant pulley system.\n"
      "A little girl climbing into a wooden playhouse.\n")


def write(path, text, gz=False):
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_multi30k_excerpt_gz_and_plain(tmp_path):
    de = write(tmp_path / "train.de.gz", DE, gz=True)
    en = write(tmp_path / "train.en", EN)
    pairs = read_parallel(de, en, lowercase=True)
    assert len(pairs) == 3 and pairs.lines == [1, 2, 3]
    assert pairs.src[2] == ["ein", "kleines", "mädchen", "klettert", "in", "ein", "spielhaus", "aus", "holz."]
    assert pairs.tgt[0][:3] == ["two", "young,", "white"]
    cased = read_parallel(de, en, lowercase=False)
    assert cased.tgt[0][2] == "White"


def test_char_level_and_crlf(tmp_path):
    src = write(tmp_path / "a.txt", "ab c\r\nd\r\n")
    tgt = write(tmp_path / "b.txt", "xy\r\nz\r\n")
    pairs = read_parallel(src, tgt, level="char")
    assert pairs.src == [["a", "b", " ", "c"], ["d"]] and pairs.tgt == [["x", "y"], ["z"]]
    assert read_lines(src) == ["ab c", "d"]
    assert tokenize_line("  Hi  There ", "word", lowercase=True) == ["hi", "there"]


def test_line_count_mismatch_names_both_files_and_counts(tmp_path, capsys):
    src = write(tmp_path / "s.txt", "a\nb\nc\n")
    tgt = write(tmp_path / "t.txt", "x\ny\n")
    with pytest.raises(DataError, match=r"s\.txt has 3 lines but .*t\.txt has 2"):
        read_parallel(src, tgt)
    code = main(["train", "seq2seq", "--src", str(src), "--tgt", str(tgt), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "3 lines" in err[0] and "has 2" in err[0] and str(src) in err[0]


def test_empty_lines_skipped_keeping_line_numbers(tmp_path):
    src = write(tmp_path / "s.txt", "a b\n\nc\nd\n   \n")
    tgt = write(tmp_path / "t.txt", "x\ny\n\nz\nw\n")
    pairs = read_parallel(src, tgt)
    assert pairs.src == [["a", "b"], ["d"]] and pairs.tgt == [["x"], ["z"]]
    assert pairs.lines == [1, 4] and pairs.skipped_empty == 3


def test_all_pairs_empty_is_an_error(tmp_path):
    src = write(tmp_path / "s.txt", "a\n\n")
    tgt = write(tmp_path / "t.txt", "\nb\n")
    with pytest.raises(DataError, match="no sentence pair with text on both sides"):
        read_parallel(src, tgt)


def test_long_sentences_truncated_with_one_warning(tmp_path):
    src = write(tmp_path / "s.txt", "a b\n" + "w " * 9 + "\n" + "v " * 7 + "\n")
    tgt = write(tmp_path / "t.txt", "x\ny\nz\n")
    with pytest.warns(UserWarning, match=r"s\.txt:2: 2 sentence\(s\) longer than 5 tokens truncated .*has 9"):
        pairs = read_parallel(src, tgt, max_len=5)
    assert [len(s) for s in pairs.src] == [2, 5, 5] and pairs.truncated == 2


def test_vectors_from_npy_and_csv(tmp_path):
    arr = np.arange(6, dtype=np.float64).reshape(3, 2)
    np.save(tmp_path / "v.npy", arr)
    write(tmp_path / "v.csv", "0,1\n2,3.5\n-4,5e-1\n")
    np.testing.assert_array_equal(read_vectors(tmp_path / "v.npy"), arr.astype(np.float32))
    np.testing.assert_array_equal(read_vectors(tmp_path / "v.csv"), [[0, 1], [2, 3.5], [-4, 0.5]])
    tgt = write(tmp_path / "t.txt", "a b\n\nc\n")
    vectors, text = read_vectors_and_targets(tmp_path / "v.npy", tgt)
    np.testing.assert_array_equal(vectors, arr[[0, 2]])  # the vector of the empty line is dropped with it
    assert text.tgt == [["a", "b"], ["c"]]


def test_vector_errors(tmp_path):
    write(tmp_path / "bad.csv", "1,2\n3,x\n")
    with pytest.raises(DataError, match=r"bad\.csv:2: expected comma-separated numbers, found '3,x'"):
        read_vectors(tmp_path / "bad.csv")
    write(tmp_path / "ragged.csv", "1,2\n3\n")
    with pytest.raises(DataError, match=r"ragged\.csv:2: expected 2 numbers .*found 1"):
        read_vectors(tmp_path / "ragged.csv")
    np.save(tmp_path / "v.npy", np.zeros((2, 3)))
    tgt = write(tmp_path / "t.txt", "a\nb\nc\n")
    with pytest.raises(DataError, match=r"v\.npy has 2 vectors but .*t\.txt has 3 lines"):
        read_vectors_and_targets(tmp_path / "v.npy", tgt)
    np.save(tmp_path / "v1.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"v1\.npy: expected a 2-D array of real numbers .*found shape \(3,\)"):
        read_vectors(tmp_path / "v1.npy")
