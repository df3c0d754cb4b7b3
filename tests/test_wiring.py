"""Wirings: NCP structure, determinism, immutability, serialisation, ncps conversion."""
from __future__ import annotations

import numpy as np
import pytest

from policies.wiring import Wiring, auto_ncp, from_ncps, fully_connected, ncp


def test_ncp_structure():
    w = ncp(10, inter_neurons=8, command_neurons=6, motor_neurons=2, sensory_fanout=4, inter_fanout=3,
            recurrent_command_synapses=5, motor_fanin=3, seed=1)
    assert w.units == 16 and w.layer_sizes == (8, 6, 2) and w.motor_range == (14, 16)
    inter, command, motor = slice(0, 8), slice(8, 14), slice(14, 16)
    # sensory -> inter only; inter -> command; command -> command/motor; nothing else
    assert not w.sensory_adjacency[:, 8:].any()
    allowed = np.zeros((16, 16), bool)
    allowed[inter, command] = allowed[command, command] = allowed[command, motor] = True
    assert not w.adjacency[~allowed].any()
    assert (w.sensory_adjacency != 0).sum(axis=1).min() == 4  # each input reaches sensory_fanout inter neurons
    assert w.sensory_adjacency[:, inter].any(axis=0).all()  # every inter neuron hears an input
    assert w.adjacency[inter, command].any(axis=0).all()  # every command neuron hears an inter neuron
    assert w.adjacency[command, motor].any(axis=1).all()  # every command neuron drives a motor neuron
    assert ((w.adjacency[command, motor] != 0).sum(axis=0) >= 3).all()
    assert set(np.unique(w.adjacency)) <= {-1, 0, 1}


def test_same_seed_same_wiring_other_seed_other_wiring():
    assert auto_ncp(41, 32, 2, seed=5) == auto_ncp(41, 32, 2, seed=5)
    assert auto_ncp(41, 32, 2, seed=5) != auto_ncp(41, 32, 2, seed=6)


def test_wiring_is_immutable_and_round_trips():
    w = auto_ncp(41, 19, 2)
    with pytest.raises(ValueError):
        w.sensory_adjacency[0, 0] = 1
    with pytest.raises(AttributeError):
        w.input_dim = 3  # type: ignore[misc]
    again = Wiring.from_dict(w.to_dict())
    assert again == w and hash(again) == hash(w)
    assert fully_connected(4, 6, 2).synapse_count == 36


def test_invalid_wirings_are_rejected():
    with pytest.raises(ValueError, match="adjacency"):
        Wiring(3, 1, (2, 1), np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="sensory_fanout"):
        ncp(4, 3, 3, 2, sensory_fanout=5, inter_fanout=1, recurrent_command_synapses=1, motor_fanin=1)


def test_from_ncps_relabels_motor_neurons_last():
    wirings = pytest.importorskip("ncps.wirings")
    ref = wirings.AutoNCP(19, 2, seed=3)
    ref.build(16)
    w, order = from_ncps(ref)
    assert w.layer_sizes == tuple(len(ref.get_neurons_of_layer(l)) for l in range(3))
    assert list(order[-2:]) == [0, 1]  # ncps motor neurons 0, 1 are our last two
    np.testing.assert_array_equal(w.adjacency, ref.adjacency_matrix[np.ix_(order, order)])
