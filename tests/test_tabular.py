"""TSV/CSV reader (rnnkit.data.tabular) and word-vector loader (rnnkit.data.vectors) on literal excerpts."""
import gzip

import pytest
import torch

from rnnkit.data import DataError, Vocab
from rnnkit.data.tabular import delimiter_for, read_table
from rnnkit.data.vectors import load_vectors

# the format of GLUE SST-2's train.tsv (header, sentence<TAB>label)
SST2_TSV = ("sentence\tlabel\n"
            "hide new secretions from the parental units \t0\n"
            "contains no wit , only labored gags \t0\n"
            "that loves its characters and communicates something rather beautiful about human nature \t1\n")

# a CSV with quoting: a comma inside a quoted field, "" escapes, and a field spanning two lines
QUOTED_CSV = ('label,text\n'
              'pos,"a fine, fine film"\n'
              'neg,"he said ""no"" twice"\n'
              'pos,"two\nlines"\n'
              'neg,plain\n')


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_with_header_by_name(tmp_path):
    rows = read_table(write(tmp_path, "train.tsv", SST2_TSV), text_column="sentence", label_column="label")
    assert [r.label for r in rows] == ["0", "0", "1"]
    assert rows[1].text == "contains no wit , only labored gags" and rows[1].line == 3


def test_tsv_by_index_header_flag(tmp_path):
    path = write(tmp_path, "train.tsv", SST2_TSV)
    rows = read_table(path, 0, 1, header=True)
    assert len(rows) == 3 and rows[0].label == "0"
    # without a header the header row is an example like any other
    assert read_table(path, 0, 1)[0].label == "label"


def test_csv_quoting_and_line_numbers(tmp_path):
    rows = read_table(write(tmp_path, "data.csv", QUOTED_CSV), text_column="text", label_column="label")
    assert [r.text for r in rows] == ["a fine, fine film", 'he said "no" twice', "two\nlines", "plain"]
    assert [r.line for r in rows] == [2, 3, 4, 6]  # the quoted field spans lines 4-5


def test_gzip_and_delimiter_from_name(tmp_path):
    path = tmp_path / "train.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(SST2_TSV)
    assert delimiter_for(path) == "\t" and delimiter_for("x.csv") == ","
    assert len(read_table(path, "sentence", "label")) == 3


def test_blank_lines_skipped(tmp_path):
    rows = read_table(write(tmp_path, "d.csv", "a b,x\n\n  \nc,y\n"), 0, 1)
    assert [(r.text, r.label, r.line) for r in rows] == [("a b", "x", 1), ("c", "y", 4)]


def test_wrong_column_count(tmp_path):
    path = write(tmp_path, "d.tsv", "good text\tpos\nbad text\tpos\textra\n")
    with pytest.raises(DataError, match=rf"^{path}:2: expected 2 columns, found 3$"):
        read_table(path, 0, 1)


def test_unbalanced_quote(tmp_path):
    path = write(tmp_path, "d.csv", 'ok,x\n"never closed,y\n')
    with pytest.raises(DataError, match=rf"^{path}:2: expected .*balanced quotes"):
        read_table(path, 0, 1)
    assert read_table(path, 0, 1, quoting=False)[1].text == '"never closed'


@pytest.mark.parametrize("content, fragment", [
    ("", "empty"),
    ("text\tlabel\n", "expected rows after the header"),
    ("a\t\n", "expected a label in column 1, found an empty field"),
])
def test_bad_tables(tmp_path, content, fragment):
    path = write(tmp_path, "d.tsv", content)
    with pytest.raises(DataError, match=fragment):
        read_table(path, 0, 1, header=content.startswith("text"))


def test_bad_columns(tmp_path):
    path = write(tmp_path, "d.tsv", SST2_TSV)
    with pytest.raises(DataError, match="named 'text' in the header"):
        read_table(path, "text", "label")
    with pytest.raises(DataError, match="index 5 to be < 2"):
        read_table(path, 5, 1)


# ---- word vectors ------------------------------------------------------------------------------------------

GLOVE = "the 0.1 0.2 -0.3\nfilm 1 2 3\nThe 9 9 9\ngood 0.5 -0.5 1e-1\n"
WORD2VEC = "3 3\n" + GLOVE.replace("The 9 9 9\n", "")


@pytest.mark.parametrize("text", [GLOVE, WORD2VEC])
def test_vectors_glove_and_word2vec(tmp_path, text):
    vocab = Vocab(["<pad>", "<unk>", "the", "good", "bad", "Film"])
    v = load_vectors(write(tmp_path, "vec.txt", text), vocab, lower=True)
    assert v.dim == 3 and v.num_found == 3
    assert v.found.tolist() == [False, False, True, True, False, True]
    torch.testing.assert_close(v.weights[2], torch.tensor([0.1, 0.2, -0.3]))  # exact form, not "The"
    torch.testing.assert_close(v.weights[5], torch.tensor([1.0, 2.0, 3.0]))  # "Film" matched "film"
    torch.testing.assert_close(v.weights[4], torch.zeros(3))


def test_vectors_exact_case_only(tmp_path):
    vocab = Vocab(["<unk>", "Film", "The"])
    v = load_vectors(write(tmp_path, "vec.txt", GLOVE), vocab)
    assert v.found.tolist() == [False, False, True] and v.weights[2].tolist() == [9, 9, 9]


def test_vectors_word_with_spaces(tmp_path):
    v = load_vectors(write(tmp_path, "v.txt", "a 1 2\nnew york 3 4\n"), Vocab(["<unk>", "new york"]))
    assert v.weights[1].tolist() == [3.0, 4.0]


@pytest.mark.parametrize("text, fragment", [
    ("a 1 2 3\nb 1 2\n", ":2: expected a word and 3 numbers, found 2"),
    ("a 1 2\nb 1 x\n", ":2: expected 2 numbers after the word, found 'x'"),
    ("\n\n", "empty"),
])
def test_vectors_bad_lines(tmp_path, text, fragment):
    path = write(tmp_path, "v.txt", text)
    with pytest.raises(DataError, match=fragment) as e:
        load_vectors(path, Vocab(["<unk>", "a", "b"]))
    assert str(e.value).startswith(str(path))
