"""rnnkit.data.trees: the PTB/SST bracketed-tree reader, against literal SST lines and hand-counted positions."""
import gzip

import pytest

from rnnkit.data import DataError
from rnnkit.data.trees import Tree, iter_trees, parse_tree, read_trees

# Literal lines 1, 2 and 817 of SST's dev.txt (Socher et al. 2013); line 817 has PTB's -LRB- / -RRB- tokens.
SST_LINES = [
    "(3 (2 It) (4 (4 (2 's) (4 (3 (2 a) (4 (3 lovely) (2 film))) (3 (2 with) (4 (3 (3 lovely) (2 performances))"
    " (2 (2 by) (2 (2 (2 Buy) (2 and)) (2 Accorsi))))))) (2 .)))",
    "(2 (2 (1 No) (2 one)) (1 (1 (2 goes) (2 (1 (2 (2 unindicted) (2 here)) (2 ,)) (2 (2 which) (3 (2 (2 is) "
    "(2 probably)) (3 (2 for) (4 (2 the) (4 best))))))) (2 .)))",
    "(0 (2 (1 -LRB-) (2 (2 A) (3 -RRB-))) (0 (1 (1 shapeless) (0 (2 blob) (1 (2 of) (1 (1 desperate) "
    "(3 entertainment))))) (2 .)))",
]


def test_sst_line_structure():
    t = parse_tree("(3 (2 It) (4 (2 's) (4 great)))")
    assert t.label == 3 and not t.is_leaf and t.word is None
    assert [c.label for c in t.children] == [2, 4]
    assert t.children[0].is_leaf and t.children[0].word == "It"
    assert t.leaves() == ["It", "'s", "great"]
    assert [n.label for n in t] == [2, 2, 4, 4, 3]  # post-order
    assert [n.word for n in t] == ["It", "'s", "great", None, None]
    assert t.height == 2 and t.children[0].height == 0 and t.children[1].height == 1
    assert len(t) == 5


def test_real_sst_lines():
    t = parse_tree(SST_LINES[0])
    assert t.leaves() == "It 's a lovely film with lovely performances by Buy and Accorsi .".split(" ")
    assert t.label == 3 and len(t) == 2 * len(t.leaves()) - 1  # SST trees are binary
    assert all(len(n.children) in (0, 2) for n in t)
    u = parse_tree(SST_LINES[2])
    assert u.leaves() == ["-LRB-", "A", "-RRB-", "shapeless", "blob", "of", "desperate", "entertainment", "."]
    assert u.label == 0 and u.children[0].label == 2 and u.children[0].children[0].label == 1
    w = parse_tree("(2 (2 Writer\\/director) (2 (2 Alexander) (2 Payne)))")  # PTB escapes '/' with a backslash
    assert w.leaves() == ["Writer\\/director", "Alexander", "Payne"]


def test_nbsp_inside_a_word_is_kept():
    t = parse_tree("(2 (2 8\u00a01\\/2) (2 hours))")
    assert t.leaves() == ["8\u00a01\\/2", "hours"]


def test_height_counts_the_longest_path():
    # a left-branching chain of depth 3 next to a leaf
    t = parse_tree("(1 (1 (1 (1 a) (1 b)) (1 c)) (1 d))")
    assert t.height == 3
    assert [n.height for n in t] == [0, 0, 1, 0, 2, 0, 3]


def test_n_ary_and_unary_nodes_and_extra_spaces():
    t = parse_tree("  ( 0  (1 a)(2 b) (3 (4 c)) )  ")
    assert [len(n.children) for n in t] == [0, 0, 0, 1, 3]
    assert t.leaves() == ["a", "b", "c"] and t.height == 2


def test_single_leaf_tree():
    t = parse_tree("(4 great)")
    assert t.is_leaf and t.leaves() == ["great"] and t.height == 0 and [n.label for n in t] == [4]


def test_str_round_trip_and_relabel():
    for line in SST_LINES:
        assert str(parse_tree(line)) == line
    t = parse_tree("(3 (2 It) (4 (2 's) (4 great)))")
    r = t.relabel([0, 1, 2, 3, 4])
    assert str(r) == "(4 (0 It) (3 (1 's) (2 great)))"
    assert str(t) == "(3 (2 It) (4 (2 's) (4 great)))"  # unchanged
    with pytest.raises(ValueError, match="expected 5 labels"):
        t.relabel([1, 2])


def test_deep_tree_needs_no_recursion():
    depth = 5000
    text = "(1 " * depth + "(2 x)" + " (3 y))" * depth
    t = parse_tree(text)
    assert t.height == depth and len(t) == 2 * depth + 1 and t.leaves() == ["x"] + ["y"] * depth


def test_num_classes():
    assert parse_tree("(1 a)", num_classes=2).label == 1
    with pytest.raises(DataError, match=r"<string>:1:2: expected an integer label in 0\.\.1, found '2'"):
        parse_tree("(2 a)", num_classes=2)
    assert parse_tree("(17 a)", num_classes=None).label == 17


@pytest.mark.parametrize("text, message", [
    ("", "1:1: expected '(' starting a tree, found end of line"),
    ("   ", "1:4: expected '(' starting a tree, found end of line"),
    ("It 's great", "1:1: expected '(' starting a tree, found 'It'"),
    # unbalanced brackets
    ("(3 (2 It) (4 great)", "1:20: expected '(' or ')' closing the node opened at column 1, found end of line"),
    ("(3 (2 It) (4 (2 's) (4 great))", "1:31: expected '(' or ')' closing the node opened at column 1, "
                                       "found end of line"),
    ("(3 (2 It", "1:9: expected ')' closing the leaf, found end of line"),
    ("(3 (2 It) (4 great)))", "1:21: expected end of line after the tree, found ')'"),
    # missing / non-integer / out-of-range labels
    ("(3 (It) (4 great))", "1:5: expected an integer label in 0..4, found 'It'"),
    ("(3 (2 It) (pos great))", "1:12: expected an integer label in 0..4, found 'pos'"),
    ("(3 (2.5 It) (4 great))", "1:5: expected an integer label in 0..4, found '2.5'"),
    ("(5 (2 It) (4 great))", "1:2: expected an integer label in 0..4, found '5'"),
    ("(3 (-1 It) (4 great))", "1:5: expected an integer label in 0..4, found '-1'"),
    ("(3 (2 It) ( ))", "1:13: expected an integer label in 0..4, found ')'"),
    # leaves and nodes with the wrong content
    ("(3 (2 ) (4 great))", "1:7: expected a word or '(' after the label, found ')'"),
    ("(3 (2 It 's) (4 great))", "1:10: expected ')' closing the leaf, found \"'s\""),
    ("(3 (2 It) great)", "1:11: expected '(' or ')' closing the node opened at column 1, found 'great'"),
    ("(3 (2 (2 a) b) (4 c))", "1:13: expected '(' or ')' closing the node opened at column 4, found 'b'"),
    # trailing text
    ("(3 (2 It) (4 great)) extra", "1:22: expected end of line after the tree, found 'extra'"),
    ("(2 a) (2 b)", "1:7: expected end of line after the tree, found '('"),
])
def test_errors_say_where_what_was_expected_and_found(text, message):
    with pytest.raises(DataError) as e:
        parse_tree(text, source="trees.txt", line=7)
    assert str(e.value) == "trees.txt:7:" + message.split(":", 1)[1]
    assert "\n" not in str(e.value)


def test_read_trees_plain_and_gz(tmp_path):
    plain = tmp_path / "dev.txt"
    plain.write_text("\n".join(SST_LINES) + "\n\n", encoding="utf-8")  # trailing blank line skipped
    gz = tmp_path / "dev.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write("\n".join(SST_LINES) + "\n")
    for path in (plain, gz):
        trees = read_trees(path)
        assert [str(t) for t in trees] == SST_LINES
        assert [t.label for t in trees] == [3, 2, 0]


def test_read_trees_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text(SST_LINES[0] + "\n\n" + "(2 (2 a) (2 b)\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_trees(path)
    assert str(e.value) == f"{path}:3:15: expected '(' or ')' closing the node opened at column 1, found end of line"


def test_read_trees_empty_and_missing(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        read_trees(empty)
    with pytest.raises(DataError, match="file not found"):
        read_trees(tmp_path / "nope.txt")
    assert list(iter_trees("\n \n")) == []


def test_tree_constructor_checks_leaf_or_internal():
    with pytest.raises(ValueError):
        Tree(1)
    with pytest.raises(ValueError):
        Tree(1, [Tree(2, word="a")], word="b")
