"""rnnkit.nn.tree: tree cells against finite differences and the written-out equations of Socher et al. /
Tai et al. (2015); the level-batched evaluator against node-by-node evaluation (values and gradients)."""
import random

import pytest
import torch

from rnnkit.data.trees import Tree, parse_tree
from rnnkit.nn.tree import (
    ChildSumTreeLSTMCell,
    NaryTreeLSTMCell,
    RecursiveCell,
    TreeEncoder,
    TreeStructure,
    children_lists,
)

D, H = 4, 3


def random_tree(rng: random.Random, leaves: int, max_children: int = 2, unary: float = 0.0) -> Tree:
    """A random tree over `leaves` words: split the span into 2..max_children parts (or 1 with prob `unary`)."""
    def build(lo, hi):
        if hi - lo == 1:
            leaf = Tree(rng.randrange(5), word=f"w{lo}")
            return Tree(rng.randrange(5), [leaf]) if rng.random() < unary else leaf
        k = rng.randint(2, min(max_children, hi - lo))
        cuts = sorted(rng.sample(range(lo + 1, hi), k - 1))
        bounds = [lo, *cuts, hi]
        return Tree(rng.randrange(5), [build(a, b) for a, b in zip(bounds, bounds[1:])])
    return build(0, leaves)


def make_cell(name):
    if name == "recursive":
        return RecursiveCell(D, H)
    if name == "tree-lstm":
        return NaryTreeLSTMCell(D, H)
    if name == "ternary-lstm":
        return NaryTreeLSTMCell(D, H, arity=3)
    return ChildSumTreeLSTMCell(D, H)


CELLS = ["recursive", "tree-lstm", "ternary-lstm", "child-sum"]


@pytest.mark.parametrize("name", CELLS)
def test_cell_gradients_match_finite_differences(name, float64_seeded):
    cell = make_cell(name)
    k = cell.arity or 3
    x = torch.randn(2, D, requires_grad=True)
    h = torch.randn(2, k, H, requires_grad=True)
    c = torch.randn(2, k, H, requires_grad=True)
    params = tuple(cell.parameters())

    def leaf(x, *ps):
        out = cell.leaf(x)
        return tuple(out) if cell.has_memory else out

    def compose(h, c, *ps):
        out = cell.compose(h, c if cell.has_memory else None)
        return tuple(out) if cell.has_memory else out

    assert torch.autograd.gradcheck(leaf, (x, *params))
    assert torch.autograd.gradcheck(compose, (h, c, *params))


def tai_binary(cell: NaryTreeLSTMCell, tree: Tree, emb: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Tai et al. (2015) eq. (9)-(14) for N = 2, written out per node with the U blocks sliced by hand."""
    if tree.is_leaf:
        w, b = cell.weight_ih, cell.bias_ih
        i = torch.sigmoid(w[:H] @ emb[tree.word] + b[:H])
        o = torch.sigmoid(w[H:2 * H] @ emb[tree.word] + b[H:2 * H])
        u = torch.tanh(w[2 * H:] @ emb[tree.word] + b[2 * H:])
        c = i * u
        return o * torch.tanh(c), c
    (hl, cl), (hr, cr) = (tai_binary(cell, ch, emb) for ch in tree.children)
    u_w, b = cell.weight_hh, cell.bias_hh

    def U(gate, child):  # U^(gate)_child: rows of the gate, columns of the child
        return u_w[gate * H:(gate + 1) * H, child * H:(child + 1) * H]

    def pre(gate):
        return U(gate, 0) @ hl + U(gate, 1) @ hr + b[gate * H:(gate + 1) * H]
    i, o, u = torch.sigmoid(pre(0)), torch.sigmoid(pre(1)), torch.tanh(pre(2))
    f_l, f_r = torch.sigmoid(pre(3)), torch.sigmoid(pre(4))
    c = i * u + f_l * cl + f_r * cr
    return o * torch.tanh(c), c


def socher(cell: RecursiveCell, tree: Tree, emb: dict) -> torch.Tensor:
    if tree.is_leaf:
        return torch.tanh(cell.weight_ih @ emb[tree.word] + cell.bias_ih)
    hl, hr = (socher(cell, ch, emb) for ch in tree.children)
    return torch.tanh(cell.weight_hh @ torch.cat([hl, hr]) + cell.bias_hh)


def child_sum(cell: ChildSumTreeLSTMCell, tree: Tree, emb: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Tai et al. (2015) eq. (2)-(8), one child at a time."""
    if tree.is_leaf:
        g = cell.weight_ih @ emb[tree.word] + cell.bias_ih
        c = torch.sigmoid(g[:H]) * torch.tanh(g[2 * H:])
        return torch.sigmoid(g[H:2 * H]) * torch.tanh(c), c
    kids = [child_sum(cell, ch, emb) for ch in tree.children]
    h_tilde = sum(h for h, _ in kids)
    g = cell.weight_iou @ h_tilde + cell.bias_iou
    i, o, u = torch.sigmoid(g[:H]), torch.sigmoid(g[H:2 * H]), torch.tanh(g[2 * H:])
    c = i * u
    for h_k, c_k in kids:
        c = c + torch.sigmoid(cell.weight_f @ h_k + cell.bias_f) * c_k
    return o * torch.tanh(c), c


def encode(encoder, trees, x=None, node_by_node=False):
    s = TreeStructure.build([children_lists(t) for t in trees], encoder.arity)
    if x is None:
        x = torch.randn(s.num_leaves, D)
    h, state = encoder(x, s, node_by_node=node_by_node)
    return s, x, h, state


@pytest.mark.parametrize("name, oracle", [("tree-lstm", tai_binary), ("recursive", socher),
                                          ("child-sum", child_sum)])
def test_encoder_matches_equations_written_out(name, oracle, float64_seeded):
    rng = random.Random(1)
    trees = [parse_tree("(3 (2 It) (4 (2 's) (4 great)))"), random_tree(rng, 7, 2 if name != "child-sum" else 4)]
    encoder = TreeEncoder(make_cell(name), D, H)
    s = TreeStructure.build([children_lists(t) for t in trees], encoder.arity)
    words = [w for t in trees for w in t.leaves()]
    vectors = torch.randn(len(words), D)
    emb = dict(zip(words, vectors))  # leaves come first, tree by tree, left to right
    h, state = encoder(vectors, s)
    for b, tree in enumerate(trees):
        for node, pos in zip(tree, s.post_order[b]):  # every node, not only the root
            expect = oracle(encoder.cell, node, emb)
            if isinstance(expect, tuple):
                torch.testing.assert_close(h[pos], expect[0], rtol=1e-12, atol=1e-12)
                torch.testing.assert_close(state.c[pos], expect[1], rtol=1e-12, atol=1e-12)
            else:
                torch.testing.assert_close(h[pos], expect, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", CELLS)
def test_level_batched_equals_node_by_node(name, float64_seeded):
    rng = random.Random(7)
    arity = make_cell(name).arity
    trees = [random_tree(rng, n, max_children=arity or 4, unary=0.2) for n in (1, 2, 5, 9, 13, 4)]
    encoder = TreeEncoder(make_cell(name), D, H)
    s = TreeStructure.build([children_lists(t) for t in trees], encoder.arity)
    x = torch.randn(s.num_leaves, D, requires_grad=True)
    weights = torch.randn(s.num_nodes, H)  # a loss that reads every node
    grads = []
    outs = []
    for by_node in (False, True):
        encoder.zero_grad()
        x.grad = None
        h, state = encoder(x, s, node_by_node=by_node)
        out = (h * weights).sum() + (state.c.sin().sum() if encoder.cell.has_memory else 0)
        out.backward()
        outs.append(h.detach().clone())
        grads.append([x.grad.clone()] + [p.grad.clone() for p in encoder.parameters()])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert any(g.abs().sum() > 0 for g in grads[0])


@pytest.mark.parametrize("name", CELLS)
def test_single_leaf_tree_is_the_leaf_map(name, float64_seeded):
    encoder = TreeEncoder(make_cell(name), D, H)
    s, x, h, state = encode(encoder, [parse_tree("(4 great)")])
    assert s.num_nodes == 1 and s.levels == [] and s.roots.tolist() == [0]
    cell = encoder.cell
    if name == "recursive":
        torch.testing.assert_close(h[0], torch.tanh(cell.weight_ih @ x[0] + cell.bias_ih))
    else:
        g = cell.weight_ih @ x[0] + cell.bias_ih
        c = torch.sigmoid(g[:H]) * torch.tanh(g[2 * H:])  # no children: c = i * u
        torch.testing.assert_close(state.c[0], c)
        torch.testing.assert_close(h[0], torch.sigmoid(g[H:2 * H]) * torch.tanh(c))


def test_missing_children_are_zero_states(float64_seeded):
    """A unary node under a binary Tree-LSTM = the same node with an explicit all-zero second child."""
    cell = NaryTreeLSTMCell(D, H)
    encoder = TreeEncoder(cell, D, H)
    s, x, h, state = encode(encoder, [parse_tree("(1 (2 (3 a)) (4 b))")])
    child = s.post_order[0][0]  # the leaf "a"
    hz = torch.stack([h[child], torch.zeros(H)])[None]
    cz = torch.stack([state.c[child], torch.zeros(H)])[None]
    expect = cell.compose(hz, cz)
    torch.testing.assert_close(h[s.post_order[0][1]], expect.h[0])


def test_structure_layout():
    trees = [parse_tree("(3 (2 It) (4 (2 's) (4 great)))"), parse_tree("(1 (0 bad) (2 .))")]
    s = TreeStructure.build([children_lists(t) for t in trees])
    assert s.num_nodes == 8 and s.num_leaves == 5
    # leaves first, tree by tree, left to right: It 's great bad .
    assert [p for p in s.post_order[0] if not s.children[p]] == [0, 1, 2]
    assert [p for p in s.post_order[1] if not s.children[p]] == [3, 4]
    # height 1: "(4 's great)" of tree 0 then the root of tree 1; height 2: the root of tree 0
    assert [lo for lo, _ in s.levels] == [5, 7]
    assert s.levels[0][1].tolist() == [[1, 2], [3, 4]] and s.levels[1][1].tolist() == [[0, 5]]
    assert s.roots.tolist() == [7, 6]


def test_too_many_children_for_an_n_ary_cell():
    with pytest.raises(ValueError, match="3 children; this cell takes at most 2"):
        TreeStructure.build([children_lists(parse_tree("(1 (1 a) (1 b) (1 c))"))], arity=2)
    with pytest.raises(ValueError, match="expected one input row per leaf"):
        TreeEncoder("tree-lstm", D, H)(torch.zeros(2, D), TreeStructure.build([[()]]))
    with pytest.raises(ValueError, match="unknown tree cell"):
        TreeEncoder("lstm", D, H)
