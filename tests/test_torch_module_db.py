"""torch.nn's own samples, rnnkit swapped in: the inputs and error cases PyTorch ships for its RNN/LSTM/GRU modules
and cells (``torch.testing._internal.common_modules.module_db``), run against rnnkit's classes.

PyTorch's module test-suite runs a set of generic checks over these samples for every module class. This file runs
the checks that make sense on a CPU, written here in our own words, with rnnkit.RNN / LSTM / GRU / RNNCell /
LSTMCell / GRUCell in place of torch's, in float32 and float64:

- forward: ours == torch's own no-batch-dim reference function for the sample, and == torch.nn with the same
  weights (outputs and final states);
- errors: each of torch's error samples raises the same exception type with a message matching torch's regex;
- factory kwargs: ``device=`` / ``dtype=`` reach every parameter; construction under a ``torch.device("meta")``
  context puts the parameters there;
- gradients: ``torch.autograd.gradcheck`` of the forward (float64) w.r.t. the inputs and every parameter;
- non-contiguous inputs and states give the contiguous result;
- pickle round trip, ``copy.deepcopy`` and ``torch.save`` / ``torch.load(weights_only=True)`` of the state dict
  give a module with the same forward; ``.to(dtype)`` converts every parameter;
- ``repr`` reads as torch's.

The samples are torch's, so this file is an independent oracle of what torch.nn users pass in; it needs nothing
beyond the installed torch.
"""

from __future__ import annotations

import copy
import io
import pickle
import re

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence
from torch.testing._internal.common_modules import ModuleErrorEnum, module_db

import rnnkit

OURS = {torch.nn.RNN: rnnkit.RNN, torch.nn.LSTM: rnnkit.LSTM, torch.nn.GRU: rnnkit.GRU,
        torch.nn.RNNCell: rnnkit.RNNCell, torch.nn.LSTMCell: rnnkit.LSTMCell, torch.nn.GRUCell: rnnkit.GRUCell}
INFOS = [info for info in module_db if info.module_cls in OURS]
DTYPES = [torch.float32, torch.float64]


def samples(info, dtype, requires_grad=False):
    return list(info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=requires_grad, training=True))


def cases(with_dtype=True):
    """(info, dtype, sample index) for every forward sample of every module."""
    out = []
    for info in INFOS:
        for dtype in DTYPES if with_dtype else [torch.float64]:
            out += [pytest.param(info, dtype, i, id=f"{info.module_cls.__name__}-{str(dtype)[6:]}-{i}")
                    for i in range(len(samples(info, dtype)))]
    return out


def pair(info, sample, dtype):
    """(ours, torch's) built from the sample's constructor arguments, ours holding torch's weights."""
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    theirs = info.module_cls(*args, **kwargs).to(dtype)
    ours = OURS[info.module_cls](*args, **kwargs).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def tensors(result):
    """The tensors of a module's result (output, state or both), a PackedSequence by its data."""
    if isinstance(result, PackedSequence):
        return [result.data]
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for part in result for t in tensors(part)]


def assert_same(a, b, **tol):
    ta, tb = tensors(a), tensors(b)
    assert len(ta) == len(tb)
    for x, y in zip(ta, tb):
        torch.testing.assert_close(x, y, **tol)


@pytest.mark.parametrize("info, dtype, i", cases())
def test_forward_equals_torchs_reference_and_torch_nn(info, dtype, i):
    sample = samples(info, dtype)[i]
    ours, theirs = pair(info, sample, dtype)
    args, kwargs = sample.forward_input.args, sample.forward_input.kwargs
    result = ours(*args, **kwargs)
    assert_same(result, theirs(*args, **kwargs))
    if sample.reference_fn is not None:  # torch's reference: the batched module on the input with a batch of one
        assert_same(result, sample.reference_fn(ours, *args, **kwargs))


def error_cases():
    out = []
    for info in INFOS:
        if info.module_error_inputs_func is None:
            continue
        for dtype in DTYPES:
            errors = list(info.module_error_inputs_func(info, device="cpu", dtype=dtype, requires_grad=False,
                                                         training=True))
            out += [pytest.param(info, dtype, k, id=f"{info.module_cls.__name__}-{str(dtype)[6:]}-{k}")
                    for k in range(len(errors))]
    return out


@pytest.mark.parametrize("info, dtype, k", error_cases())
def test_errors_are_torchs(info, dtype, k):
    case = list(info.module_error_inputs_func(info, device="cpu", dtype=dtype, requires_grad=False,
                                              training=True))[k]
    sample = case.module_error_input
    cls = OURS[info.module_cls]
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    if case.error_on == ModuleErrorEnum.CONSTRUCTION_ERROR:
        with pytest.raises(case.error_type, match=case.error_regex):
            cls(*args, **kwargs)
        return
    module = cls(*args, **kwargs).to(dtype) if "dtype" not in kwargs else cls(*args, **kwargs)
    with pytest.raises(case.error_type, match=case.error_regex):
        module(*sample.forward_input.args, **sample.forward_input.kwargs)


@pytest.mark.parametrize("info", INFOS, ids=lambda info: info.module_cls.__name__)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_factory_kwargs_reach_every_parameter(info, dtype):
    for sample in samples(info, torch.float32):
        args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
        module = OURS[info.module_cls](*args, **kwargs, device="cpu", dtype=dtype)
        assert [p.dtype for p in module.parameters()] == [dtype] * len(list(module.parameters()))
        with torch.device("meta"):
            on_meta = OURS[info.module_cls](*args, **kwargs)
        assert {p.device.type for p in on_meta.parameters()} == {"meta"}
        assert [n for n, _ in on_meta.named_parameters()] == [n for n, _ in module.named_parameters()]


@pytest.mark.parametrize("info, dtype, i", cases(with_dtype=False))
def test_gradcheck_inputs_and_parameters(info, dtype, i):
    sample = samples(info, dtype, requires_grad=True)[i]
    ours, _ = pair(info, sample, dtype)
    args, kwargs = sample.forward_input.args, sample.forward_input.kwargs
    flat_inputs = [t for t in tensors(list(args)) if t.requires_grad]
    params = list(ours.parameters())
    n = len(flat_inputs)

    def forward(*leaves):
        feed = dict(zip(map(id, flat_inputs), leaves[:n]))
        with torch.nn.utils.stateless._reparametrize_module(ours, dict(zip(
                [name for name, _ in ours.named_parameters()], leaves[n:]))):
            return tuple(tensors(ours(*substitute(args, feed), **kwargs)))

    assert torch.autograd.gradcheck(forward, (*flat_inputs, *params), fast_mode=True)


def substitute(value, feed):
    """value with each tensor whose id is in feed replaced (PackedSequence data, tuples of states, ...)."""
    if isinstance(value, PackedSequence):
        return value._replace(data=feed.get(id(value.data), value.data))
    if isinstance(value, torch.Tensor):
        return feed.get(id(value), value)
    if isinstance(value, (tuple, list)):
        return type(value)(substitute(v, feed) for v in value)
    return value


def non_contiguous(t):
    """The same values in a tensor with a stride of 2 along its last dimension."""
    wide = torch.empty(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
    wide[..., ::2] = t
    out = wide[..., ::2]
    assert not out.is_contiguous() and torch.equal(out, t)
    return out


@pytest.mark.parametrize("info, dtype, i", cases())
def test_non_contiguous_inputs_give_the_contiguous_result(info, dtype, i):
    sample = samples(info, dtype)[i]
    ours, _ = pair(info, sample, dtype)
    args, kwargs = sample.forward_input.args, sample.forward_input.kwargs
    leaves = [t for t in tensors(list(args)) if t.dim() > 0]
    strided = substitute(args, {id(t): non_contiguous(t) for t in leaves})
    assert_same(ours(*strided, **kwargs), ours(*args, **kwargs), rtol=0, atol=0)


@pytest.mark.parametrize("info", INFOS, ids=lambda info: info.module_cls.__name__)
def test_pickle_deepcopy_save_load_and_to(info):
    dtype = torch.float64
    for sample in samples(info, dtype):
        ours, _ = pair(info, sample, dtype)
        args, kwargs = sample.forward_input.args, sample.forward_input.kwargs
        expected = ours(*args, **kwargs)
        assert_same(pickle.loads(pickle.dumps(ours))(*args, **kwargs), expected, rtol=0, atol=0)
        assert_same(copy.deepcopy(ours)(*args, **kwargs), expected, rtol=0, atol=0)
        buffer = io.BytesIO()
        torch.save(ours.state_dict(), buffer)
        buffer.seek(0)
        fresh = OURS[info.module_cls](*sample.constructor_input.args, **sample.constructor_input.kwargs).to(dtype)
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
        assert_same(fresh(*args, **kwargs), expected, rtol=0, atol=0)
        assert {p.dtype for p in ours.to(torch.float32).parameters()} == {torch.float32}


@pytest.mark.parametrize("info", INFOS, ids=lambda info: info.module_cls.__name__)
def test_repr_reads_as_torchs(info):
    for sample in samples(info, torch.float32):
        ours, theirs = pair(info, sample, torch.float32)
        name = info.module_cls.__name__
        assert re.sub(r"^\w+", name, repr(ours)) == repr(theirs)
