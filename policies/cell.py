"""What the LTC and CfC cells share: the state, input/output mappings, plasticity switch,
the per-sample time step, the sequence loop and parameter counting.

A cell maps one step: `y, state = cell(x, state, dt)` with x (batch, inputs), dt (batch,)
elapsed time in the cell's time unit (each sample may have its own) and state a
`CellState(h, trace)`: h (batch, units) the neuron states, trace (batch, units, units)
[pre, post] the plastic traces (None for a cell without plastic synapses). y (batch,
outputs) reads the motor neurons (the wiring's last `output_dim`) through the output mapping.

A subclass supplies `plastic_mask(wiring)` (which synapses are plastic) and `_dynamics` (the
neuron model, given the plastic weight change alpha * trace or None); it may override
`sequence` with a faster training path. The numpy control path is policies/fastpath.py.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Union

import numpy as np
import torch
from torch import nn

from policies.plasticity import HebbianRule, RuleSpec
from policies.wiring import Wiring

MAPPINGS = ("affine", "linear", "none")


class CellState(NamedTuple):
    """A liquid cell's recurrent state, batch first."""

    h: torch.Tensor  # (batch, units) neuron states
    trace: Optional[torch.Tensor] = None  # (batch, units, units) plastic traces [pre, post]; None: no plastic synapses

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """(h,) or (h, trace): the state as the flat tuple of tensors networks and exports pass on."""
        return (self.h,) if self.trace is None else (self.h, self.trace)

    @staticmethod
    def names(plastic: bool) -> tuple[str, ...]:
        """The names of `tensors()` (the exported state's inputs and checkpoint keys)."""
        return ("h", "trace") if plastic else ("h",)


def batch_dt(dt: Union[float, torch.Tensor, np.ndarray], batch_size: int, like: torch.Tensor) -> torch.Tensor:
    """The elapsed time as a (batch,) tensor: a number or 0-d tensor applies to every sample."""
    dt = torch.as_tensor(dt, dtype=like.dtype, device=like.device)
    if dt.dim() == 0:
        return dt.expand(batch_size)
    if dt.shape != (batch_size,):
        raise ValueError(f"dt must be a number or have shape ({batch_size},), got {tuple(dt.shape)}")
    return dt


class PlasticSwitch:
    """The plasticity switch of a cell that sets `self.rule` (a HebbianRule, or None) and
    `self._plasticity`: the liquid cells and the LSM's readout (policies/lsm.py)."""

    rule: Optional[HebbianRule]
    _plasticity: bool

    @property
    def plastic(self) -> bool:
        """True when the cell has plastic synapses (learned rule parameters)."""
        return self.rule is not None

    @property
    def plasticity(self) -> bool:
        """Whether the traces change while running; off = same weights, traces frozen at zero."""
        return self._plasticity

    @plasticity.setter
    def plasticity(self, on: bool) -> None:
        if on and self.rule is None:
            raise ValueError("this cell has no plastic synapses")
        self._plasticity = bool(on)


class LiquidCell(PlasticSwitch, nn.Module):
    """Base of LTCCell and CfCCell (see the module docstring for the step contract)."""

    def __init__(self, wiring: Wiring, *, rule: Optional[RuleSpec] = None, input_mapping: str = "none",
                 output_mapping: str = "none"):
        super().__init__()
        for label, value in (("input_mapping", input_mapping), ("output_mapping", output_mapping)):
            if value not in MAPPINGS:
                raise ValueError(f"{label} must be one of {MAPPINGS}, got {value!r}")
        self.wiring = wiring
        self.input_mapping = input_mapping
        self.output_mapping = output_mapping
        if input_mapping != "none":
            self.input_w = nn.Parameter(torch.ones(wiring.input_dim))
        if input_mapping == "affine":
            self.input_b = nn.Parameter(torch.zeros(wiring.input_dim))
        if output_mapping != "none":
            self.output_w = nn.Parameter(torch.ones(wiring.output_dim))
        if output_mapping == "affine":
            self.output_b = nn.Parameter(torch.zeros(wiring.output_dim))
        self.rule: Optional[HebbianRule] = (
            HebbianRule(self.plastic_mask(wiring), wiring.units, rule) if rule is not None else None
        )
        self._plasticity = rule is not None

    # -- supplied by the neuron model -------------------------------------------------------
    @staticmethod
    def plastic_mask(wiring: Wiring) -> np.ndarray:
        """(units, units) [pre, post]: 1 where the synapse is plastic."""
        raise NotImplementedError

    def _dynamics(
        self, x: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, delta: Optional[torch.Tensor], want_coactivity: bool
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """New neuron states (batch, units) and, if asked, the pre x post coactivity (batch, pre, post)."""
        raise NotImplementedError

    def _own_parameter_masks(self) -> dict[str, torch.Tensor]:
        """Masks of parameters of which only the masked entries are synapses."""
        return {}

    # -- shared -------------------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return self.wiring.input_dim

    @property
    def state_size(self) -> int:
        return self.wiring.units

    @property
    def output_size(self) -> int:
        return self.wiring.output_dim

    def initial_state(self, batch_size: int = 1, like: Optional[torch.Tensor] = None) -> CellState:
        """Zero neuron states (and zero traces for a plastic cell)."""
        like = self._like() if like is None else like
        h = like.new_zeros((batch_size, self.state_size))
        return CellState(h, None if self.rule is None else self.rule.zero_trace(batch_size, like))

    def state_names(self) -> tuple[str, ...]:
        return CellState.names(self.rule is not None)

    def forward(
        self, x: torch.Tensor, state: Optional[tuple] = None, dt: Union[float, torch.Tensor] = 1.0
    ) -> tuple[torch.Tensor, CellState]:
        """One step: x (batch, inputs), state (a CellState or its tensors), dt elapsed time
        (number or (batch,)) -> (y, new CellState)."""
        batch = x.shape[0]
        h, trace = self.initial_state(batch, x) if state is None else CellState(*state)
        dt = batch_dt(dt, batch, x)
        x = self.map_inputs(x)
        if self.rule is not None and self._plasticity:
            m = self.rule.modulation(h)  # from the state at the start of the step
            h_new, coactivity = self._dynamics(x, h, dt, self.rule.delta(trace), True)
            new_state = CellState(h_new, self.rule.update(trace, m, coactivity))
        else:
            h_new, _ = self._dynamics(x, h, dt, None, False)
            new_state = CellState(h_new, None if self.rule is None else torch.zeros_like(trace))
        return self.map_outputs(h_new), new_state

    def sequence(self, x: torch.Tensor, dt: torch.Tensor, state: tuple) -> tuple[torch.Tensor, CellState]:
        """x (batch, time, inputs), dt (batch, time) -> (y (batch, time, outputs), final state).

        The training path: a cell overrides it with a faster computation of `stepwise`.
        """
        return self.stepwise(x, dt, state)

    def stepwise(self, x: torch.Tensor, dt: torch.Tensor, state: tuple) -> tuple[torch.Tensor, CellState]:
        """As `sequence`, one `forward` step at a time: the reference the fast paths are tested against."""
        outputs = []
        for t in range(x.shape[1]):
            y, state = self(x[:, t], state, dt[:, t])
            outputs.append(y)
        return torch.stack(outputs, 1), CellState(*state)

    def map_inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_mapping != "none":
            x = x * self.input_w
        if self.input_mapping == "affine":
            x = x + self.input_b
        return x

    def map_outputs(self, h: torch.Tensor) -> torch.Tensor:
        y = h[..., self.wiring.motor_range[0]:]
        if self.output_mapping != "none":
            y = y * self.output_w
        if self.output_mapping == "affine":
            y = y + self.output_b
        return y

    def parameter_masks(self) -> dict[str, torch.Tensor]:
        masks = dict(self._own_parameter_masks())
        if self.rule is not None:
            masks.update({f"rule.{k}": v for k, v in self.rule.parameter_masks().items()})
        return masks

    def count_parameters(self) -> int:
        """Trainable parameters that can affect the output: masked-out entries are not counted."""
        masks = self.parameter_masks()
        return sum(
            int(masks[name].count_nonzero()) if name in masks else p.numel()
            for name, p in self.named_parameters()
            if p.requires_grad
        )

    def _like(self) -> torch.Tensor:
        return next(self.parameters())
