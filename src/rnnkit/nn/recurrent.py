"""Recurrent layers: unroll any cell through time, stacked and bidirectional, over variable-length batches.

Shapes (the one vocabulary used throughout rnnkit): T time steps, B batch, I input features, H hidden units,
H_out = proj_size for an LSTM with projections else H, L layers, D directions (2 if bidirectional else 1).

    input   (T, B, I), or (B, T, I) with batch_first=True, or (T, I) unbatched, or a PackedSequence
    output  (T, B, D·H_out)  — padded steps are zero
    state   h_n (L·D, B, H_out) — or LSTMState(h_n, c_n), c_n (L·D, B, H) — at each sequence's own last step
            (for a bidirectional layer h_n[2k+1] is the reverse direction's state after reading the whole
            sequence backwards, i.e. at t = 0: h_n is *not* output[-1])

``rnnkit.RNN``, ``rnnkit.LSTM`` and ``rnnkit.GRU`` take torch.nn's arguments (``proj_size`` too), return
torch.nn's values, use torch.nn's state_dict names (weight_ih_l0, weight_hh_l0_reverse, weight_hr_l0, ...), so a
torch.nn state_dict loads as is, and raise torch.nn's exception types for the same mistakes (rnnkit.nn.checks).
Every weight is read by name at each forward, so ``torch.nn.utils.parametrize`` (weight_norm, spectral_norm,
orthogonal) and the legacy ``torch.nn.utils.weight_norm`` work on any of them, on both paths.

Two execution paths, chosen once per configuration (``layer.plan``, see rnnkit.nn.plan) and named by
``layer.path``:
- "fused": the configuration is one torch.nn computes exactly (tanh/relu Elman, LSTM with or without
  projections, reset-after GRU), so torch's own kernels (cuDNN on CUDA) run on our parameters. Between-layer
  extras (variational dropout, skip connections) keep the fused kernel per layer ("fused per layer: ...").
- "loop: <reason>": everything else (hardtanh/sigmoid Elman, reset-before GRU, layer-norm LSTM, your own cell)
  unrolls ``cell.step`` in Python: U x for all steps in one matmul, the sequence unbound once, outputs
  stacked once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.nn import checks
from rnnkit.nn.cells import ElmanCell, GRUCell, LayerNormLSTMCell, LSTMCell, LSTMState, RecurrentCell, map_state
from rnnkit.nn.init import check_scheme, initialize
from rnnkit.nn.interop import torch_twin
from rnnkit.nn.minimal import MinGRUCell, MinLSTMCell
from rnnkit.nn.plan import Kind, Plan, fused_kernel, make_plan
from rnnkit.nn.unroll import _cat_states, _lengths_of, _stack_states, python_scan, reverse_padded, unroll


@dataclass(frozen=True)
class CellSpec:
    """A named cell: its class, constructor options and default initialisation."""

    cls: type
    options: dict = field(default_factory=dict)
    init: str | None = None


CELLS: dict[str, CellSpec] = {
    "rnn-tanh": CellSpec(ElmanCell, {"nonlinearity": "tanh"}),
    "rnn-relu": CellSpec(ElmanCell, {"nonlinearity": "relu"}),
    "rnn-hardtanh": CellSpec(ElmanCell, {"nonlinearity": "hardtanh"}),
    "rnn-sigmoid": CellSpec(ElmanCell, {"nonlinearity": "sigmoid"}),
    "irnn": CellSpec(ElmanCell, {"nonlinearity": "relu"}, init="identity"),
    "lstm": CellSpec(LSTMCell),
    "ln-lstm": CellSpec(LayerNormLSTMCell),
    "gru": CellSpec(GRUCell, {"reset": "after"}),
    "gru-before": CellSpec(GRUCell, {"reset": "before"}),
    "mingru": CellSpec(MinGRUCell),  # Feng et al. 2024: gates read x_t only, a linear scan over time
    "minlstm": CellSpec(MinLSTMCell),
}

__all__ = ["CELLS", "GRU", "LSTM", "RNN", "CellSpec", "Recurrent", "python_scan", "reverse_padded", "unroll"]

SKIPS = (None, "residual", "highway")
_PLAN_INPUTS = frozenset({"use_fused", "use_fast_scan", "scan_override", "dropout", "variational", "skip"})


class Recurrent(nn.Module):
    """A stack of recurrent layers built from any cell.

    Args:
        cell: a name from ``rnnkit.nn.CELLS`` ("lstm", "gru", "gru-before", "rnn-tanh", "irnn", "ln-lstm", ...)
            or a callable ``(input_size, hidden_size, bias) -> RecurrentCell`` for your own cell.
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: as in torch.nn.RNN;
            ``dropout`` acts on the outputs of every layer but the last (non-recurrent connections only).
        proj_size: LSTM cells only ("lstm", "ln-lstm"): h_t = W_hr (o ⊙ tanh(c_t)) with W_hr (proj_size, H),
            as torch.nn.LSTM's proj_size (0: no projection).
        variational: sample the dropout mask once per sequence, shared by all time steps (Gal & Ghahramani
            2016), instead of once per step.
        skip: ``"residual"`` (x_{k+1} = f_k(x_k) + x_k) or ``"highway"`` (x_{k+1} = g ⊙ f_k(x_k) + (1 − g) ⊙ x_k,
            g = σ(W_g x_k + b_g), b_g initialised to -1 so layers start close to carrying x_k) between stacked
            layers k ≥ 1.
        init: ``"default"``, ``"uniform(a)"``, ``"orthogonal"`` or ``"identity"`` (IRNN); see rnnkit.nn.init.
        forget_bias: total forget-gate bias for LSTM cells after init (None keeps the init's value).
    """

    use_fast_scan = True  # loop path: hand-written BPTT scan (rnnkit.nn.scan) for the cells it supports;
    # False forces python_scan (autograd through every step)
    scan_override = None  # loop path: a time loop (cell, ux, state, alive) -> (output, state) used for every cell
    # instead (rnnkit.diagnostics sets one, with use_fused=False, to record the states of a probe batch)

    def __init__(
        self,
        cell="lstm",
        input_size: int = 1,
        hidden_size: int = 1,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        proj_size: int = 0,
        variational: bool = False,
        skip: str | None = None,
        init: str | None = None,
        forget_bias: float | None = 1.0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        make_cell, default_init = self._cell_factory(cell, proj_size)
        checks.check_layer_args(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size)
        if skip not in SKIPS:
            raise ValueError(f"skip must be one of 'residual', 'highway' or None, got {skip!r}")
        check_scheme(init)
        self.cell_name = cell if isinstance(cell, str) else getattr(cell, "__name__", type(cell).__name__)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.variational, self.skip = bidirectional, variational, skip
        self.proj_size = proj_size
        self.init = init or default_init
        self.forget_bias = forget_bias
        self.use_fused = True
        D, out = (2 if bidirectional else 1), proj_size or hidden_size
        self._cells: list[RecurrentCell] = []
        self._names: list[dict[str, str]] = []  # per cell: its parameter name -> our (torch.nn) name
        for k in range(num_layers):
            for d in range(D):
                c = make_cell(input_size if k == 0 else D * out, hidden_size, bias)
                initialize(c, self.init, forget_bias)
                suffix = f"_l{k}" + ("_reverse" if d else "")
                names = {n: n + suffix for n, p in c._parameters.items() if p is not None}
                for n, tname in names.items():
                    self.register_parameter(tname, c._parameters[n])
                self._cells.append(c)
                self._names.append(names)
        if skip == "highway":
            for k in range(1, num_layers):
                width = D * out
                weight = nn.init.xavier_uniform_(torch.empty(width, width))
                self.register_parameter(f"highway_weight_l{k}", nn.Parameter(weight))
                self.register_parameter(f"highway_bias_l{k}", nn.Parameter(torch.full((width,), -1.0)))
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)
        self._replan()

    # -- construction helpers -------------------------------------------------------------------------------
    @staticmethod
    def _cell_factory(cell, proj_size: int = 0):
        if isinstance(cell, str):
            if cell not in CELLS:
                raise ValueError(f"unknown cell {cell!r}; expected one of {', '.join(CELLS)}")
            spec = CELLS[cell]
            options = dict(spec.options)
            if proj_size:
                if not issubclass(spec.cls, LSTMCell):
                    raise ValueError(f"proj_size argument is only supported for LSTM, not RNN or GRU (cell {cell!r})")
                options["proj_size"] = proj_size
            return (lambda i, h, b: spec.cls(i, h, b, **options)), spec.init
        if callable(cell):
            if proj_size:
                raise ValueError("proj_size is for rnnkit's LSTM cells; build your own cell with its projection")
            return cell, None
        raise TypeError(f"cell must be a name from rnnkit.nn.CELLS or a callable, got {type(cell).__name__}")

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name in _PLAN_INPUTS and "_plan" in self.__dict__:
            self._replan()

    def _replan(self) -> None:
        between = [f"{self.skip} skip"] if self.skip else []
        if self.variational and self.dropout > 0:
            between.append("variational dropout")
        plan = make_plan(self._cells, use_fused=self.use_fused, use_fast_scan=self.use_fast_scan,
                         scan_override=self.scan_override, between=between)
        self.__dict__["_plan"] = plan

    @property
    def plan(self) -> Plan:
        """How this layer runs (kind + reason), computed when the layer or one of its options changes."""
        return self._plan

    @property
    def path(self) -> str:
        """"fused", "fused per layer: <why>" or "loop: <why>" — never a silent fallback."""
        return self._plan.path

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """H_out: the size of h (proj_size for an LSTM with projections, else hidden_size)."""
        return self.proj_size or self.hidden_size

    def weight(self, name: str) -> Tensor:
        """The tensor a forward uses for parameter ``name`` (the parametrized or weight-normed one if any)."""
        return getattr(self, name)

    @property
    def cells(self) -> list[RecurrentCell]:
        """The cells, layer by layer and direction by direction (index k·D + d), bound to our parameters
        (to the parametrized tensors where a parametrization is registered)."""
        return self._bind(self.all_weights)

    def _bind(self, weights: list[list[Tensor]]) -> list[RecurrentCell]:
        for c, names, tensors in zip(self._cells, self._names, weights):
            for n, tensor in zip(names, tensors):
                c._parameters[n] = tensor
        return self._cells

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """Each cell's weights in torch.nn's order, as a forward reads them: a parametrized weight is computed
        (once per call: a forward reads them all once, so spectral_norm's power iteration runs once)."""
        return [[getattr(self, t) for t in names.values()] for names in self._names]

    @property
    def _flat_weights_names(self) -> list[str]:
        """torch.nn.RNNBase's names, layer by layer, direction by direction, in torch's order."""
        return [n for names in self._names for n in names.values()]

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [w for ws in self.all_weights for w in ws]

    @property
    def _all_weights(self) -> list[list[str]]:
        return [list(names.values()) for names in self._names]

    @property
    def mode(self) -> str:
        """torch.nn.RNNBase's mode for the cells it has: "LSTM", "GRU", "RNN_TANH", "RNN_RELU" (else the cell name)."""
        cell, kind = self._cells[0], type(self._cells[0])
        if kind is ElmanCell and cell.nonlinearity in ("tanh", "relu"):
            return "RNN_" + cell.nonlinearity.upper()
        if kind is LSTMCell or (kind is GRUCell and cell.reset == "after"):
            return "LSTM" if kind is LSTMCell else "GRU"
        return self.cell_name

    def flatten_parameters(self) -> None:
        """Kept for torch.nn compatibility; rnnkit does not pack weights into one buffer (cuDNN may copy them)."""

    def __prepare_scriptable__(self):
        """torch.jit.script(layer) compiles the torch.nn twin on the same parameters (fused-path layers only)."""
        return torch_twin(self)

    def extra_repr(self) -> str:
        s = f"{self.cell_name!r}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                              ("proj_size", 0), ("variational", False), ("skip", None)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s + f", path={self.path!r}"

    # -- forward ----------------------------------------------------------------------------------------------
    def forward(self, input, state=None, lengths: Tensor | None = None, *, hx=None):
        """Run the stack. Returns ``(output, state)`` as torch.nn does (see the module docstring for shapes).

        ``state`` is torch.nn's ``hx`` (either name works); ``lengths`` (B,) marks each sequence's length
        in a padded batch, as a PackedSequence does.
        """
        if hx is not None:
            if state is not None:
                raise TypeError("pass the initial state once: state= or hx=, not both")
            state = hx
        weights = self.all_weights  # read once: parametrizations are computed here
        name, weight_dtype = self._kind_name(), weights[0][0].dtype
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError("pass either a PackedSequence or lengths, not both")
            checks.check_input(name, input.data, self.input_size, weight_dtype, packed=True,
                               layout=f"(N, {self.input_size}) PackedSequence data")
            x, lengths = pad_packed_sequence(input)
            unbatched = False
        else:
            if not isinstance(input, Tensor):
                raise TypeError(f"input must be a Tensor or a PackedSequence, got {type(input).__name__}")
            if input.dim() not in (2, 3):
                raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D instead "
                                 f"(expected {self._input_shape()}, or (T, {self.input_size}) unbatched)")
            unbatched = input.dim() == 2
            checks.check_state_dims(name, state, self._is_lstm(), unbatched)
            layout = f"({self.input_size},) per step unbatched" if unbatched else self._input_shape()
            checks.check_input(name, input, self.input_size, weight_dtype, layout=layout)
            x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
            state = map_state(state, lambda s: s.unsqueeze(1)) if unbatched and state is not None else state
        T, B = x.shape[0], x.shape[1]
        checks.check_length(name, T)
        lengths = self._check(name, x, state, lengths)
        state = self._initial_state(state, B, x)
        if lengths is not None and bool((lengths == T).all()):
            lengths = None  # nothing is padded
        plan = self._plan
        if plan.kind is Kind.FUSED:
            out, new_state = self._fused(x, state, lengths, weights, list(range(self.num_layers)), self.dropout)
        else:
            out, new_state = self._layer_by_layer(x, state, lengths, weights, plan)
        return self._format_output(out, new_state, input, packed, unbatched)

    def _kind_name(self) -> str:
        """The layer's name in error messages, as torch.nn says it: "LSTM", "GRU", "RNN" (or our class name)."""
        cell = self._cells[0]
        if isinstance(cell, LSTMCell):
            return "LSTM"
        if isinstance(cell, GRUCell):
            return "GRU"
        if isinstance(cell, ElmanCell):
            return "RNN"
        return type(self).__name__

    def _input_shape(self) -> str:
        order = "(B, T, {})" if self.batch_first else "(T, B, {})"
        return order.format(self.input_size) + f" with batch_first={self.batch_first}"

    def _check(self, name: str, x: Tensor, state, lengths):
        T, B, _ = x.shape
        rows = self.num_layers * self.num_directions
        checks.check_state_shapes(name, state, self._is_lstm(), (rows, B, self.output_size),
                                  (rows, B, self.hidden_size), x.dtype)
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths)
        if lengths.shape != (B,):
            raise ValueError(f"lengths must have shape ({B},) (one per sequence), got {tuple(lengths.shape)}")
        if lengths.dtype.is_floating_point or bool((lengths < 1).any()) or bool((lengths > T).any()):
            raise ValueError(f"lengths must be integers in [1, {T}] (T = {T}), got {lengths.tolist()}")
        return lengths.to(device="cpu", dtype=torch.int64)

    def _is_lstm(self) -> bool:
        return isinstance(self._cells[0], LSTMCell)

    def _initial_state(self, state, B: int, x: Tensor):
        if state is not None:
            return LSTMState(*state) if self._is_lstm() else state
        rows = self.num_layers * self.num_directions
        h = x.new_zeros(rows, B, self.output_size)
        return LSTMState(h, x.new_zeros(rows, B, self.hidden_size)) if self._is_lstm() else h

    def _format_output(self, out: Tensor, state, input, packed: bool, unbatched: bool):
        if packed:  # re-pack in the input's own order, with its own indices
            order = input.sorted_indices
            rows = out if order is None else out.index_select(1, order)
            data = pack_padded_sequence(rows, _lengths_of(input)).data
            return PackedSequence(data, input.batch_sizes, input.sorted_indices, input.unsorted_indices), state
        if unbatched:
            return out.squeeze(1), map_state(state, lambda s: s.squeeze(1))
        return (out.transpose(0, 1) if self.batch_first else out), state

    # -- fused path: torch's kernels on our parameters --------------------------------------------------------
    def _fused(self, x: Tensor, state, lengths, weights: list[list[Tensor]], layers: list[int], dropout: float):
        """Layers ``layers`` in one call of torch's kernel; state rows for those layers only."""
        D = self.num_directions
        rows = [k * D + d for k in layers for d in range(D)]
        weights = [w for i in rows for w in weights[i]]
        kernel = fused_kernel(self._cells[0])
        hx = map_state(state, lambda s: s[rows[0] : rows[-1] + 1])
        args = (weights, self.bias, len(layers), dropout, self.training, self.bidirectional)
        if self._is_lstm():
            hx = tuple(hx)
        if lengths is None:
            result = kernel(x, hx, *args, False)
            return result[0], self._pack_state(result[1:])
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        hx = map_state(hx, lambda s: s.index_select(1, packed.sorted_indices))
        result = kernel(packed.data, packed.batch_sizes, hx, *args)
        packed_out = PackedSequence(result[0], packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        out, _ = pad_packed_sequence(packed_out, total_length=x.shape[0])
        new_state = map_state(self._pack_state(result[1:]), lambda s: s.index_select(1, packed.unsorted_indices))
        return out, new_state

    def _pack_state(self, tensors) -> Tensor | LSTMState:
        return LSTMState(*tensors) if self._is_lstm() else tensors[0]

    # -- layer by layer: our own stacking (dropout, skips), each layer fused or looped ------------------------
    def _layer_by_layer(self, x: Tensor, state, lengths, weights: list[list[Tensor]], plan: Plan):
        D, fused = self.num_directions, plan.kind is Kind.FUSED_PER_LAYER
        cells = None if fused else self._bind(weights)
        finals = []
        for k in range(self.num_layers):
            if k > 0:
                x = self._between_layers(x, k)
            if fused:
                out, final = self._fused(x, state, lengths, weights, [k], 0.0)
            else:
                outs, final = [], []
                for d in range(D):
                    i = k * D + d
                    s = map_state(state, lambda t, i=i: t[i])
                    o, f = unroll(cells[i], x, s, lengths, reverse=d == 1, scan=self._scan(plan, i))
                    outs.append(o)
                    final.append(f)
                out = outs[0] if D == 1 else torch.cat(outs, dim=-1)
                final = _stack_states(final)
            if k > 0 and self.skip:
                out = self._skip(out, x, k)
            x = out
            finals.append(final)
        return x, _cat_states(finals)

    def _scan(self, plan: Plan, i: int):
        """Cell i's time loop. Tracers (torch.compile, torch.export, torch.jit.trace) get python_scan instead of a
        fast scan, whose out= buffers and oneDNN calls they cannot record; the results are equal."""
        scan = plan.scans[i]
        tracing = torch.compiler.is_compiling() or torch.jit.is_tracing()
        return None if tracing and scan is not None and scan is not self.scan_override else scan

    def _between_layers(self, x: Tensor, k: int) -> Tensor:
        """Dropout on the connection from layer k-1 to layer k (never on the recurrent connection)."""
        if not (self.training and self.dropout > 0):
            return x
        if self.variational:
            keep = 1.0 - self.dropout
            mask = x.new_empty(1, x.shape[1], x.shape[2]).bernoulli_(keep)  # one mask per sequence
            return x * mask / keep if keep > 0 else x * mask
        return F.dropout(x, self.dropout, training=True)

    def _skip(self, out: Tensor, x: Tensor, k: int) -> Tensor:
        if self.skip == "residual":
            return out + x
        weight, bias = getattr(self, f"highway_weight_l{k}"), getattr(self, f"highway_bias_l{k}")
        g = torch.sigmoid(F.linear(x, weight, bias))  # how much of the new layer's output to let through
        return g * out + (1 - g) * x


class _TorchRepr:
    """torch.nn's repr for the drop-in layers (``LSTM(2, 3, num_layers=2)``), then only rnnkit's own options."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("proj_size", 0), ("num_layers", 1), ("bias", True), ("batch_first", False),
                              ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        own = {"nonlinearity": ("tanh", "relu"), "reset": ("after",), "variational": (False,), "skip": (None,)}
        for name, defaults in own.items():
            if hasattr(self, name) and getattr(self, name) not in defaults:
                s += f", {name}={getattr(self, name)!r}"
        return s + (f", cell={self.cell_name!r}" if self.cell_name == "ln-lstm" else "")


class RNN(_TorchRepr, Recurrent):
    """Elman RNN, a drop-in for torch.nn.RNN; also ``nonlinearity="hardtanh"|"sigmoid"`` (loop path)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, **options):
        if f"rnn-{nonlinearity}" not in CELLS:
            raise ValueError(f"Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu' (torch.nn), "
                             "or 'hardtanh', 'sigmoid' (rnnkit, loop path).")
        self.nonlinearity = nonlinearity
        super().__init__(f"rnn-{nonlinearity}", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype, **options)


class LSTM(_TorchRepr, Recurrent):
    """LSTM, a drop-in for torch.nn.LSTM, ``proj_size`` included; ``cell="ln-lstm"`` gives the layer-normalised
    LSTM (loop path).

    Unlike torch.nn, the forget-gate bias starts at ``forget_bias=1.0`` (None keeps torch.nn's init).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None, cell="lstm", **options):
        if cell not in ("lstm", "ln-lstm"):
            raise ValueError(f"LSTM cell must be 'lstm' or 'ln-lstm', got {cell!r}")
        super().__init__(cell, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size=proj_size, device=device, dtype=dtype, **options)


class GRU(_TorchRepr, Recurrent):
    """GRU, a drop-in for torch.nn.GRU; ``reset="before"`` gives Cho et al.'s original form (loop path)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, reset="after", **options):
        if reset not in ("after", "before"):
            raise ValueError(f"reset must be 'after' (cuDNN/torch.nn) or 'before' (Cho et al.), got {reset!r}")
        self.reset = reset
        super().__init__("gru" if reset == "after" else "gru-before", input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, device=device, dtype=dtype, **options)
