"""Sequence modules: a liquid cell unrolled over time, used like torch.nn.LSTM.

    rnn = LiquidSequence(CfCCell(wiring, plastic=True))
    y, state = rnn(x)                    # x (batch, time, inputs), batch first
    y, state = rnn(x, state, dt=dt)      # dt: a number, (batch,) or (batch, time)

The state goes in and comes out explicitly (a tuple: (h,) or (h, H)), so a long sequence
can be cut into pieces for truncated backpropagation through time.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from policies.cell import LiquidCell, State


class LiquidSequence(nn.Module):
    """Runs `cell` over the time axis of a batch-first sequence."""

    def __init__(self, cell: LiquidCell):
        super().__init__()
        self.cell = cell

    def forward(
        self, x: torch.Tensor, state: Optional[State] = None, dt: Union[float, torch.Tensor] = 1.0
    ) -> tuple[torch.Tensor, State]:
        """x (batch, time, inputs) -> (y (batch, time, outputs), final state)."""
        if x.dim() != 3:
            raise ValueError(f"expected x of shape (batch, time, inputs), got {tuple(x.shape)}")
        batch, steps = x.shape[:2]
        if state is None:
            state = self.cell.initial_state(batch, x)
        dt = torch.as_tensor(dt, dtype=x.dtype, device=x.device)
        per_step = dt.dim() == 2  # (batch, time)
        outputs = []
        for t in range(steps):
            y, state = self.cell(x[:, t], state, dt[:, t] if per_step else dt)
            outputs.append(y)
        return torch.stack(outputs, 1), state
