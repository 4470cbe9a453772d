"""Which path a recurrent layer runs, and why: a small frozen value computed once per configuration.

    FUSED            every layer in one call of torch's fused kernel (cuDNN on CUDA, oneDNN on CPU): the cells
                     are ones torch.nn computes exactly (tanh/relu Elman, LSTM with or without projections,
                     reset-after GRU) and nothing runs between the layers
    FUSED_PER_LAYER  torch's kernel per layer, our own stacking between them (variational dropout, skips)
    LOOP             ``cell.step`` unrolled in Python, with the hand-written BPTT scan (rnnkit.nn.scan) where one
                     exists for the cell, else autograd through every step (python_scan)

``Recurrent`` dispatches on ``plan.kind``; ``plan.path`` is the display string users and tests read
(``layer.path``: "fused", "fused per layer: residual skip", "loop: GRU with reset='before' has no fused kernel").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rnnkit.nn import _torch_private
from rnnkit.nn.cells import ElmanCell, GRUCell, LayerNormLSTMCell, LSTMCell, RecurrentCell
from rnnkit.nn.scan import fast_scan_for


class Kind(enum.Enum):
    FUSED = "fused"
    FUSED_PER_LAYER = "fused per layer"
    LOOP = "loop"


@dataclass(frozen=True)
class Plan:
    """How a layer runs (``kind``), why (``reason``, "" for FUSED), and the time loop of each cell on the loop
    path (``scans``: a fast scan or None for python_scan, index k·D + d; ``scan_note`` says why any is None)."""

    kind: Kind
    reason: str = ""
    scans: tuple = ()
    scan_note: str = ""

    @property
    def path(self) -> str:
        """The display string: "fused", "fused per layer: <why>" or "loop: <why>[ (python_scan: <why>)]"."""
        if self.kind is Kind.FUSED:
            return "fused"
        return f"{self.kind.value}: {self.reason}" + self.scan_note


def fused_kernel(cell: RecurrentCell):
    """torch's fused kernel that computes exactly this cell, or None."""
    kind = type(cell)
    if kind is LSTMCell:
        return _torch_private.fused_kernel("lstm")
    if kind is GRUCell and cell.reset == "after":
        return _torch_private.fused_kernel("gru")
    if kind is ElmanCell and cell.nonlinearity in ("tanh", "relu"):
        return _torch_private.fused_kernel("rnn_" + cell.nonlinearity)
    return None


def make_plan(cells: list[RecurrentCell], *, use_fused: bool, use_fast_scan: bool, scan_override,
              between: list[str]) -> Plan:
    """The plan for a stack of ``cells``; ``between`` names what runs between layers ("residual skip", ...)."""
    if use_fused:
        unfusable = [c for c in cells if fused_kernel(c) is None]
        if not unfusable:
            if between:
                return Plan(Kind.FUSED_PER_LAYER, ", ".join(between))
            return Plan(Kind.FUSED)
        reason = f"{describe(unfusable[0])} has no fused kernel"
    else:
        reason = "use_fused=False"
    if scan_override is not None:
        return Plan(Kind.LOOP, reason, tuple(scan_override for _ in cells))
    if not use_fast_scan:
        return Plan(Kind.LOOP, reason, tuple(None for _ in cells), " (python_scan: use_fast_scan=False)")
    scans = tuple(fast_scan_for(c) for c in cells)
    slow = [c for c, scan in zip(cells, scans) if scan is None]
    return Plan(Kind.LOOP, reason, scans, f" (python_scan: no fast scan for {describe(slow[0])})" if slow else "")


def describe(cell: RecurrentCell) -> str:
    """A cell in words, for the plan's reasons."""
    if isinstance(cell, LayerNormLSTMCell):
        return "layer-norm LSTM" + (" with projections" if cell.proj_size else "")
    if isinstance(cell, LSTMCell) and cell.proj_size:
        return "LSTM with projections"
    if isinstance(cell, GRUCell):
        return f"GRU with reset={cell.reset!r}"
    if isinstance(cell, ElmanCell):
        return f"Elman RNN with {cell.nonlinearity}"
    return type(cell).__name__
