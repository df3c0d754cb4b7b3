"""Wirings: which neuron may talk to which, as immutable data.

A wiring says how many sensory inputs and neurons there are, which synapses exist and with
what polarity (+1 excitatory, -1 inhibitory), and how the neurons are grouped into layers
(the Neural Circuit Policy order: inter, command, motor). It holds no tensors and no
parameters: cells derive their masks (buffers) from it, so one wiring can be shared by any
number of modules.

Conventions:
- matrices are indexed [source, destination]: `adjacency[i, j]` is the synapse from
  neuron i to neuron j, `sensory_adjacency[k, j]` the one from input k to neuron j;
- neurons are numbered layer by layer, so every layer is a contiguous range, and the motor
  neurons (the outputs) are the last `output_dim` neurons.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "navctl-wiring/1"


@dataclass(frozen=True, eq=False)
class Wiring:
    """Synapses and layers of a network of `units` neurons fed by `input_dim` inputs."""

    input_dim: int
    output_dim: int
    layer_sizes: tuple[int, ...]
    adjacency: np.ndarray  # (units, units) int8 in {-1, 0, 1}, [source, destination]
    sensory_adjacency: np.ndarray  # (input_dim, units) int8 in {-1, 0, 1}
    name: str = "custom"
    spec: dict[str, Any] = field(default_factory=dict)  # the generator's arguments, for the record

    def __post_init__(self) -> None:
        adjacency = np.array(self.adjacency, dtype=np.int8)
        sensory = np.array(self.sensory_adjacency, dtype=np.int8)
        sizes = tuple(int(s) for s in self.layer_sizes)
        units = sum(sizes)
        if not sizes or min(sizes) < 1:
            raise ValueError(f"wiring: every layer needs at least one neuron, got layer sizes {sizes}")
        if adjacency.shape != (units, units):
            raise ValueError(f"wiring: adjacency has shape {adjacency.shape}, expected ({units}, {units})")
        if sensory.shape != (self.input_dim, units):
            raise ValueError(
                f"wiring: sensory adjacency has shape {sensory.shape}, expected ({self.input_dim}, {units})"
            )
        for label, matrix in (("adjacency", adjacency), ("sensory adjacency", sensory)):
            if not np.isin(matrix, (-1, 0, 1)).all():
                raise ValueError(f"wiring: {label} holds values other than -1, 0, 1")
        if not 1 <= self.output_dim <= sizes[-1]:
            raise ValueError(
                f"wiring: output_dim {self.output_dim} must be between 1 and the last layer's size {sizes[-1]}"
            )
        adjacency.flags.writeable = False
        sensory.flags.writeable = False
        object.__setattr__(self, "adjacency", adjacency)
        object.__setattr__(self, "sensory_adjacency", sensory)
        object.__setattr__(self, "layer_sizes", sizes)
        object.__setattr__(self, "input_dim", int(self.input_dim))
        object.__setattr__(self, "output_dim", int(self.output_dim))
        object.__setattr__(self, "spec", dict(self.spec))

    @property
    def units(self) -> int:
        """Number of neurons (the size of the hidden state)."""
        return sum(self.layer_sizes)

    @property
    def num_layers(self) -> int:
        return len(self.layer_sizes)

    def layer_range(self, layer: int) -> tuple[int, int]:
        """(start, stop) neuron indices of a layer."""
        start = sum(self.layer_sizes[:layer])
        return start, start + self.layer_sizes[layer]

    @property
    def motor_range(self) -> tuple[int, int]:
        """(start, stop) indices of the motor (output) neurons: the last `output_dim`."""
        return self.units - self.output_dim, self.units

    @property
    def synapse_count(self) -> int:
        """Synapses between neurons."""
        return int(np.count_nonzero(self.adjacency))

    @property
    def sensory_synapse_count(self) -> int:
        """Synapses from inputs to neurons."""
        return int(np.count_nonzero(self.sensory_adjacency))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description that `from_dict` turns back into an equal wiring."""
        return {
            "format": FORMAT,
            "name": self.name,
            "spec": self.spec,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "layer_sizes": list(self.layer_sizes),
            "adjacency": self.adjacency.tolist(),
            "sensory_adjacency": self.sensory_adjacency.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Wiring":
        if data.get("format") != FORMAT:
            raise ValueError(f"wiring: format {data.get('format')!r} is not {FORMAT!r}")
        return cls(
            input_dim=data["input_dim"],
            output_dim=data["output_dim"],
            layer_sizes=tuple(data["layer_sizes"]),
            adjacency=np.array(data["adjacency"], dtype=np.int8).reshape(len(data["adjacency"]), -1),
            sensory_adjacency=np.array(data["sensory_adjacency"], dtype=np.int8).reshape(data["input_dim"], -1),
            name=data.get("name", "custom"),
            spec=data.get("spec", {}),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Wiring):
            return NotImplemented
        return (
            self.input_dim == other.input_dim
            and self.output_dim == other.output_dim
            and self.layer_sizes == other.layer_sizes
            and np.array_equal(self.adjacency, other.adjacency)
            and np.array_equal(self.sensory_adjacency, other.sensory_adjacency)
        )

    def __hash__(self) -> int:
        return hash((self.input_dim, self.output_dim, self.layer_sizes, self.adjacency.tobytes(), self.sensory_adjacency.tobytes()))

    def __repr__(self) -> str:
        return (
            f"Wiring({self.name}, inputs={self.input_dim}, layers={list(self.layer_sizes)}, "
            f"outputs={self.output_dim}, synapses={self.synapse_count}+{self.sensory_synapse_count} sensory)"
        )


def _polarity(rng: np.random.Generator) -> int:
    return int(rng.choice((-1, 1)))


def ncp(
    input_dim: int,
    inter_neurons: int,
    command_neurons: int,
    motor_neurons: int,
    sensory_fanout: int,
    inter_fanout: int,
    recurrent_command_synapses: int,
    motor_fanin: int,
    seed: int = 22222,
) -> Wiring:
    """A Neural Circuit Policy: sensory -> inter -> command (recurrent) -> motor.

    Each input reaches `sensory_fanout` inter neurons, each inter neuron `inter_fanout`
    command neurons, each motor neuron hears `motor_fanin` command neurons, and
    `recurrent_command_synapses` random command -> command synapses are added; a neuron
    left without input (or a command neuron without a motor target) gets one. Polarities
    are drawn +/-1 with equal odds. The same arguments always give the same wiring.
    """
    if not 1 <= sensory_fanout <= inter_neurons:
        raise ValueError(f"ncp: sensory_fanout {sensory_fanout} must be in [1, {inter_neurons}] (inter neurons)")
    if not 1 <= inter_fanout <= command_neurons:
        raise ValueError(f"ncp: inter_fanout {inter_fanout} must be in [1, {command_neurons}] (command neurons)")
    if not 1 <= motor_fanin <= command_neurons:
        raise ValueError(f"ncp: motor_fanin {motor_fanin} must be in [1, {command_neurons}] (command neurons)")
    rng = np.random.default_rng(seed)
    units = inter_neurons + command_neurons + motor_neurons
    inter = np.arange(0, inter_neurons)
    command = np.arange(inter_neurons, inter_neurons + command_neurons)
    motor = np.arange(inter_neurons + command_neurons, units)
    adjacency = np.zeros((units, units), dtype=np.int8)
    sensory = np.zeros((input_dim, units), dtype=np.int8)

    for src in range(input_dim):
        for dest in rng.choice(inter, size=sensory_fanout, replace=False):
            sensory[src, dest] = _polarity(rng)
    for dest in inter[~sensory[:, inter].any(axis=0)]:
        sensory[rng.integers(input_dim), dest] = _polarity(rng)

    for src in inter:
        for dest in rng.choice(command, size=inter_fanout, replace=False):
            adjacency[src, dest] = _polarity(rng)
    for dest in command[~adjacency[np.ix_(inter, command)].any(axis=0)]:
        adjacency[rng.choice(inter), dest] = _polarity(rng)

    for _ in range(recurrent_command_synapses):
        adjacency[rng.choice(command), rng.choice(command)] = _polarity(rng)

    for dest in motor:
        for src in rng.choice(command, size=motor_fanin, replace=False):
            adjacency[src, dest] = _polarity(rng)
    for src in command[~adjacency[np.ix_(command, motor)].any(axis=1)]:
        adjacency[src, rng.choice(motor)] = _polarity(rng)

    spec = dict(
        input_dim=input_dim, inter_neurons=inter_neurons, command_neurons=command_neurons,
        motor_neurons=motor_neurons, sensory_fanout=sensory_fanout, inter_fanout=inter_fanout,
        recurrent_command_synapses=recurrent_command_synapses, motor_fanin=motor_fanin, seed=seed,
    )
    return Wiring(input_dim, motor_neurons, (inter_neurons, command_neurons, motor_neurons), adjacency, sensory, "ncp", spec)


def auto_ncp(input_dim: int, units: int, output_dim: int, sparsity_level: float = 0.5, seed: int = 22222) -> Wiring:
    """An NCP sized from a neuron count, with the layer and fan-out proportions of ncps' AutoNCP."""
    if output_dim >= units - 2:
        raise ValueError(f"auto_ncp: output_dim {output_dim} must be below units - 2 = {units - 2}")
    if not 0.1 <= sparsity_level <= 0.9:
        raise ValueError(f"auto_ncp: sparsity_level {sparsity_level} must be in [0.1, 0.9]")
    density = 1.0 - sparsity_level
    command = max(int(0.4 * (units - output_dim)), 1)
    inter = units - output_dim - command
    wiring = ncp(
        input_dim, inter, command, output_dim,
        sensory_fanout=max(int(inter * density), 1),
        inter_fanout=max(int(command * density), 1),
        recurrent_command_synapses=max(int(command * density * 2), 1),
        motor_fanin=max(int(command * density), 1),
        seed=seed,
    )
    spec = dict(input_dim=input_dim, units=units, output_dim=output_dim, sparsity_level=sparsity_level, seed=seed)
    return Wiring(wiring.input_dim, wiring.output_dim, wiring.layer_sizes, wiring.adjacency, wiring.sensory_adjacency, "auto_ncp", spec)


def fully_connected(input_dim: int, units: int, output_dim: int, seed: int = 1111, self_connections: bool = True) -> Wiring:
    """Every input to every neuron and every neuron to every neuron, in one layer.

    Polarities are +1 with probability 2/3 (as in ncps); the outputs are the last `output_dim` neurons.
    """
    rng = np.random.default_rng(seed)
    adjacency = rng.choice(np.array([-1, 1, 1], dtype=np.int8), size=(units, units))
    if not self_connections:
        np.fill_diagonal(adjacency, 0)
    sensory = rng.choice(np.array([-1, 1, 1], dtype=np.int8), size=(input_dim, units))
    spec = dict(input_dim=input_dim, units=units, output_dim=output_dim, seed=seed, self_connections=self_connections)
    return Wiring(input_dim, output_dim, (units,), adjacency, sensory, "fully_connected", spec)


def from_ncps(ncps_wiring: Any) -> tuple[Wiring, np.ndarray]:
    """Convert a built `ncps.wirings` object (duck-typed; ncps is not imported).

    Returns the wiring and `order`, where `order[i]` is the ncps id of our neuron i: ncps
    numbers the motor neurons first, we number them last, layer by layer.
    """
    if getattr(ncps_wiring, "input_dim", None) is None:
        raise ValueError("from_ncps: the ncps wiring is not built (call .build(input_dim) first)")
    out = int(ncps_wiring.output_dim)
    layers = [list(ncps_wiring.get_neurons_of_layer(l)) for l in range(ncps_wiring.num_layers)]
    if len(layers) == 1:  # one layer: move ncps' motor neurons (its first ids) to the end
        layers = [[n for n in layers[0] if n >= out] + list(range(out))]
    order = np.array([n for layer in layers for n in layer])
    adjacency = np.asarray(ncps_wiring.adjacency_matrix)[np.ix_(order, order)]
    sensory = np.asarray(ncps_wiring.sensory_adjacency_matrix)[:, order]
    wiring = Wiring(int(ncps_wiring.input_dim), out, tuple(len(l) for l in layers), adjacency, sensory, "from_ncps")
    return wiring, order


def build_wiring(kind: str, input_dim: int, units: int, output_dim: int, sparsity_level: float = 0.5, seed: int = 22222) -> Wiring:
    """A wiring by name: "ncp" (auto-sized NCP) or "fully_connected"."""
    if kind == "ncp":
        return auto_ncp(input_dim, units, output_dim, sparsity_level, seed)
    if kind == "fully_connected":
        return fully_connected(input_dim, units, output_dim, seed)
    raise ValueError(f"unknown wiring {kind!r}; use 'ncp' or 'fully_connected'")

