"""Closed-form continuous-time (CfC) cell on a wiring, with optional plastic synapses.

As in ncps' WiredCfCCell, each wiring layer is a CfC layer that reads the previous layer's
new state (the inputs, for the first layer) and its own previous state:

    z = [input, h_own];  a_k = z @ (W_k * mask_k) + b_k  for k in ff1, ff2, time_a, time_b
    t = sigmoid(time_a * dt + time_b)
    h_own' = tanh(ff1) * (1 - t) + tanh(ff2) * t

ff1 and ff2 are masked by the wiring (input synapses) and dense inside a layer; the time
gates are dense. With plasticity, every neuron -> neuron synapse of those masks (previous
layer -> layer, and inside a layer) adds alpha * trace to its ff1 and ff2 weights, and its
coactivity is pre x post with pre the value the synapse carried this step (the new
state of a previous-layer neuron, the old state of a same-layer neuron) and post the new
state. Sensory synapses are not plastic. Polarities are not used (as in ncps). Training runs
the plastic cell through policies/cfc_bptt.py; the numpy control step is policies/fastpath.py.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import nn

from policies.cell import CellState, LiquidCell
from policies.cfc_bptt import BlockLayout, PlasticCfCSequence
from policies.plasticity import RuleSpec
from policies.wiring import Wiring


def cfc_masks(wiring: Wiring) -> tuple[np.ndarray, np.ndarray]:
    """(feedforward, recurrent) neuron -> neuron synapse masks [pre, post] of the layered CfC."""
    n = wiring.units
    forward = np.zeros((n, n), np.float32)
    recurrent = np.zeros((n, n), np.float32)
    for layer in range(wiring.num_layers):
        s, e = wiring.layer_range(layer)
        recurrent[s:e, s:e] = 1.0
        if layer > 0:
            ps, pe = wiring.layer_range(layer - 1)
            forward[ps:pe, s:e] = np.abs(wiring.adjacency[ps:pe, s:e])
    return forward, recurrent


class _CfCLayer(nn.Module):
    """One layer's fused weights [pre, (ff1 | ff2 | time_a | time_b)] and their mask (a buffer)."""

    def __init__(self, input_mask: np.ndarray):
        super().__init__()
        n_in, n = input_mask.shape
        fan_in = n_in + n
        ff_mask = np.vstack([np.abs(input_mask), np.ones((n, n))])
        mask = np.hstack([ff_mask, ff_mask, np.ones((fan_in, 2 * n))])
        self.units = n
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32), persistent=False)
        bound = math.sqrt(6.0 / (fan_in + n))  # xavier-uniform per gate, as ncps
        self.weight = nn.Parameter(torch.empty(fan_in, 4 * n).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(4 * n).uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in)))

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask


class CfCCell(LiquidCell):
    """CfC cell ("default" mode of ncps) on `wiring`; see the module docstring and LiquidCell."""

    def __init__(self, wiring: Wiring, *, rule: Optional[RuleSpec] = None, output_mapping: str = "none"):
        super().__init__(wiring, rule=rule, input_mapping="none", output_mapping=output_mapping)
        self._ranges = [wiring.layer_range(l) for l in range(wiring.num_layers)]
        layers = []
        for l, (s, e) in enumerate(self._ranges):
            if l == 0:
                input_mask = wiring.sensory_adjacency[:, s:e]
            else:
                ps, pe = self._ranges[l - 1]
                input_mask = wiring.adjacency[ps:pe, s:e]
            layers.append(_CfCLayer(input_mask))
        self.layers = nn.ModuleList(layers)
        if rule is not None:
            forward, recurrent = cfc_masks(wiring)
            self.register_buffer("coactivity_forward", torch.as_tensor(forward), persistent=False)
            self.register_buffer("coactivity_recurrent", torch.as_tensor(recurrent), persistent=False)
            self._layout = BlockLayout.of(self._ranges, wiring.units)
            self.register_buffer("trace_index", torch.as_tensor(self._layout.flat_index()), persistent=False)

    @staticmethod
    def plastic_mask(wiring: Wiring) -> np.ndarray:
        forward, recurrent = cfc_masks(wiring)
        return forward + recurrent

    def _own_parameter_masks(self) -> dict[str, torch.Tensor]:
        return {f"layers.{l}.weight": layer.mask for l, layer in enumerate(self.layers)}

    def _dynamics(
        self, x: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, delta: Optional[torch.Tensor], want_coactivity: bool
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        dt = dt.unsqueeze(1)
        inp = x
        new = []
        for l, layer in enumerate(self.layers):
            s, e = self._ranges[l]
            own = h[:, s:e]
            z = torch.cat([inp, own], 1)
            ff1, ff2, time_a, time_b = torch.split(z @ layer.masked_weight() + layer.bias, layer.units, dim=1)
            if delta is not None:
                # presynaptic neurons of this layer's plastic synapses: [previous layer,] own layer
                pre_start, pre = (s, own) if l == 0 else (self._ranges[l - 1][0], z)
                plastic = torch.bmm(pre.unsqueeze(1), delta[:, pre_start:e, s:e]).squeeze(1)
                ff1 = ff1 + plastic
                ff2 = ff2 + plastic
            t = torch.sigmoid(time_a * dt + time_b)
            inp = torch.tanh(ff1) * (1.0 - t) + t * torch.tanh(ff2)
            new.append(inp)
        h_new = torch.cat(new, 1)
        coactivity = None
        if want_coactivity:
            pre = h_new.unsqueeze(2) * self.coactivity_forward + h.unsqueeze(2) * self.coactivity_recurrent
            coactivity = pre * h_new.unsqueeze(1)
        return h_new, coactivity

    def sequence(self, x: torch.Tensor, dt: torch.Tensor, state: tuple) -> tuple[torch.Tensor, CellState]:
        """As LiquidCell.sequence; with plasticity on, through the fused PlasticCfCSequence."""
        if self.rule is None or not self.plasticity:
            return self.stepwise(x, dt, state)
        batch, units, rule, index = x.shape[0], self.wiring.units, self.rule, self.trace_index
        n_in = self.wiring.input_dim
        w0 = self.layers[0].masked_weight()
        # the first layer's input part for all steps in one product: (time, 4 n0, batch)
        gin0 = (self.map_inputs(x) @ w0[:n_in] + self.layers[0].bias).permute(1, 2, 0)
        later = [t for layer in self.layers[1:] for t in (layer.masked_weight(), layer.bias)]

        def on_blocks(p: torch.Tensor) -> torch.Tensor:
            return p.reshape(-1)[index].unsqueeze(1)

        h_seq, trace = PlasticCfCSequence.apply(
            self._layout, rule.h_max, gin0.contiguous(), dt.t().contiguous(), state[0].t(),
            state[1].reshape(batch, -1)[:, index].t(), rule.modulator.weight, rule.modulator.bias,
            on_blocks(rule.alpha * rule.mask), on_blocks(rule.eta * rule.mask), on_blocks(torch.sigmoid(rule.decay_logit)),
            w0[n_in:], *later,
        )
        dense = trace.new_zeros(batch, units * units).index_copy(1, index, trace.t()).view(batch, units, units)
        return self.map_outputs(h_seq.permute(2, 0, 1)), CellState(h_seq[-1].t(), dense)

