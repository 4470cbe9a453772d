"""A small ONNX graph builder: nodes by op name, weights as initializers, subgraphs for Scan bodies.

    g = Graph("classify")
    x = g.input("tokens", INT64, ["B", "T"])
    e = g.op("Gather", g.weight(embedding.weight), x)        # weights become initializers, once each
    g.output(e, "embedded", FLOAT, ["B", "T", "E"])
    model = g.model()                                       # an onnx.ModelProto, opset OPSET

A body graph (``g.body()``) shares the root's name counter and initializers: Scan bodies read the weights
from the outer scope, so each weight is stored once however many steps use it.
"""

from __future__ import annotations

import numpy as np
import torch

OPSET = 17  # LayerNormalization (layer-norm LSTM) needs 17
IR_VERSION = 8  # opset 17's IR version: loadable by onnxruntime >= 1.12


def require_onnx():
    """The onnx module, or a one-line install hint."""
    try:
        import onnx
    except ImportError:
        from rnnkit.cli.common import UsageError

        raise UsageError("ONNX export needs the export extra: pip install 'rnnkit[export]'") from None
    return onnx


class NotExportable(Exception):
    """The model (or one of its options) has no honest ONNX translation; the message says which part."""


class Graph:
    """Nodes, inputs, outputs; the root graph also owns the initializers (weights and constants)."""

    def __init__(self, name: str, root: Graph | None = None):
        self.onnx = require_onnx()
        self.name = name
        self.root = root or self
        self.nodes, self.inputs, self.outputs = [], [], []
        if root is None:
            self.initializers, self._count, self._weights = [], 0, {}

    def body(self, name: str) -> Graph:
        return Graph(name, self.root)

    def fresh(self, hint: str) -> str:
        self.root._count += 1
        return f"{hint}_{self.root._count}"

    # -- values ---------------------------------------------------------------------------------------------
    def const(self, value, hint: str = "const", dtype=np.float32) -> str:
        array = np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        self.root.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def ints(self, *values: int) -> str:
        return self.const(list(values), "ints", np.int64)

    def weight(self, tensor: torch.Tensor, transpose: bool = False, hint: str = "w") -> str:
        """An initializer holding a parameter (its transpose for MatMul); stored once per parameter."""
        key = (tensor.data_ptr(), tuple(tensor.shape), tensor.stride(), tensor.dtype, transpose)
        if key not in self.root._weights:  # the tensor is kept alive with its name: its memory is not reused
            array = tensor.detach().float().cpu().numpy()
            self.root._weights[key] = (tensor, self.const(array.T if transpose else array, hint))
        return self.root._weights[key][1]

    def input(self, name: str, elem_type: int, shape) -> str:
        """shape: a list of ints / symbolic names / None (unknown), or an int rank (all dims unknown)."""
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem_type, _shape(shape)))
        return name

    def output(self, value: str, name: str, elem_type: int, shape) -> str:
        self.op("Identity", value, name=name)
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, elem_type, _shape(shape)))
        return name

    # -- nodes ----------------------------------------------------------------------------------------------
    def op(self, op_type: str, *inputs: str, outputs: int = 1, name: str | None = None, **attrs):
        """Add a node; returns its output name (or a list of ``outputs`` names)."""
        names = [name] if name else [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def linear(self, x: str, layer: torch.nn.Linear) -> str:
        """x W^T + b for a torch.nn.Linear, x (..., in) -> (..., out)."""
        y = self.op("MatMul", x, self.weight(layer.weight, transpose=True))
        return y if layer.bias is None else self.op("Add", y, self.weight(layer.bias))

    def dim(self, x: str, axis: int) -> str:
        """The size of one axis of x, as a (1,) int64 tensor."""
        return self.op("Shape", x, start=axis, end=axis + 1)

    def zeros(self, *dims: str) -> str:
        """A float tensor of zeros whose shape is the concatenation of (1,) int64 tensors."""
        shape = self.op("Concat", *dims, axis=0)
        return self.op("ConstantOfShape", shape, value=self.onnx.numpy_helper.from_array(np.zeros(1, np.float32)))

    def split(self, x: str, sizes: list[int], axis: int = -1) -> list[str]:
        return self.op("Split", x, self.ints(*sizes), outputs=len(sizes), axis=axis)

    def graph(self):
        h = self.onnx.helper
        inits = self.initializers if self.root is self else []
        return h.make_graph(self.nodes, self.name, self.inputs, self.outputs, inits)

    def model(self, doc: str = ""):
        h = self.onnx.helper
        model = h.make_model(self.graph(), opset_imports=[h.make_opsetid("", OPSET)], producer_name="rnnkit",
                             doc_string=doc)
        model.ir_version = IR_VERSION
        return model


def _shape(shape):
    return [None] * shape if isinstance(shape, int) else shape


FLOAT, INT64, BOOL = 1, 7, 9  # onnx.TensorProto.FLOAT / INT64 / BOOL
