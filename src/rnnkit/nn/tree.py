"""Tree-structured networks: a cell composes the states of a node's children (backpropagation through
structure, Goller & Kuechler 1996; Socher et al. 2011, 2013; Tai et al. 2015).

A tree cell, like a recurrent cell, knows one node and nothing about the tree. It has two maps:

    cell.leaf(x)           x (n, D)                      -> state of n leaves (their word vectors x)
    cell.compose(h, c)     h, c (n, K, H) children states -> state of n internal nodes (K children each;
                                                             missing children are zero rows)

State: a tensor h (n, H) for `RecursiveCell`; `TreeState(h, c)` for the Tree-LSTMs. As in the
constituency trees of SST, only leaves read an input; internal nodes see only their children.

`TreeEncoder` evaluates every node of a batch of trees. The default, level-batched evaluation groups the
nodes by height (leaves: height 0; a node: 1 + its highest child): all leaves of the batch go through one
`leaf` matmul, then every node of height 1, 2, ... through one `compose` matmul per level, so a batch costs
(tree height + 1) matmuls instead of one per node. `node_by_node` evaluates one node at a time in
post-order (the textbook recursion), the reference for tests and the speed benchmark.

Node order. `TreeStructure.build` lays out the nodes of a batch level by level (height 0 first); within a
level, tree by tree and in post-order. So the leaves come first, left to right, tree by tree: row j of the
leaf inputs x belongs to leaf j. `structure.post_order[b]` lists tree b's node positions in post-order and
`structure.roots[b]` its root's position; outputs are (N, H) rows in this order.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn


class TreeState(NamedTuple):
    """State of Tree-LSTM nodes: hidden h (n, H) and memory cell c (n, H)."""

    h: torch.Tensor
    c: torch.Tensor


def _uniform_init(module: nn.Module, hidden_size: int) -> None:
    """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch.nn's recurrent cells."""
    bound = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        nn.init.uniform_(p, -bound, bound)


class RecursiveCell(nn.Module):
    """Recursive neural network (Socher et al. 2011; 2013, "RNN"), N-ary:

        leaf:      h = tanh(W_x x + b_x)
        internal:  h = tanh(W [h_1; h_2; ...; h_N] + b)      binary (N = 2): h = tanh(W [h_l; h_r] + b)

    Parameters: weight_ih = W_x (H, D), bias_ih = b_x (H,), weight_hh = W (H, N*H), bias_hh = b (H,).
    """

    has_memory = False

    def __init__(self, input_size: int, hidden_size: int, arity: int = 2, bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size, self.arity = input_size, hidden_size, arity
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, arity * hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(hidden_size)) if bias else None
        _uniform_init(self, hidden_size)

    def leaf(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(nn.functional.linear(x, self.weight_ih, self.bias_ih))

    def compose(self, h: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        n, k, hid = h.shape  # (n, N, H)
        if k != self.arity:
            raise ValueError(f"RecursiveCell: expected {self.arity} children per node, got {k}")
        return torch.tanh(nn.functional.linear(h.reshape(n, k * hid), self.weight_hh, self.bias_hh))


class NaryTreeLSTMCell(nn.Module):
    """N-ary Tree-LSTM (Tai et al. 2015, sec. 3.2), the constituency / binary Tree-LSTM for N = 2.
    Node j with children h_j1 .. h_jN (c_j1 .. c_jN), and one forget gate per child k:

        i_j   = sigma(W^(i) x_j + sum_l U^(i)_l h_jl + b^(i))
        f_jk  = sigma(W^(f) x_j + sum_l U^(f)_kl h_jl + b^(f))        k = 1..N
        o_j   = sigma(W^(o) x_j + sum_l U^(o)_l h_jl + b^(o))
        u_j   = tanh(W^(u) x_j + sum_l U^(u)_l h_jl + b^(u))
        c_j   = i_j * u_j + sum_k f_jk * c_jk
        h_j   = o_j * tanh(c_j)

    A leaf has no children (c_j = i_j * u_j) and an internal node no input (the W x terms vanish).
    Parameters: weight_ih (3H, D) and bias_ih (3H,) for the leaves, gate order (i, o, u); weight_hh
    ((3 + N) H, N H) = the U blocks acting on [h_j1; ...; h_jN] and bias_hh ((3 + N) H,), gate order
    (i, o, u, f_1, ..., f_N). A node with fewer than N children gets zero h and c for the missing ones.
    """

    has_memory = True

    def __init__(self, input_size: int, hidden_size: int, arity: int = 2, bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size, self.arity = input_size, hidden_size, arity
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty((3 + arity) * hidden_size, arity * hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty((3 + arity) * hidden_size)) if bias else None
        _uniform_init(self, hidden_size)

    def leaf(self, x: torch.Tensor) -> TreeState:
        return _leaf_lstm(nn.functional.linear(x, self.weight_ih, self.bias_ih))

    def compose(self, h: torch.Tensor, c: torch.Tensor) -> TreeState:
        n, k, hid = h.shape  # (n, N, H)
        if k != self.arity:
            raise ValueError(f"NaryTreeLSTMCell: expected {self.arity} children per node, got {k}")
        gates = nn.functional.linear(h.reshape(n, k * hid), self.weight_hh, self.bias_hh)  # (n, (3+N) H)
        i, o = torch.sigmoid(gates[:, :2 * hid]).chunk(2, dim=1)
        u = torch.tanh(gates[:, 2 * hid:3 * hid])
        f = torch.sigmoid(gates[:, 3 * hid:]).view(n, k, hid)  # (n, N, H): forget gate of each child
        c_new = i * u + (f * c).sum(1)
        return TreeState(o * torch.tanh(c_new), c_new)


class ChildSumTreeLSTMCell(nn.Module):
    """Child-Sum Tree-LSTM (Tai et al. 2015, sec. 3.1), for any number of unordered children C(j):

        h~_j  = sum_{k in C(j)} h_k
        i_j   = sigma(W^(i) x_j + U^(i) h~_j + b^(i))
        f_jk  = sigma(W^(f) x_j + U^(f) h_k + b^(f))                   one forget gate per child k
        o_j   = sigma(W^(o) x_j + U^(o) h~_j + b^(o))
        u_j   = tanh(W^(u) x_j + U^(u) h~_j + b^(u))
        c_j   = i_j * u_j + sum_k f_jk * c_k
        h_j   = o_j * tanh(c_j)

    Leaves and internal nodes as in `NaryTreeLSTMCell`. Parameters: weight_ih (3H, D), bias_ih (3H,) (i, o, u);
    weight_iou (3H, H), bias_iou (3H,) = U^(i,o,u), b; weight_f (H, H), bias_f (H,) = U^(f), b^(f).
    Padding children (zero h and c) change neither h~ nor the sum over f * c.
    """

    has_memory = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size, self.arity = input_size, hidden_size, None
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_iou = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.weight_f = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.bias_iou = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.bias_f = nn.Parameter(torch.empty(hidden_size)) if bias else None
        _uniform_init(self, hidden_size)

    def leaf(self, x: torch.Tensor) -> TreeState:
        return _leaf_lstm(nn.functional.linear(x, self.weight_ih, self.bias_ih))

    def compose(self, h: torch.Tensor, c: torch.Tensor) -> TreeState:
        hid = h.shape[2]  # h, c: (n, K, H)
        gates = nn.functional.linear(h.sum(1), self.weight_iou, self.bias_iou)  # (n, 3H)
        i, o = torch.sigmoid(gates[:, :2 * hid]).chunk(2, dim=1)
        u = torch.tanh(gates[:, 2 * hid:])
        f = torch.sigmoid(nn.functional.linear(h, self.weight_f, self.bias_f))  # (n, K, H)
        c_new = i * u + (f * c).sum(1)
        return TreeState(o * torch.tanh(c_new), c_new)


def _leaf_lstm(gates: torch.Tensor) -> TreeState:
    """i, o, u from the leaf's W x + b (n, 3H); no children: c = i * u, h = o * tanh(c)."""
    i, o, u = gates.chunk(3, dim=1)
    c = torch.sigmoid(i) * torch.tanh(u)
    return TreeState(torch.sigmoid(o) * torch.tanh(c), c)


TREE_CELLS = {"tree-lstm": NaryTreeLSTMCell, "child-sum": ChildSumTreeLSTMCell, "recursive": RecursiveCell}


def make_tree_cell(name: str, input_size: int, hidden_size: int, arity: int = 2, bias: bool = True) -> nn.Module:
    """A tree cell by name: "tree-lstm" (N-ary, N = arity), "child-sum" or "recursive" (N-ary)."""
    if name not in TREE_CELLS:
        raise ValueError(f"unknown tree cell {name!r}; expected one of {', '.join(TREE_CELLS)}")
    if name == "child-sum":
        return ChildSumTreeLSTMCell(input_size, hidden_size, bias)
    return TREE_CELLS[name](input_size, hidden_size, arity, bias)


# ---- the structure of a batch of trees ----------------------------------------------------------------


def children_lists(tree) -> list[tuple[int, ...]]:
    """A tree (any object with a `.children` list, e.g. `rnnkit.data.trees.Tree`) as its nodes' child lists
    in post-order, children given by their post-order index: (a (b) (c)) -> [(), (), (0, 1)]."""
    out: list[tuple[int, ...]] = []
    index: dict[int, int] = {}
    stack = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded or not node.children:
            out.append(tuple(index[id(ch)] for ch in node.children))
            index[id(node)] = len(out) - 1
        else:
            stack.append((node, True))
            stack.extend((ch, False) for ch in reversed(node.children))
    return out


@dataclass
class TreeStructure:
    """Index tensors of a batch of trees, built once per batch (see the module docstring for the order).

    num_leaves: leaves come first, positions 0 .. num_leaves - 1.
    levels: for each height k >= 1, (offset, children) with children (n_k, K) long: the positions of the
        children of the nodes at positions offset .. offset + n_k - 1; missing children point to the zero row N.
    roots: (B,) positions of the roots. post_order: per tree, its node positions in post-order;
    children: per position, the child positions (Python lists, for node-by-node evaluation).
    """

    num_nodes: int
    num_leaves: int
    levels: list[tuple[int, torch.Tensor]]
    roots: torch.Tensor
    post_order: list[list[int]]
    children: list[list[int]]

    @classmethod
    def build(cls, trees: Sequence[Sequence[Sequence[int]]], arity: int | None = 2) -> TreeStructure:
        """`trees`: each tree's child lists in post-order (`children_lists`). `arity`: children per node of
        an N-ary cell (nodes with fewer are zero-padded, more is an error); None: the most in each level."""
        kids: list[list[int]] = []  # global indices (concatenated post-orders)
        for t in trees:
            start = len(kids)
            kids += [[start + c for c in ch] for ch in t]
        n = len(kids)
        height = [0] * n
        for g, ch in enumerate(kids):  # post-order: children come before their parent
            if ch:
                height[g] = 1 + max(height[c] for c in ch)
        heights = np.asarray(height, dtype=np.int64)
        order = np.argsort(heights, kind="stable")  # level-major; within a level: tree, then post-order
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        pos = position.tolist()
        children = [[pos[c] for c in kids[g]] for g in order.tolist()]
        top = int(heights.max())
        bounds = np.searchsorted(heights[order], np.arange(top + 2)).tolist()
        levels = []
        for k in range(1, top + 1):
            rows = children[bounds[k]: bounds[k + 1]]
            width = arity or max(len(r) for r in rows)
            if max(len(r) for r in rows) > width:
                raise ValueError(f"a node has {max(len(r) for r in rows)} children; this cell takes at most {width}")
            table = torch.tensor([r + [n] * (width - len(r)) for r in rows], dtype=torch.long)
            levels.append((bounds[k], table))
        post, start = [], 0
        for t in trees:
            post.append(pos[start: start + len(t)])
            start += len(t)
        roots = torch.tensor([p[-1] for p in post], dtype=torch.long)
        return cls(n, bounds[1], levels, roots, post, children)

    def to(self, device) -> TreeStructure:
        levels = [(lo, t.to(device, non_blocking=True)) for lo, t in self.levels]
        return TreeStructure(self.num_nodes, self.num_leaves, levels, self.roots.to(device), self.post_order,
                             self.children)


# ---- evaluation: level-batched and node by node -------------------------------------------------------


class TreeEncoder(nn.Module):
    """Encode batches of trees with a tree cell: leaf inputs x (num_leaves, D) -> states of every node.

        encoder = TreeEncoder("tree-lstm", input_size=D, hidden_size=H)
        structure = TreeStructure.build([children_lists(t) for t in trees], arity=encoder.arity)
        h, state = encoder(x, structure)        # h (N, H) rows in structure order; h[structure.roots]: roots

    `state` is h (recursive) or TreeState(h, c) (Tree-LSTMs), for every node. `node_by_node=True` runs the
    reference evaluation (one cell call per node, post-order): same values, far slower.
    """

    def __init__(self, cell: str | nn.Module, input_size: int, hidden_size: int, arity: int = 2, bias: bool = True):
        super().__init__()
        self.cell = make_tree_cell(cell, input_size, hidden_size, arity, bias) if isinstance(cell, str) else cell
        self.input_size, self.hidden_size = input_size, hidden_size

    @property
    def arity(self) -> int | None:
        """Children per node the cell takes (None: any number), for `TreeStructure.build`."""
        return self.cell.arity

    def forward(self, x: torch.Tensor, structure: TreeStructure, node_by_node: bool = False):
        if x.shape[0] != structure.num_leaves:
            raise ValueError(f"expected one input row per leaf ({structure.num_leaves}), got {x.shape[0]}")
        if node_by_node:
            return self._node_by_node(x, structure)
        return self._by_level(x, structure)

    def _by_level(self, x: torch.Tensor, s: TreeStructure):
        memory = self.cell.has_memory
        leaf = self.cell.leaf(x)  # all leaves in one matmul
        h0 = leaf.h if memory else leaf
        # every node's state, plus a zero row (index N) for missing children
        h = h0.new_zeros(s.num_nodes + 1, self.hidden_size)
        c = h0.new_zeros(s.num_nodes + 1, self.hidden_size) if memory else None
        h = h.index_copy(0, _arange(s.num_leaves, h.device), h0)
        if memory:
            c = c.index_copy(0, _arange(s.num_leaves, h.device), leaf.c)
        for lo, table in s.levels:  # heights 1, 2, ...: one compose per level
            new = self.cell.compose(h[table], c[table] if memory else None)  # children (n_k, K, H)
            rows = _arange(table.shape[0], h.device) + lo
            if memory:
                h, c = h.index_copy(0, rows, new.h), c.index_copy(0, rows, new.c)
            else:
                h = h.index_copy(0, rows, new)
        h, c = h[:-1], (c[:-1] if memory else None)
        return h, (TreeState(h, c) if memory else h)

    def _node_by_node(self, x: torch.Tensor, s: TreeStructure):
        memory = self.cell.has_memory
        states: dict[int, object] = {}
        zero = x.new_zeros(1, 1, self.hidden_size)
        for tree in s.post_order:
            for p in tree:
                kids = s.children[p]
                if not kids:
                    states[p] = self.cell.leaf(x[p: p + 1])
                    continue
                pad = (self.arity or len(kids)) - len(kids)
                hs = [(states[k].h if memory else states[k]).unsqueeze(1) for k in kids] + [zero] * pad
                cs = [states[k].c.unsqueeze(1) for k in kids] + [zero] * pad if memory else None
                states[p] = self.cell.compose(torch.cat(hs, 1), torch.cat(cs, 1) if memory else None)
        ordered = [states[p] for p in range(s.num_nodes)]
        if memory:
            h, c = torch.cat([st.h for st in ordered]), torch.cat([st.c for st in ordered])
            return h, TreeState(h, c)
        h = torch.cat(ordered)
        return h, h


def _arange(n: int, device) -> torch.Tensor:
    return torch.arange(n, device=device)
