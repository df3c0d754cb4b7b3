"""The neuromodulated Hebbian plasticity rule, shared by the LTC and CfC cells.

Every synapse that a cell makes plastic (a neuron -> neuron synapse of its wiring) carries
a trace H[pre, post] that is part of the recurrent state. The synapse's effective weight is
`w + alpha * H`, and after every step

    H <- clip(H + m(t) * (eta * hebb - decay * H), -h_max, h_max)

where `hebb` is the cell's pre x post activity product, `m(t) = tanh(W_m h + b_m)` is a
neuromodulatory signal read out of the network state at the start of the step (one scalar
per sample, or one per postsynaptic neuron), and alpha, eta, decay = sigmoid(decay_logit)
and the readout (W_m, b_m) are learned (Backpropamine, Miconi et al. 2019). Gradients flow
through H, so training can meta-learn the rule by backpropagation through time; at
deployment H changes with no gradient and no reward.

Two implementations of the same rule: `HebbianRule.update` (torch, batched, autograd) and
`NumpyTrace.update` (numpy, batch 1, preallocated: the control fast path).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

MODULATORS = ("sample", "neuron")


class HebbianRule(nn.Module):
    """Learned parameters of the rule for the synapses in `mask` ([pre, post], 1 = plastic).

    `state_size` is the size of the state the modulator reads; `modulator` is "sample"
    (one m per sample) or "neuron" (one m per postsynaptic neuron); `h_max` bounds |H|;
    alpha starts uniform in [-alpha_init, alpha_init].
    """

    def __init__(self, mask: np.ndarray, state_size: int, modulator: str = "sample", h_max: float = 1.0,
                 alpha_init: float = 0.1):
        super().__init__()
        if modulator not in MODULATORS:
            raise ValueError(f"modulator must be one of {MODULATORS}, got {modulator!r}")
        if not h_max > 0:
            raise ValueError(f"h_max must be positive, got {h_max}")
        if not alpha_init >= 0:
            raise ValueError(f"alpha_init must be >= 0, got {alpha_init}")
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
        """H = 0 for a batch, (batch, pre, post), on `like`'s device and dtype."""
        return like.new_zeros((batch_size, *self.shape))

    def delta(self, trace: torch.Tensor) -> torch.Tensor:
        """The plastic part of the weights, alpha * H (batch, pre, post)."""
        return self.alpha * self.mask * trace

    def modulation(self, state: torch.Tensor) -> torch.Tensor:
        """m(t) in [-1, 1] from the state (batch, state_size): (batch, 1) or (batch, post)."""
        return torch.tanh(self.modulator(state))

    def update(self, trace: torch.Tensor, m: torch.Tensor, hebb: torch.Tensor) -> torch.Tensor:
        """The next trace from H (batch, pre, post), m (batch, 1 | post) and hebb (batch, pre, post)."""
        eta = self.eta * self.mask
        decay = torch.sigmoid(self.decay_logit)
        step = m.unsqueeze(1) * (eta * hebb - decay * trace)
        return torch.clamp(trace + step, -self.h_max, self.h_max)

    def parameter_masks(self) -> dict[str, torch.Tensor]:
        """Which entries of the per-synapse parameters are real synapses (for parameter counts)."""
        return {"alpha": self.mask, "eta": self.mask, "decay_logit": self.mask}

    def numpy_arrays(self) -> dict[str, np.ndarray]:
        """float32 snapshots for the numpy fast path."""
        with torch.no_grad():
            mask = self.mask
            return {
                "alpha": _np(self.alpha * mask),
                "eta": _np(self.eta * mask),
                "decay": _np(torch.sigmoid(self.decay_logit)),
                "mod_w": _np(self.modulator.weight.t()),  # (state, K)
                "mod_b": _np(self.modulator.bias),
            }


class NumpyTrace:
    """The rule for one sample in numpy, with every buffer allocated once.

    Works on any layout of the synapses (a dense (pre, post) matrix, or a list of the
    wiring's synapses): `decay` and each eta block have that layout. The hebbian term may
    come in k blocks with their own eta (a cell whose synapses see different presynaptic
    values writes one pre x post block for each); the cell writes them into `hebb`, then
    calls `update(m)`. With a per-sample modulator, m is the sample's m repeated `m_copies`
    times (so that one dot both sums the blocks and scales them); otherwise m broadcasts
    against the layout (per postsynaptic neuron).
    """

    def __init__(self, eta_blocks: Sequence[np.ndarray], decay: np.ndarray, h_max: float, per_sample: bool = True):
        k = len(eta_blocks)
        # H lives as the last block of the stack so that one multiply gives every term of
        # sum_b eta_b * hebb_b - decay * H.
        self._stack = np.zeros((k + 1, *decay.shape), dtype=np.float32)
        self.hebb = self._stack[:k]
        self.H = self._stack[k]
        self._coef = np.stack([*eta_blocks, -decay]).astype(np.float32)
        self._prod = np.empty_like(self._stack)
        self._prod_rows = self._prod.reshape(k + 1, -1)
        self._step = np.empty(decay.shape, dtype=np.float32)
        self._step_flat = self._step.reshape(-1)
        self.per_sample = per_sample
        self.m_copies = k + 1
        self._lo = np.array(-h_max, dtype=np.float32)  # 0-d arrays: scalars cost the clip ufunc ~1 us
        self._hi = np.array(h_max, dtype=np.float32)

    def update(self, m: np.ndarray) -> None:
        """H <- clip(H + m * (eta * hebb - decay * H))."""
        np.multiply(self._stack, self._coef, self._prod)
        if self.per_sample:
            np.dot(m, self._prod_rows, self._step_flat)
        else:
            np.add.reduce(self._prod, 0, out=self._step)
            np.multiply(self._step, m, self._step)
        np.add(self.H, self._step, self.H)
        _clip(self.H, self._lo, self._hi, self.H)

    def reset(self) -> None:
        self._stack.fill(0.0)


_clip = getattr(np, "_core", np).umath.clip  # the clip ufunc itself: np.clip adds ~3 us of Python per call


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32, copy=True)
