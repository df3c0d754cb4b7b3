"""What the LTC and CfC cells share: state layout, input/output mappings, plasticity switch,
the per-sample time step, parameter counting, and the numpy fast-path scaffolding.

A cell maps one step: `y, state = cell(x, state, dt)` with x (batch, inputs), dt (batch,)
elapsed time in the cell's time unit (each sample may have its own), state = (h,) for a
non-plastic cell and (h, H) for a plastic one: h (batch, units) the neuron states, H
(batch, units, units) the Hebbian traces [pre, post]. y (batch, outputs) reads the motor
neurons (the wiring's last `output_dim`) through the output mapping.

A subclass supplies `plastic_mask(wiring)` (which synapses are plastic), `_dynamics` (the
neuron model, given the plastic weight change alpha * H or None) and `numpy_step()`.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from policies.plasticity import HebbianRule, NumpyTrace
from policies.wiring import Wiring

State = tuple[torch.Tensor, ...]
MAPPINGS = ("affine", "linear", "none")


def batch_dt(dt: Union[float, torch.Tensor, np.ndarray], batch_size: int, like: torch.Tensor) -> torch.Tensor:
    """The elapsed time as a (batch,) tensor: a number or 0-d tensor applies to every sample."""
    dt = torch.as_tensor(dt, dtype=like.dtype, device=like.device)
    if dt.dim() == 0:
        return dt.expand(batch_size)
    if dt.shape != (batch_size,):
        raise ValueError(f"dt must be a number or have shape ({batch_size},), got {tuple(dt.shape)}")
    return dt


class LiquidCell(nn.Module):
    """Base of LTCCell and CfCCell (see the module docstring for the step contract)."""

    def __init__(
        self,
        wiring: Wiring,
        *,
        plastic: bool = False,
        input_mapping: str = "none",
        output_mapping: str = "none",
        modulator: str = "sample",
        h_max: float = 1.0,
        alpha_init: float = 0.1,
    ):
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
            HebbianRule(self.plastic_mask(wiring), wiring.units, modulator, h_max, alpha_init) if plastic else None
        )
        self._plasticity = plastic

    # -- supplied by the neuron model -------------------------------------------------------
    @staticmethod
    def plastic_mask(wiring: Wiring) -> np.ndarray:
        """(units, units) [pre, post]: 1 where the synapse is plastic."""
        raise NotImplementedError

    def _dynamics(
        self, x: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, delta: Optional[torch.Tensor], want_hebb: bool
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """New neuron states (batch, units) and, if asked, the hebbian product (batch, pre, post)."""
        raise NotImplementedError

    def numpy_step(self) -> "NumpyStep":
        """A batch-1 numpy stepper holding a snapshot of the current weights."""
        raise NotImplementedError

    def _own_parameter_masks(self) -> dict[str, torch.Tensor]:
        """Masks of parameters of which only the masked entries are synapses."""
        return {}

    # -- shared -------------------------------------------------------------------------------
    @property
    def plastic(self) -> bool:
        """True when the cell has plastic synapses (learned rule parameters)."""
        return self.rule is not None

    @property
    def plasticity(self) -> bool:
        """Whether the traces change while running; off = same weights, H frozen at zero."""
        return self._plasticity

    @plasticity.setter
    def plasticity(self, on: bool) -> None:
        if on and self.rule is None:
            raise ValueError("this cell has no plastic synapses")
        self._plasticity = bool(on)

    @property
    def input_size(self) -> int:
        return self.wiring.input_dim

    @property
    def state_size(self) -> int:
        return self.wiring.units

    @property
    def output_size(self) -> int:
        return self.wiring.output_dim

    def initial_state(self, batch_size: int = 1, like: Optional[torch.Tensor] = None) -> State:
        """Zero neuron states (and zero traces for a plastic cell)."""
        like = self._like() if like is None else like
        h = like.new_zeros((batch_size, self.state_size))
        return (h,) if self.rule is None else (h, self.rule.zero_trace(batch_size, like))

    def state_names(self) -> tuple[str, ...]:
        return ("h",) if self.rule is None else ("h", "hebb")

    def forward(
        self, x: torch.Tensor, state: Optional[State] = None, dt: Union[float, torch.Tensor] = 1.0
    ) -> tuple[torch.Tensor, State]:
        """One step: x (batch, inputs), dt elapsed time (number or (batch,)) -> (y, new state)."""
        batch = x.shape[0]
        if state is None:
            state = self.initial_state(batch, x)
        h = state[0]
        dt = batch_dt(dt, batch, x)
        x = self.map_inputs(x)
        if self.rule is not None and self._plasticity:
            trace = state[1]
            m = self.rule.modulation(h)  # from the state at the start of the step
            h_new, hebb = self._dynamics(x, h, dt, self.rule.delta(trace), True)
            new_state: State = (h_new, self.rule.update(trace, m, hebb))
        else:
            h_new, _ = self._dynamics(x, h, dt, None, False)
            new_state = (h_new,) if self.rule is None else (h_new, torch.zeros_like(state[1]))
        return self.map_outputs(h_new), new_state

    def sequence(self, x: torch.Tensor, dt: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """x (batch, time, inputs), dt (batch, time) -> (y (batch, time, outputs), final state).

        The training path: a cell overrides it with a faster computation of `stepwise`.
        """
        return self.stepwise(x, dt, state)

    def stepwise(self, x: torch.Tensor, dt: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """As `sequence`, one `forward` step at a time: the reference the fast paths are tested against."""
        outputs = []
        for t in range(x.shape[1]):
            y, state = self(x[:, t], state, dt[:, t])
            outputs.append(y)
        return torch.stack(outputs, 1), state

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

    def _mapping_arrays(self) -> dict[str, np.ndarray]:
        """Input/output mappings as float32 arrays (identity where the mapping is absent)."""
        def get(name: str, default: float, size: int) -> np.ndarray:
            p = getattr(self, name, None)
            return np.full(size, default, np.float32) if p is None else p.detach().cpu().numpy().astype(np.float32)

        w = self.wiring
        return {
            "in_w": get("input_w", 1.0, w.input_dim),
            "in_b": get("input_b", 0.0, w.input_dim),
            "out_w": get("output_w", 1.0, w.output_dim),
            "out_b": get("output_b", 0.0, w.output_dim),
        }


class NumpyStep:
    """Batch-1 control step of a cell in numpy, with every buffer allocated once.

    It holds a snapshot of the cell's weights taken when it was built (rebuild it after
    the weights change) and its own state. `step(x, dt)` takes x (inputs,) and a number dt
    and returns y (outputs,) as a new array. `state()` / `set_state()` use the cell's torch
    layout with a batch of one: (h (1, units),) or (h, H (1, units, units)).
    """

    def __init__(self, cell: LiquidCell):
        self.units = cell.state_size
        self.plastic = cell.rule is not None and cell.plasticity
        self.has_trace = cell.rule is not None  # a plastic cell with plasticity off reports H = 0
        self.trace: Optional[NumpyTrace] = None
        self._dt: Optional[float] = None

    def step(self, x: np.ndarray, dt: float = 1.0) -> np.ndarray:
        if dt != self._dt:
            self._set_dt(float(dt))
            self._dt = dt
        return self._step(x)

    def state(self) -> tuple[np.ndarray, ...]:
        h = self._get_h()[None].copy()
        if not self.has_trace:
            return (h,)
        if self.trace is None:
            return (h, np.zeros((1, self.units, self.units), np.float32))
        return (h, self._get_trace()[None].copy())

    def set_state(self, state: tuple[np.ndarray, ...]) -> None:
        self._set_h(np.asarray(state[0], np.float32).reshape(self.units))
        if self.trace is not None:
            self._set_trace(np.asarray(state[1], np.float32).reshape(self.units, self.units))
            self._traces_changed()

    def reset(self, keep_traces: bool = False) -> None:
        """Neuron states to zero; traces too unless `keep_traces`."""
        self._set_h(np.zeros(self.units, np.float32))
        if self.trace is not None and not keep_traces:
            self.trace.reset()
            self._traces_changed()

    # -- supplied by the neuron model ---------------------------------------------------------
    def _set_dt(self, dt: float) -> None:
        raise NotImplementedError

    def _step(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _get_h(self) -> np.ndarray:
        raise NotImplementedError

    def _set_h(self, h: np.ndarray) -> None:
        raise NotImplementedError

    def _get_trace(self) -> np.ndarray:
        """H as a dense (pre, post) matrix."""
        return self.trace.H

    def _set_trace(self, trace: np.ndarray) -> None:
        self.trace.H[...] = trace

    def _traces_changed(self) -> None:
        """Called after H changed other than by a step (set from outside, reset)."""
