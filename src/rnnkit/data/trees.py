"""Labelled constituency trees in PTB bracket format, as in the Stanford Sentiment Treebank (SST):

    (3 (2 It) (4 (2 's) (4 great)))

one tree per line. Grammar (whitespace = ASCII space, tab, CR between tokens):

    tree  := "(" LABEL WORD ")"                leaf: a label and one word
           | "(" LABEL tree tree* ")"          internal node: a label and one or more subtrees
    LABEL := an integer in [0, num_classes)     (SST: 0 very negative .. 4 very positive)
    WORD  := characters other than "(", ")" and ASCII whitespace (so SST's U+00A0 inside "8\u00a01\\/2"
             stays part of the word, as in the treebank)

    tree = parse_tree("(3 (2 It) (4 (2 's) (4 great)))")
    tree.label, tree.leaves(), tree.height        # 3, ["It", "'s", "great"], 2
    [node.label for node in tree]                  # post-order: [2, 2, 4, 4, 3]
    trees = read_trees("sst/train.txt.gz")         # .gz and UTF-8 checks by `read_text`

Errors are `DataError`s that say where, what was expected and what was found:
`train.txt:12:34: expected ')' closing the node opened at column 5, found end of line`.
Columns are 1-based character positions in the line.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

from rnnkit.data.text import DataError, read_text, shown

_SPACE = " \t\r"
_DELIMS = "() \t\r\n"


class Tree:
    """A node of a labelled tree: `label` (int), `children` (list of Tree; empty for a leaf), `word` (the
    leaf's token, None for internal nodes). Iterating yields every node in post-order (children before
    their parent, left to right), the order in which a recursive network evaluates them."""

    __slots__ = ("label", "children", "word")

    def __init__(self, label: int, children: list[Tree] | None = None, word: str | None = None):
        children = list(children or [])
        if (word is None) == (not children):
            raise ValueError("a Tree node is either a leaf with a word or an internal node with children")
        self.label = label
        self.children = children
        self.word = word

    @property
    def is_leaf(self) -> bool:
        return self.word is not None

    def leaves(self) -> list[str]:
        """The words of the leaves, left to right (the sentence)."""
        return [node.word for node in self if node.word is not None]

    def __iter__(self) -> Iterator[Tree]:
        """All nodes in post-order, without recursion (deep trees do not hit Python's recursion limit)."""
        stack: list[tuple[Tree, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded or node.word is not None:
                yield node
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(node.children))

    def __len__(self) -> int:
        """Number of nodes."""
        return sum(1 for _ in self)

    @property
    def height(self) -> int:
        """0 for a leaf, 1 + the largest child height otherwise."""
        heights: dict[int, int] = {}
        for node in self:
            heights[id(node)] = 0 if node.word is not None else 1 + max(heights[id(c)] for c in node.children)
        return heights[id(self)]

    def relabel(self, labels: list[int]) -> Tree:
        """A copy of this tree with the node labels replaced by `labels`, given in post-order."""
        nodes = list(self)
        if len(labels) != len(nodes):
            raise ValueError(f"expected {len(nodes)} labels (one per node), got {len(labels)}")
        copies: dict[int, Tree] = {}
        for node, label in zip(nodes, labels):
            kids = [copies[id(c)] for c in node.children]
            copies[id(node)] = Tree(int(label), kids or None, node.word)
        return copies[id(self)]

    def __str__(self) -> str:
        """The bracketed form; `parse_tree(str(t))` rebuilds `t`."""
        parts: dict[int, str] = {}
        for node in self:
            inner = node.word if node.word is not None else " ".join(parts.pop(id(c)) for c in node.children)
            parts[id(node)] = f"({node.label} {inner})"
        return parts[id(self)]

    def __repr__(self) -> str:
        return f"Tree({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tree) and str(self) == str(other)

    __hash__ = None  # mutable


def _describe(text: str, i: int) -> str:
    if i >= len(text) or text[i] == "\n":
        return "end of line"
    j = i
    while j < len(text) and text[j] not in _DELIMS:
        j += 1
    return shown(text[i:max(j, i + 1)])


def _word_end(text: str, i: int) -> int:
    while i < len(text) and text[i] not in _DELIMS:
        i += 1
    return i


def parse_tree(text: str, source: str = "<string>", line: int = 1, num_classes: int | None = 5) -> Tree:
    """Parse one bracketed tree; `source` and `line` only name the position in error messages.
    `num_classes`: labels must lie in [0, num_classes) (None: any integer >= 0)."""
    parser = _Parser(text, source, line, num_classes)
    return parser.parse()


class _Parser:
    def __init__(self, text: str, source: str, line: int, num_classes: int | None):
        self.text, self.source, self.line, self.num_classes = text.rstrip("\n"), source, line, num_classes

    def fail(self, i: int, expected: str, found: str | None = None) -> DataError:
        found = found if found is not None else _describe(self.text, i)
        return DataError(f"{self.source}:{self.line}:{i + 1}: expected {expected}, found {found}")

    def skip(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in _SPACE:
            i += 1
        return i

    def label(self, i: int) -> tuple[int, int]:
        end = _word_end(self.text, i)
        token = self.text[i:end]
        what = "an integer label" if self.num_classes is None else f"an integer label in 0..{self.num_classes - 1}"
        if not token:
            raise self.fail(i, what)
        try:
            value = int(token)
        except ValueError:
            raise self.fail(i, what, shown(token)) from None
        if value < 0 or (self.num_classes is not None and value >= self.num_classes):
            raise self.fail(i, what, shown(token))
        return value, end

    def parse(self) -> Tree:
        text = self.text
        i = self.skip(0)
        if i >= len(text) or text[i] != "(":
            raise self.fail(i, "'(' starting a tree")
        # stack of open nodes: (column of '(', label, children so far)
        stack: list[tuple[int, int, list[Tree]]] = []
        root = None
        while True:
            # here text[i] == "(": open a node
            label, i = self.label(self.skip(i + 1))
            j = self.skip(i)
            if j < len(text) and text[j] == "(":
                stack.append((i, label, []))  # internal node; its children follow
                i = j
                continue
            if j >= len(text) or text[j] in ")\n" or j == i:
                raise self.fail(j, "a word or '(' after the label")
            end = _word_end(text, j)
            node = Tree(label, word=text[j:end])
            i = self.skip(end)
            if i >= len(text) or text[i] != ")":
                raise self.fail(i, "')' closing the leaf")
            i += 1
            # close finished internal nodes
            while True:
                if not stack:
                    root = node
                    break
                stack[-1][2].append(node)
                i = self.skip(i)
                if i < len(text) and text[i] == "(":
                    break
                if i < len(text) and text[i] == ")":
                    _, lab, kids = stack.pop()
                    node = Tree(lab, kids)
                    i += 1
                    continue
                col = self._open_col(stack[-1][0])
                raise self.fail(i, f"'(' or ')' closing the node opened at column {col}")
            if root is not None:
                break
        i = self.skip(i)
        if i < len(text):
            raise self.fail(i, "end of line after the tree")
        return root

    def _open_col(self, label_end: int) -> int:
        """Column of the '(' that opened the node whose label ends at `label_end`."""
        return self.text.rfind("(", 0, label_end) + 1


def iter_trees(text: str, source: str = "<string>", num_classes: int | None = 5) -> Iterator[Tree]:
    """The trees of a text with one tree per line (blank lines are skipped)."""
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip(_SPACE):
            yield parse_tree(line, source, n, num_classes)


def read_trees(path: str | os.PathLike, num_classes: int | None = 5) -> list[Tree]:
    """All trees of a file (UTF-8, optionally .gz), one per line. Raises DataError on the first bad line,
    or when the file holds no tree."""
    trees = list(iter_trees(read_text(path, "bracketed trees (UTF-8 text)"), str(path), num_classes))
    if not trees:
        raise DataError(f"{path}: expected one bracketed tree per line, found no tree")
    return trees
