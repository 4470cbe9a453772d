"""Bad input files give one DataError naming the file, the line and what was expected, for every reader.

Each case builds the broken file from a known-good one by an independent means (gzip of the good bytes cut
short, numpy's own .npz writer, a flipped deflate byte) and checks the message fragments, not only the type.
"""
import gzip
import json
import zlib

import numpy as np
import pytest

from rnnkit.data import DataError, Vocab, read_text
from rnnkit.data.conll import read_conll, read_conllu, read_tokens
from rnnkit.data.parallel import read_parallel, read_vectors
from rnnkit.data.series import read_series
from rnnkit.data.tabular import read_table
from rnnkit.data.text import iter_lines, read_json
from rnnkit.data.trees import read_trees
from rnnkit.data.vectors import load_vectors

ROWS = 3000  # enough lines that a cut in the middle of the gzip stream lands well after line 1
GOOD = {
    "text": "".join(f"the cat sat on mat {i}\n" for i in range(ROWS)),
    "tsv": "sentence\tlabel\n" + "".join(f"a good film {i}\t{i % 2}\n" for i in range(ROWS)),
    "conllu": "".join(f"1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2\tcat{i}\tcat\tNOUN\tNN\t_\t0\troot\t_\t_\n\n"
                      for i in range(ROWS)),
    "conll": "".join(f"EU B-ORG\nrejects{i} O\n\n" for i in range(ROWS)),
    "trees": "".join(f"(3 (2 It{i}) (4 (2 's) (4 great)))\n" for i in range(ROWS)),
    "series": "year,v\n" + "".join(f"{1700 + i},{i % 7}\n" for i in range(ROWS)),
    "glove": "".join(f"w{i} 0.1 0.2 0.3\n" for i in range(ROWS)),
    "vectors": "".join(f"0.{i},0.5\n" for i in range(ROWS)),
    "parallel": "".join(f"ein satz {i}\n" for i in range(ROWS)),
}
VOCAB = Vocab(["<unk>", "w1", "w2"])


def read(kind: str, path):
    """The reader of each format, called as its task calls it."""
    if kind == "text":
        return read_text(path)
    if kind == "tsv":
        return read_table(path, "sentence", "label")
    if kind == "conllu":
        return read_conllu(path)
    if kind == "conll":
        return read_conll(path)
    if kind == "trees":
        return read_trees(path)
    if kind == "series":
        return read_series(path, "v")
    if kind == "glove":
        return load_vectors(path, VOCAB)
    if kind == "vectors":
        return read_vectors(path)
    if kind == "parallel":
        return read_parallel(path, path)
    raise AssertionError(kind)


def error(kind, path) -> str:
    with pytest.raises(DataError) as e:
        read(kind, path)
    message = str(e.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_every_reader_reads_its_good_gzip_file(tmp_path, kind):
    path = tmp_path / f"data.{kind}.gz"
    path.write_bytes(gzip.compress(GOOD[kind].encode()))
    result = read(kind, path)  # the baseline the corruptions below break
    assert result.num_found == 2 if kind == "glove" else len(result) >= ROWS


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_truncated_gzip_names_the_line_it_breaks_at(tmp_path, kind):
    good = GOOD[kind].encode()
    packed = gzip.compress(good, compresslevel=0)  # stored blocks: byte k of the stream is byte ~k of the text
    path = tmp_path / f"data.{kind}.gz"
    path.write_bytes(packed[: len(packed) // 2])
    message = error(kind, path)
    assert "(gzip-compressed), found the gzip data cut short (a truncated file?)" in message, message
    line = int(message.split(":")[1])
    lines_in_first_half = good[: len(packed) // 2].count(b"\n")
    assert 2 <= line <= lines_in_first_half + 1, (line, lines_in_first_half)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_corrupt_deflate_data_is_a_data_error(tmp_path, kind):
    packed = bytearray(gzip.compress(GOOD[kind].encode()))
    packed[12] ^= 0xFF  # the first byte after the 10-byte header: the deflate block header
    with pytest.raises(zlib.error):
        gzip.decompress(bytes(packed))  # the oracle: Python's own gzip rejects it with a zlib.error
    path = tmp_path / f"data.{kind}.gz"
    path.write_bytes(packed)
    message = error(kind, path)
    assert "(gzip-compressed), found the gzip data corrupt (" in message, message


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_crc_mismatch_is_a_data_error(tmp_path, kind):
    packed = bytearray(gzip.compress(GOOD[kind].encode()))
    packed[-8] ^= 0x01  # the CRC32 in the trailer
    path = tmp_path / f"data.{kind}.gz"
    path.write_bytes(packed)
    message = error(kind, path)
    assert "(gzip-compressed), found the gzip data corrupt (CRC check failed" in message, message


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_npz_given_as_input_says_what_it_found(tmp_path, kind):
    path = tmp_path / f"data.{kind}"
    np.savez(tmp_path / "x.npz", a=np.zeros((2, 3)))
    path.write_bytes((tmp_path / "x.npz").read_bytes())
    assert "found a zip archive (e.g. a NumPy .npz file" in error(kind, path)


@pytest.mark.parametrize("kind", sorted(set(GOOD) - {"vectors"}))
def test_npy_given_as_text_says_what_it_found(tmp_path, kind):
    path = tmp_path / f"data.{kind}"
    with open(path, "wb") as f:
        np.save(f, np.zeros((2, 3)))
    assert "found a NumPy .npy array" in error(kind, path)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_empty_and_blank_files(tmp_path, kind):
    for content in (b"", b"\n \r\n\t\n"):
        path = tmp_path / f"data.{kind}"
        path.write_bytes(content)
        assert "file is empty" in error(kind, path)
        gz = tmp_path / f"data.{kind}.gz"
        gz.write_bytes(gzip.compress(content))
        assert "file is empty" in error(kind, gz)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_undecodable_and_nul_bytes_name_the_line(tmp_path, kind):
    lines = GOOD[kind].encode().split(b"\n")
    path = tmp_path / f"data.{kind}"
    path.write_bytes(b"\n".join(lines[:5] + [lines[5] + b"\xff\xfe"] + lines[6:]))
    assert f"{path}:6: expected " in error(kind, path) and "not UTF-8 (byte 0xff" in error(kind, path)
    path.write_bytes(b"\n".join(lines[:3] + [b"a\x00b"] + lines[4:]))
    assert f"{path}:4: expected " in error(kind, path) and "found binary data (a NUL byte)" in error(kind, path)


def test_bom_and_crlf_read_like_the_plain_file(tmp_path):
    for kind in ("tsv", "conllu", "conll", "trees", "series", "vectors", "parallel"):
        plain, odd = tmp_path / f"a.{kind}", tmp_path / f"b.{kind}"
        plain.write_text(GOOD[kind], encoding="utf-8")
        odd.write_bytes(b"\xef\xbb\xbf" + GOOD[kind].replace("\n", "\r\n").encode())
        a, b = read(kind, plain), read(kind, odd)
        assert repr(a).replace(str(plain), "P") == repr(b).replace(str(odd), "P"), kind


def test_named_gz_but_plain_text(tmp_path):
    path = tmp_path / "x.tsv.gz"
    path.write_text(GOOD["tsv"])
    assert "not a valid gzip file (expected rows of delimited text, gzip-compressed as the name ends in .gz; found " \
           "the bytes b'se' at the start)" in error("tsv", path)
    glove = tmp_path / "g.txt.gz"
    glove.write_text(GOOD["glove"])
    assert "not a valid gzip file" in error("glove", glove)


def test_gzip_recognised_by_content_whatever_the_name(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes(gzip.compress(GOOD["tsv"].encode()))
    assert len(read_table(path, "sentence", "label")) == ROWS


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_a_huge_bad_field_gives_a_short_line(tmp_path, kind):
    lines = GOOD[kind].split("\n")
    lines[2] = "x" * 140_000 + lines[2]  # over csv's 128 KiB field limit, and not a valid field of any format
    path = tmp_path / f"data.{kind}"
    path.write_text("\n".join(lines), encoding="utf-8")
    if kind in ("text", "tsv", "parallel", "glove"):  # a long word is valid text
        read(kind, path)
        return
    message = error(kind, path)
    assert len(message) < len(str(path)) + 300 and f"{path}:3" in message, message


# ---- CSV fields over csv's 128 KiB default limit ------------------------------------------------------------


def test_a_tsv_field_over_128_kib_is_read(tmp_path):
    long = "word " * 40_000  # 200 KB > csv.field_size_limit()'s default 131072
    path = tmp_path / "long.tsv"
    path.write_text(f"sentence\tlabel\n{long}\t1\nshort\t0\n", encoding="utf-8")
    rows = read_table(path, "sentence", "label")
    assert [len(r.text) for r in rows] == [len(long.strip()), 5] and rows[1].line == 3


def test_a_quoted_csv_field_over_128_kib_spanning_lines_is_read(tmp_path):
    long = "x" * 150_000 + "\n" + "y" * 10
    path = tmp_path / "long.csv"
    path.write_text(f'text,label\n"{long}",1\nnext,0\n', encoding="utf-8")
    rows = read_table(path, "text", "label")
    assert rows[0].text == long and rows[1].line == 4  # the record after the two-line field starts on line 4


def test_a_series_cell_over_128_kib_is_one_clear_error(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("t,v\n1,2\n2," + "9" * 200_000 + "x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.csv:3: expected a number in column 'v', found '9999"):
        read_series(path, "v")


def test_series_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text('t,v,note\n1,2,"a\nb"\n\n2,oops,c\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.csv:5: expected a number in column 'v', found 'oops'"):
        read_series(path, "v")


def test_series_time_columns_with_unicode_digits(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("year,month,v\n2000,\u00b2,1\n", encoding="utf-8")  # '²'.isdigit() but int('²') fails
    with pytest.raises(DataError, match=r"s\.csv:2: expected a time stamp.*found '2000-\u00b2'"):
        read_series(path, "v", time="year,month")


def test_series_future_past_year_9999(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("date,v\n9999-12-30,1\n9999-12-31,2\n", encoding="utf-8")
    series = read_series(path, "v")
    with pytest.raises(DataError, match=r"s\.csv: date: expected a last time 3 steps before the end of the "
                                        r"calendar \(year 9999\), found '9999-12-31'"):
        series.future_times(3)


def test_series_header_after_blank_lines(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("\n\n t , v \n1,2\n", encoding="utf-8")
    assert read_series(path, "v").times == ["1"]
    path.write_text("\n\nt,v\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.csv:4: expected at least one data row after the header"):
        read_series(path, "v")


# ---- features for one->seq (read_vectors) --------------------------------------------------------------


def test_vectors_npz_as_features(tmp_path):
    np.savez(tmp_path / "f.npz", a=np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"f\.npz: expected a \.npy array or a CSV file of numbers .*found a zip "
                                        r"archive"):
        read_vectors(tmp_path / "f.npz")
    (tmp_path / "g.npy").write_bytes((tmp_path / "f.npz").read_bytes())
    with pytest.raises(DataError, match=r"g\.npy: expected .*found a zip archive"):
        read_vectors(tmp_path / "g.npy")


def test_vectors_npy_recognised_by_content_and_checked(tmp_path):
    arr = np.arange(6, dtype=np.float64).reshape(2, 3)
    with open(tmp_path / "f.bin", "wb") as f:
        np.save(f, arr)
    np.testing.assert_array_equal(read_vectors(tmp_path / "f.bin"), arr.astype(np.float32))
    raw = (tmp_path / "f.bin").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[: len(raw) - 10])
    with pytest.raises(DataError, match=r"cut\.npy: expected .*found a \.npy file that numpy cannot read"):
        read_vectors(tmp_path / "cut.npy")
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy: expected .*numpy cannot read .*allow_pickle"):
        read_vectors(tmp_path / "obj.npy")
    np.save(tmp_path / "c.npy", np.ones((2, 2), dtype=np.complex64))
    with pytest.raises(DataError, match=r"c\.npy: expected a 2-D array of real numbers .*complex64"):
        read_vectors(tmp_path / "c.npy")
    np.save(tmp_path / "nan.npy", np.array([[1.0, 2.0], [3.0, np.nan]]))
    with pytest.raises(DataError, match=r"nan\.npy: row 2: expected finite float32 numbers, found nan in column 2"):
        read_vectors(tmp_path / "nan.npy")
    np.save(tmp_path / "e.npy", np.zeros((0, 4)))
    with pytest.raises(DataError, match=r"e\.npy: expected at least one vector .*found shape \(0, 4\)"):
        read_vectors(tmp_path / "e.npy")


def test_vectors_csv_overflow_and_nan(tmp_path):
    (tmp_path / "f.csv").write_text("1,2\n3,1e39\n")
    with pytest.raises(DataError, match=r"f\.csv:2: expected finite float32 numbers, found 1e\+39 in column 2"):
        read_vectors(tmp_path / "f.csv")


# ---- GloVe / word2vec text vectors ---------------------------------------------------------------------


def test_glove_header_only_and_zero_dim(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("3 100\n")
    with pytest.raises(DataError, match=r"v\.txt: expected word vectors .*found no vector after the word2vec"):
        load_vectors(path, VOCAB)
    path.write_text("3 0\nw1\n")
    with pytest.raises(DataError, match=r"v\.txt:1: expected a word2vec header 'COUNT DIM' with DIM >= 1"):
        load_vectors(path, VOCAB)


def test_glove_inf_value_of_a_vocabulary_word(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("w1 0.5 1e40\nw2 inf 1\n")
    with pytest.raises(DataError, match=r"v\.txt:1: expected 2 finite numbers after the word, found '1e40'"):
        load_vectors(path, VOCAB)


def test_iter_lines_streams_gzip_and_names_the_truncated_line(tmp_path):
    text = "".join(f"line {i}\n" for i in range(50_000))
    packed = gzip.compress(text.encode())
    (tmp_path / "a.gz").write_bytes(packed)
    assert [n for n, _ in iter_lines(tmp_path / "a.gz")][-1] == 50_000
    (tmp_path / "b.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError) as e:
        for _ in iter_lines(tmp_path / "b.gz"):
            pass
    line = int(str(e.value).split(":")[1])
    assert 10_000 < line < 40_000 and "cut short" in str(e.value), str(e.value)


# ---- CoNLL lines are split at \n only ------------------------------------------------------------------


def test_conll_line_separators_inside_a_token_stay_in_the_line(tmp_path):
    path = tmp_path / "a.conllu"
    path.write_text("1\ta\u2028b\ta\tX\tX\t_\t0\troot\t_\t_\n2\tc\u000cd\tc\tY\tY\t_\t1\tdep\t_\t_\n", "utf-8")
    [s] = read_conllu(path)
    assert s.words == ["a\u2028b", "c\u000cd"] and s.tags == ["X", "Y"]
    path.write_text("x\u2028y\nz\n", "utf-8")
    assert [(s.words, s.line) for s in read_tokens(path)] == [(["x", "y"], 1), (["z"], 2)]  # str.split's words


# ---- vocab.json ------------------------------------------------------------------------------------------


def vocab_error(tmp_path, value, specials=()) -> str:
    path = tmp_path / "vocab.json"
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    with pytest.raises(DataError) as e:
        Vocab.load(path, specials)
    message = str(e.value)
    assert message.startswith(f"{path}:") and "\n" not in message, message
    return message


GOOD_VOCAB = {"format": "rnnkit.vocab/1", "unk": "<unk>", "itos": ["<pad>", "<unk>", "a"]}


@pytest.mark.parametrize("value, fragment", [
    ([1, 2], "expected a vocabulary (a JSON object with format, unk, itos), found a list [1, 2]"),
    ("42", "expected a vocabulary (a JSON object with format, unk, itos), found a number 42"),
    ({**GOOD_VOCAB, "itos": "abc"}, "itos: expected a list of token strings, found a string 'abc'"),
    ({**GOOD_VOCAB, "itos": ["<unk>", 5]}, "itos[1]: expected a token string, found a number 5"),
    ({**GOOD_VOCAB, "itos": ["<unk>", None]}, "itos[1]: expected a token string, found null"),
    ({**GOOD_VOCAB, "itos": ["<unk>", "a", "a"]}, "itos: expected distinct tokens, found 1 duplicated: ['a']"),
    ({**GOOD_VOCAB, "itos": []}, "itos: expected at least one token, found an empty list"),
    ({**GOOD_VOCAB, "unk": 3}, "unk: expected a token string or null, found a number 3"),
    ({**GOOD_VOCAB, "unk": "<oov>"}, "unk: expected one of the tokens of itos, found '<oov>'"),
    ({**GOOD_VOCAB, "format": "other/2"}, "format: expected 'rnnkit.vocab/1', found 'other/2'"),
    ({"format": "rnnkit.vocab/1", "itos": ["a"]}, "expected a vocabulary with the keys format, unk, itos, found "
                                                  "missing ['unk']"),
    ({**GOOD_VOCAB, "extra": 1}, "found unknown keys ['extra']"),
    ("{\n\"itos\": [1,\n", "vocab.json:3: expected a JSON vocabulary (format 'rnnkit.vocab/1'), found text that is "
                           "not JSON"),
    ("", "file is empty (expected a JSON vocabulary"),
    ("[" * 100_000, "found JSON nested too deeply"),
])
def test_vocab_json_that_is_not_a_vocabulary(tmp_path, value, fragment):
    assert fragment in vocab_error(tmp_path, value)


def test_vocab_missing_specials(tmp_path):
    message = vocab_error(tmp_path, {**GOOD_VOCAB, "itos": ["<unk>", "<pad>", "a"]}, specials=("<pad>", "<unk>"))
    assert "itos: expected the special tokens ['<pad>', '<unk>'] first, found ['<unk>', '<pad>']" in message
    path = tmp_path / "ok.json"
    Vocab(["<pad>", "<unk>", "a"]).save(path)
    assert Vocab.load(path, ("<pad>", "<unk>")).itos == ["<pad>", "<unk>", "a"]


def test_vocab_binary_and_missing(tmp_path):
    (tmp_path / "vocab.json").write_bytes(b"\x93NUMPY\x01\x00")
    with pytest.raises(DataError, match=r"vocab\.json: expected a JSON vocabulary .*found a NumPy \.npy array"):
        Vocab.load(tmp_path / "vocab.json")
    with pytest.raises(DataError, match=r"nope\.json: file not found \(expected a JSON vocabulary"):
        Vocab.load(tmp_path / "nope.json")


def test_read_json_names_the_line(tmp_path):
    (tmp_path / "c.json").write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(DataError, match=r"c\.json:4: expected JSON, found text that is not JSON"):
        read_json(tmp_path / "c.json")
