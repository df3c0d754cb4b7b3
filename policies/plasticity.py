"""The neuromodulated Hebbian plasticity rule, shared by the LTC and CfC cells.

Every synapse that a cell makes plastic (a neuron -> neuron synapse of its wiring) carries
a trace[pre, post] that is part of the recurrent state (`CellState.trace`, "trace" in
checkpoints and exports). The synapse's effective weight is `w + alpha * trace`, and after
every step

    trace <- clip(trace + m(t) * (eta * coactivity - decay * trace), -h_max, h_max)

where `coactivity` is the cell's pre x post activity product, `m(t) = tanh(W_m h + b_m)` is a
neuromodulatory signal read out of the network state at the start of the step (one scalar
per sample, or one per postsynaptic neuron), and alpha, eta, decay = sigmoid(decay_logit)
and the readout (W_m, b_m) are learned (Backpropamine, Miconi et al. 2019). Gradients flow
through the traces, so training can meta-learn the rule by backpropagation through time; at
deployment the traces change with no gradient and no reward.

`RuleSpec` holds the rule's settings (the one place they are listed), `HebbianRule` its
learned parameters and the torch update; the numpy update of the control fast path is
`policies.fastpath.NumpyTrace`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

MODULATORS = ("sample", "neuron")


@dataclass(frozen=True)
class RuleSpec:
    """Settings of the plasticity rule (a cell built with one has plastic synapses)."""

    modulator: str = "sample"  # one neuromodulator m per sample, or one per postsynaptic neuron ("neuron")
    h_max: float = 1.0  # bound on |trace|
    alpha_init: float = 0.1  # the plastic gains alpha start uniform in [-alpha_init, alpha_init]

    def __post_init__(self) -> None:
        if self.modulator not in MODULATORS:
            raise ValueError(f"modulator must be one of {MODULATORS}, got {self.modulator!r}")
        if not self.h_max > 0:
            raise ValueError(f"h_max must be positive, got {self.h_max}")
        if not self.alpha_init >= 0:
            raise ValueError(f"alpha_init must be >= 0, got {self.alpha_init}")


class HebbianRule(nn.Module):
    """Learned parameters of the rule for the synapses in `mask` ([pre, post], 1 = plastic).

    `state_size` is the size of the state the modulator reads; `spec` the rule's settings.
    """

    def __init__(self, mask: np.ndarray, state_size: int, spec: RuleSpec = RuleSpec()):
        super().__init__()
        modulator, h_max, alpha_init = spec.modulator, spec.h_max, spec.alpha_init
        mask_t = torch.as_tensor(np.asarray(mask) != 0, dtype=torch.float32)
        n_pre, n_post = mask_t.shape
        self.h_max = float(h_max)
        self.modulator_kind = modulator
        self.register_buffer("mask", mask_t, persistent=False)
        # alpha nonzero so the traces matter from the start; eta positive; decay ~0.05. Drawn
        # in [-0.1, 0.1] and scaled, so that the default keeps the shipped runs' exact numbers.
        self.alpha = nn.Parameter((torch.rand(n_pre, n_post) * 0.2 - 0.1) * (alpha_init / 0.1) * mask_t)
        self.eta = nn.Parameter((0.1 + 0.05 * (torch.rand(n_pre, n_post) - 0.5)) * mask_t)
        self.decay_logit = nn.Parameter(torch.full((n_pre, n_post), math.log(0.05 / 0.95)) + 0.1 * torch.randn(n_pre, n_post))
        self.modulator = nn.Linear(state_size, 1 if modulator == "sample" else n_post)
        nn.init.uniform_(self.modulator.weight, -0.1, 0.1)
        nn.init.constant_(self.modulator.bias, 0.5)  # m starts positive: traces form before training gates them

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)  # type: ignore[return-value]

    def zero_trace(self, batch_size: int, like: torch.Tensor) -> torch.Tensor:
        """trace = 0 for a batch, (batch, pre, post), on `like`'s device and dtype."""
        return like.new_zeros((batch_size, *self.shape))

    def delta(self, trace: torch.Tensor) -> torch.Tensor:
        """The plastic part of the weights, alpha * trace (batch, pre, post)."""
        return self.alpha * self.mask * trace

    def modulation(self, state: torch.Tensor) -> torch.Tensor:
        """m(t) in [-1, 1] from the state (batch, state_size): (batch, 1) or (batch, post)."""
        return torch.tanh(self.modulator(state))

    def update(self, trace: torch.Tensor, m: torch.Tensor, coactivity: torch.Tensor) -> torch.Tensor:
        """The next trace from trace (batch, pre, post), m (batch, 1 | post) and coactivity (batch, pre, post)."""
        eta = self.eta * self.mask
        decay = torch.sigmoid(self.decay_logit)
        step = m.unsqueeze(1) * (eta * coactivity - decay * trace)
        return torch.clamp(trace + step, -self.h_max, self.h_max)

    def parameter_masks(self) -> dict[str, torch.Tensor]:
        """Which entries of the per-synapse parameters are real synapses (for parameter counts)."""
        return {"alpha": self.mask, "eta": self.mask, "decay_logit": self.mask}
