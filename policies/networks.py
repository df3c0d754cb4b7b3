"""Torch networks behind the learned policies: observation in, action in [-1, 1] out.

Every network normalises the observation with `obs_mean` / `obs_std` buffers (saved with
the weights; training sets them from data), clips it to +/- `obs_clip` standard
deviations, and squashes its output with tanh. They share one interface:

    state = net.initial_state(batch)                      # flat tuple of tensors, maybe empty
    action, state = net.step(obs, dt, state)              # obs (batch, obs_dim), dt (batch,) s
    actions, state = net(obs_seq, dt_seq, state)          # (batch, time, obs_dim), (batch, time)

Liquid networks pass dt / time_unit to their cell (dt in seconds); the LSTM, GRU and MLP
baselines are discrete-time and ignore dt.

A residual network corrects a base controller: its last `act_dim` inputs are the base's
action, and its action is that plus RESIDUAL_SCALE * tanh(output). `step` (acting) clips
the sum to [-1, 1]; `forward` (training) does not, so the loss keeps its gradient where
the base alone would saturate.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from policies.cell import CellState, LiquidCell, batch_dt

State = tuple[torch.Tensor, ...]  # a network's recurrent state, flat (names: `state_names()`)
RESIDUAL_SCALE = 2.0  # a residual spans [-2, 2]: it can move any base action anywhere in [-1, 1]


class PolicyNet(nn.Module):
    """Base: observation normalisation and the interface."""

    # True when the network starts with an untrained stage (the LSM's reservoir): training
    # then computes `fixed_features` once per sequence and passes them to forward(features=).
    has_fixed_features = False

    def __init__(self, obs_dim: int, act_dim: int, obs_clip: Optional[float], residual: bool = False):
        super().__init__()
        self.obs_dim = obs_dim  # inputs, the base action included when residual
        self.act_dim = act_dim
        self.obs_clip = obs_clip
        self.residual = residual
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        x = (obs - self.obs_mean) / self.obs_std
        if self.obs_clip is not None:
            x = torch.clamp(x, -self.obs_clip, self.obs_clip)
        return x

    def action(self, y: torch.Tensor, obs: torch.Tensor, acting: bool) -> torch.Tensor:
        """The action from the network's raw output `y`: tanh(y), or for a residual network
        the base action (the last act_dim inputs) plus RESIDUAL_SCALE * tanh(y), clipped to
        [-1, 1] when `acting`."""
        a = torch.tanh(y)
        if not self.residual:
            return a
        a = obs[..., -self.act_dim:] + RESIDUAL_SCALE * a
        return torch.clamp(a, -1.0, 1.0) if acting else a

    def initial_state(self, batch_size: int = 1) -> State:
        raise NotImplementedError

    def state_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def step(self, obs: torch.Tensor, dt: Union[float, torch.Tensor], state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def forward(
        self, obs_seq: torch.Tensor, dt_seq: Union[None, float, torch.Tensor] = None, state: Optional[State] = None
    ) -> tuple[torch.Tensor, State]:
        """obs_seq (batch, time, obs_dim), dt_seq seconds: number or (batch, time) -> (actions, state)."""
        raise NotImplementedError

    def _like(self) -> torch.Tensor:
        return self.obs_mean


class LiquidNet(PolicyNet):
    """A liquid cell (CfC or LTC, plastic or not) whose motor neurons are the actions."""

    def __init__(self, cell: LiquidCell, time_unit: float, obs_clip: Optional[float], residual: bool = False):
        super().__init__(cell.input_size, cell.output_size, obs_clip, residual)
        if not time_unit > 0:
            raise ValueError(f"time_unit must be positive, got {time_unit}")
        self.cell = cell
        self.time_unit = float(time_unit)

    def initial_state(self, batch_size: int = 1) -> State:
        return self.cell.initial_state(batch_size, self._like()).tensors()

    def state_names(self) -> tuple[str, ...]:
        return self.cell.state_names()

    def step(self, obs: torch.Tensor, dt: Union[float, torch.Tensor], state: State) -> tuple[torch.Tensor, State]:
        dt = batch_dt(dt, obs.shape[0], obs) / self.time_unit
        y, new = self.cell(self.normalize(obs), CellState(*state), dt)
        return self.action(y, obs, acting=True), new.tensors()

    def forward(
        self, obs_seq: torch.Tensor, dt_seq: Union[None, float, torch.Tensor] = None, state: Optional[State] = None
    ) -> tuple[torch.Tensor, State]:
        batch, steps = obs_seq.shape[:2]
        if state is None:
            state = self.initial_state(batch)
        dt = torch.as_tensor(1.0 if dt_seq is None else dt_seq, dtype=obs_seq.dtype, device=obs_seq.device)
        dt = dt.expand(batch, steps) if dt.dim() == 0 else dt
        if dt.shape != (batch, steps):
            raise ValueError(f"dt_seq must be a number or have shape ({batch}, {steps}), got {tuple(dt.shape)}")
        y, new = self.cell.sequence(self.normalize(obs_seq), dt / self.time_unit, CellState(*state))
        return self.action(y, obs_seq, acting=False), new.tensors()


class RecurrentNet(PolicyNet):
    """LSTM or GRU baseline: one recurrent layer and a linear head."""

    def __init__(self, kind: str, obs_dim: int, act_dim: int, hidden: int, obs_clip: Optional[float],
                 residual: bool = False):
        super().__init__(obs_dim, act_dim, obs_clip, residual)
        if kind not in ("lstm", "gru"):
            raise ValueError(f"kind must be 'lstm' or 'gru', got {kind!r}")
        self.kind = kind
        self.hidden = hidden
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(obs_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, act_dim)

    def initial_state(self, batch_size: int = 1) -> State:
        h = self._like().new_zeros((batch_size, self.hidden))
        return (h, h.clone()) if self.kind == "lstm" else (h,)

    def state_names(self) -> tuple[str, ...]:
        return ("h", "c") if self.kind == "lstm" else ("h",)

    def _run(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        if self.kind == "lstm":
            out, (h, c) = self.rnn(x, (state[0].unsqueeze(0), state[1].unsqueeze(0)))
            return out, (h.squeeze(0), c.squeeze(0))
        out, h = self.rnn(x, state[0].unsqueeze(0))
        return out, (h.squeeze(0),)

    def step(self, obs: torch.Tensor, dt: Union[float, torch.Tensor], state: State) -> tuple[torch.Tensor, State]:
        out, state = self._run(self.normalize(obs).unsqueeze(1), state)
        return self.action(self.head(out[:, 0]), obs, acting=True), state

    def forward(
        self, obs_seq: torch.Tensor, dt_seq: Union[None, float, torch.Tensor] = None, state: Optional[State] = None
    ) -> tuple[torch.Tensor, State]:
        # the whole sequence in one cuDNN/ATen call rather than a Python loop
        if state is None:
            state = self.initial_state(obs_seq.shape[0])
        out, state = self._run(self.normalize(obs_seq), state)
        return self.action(self.head(out), obs_seq, acting=False), state


class MLPNet(PolicyNet):
    """Memoryless baseline: a multi-layer perceptron with tanh hidden units."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], obs_clip: Optional[float],
                 residual: bool = False):
        super().__init__(obs_dim, act_dim, obs_clip, residual)
        layers: list[nn.Module] = []
        size = obs_dim
        for width in hidden:
            layers += [nn.Linear(size, width), nn.Tanh()]
            size = width
        layers.append(nn.Linear(size, act_dim))
        self.mlp = nn.Sequential(*layers)

    def initial_state(self, batch_size: int = 1) -> State:
        return ()

    def state_names(self) -> tuple[str, ...]:
        return ()

    def step(self, obs: torch.Tensor, dt: Union[float, torch.Tensor], state: State) -> tuple[torch.Tensor, State]:
        return self.action(self.mlp(self.normalize(obs)), obs, acting=True), ()

    def forward(
        self, obs_seq: torch.Tensor, dt_seq: Union[None, float, torch.Tensor] = None, state: Optional[State] = None
    ) -> tuple[torch.Tensor, State]:
        return self.action(self.mlp(self.normalize(obs_seq)), obs_seq, acting=False), ()
