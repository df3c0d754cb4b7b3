"""Liquid time-constant (LTC) cell on a wiring, with optional plastic synapses.

Each neuron is a leaky membrane of potential v with capacitance cm, leak conductance
gleak and leak potential vleak. A synapse i -> j (allowed by the wiring) has a maximum
conductance w_ij, a sigmoid activation s_ij = sigmoid(sigma_ij * (v_i - mu_ij)) and a
reversal potential erev_ij (initialised to the wiring's polarity). The ODE

    cm dv_j/dt = gleak_j (vleak_j - v_j) + sum_i w_ij s_ij (erev_ij - v_j)   (+ sensory synapses)

is integrated over the elapsed time dt with `ode_unfolds` fused semi-implicit Euler
steps of dt / ode_unfolds each (the scheme of ncps). Positive quantities (w, sensory w, cm,
gleak) are softplus of their parameters (ncps' implicit constraints).

With plasticity, the neuron -> neuron conductance becomes softplus(w + alpha * trace): the
trace changes the synaptic conductance and it stays positive. The coactivity is
pre = s_ij (the synapse's activation in the last unfold) times post = tanh(v_j).
Sensory synapses are not plastic. The numpy control step is policies/fastpath.py.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from policies.cell import CellState, LiquidCell
from policies.plasticity import RuleSpec
from policies.wiring import Wiring

MIN_DT = 1e-6  # dt is clamped to this: the update divides by dt (dt -> 0 leaves v unchanged)

# ncps' initial ranges
_INIT = {
    "gleak": (0.001, 1.0), "vleak": (-0.2, 0.2), "cm": (0.4, 0.6),
    "w": (0.001, 1.0), "sigma": (3.0, 8.0), "mu": (0.3, 0.8),
}


def _uniform(shape: tuple[int, ...], name: str) -> nn.Parameter:
    lo, hi = _INIT[name]
    return nn.Parameter(torch.rand(*shape) * (hi - lo) + lo)


class LTCCell(LiquidCell):
    """LTC cell on `wiring`; see the module docstring and LiquidCell for the step contract."""

    def __init__(
        self,
        wiring: Wiring,
        *,
        rule: Optional[RuleSpec] = None,
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        input_mapping: str = "affine",
        output_mapping: str = "affine",
    ):
        super().__init__(wiring, rule=rule, input_mapping=input_mapping, output_mapping=output_mapping)
        if ode_unfolds < 1:
            raise ValueError(f"ode_unfolds must be at least 1, got {ode_unfolds}")
        n, n_in = wiring.units, wiring.input_dim
        self.ode_unfolds = int(ode_unfolds)
        self.epsilon = float(epsilon)
        self.register_buffer("mask", torch.as_tensor(np.abs(wiring.adjacency), dtype=torch.float32), persistent=False)
        self.register_buffer(
            "sensory_mask", torch.as_tensor(np.abs(wiring.sensory_adjacency), dtype=torch.float32), persistent=False
        )
        self.gleak = _uniform((n,), "gleak")
        self.vleak = _uniform((n,), "vleak")
        self.cm = _uniform((n,), "cm")
        self.w = _uniform((n, n), "w")
        self.sigma = _uniform((n, n), "sigma")
        self.mu = _uniform((n, n), "mu")
        self.erev = nn.Parameter(torch.from_numpy(wiring.adjacency.astype(np.float32)))
        self.sensory_w = _uniform((n_in, n), "w")
        self.sensory_sigma = _uniform((n_in, n), "sigma")
        self.sensory_mu = _uniform((n_in, n), "mu")
        self.sensory_erev = nn.Parameter(torch.from_numpy(wiring.sensory_adjacency.astype(np.float32)))
        pre, post = np.nonzero(wiring.adjacency)  # the synapse list the step works on
        scatter = np.zeros((pre.size, n), np.float32)
        scatter[np.arange(pre.size), post] = 1.0
        self.register_buffer("syn_pre", torch.as_tensor(pre), persistent=False)
        self.register_buffer("syn_post", torch.as_tensor(post), persistent=False)
        self.register_buffer("syn_flat", torch.as_tensor(pre * n + post), persistent=False)
        self.register_buffer("syn_scatter", torch.as_tensor(scatter), persistent=False)

    @staticmethod
    def plastic_mask(wiring: Wiring) -> np.ndarray:
        return np.abs(wiring.adjacency).astype(np.float32)

    def _own_parameter_masks(self) -> dict[str, torch.Tensor]:
        masks = {name: self.mask for name in ("w", "sigma", "mu", "erev")}
        masks.update({f"sensory_{name}": self.sensory_mask for name in ("w", "sigma", "mu", "erev")})
        return masks

    def _dynamics(
        self, x: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, delta: Optional[torch.Tensor], want_coactivity: bool
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        v = h
        batch, n = v.shape
        # Work on the list of the wiring's synapses (pre -> post), not on dense n x n arrays.
        pre, post = self.syn_pre, self.syn_post
        # sensory synapses do not depend on v: once per step
        sensory = F.softplus(self.sensory_w) * torch.sigmoid(self.sensory_sigma * (x.unsqueeze(2) - self.sensory_mu))
        sensory = sensory * self.sensory_mask
        num_sensory = (sensory * self.sensory_erev).sum(1)
        den_sensory = sensory.sum(1)
        cm_t = F.softplus(self.cm) / (dt.clamp_min(MIN_DT) / self.ode_unfolds).unsqueeze(1)
        gleak = F.softplus(self.gleak)
        w = self.w[pre, post]
        if delta is not None:
            w = w + delta.reshape(batch, n * n)[:, self.syn_flat]
        g = F.softplus(w)  # (synapses,) or (batch, synapses)
        weights = torch.stack([g * self.erev[pre, post], g])  # [numerator; denominator] per synapse
        if g.dim() == 1:
            weights = weights.unsqueeze(1)
        sigma, mu = self.sigma[pre, post], self.mu[pre, post]
        num_const = gleak * self.vleak + num_sensory
        den_const = cm_t + gleak + den_sensory + self.epsilon
        s = v
        for _ in range(self.ode_unfolds):
            s = torch.sigmoid(sigma * (v[:, pre] - mu))
            # sums over each neuron's incoming synapses: [numerator; denominator] in one product
            sums = (weights * s) @ self.syn_scatter
            v = (cm_t * v + num_const + sums[0]) / (den_const + sums[1])
        if not want_coactivity:
            return v, None
        coactivity = v.new_zeros(batch, n * n).scatter(1, self.syn_flat.expand(batch, -1), s * torch.tanh(v)[:, post])
        return v, coactivity.view(batch, n, n)

    def sequence(self, x: torch.Tensor, dt: torch.Tensor, state: tuple) -> tuple[torch.Tensor, CellState]:
        """As LiquidCell.sequence, on the synapse list: the sensory synapses for all steps at once,
        the parameters prepared once, the traces only on the wiring's synapses (batch, synapses)."""
        batch, steps = x.shape[:2]
        n, pre, post = self.wiring.units, self.syn_pre, self.syn_post
        num_sensory, den_sensory = self._sensory_sums(self.map_inputs(x))  # (batch, time, units)
        cm_t = F.softplus(self.cm) / (dt.clamp_min(MIN_DT) / self.ode_unfolds).unsqueeze(2)
        gleak = F.softplus(self.gleak)
        num_const = num_sensory + gleak * self.vleak
        den_const = den_sensory + cm_t + (gleak + self.epsilon)
        w, erev = self.w[pre, post], self.erev[pre, post]
        sigma = self.sigma[pre, post]
        neg_sigma_mu = -sigma * self.mu[pre, post]
        plastic = self.rule is not None and self.plasticity
        if plastic:  # per-sample conductances multiply s; the scatter matrix carries erev
            scatter = torch.cat([self.syn_scatter * erev[:, None], self.syn_scatter], 1)  # (synapses, 2 units)
            rule, index = self.rule, self.syn_flat
            alpha, eta = (rule.alpha * rule.mask).reshape(-1)[index], (rule.eta * rule.mask).reshape(-1)[index]
            decay = torch.sigmoid(rule.decay_logit).reshape(-1)[index]
            trace = state[1].reshape(batch, -1)[:, index]
        else:  # conductances fixed: folded into the scatter matrix
            g = F.softplus(w)
            scatter = torch.cat([self.syn_scatter * (g * erev)[:, None], self.syn_scatter * g[:, None]], 1)
        # per-step slices made once (slicing in the loop costs a full-size zero fill per slice in backward)
        num_const, den_const, cm_t = num_const.unbind(1), den_const.unbind(1), cm_t.unbind(1)
        gather_pre = self.syn_scatter.new_zeros(n, pre.numel())
        gather_pre[pre, torch.arange(pre.numel(), device=pre.device)] = 1.0  # v @ gather_pre = v[:, pre]
        gather_post = self.syn_scatter.t()  # v @ gather_post = v[:, post]
        v, outputs = state[0], []
        for t in range(steps):
            if plastic:
                m = torch.tanh(rule.modulator(v))
                m = m if m.shape[1] == 1 else m @ gather_post
                g = F.softplus(w + alpha * trace)
            for _ in range(self.ode_unfolds):
                s = torch.sigmoid(torch.addcmul(neg_sigma_mu, v @ gather_pre, sigma))
                sums = ((g * s) if plastic else s) @ scatter  # [numerator | denominator] per neuron
                v = (torch.addcmul(num_const[t], cm_t[t], v) + sums[:, :n]) / (den_const[t] + sums[:, n:])
            if plastic:
                coactivity = s * (torch.tanh(v) @ gather_post)
                trace = torch.clamp(trace + m * (eta * coactivity - decay * trace), -rule.h_max, rule.h_max)
            outputs.append(v)
        if self.rule is None:
            new_state = CellState(v)
        elif plastic:
            new_state = CellState(v, trace.new_zeros(batch, n * n).index_copy(1, self.syn_flat, trace).view(batch, n, n))
        else:
            new_state = CellState(v, torch.zeros_like(state[1]))
        return self.map_outputs(torch.stack(outputs, 1)), new_state

    def _sensory_sums(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The sensory synapses' numerator and denominator sums per neuron, x (..., inputs) -> 2 x (..., units)."""
        s_pre, s_post = self.sensory_mask.nonzero(as_tuple=True)
        act = F.softplus(self.sensory_w[s_pre, s_post]) * torch.sigmoid(
            self.sensory_sigma[s_pre, s_post] * (x[..., s_pre] - self.sensory_mu[s_pre, s_post]))
        scatter = torch.zeros(s_pre.numel(), self.wiring.units, dtype=x.dtype, device=x.device)
        scatter[torch.arange(s_pre.numel()), s_post] = 1.0
        return (act * self.sensory_erev[s_pre, s_post]) @ scatter, act @ scatter

