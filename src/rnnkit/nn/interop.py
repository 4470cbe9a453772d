"""torch.nn interop: the torch.nn module that computes exactly what an rnnkit layer or cell computes, on the
same parameters. ``torch.jit.script`` cannot compile rnnkit's Python; through ``__prepare_scriptable__`` it
compiles this twin instead, so ``torch.jit.script(rnnkit_module)`` works exactly where
``torch.jit.script(torch_module)`` does (in torch 2.13: the cells; torch.nn.RNN/LSTM/GRU themselves script
into a module without ``forward``, and so do ours). torch.export and torch.jit.trace take rnnkit's modules as
they are.
"""

from __future__ import annotations

import warnings

from torch import nn

from rnnkit.nn.cells import ElmanCell, GRUCell, LSTMCell
from rnnkit.nn.plan import Kind


def torch_twin(layer) -> nn.Module:
    """A torch.nn.RNN / LSTM / GRU that *shares* ``layer``'s parameters (training one trains the other).

    Only for a layer on the fused path (``layer.plan.kind is Kind.FUSED``) with plain parameters: a layer
    with skips, variational dropout, a loop-only cell or parametrized weights has no torch.nn equivalent, and
    asking for one raises a RuntimeError that says which.
    """
    if layer.plan.kind is not Kind.FUSED:
        raise RuntimeError(f"{type(layer).__name__}: no torch.nn equivalent for path {layer.path!r}: torch.jit.script "
                           "and torch_twin need a layer torch.nn computes exactly (use torch.export or torch.compile)")
    names = [n for names in layer._names for n in names.values()]
    computed = [n for n in names if n not in layer._parameters]
    if computed:
        raise RuntimeError(f"{type(layer).__name__}: {computed[0]} is parametrized (or weight-normed): torch.nn's "
                           "scripted layers read plain parameters; use torch.export or torch.compile")
    cell = layer._cells[0]
    kwargs = {"num_layers": layer.num_layers, "bias": layer.bias, "batch_first": layer.batch_first,
              "dropout": layer.dropout, "bidirectional": layer.bidirectional, "device": "meta"}
    if type(cell) is LSTMCell:
        cls, kwargs["proj_size"] = nn.LSTM, cell.proj_size
    elif type(cell) is GRUCell:
        cls = nn.GRU
    elif type(cell) is ElmanCell:
        cls, kwargs["nonlinearity"] = nn.RNN, cell.nonlinearity
    else:  # pragma: no cover - Kind.FUSED implies one of the three
        raise RuntimeError(f"no torch.nn layer for {type(cell).__name__}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.nn's dropout-with-one-layer warning was given at construction
        twin = cls(layer.input_size, layer.hidden_size, **kwargs)
    for name in names:
        setattr(twin, name, layer._parameters[name])
    twin.train(layer.training)
    return twin


def cell_twin(cell) -> nn.Module:
    """A torch.nn.RNNCell / LSTMCell / GRUCell sharing ``cell``'s parameters; a RuntimeError for a cell torch.nn
    does not compute (hardtanh/sigmoid Elman, reset-before GRU, layer-norm LSTM, projections, your own cell)."""
    kind = type(cell)
    if kind is LSTMCell and not cell.proj_size:
        twin = nn.LSTMCell(cell.input_size, cell.hidden_size, cell.bias, device="meta")
    elif kind is GRUCell and cell.reset == "after":
        twin = nn.GRUCell(cell.input_size, cell.hidden_size, cell.bias, device="meta")
    elif kind is ElmanCell and cell.nonlinearity in ("tanh", "relu"):
        twin = nn.RNNCell(cell.input_size, cell.hidden_size, cell.bias, cell.nonlinearity, device="meta")
    else:
        raise RuntimeError(f"{cell!r} has no torch.nn equivalent for torch.jit.script; use torch.export or "
                           "torch.compile")
    for name, p in cell._parameters.items():
        if p is None:
            continue
        if not isinstance(p, nn.Parameter) or name not in cell._parameters:
            raise RuntimeError(f"{type(cell).__name__}.{name} is parametrized: torch.jit.script reads plain parameters")
        setattr(twin, name, p)
    if hasattr(cell, "parametrizations"):
        raise RuntimeError(f"{type(cell).__name__} has parametrized weights: torch.jit.script reads plain parameters")
    return twin.train(cell.training)
