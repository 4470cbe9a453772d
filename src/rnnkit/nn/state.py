"""Recurrent states as values (STYLE.md principle 11): the LSTM state type and helpers over nested states.

A state is a tensor h, an ``LSTMState(h, c)``, a tuple / list / dict of such states (one per layer or per
encoder), or None. Truncated BPTT is ``state = detach_state(state)``; beam search reorders a state with
``map_state(state, lambda s: s.index_select(1, order))``; a checkpoint stores ``flatten_tree(state)``.

``LSTMState`` is a drop-in for the ``(h_n, c_n)`` tuple that torch.nn.LSTM returns: it *is* a tuple
(indexing, unpacking, ``==`` with a plain tuple, ``type(s)(iterable)``, pytree flattening, torch.compile),
with the names ``.h`` and ``.c`` on top for readable code.
"""

from __future__ import annotations

import collections
import dataclasses
import sys
from typing import Any, NamedTuple

import torch
from torch import Tensor


class _HC(NamedTuple):
    h: Tensor
    c: Tensor


class LSTMState(_HC):
    """The state of an LSTM: hidden state h (L·D, B, H_out) and memory cell c (L·D, B, H), or (B, ·) for a cell.

    Built like a NamedTuple, ``LSTMState(h, c)`` or ``LSTMState(h=h, c=c)``, and like a tuple,
    ``LSTMState([h, c])`` (what generic code does with ``type(state)(iterable)``). H_out is proj_size for an
    LSTM with projections, else H.
    """

    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs and not isinstance(args[0], Tensor):
            args = tuple(args[0])  # the tuple constructor's form: one iterable of (h, c)
        return super().__new__(cls, *args, **kwargs)


def map_state(state, fn, *others):
    """Apply ``fn`` to each tensor of a state (a tensor or an (h, c) tuple), zipped with ``others``' tensors."""
    if isinstance(state, tuple):
        parts = [fn(*ts) for ts in zip(state, *others)]
        return type(state)(*parts) if hasattr(state, "_fields") else tuple(parts)
    return fn(state, *others)


def detach_state(tree: Any) -> Any:
    """Cut the graph behind a recurrent state (truncated BPTT), keeping its structure (and NamedTuple types):
    a tensor, an (h, c) tuple, nested tuples / lists / dicts of them, or None."""
    return _map_tensors(tree, torch.Tensor.detach)


detach_tree = detach_state  # the name rnnkit.train has always exported


def move_to(tree: Any, device: torch.device) -> Any:
    """Move a batch (tensor, tuple/list/dict/dataclass of tensors, or an object with ``.to``) to ``device``."""
    if isinstance(tree, torch.Tensor):
        return tree.to(device, non_blocking=True)
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        changes = {f.name: move_to(getattr(tree, f.name), device) for f in dataclasses.fields(tree) if f.init}
        return dataclasses.replace(tree, **changes)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(move_to(x, device) for x in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(move_to(x, device) for x in tree)
    if isinstance(tree, dict):
        return {k: move_to(v, device) for k, v in tree.items()}
    if callable(getattr(tree, "to", None)):
        return tree.to(device)
    return tree


def _map_tensors(tree: Any, fn) -> Any:
    if tree is None:
        return None
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_map_tensors(x, fn) for x in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_map_tensors(x, fn) for x in tree)
    if isinstance(tree, dict):
        return {k: _map_tensors(v, fn) for k, v in tree.items()}
    if isinstance(tree, (int, float, str, bool)):
        return tree
    raise TypeError(
        f"recurrent state: expected tensors, tuples, NamedTuples, lists, dicts or None; found {type(tree).__name__}"
    )


def flatten_tree(tree: Any) -> tuple[Any, list[torch.Tensor]]:
    """Split ``tree`` into a JSON-able structure spec and the list of its tensors (in spec order)."""
    tensors: list[torch.Tensor] = []

    def spec(node: Any) -> Any:
        if node is None:
            return {"kind": "none"}
        if isinstance(node, torch.Tensor):
            tensors.append(node)
            return {"kind": "tensor", "index": len(tensors) - 1}
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            cls = type(node)
            return {"kind": "namedtuple", "module": cls.__module__, "name": cls.__qualname__,
                    "fields": list(cls._fields), "items": [spec(x) for x in node]}
        if isinstance(node, (tuple, list)):
            return {"kind": type(node).__name__, "items": [spec(x) for x in node]}
        if isinstance(node, dict):
            return {"kind": "dict", "keys": [str(k) for k in node], "items": [spec(v) for v in node.values()]}
        raise TypeError(f"recurrent state: cannot save a {type(node).__name__}")

    return spec(tree), tensors


def unflatten_tree(spec: Any, tensors: list[torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_tree`. A NamedTuple class is looked up among *already imported* modules
    (no import, so loading runs no code); if absent, an equivalent ``collections.namedtuple`` is made."""
    kind = spec["kind"]
    if kind == "none":
        return None
    if kind == "tensor":
        return tensors[spec["index"]]
    items = [unflatten_tree(s, tensors) for s in spec.get("items", [])]
    if kind == "namedtuple":
        return _namedtuple_class(spec)(*items)
    if kind == "tuple":
        return tuple(items)
    if kind == "list":
        return items
    if kind == "dict":
        return dict(zip(spec["keys"], items))
    raise ValueError(f"checkpoint: unknown state node kind {kind!r}")


def _namedtuple_class(spec: dict) -> type:
    module = sys.modules.get(spec["module"])
    cls = module
    for part in spec["name"].split("."):
        cls = getattr(cls, part, None)
    fields = tuple(spec["fields"])
    if isinstance(cls, type) and issubclass(cls, tuple) and getattr(cls, "_fields", None) == fields:
        return cls
    return collections.namedtuple(spec["name"].split(".")[-1], fields)
