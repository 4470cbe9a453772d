"""rnnkit.nn.state: nested recurrent states as values — detach, move, map, and the checkpoint spec."""

import json

import pytest
import torch

from rnnkit.nn import LSTMState, detach_state, map_state
from rnnkit.nn.state import flatten_tree, move_to, unflatten_tree


def test_detach_state_reaches_every_tensor_of_a_nested_state_and_keeps_types():
    h = torch.randn(2, 3, requires_grad=True)
    tree = {"encoder": LSTMState(h * 2, h * 3), "layers": [h * 4, (h * 5, None)], "step": 7}
    cut = detach_state(tree)
    assert type(cut["encoder"]) is LSTMState and isinstance(cut["layers"][1], tuple) and cut["step"] == 7
    leaves = [cut["encoder"].h, cut["encoder"].c, cut["layers"][0], cut["layers"][1][0]]
    assert not any(t.requires_grad for t in leaves)
    torch.testing.assert_close(cut["layers"][1][0], h * 5)
    assert detach_state(None) is None
    with pytest.raises(TypeError, match="recurrent state"):
        detach_state(object())


def test_map_state_zips_states_and_keeps_the_state_type():
    a, b = LSTMState(torch.ones(2), torch.zeros(2)), LSTMState(torch.full((2,), 2.0), torch.ones(2))
    summed = map_state(a, torch.add, b)
    assert type(summed) is LSTMState
    torch.testing.assert_close(summed.h, torch.full((2,), 3.0))
    assert type(map_state((torch.ones(1), torch.ones(1)), torch.neg)) is tuple
    torch.testing.assert_close(map_state(torch.ones(3), torch.neg), -torch.ones(3))


def test_flatten_round_trips_through_json_and_old_checkpoints_find_lstm_state():
    h = torch.randn(2, 3)
    tree = [LSTMState(h, h + 1), {"x": h * 2}, None]
    spec, tensors = flatten_tree(tree)
    back = unflatten_tree(json.loads(json.dumps(spec)), tensors)
    assert type(back[0]) is LSTMState and back[2] is None
    torch.testing.assert_close(back[1]["x"], h * 2)
    old = json.loads(json.dumps(spec).replace("rnnkit.nn.state", "rnnkit.nn.cells"))  # before nn/state.py
    assert type(unflatten_tree(old, tensors)[0]) is LSTMState


def test_move_to_keeps_structure():
    batch = {"x": torch.ones(2), "state": LSTMState(torch.ones(1), torch.zeros(1)), "n": 3}
    moved = move_to(batch, torch.device("meta"))
    assert moved["x"].device.type == "meta" and type(moved["state"]) is LSTMState and moved["n"] == 3
